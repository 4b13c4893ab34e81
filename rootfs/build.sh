#!/usr/bin/env bash
# Builds the busybox test/demo root filesystem (see rootfs/README.md).
#
# Outputs, under rootfs/out/ (gitignored):
#   busybox/         the rootfs as a directory tree
#   busybox.tar.gz   the same tree as an image layer tarball (sorted, numeric owners, fixed mtimes)
#
# Idempotent: when the inputs (this script, the busybox binary and the optional probe binary) are unchanged and
# the outputs are present, it only prints "up to date" and exits.
set -euo pipefail

script_dir=$(cd "$(dirname "$0")" && pwd)
out_dir=$script_dir/out
tree=$out_dir/busybox
tarball=$out_dir/busybox.tar.gz
stamp=$out_dir/.busybox.stamp
manifest=$out_dir/.busybox.manifest
probe=$out_dir/probe
busybox=/bin/busybox

die() { echo "rootfs/build.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (the tree holds files owned by uid 1000)"

# /bin/busybox comes from busybox-static; the dynamic `busybox` package would install a binary that cannot run
# inside a rootfs without libc.
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
    echo "rootfs/build.sh: installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static; }
fi
[ -x "$busybox" ] || die "$busybox missing after installing busybox-static"
# An ELF file that ldd refuses ("not a dynamic executable") needs no loader or libraries.
if [ "$(head -c 4 "$busybox" | od -An -tx1 | tr -d ' \n')" != 7f454c46 ] || ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is not a static ELF binary (is the dynamic 'busybox' package installed instead of busybox-static?)"
fi

inputs_digest() {
    {
        sha256sum "$script_dir/build.sh" "$busybox"
        if [ -f "$probe" ]; then sha256sum "$probe"; else echo "no probe"; fi
    } | sed 's|  .*/|  |' | sha256sum | cut -d' ' -f1
}
digest=$(inputs_digest)

# Path, type, mode, owner, size and link target of every entry: notices a tree that a test has modified.
tree_manifest() { (cd "$1" && find . -printf '%P\t%y\t%m\t%U:%G\t%s\t%l\n' | LC_ALL=C sort); }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && [ -f "$tarball" ] && [ -d "$tree" ] &&
    cmp -s "$busybox" "$tree/bin/busybox" && [ -f "$manifest" ] &&
    tree_manifest "$tree" | cmp -s - "$manifest"; then
    echo "rootfs/build.sh: $tree is up to date"
    exit 0
fi

mkdir -p "$out_dir"
staging=$(mktemp -d "$out_dir/.busybox.XXXXXX")
trap 'rm -rf "$staging" "$staging.tar.gz"' EXIT
root=$staging/tree
mkdir "$root"

# Directories. Mode 0755 unless stated.
(
    cd "$root"
    mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev root home/user var/run run mnt tmp
    chmod 0755 bin sbin usr usr/bin usr/sbin etc proc sys dev home var var/run run mnt
    chmod 0700 root
    chmod 1777 tmp
    chown 1000:1000 home/user
    chmod 0755 home/user
)

install -m 0755 "$busybox" "$root/bin/busybox"

# Every applet gets a link in bin/; those busybox itself places in sbin/ or usr/sbin/ also get one in sbin/, so
# both PATH-style lookups and absolute paths such as /sbin/ifconfig work.
"$busybox" --list-full | while read -r path; do
    applet=${path##*/}
    case $applet in busybox | linuxrc | "") continue ;; esac
    ln -sfn busybox "$root/bin/$applet"
    case $path in sbin/* | usr/sbin/*) ln -sfn ../bin/busybox "$root/sbin/$applet" ;; esac
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
user:x:1000:
extra1:x:1001:
extra2:x:1002:
nogroup:x:65534:
EOF
echo husk >"$root/etc/hostname"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/hostname"

# Optional extra binary, built elsewhere.
if [ -f "$probe" ]; then install -D -m 0755 "$probe" "$root/usr/bin/probe"; fi

# Image tarball: entries sorted by name, without a "./" prefix, numeric owners, every mtime 0 and gzip without a
# timestamp, so identical inputs give an identical file.
(
    cd "$root"
    # shellcheck disable=SC2046 # top-level names contain no whitespace
    LC_ALL=C tar --create --format=gnu --sort=name --numeric-owner --mtime=@0 \
        --file=- $(LC_ALL=C ls -A)
) | gzip -n -9 >"$staging.tar.gz"

# Swap the new outputs in. A mount left under the old tree (a test that used it as a container root and leaked a
# mount) must not be recursed into by rm.
if [ -d "$tree" ]; then
    tree_real=$(readlink -f "$tree")
    if awk -v t="$tree_real" '$5 == t || index($5, t "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        die "something is mounted under $tree; unmount it first (findmnt -R $tree_real)"
    fi
    rm -rf --one-file-system "$tree"
fi
mv "$root" "$tree"
mv "$staging.tar.gz" "$tarball"
tree_manifest "$tree" >"$manifest"
echo "$digest" >"$stamp"
echo "rootfs/build.sh: built $tree ($(find "$tree" | wc -l) entries) and $tarball"
