//! `xenraid doctor`'s boot checks on the converted host of tests/doctor_host: GRUB's boot code
//! and core.img, syslinux's gptmbr.bin and the legacy-BIOS-bootable flag (6.5), ESP copies (UEFI).

use std::fs;
use std::path::{Path, PathBuf};

use xenraid::doctor::{DoctorReport, Status};

mod doctor_host;
use doctor_host::*;

#[test]
fn a_wiped_mbr_fails_and_fix_reinstalls_grub_on_that_disk() {
    let (_dir, root) = healthy();
    let mut head = fs::read(root.join("dev/sdb")).unwrap();
    head[..440].fill(0);
    fs::write(root.join("dev/sdb"), head).unwrap();
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(
        (c.status, c.subject.as_deref()),
        (Status::Fail, Some("sdb"))
    );
    assert!(c.seen.contains("empty"), "{}", c.seen);
    assert_eq!(argvs(&r), ["grub2-install --target=i386-pc /dev/sdb"]);
}

#[test]
fn an_empty_bios_boot_partition_fails_even_with_grub_in_the_mbr() {
    let (_dir, root) = healthy();
    write(&root, "/dev/sdb18", vec![0u8; 512]);
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(c.status, Status::Fail);
    assert!(c.seen.contains("sdb18 is empty"), "{}", c.seen);
    assert_eq!(argvs(&r), ["grub2-install --target=i386-pc /dev/sdb"]);
}

#[test]
fn extlinux_hosts_get_gptmbr_written_with_dd() {
    let (_dir, root) = healthy();
    write(&root, "/boot/extlinux.conf", "default xe\nlabel xe\n  kernel mboot.c32\n  append /boot/xen.gz --- /boot/vmlinuz-4.19.0+1 root=/dev/md127 --- /boot/initrd-4.19.0+1.img\n");
    write(&root, "/usr/share/syslinux/gptmbr.bin", vec![1u8; 440]);
    write(&root, "/sbin/extlinux", "");
    let mut head = fs::read(root.join("dev/sdb")).unwrap();
    head[..440].fill(0);
    fs::write(root.join("dev/sdb"), head).unwrap();
    let r = report(&root);
    assert_eq!(find(&r, "bootloader").status, Status::Fail);
    // No partition of sdb is flagged either: gptmbr.bin alone would start nothing.
    assert_eq!(
        argvs(&r),
        [
            "dd if=/usr/share/syslinux/gptmbr.bin of=/dev/sdb bs=440 count=1 conv=notrunc",
            "sgdisk --attributes=1:set:2 /dev/sdb"
        ]
    );
}

/// A 6.5-shaped boot disk: extlinux, gptmbr.bin in sdb's MBR.
fn extlinux_host() -> (tempfile::TempDir, PathBuf) {
    let (dir, root) = healthy();
    write(&root, "/boot/extlinux.conf", "default xe\nlabel xe\n  kernel mboot.c32\n  append /boot/xen.gz --- /boot/vmlinuz-4.19.0+1 root=/dev/md127 --- /boot/initrd-4.19.0+1.img\n");
    write(&root, "/usr/share/syslinux/gptmbr.bin", vec![1u8; 440]);
    write(&root, "/sbin/extlinux", "");
    let gptmbr = fs::read(fixtures().join("lab/xs65-bios/dev/sda")).unwrap();
    let mut head = fs::read(root.join("dev/sdb")).unwrap();
    head[..440].copy_from_slice(&gptmbr[..440]);
    fs::write(root.join("dev/sdb"), head).unwrap();
    (dir, root)
}

#[test]
fn gptmbr_starting_the_boot_member_passes() {
    let (_dir, root) = extlinux_host();
    set_gpt_attributes(&root, "sdb", 1, 0x4);
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(c.status, Status::Pass, "{}", c.seen);
    assert!(argvs(&r).is_empty(), "{:?}", argvs(&r));
}

#[test]
fn gptmbr_starting_a_partition_outside_the_boot_array_fails_and_fix_moves_the_flag() {
    // What a 6.5 conversion stopped by hand leaves: the original's flag on its interim copy
    // of /boot, a partition that is no member of the array holding /.
    let (_dir, root) = extlinux_host();
    set_gpt_attributes(&root, "sdb", 3, 0x4);
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.seen.contains("gptmbr.bin starts sdb3") && c.seen.contains("md127"),
        "{}",
        c.seen
    );
    assert_eq!(
        argvs(&r),
        [
            "dd if=/usr/share/syslinux/gptmbr.bin of=/dev/sdb bs=440 count=1 conv=notrunc",
            "sgdisk --attributes=1:set:2 --attributes=3:clear:2 /dev/sdb"
        ]
    );
}

#[test]
fn gptmbr_with_no_flagged_partition_fails() {
    let (_dir, root) = extlinux_host();
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(c.status, Status::Fail);
    assert!(c.seen.contains("nothing to start"), "{}", c.seen);
}

/// md127's members on sdb as a replace leaves them during the resync: a slot, not in sync.
fn rebuilding(root: &Path, members: &[&str]) {
    for (slot, m) in members.iter().enumerate() {
        write(
            root,
            &format!("/sys/block/md127/md/dev-{m}/state"),
            "spare\n",
        );
        write(
            root,
            &format!("/sys/block/md127/md/dev-{m}/slot"),
            format!("{slot}\n"),
        );
    }
    write(root, "/sys/block/md127/md/sync_action", "recover\n");
}

fn bootloader_argvs(r: &DoctorReport) -> Vec<String> {
    argvs(r)
        .into_iter()
        .filter(|a| a.starts_with("dd ") || a.starts_with("sgdisk"))
        .collect()
}

#[test]
fn gptmbr_starting_a_rebuilding_member_fails_and_fix_moves_the_flag_to_the_one_in_sync() {
    let (_dir, root) = extlinux_host();
    set_gpt_attributes(&root, "sdb", 1, 0x4);
    rebuilding(&root, &["sdb1"]);
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.seen
            .contains("sdb1, whose member of md127 is not in sync"),
        "{}",
        c.seen
    );
    assert_eq!(
        bootloader_argvs(&r),
        [
            "dd if=/usr/share/syslinux/gptmbr.bin of=/dev/sdb bs=440 count=1 conv=notrunc",
            "sgdisk --attributes=2:set:2 --attributes=1:clear:2 /dev/sdb"
        ]
    );
}

#[test]
fn gptmbr_unflagged_while_the_boot_members_rebuild_is_a_warning_with_nothing_to_run() {
    // What `replace` leaves on a 6.5 host's new disk until the resync ends.
    let (_dir, root) = extlinux_host();
    rebuilding(&root, &["sdb1", "sdb2"]);
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(c.status, Status::Warn, "{}", c.seen);
    assert!(c.seen.contains("until the resync ends"), "{}", c.seen);
    assert!(bootloader_argvs(&r).is_empty(), "{:?}", argvs(&r));
}

#[test]
fn gptmbr_flagged_while_the_boot_members_rebuild_fails_and_fix_takes_the_flag_off() {
    let (_dir, root) = extlinux_host();
    set_gpt_attributes(&root, "sdb", 1, 0x4);
    rebuilding(&root, &["sdb1", "sdb2"]);
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(c.status, Status::Fail);
    assert!(c.seen.contains("half-copied boot sector"), "{}", c.seen);
    assert_eq!(
        bootloader_argvs(&r),
        [
            "dd if=/usr/share/syslinux/gptmbr.bin of=/dev/sdb bs=440 count=1 conv=notrunc",
            "sgdisk --attributes=1:clear:2 /dev/sdb"
        ]
    );
}

#[test]
fn uefi_esp_copies_are_compared_when_mounted_and_synced_from_boot_efi() {
    let (_dir, root) = healthy();
    write(&root, "/sys/firmware/efi/systab", "");
    set_gpt_type(&root, "sdb", 16, GPT_ESP_BYTES);
    set_gpt_type(&root, "sdb", 17, GPT_ESP_BYTES);
    write(&root, "/sys/block/sdb/sdb16/dev", "8:32\n");
    write(&root, "/sys/block/sdb/sdb17/dev", "8:33\n");
    let mounts = fs::read_to_string(root.join("proc/self/mountinfo")).unwrap();
    write(
        &root,
        "/proc/self/mountinfo",
        format!("{mounts}30 22 8:32 / /boot/efi rw - vfat /dev/sdb16 rw\n31 22 8:33 / /boot/efi2 rw - vfat /dev/sdb17 rw\n"),
    );
    write(&root, "/boot/efi/EFI/xenserver/grubx64.efi", "grub v2");
    write(&root, "/boot/efi/EFI/xenserver/grub.cfg", "cfg");
    write(&root, "/boot/efi2/EFI/xenserver/grubx64.efi", "grub v1");
    write(&root, "/boot/efi2/EFI/xenserver/grub.cfg", "cfg");
    let r = report(&root);
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "esp-copies")
        .expect("esp-copies");
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(
        c.seen.contains("efi/xenserver/grubx64.efi differs"),
        "{}",
        c.seen
    );
    assert_eq!(
        argvs(&r),
        ["cp -r --preserve=timestamps /boot/efi/. /boot/efi2/"]
    );
    // Unmounted: not compared, and --fix mounts it to copy.
    write(
        &root,
        "/proc/self/mountinfo",
        format!("{mounts}30 22 8:32 / /boot/efi rw - vfat /dev/sdb16 rw\n"),
    );
    let r = report(&root);
    let c = r.checks.iter().find(|c| c.name == "esp-copies").unwrap();
    assert_eq!(c.status, Status::Warn);
    assert!(c.seen.contains("not mounted, not compared"), "{}", c.seen);
    assert_eq!(
        argvs(&r),
        [
            "mkdir -p /run/xenraid/esp",
            "mount /dev/sdb17 /run/xenraid/esp",
            "cp -r --preserve=timestamps /boot/efi/. /run/xenraid/esp/",
            "umount /run/xenraid/esp"
        ]
    );
}
