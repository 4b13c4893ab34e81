#!/usr/bin/env bash
# Image scenarios of issue 12, in one run on one busybox image (ratios are only comparable within a run):
#   - husk's `execute` of /bin/true from an installed image: p50 and p99, and 20 concurrent executes
#     (examples/bench_execute.rs, built here);
#   - `husk run --image` against husk's own bundle `run`;
#   - `podman run --rm`, `ctr run --rm` and `docker run --rm` (Debian's packages, runtime runc for all three: podman's
#     default, crun, refuses a cgroup v1 hybrid host whose cgroup2 has controllers enabled; each a private instance
#     under a temp dir, cgroupfs, no network) on the same image.
#
# usage: benches/images.sh [HUSK]   (default target/release/husk)
# env:   RUNS (hyperfine runs per command, default 30), EXEC_RUNS (executes for p50/p99, default 200),
#        BENCH_EXECUTE (a built examples/bench_execute; default: built here with cargo --release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
husk=$(readlink -f "${1:-target/release/husk}")
runs=${RUNS:-30}
exec_runs=${EXEC_RUNS:-200}
rootfs_tgz=rootfs/out/busybox.tar.gz
[ -x "$husk" ] || { echo "benches/images.sh: $husk is not executable (make build)" >&2; exit 1; }
[ -f "$rootfs_tgz" ] || { echo "benches/images.sh: $rootfs_tgz missing (make rootfs)" >&2; exit 1; }
for tool in hyperfine podman containerd ctr dockerd docker jq; do
    command -v "$tool" >/dev/null || { echo "benches/images.sh: $tool not found (apt-get install hyperfine podman containerd docker.io jq)" >&2; exit 1; }
done

T=$(mktemp -d /var/tmp/husk-bench-images.XXXXXX)
# Run-time state (containers' state, bundles, sockets) on a tmpfs, where a systemd host keeps it (/run), for every
# tool alike; images stay on disk. Here /run is on the root disk, an ext4 mounted with `discard`, where every file
# replaced or removed waits for a synchronous discard (0.3-0.5 ms each, ten or more per container start). Not
# podman's: with its runroot and tmp_dir there, `podman run --rm` waited for its container's exit for minutes
# (not investigated), so they stay on disk.
R=$T/run
IMG=docker.io/library/husk-bench:latest
PIDS=()
cleanup() {
    set +e
    "$husk" --root "$R/husk-root" list -q 2>/dev/null | xargs -r -n1 "$husk" --root "$R/husk-root" delete -f
    [ -n "${PODMAN_READY:-}" ] && podman rm -af >/dev/null 2>&1 && podman rmi -af >/dev/null 2>&1
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done; kill -9 "$p" 2>/dev/null; done
    # shims and conmons started for this run carry the temp dir in their command line
    for f in /proc/[0-9]*/cmdline; do
        p=${f#/proc/}; p=${p%/cmdline}
        { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF "$T" && kill -9 "$p" 2>/dev/null
    done
    sleep 0.3
    grep -F " $T" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    # ctr puts its containers' cgroups under /<namespace>/, and runc leaves that parent behind (empty)
    for d in /sys/fs/cgroup/husk-bench /sys/fs/cgroup/*/husk-bench; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$R" && mount -t tmpfs -o mode=0755,size=2g husk-bench-run "$R"

# One tar that is both an OCI image layout and a docker-save archive, from the test rootfs.
gzip -dc "$rootfs_tgz" >"$T/rootfs.tar"
o=$T/oci; mkdir -p "$o/blobs/sha256"
L=$(sha256sum "$T/rootfs.tar" | cut -d' ' -f1); LS=$(stat -c %s "$T/rootfs.tar"); cp "$T/rootfs.tar" "$o/blobs/sha256/$L"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$L" >"$T/cfg"
C=$(sha256sum "$T/cfg" | cut -d' ' -f1); CS=$(stat -c %s "$T/cfg"); mv "$T/cfg" "$o/blobs/sha256/$C"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$C" "$CS" "$L" "$LS" >"$T/man"
M=$(sha256sum "$T/man" | cut -d' ' -f1); MS=$(stat -c %s "$T/man"); mv "$T/man" "$o/blobs/sha256/$M"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' "$M" "$MS" "$IMG" >"$o/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$o/oci-layout"
printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s"],"Layers":["blobs/sha256/%s"]}]' "$C" "$IMG" "$L" >"$o/manifest.json"
tar -C "$o" -cf "$T/image.tar" oci-layout index.json manifest.json blobs

# husk: the image in a private store, and a bundle of the same rootfs for the bundle `run`.
H="$husk --root $R/husk-root --store $T/husk-store"
$H image install --format oci --name husk-bench "$T/image.tar" >/dev/null
mkdir -p "$T/bundle/rootfs"; tar -C "$T/bundle/rootfs" -xf "$T/rootfs.tar"
(cd "$T/bundle" && "$husk" spec && jq '.process.terminal=false | .process.args=["/bin/true"]' config.json >c && mv c config.json)

# podman, containerd and docker: private instances, cgroupfs, no network.
mkdir -p "$T/podman"
# podman gives containers its own nofile and nproc limits, and sets its own nproc to 32768 (strace), so asking for
# more needs CAP_SYS_RESOURCE, which a container host may lack ("crun: setrlimit RLIMIT_NPROC: Operation not
# permitted"): ask for the hard nofile limit and at most 32768 processes.
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
cat >"$T/podman/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/podman/events.log"
tmp_dir = "$T/podman/tmp"
static_dir = "$T/podman/storage/libpod"
volume_path = "$T/podman/storage/volumes"
[network]
network_config_dir = "$T/podman/networks"
EOF
printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' "$T/podman/runroot" "$T/podman/storage" >"$T/podman/storage.conf"
export CONTAINERS_CONF=$T/podman/containers.conf CONTAINERS_STORAGE_CONF=$T/podman/storage.conf
podman load -q -i "$T/image.tar" >/dev/null; PODMAN_READY=1
mkdir -p "$T/containerd"
printf 'version = 2\nroot = "%s"\nstate = "%s"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s"\n' \
    "$T/containerd/root" "$R/containerd/state" "$T/containerd/sock" "$T/containerd/sock.ttrpc" >"$T/containerd/config.toml"
containerd --config "$T/containerd/config.toml" >"$T/containerd/log" 2>&1 & PIDS+=($!)
CTR="ctr -a $T/containerd/sock -n husk-bench"
for _ in $(seq 150); do $CTR version >/dev/null 2>&1 && break; sleep 0.2; done
$CTR image import "$T/image.tar" >/dev/null
mkdir -p "$T/docker"
cat >"$T/docker/daemon.json" <<EOF
{"data-root": "$T/docker/data", "exec-root": "$R/docker/exec", "pidfile": "$T/docker/pid",
 "hosts": ["unix://$T/docker/sock"], "bridge": "none", "iptables": false, "ip6tables": false, "ip-forward": false,
 "ip-masq": false, "storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"]}
EOF
dockerd --config-file "$T/docker/daemon.json" >"$T/docker/log" 2>&1 & PIDS+=($!)
DOCKER="docker -H unix://$T/docker/sock"
for _ in $(seq 300); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.2; done
$DOCKER load -q -i "$T/image.tar" >/dev/null

# The library's execute: p50/p99 of /bin/true and 20 concurrent (examples/bench_execute.rs, which installs the same
# rootfs, as a rootfs tar, in a store of its own).
# BENCH_EXECUTE: an already built examples/bench_execute (its release LTO link takes minutes on a loaded machine).
example=${BENCH_EXECUTE:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/examples/bench_execute}
if [ -z "${BENCH_EXECUTE:-}" ]; then
    cargo build --release --example bench_execute >/dev/null 2>&1 || { echo "benches/images.sh: cannot build examples/bench_execute" >&2; exit 1; }
fi
[ -x "$example" ] || { echo "benches/images.sh: $example is not executable" >&2; exit 1; }
exec_out=$("$example" "$rootfs_tgz" "$T/exec-store" "$R/exec-root" "$exec_runs")
p50=$(sed -n 's/^execute p50 \([0-9.]*\) p99.*/\1/p' <<<"$exec_out")
p99=$(sed -n 's/^execute p50 [0-9.]* p99 \([0-9.]*\).*/\1/p' <<<"$exec_out")
concurrent=$(sed -n 's/^execute 20 concurrent \([0-9.]*\)$/\1/p' <<<"$exec_out")

# `run` deletes its container when the process exits (as runc's does), so one id serves every run.
hyperfine -N --warmup 3 --runs "$runs" --export-json "$T/hyperfine.json" \
    -n "husk run (bundle)" "$H run --bundle $T/bundle bench-bundle" \
    -n "husk run --image" "$H run --image husk-bench bench-image -- /bin/true" \
    -n "podman run --rm" "podman run --rm --network none $IMG /bin/true" \
    -n "ctr run --rm" "$CTR run --rm $IMG bench /bin/true" \
    -n "docker run --rm" "$DOCKER run --rm --network none $IMG /bin/true" >/dev/null
mkdir -p benches/results
out=benches/results/images-$(date -u +%Y%m%dT%H%M%SZ).md
{
    echo "| scenario | median ms | mean ms | ratio to husk run (bundle) |"
    echo "|---|---|---|---|"
    jq -r '.results as $r | ($r[0].median) as $base | $r[] | "| \(.command) | \(.median*1000|.*100|round/100) | \(.mean*1000|.*100|round/100) | \(.median/$base|.*100|round/100)x |"' "$T/hyperfine.json"
    echo "| execute /bin/true, p50 (n=$exec_runs) | $p50 | | |"
    echo "| execute /bin/true, p99 (n=$exec_runs) | $p99 | | |"
    echo "| 20 concurrent executes, wall | $concurrent | | |"
} | tee "$out"
echo "benches/images.sh: table saved in $out"
