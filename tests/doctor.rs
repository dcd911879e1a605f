//! `xenraid doctor` over a converted host: the eight arrays captured from real md
//! (tests/fixtures/md/states) with what a converted XenServer 7 host has around them — `/` on
//! md127, mdadm.conf, an initramfs built here (uncompressed microcode cpio + gzip'd main cpio),
//! the dracut conf, GRUB in sdb's MBR and core.img in a BIOS boot partition, the monitor and an
//! alert channel. Every test breaks one invariant and reads what doctor says and plans.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use xenraid::doctor::facts::{gather, normalize_uuid};
use xenraid::doctor::fix::{execute, FixStep};
use xenraid::doctor::initramfs::{newc_archive, scan};
use xenraid::doctor::{checks, examine, Check, DoctorReport, Status, EXIT_CHECK_FAILED};
use xenraid::exec::RecordingRunner;
use xenraid::host::RootedSource;
use xenraid::plan::edits::DRACUT_CONF;

const KVER: &str = "4.19.0+1";
const INITRD: &str = "/boot/initrd-4.19.0+1.img";
const ROOT_FS_UUID: &str = "0d1b7a54-5c1e-4a8e-9d4f-6f3e2a1b0c9d";
const GPT_BIOS_BOOT_BYTES: [u8; 16] = *b"Hah!IdontNeedEFI";
const GPT_ESP_BYTES: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

fn write(root: &Path, path: &str, content: impl AsRef<[u8]>) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// Kernel name → mdadm UUID, from the udev links captured with the arrays.
fn array_uuids(root: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(root.join("dev/disk/by-id"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let uuid = name.strip_prefix("md-uuid-")?.to_string();
            let target = fs::read_link(root.join("dev/disk/by-id").join(&name)).ok()?;
            let dev = target.file_name()?.to_string_lossy().into_owned();
            Some((dev, uuid))
        })
        .collect();
    out.sort();
    out
}

fn mdadm_conf(uuids: &[(String, String)], leave_out: Option<&str>) -> String {
    let mut text = "MAILADDR root\n".to_string();
    for (dev, uuid) in uuids {
        if Some(dev.as_str()) != leave_out {
            text += &format!("ARRAY /dev/{dev} metadata=1.2 UUID={uuid}\n");
        }
    }
    text
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// An initramfs as dracut lays it out: an uncompressed early-microcode cpio, then the main
/// cpio gzip'd.
fn initrd(conf: Option<&str>, raid1: bool) -> Vec<u8> {
    let mut img = newc_archive(&[
        ("kernel/", b""),
        ("kernel/x86/microcode/GenuineIntel.bin", b"microcode"),
    ]);
    let module = format!("usr/lib/modules/{KVER}/kernel/drivers/md/raid1.ko.xz");
    let mut entries: Vec<(&str, &[u8])> = vec![("etc/", b""), ("init", b"#!/bin/sh\n")];
    if let Some(conf) = conf {
        entries.push(("etc/mdadm.conf", conf.as_bytes()));
    }
    if raid1 {
        entries.push((&module, b"\xfd7zXZ\0module"));
    }
    img.extend(gzip(&newc_archive(&entries)));
    img
}

/// Sets the type of GPT entry `number` in a captured disk head, CRCs included.
fn set_gpt_type(root: &Path, disk: &str, number: usize, type_bytes: [u8; 16]) {
    set_gpt_entry_field(root, disk, number, 0, &type_bytes);
}

/// Sets the attribute bits of GPT entry `number` (bit 2: legacy BIOS bootable).
fn set_gpt_attributes(root: &Path, disk: &str, number: usize, attributes: u64) {
    set_gpt_entry_field(root, disk, number, 48, &attributes.to_le_bytes());
}

fn set_gpt_entry_field(root: &Path, disk: &str, number: usize, offset: usize, bytes: &[u8]) {
    let path = root.join("dev").join(disk);
    let mut head = fs::read(&path).unwrap();
    let crc = |b: &[u8]| {
        let mut c = flate2::Crc::new();
        c.update(b);
        c.sum()
    };
    let entries = 1024;
    let at = entries + (number - 1) * 128 + offset;
    head[at..at + bytes.len()].copy_from_slice(bytes);
    let table_crc = crc(&head[entries..entries + 128 * 128]);
    head[512 + 88..512 + 92].copy_from_slice(&table_crc.to_le_bytes());
    head[512 + 16..512 + 20].copy_from_slice(&[0; 4]);
    let header_crc = crc(&head[512..512 + 92]);
    head[512 + 16..512 + 20].copy_from_slice(&header_crc.to_le_bytes());
    fs::write(path, head).unwrap();
}

/// A converted XenServer 7 BIOS host on which every check passes.
fn healthy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    copy_tree(&fixtures().join("md/states"), &root);
    let uuids = array_uuids(&root);
    assert_eq!(uuids.len(), 8, "the fixture's eight arrays");
    write(
        &root,
        "/proc/self/mountinfo",
        "22 1 9:127 / / rw,relatime shared:1 - ext4 /dev/md127 rw\n",
    );
    write(&root, "/proc/sys/kernel/osrelease", format!("{KVER}\n"));
    write(
        &root,
        "/etc/xensource-inventory",
        "PRODUCT_BRAND='XenServer'\nPRODUCT_VERSION='7.6.0'\n",
    );
    write(
        &root,
        "/etc/fstab",
        format!("UUID={ROOT_FS_UUID} / ext4 defaults 1 1\n"),
    );
    write(
        &root,
        "/cmd/blkid_-p_-o_export__dev_md127.out",
        format!("UUID={ROOT_FS_UUID}\nLABEL=root-abcdef\nTYPE=ext4\nUSAGE=filesystem\n"),
    );
    write(&root, "/etc/mdadm.conf", mdadm_conf(&uuids, None));
    write(&root, "/etc/dracut.conf.d/90-xenraid.conf", DRACUT_CONF);
    write(&root, "/usr/sbin/dracut", "");
    write(&root, "/usr/sbin/grub2-install", "");
    write(&root, &format!("/boot/vmlinuz-{KVER}"), "kernel");
    write(&root, INITRD, initrd(Some(&mdadm_conf(&uuids, None)), true));
    write(
        &root,
        "/etc/xenraid/xenraid.toml",
        "[alert.mail]\nto = [\"root@localhost\"]\n",
    );
    write(
        &root,
        "/run/systemd/units/invocation:xenraid-monitor.service",
        "",
    );
    write(
        &root,
        "/etc/systemd/system/xenraid-monitor.service",
        "[Service]\n",
    );
    // md120 was made without a bitmap: give it one here (a test takes it away again).
    write(&root, "/sys/block/md120/md/bitmap/location", "+8\n");
    // GRUB's boot.img in sdb's MBR (from the lab's system disk), core.img in sdb18 (ef02).
    let grub = fs::read(fixtures().join("lab/xs7-bios/dev/sdb")).unwrap();
    let mut head = fs::read(root.join("dev/sdb")).unwrap();
    head[..440].copy_from_slice(&grub[..440]);
    fs::write(root.join("dev/sdb"), head).unwrap();
    set_gpt_type(&root, "sdb", 18, GPT_BIOS_BOOT_BYTES);
    write(&root, "/dev/sdb18", &grub[512..1024]);
    (dir, root)
}

fn report(root: &Path) -> DoctorReport {
    examine(&RootedSource::captured(root)).expect("doctor reads the tree")
}

fn find<'a>(r: &'a DoctorReport, name: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {:#?}", r.checks))
}

fn argvs(r: &DoctorReport) -> Vec<String> {
    r.fixes
        .iter()
        .flat_map(|a| a.steps.iter().map(|s| s.to_string()))
        .collect()
}

#[test]
fn healthy_converted_host_passes_every_check() {
    let (_dir, root) = healthy();
    let r = report(&root);
    let not_passing: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .collect();
    assert!(not_passing.is_empty(), "{not_passing:#?}");
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    for name in [
        "mdadm-conf",
        "initramfs",
        "dracut-conf",
        "bootloader",
        "fstab-devices",
        "unique-labels",
        "bitmap",
        "recovery",
        "monitor",
        "alert-channel",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(find(&r, "initramfs").subject.as_deref(), Some(INITRD));
    assert_eq!(find(&r, "bootloader").subject.as_deref(), Some("sdb"));
    assert!(find(&r, "bootloader").seen.contains("core.img in sdb18"));
    assert!(r.fixes.is_empty());
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn the_090_array_matches_its_conf_line_through_the_word_swap() {
    // md120 is metadata 0.90: sysfs prints its UUID with each word's bytes reversed.
    let (_dir, root) = healthy();
    let sysfs = fs::read_to_string(root.join("sys/block/md120/md/uuid")).unwrap();
    let facts = gather(&RootedSource::captured(&root)).unwrap();
    let md120 = facts
        .arrays
        .iter()
        .find(|a| a.health.device == "md120")
        .unwrap();
    let from_udev = array_uuids(&root)
        .into_iter()
        .find(|(d, _)| d == "md120")
        .unwrap()
        .1;
    assert_ne!(normalize_uuid(&sysfs), Some(from_udev.clone()));
    assert_eq!(md120.uuid.as_deref(), Some(from_udev.as_str()));
}

#[test]
fn a_missing_array_line_fails_and_fix_appends_it_then_rebuilds_the_initramfs() {
    let (_dir, root) = healthy();
    let uuids = array_uuids(&root);
    write(&root, "/etc/mdadm.conf", mdadm_conf(&uuids, Some("md125")));
    let r = report(&root);
    let c = find(&r, "mdadm-conf");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.seen
            .contains("md125 (UUID 46774635:4d350f19:d00aa0e6:0a4326c5)"),
        "{}",
        c.seen
    );
    assert_eq!(
        argvs(&r),
        [
            "mdadm --detail --brief /dev/md125 >> /etc/mdadm.conf".to_string(),
            format!("dracut --force --mdadmconf --add mdraid --add-drivers raid1 {INITRD} {KVER}"),
        ]
    );
    assert_eq!(r.exit_code(), EXIT_CHECK_FAILED);
}

#[test]
fn fix_runs_the_plan_through_the_runner_and_the_check_passes_after() {
    let (_dir, root) = healthy();
    let uuids = array_uuids(&root);
    write(&root, "/etc/mdadm.conf", mdadm_conf(&uuids, Some("md125")));
    let line = "ARRAY /dev/md/degraded metadata=1.2 name=any:degraded UUID=46774635:4d350f19:d00aa0e6:0a4326c5";
    let dracut = [
        "dracut",
        "--force",
        "--mdadmconf",
        "--add",
        "mdraid",
        "--add-drivers",
        "raid1",
        INITRD,
        KVER,
    ];
    let runner = RecordingRunner::new()
        .with_output(
            &["mdadm", "--detail", "--brief", "/dev/md125"],
            0,
            &format!("{line}\n"),
        )
        .with_output(&dracut, 0, "");
    let r = report(&root);
    let outcomes = execute(&r.fixes, &runner, &root);
    assert!(outcomes.iter().all(|o| o.ok), "{outcomes:#?}");
    let calls: Vec<Vec<String>> = runner.calls().iter().map(|c| c.argv()).collect();
    assert_eq!(
        calls,
        [
            vec!["mdadm", "--detail", "--brief", "/dev/md125"],
            dracut.to_vec()
        ]
    );
    let conf = fs::read_to_string(root.join("etc/mdadm.conf")).unwrap();
    assert!(conf.ends_with(&format!("{line}\n")), "{conf}");
    assert_eq!(find(&report(&root), "mdadm-conf").status, Status::Pass);
    // Once more: nothing is appended twice.
    execute(&r.fixes[..1], &runner, &root);
    assert_eq!(
        fs::read_to_string(root.join("etc/mdadm.conf")).unwrap(),
        conf
    );
}

#[test]
fn a_symlinked_mdadm_conf_is_followed_inside_the_tree() {
    let (_dir, root) = healthy();
    let text = fs::read_to_string(root.join("etc/mdadm.conf")).unwrap();
    fs::remove_file(root.join("etc/mdadm.conf")).unwrap();
    write(&root, "/etc/mdadm/mdadm.conf", text);
    std::os::unix::fs::symlink("/etc/mdadm/mdadm.conf", root.join("etc/mdadm.conf")).unwrap();
    let c = find(&report(&root), "mdadm-conf").clone();
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert_eq!(c.subject.as_deref(), Some("/etc/mdadm/mdadm.conf"));
}

#[test]
fn initramfs_without_mdadm_conf_or_raid1_or_with_a_stale_conf_fails() {
    let (_dir, root) = healthy();
    let uuids = array_uuids(&root);
    let cases = [
        (initrd(None, true), "no etc/mdadm.conf inside"),
        (
            initrd(Some(&mdadm_conf(&uuids, None)), false),
            "no raid1 module",
        ),
        (
            initrd(Some(&mdadm_conf(&uuids, Some("md127"))), true),
            "its mdadm.conf does not list md127",
        ),
    ];
    for (image, expected) in cases {
        write(&root, INITRD, image);
        let r = report(&root);
        let c = find(&r, "initramfs");
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.seen.contains(expected), "{expected}: {}", c.seen);
        assert!(
            c.fix.as_deref().unwrap().contains("dracut --force"),
            "{c:?}"
        );
        assert_eq!(
            argvs(&r),
            [format!(
                "dracut --force --mdadmconf --add mdraid --add-drivers raid1 {INITRD} {KVER}"
            )]
        );
    }
}

#[test]
fn a_missing_initramfs_for_the_running_kernel_fails() {
    let (_dir, root) = healthy();
    fs::remove_file(root.join(INITRD.trim_start_matches('/'))).unwrap();
    let r = report(&root);
    let c = find(&r, "initramfs");
    assert_eq!(c.status, Status::Fail);
    assert!(c.seen.contains("no initramfs for the running kernel"));
}

#[test]
fn an_unreadable_image_is_a_warning_not_a_pass() {
    let (_dir, root) = healthy();
    write(&root, INITRD, b"BZh91AY&SY not really");
    let c = find(&report(&root), "initramfs").clone();
    assert_eq!(c.status, Status::Warn);
    assert!(c.seen.contains("bzip2"), "{}", c.seen);
}

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
fn a_missing_bitmap_fails_and_fix_grows_one() {
    let (_dir, root) = healthy();
    fs::remove_file(root.join("sys/block/md120/md/bitmap/location")).unwrap();
    let r = report(&root);
    let c = find(&r, "bitmap");
    assert_eq!(c.status, Status::Fail);
    assert!(c.seen.contains("md120"));
    // 64 MiB array: 1 MiB chunks, as convert makes them.
    assert_eq!(
        argvs(&r),
        ["mdadm --grow --bitmap=internal --bitmap-chunk=1024 /dev/md120"]
    );
}

#[test]
fn a_read_auto_array_with_a_waiting_member_fails_and_fix_wakes_it() {
    // md122 as a reboot in mid-rebuild leaves it: assembled read-auto, its new member back
    // as a spare, and md starting nothing until the array is written.
    let (_dir, root) = healthy();
    write(&root, "/sys/block/md122/md/array_state", "read-auto\n");
    write(&root, "/sys/block/md122/md/sync_action", "idle\n");
    let r = report(&root);
    let c = find(&r, "recovery");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.seen.contains("md122") && c.seen.contains("read-auto"),
        "{}",
        c.seen
    );
    // md125 is degraded too, but with nothing to rebuild onto: not this check's business.
    assert!(!c.seen.contains("md125"));
    assert_eq!(argvs(&r), ["mdadm --readwrite /dev/md122"]);
    assert_eq!(r.exit_code(), 4);
}

#[test]
fn a_read_auto_array_with_its_first_sync_pending_fails_and_fix_wakes_it() {
    // md120 as a reboot during a new array's first pass leaves it: both members in sync as
    // far as md knows, assembled read-auto, the resync pending until the first write.
    let (_dir, root) = healthy();
    write(&root, "/sys/block/md120/md/array_state", "read-auto\n");
    write(&root, "/sys/block/md120/md/resync_start", "2048\n");
    let r = report(&root);
    let c = find(&r, "recovery");
    assert_eq!(c.status, Status::Fail);
    assert!(c.seen.contains("md120"), "{}", c.seen);
    assert_eq!(argvs(&r), ["mdadm --readwrite /dev/md120"]);
}

#[test]
fn a_read_auto_array_in_sync_is_left_alone() {
    // Every array assembled at boot and not yet written is read-auto: alone, that is normal.
    let (_dir, root) = healthy();
    write(&root, "/sys/block/md120/md/array_state", "read-auto\n");
    let r = report(&root);
    assert_eq!(find(&r, "recovery").status, Status::Pass);
    assert!(argvs(&r).is_empty(), "{:?}", argvs(&r));
}

#[test]
fn a_missing_dracut_conf_fails_and_fix_writes_it() {
    let (_dir, root) = healthy();
    write(
        &root,
        "/etc/dracut.conf.d/90-xenraid.conf",
        "add_drivers+=\" raid1 \"\n",
    );
    let r = report(&root);
    let c = find(&r, "dracut-conf");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.seen.contains("mdraid") && c.seen.contains("mdadmconf"),
        "{}",
        c.seen
    );
    assert_eq!(
        r.fixes[0].steps,
        [FixStep::WriteFile {
            path: "/etc/dracut.conf.d/90-xenraid.conf".into(),
            content: DRACUT_CONF.into()
        }]
    );
}

#[test]
fn fstab_devices_that_do_not_exist_fail_unless_nofail() {
    let (_dir, root) = healthy();
    let base = fs::read_to_string(root.join("etc/fstab")).unwrap();
    write(
        &root,
        "/etc/fstab",
        format!("{base}LABEL=logs-gone /var/log ext3 defaults 0 2\n"),
    );
    let c = find(&report(&root), "fstab-devices").clone();
    assert_eq!(c.status, Status::Fail);
    assert!(c.seen.contains("LABEL=logs-gone (/var/log)"), "{}", c.seen);
    write(
        &root,
        "/etc/fstab",
        format!("{base}/dev/sdz1 /mnt ext3 nofail 0 2\n"),
    );
    assert_eq!(find(&report(&root), "fstab-devices").status, Status::Warn);
}

#[test]
fn two_filesystems_with_one_label_fail() {
    let (_dir, root) = healthy();
    write(
        &root,
        "/cmd/blkid_-p_-o_export__dev_md126.out",
        "UUID=11111111-2222-3333-4444-555555555555\nLABEL=root-abcdef\nTYPE=ext3\n",
    );
    let c = find(&report(&root), "unique-labels").clone();
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.seen.contains("root-abcdef on md126 and md127"),
        "{}",
        c.seen
    );
}

#[test]
fn a_stopped_monitor_fails_and_no_alert_section_fails() {
    let (_dir, root) = healthy();
    fs::remove_file(root.join("run/systemd/units/invocation:xenraid-monitor.service")).unwrap();
    let r = report(&root);
    // No systemd answer recorded: doctor cannot tell.
    assert_eq!(find(&r, "monitor").status, Status::Warn);
    write(
        &root,
        "/cmd/systemctl_is-active_xenraid-monitor.service.out",
        "inactive\n",
    );
    write(
        &root,
        "/cmd/systemctl_is-active_xenraid-monitor.service.rc",
        "3\n",
    );
    write(&root, "/etc/xenraid/xenraid.toml", "[monitor]\n");
    let r = report(&root);
    let m = find(&r, "monitor");
    assert_eq!(m.status, Status::Fail);
    assert!(m.seen.contains("inactive"));
    assert_eq!(find(&r, "alert-channel").status, Status::Fail);
    assert_eq!(
        argvs(&r),
        ["systemctl enable --now xenraid-monitor.service"]
    );
    // A config the monitor would refuse is a failure naming the key.
    write(
        &root,
        "/etc/xenraid/xenraid.toml",
        "[alert.mail]\nto = [\"ops\"]\n",
    );
    let a = find(&report(&root), "alert-channel").clone();
    assert_eq!(a.status, Status::Fail);
    assert!(a.seen.contains("not a mail address"), "{}", a.seen);
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

#[test]
fn unconverted_lab_hosts_report_without_arrays() {
    for host in ["xs7-bios", "xs65-bios", "xcpng8-uefi"] {
        let r = report(&fixtures().join("lab").join(host));
        assert_eq!(find(&r, "mdadm-conf").status, Status::Warn, "{host}");
        assert_eq!(find(&r, "bootloader").status, Status::Warn, "{host}");
        assert_eq!(find(&r, "dracut-conf").status, Status::Pass, "{host}");
        assert_eq!(
            find(&r, "fstab-devices").status,
            Status::Pass,
            "{host}: {:?}",
            find(&r, "fstab-devices")
        );
    }
}

#[test]
fn initramfs_scan_reads_microcode_then_gzip() {
    let img = initrd(Some("ARRAY /dev/md0 UUID=1:2:3:4\n"), true);
    let c = scan(std::io::Cursor::new(img)).unwrap();
    assert_eq!(c.compression.as_deref(), Some("gzip"));
    assert_eq!(c.entries, 2 + 3 + 1);
    assert_eq!(
        c.mdadm_conf.as_deref(),
        Some("ARRAY /dev/md0 UUID=1:2:3:4\n")
    );
    assert!(c.raid1_module.unwrap().ends_with("drivers/md/raid1.ko.xz"));
}

#[test]
fn initramfs_scan_reads_xz_and_zstd() {
    let cpio = newc_archive(&[("etc/mdadm.conf", b"xz\n"), ("lib/raid1.ko", b"m")]);
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut std::io::Cursor::new(&cpio), &mut xz).unwrap();
    let c = scan(std::io::Cursor::new(xz)).unwrap();
    assert_eq!(
        (c.compression.as_deref(), c.mdadm_conf.as_deref()),
        (Some("xz"), Some("xz\n"))
    );
    let zst = ruzstd::encoding::compress_to_vec(
        std::io::Cursor::new(&cpio),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let c = scan(std::io::Cursor::new(zst)).unwrap();
    assert_eq!(c.compression.as_deref(), Some("zstd"));
    assert_eq!(c.raid1_module.as_deref(), Some("lib/raid1.ko"));
}

#[test]
fn conf_uuids_are_normalised() {
    assert_eq!(
        checks::conf_uuids("ARRAY /dev/md0 metadata=1.2 UUID=51E0EC88:5f2559f9:464c1ba9:2824d939\n# ARRAY /dev/md9 UUID=00000000:00000000:00000000:00000001\n"),
        ["51e0ec88:5f2559f9:464c1ba9:2824d939"]
    );
}

#[test]
fn root_on_a_partition_of_a_whole_disk_array_counts_as_mirrored() {
    // XCP-ng's installer RAID: / on md127p1.
    let (_dir, root) = healthy();
    write(
        &root,
        "/proc/self/mountinfo",
        "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/md127p1 rw\n",
    );
    let r = report(&root);
    let c = find(&r, "bootloader");
    assert_eq!(
        (c.status, c.subject.as_deref()),
        (Status::Pass, Some("sdb"))
    );
}

#[test]
fn cli_prints_one_line_per_check_and_exits_4_on_a_failure() {
    let (_dir, root) = healthy();
    let ok = assert_cmd::Command::cargo_bin("xenraid")
        .unwrap()
        .args(["--root", root.to_str().unwrap(), "doctor"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("PASS mdadm-conf /etc/mdadm.conf — all 8 arrays")),
        "{text}"
    );
    fs::remove_file(root.join("sys/block/md120/md/bitmap/location")).unwrap();
    let failed = assert_cmd::Command::cargo_bin("xenraid")
        .unwrap()
        .args(["--root", root.to_str().unwrap(), "doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(EXIT_CHECK_FAILED));
    let json: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    let bitmap = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bitmap")
        .unwrap();
    assert_eq!(bitmap["status"], "FAIL");
    assert_eq!(
        json["fixes"][0]["steps"][0]["argv"],
        serde_json::json!([
            "mdadm",
            "--grow",
            "--bitmap=internal",
            "--bitmap-chunk=1024",
            "/dev/md120"
        ])
    );
    let refused = assert_cmd::Command::cargo_bin("xenraid")
        .unwrap()
        .args(["--root", root.to_str().unwrap(), "doctor", "--fix"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
}

#[test]
fn xenserver_fallback_links_are_judged_and_rebuilt_once_by_their_real_name() {
    let (_dir, root) = healthy();
    let boot = root.join("boot");
    std::os::unix::fs::symlink(format!("vmlinuz-{KVER}"), boot.join("vmlinuz-fallback")).unwrap();
    std::os::unix::fs::symlink(
        format!("initrd-{KVER}.img"),
        boot.join("initrd-fallback.img"),
    )
    .unwrap();
    write(&root, INITRD, initrd(None, true));
    let r = report(&root);
    let images: Vec<_> = r.checks.iter().filter(|c| c.name == "initramfs").collect();
    assert_eq!(images.len(), 1, "{images:#?}");
    assert_eq!(images[0].subject.as_deref(), Some(INITRD));
    assert_eq!(
        argvs(&r),
        [format!(
            "dracut --force --mdadmconf --add mdraid --add-drivers raid1 {INITRD} {KVER}"
        )]
    );
}
