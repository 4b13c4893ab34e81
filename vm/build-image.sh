#!/usr/bin/env bash
# Builds the VM lane's Debian 12 image: systemd as PID 1 on a pure cgroup v2 hierarchy (Debian 12's default), the
# stock kernel (6.1), a minimal initramfs and a unit that runs the script the host shares over 9p at boot.
#
#   vm/build-image.sh OUT_DIR     writes OUT_DIR/{disk.raw,vmlinuz,initrd.img}
#
# Everything comes from Debian's archive through debootstrap, so the image follows the recipe, not the host. The
# caller (the Makefile) keys OUT_DIR by a hash of this file, so the image is rebuilt only when the recipe changes.
set -euo pipefail

out=${1:?usage: vm/build-image.sh OUT_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mirror=${HUSK_VM_MIRROR:-$(grep -hoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
    2>/dev/null | head -n 1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}

# debootstrap resolves no virtual packages: name real ones.
packages=(
    systemd systemd-sysv udev dbus linux-image-amd64 initramfs-tools kmod
    procps util-linux iproute2 e2fsprogs ca-certificates
    # The clients lane (vm/clients-smoke.sh): podman, containerd and docker at their defaults on a systemd host, and
    # busybox-static for the image they run. runc is there to compare with.
    podman conmon crun netavark aardvark-dns containerd docker.io runc iptables busybox-static
    # Debian's kernel enables AppArmor: with apparmor_parser there, docker and podman confine containers by default.
    apparmor
)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/husk-vm-build.XXXXXX")
root=$work/root
chroot_mounts=()
cleanup() {
    local m
    for ((i = ${#chroot_mounts[@]} - 1; i >= 0; i--)); do
        m=${chroot_mounts[i]}
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

echo "vm: debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" bookworm "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }

# The guest's configuration.
echo husk-vm >"$root/etc/hostname"
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' >"$root/etc/fstab"
# A first boot (empty machine-id) would start systemd-firstboot's console prompt: keep debootstrap's id, and mask it.
ln -sf /dev/null "$root/etc/systemd/system/systemd-firstboot.service"
# Nothing in the lane needs these at boot, and they cost boot time under emulation. The clients' daemons are among
# them: the clients lane starts its own, with private configurations.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer \
    systemd-timesyncd.service containerd.service docker.service docker.socket podman.socket \
    podman-restart.service podman-auto-update.timer podman-clean-transient.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

install -m 0755 "$here/guest-boot.sh" "$root/usr/local/sbin/husk-vm-boot"
cat >"$root/etc/systemd/system/husk-vm-lane.service" <<'UNIT'
[Unit]
Description=husk VM lane: run the script shared by the host, then power off
After=multi-user.target
Wants=multi-user.target

[Service]
# exec, not oneshot: a oneshot in multi-user.target would make `systemctl is-system-running --wait` wait for itself.
Type=exec
ExecStart=/usr/local/sbin/husk-vm-boot
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/husk-vm-lane.service "$root/etc/systemd/system/multi-user.target.wants/husk-vm-lane.service"

# A minimal initramfs: only what finds and mounts the root disk (about 7 MB instead of 37, and seconds of boot).
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >>"$root/etc/initramfs-tools/modules"
for fs in proc sys dev; do
    mount --rbind "/$fs" "$root/$fs"
    mount --make-rslave "$root/$fs"
    chroot_mounts+=("$root/$fs")
done
chroot "$root" update-initramfs -u -k all >"$work/initramfs.log" 2>&1 || { cat "$work/initramfs.log" >&2; exit 1; }
for ((i = ${#chroot_mounts[@]} - 1; i >= 0; i--)); do umount -R "${chroot_mounts[i]}"; done
chroot_mounts=()
chroot "$root" apt-get clean

mkdir -p "$out"
cp "$(readlink -f "$root/vmlinuz")" "$out/vmlinuz.tmp"
cp "$(readlink -f "$root/initrd.img")" "$out/initrd.img.tmp"
rm -f "$out/disk.raw.tmp"
mkfs.ext4 -q -L husk-vm -d "$root" "$out/disk.raw.tmp" 3G
for f in vmlinuz initrd.img disk.raw; do mv "$out/$f.tmp" "$out/$f"; done
echo "vm: image ready in $out ($(du -h --apparent-size "$out/disk.raw" | cut -f1) disk, $(du -h "$out/disk.raw" | cut -f1) used)"
