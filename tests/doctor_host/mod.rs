//! A converted XenServer 7 host tree for doctor's tests: the eight arrays captured from real md
//! with `/` on md127, mdadm.conf, an initramfs, the dracut conf, GRUB in sdb's MBR, the monitor.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use xenraid::doctor::initramfs::newc_archive;
use xenraid::doctor::{examine, Check, DoctorReport};
use xenraid::host::RootedSource;
use xenraid::plan::edits::DRACUT_CONF;

pub const KVER: &str = "4.19.0+1";
pub const INITRD: &str = "/boot/initrd-4.19.0+1.img";
pub const ROOT_FS_UUID: &str = "0d1b7a54-5c1e-4a8e-9d4f-6f3e2a1b0c9d";
pub const GPT_BIOS_BOOT_BYTES: [u8; 16] = *b"Hah!IdontNeedEFI";
pub const GPT_ESP_BYTES: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn copy_tree(from: &Path, to: &Path) {
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

pub fn write(root: &Path, path: &str, content: impl AsRef<[u8]>) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// Kernel name → mdadm UUID, from the udev links captured with the arrays.
pub fn array_uuids(root: &Path) -> Vec<(String, String)> {
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

pub fn mdadm_conf(uuids: &[(String, String)], leave_out: Option<&str>) -> String {
    let mut text = "MAILADDR root\n".to_string();
    for (dev, uuid) in uuids {
        if Some(dev.as_str()) != leave_out {
            text += &format!("ARRAY /dev/{dev} metadata=1.2 UUID={uuid}\n");
        }
    }
    text
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// An initramfs as dracut lays it out: an uncompressed early-microcode cpio, then the main
/// cpio gzip'd.
pub fn initrd(conf: Option<&str>, raid1: bool) -> Vec<u8> {
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
pub fn set_gpt_type(root: &Path, disk: &str, number: usize, type_bytes: [u8; 16]) {
    set_gpt_entry_field(root, disk, number, 0, &type_bytes);
}

/// Sets the attribute bits of GPT entry `number` (bit 2: legacy BIOS bootable).
pub fn set_gpt_attributes(root: &Path, disk: &str, number: usize, attributes: u64) {
    set_gpt_entry_field(root, disk, number, 48, &attributes.to_le_bytes());
}

pub fn set_gpt_entry_field(root: &Path, disk: &str, number: usize, offset: usize, bytes: &[u8]) {
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
pub fn healthy() -> (tempfile::TempDir, PathBuf) {
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

pub fn report(root: &Path) -> DoctorReport {
    examine(&RootedSource::captured(root)).expect("doctor reads the tree")
}

pub fn find<'a>(r: &'a DoctorReport, name: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {:#?}", r.checks))
}

pub fn argvs(r: &DoctorReport) -> Vec<String> {
    r.fixes
        .iter()
        .flat_map(|a| a.steps.iter().map(|s| s.to_string()))
        .collect()
}
