# The 6.5 seed's second half, booted from B with A attached. FIX(names): by-id, not sda.
# FIX(gptmbr): gptmbr.bin written to A's MBR too (the seed relies on the installer's copy).
set -euxo pipefail
sda=$(readlink -f "$A"); sdb=$(readlink -f "$B")
[ "$(readlink -f "$(findmnt -n -o SOURCE /)")" = /dev/md0 ]
sgdisk -R "$sda" "$sdb"
sgdisk -G "$sda"
sgdisk "$sda" --attributes=1:set:2
dd if=/usr/lib/syslinux/mbr/gptmbr.bin of="$sda" bs=440 count=1 conv=notrunc
partx -u "$sda" || true
udevadm settle
for p in 1 2 3; do wipefs -a -q "${sda}$p"; done
mdadm -a /dev/md0 "${sda}1"
mdadm -a /dev/md1 "${sda}2"
mdadm -a /dev/md2 "${sda}3"
cat /proc/mdstat
pvcreate /dev/md2
xe sr-create content-type=user device-config:device=/dev/md2 host-uuid="$(xe host-list --minimal)" name-label="RAID 1" shared=false type=lvm
