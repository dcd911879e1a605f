# The 7.6.2 seed's first half (sections 1.2.2–1.2.18), run as typed, with its known bugs
# corrected — each correction is marked FIX:
#   - FIX(ef02): no md on the BIOS-boot partition (grub-install writes core.img over md's
#     1.2 superblock, the array vanishes at the next boot); it stays ef02, unmirrored.
#   - FIX(names): disks by /dev/disk/by-id (A = original, B = new), never sda/sdb.
#   - FIX(label): no `e2label` copy of root's label onto md0 (two filesystems, one label).
#   - FIX(cp): `cp -xa /. /mnt` (the seed's `cp -xa / /mnt` fails on coreutils 8+/9).
#   - LAB: rd.retry=30 on the kernel line so a degraded boot starts its arrays after 20 s
#     (dracut's default waits 120 s, ~4 min under TCG); the seed's sed on `quiet` is
#     applied to `nolvm` (the lab's kernel line has no `quiet`).
set -euxo pipefail
sda=$(readlink -f "$A"); sdb=$(readlink -f "$B")
KVER=$(uname -r)
# 1.2.2
modprobe md_mod
modprobe raid1
# 1.2.3
sgdisk --zap-all "$sdb"
sgdisk --mbrtogpt --clear "$sdb"
# 1.2.4 (+ new GUIDs: two disks with the same disk GUID confuse by-partuuid)
sgdisk -R "$sdb" "$sda"
sgdisk -G "$sdb"
# 1.2.5 — FIX(ef02): p3 stays ef02
sgdisk --typecode=1:fd00 "$sdb"
sgdisk --typecode=2:fd00 "$sdb"
sgdisk --typecode=3:ef02 "$sdb"
sgdisk --typecode=5:fd00 "$sdb"
sgdisk --typecode=6:fd00 "$sdb"
partx -u "$sdb" || true
udevadm settle
# 1.2.6 — FIX(ef02): no md2 on p3. `--run` answers the question the seed pipes `yes` into
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 "${sdb}1" missing
mdadm --create /dev/md1 --run --level=1 --raid-devices=2 "${sdb}2" missing
mdadm --create /dev/md4 --run --level=1 --raid-devices=2 "${sdb}5" missing
mdadm --create /dev/md5 --run --level=1 --raid-devices=2 "${sdb}6" missing
cat /proc/mdstat
# 1.2.7
mkfs.ext3 -q /dev/md0
mkfs.ext3 -q /dev/md4
mkswap /dev/md5
# 1.2.8
mount /dev/md0 /mnt
mkdir -p /mnt/var/log
mount /dev/md4 /mnt/var/log
# 1.2.9 — FIX(cp)
cp -xa /. /mnt
cp -xa /var/log/. /mnt/var/log
# 1.2.10
echo "MAILADDR root" > /mnt/etc/mdadm.conf
echo "auto +imsm +1.x -all" >> /mnt/etc/mdadm.conf
echo "DEVICE /dev/sd*[a-z][1-9]" >> /mnt/etc/mdadm.conf
mdadm --detail --scan >> /mnt/etc/mdadm.conf
cp /mnt/etc/mdadm.conf /etc
cat /etc/mdadm.conf
# 1.2.11
sed -i 's/LABEL=root-[a-zA-Z\-]*/\/dev\/md0/' /mnt/etc/fstab
sed -i 's/LABEL=swap-[a-zA-Z\-]*/\/dev\/md5/' /mnt/etc/fstab
sed -i 's/LABEL=logs-[a-zA-Z\-]*/\/dev\/md4/' /mnt/etc/fstab
cp /mnt/etc/fstab /etc
cat /etc/fstab
# 1.2.12 — FIX(label): skipped
# 1.2.13
mount --bind /dev /mnt/dev
mount --bind /sys /mnt/sys
mount --bind /proc /mnt/proc
# 1.2.14
chroot /mnt cp "/boot/initrd-$KVER.img" "/boot/initrd-$KVER.img.bak"
chroot /mnt dracut --mdadmconf --fstab --add="mdraid" --add-drivers="raid1" --force "/boot/initrd-$KVER.img" "$KVER" -M
# 1.2.15 (LAB: `nolvm` in place of `quiet`; part_gpt in place of part_msdos: GPT disks)
sed -i 's/nolvm/nolvm rd.auto rd.auto=1 rd.retry=30/' /mnt/boot/grub/grub.cfg
sed -i 's/LABEL=root-[a-zA-Z\-]*/\/dev\/md0/' /mnt/boot/grub/grub.cfg
sed -i '/search/ i\  insmod gzio part_gpt diskfilter mdraid1x' /mnt/boot/grub/grub.cfg
sed -i '/search/ c\  set root=(md/0)' /mnt/boot/grub/grub.cfg
cat /mnt/boot/grub/grub.cfg
chroot /mnt grub-install --target=i386-pc "$sdb"
# 1.2.17
cp "/boot/initrd-$KVER.img" "/boot/initrd-$KVER.img.bak"
cp "/mnt/boot/initrd-$KVER.img" /boot/
cp /mnt/boot/grub/grub.cfg /boot/grub/grub.cfg
umount /mnt/proc /mnt/sys /mnt/dev /mnt/var/log /mnt
sync
