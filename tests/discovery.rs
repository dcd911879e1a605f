//! HostFacts built from captured host trees match what is on those hosts.

mod common;

use common::facts;
use xenraid::host::parse::mbr::BootCode;
use xenraid::host::{BootMode, InitSystem, InitramfsTool, LoaderKind, ProductKind};

#[test]
fn xenserver7_bios_without_sr() {
    let facts = facts("xs7-bios-boot-p3");
    assert_eq!(facts.product.kind, ProductKind::XenServer);
    assert_eq!(facts.product.version, "7.6.0");
    assert_eq!(facts.boot.mode, BootMode::Bios);
    assert_eq!(facts.boot.loader, Some(LoaderKind::Grub2));
    assert_eq!(facts.boot.initramfs_tool, Some(InitramfsTool::Dracut));
    let sda = facts.disk("sda").expect("sda");
    assert_eq!(sda.serial.as_deref(), Some("WD-WCC6Y3KXN0AB"));
    assert_eq!(sda.wwn.as_deref(), Some("0x50014ee2b5c1a0ab"));
    assert_eq!(sda.boot_code, BootCode::Grub2);
    assert_eq!(sda.size_bytes, 1048576000 * 512);
    let numbers: Vec<u32> = sda.partitions.iter().map(|p| p.number).collect();
    assert_eq!(numbers, vec![1, 2, 3, 5, 6]);
    assert!(sda.partition(3).expect("p3").is_bios_boot());
    let root = sda.partition(1).expect("p1");
    assert_eq!(root.label.as_deref(), Some("root-ocmtfp"));
    assert_eq!(root.mount_point.as_deref(), Some("/"));
    assert!(sda.partition(6).expect("p6").swap);
    assert_eq!(
        sda.partition(5).expect("p5").mount_point.as_deref(),
        Some("/var/log")
    );
    assert!(facts.disk("sdb").expect("sdb").partitions.is_empty());
    assert_eq!(facts.fstab.len(), 4);
    assert!(facts.files.contains_key("/boot/grub/grub.cfg"));
    assert!(facts.warnings.is_empty(), "{:?}", facts.warnings);
}

#[test]
fn xenserver7_bios_with_sr_partition() {
    let facts = facts("xs7-bios-boot-p4");
    let sda = facts.disk("sda").expect("sda");
    assert!(sda.partition(4).expect("p4").is_bios_boot());
    let sr = sda.partition(3).expect("p3");
    assert_eq!(sr.type_guid.as_deref(), Some(xenraid::host::GPT_LINUX_LVM));
    assert_eq!(sr.fs_type, None);
}

#[test]
fn xenserver65_extlinux() {
    let facts = facts("xs65-bios");
    assert_eq!(facts.product.major_version(), Some(6));
    assert_eq!(facts.boot.loader, Some(LoaderKind::Extlinux));
    assert_eq!(facts.boot.initramfs_tool, Some(InitramfsTool::Mkinitrd));
    // 6.5's dom0 is CentOS 5: SysV init from /etc/inittab, no systemd.
    assert_eq!(facts.boot.init, InitSystem::Sysv);
    assert_eq!(
        facts.boot.gptmbr_path.as_deref(),
        Some("/usr/share/syslinux/gptmbr.bin")
    );
    let sda = facts.disk("sda").expect("sda");
    assert_eq!(sda.boot_code, BootCode::SyslinuxGptMbr);
    assert!(sda.partition(1).expect("p1").legacy_bios_bootable);
    assert!(!sda.partition(2).expect("p2").legacy_bios_bootable);
    let entry = facts.boot.default_entry().expect("default");
    assert_eq!(entry.root_arg(), Some("LABEL=root-vbzwtkpe"));
    assert_eq!(entry.hypervisor.as_deref(), Some("/boot/xen.gz"));
    assert!(facts.swaps.iter().all(|s| s.kind == "file"));
}

#[test]
fn xcpng8_uefi() {
    let facts = facts("xcpng8-uefi");
    assert_eq!(facts.product.kind, ProductKind::XcpNg);
    assert_eq!(facts.boot.mode, BootMode::Uefi);
    assert_eq!(
        facts.boot.config_path.as_deref(),
        Some("/boot/efi/EFI/xenserver/grub.cfg")
    );
    assert_eq!(facts.boot.efi_loaders, vec!["grubx64.efi".to_string()]);
    let vda = facts.disk("vda").expect("vda");
    assert_eq!(vda.stable_path(), "/dev/disk/by-id/virtio-XR0SRC01");
    let esp = vda.partition(4).expect("p4");
    assert!(esp.is_esp());
    assert_eq!(esp.mount_point.as_deref(), Some("/boot/efi"));
}

#[test]
fn debian_grub2() {
    let facts = facts("debian-bios");
    assert_eq!(facts.product.kind, ProductKind::Linux);
    assert_eq!(facts.product.os_id.as_deref(), Some("debian"));
    assert_eq!(
        facts.boot.initramfs_tool,
        Some(InitramfsTool::InitramfsTools)
    );
    let config = facts.boot.config.as_ref().expect("grub.cfg");
    assert!(config.has_next_entry);
    assert_eq!(config.default.as_deref(), Some("0"));
    let sda = facts.disk("sda").expect("sda");
    assert_eq!(
        sda.partition(2).expect("p2").fs_type.as_deref(),
        Some("ext4")
    );
    assert_eq!(
        sda.partition(1).expect("p1").part_name.as_deref(),
        Some("bios")
    );
}

/// An md array is known from sysfs and the udev database (mdadm's rule records MD_UUID and
/// MD_NAME), or from its members' superblocks: no `mdadm --detail` (none is recorded here).
#[test]
fn md_arrays_without_mdadm() {
    use xenraid::host::{discover, HostSource, RootedSource};
    let dir = tempfile::tempdir().expect("tempdir");
    let put = |path: &str, text: &str| {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    put("proc/self/mountinfo", "");
    put(
        "proc/mdstat",
        "Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n      1048512 blocks super 1.2 [2/1] [U_]\n\nmd1 : active raid1 sda2[0]\n      1048512 blocks super 1.2 [2/1] [U_]\n\nunused devices: <none>\n",
    );
    for (md, dev) in [("md0", "9:0"), ("md1", "9:1")] {
        put(&format!("sys/block/{md}/dev"), dev);
        put(&format!("sys/block/{md}/md/level"), "raid1");
        put(&format!("sys/block/{md}/md/metadata_version"), "1.2");
        put(&format!("sys/block/{md}/md/array_state"), "clean");
    }
    put("sys/block/md0/slaves/sda1", "");
    put("sys/block/md1/slaves/sda2", "");
    put(
        "run/udev/data/b9:0",
        "E:MD_LEVEL=raid1\nE:MD_UUID=b6eafb52:53b1c0ed:03b029cd:ce0fa6bf\nE:MD_NAME=xenraid:root\n",
    );
    // md1: udev knows nothing; its member's superblock says (blkid's record of sda2 here).
    put("sys/block/sda/dev", "8:0");
    put("sys/block/sda/size", "4194304");
    for (n, start) in [(1, 2048), (2, 2099200)] {
        put(&format!("sys/block/sda/sda{n}/partition"), &n.to_string());
        put(&format!("sys/block/sda/sda{n}/start"), &start.to_string());
        put(&format!("sys/block/sda/sda{n}/size"), "2097152");
    }
    put(
        "cmd/blkid_-p_-o_export__dev_sda2.out",
        "UUID=7b4bae54-236b-1e2f-7f1a-7a0ee4610009\nLABEL=xenraid:logs\nTYPE=linux_raid_member\nUSAGE=raid\n",
    );
    let source = RootedSource::captured(dir.path());
    let facts = discover(&source as &dyn HostSource).expect("discovers");
    let md0 = facts.arrays.iter().find(|a| a.name == "md0").expect("md0");
    assert_eq!(
        md0.uuid.as_deref(),
        Some("b6eafb52:53b1c0ed:03b029cd:ce0fa6bf")
    );
    assert_eq!(md0.md_name.as_deref(), Some("xenraid:root"));
    let md1 = facts.arrays.iter().find(|a| a.name == "md1").expect("md1");
    assert_eq!(
        md1.uuid.as_deref(),
        Some("7b4bae54:236b1e2f:7f1a7a0e:e4610009")
    );
    assert_eq!(md1.md_name.as_deref(), Some("xenraid:logs"));
    assert_eq!(md1.level.as_deref(), Some("raid1"));
}
