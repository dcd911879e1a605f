#!/bin/bash
# Builds the shared guest root filesystem (Debian bookworm shaped like a XenServer dom0's
# toolset) as a tarball: rootfs.sh OUT.tar
set -euo pipefail
. "$(dirname "$0")/common.sh"
OUT=$1
WORK=$(mktemp -d /var/tmp/xenraid-rootfs.XXXXXX)
trap 'cleanup_mounts; rm -rf "$WORK"' EXIT
MIRROR=$(debian_mirror)
T0=$(ts)
# kernel/dracut/grub come with apt afterwards: debootstrap would take linux-image's first
# alternative (initramfs-tools), which conflicts with dracut.
debootstrap --variant=minbase bookworm "$WORK/root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -30 "$WORK/debootstrap.log"; exit 1; }
log "debootstrap $(echo "$(ts) - $T0" | bc) s"
R=$WORK/root
echo "deb $MIRROR bookworm main" >"$R/etc/apt/sources.list"
mount_track --bind /dev "$R/dev"; mount_track -t proc proc "$R/proc"; mount_track -t sysfs sys "$R/sys"
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"; chmod +x "$R/usr/sbin/policy-rc.d"
cat >"$R/tmp/debconf.sel" <<'DS'
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
mdadm mdadm/initrdstart string all
mdadm mdadm/autocheck boolean false
mdadm mdadm/start_daemon boolean false
DS
chroot "$R" debconf-set-selections /tmp/debconf.sel
chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$WORK/apt.log" 2>&1
# grub-pc-bin + grub-efi-amd64-bin (not grub-pc/grub-efi, which conflict): one root for
# the BIOS and the UEFI guests; grub-install picks the target.
chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  linux-image-amd64 dracut dracut-core grub-pc-bin grub-efi-amd64-bin grub2-common \
  extlinux syslinux-common mdadm gdisk fdisk lvm2 e2fsprogs dosfstools efibootmgr \
  systemd-sysv udev kmod util-linux procps iproute2 less acl attr \
  msmtp-mta rpm openssh-server python3 python3-apt \
  >>"$WORK/apt.log" 2>&1 || { tail -40 "$WORK/apt.log"; exit 1; }
log "apt $(echo "$(ts) - $T0" | bc) s"
# rpm: the package scenario installs xenraid's RPM as dom0 would (Debian's rpm, --nodeps).
# openssh-server, python3, python3-apt: the Ansible scenario drives guests over SSH (the apt
# module needs python3-apt). msmtp-mta is /usr/sbin/sendmail for mdadm --monitor (the monitor scenario compares it with
# xenraid's); its own daemon is not wanted in the guests.
chroot "$R" systemctl disable msmtpd.service >/dev/null 2>&1 || true
rm -f "$R/usr/sbin/policy-rc.d" "$R/tmp/debconf.sel"
chroot "$R" apt-get clean
rm -rf "$R/var/lib/apt/lists/"*
# the image recipes build initramfs images themselves, per layout
rm -f "$R"/boot/initrd.img-*
cleanup_mounts
tar -C "$R" --numeric-owner --xattrs --acls -cf "$OUT.tmp" .
mv "$OUT.tmp" "$OUT"
log "rootfs done $(echo "$(ts) - $T0" | bc) s, $(du -h "$OUT" | cut -f1)"
