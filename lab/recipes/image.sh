#!/bin/bash
# Lays out one XenServer-shaped system disk from the shared rootfs tarball.
#   image.sh PROFILE ROOTFS.tar OUTDIR
# PROFILE: xs7-bios | xs65-bios | xcpng8-uefi
# Writes OUTDIR/disk.raw, OUTDIR/vmlinuz, OUTDIR/initrd.img (for the provisioning boot) and
# OUTDIR/facts.env (labels, kernel version: what the scenarios assert against).
# Sizes are XenServer's, scaled down so the lab is fast (DESIGN.md §2).
set -euo pipefail
. "$(dirname "$0")/common.sh"
PROFILE=$1 ROOTFS=$2 OUT=$3
GUEST=$(cd "$(dirname "$0")/../guest" && pwd)
mkdir -p "$OUT"
IMG=$OUT/disk.raw
MNT=$(mktemp -d /var/tmp/xenraid-mnt.XXXXXX)
trap 'cleanup_mounts; rmdir "$MNT" 2>/dev/null || true' EXIT
T0=$(ts)

SUFFIX=$(label_suffix)
ROOT_LABEL=root-$SUFFIX LOGS_LABEL=logs-$SUFFIX SWAP_LABEL=swap-$SUFFIX
BOOT_LABEL=BOOT-$(echo "$SUFFIX" | tr a-z A-Z)
# the lab driver attaches the system disk with this serial and WWN (images.rs)
SYSTEM_SERIAL=XRLAB-SYS0 SYSTEM_WWN=5000c500a0000001

rm -f "$IMG"; truncate -s 4G "$IMG"
case $PROFILE in
  xs7-bios | xcpng8-uefi)
    # installer's physical order: logs (p5) at 1 MiB, backup (p2), root (p1), boot, swap (p6);
    # the SR's p4 is left as free space at the end. BIOS: boot is ef02 and numbered p3
    # (no SR at install). UEFI: boot is the ESP, p4 on XCP-ng 8.
    if [ "$PROFILE" = xs7-bios ]; then BOOTN=3 BOOTT=ef02; else BOOTN=4 BOOTT=ef00; fi
    sgdisk -n5:2048:+128M -t5:0700 \
      -n2:0:+1280M -t2:0700 \
      -n1:0:+1280M -t1:0700 \
      -n$BOOTN:0:+64M -t$BOOTN:$BOOTT \
      -n6:0:+128M -t6:8200 "$IMG" >/dev/null
    ;;
  xs65-bios)
    # 6.5: root p1, backup p2, SR space p3 (8e00); the legacy-BIOS-bootable attribute on p1
    sgdisk -n1:2048:+1280M -t1:0700 -A1:set:2 \
      -n2:0:+1280M -t2:0700 \
      -n3:0:0 -t3:8e00 "$IMG" >/dev/null
    ;;
  *) echo "unknown profile $PROFILE" >&2; exit 2 ;;
esac

P1=$(part_loop "$IMG" 1)
mkfs.ext3 -q -L "$ROOT_LABEL" "$P1"
mount_track "$P1" "$MNT"
if [ "$PROFILE" != xs65-bios ]; then
  P5=$(part_loop "$IMG" 5); P6=$(part_loop "$IMG" 6)
  mkfs.ext3 -q -L "$LOGS_LABEL" "$P5"
  mkswap -L "$SWAP_LABEL" "$P6" >/dev/null
  mkdir -p "$MNT/var/log"; mount_track "$P5" "$MNT/var/log"
fi
tar -C "$MNT" --numeric-owner --xattrs --acls -xf "$ROOTFS"
log "rootfs unpacked $(echo "$(ts) - $T0" | bc) s"
KVER=$(ls "$MNT/lib/modules" | sort -V | tail -1)

# --- dom0-like configuration -------------------------------------------------------------
echo xshost >"$MNT/etc/hostname"
chroot "$MNT" passwd -d root >/dev/null
install -m755 "$GUEST/xenraid-lab-agent" "$MNT/usr/local/sbin/"
install -m644 "$GUEST/xenraid-lab-agent.service" "$MNT/etc/systemd/system/"
chroot "$MNT" systemctl enable xenraid-lab-agent.service >/dev/null 2>&1
install -m755 "$GUEST/xe" "$MNT/usr/bin/xe"
# Debian's mdadm-shutdown.service reruns dracut at every shutdown (minutes under TCG);
# dracut-shutdown with the mdraid module already stops arrays cleanly.
chroot "$MNT" systemctl mask mdadm-shutdown.service >/dev/null 2>&1
# no getty on the serial console: the lab reads the console, it does not log in
chroot "$MNT" systemctl mask serial-getty@ttyS0.service >/dev/null 2>&1
# CentOS keeps mdadm.conf in /etc; Debian's tools read /etc/mdadm/mdadm.conf: link them so
# a dom0-style /etc/mdadm.conf is what the guest's mdadm and dracut see.
if [ -f "$MNT/etc/mdadm/mdadm.conf" ] && [ ! -L "$MNT/etc/mdadm/mdadm.conf" ]; then
  grep -v '^ARRAY' "$MNT/etc/mdadm/mdadm.conf" >"$MNT/etc/mdadm.conf" || true
  ln -sf ../mdadm.conf "$MNT/etc/mdadm/mdadm.conf"
fi
INSTALL_UUID=$(cat /proc/sys/kernel/random/uuid)
case $PROFILE in
  xs7-bios) BRAND=XenServer VERSION=7.6.0 ;;
  xs65-bios) BRAND=XenServer VERSION=6.5.0 ;;
  xcpng8-uefi) BRAND=XCP-ng VERSION=8.2.1 ;;
esac
cat >"$MNT/etc/xensource-inventory" <<INV
PRODUCT_BRAND='$BRAND'
PRODUCT_NAME='xenenterprise'
PRODUCT_VERSION='$VERSION'
PRODUCT_VERSION_TEXT='${VERSION%.0}'
BUILD_NUMBER='lab'
PLATFORM_VERSION='2.7.0'
INSTALLATION_UUID='$INSTALL_UUID'
CONTROL_DOMAIN_UUID='$(cat /proc/sys/kernel/random/uuid)'
PRIMARY_DISK='/dev/disk/by-id/scsi-3$SYSTEM_WWN'
BACKUP_PARTITION='/dev/disk/by-id/scsi-3$SYSTEM_WWN-part2'
DOM0_MEM='1024'
MANAGEMENT_INTERFACE=''
INV

# fstab by LABEL, as the installer writes it
if [ "$PROFILE" = xs65-bios ]; then
  cat >"$MNT/etc/fstab" <<FS
LABEL=$ROOT_LABEL    /         ext3     defaults   1  1
none        /dev/pts  devpts   defaults   0  0
FS
else
  cat >"$MNT/etc/fstab" <<FS
LABEL=$ROOT_LABEL    /         ext3     defaults   1  1
LABEL=$SWAP_LABEL          swap      swap   defaults   0  0
LABEL=$LOGS_LABEL    /var/log         ext3     defaults   0  2
FS
  [ "$PROFILE" = xcpng8-uefi ] && echo "LABEL=$BOOT_LABEL    /boot/efi         vfat     defaults   0  2" >>"$MNT/etc/fstab"
fi

# XenServer names: /boot/vmlinuz-KVER + /boot/initrd-KVER.img, built by dracut (in a chroot
# here, natively fast; generic so it boots any lab machine)
mount_track --bind /dev "$MNT/dev"; mount_track -t proc proc "$MNT/proc"; mount_track -t sysfs sys "$MNT/sys"
install -D -m644 "$GUEST/dracut-lab.conf" "$MNT/etc/dracut.conf.d/10-lab.conf"
# this first image is generic (built on another machine); later builds inside the guest
# follow the guest's own configuration (host-only, as on CentOS 7)
chroot "$MNT" dracut -q --force --no-hostonly "/boot/initrd-$KVER.img" "$KVER"
umount "$MNT/sys" "$MNT/proc" "$MNT/dev"; MOUNTS=("${MOUNTS[@]:0:${#MOUNTS[@]}-3}")
log "dracut $(echo "$(ts) - $T0" | bc) s"
CMDLINE="root=LABEL=$ROOT_LABEL ro nolvm console=ttyS0,115200"

case $PROFILE in
  xs7-bios | xcpng8-uefi)
    # Hand-written, installer-style grub.cfg (XenServer never runs grub-mkconfig), with the
    # installer's one-shot hook (override_entry in grubenv). The lab
    # has no Xen hypervisor, so the entry boots dom0's kernel directly (linux/initrd in
    # place of multiboot2 xen.gz + module2).
    GRUBCFG="serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=0
set timeout=1
if [ -s \$prefix/grubenv ]; then
	load_env
fi
if [ -n \"\$override_entry\" ]; then
	set default=\$override_entry
	set override_entry=
	save_env override_entry
fi
menuentry 'XenServer' {
	search --label --set root $ROOT_LABEL
	linux /boot/vmlinuz-$KVER $CMDLINE
	initrd /boot/initrd-$KVER.img
}
menuentry 'XenServer (Safe Mode)' {
	search --label --set root $ROOT_LABEL
	linux /boot/vmlinuz-$KVER $CMDLINE single
	initrd /boot/initrd-$KVER.img
}"
    if [ "$PROFILE" = xs7-bios ]; then
      mkdir -p "$MNT/boot/grub"; printf '%s\n' "$GRUBCFG" >"$MNT/boot/grub/grub.cfg"
    fi
    ;;
  xs65-bios)
    # extlinux in /boot, as 6.5 installs it; the Xen mboot.c32 stanza is kept (not bootable
    # in the lab: no xen.gz) beside the default stanza that boots dom0's kernel directly.
    cat >"$MNT/boot/extlinux.conf" <<EXT
# location mbr
serial 0 115200
default lab
prompt 1
timeout 10

label lab
  kernel /boot/vmlinuz-$KVER
  append $CMDLINE
  initrd /boot/initrd-$KVER.img

label xe
  # XenServer
  kernel mboot.c32
  append /boot/xen.gz dom0_mem=752M,max:752M watchdog_timeout=300 lowmem_emergency_pool=1M crashkernel=64M@32M console=vga vga=mode-0x0311 --- /boot/vmlinuz-2.6-xen root=LABEL=$ROOT_LABEL ro xencons=hvc console=hvc0 console=tty0 quiet vga=785 splash --- /boot/initrd-2.6-xen.img
EXT
    cp /usr/lib/syslinux/modules/bios/{mboot.c32,libcom32.c32} "$MNT/boot/"
    extlinux --install "$MNT/boot" >/dev/null
    ;;
esac
cp "$MNT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"; cp "$MNT/boot/initrd-$KVER.img" "$OUT/initrd.img"
cleanup_mounts

case $PROFILE in
  xs65-bios)
    dd if=/usr/lib/syslinux/mbr/gptmbr.bin of="$IMG" bs=440 count=1 conv=notrunc status=none ;;
  xcpng8-uefi)
    ESP=$(part_loop "$IMG" 4)
    mkfs.vfat -n "$BOOT_LABEL" "$ESP" >/dev/null
    EFI=$(mktemp -d)
    grub-mkimage -O x86_64-efi -p /EFI/xenserver -o "$EFI/grubx64.efi" \
      part_gpt part_msdos fat ext2 normal linux search search_label search_fs_uuid configfile \
      serial terminfo test echo gzio mdraid1x diskfilter all_video efi_gop
    printf '%s\n' "$GRUBCFG" >"$EFI/grub.cfg"
    mmd -i "$ESP" ::/EFI ::/EFI/BOOT ::/EFI/xenserver
    mcopy -i "$ESP" "$EFI/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI
    mcopy -i "$ESP" "$EFI/grubx64.efi" "$EFI/grub.cfg" ::/EFI/xenserver/
    rm -rf "$EFI"; cleanup_mounts ;;
esac

cat >"$OUT/facts.env" <<F
PROFILE=$PROFILE
KVER=$KVER
ROOT_LABEL=$ROOT_LABEL
LOGS_LABEL=$LOGS_LABEL
SWAP_LABEL=$SWAP_LABEL
BOOT_LABEL=$BOOT_LABEL
INSTALL_UUID=$INSTALL_UUID
SYSTEM_SERIAL=$SYSTEM_SERIAL
CMDLINE=$CMDLINE
F
log "image $PROFILE done $(echo "$(ts) - $T0" | bc) s"
