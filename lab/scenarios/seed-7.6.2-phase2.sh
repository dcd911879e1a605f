# The 7.6.2 seed's second half (1.2.19–1.2.30), booted from B (the RAID disk) with A (the
# original) attached. FIX(names): A and B by /dev/disk/by-id — the seed's `zap /dev/sda`
# destroys the only good copy if the kernel named the disks the other way round.
# FIX(ef02): 1.2.19's md2 re-creation is not needed (p3 was never put in md).
# FIX(typo): `pvcreate /dev/md3` (the seed's output says md6).
set -euxo pipefail
sda=$(readlink -f "$A"); sdb=$(readlink -f "$B")
[ "$(readlink -f "$(findmnt -n -o SOURCE /)")" = /dev/md0 ]
# 1.2.25 first on B (the running disk) so 1.2.21 copies the SR partition to A as well
sgdisk -n4:0:0 -t4:fd00 "$sdb"
partx -u "$sdb" || partx -a "$sdb" || true
# 1.2.20
sgdisk --zap-all "$sda"
sgdisk --mbrtogpt --clear "$sda"
# 1.2.21 (+ new GUIDs)
sgdisk -R "$sda" "$sdb"
sgdisk -G "$sda"
partx -u "$sda" || true
udevadm settle
# old filesystem signatures on A's partitions would be copied into nothing, but mdadm
# refuses members that look in use; the seed's disks were clean after zap
for p in 1 2 4 5 6; do wipefs -a -q "${sda}$p"; done
# 1.2.22
mdadm -a /dev/md0 "${sda}1"
mdadm -a /dev/md1 "${sda}2"
mdadm -a /dev/md4 "${sda}5"
mdadm -a /dev/md5 "${sda}6"
# 1.2.24
grub-install --target=i386-pc "$sda"
# 1.2.26
mdadm --create /dev/md3 --run --level=1 --raid-devices=2 "${sda}4" "${sdb}4"
mdadm --detail --scan | grep -F 'md3' >> /etc/mdadm.conf
cat /proc/mdstat
# 1.2.29: CentOS 7's lvm.conf settings; Debian's lvm2 has neither, nothing to change
# 1.2.30
pvcreate /dev/md3
xe sr-create type=lvm content-type=user device-config:device=/dev/md3 name-label="Local Storage 1"
