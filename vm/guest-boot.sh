#!/bin/sh
# Runs in the VM at boot (husk-vm-lane.service): mounts the host's 9p shares, runs the lane script the host put in
# the `lane` share with the repository mounted read-only at the host's own path (test binaries name their husk by
# absolute path), writes the output and exit code back, and powers off whatever happened.
set -u
lane=/run/husk-lane
finish() {
    sync
    systemctl poweroff --no-block
    exit 0
}
mkdir -p "$lane"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 lane "$lane"; then
    echo "husk-vm-boot: cannot mount the lane share" >/dev/console
    finish
fi
repo=$(cat "$lane/repo-path")
mkdir -p "$repo"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,ro repo "$repo"; then
    echo "husk-vm-boot: cannot mount the repository share at $repo" >"$lane/output.log"
    echo 125 >"$lane/exit-code"
    finish
fi
# The lane runs on a booted system: units settled, D-Bus up (degraded is fine: some units need hardware).
timeout 120 systemctl is-system-running --wait >"$lane/system-state" 2>&1
{
    echo "guest: $(uname -r), $(stat -fc %T /sys/fs/cgroup) at /sys/fs/cgroup, PID 1 $(cat /proc/1/comm)," \
        "system $(cat "$lane/system-state")"
    cd "$repo" && timeout "$(cat "$lane/timeout")" sh "$lane/lane.sh"
} >"$lane/output.log" 2>&1
echo $? >"$lane/exit-code"
finish
