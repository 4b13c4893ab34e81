#!/usr/bin/env bash
# clients-smoke.sh — drive a runc-compatible OCI runtime through real clients
# (podman, containerd+ctr, dockerd+docker), fully offline.
#
# husk's copy of ../shared/tools/clients-smoke.sh (the yardstick every runtime
# is measured with), adapted for the VM lane's systemd + cgroup v2 guest: with
# SMOKE_CGROUP_DRIVER=systemd the clients run at their defaults on such a host
# (podman's cgroup_manager "systemd", dockerd's native.cgroupdriver=systemd,
# ctr's --runc-systemd-cgroup, which is what containerd's SystemdCgroup = true
# passes), so the runtime gets --systemd-cgroup and "slice:prefix:name" paths,
# and the run ends by checking that no unit or cgroup of it is left.
#
# usage: clients-smoke.sh RUNTIME_PATH [podman|containerd|docker|all]
#
# Prints one line per check ("ok   client/check (time)" or
# "FAIL client/check: reason") and ends with "N passed, N failed".
# Exit status: 0 when nothing failed, 1 otherwise, 2 on usage errors.
#
# Environment knobs:
#   SMOKE_TIMEOUT=60       seconds allowed for any single client command
#   SMOKE_CGROUP_DRIVER    cgroupfs or systemd (default: systemd when systemd
#                          is PID 1, as the clients' own defaults on a v2 host)
#   SMOKE_HIDE_CGROUP2=1   inside the private mount namespace, unmount
#                          /sys/fs/cgroup/unified (cgroup v1 "hybrid" hosts).
#                          crun 1.8 refuses to run anything on a hybrid host
#                          whose cgroup2 hierarchy has controllers; this
#                          makes the host look like plain cgroup v1 to it.
#   SMOKE_NO_NS=1          do not re-exec inside a private mount namespace
#                          (by default the whole run happens in one, with a
#                          private tmpfs on /run and /var/lib/containers, so
#                          nothing the clients or the runtime write there
#                          leaks to the host)
#   SMOKE_NO_INSTALL=1     never call apt-get
#   SMOKE_KEEP=1           keep the temp dir (logs, configs) for debugging
#   SMOKE_PODMAN_DRIVER    podman storage driver (default overlay; vfs works)
#   SMOKE_DOCKER_DRIVER    dockerd storage driver (default overlay2; vfs works)
#   SMOKE_TIMING_RUNS=5    how many extra "run --rm echo hi" to time per client
#   DOCKER_CLI=/usr/bin/docker   docker CLI to use (Debian docker.io's)
set -u

usage() { echo "usage: $0 RUNTIME_PATH [podman|containerd|docker|all]" >&2; exit 2; }
[ $# -ge 1 ] || usage
RT_ARG=$1
WHICH=${2:-all}
case $WHICH in podman|containerd|docker|all) ;; *) usage ;; esac
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
case $RT_ARG in /*) RT=$RT_ARG ;; *) RT=$PWD/$RT_ARG ;; esac
[ -f "$RT" ] && [ -x "$RT" ] || { echo "not an executable file: $RT" >&2; exit 2; }
RTNAME=$(basename "$RT")
SELF=$(readlink -f "$0")
TO=${SMOKE_TIMEOUT:-60}
DOCKER=${DOCKER_CLI:-/usr/bin/docker}
want() { [ "$WHICH" = all ] || [ "$WHICH" = "$1" ]; }

# ---------------------------------------------------------------- deps ----
static_busybox() {
    local c
    for c in /bin/busybox /usr/bin/busybox; do
        if [ -x "$c" ] && ! ldd "$c" >/dev/null 2>&1; then echo "$c"; return 0; fi
    done
    return 1
}

if [ -z "${SMOKE_IN_NS:-}" ] && [ -z "${SMOKE_NO_INSTALL:-}" ]; then
    need=()
    want podman && { command -v podman >/dev/null && command -v conmon >/dev/null || need+=(podman); }
    want containerd && { command -v containerd >/dev/null && command -v ctr >/dev/null || need+=(containerd); }
    want docker && { command -v dockerd >/dev/null && [ -x "$DOCKER" ] || need+=(docker.io); }
    command -v script >/dev/null || need+=(bsdutils)
    command -v unshare >/dev/null || need+=(util-linux)
    if [ ${#need[@]} -gt 0 ]; then
        echo "# installing: ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        made_policy=
        if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep postinst from starting daemons
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
        fi
        if ! apt-get install -y -q -o DPkg::Lock::Timeout=600 "${need[@]}" >/tmp/clients-smoke-apt.log 2>&1; then
            apt-get update -q >>/tmp/clients-smoke-apt.log 2>&1
            apt-get install -y -q -o DPkg::Lock::Timeout=600 "${need[@]}" >>/tmp/clients-smoke-apt.log 2>&1 \
                || echo "# apt-get install failed, see /tmp/clients-smoke-apt.log"
        fi
        [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
    fi
    if ! static_busybox >/dev/null; then
        # busybox-static conflicts with the dynamic busybox package, so
        # unpack it into a private dir instead of installing it
        mkdir -p /tmp/clients-smoke-bb && (cd /tmp/clients-smoke-bb && \
            { ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download busybox-static >/dev/null 2>&1 || \
              { apt-get update -q >/dev/null 2>&1; apt-get download busybox-static >/dev/null 2>&1; }; } && \
            dpkg-deb -x busybox-static_*.deb root)
    fi
fi

# ------------------------------------------------- private mount namespace ----
if [ -z "${SMOKE_IN_NS:-}" ] && [ -z "${SMOKE_NO_NS:-}" ]; then
    export SMOKE_IN_NS=1
    exec unshare --mount --propagation private -- bash "$SELF" "$@"
fi

BB=$(static_busybox) || BB=/tmp/clients-smoke-bb/root/bin/busybox
[ -x "$BB" ] || { echo "no static busybox found" >&2; exit 2; }

T=$(mktemp -d /tmp/clients-smoke.XXXXXX)
TAG=${T##*.}
CGP=/clients-smoke-$TAG          # cgroup parent for every container we make
if [ -d /run/systemd/system ]; then DRIVER=${SMOKE_CGROUP_DRIVER:-systemd}; else DRIVER=${SMOKE_CGROUP_DRIVER:-cgroupfs}; fi
case $DRIVER in cgroupfs|systemd) ;; *) echo "SMOKE_CGROUP_DRIVER must be cgroupfs or systemd" >&2; exit 2 ;; esac
# With systemd, the parent is a slice of its own (no dash: directly under the root slice).
SLICE=clientssmoke$TAG.slice
if [ "$DRIVER" = systemd ]; then PARENT=$SLICE; else PARENT=$CGP; fi
# ctr_cgroup NAME : ctr's --cgroup value for a container named NAME
ctr_cgroup() { if [ "$DRIVER" = systemd ]; then echo "$SLICE:cs:$1"; else echo "$CGP/$1"; fi; }
IMG=localhost/clients-smoke:latest
PIDS_TO_STOP=()
MADE_DIRS=()
CG_TOP_BEFORE=$(cd /sys/fs/cgroup && echo *)

if [ -n "${SMOKE_IN_NS:-}" ]; then
    # private /run and /var/lib/containers: the runtime's default --root
    # (/run/<name>), /run/containerd/s shim sockets, podman's blob cache...
    if [ -d /run/systemd/system ]; then
        # On a systemd host, systemd's, journald's and D-Bus's sockets stay reachable under the private /run: the
        # systemd cgroup driver talks to systemd, and podman logs to the journal there by default.
        mkdir -p "$T/host-run" && mount --bind /run "$T/host-run"
    fi
    mount -t tmpfs -o mode=755 clients-smoke /run
    if [ -d "$T/host-run/systemd/system" ]; then
        for d in systemd dbus; do mkdir -p "/run/$d" && mount --bind "$T/host-run/$d" "/run/$d"; done
        umount "$T/host-run"
    fi
    for d in /var/lib/containers; do
        [ -d "$d" ] || { mkdir -p "$d" && MADE_DIRS+=("$d"); }
        mount -t tmpfs -o mode=700 clients-smoke "$d"
    done
    if [ -n "${SMOKE_HIDE_CGROUP2:-}" ] && [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] &&
       [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
        umount -l /sys/fs/cgroup/unified
    fi
fi

# ------------------------------------------------------------- helpers ----
PASS=0; FAILS=0
ok()   { PASS=$((PASS+1));  echo "ok   $1${2:+ ($2)}"; }
fail() { FAILS=$((FAILS+1)); echo "FAIL $1: $(printf '%s' "$2" | tr '\r\n\t' '   ' | cut -c1-400)"; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2fs", b-a}'; }

# cap CMD... : run with timeout; sets OUT (stdout, CR stripped), ERR, RC, DUR
cap() {
    local s; s=$(now)
    OUT=$(timeout -k 5 "$TO" "$@" 2>"$T/stderr" </dev/null | tr -d '\r'; exit "${PIPESTATUS[0]}")
    RC=$?
    DUR=$(since "$s")
    ERR=$(head -c 500 "$T/stderr" | tr '\n' ' ')
}
# capin FILE CMD... : same with stdin from FILE
capin() {
    local f=$1 s; shift; s=$(now)
    OUT=$(timeout -k 5 "$TO" "$@" 2>"$T/stderr" <"$f" | tr -d '\r'; exit "${PIPESTATUS[0]}")
    RC=$?; DUR=$(since "$s"); ERR=$(head -c 500 "$T/stderr" | tr '\n' ' ')
}
# captty "SHELL COMMAND" : run under script(1) so the client has a real pty
captty() {
    local s; s=$(now)
    OUT=$(timeout -k 5 "$TO" script -qec "$1" /dev/null 2>"$T/stderr" </dev/null | tr -d '\r\000'; exit "${PIPESTATUS[0]}")
    RC=$?; DUR=$(since "$s"); ERR=$(head -c 500 "$T/stderr" | tr '\n' ' ')
}
why() { echo "rc=$RC out='$(printf '%s' "$OUT" | head -c 200)' err='$ERR'"; }

# expect NAME WANT : pass when RC==0 and OUT==WANT
expect() {
    if [ "$RC" = 0 ] && [ "$OUT" = "$2" ]; then ok "$1" "$DUR"; else fail "$1" "want '$2'; $(why)"; fi
}
# expect_rc NAME WANTRC
expect_rc() {
    if [ "$RC" = "$2" ]; then ok "$1" "$DUR"; else fail "$1" "want exit $2; $(why)"; fi
}
# expect_has NAME SUBSTR... : RC==0 and OUT contains every SUBSTR
expect_has() {
    local n=$1 s; shift
    if [ "$RC" != 0 ]; then fail "$n" "$(why)"; return; fi
    for s in "$@"; do
        case $OUT in *"$s"*) ;; *) fail "$n" "missing '$s'; $(why)"; return ;; esac
    done
    ok "$n" "$DUR"
}

# is_frozen PID : the cgroup freezer reports the task's cgroup as frozen
is_frozen() {
    local pid=$1 p
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        p=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
        grep -qx 'frozen 1' "/sys/fs/cgroup$p/cgroup.events" 2>/dev/null
    else
        p=$(awk -F: '$2 ~ /(^|,)freezer(,|$)/ {print $3}' "/proc/$pid/cgroup")
        [ "$(cat "/sys/fs/cgroup/freezer$p/freezer.state" 2>/dev/null)" = FROZEN ]
    fi
}

# wait_for SECONDS CMD... : poll until CMD succeeds
wait_for() {
    local end=$(( $(date +%s) + $1 )); shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.1
    done
}

# median of N timings of a command (informational)
time_runs() {
    local label=$1 n=${SMOKE_TIMING_RUNS:-5} i s ts=(); shift
    [ "$n" -gt 0 ] || return 0
    for i in $(seq "$n"); do
        s=$(now); timeout -k 5 "$TO" "$@" >/dev/null 2>&1 </dev/null || { echo "# timing $label: a run failed"; return; }
        ts+=("$(awk -v a="$s" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}')")
    done
    echo "# timing $label: median $(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')s over $n runs (min $(printf '%s\n' "${ts[@]}" | sort -n | head -1)s)"
}

MEMCMD='cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'
TRAPCMD='trap "exit 7" TERM; echo ready; while :; do sleep 0.2; done'
echo fd3-content > "$T/fd3"

# --------------------------------------------------------------- image ----
build_image() {
    local r=$T/rootfs a
    mkdir -p "$r"/{bin,proc,sys,dev,etc,tmp,root,run,var}
    cp "$BB" "$r/bin/busybox"
    for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
    chmod 1777 "$r/tmp"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$r" -cf "$T/rootfs.tar" .

    # one tarball that is both an OCI image layout (ctr import) and a
    # docker-archive (docker load): index.json + manifest.json + blobs/
    local o=$T/oci L LS C CS M MS
    mkdir -p "$o/blobs/sha256"
    L=$(sha256sum "$T/rootfs.tar" | cut -d' ' -f1); LS=$(stat -c %s "$T/rootfs.tar")
    cp "$T/rootfs.tar" "$o/blobs/sha256/$L"
    printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"clients-smoke busybox rootfs"}]}' "$L" > "$T/cfg"
    C=$(sha256sum "$T/cfg" | cut -d' ' -f1); CS=$(stat -c %s "$T/cfg"); mv "$T/cfg" "$o/blobs/sha256/$C"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$C" "$CS" "$L" "$LS" > "$T/man"
    M=$(sha256sum "$T/man" | cut -d' ' -f1); MS=$(stat -c %s "$T/man"); mv "$T/man" "$o/blobs/sha256/$M"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' "$M" "$MS" "$IMG" > "$o/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' > "$o/oci-layout"
    printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s"],"Layers":["blobs/sha256/%s"]}]' "$C" "$IMG" "$L" > "$o/manifest.json"
    tar --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$o" -cf "$T/image.tar" oci-layout index.json manifest.json blobs
}

# ------------------------------------------------------------- cleanup ----
cleanup() {
    set +e
    trap - EXIT
    trap '' INT TERM HUP PIPE
    [ -n "${cleanup_podman:-}" ] && podman_cleanup
    [ -n "${cleanup_docker:-}" ] && docker_cleanup
    [ -n "${cleanup_containerd:-}" ] && containerd_cleanup
    local p
    for p in "${PIDS_TO_STOP[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS_TO_STOP[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null
    done
    # anything still alive that was started for this run (shims, conmon)
    # carries our unique temp dir in its command line
    local f args
    for f in /proc/[0-9]*/cmdline; do
        p=${f#/proc/}; p=${p%/cmdline}
        [ "$p" = $$ ] && continue
        mapfile -d '' -t args 2>/dev/null < "$f" || continue
        case "${args[*]}" in *"$T"*) kill -9 "$p" 2>/dev/null ;; esac
    done
    sleep 0.3
    # mounts under the temp dir, deepest first
    awk -v t="$T" '$5 == t || index($5, t "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    # our cgroups, deepest first. On a v1 host /sys/fs/cgroup is a tmpfs and
    # podman's conmon cgroup code mkdir -p's plain directories (with a plain
    # "tasks" file) for controllers that are not mounted (hugetlb, net_cls,
    # ...): those are removed with rm -rf, real cgroups with rmdir.
    for p in /sys/fs/cgroup/*"$CGP" /sys/fs/cgroup"$CGP"; do
        [ -d "$p" ] || continue
        if [ "$(stat -fc %T "$p")" = tmpfs ]; then rm -rf --one-file-system "$p"
        else find "$p" -depth -type d -exec rmdir {} + 2>/dev/null; fi
    done
    # top-level controller dirs that appeared on that tmpfs during the run
    if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ]; then
        for p in /sys/fs/cgroup/*; do
            case " $CG_TOP_BEFORE " in *" ${p##*/} "*) continue ;; esac
            [ "$(stat -fc %T "$p")" = tmpfs ] && rmdir "$p" 2>/dev/null
        done
    fi
    if [ "$DRIVER" = systemd ]; then
        # What the runtime leaves under the clients' slice once they removed their containers: scopes
        # (units) and cgroup directories. The slice itself is ours to stop.
        local left
        left=$(systemctl list-units --all --plain --no-legend --type=scope 2>/dev/null | awk '{print $1}' |
            while read -r u; do [ "$(systemctl show -p Slice --value "$u")" = "$SLICE" ] && echo "$u"; done)
        if [ -z "$left" ]; then ok systemd/no-scope-left; else fail systemd/no-scope-left "$(echo $left)"; fi
        left=$(find "/sys/fs/cgroup/$SLICE" -mindepth 1 -type d 2>/dev/null)
        if [ -z "$left" ]; then ok systemd/no-cgroup-left; else fail systemd/no-cgroup-left "$(echo $left)"; fi
        systemctl stop "$SLICE" 2>/dev/null
    fi
    if [ -n "${SMOKE_KEEP:-}" ]; then echo "# kept $T"; else rm -rf --one-file-system "$T"; fi
    for p in "${MADE_DIRS[@]}"; do umount -l "$p" 2>/dev/null; rmdir "$p" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# -------------------------------------------------------------- podman ----
podman_run() {
    local P=$T/podman nofile nproc pidmax
    mkdir -p "$P"
    # Without CAP_SYS_RESOURCE podman's root defaults (nofile=1048576, a
    # huge nproc) cannot be applied by the runtime: cap them at what this
    # process (and podman, which lowers its own nproc to pid_max) has.
    nofile=$(ulimit -Hn); nproc=$(ulimit -Hu); pidmax=$(cat /proc/sys/kernel/pid_max)
    [ "$nofile" = unlimited ] && nofile=1048576
    { [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; } && nproc=$pidmax
    cat > "$P/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "$DRIVER"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"
static_dir = "$P/storage/libpod"
volume_path = "$P/storage/volumes"
# podman passes --log-format=json --log FILE only to runtimes named here
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "$RTNAME"]
[network]
network_config_dir = "$P/networks"
EOF
    cat > "$P/storage.conf" <<EOF
[storage]
driver = "${SMOKE_PODMAN_DRIVER:-overlay}"
runroot = "$P/runroot"
graphroot = "$P/storage"
EOF
    export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
    cleanup_podman=1
    local PM="podman --runtime $RT"
    local R="run --cgroup-parent $PARENT"
    local n=cs-$TAG

    cap podman import "$T/rootfs.tar" "$IMG"
    if [ "$RC" != 0 ]; then fail podman/import "$(why)"; return; fi
    ok podman/import "$DUR"

    cap $PM $R --rm "$IMG" echo hi;                       expect podman/run-echo hi
    cap $PM $R --rm "$IMG" sh -c 'exit 3';               expect_rc podman/exit-code 3
    printf 'piped\n' > "$T/in"
    capin "$T/in" $PM $R --rm -i "$IMG" cat;             expect podman/stdin-pipe piped
    cap $PM $R --rm --user 65534:65534 -w /tmp -e FOO=bar --hostname hh "$IMG" \
        sh -c 'echo $(id -u):$(id -g):$PWD:$FOO:$(hostname)'
    expect podman/user-cwd-env-hostname 65534:65534:/tmp:bar:hh
    captty "$PM $R --rm -t $IMG sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo isatty'"
    expect_has podman/run-tty /dev/pts/ isatty
    cap $PM $R --rm --memory 64m "$IMG" sh -c "$MEMCMD"; expect podman/memory-limit 67108864
    local s; s=$(now)
    OUT=$(timeout -k 5 "$TO" $PM $R --rm --preserve-fds 1 "$IMG" sh -c 'cat <&3' 2>"$T/stderr" 3<"$T/fd3" </dev/null); RC=$?; DUR=$(since "$s"); ERR=$(head -c 300 "$T/stderr")
    expect podman/preserve-fds fd3-content

    cap $PM $R -d --name "$n" --memory 64m "$IMG" sleep 1000
    if [ "$RC" != 0 ]; then fail podman/run-detached "$(why)"
    else
        cap $PM ps --format '{{.Names}}';                expect_has podman/run-detached "$n"
        cap $PM exec "$n" echo exec-hi;                  expect podman/exec exec-hi
        cap $PM exec "$n" sh -c 'exit 5';                expect_rc podman/exec-exit-code 5
        captty "$PM exec -t $n sh -c 'tty; [ -t 1 ] && echo isatty'"
        expect_has podman/exec-tty /dev/pts/ isatty
        local pid; pid=$($PM inspect -f '{{.State.Pid}}' "$n" 2>/dev/null)
        cap $PM pause "$n"
        if [ "$RC" = 0 ] && [ "$($PM inspect -f '{{.State.Status}}' "$n" 2>/dev/null)" = paused ] && is_frozen "$pid"; then
            ok podman/pause "$DUR"; else fail podman/pause "status=$($PM inspect -f '{{.State.Status}}' "$n" 2>&1) frozen=$(is_frozen "$pid" && echo y || echo n) $(why)"; fi
        cap $PM unpause "$n"
        if [ "$RC" = 0 ] && ! is_frozen "$pid" && [ "$($PM exec "$n" echo alive 2>/dev/null)" = alive ]; then
            ok podman/unpause "$DUR"; else fail podman/unpause "frozen=$(is_frozen "$pid" && echo y || echo n) $(why)"; fi
        cap $PM update --memory 128m "$n"
        if [ "$RC" = 0 ]; then cap $PM exec "$n" sh -c "$MEMCMD"; expect podman/update-memory 134217728
        else fail podman/update-memory "$(why)"; fi
        cap $PM kill -s KILL "$n"
        if [ "$RC" = 0 ]; then cap $PM wait "$n"; expect podman/kill 137; else fail podman/kill "$(why)"; fi
        cap $PM rm -f "$n"
        if [ "$RC" = 0 ] && ! $PM container exists "$n"; then ok podman/rm "$DUR"; else fail podman/rm "$(why)"; fi
    fi

    cap $PM $R -d --name "$n-stop" "$IMG" sh -c "$TRAPCMD"
    if [ "$RC" = 0 ] && wait_for 20 sh -c "$PM logs $n-stop | grep -q ready"; then
        cap $PM stop -t 10 "$n-stop"
        local d=$DUR
        if [ "$RC" = 0 ]; then cap $PM wait "$n-stop"; DUR=$d; expect podman/stop-sigterm 7; else fail podman/stop-sigterm "$(why)"; fi
    else fail podman/stop-sigterm "container did not start: $(why)"; fi
    $PM rm -f -t 0 "$n-stop" >/dev/null 2>&1

    time_runs "podman run --rm echo hi" $PM $R --rm "$IMG" echo hi
}
podman_cleanup() {
    local PM="timeout 60 podman --runtime $RT"
    $PM rm -a -f -t 0 >/dev/null 2>&1
    $PM system reset -f >/dev/null 2>&1
    unset cleanup_podman
}

# ---------------------------------------------------------- containerd ----
CT_NS=clients-smoke
containerd_start() {
    local D=$T/containerd
    mkdir -p "$D"
    cat > "$D/config.toml" <<EOF
version = 2
root = "$D/root"
state = "$D/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$D/containerd.sock"
[ttrpc]
  address = "$D/containerd.sock.ttrpc"
EOF
    containerd --config "$D/config.toml" >"$D/containerd.log" 2>&1 &
    PIDS_TO_STOP+=($!)
    cleanup_containerd=1
    wait_for 30 ctr -a "$D/containerd.sock" version
}
containerd_run() {
    local D=$T/containerd
    local s; s=$(now)
    if ! containerd_start; then fail containerd/daemon-start "see $D/containerd.log: $(tail -3 "$D/containerd.log" | tr '\n' ' ')"; return; fi
    ok containerd/daemon-start "$(since "$s")"
    local C="ctr -a $D/containerd.sock -n $CT_NS"
    local F="--runc-binary $RT --runc-root $D/runc-root --fifo-dir $D/fifo"
    [ "$DRIVER" = systemd ] && F="$F --runc-systemd-cgroup"
    local n=cs-$TAG

    cap $C image import "$T/image.tar"
    if [ "$RC" != 0 ]; then fail containerd/import "$(why)"; return; fi
    ok containerd/import "$DUR"

    cap $C run --rm $F --cgroup "$(ctr_cgroup $n-1)" "$IMG" "$n-1" echo hi;          expect containerd/run-echo hi
    cap $C run --rm $F --cgroup "$(ctr_cgroup $n-2)" "$IMG" "$n-2" sh -c 'exit 3';   expect_rc containerd/exit-code 3
    cap $C run --rm $F --cgroup "$(ctr_cgroup $n-3)" --cwd /tmp --env FOO=bar "$IMG" "$n-3" sh -c 'echo $PWD:$FOO'
    expect containerd/cwd-env /tmp:bar
    captty "$C run --rm -t $F --cgroup $(ctr_cgroup $n-4) $IMG $n-4 sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo isatty'"
    expect_has containerd/run-tty /dev/pts/ isatty
    # ctr's default spec has no /sys/fs/cgroup mount: ask for one
    cap $C run --rm $F --cgroup "$(ctr_cgroup $n-5)" --memory-limit 67108864 \
        --mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev \
        "$IMG" "$n-5" sh -c "$MEMCMD"
    expect containerd/memory-limit 67108864

    cap $C run -d $F --cgroup "$(ctr_cgroup $n)" "$IMG" "$n" sleep 1000
    if [ "$RC" != 0 ]; then fail containerd/run-detached "$(why)"
    else
        cap $C task ls;                                  expect_has containerd/run-detached "$n" RUNNING
        local pid; pid=$($C task ls 2>/dev/null | awk -v n="$n" '$1==n {print $2}')
        cap $C task exec --exec-id e1 "$n" echo exec-hi; expect containerd/exec exec-hi
        cap $C task exec --exec-id e2 "$n" sh -c 'exit 5'; expect_rc containerd/exec-exit-code 5
        captty "$C task exec -t --exec-id e3 $n sh -c 'tty; [ -t 1 ] && echo isatty'"
        expect_has containerd/exec-tty /dev/pts/ isatty
        cap $C task ps "$n";                             expect_has containerd/ps "${pid:-no-pid-known}"
        cap $C task pause "$n"
        if [ "$RC" = 0 ] && $C task ls 2>/dev/null | grep -q "^$n .*PAUSED" && is_frozen "$pid"; then
            ok containerd/pause "$DUR"; else fail containerd/pause "$($C task ls 2>&1 | grep "^$n") frozen=$(is_frozen "$pid" && echo y || echo n) $(why)"; fi
        cap $C task resume "$n"
        if [ "$RC" = 0 ] && ! is_frozen "$pid" && [ "$($C task exec --exec-id e4 "$n" echo alive 2>/dev/null </dev/null)" = alive ]; then
            ok containerd/resume "$DUR"; else fail containerd/resume "frozen=$(is_frozen "$pid" && echo y || echo n) $(why)"; fi
        cap $C task kill -s SIGKILL "$n"
        if [ "$RC" = 0 ] && wait_for 10 sh -c "$C task ls | grep -q '^$n .*STOPPED'"; then
            ok containerd/kill-detached "$DUR"; else fail containerd/kill-detached "$(why)"; fi
        cap $C task rm "$n"
        if [ "$RC" = 0 ]; then cap $C container rm "$n"; fi
        if [ "$RC" = 0 ] && ! $C container ls -q 2>/dev/null | grep -qx "$n"; then ok containerd/delete "$DUR"; else fail containerd/delete "$(why)"; fi
    fi

    # attached "ctr run" exits with the container's status: use it for stop/kill
    local p
    timeout -k 5 "$TO" $C run --rm $F --cgroup "$(ctr_cgroup $n-t)" "$IMG" "$n-t" sh -c "$TRAPCMD" >"$T/ct-term.out" 2>&1 </dev/null &
    p=$!
    if wait_for 20 grep -q ready "$T/ct-term.out"; then
        s=$(now); $C task kill -s SIGTERM "$n-t" >/dev/null 2>&1; wait "$p"; RC=$?; DUR=$(since "$s"); OUT=$RC; ERR=$(tail -c 300 "$T/ct-term.out")
        expect_rc containerd/stop-sigterm 7
    else kill "$p" 2>/dev/null; wait "$p"; fail containerd/stop-sigterm "never started: $(tail -c 300 "$T/ct-term.out")"; fi
    timeout -k 5 "$TO" $C run --rm $F --cgroup "$(ctr_cgroup $n-k)" "$IMG" "$n-k" sh -c 'echo ready; exec sleep 1000' >"$T/ct-kill.out" 2>&1 </dev/null &
    p=$!
    if wait_for 20 grep -q ready "$T/ct-kill.out"; then
        s=$(now); $C task kill -s SIGKILL "$n-k" >/dev/null 2>&1; wait "$p"; RC=$?; DUR=$(since "$s"); OUT=$RC; ERR=$(tail -c 300 "$T/ct-kill.out")
        expect_rc containerd/kill 137
    else kill "$p" 2>/dev/null; wait "$p"; fail containerd/kill "never started: $(tail -c 300 "$T/ct-kill.out")"; fi

    time_runs "ctr run --rm echo hi" $C run --rm $F --cgroup "$(ctr_cgroup $n-time)" "$IMG" "$n-time" echo hi
}
containerd_cleanup() {
    local D=$T/containerd C="timeout 20 ctr -a $T/containerd/containerd.sock -n $CT_NS" c
    if [ -S "$D/containerd.sock" ]; then
        for c in $($C task ls -q 2>/dev/null); do $C task kill -s SIGKILL "$c" >/dev/null 2>&1; done
        sleep 0.5
        for c in $($C task ls -q 2>/dev/null); do $C task rm -f "$c" >/dev/null 2>&1; done
        for c in $($C container ls -q 2>/dev/null); do $C container rm "$c" >/dev/null 2>&1; done
    fi
    unset cleanup_containerd
}

# -------------------------------------------------------------- docker ----
docker_start() {
    local D=$T/docker
    mkdir -p "$D"
    cat > "$D/daemon.json" <<EOF
{
  "data-root": "$D/data",
  "exec-root": "$D/exec",
  "pidfile": "$D/docker.pid",
  "hosts": ["unix://$D/docker.sock"],
  "deprecated-key-path": "$D/key.json",
  "bridge": "none",
  "iptables": false,
  "ip6tables": false,
  "ip-forward": false,
  "ip-masq": false,
  "storage-driver": "${SMOKE_DOCKER_DRIVER:-overlay2}",
  "exec-opts": ["native.cgroupdriver=$DRIVER"],
  "cgroup-parent": "$PARENT",
  "runtimes": { "husk": { "path": "$RT" } }
}
EOF
    dockerd --config-file "$D/daemon.json" >"$D/dockerd.log" 2>&1 &
    PIDS_TO_STOP+=($!)
    cleanup_docker=1
    wait_for 60 "$DOCKER" -H "unix://$D/docker.sock" version
}
docker_run() {
    local D=$T/docker s
    s=$(now)
    if ! docker_start; then fail docker/daemon-start "see $D/dockerd.log: $(tail -3 "$D/dockerd.log" | tr '\n' ' ')"; return; fi
    ok docker/daemon-start "$(since "$s")"
    local DK="$DOCKER -H unix://$D/docker.sock"
    local R="run --runtime husk --network none"
    local n=cs-$TAG

    cap $DK load -i "$T/image.tar"
    if [ "$RC" != 0 ]; then fail docker/load "$(why)"; return; fi
    ok docker/load "$DUR"

    cap $DK $R --rm "$IMG" echo hi;                        expect docker/run-echo hi
    cap $DK $R --rm "$IMG" sh -c 'exit 3';                expect_rc docker/exit-code 3
    printf 'piped\n' > "$T/in"
    capin "$T/in" $DK $R --rm -i "$IMG" cat;              expect docker/stdin-pipe piped
    cap $DK $R --rm --user 65534:65534 -w /tmp -e FOO=bar --hostname hh "$IMG" \
        sh -c 'echo $(id -u):$(id -g):$PWD:$FOO:$(hostname)'
    expect docker/user-cwd-env-hostname 65534:65534:/tmp:bar:hh
    captty "$DK $R --rm -t $IMG sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo isatty'"
    expect_has docker/run-tty /dev/pts/ isatty
    cap $DK $R --rm --memory 64m "$IMG" sh -c "$MEMCMD"; expect docker/memory-limit 67108864

    cap $DK $R -d --name "$n" --memory 64m --memory-swap 128m "$IMG" sleep 1000
    if [ "$RC" != 0 ]; then fail docker/run-detached "$(why)"
    else
        cap $DK ps --format '{{.Names}}';                expect_has docker/run-detached "$n"
        local pid; pid=$($DK inspect -f '{{.State.Pid}}' "$n" 2>/dev/null)
        cap $DK exec "$n" echo exec-hi;                  expect docker/exec exec-hi
        cap $DK exec "$n" sh -c 'exit 5';                expect_rc docker/exec-exit-code 5
        captty "$DK exec -t $n sh -c 'tty; [ -t 1 ] && echo isatty'"
        expect_has docker/exec-tty /dev/pts/ isatty
        cap $DK top "$n";                                expect_has docker/top "${pid:-no-pid-known}" "sleep 1000"
        cap $DK pause "$n"
        if [ "$RC" = 0 ] && [ "$($DK inspect -f '{{.State.Status}}' "$n" 2>/dev/null)" = paused ] && is_frozen "$pid"; then
            ok docker/pause "$DUR"; else fail docker/pause "status=$($DK inspect -f '{{.State.Status}}' "$n" 2>&1) frozen=$(is_frozen "$pid" && echo y || echo n) $(why)"; fi
        cap $DK unpause "$n"
        if [ "$RC" = 0 ] && ! is_frozen "$pid" && [ "$($DK exec "$n" echo alive 2>/dev/null </dev/null)" = alive ]; then
            ok docker/unpause "$DUR"; else fail docker/unpause "frozen=$(is_frozen "$pid" && echo y || echo n) $(why)"; fi
        cap $DK update --memory 128m --memory-swap 256m "$n"
        if [ "$RC" = 0 ]; then cap $DK exec "$n" sh -c "$MEMCMD"; expect docker/update-memory 134217728
        else fail docker/update-memory "$(why)"; fi
        cap $DK kill "$n"
        if [ "$RC" = 0 ]; then cap $DK wait "$n"; expect docker/kill 137; else fail docker/kill "$(why)"; fi
        cap $DK rm -f "$n"
        if [ "$RC" = 0 ] && ! $DK inspect "$n" >/dev/null 2>&1; then ok docker/rm "$DUR"; else fail docker/rm "$(why)"; fi
    fi

    cap $DK $R -d --name "$n-stop" "$IMG" sh -c "$TRAPCMD"
    if [ "$RC" = 0 ] && wait_for 20 sh -c "$DK logs $n-stop | grep -q ready"; then
        cap $DK stop -t 10 "$n-stop"
        local d=$DUR
        if [ "$RC" = 0 ]; then cap $DK wait "$n-stop"; DUR=$d; expect docker/stop-sigterm 7; else fail docker/stop-sigterm "$(why)"; fi
    else fail docker/stop-sigterm "container did not start: $(why)"; fi
    $DK rm -f "$n-stop" >/dev/null 2>&1

    time_runs "docker run --rm echo hi" $DK $R --rm "$IMG" echo hi
}
docker_cleanup() {
    local DK="timeout 30 $DOCKER -H unix://$T/docker/docker.sock" c
    if [ -S "$T/docker/docker.sock" ]; then
        for c in $($DK ps -aq 2>/dev/null); do $DK rm -f "$c" >/dev/null 2>&1; done
    fi
    unset cleanup_docker
}

# ---------------------------------------------------------------- main ----
cgmode() {
    case $(stat -fc %T /sys/fs/cgroup) in
        cgroup2fs) echo v2 ;;
        tmpfs) if [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
                   echo "v1 hybrid (cgroup2 controllers: '$(cat /sys/fs/cgroup/unified/cgroup.controllers)')"
               else echo v1; fi ;;
        *) echo unknown ;;
    esac
}
echo "# runtime: $RT ($("$RT" --version 2>/dev/null | head -1))"
echo "# cgroups: $(cgmode), driver $DRIVER; pid 1: $(cat /proc/1/comm); mount ns: $([ -n "${SMOKE_IN_NS:-}" ] && echo private || echo host); load: $(cut -d' ' -f1-3 /proc/loadavg); tmp: $T"
case $(cgmode) in "v1 hybrid (cgroup2 controllers: '')"|v1|v2|unknown) ;; *)
    [ "$RTNAME" = crun ] && echo "# note: crun 1.8 refuses every container on a hybrid host whose cgroup2 has controllers; SMOKE_HIDE_CGROUP2=1 works around it" ;;
esac
build_image || { fail image/build "could not build the busybox image"; }

want podman && podman_run
want containerd && containerd_run
want docker && docker_run

cleanup
echo "$PASS passed, $FAILS failed"
[ "$FAILS" = 0 ]
