#!/usr/bin/env bash
# Installs what the VM lane needs on the host: debootstrap, mkfs.ext4 and QEMU.
#
# QEMU must match the installed qemu-utils: where that comes from bookworm-backports (as on the development and CI
# machines), the plain bookworm qemu-system-x86 conflicts with it, so it is installed from bookworm-backports too,
# through a sources file of our own on the host's Debian mirror. Backports are pinned low by Debian, so nothing else
# on the host changes.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for pkg in debootstrap e2fsprogs zstd; do have "$pkg" || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }
fi

if ! have qemu-system-x86; then
    utils_version=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
    if [[ "$utils_version" == *bpo12* ]]; then
        mirror=$(grep -hoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
            head -n 1 || true)
        mirror=${mirror:-http://deb.debian.org/debian}
        cat >/etc/apt/sources.list.d/husk-vm-backports.sources <<SOURCES
Types: deb
URIs: ${mirror%/}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
        apt-get update
        apt-get install -y -t bookworm-backports qemu-system-x86
    else
        apt-get install -y qemu-system-x86 || { apt-get update && apt-get install -y qemu-system-x86; }
    fi
fi
command -v qemu-system-x86_64 >/dev/null || { echo "host-deps: qemu-system-x86_64 missing after install" >&2; exit 1; }
