#!/bin/bash
# Idempotent: installs everything the build, the unit tests and the QEMU lab need,
# from Debian's packages and crates.io only. Safe to run again (seconds when done).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PKGS=(
  qemu-system-x86 qemu-utils ovmf          # the lab's machines (TCG), BIOS and UEFI firmware
  debootstrap gdisk fdisk e2fsprogs dosfstools mtools util-linux kmod cpio zstd
  extlinux syslinux-common                 # the 6.5 profile: extlinux + gptmbr.bin
  grub-pc-bin grub-efi-amd64-bin grub2-common   # host-side EFI image for the UEFI guest
  musl-tools                               # static x86_64-unknown-linux-musl build
  ca-certificates
  python3-aiosmtpd openssl                 # a real SMTP server (STARTTLS, AUTH) for the alert tests
  rpm binutils man-db groff-base bsdextrautils   # package.sh / check-package.sh: rpmbuild, readelf, man, col
  python3-venv openssh-client               # the Ansible scenario: its controller venv, ssh to the guests
)

installed_version() { dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null | awk '/ok installed/{print $4}'; }
missing=()
for p in "${PKGS[@]}"; do
  [ -n "$(installed_version "$p")" ] || missing+=("$p")
done
# Debian's qemu-system-x86 needs qemu-utils of its own version; a machine that carries a
# newer backported qemu-utils would lose qemu-img, so ask for the matching one explicitly.
if [ "$(installed_version qemu-utils)" != "$(installed_version qemu-system-x86)" ]; then
  missing+=(qemu-utils)
fi
if ((${#missing[@]})); then
  apt-get update -q
  sysver=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/{print $2}')
  want=()
  for p in "${missing[@]}"; do
    case $p in qemu-utils | qemu-system-x86) want+=("$p=$sysver") ;; *) want+=("$p") ;; esac
  done
  apt-get install -y -q --no-install-recommends --allow-downgrades "${want[@]}"
fi

if command -v rustup >/dev/null; then
  rustup target list --installed | grep -q x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl
  for c in rustfmt clippy; do
    rustup component list --installed | grep -q "^$c" || rustup component add "$c"
  done
fi
echo "setup: ok"
