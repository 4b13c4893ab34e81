#!/usr/bin/env bash
# `make test-vm-clients`: podman, containerd (ctr) and docker drive husk inside the VM lane's guest (systemd as PID 1,
# pure cgroup v2), at their defaults on such a host: the systemd cgroup driver (vm/clients-smoke.sh).
#
#   vm/clients-lane.sh IMAGE_DIR RUNTIME [DRIVER...]
#
# RUNTIME is the husk binary (static, under the repository, which the guest sees at the same path). DRIVERs are
# systemd (the default) and/or cgroupfs: one smoke run each.
set -euo pipefail

image=${1:?usage: vm/clients-lane.sh IMAGE_DIR RUNTIME [DRIVER...]}
runtime=$(readlink -f "${2:?usage: vm/clients-lane.sh IMAGE_DIR RUNTIME [DRIVER...]}")
shift 2
drivers=("${@:-systemd}")
[ ${#drivers[@]} -gt 0 ] || drivers=(systemd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case $runtime in "$repo"/*) ;; *) echo "vm: $runtime is not under $repo, which is all the guest sees" >&2; exit 1 ;; esac

lane_script=$(mktemp "$repo/target/vm/clients-lane.XXXXXX.sh")
trap 'rm -f "$lane_script"' EXIT
{
    echo 'set -u'
    # Under emulation a client command takes seconds, not tenths; one timed run per client is enough.
    echo "export SMOKE_NO_INSTALL=1 SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-240} SMOKE_TIMING_RUNS=${SMOKE_TIMING_RUNS:-1}"
    # The clients exec husk from the guest's own disk: 9p has no page cache.
    echo "install -m 0755 '$runtime' /usr/local/bin/husk || exit 1"
    echo 'failed=""'
    for driver in "${drivers[@]}"; do
        echo "echo '== clients with the $driver cgroup driver'"
        echo "SMOKE_CGROUP_DRIVER=$driver bash '$repo/vm/clients-smoke.sh' /usr/local/bin/husk all || failed=\"\$failed $driver\""
    done
    echo 'if [ -n "$failed" ]; then echo "vm clients lane: failed:$failed"; exit 1; fi'
    echo 'echo "vm clients lane: all passed"'
} >"$lane_script"
vm/run.sh "$image" "$lane_script" "${VM_CLIENTS_TIMEOUT:-1500}"
