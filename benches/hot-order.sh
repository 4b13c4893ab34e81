#!/usr/bin/env bash
# Regenerates build/hot-functions.txt: the functions of husk that the lifecycle scenarios execute,
# in order of first execution, for the link step that places them first in .text.
#
# usage: benches/hot-order.sh          (as root; also `make hot-order`)
#
# Builds husk as `make build` does, then traces the shipped binary with benches/hotpath (husk-hotpath,
# ptrace single-stepping; names from the symbols build/link-husk kept before stripping)
# the scenarios that ../shared/tools/lifecycle-bench.sh measures:
#   run      husk run of /bin/true
#   create   husk create + start, wait for the exit, husk delete
#   exec     husk exec of /bin/true into a running `sleep` container (started and deleted untraced)
# The list is run's functions, then the ones the other scenarios add. Tracing is slow: a few
# minutes per scenario. Every container and the state dir are removed on exit.
set -euo pipefail

die() { echo "hot-order.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
for tool in cargo jq nm; do command -v "$tool" >/dev/null || die "$tool not found"; done

# lifecycle-bench.sh runs every runtime in a private mount namespace where cgroup2's controller list
# is masked by an empty file (crun refuses a hybrid host otherwise). husk reads that file, so trace it
# under the same conditions.
unified=/sys/fs/cgroup/unified/cgroup.controllers
mntns=$(readlink /proc/self/ns/mnt)
if [ -r $unified ] && [ -n "$(cat $unified 2>/dev/null)" ]; then
    if [[ ${HOT_ORDER_NS:-} != mnt:* || $HOT_ORDER_NS == "$mntns" ]]; then
        HOT_ORDER_NS=$mntns exec unshare --mount --propagation private bash "$0" "$@"
    fi
    empty=$(mktemp /tmp/hot-order.empty.XXXXXX)
    mount --bind "$empty" $unified
    rm -f "$empty"
fi

echo "== building the workspace (make build)" >&2
make --no-print-directory build
build_dir=$repo/target/x86_64-unknown-linux-gnu/release
husk=$build_dir/husk
tracer=$build_dir/husk-hotpath
# The bin is a hard link of deps/husk-<hash>; the link step left that file's symbols beside it.
linked=$(find "$build_dir/deps" -maxdepth 1 -name 'husk-*' -samefile "$husk" | head -n 1)
symbols=$linked.symbols
[ -n "$linked" ] && [ -s "$symbols" ] ||
    die "no symbols of $husk from build/link-husk (expected $symbols)"
[ -d rootfs/out/busybox ] || make rootfs

# State dirs of earlier runs killed before their trap ran.
for dir in /run/husk-hot-order.*/; do
    [ -d "$dir" ] || continue
    pid=${dir%/}
    pid=${pid##*.}
    read -r _ _ st _ <"/proc/$pid/stat" 2>/dev/null && [ "$st" != Z ] && continue
    for id in $(ls "$dir"); do "$husk" --root "$dir" delete -f "$id" >/dev/null 2>&1 || true; done
    rm -rf "$dir"
done

root=/run/husk-hot-order.$$
work=$(mktemp -d /tmp/husk-hot-order.XXXXXX)
id=hot$$
cleanup() {
    set +e
    if [ -d "$root" ]; then
        for c in $({ "$husk" --root "$root" list -q 2>/dev/null; ls "$root"; } | sort -u); do
            "$husk" --root "$root" delete -f "$c" >/dev/null 2>&1
        done
    fi
    rm -rf "$root" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$root"

cp -a rootfs/out/busybox "$work/rootfs"
"$husk" spec --bundle "$work"
mkbundle() { # mkbundle DIR ARGS_JSON
    mkdir -p "$1"
    jq --arg rootfs "$work/rootfs" --argjson args "$2" \
        '.process.terminal = false | .process.args = $args | .root.path = $rootfs' \
        "$work/config.json" >"$1/config.json"
}
mkbundle "$work/b-true" '["/bin/true"]'
mkbundle "$work/b-sleep" '["/bin/sleep", "infinity"]'

# Scenario b of lifecycle-bench.sh: create, start, wait until the process is gone (a zombie counts),
# delete. Arguments: husk root bundle id pidfile.
cat >"$work/lifecycle.sh" <<'EOF'
set -e
"$1" --root "$2" create --bundle "$3" --pid-file "$5" "$4" </dev/null >/dev/null
read -r pid <"$5" || [ -n "$pid" ]
"$1" --root "$2" start "$4"
while read -r _ _ s _ 2>/dev/null <"/proc/$pid/stat" && [ "$s" != Z ]; do :; done
"$1" --root "$2" delete "$4"
EOF

trace() { # trace NAME COMMAND...: the functions of husk that COMMAND executes, into $work/NAME.txt
    local name=$1
    shift
    echo "== tracing $name: $* ($(date +%T))" >&2
    "$tracer" --binary "$husk" --symbols "$symbols" --out "$work/$name.txt" -- "$@" </dev/null
}
trace run "$husk" --root "$root" run --bundle "$work/b-true" "$id-run"
trace create sh "$work/lifecycle.sh" "$husk" "$root" "$work/b-true" "$id-create" "$work/create.pid"
"$husk" --root "$root" run -d --bundle "$work/b-sleep" "$id-sleep" </dev/null >/dev/null
trace exec "$husk" --root "$root" exec "$id-sleep" /bin/true
"$husk" --root "$root" delete -f "$id-sleep"

out=build/hot-functions.txt
mkdir -p build
source=$(git rev-parse --short HEAD)
[ -z "$(git status --porcelain -- src init Cargo.toml Cargo.lock .cargo)" ] || source="$source with uncommitted changes"
{
    echo "# husk's hot functions: those that \`husk run\` of /bin/true executes, in order of first execution,"
    echo "# then those that create+start+delete and exec of /bin/true add (the lifecycle-bench.sh scenarios)."
    echo "# One symbol per line, as linked; build/link-husk matches a Rust name whose hash has moved without it."
    echo "# Traced with benches/hotpath (husk-hotpath) from husk at $source, $(rustc --version)."
    echo "# Regenerate (as root, several minutes): make hot-order   (runs benches/hot-order.sh)"
    awk '!seen[$0]++' "$work/run.txt" "$work/create.txt" "$work/exec.txt"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "hot-order.sh: $(grep -vc '^#' "$out") functions in $out" \
    "(run $(wc -l <"$work/run.txt"), create $(wc -l <"$work/create.txt"), exec $(wc -l <"$work/exec.txt"))" >&2
