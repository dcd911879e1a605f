#!/bin/bash
# Lays out a plain Debian 12 system disk, as debian-installer's guided "use entire disk"
# makes it on a BIOS machine with a GPT disk: p1 BIOS boot (1 MiB), p2 / (ext4), p3 swap;
# fstab by UUID; GRUB2 driven by grub-mkconfig (run by the provisioning boot, which sees
# the disk as the guest does). dracut builds the initramfs (Debian's alternative to
# initramfs-tools; the shared rootfs has dracut).
#   image-debian.sh PROFILE ROOTFS.tar OUTDIR      (PROFILE: debian-bios)
# A recipe of its own so that the XenServer images' cache keys do not change with it.
set -euo pipefail
. "$(dirname "$0")/common.sh"
PROFILE=$1 ROOTFS=$2 OUT=$3
[ "$PROFILE" = debian-bios ] || { echo "unknown profile $PROFILE" >&2; exit 2; }
GUEST=$(cd "$(dirname "$0")/../guest" && pwd)
mkdir -p "$OUT"
IMG=$OUT/disk.raw
MNT=$(mktemp -d /var/tmp/xenraid-mnt.XXXXXX)
trap 'cleanup_mounts; rmdir "$MNT" 2>/dev/null || true' EXIT
T0=$(ts)
# a label only so the lab's first boot can check which filesystem is /; fstab uses UUIDs
ROOT_LABEL=debroot-$(label_suffix)
SYSTEM_SERIAL=XRLAB-SYS0

rm -f "$IMG"; truncate -s 4G "$IMG"
sgdisk -n1:2048:+1M -t1:ef02 \
  -n2:0:+2560M -t2:8300 \
  -n3:0:+256M -t3:8200 "$IMG" >/dev/null
P2=$(part_loop "$IMG" 2); P3=$(part_loop "$IMG" 3)
mkfs.ext4 -q -L "$ROOT_LABEL" "$P2"
mkswap "$P3" >/dev/null
ROOT_UUID=$(blkid -s UUID -o value "$P2"); SWAP_UUID=$(blkid -s UUID -o value "$P3")
mount_track "$P2" "$MNT"
tar -C "$MNT" --numeric-owner --xattrs --acls -xf "$ROOTFS"
log "rootfs unpacked $(echo "$(ts) - $T0" | bc) s"
KVER=$(ls "$MNT/lib/modules" | sort -V | tail -1)

echo debhost >"$MNT/etc/hostname"
chroot "$MNT" passwd -d root >/dev/null
install -m755 "$GUEST/xenraid-lab-agent" "$MNT/usr/local/sbin/"
install -m644 "$GUEST/xenraid-lab-agent.service" "$MNT/etc/systemd/system/"
chroot "$MNT" systemctl enable xenraid-lab-agent.service >/dev/null 2>&1
# Debian's mdadm-shutdown.service reruns dracut at every shutdown (minutes under TCG).
chroot "$MNT" systemctl mask mdadm-shutdown.service >/dev/null 2>&1
chroot "$MNT" systemctl mask serial-getty@ttyS0.service >/dev/null 2>&1
# No XenServer here: no inventory, no xe.
rm -f "$MNT/etc/xensource-inventory" "$MNT/usr/bin/xe"
cat >"$MNT/etc/fstab" <<FS
# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=$ROOT_UUID /               ext4    errors=remount-ro 0       1
UUID=$SWAP_UUID none            swap    sw              0       0
FS
# What grub-pc's debconf would leave, with the lab's serial console.
cat >"$MNT/etc/default/grub" <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB

mount_track --bind /dev "$MNT/dev"; mount_track -t proc proc "$MNT/proc"; mount_track -t sysfs sys "$MNT/sys"
install -D -m644 "$GUEST/dracut-lab.conf" "$MNT/etc/dracut.conf.d/10-lab.conf"
# Debian's name for it; generic, since it is built on another machine
chroot "$MNT" dracut -q --force --no-hostonly "/boot/initrd.img-$KVER" "$KVER"
umount "$MNT/sys" "$MNT/proc" "$MNT/dev"; MOUNTS=("${MOUNTS[@]:0:${#MOUNTS[@]}-3}")
log "dracut $(echo "$(ts) - $T0" | bc) s"
cp "$MNT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"; cp "$MNT/boot/initrd.img-$KVER" "$OUT/initrd.img"
cleanup_mounts

cat >"$OUT/facts.env" <<F
PROFILE=$PROFILE
KVER=$KVER
ROOT_LABEL=$ROOT_LABEL
ROOT_UUID=$ROOT_UUID
SYSTEM_SERIAL=$SYSTEM_SERIAL
CMDLINE=root=UUID=$ROOT_UUID ro console=ttyS0,115200
F
log "image $PROFILE done $(echo "$(ts) - $T0" | bc) s"
