# The 6.5 seed's first half, run as typed, with its known bugs corrected (FIX:) and the
# lab's differences from a 6.5 dom0 marked (LAB:).
#   - FIX(names): disks by /dev/disk/by-id (A = original, B = new), never sda/sdb.
#   - FIX(typo): the seed's en-dash in `–-raid-devices`.
#   - FIX(cp): `cp -xa /. /mnt` (the seed's `cp -xR --preserve=all / /mnt`).
#   - LAB: dracut in place of 6.5's mkinitrd (the Debian guest has no mkinitrd); the kernel
#     line gets rd.auto (dracut assembles nothing without it) and rd.retry=30 (shorter
#     degraded-boot wait). gptmbr.bin lives in /usr/lib/syslinux/mbr on Debian.
set -euxo pipefail
sda=$(readlink -f "$A"); sdb=$(readlink -f "$B")
KVER=$(uname -r)
sgdisk --zap-all "$sdb"
sgdisk --mbrtogpt --clear "$sdb"
sgdisk -R "$sdb" "$sda"
sgdisk -G "$sdb"
sgdisk --typecode=1:fd00 "$sdb"
sgdisk --typecode=2:fd00 "$sdb"
sgdisk --typecode=3:fd00 "$sdb"
partx -u "$sdb" || true
udevadm settle
modprobe md_mod
modprobe raid1
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=0.90 "${sdb}1" missing
mdadm --create /dev/md1 --run --level=1 --raid-devices=2 --metadata=0.90 "${sdb}2" missing
mdadm --create /dev/md2 --run --level=1 --raid-devices=2 --metadata=0.90 "${sdb}3" missing
mkfs.ext3 -q /dev/md0
mount /dev/md0 /mnt
cp -xa /. /mnt
mdadm --detail --scan > /mnt/etc/mdadm.conf
sed -i 's/LABEL=[a-zA-Z\-]*/\/dev\/md0/' /mnt/etc/fstab
mount --bind /dev /mnt/dev
mount -t sysfs none /mnt/sys
mount -t proc none /mnt/proc
chroot /mnt extlinux --install /boot
dd if=/mnt/usr/lib/syslinux/mbr/gptmbr.bin of="$sdb" bs=440 count=1 conv=notrunc
chroot /mnt dracut --mdadmconf --add mdraid --add-drivers raid1 --force "/boot/initrd-$KVER.img" "$KVER"
sed -i 's/LABEL=[a-zA-Z\-]*/\/dev\/md0/' /mnt/boot/extlinux.conf
sed -i 's|root=/dev/md0 ro|root=/dev/md0 ro rd.auto rd.retry=30|' /mnt/boot/extlinux.conf
cat /mnt/boot/extlinux.conf
cd /mnt
extlinux --raid -i boot/
sgdisk "$sdb" --attributes=1:set:2
cd /
umount /mnt/dev
umount /mnt/sys
umount /mnt/proc
umount /mnt
sync
