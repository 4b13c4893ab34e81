#!/usr/bin/env bash
# `make test-vm`: runs integration test binaries (built on the host, static) inside the VM lane's Debian 12 guest:
# systemd as PID 1, pure cgroup v2, kernel 6.1, a second kernel besides the development host's.
#
#   vm/test-lane.sh IMAGE_DIR TEST_NAME...
#
# Each TEST_NAME is a test target (tests/NAME.rs); its release binary is built here and run in the guest with
# HUSK_ROOTFS pointing at the shared busybox rootfs. Extra arguments for every test binary (filters, --skip) come
# from VM_TEST_ARGS. The husk they drive is target/release/husk (HUSK_VM_RUNTIME overrides it), copied into the guest.
set -euo pipefail

image=${1:?usage: vm/test-lane.sh IMAGE_DIR TEST_NAME...}
shift
[ $# -gt 0 ] || { echo "vm: no test targets named" >&2; exit 1; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

targets=()
for name in "$@"; do targets+=(--test "$name"); done
# --workspace as in `make test`: the same feature set, so the binaries it built are reused, not rebuilt.
mapfile -t binaries < <(cargo test --release --workspace "${targets[@]}" --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null and .target.kind == ["test"]) |
        "\(.target.name) \(.executable)"')
[ ${#binaries[@]} -eq "$#" ] || {
    echo "vm: expected $# test binaries, cargo built ${#binaries[@]}: ${binaries[*]}" >&2
    exit 1
}

runtime=$(readlink -f "${HUSK_VM_RUNTIME:-target/release/husk}")
[ -x "$runtime" ] || { echo "vm: no husk binary at $runtime (make build)" >&2; exit 1; }
lane_script=$(mktemp "$repo/target/vm/test-lane.XXXXXX.sh")
trap 'rm -f "$lane_script"' EXIT
{
    echo 'set -u'
    echo "export HUSK_ROOTFS='$repo/rootfs/out/busybox'"
    # husk runs from the guest's own disk: 9p has no page cache, so every exec from the share reads the whole binary
    # again (about 60 s per container operation with a debug build).
    echo "install -m 0755 '$runtime' /usr/local/bin/husk && export HUSK_TEST_RUNTIME=/usr/local/bin/husk || exit 1"
    echo 'failed=""'
    for entry in "${binaries[@]}"; do
        name=${entry%% *}
        binary=${entry#* }
        echo "echo \"== tests/$name.rs\""
        echo "'$binary' --test-threads=2 ${VM_TEST_ARGS:-} || failed=\"\$failed $name\""
    done
    echo 'if [ -n "$failed" ]; then echo "vm lane: failed:$failed"; exit 1; fi'
    echo 'echo "vm lane: all test binaries passed"'
} >"$lane_script"
vm/run.sh "$image" "$lane_script" "${VM_TEST_TIMEOUT:-1500}"
