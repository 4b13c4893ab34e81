#!/usr/bin/env bash
# Boots the VM lane's image under QEMU, runs a script inside it and reports its output and exit status.
#
#   vm/run.sh IMAGE_DIR LANE_SCRIPT [TIMEOUT_SECONDS]
#
# The script runs as root in the guest, from the repository (shared read-only over 9p at the host's own path). The
# disk is a snapshot: every boot starts from the pristine image. QEMU runs under TCG: /dev/kvm on these machines is
# a software stand-in that Debian's kernel does not boot under (../shared/VM-NOTES.md). The VM is stopped whatever
# happens; a guest that does not boot or finish in time fails the run with the end of its console log.
set -euo pipefail

image=${1:?usage: vm/run.sh IMAGE_DIR LANE_SCRIPT [TIMEOUT_SECONDS]}
script=${2:?usage: vm/run.sh IMAGE_DIR LANE_SCRIPT [TIMEOUT_SECONDS]}
script_timeout=${3:-1200}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for f in vmlinuz initrd.img disk.raw; do
    [ -f "$image/$f" ] || { echo "vm: $image/$f missing: build the image with \`make vm\`" >&2; exit 1; }
done

lane=$(mktemp -d "$repo/target/vm/lane.XXXXXX")
cleanup() { rm -rf --one-file-system "$lane"; }
trap cleanup EXIT
cp "$script" "$lane/lane.sh"
echo "$repo" >"$lane/repo-path"
echo "$script_timeout" >"$lane/timeout"

# Boot (15-40 s on a quiet machine, minutes on a loaded one) plus the script, plus shutdown.
boot_budget=${HUSK_VM_BOOT_BUDGET:-420}
start=$SECONDS
set +e
timeout --kill-after=15 $((boot_budget + script_timeout)) \
    qemu-system-x86_64 \
    -machine q35,accel=tcg -cpu max -smp 2 -m 4096 \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=0" \
    -drive "file=$image/disk.raw,format=raw,if=virtio,snapshot=on" \
    -virtfs "local,path=$lane,mount_tag=lane,security_model=none" \
    -virtfs "local,path=$repo,mount_tag=repo,security_model=none,readonly=on" \
    -nic none -display none -monitor none -serial "file:$lane/console.log" -no-reboot
qemu_status=$?
set -e
elapsed=$((SECONDS - start))

if [ ! -f "$lane/exit-code" ]; then
    echo "vm: the guest did not finish the lane (qemu status $qemu_status after ${elapsed}s); console log ends:" >&2
    tail -n 60 "$lane/console.log" >&2 || true
    [ -f "$lane/output.log" ] && { echo "vm: lane output so far:" >&2; tail -n 60 "$lane/output.log" >&2; }
    exit 1
fi
cat "$lane/output.log"
status=$(cat "$lane/exit-code")
echo "vm: lane exited $status; boot, lane and power-off took ${elapsed}s"
exit "$status"
