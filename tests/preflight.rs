//! Each preflight check fails on its own bad input, and a refused plan has nothing to run.

mod common;

use xenraid::host::parse::lvm::PhysicalVolume;
use xenraid::host::parse::xe::StorageRepository;
use xenraid::host::{HostFacts, MdArray, Partition};
use xenraid::plan::{build_plan, Intent, Plan, SrChoice};

fn intent(target: &str, wipe: bool) -> Intent {
    Intent {
        target: target.into(),
        wipe_target: wipe,
        sr: SrChoice::Create {
            name_label: "Local storage".into(),
        },
        program: xenraid::plan::DEFAULT_PROGRAM.into(),
    }
}

fn failing(plan: &Plan) -> Vec<&str> {
    plan.preflight
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect()
}

fn check<'p>(plan: &'p Plan, name: &str) -> &'p xenraid::plan::Check {
    plan.preflight
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

fn assert_refused(plan: &Plan) {
    assert!(plan.refused());
    assert!(plan.phases.is_empty(), "a refused plan has no steps");
}

fn partition(name: &str, number: u32, fs: Option<&str>) -> Partition {
    Partition {
        name: name.into(),
        number,
        dev: format!("8:{}", 16 + number),
        start_sector: 2048,
        size_sectors: 2048 * 1024,
        type_guid: None,
        part_name: None,
        part_uuid: None,
        legacy_bios_bootable: false,
        fs_type: fs.map(str::to_string),
        label: None,
        uuid: None,
        ambivalent_signatures: false,
        mount_point: None,
        swap: false,
        holders: Vec::new(),
    }
}

fn sdb(facts: &mut HostFacts) -> &mut xenraid::host::Disk {
    facts
        .disks
        .iter_mut()
        .find(|d| d.name == "sdb")
        .expect("sdb")
}

#[test]
fn good_host_passes_every_check() {
    let plan = build_plan(
        &common::facts("xs7-bios-boot-p3"),
        &intent("/dev/sdb", false),
    );
    assert!(failing(&plan).is_empty(), "{:?}", plan.preflight);
    assert_eq!(plan.phases.len(), 3);
}

#[test]
fn unknown_target() {
    let plan = build_plan(
        &common::facts("xs7-bios-boot-p3"),
        &intent("/dev/sdz", false),
    );
    assert_eq!(failing(&plan), vec!["target-found"]);
    assert!(check(&plan, "target-found").fix.contains("/dev/sdb"));
    assert_refused(&plan);
}

#[test]
fn target_holding_root() {
    let plan = build_plan(
        &common::facts("xs7-bios-boot-p3"),
        &intent("/dev/sda", true),
    );
    assert!(failing(&plan).contains(&"target-not-in-use"));
    assert!(check(&plan, "target-not-in-use")
        .message
        .contains("holds the running root"));
    assert_refused(&plan);
}

#[test]
fn target_too_small_says_by_how_much() {
    let mut facts = common::facts("xs7-bios-boot-p3");
    sdb(&mut facts).size_bytes -= 1 << 30;
    let plan = build_plan(&facts, &intent("/dev/sdb", false));
    assert_eq!(failing(&plan), vec!["target-large-enough"]);
    let message = &check(&plan, "target-large-enough").message;
    assert!(
        message.contains("1073741824 bytes (1.0 GiB) too small"),
        "{message}"
    );
    assert_refused(&plan);
}

#[test]
fn stale_md_superblock_and_ext4_refused_unless_wipe() {
    let mut facts = common::facts("xs7-bios-boot-p3");
    let disk = sdb(&mut facts);
    disk.probe.pt_type = Some("gpt".into());
    disk.partitions = vec![
        partition("sdb1", 1, Some("linux_raid_member")),
        partition("sdb2", 2, Some("ext4")),
    ];
    let plan = build_plan(&facts, &intent("/dev/sdb", false));
    assert_eq!(failing(&plan), vec!["target-blank"]);
    let message = &check(&plan, "target-blank").message;
    assert!(
        message.contains("linux_raid_member") && message.contains("ext4"),
        "{message}"
    );
    assert!(check(&plan, "target-blank").fix.contains("--wipe-target"));
    assert_refused(&plan);

    let wiped = build_plan(&facts, &intent("/dev/sdb", true));
    assert!(!wiped.refused(), "{:?}", wiped.preflight);
    assert_eq!(wiped.phases[0].steps[0].id, "wipe-target");
}

#[test]
fn lvm_pv_on_target_is_in_use_even_with_wipe() {
    let mut facts = common::facts("xs7-bios-boot-p3");
    let disk = sdb(&mut facts);
    disk.probe.pt_type = Some("gpt".into());
    disk.partitions = vec![partition("sdb1", 1, Some("LVM2_member"))];
    facts.physical_volumes.push(PhysicalVolume {
        device: "/dev/sdb1".into(),
        vg_name: Some("VG_XenStorage-0a1b2c3d-0000-1111-2222-333344445555".into()),
        uuid: None,
    });
    let plan = build_plan(&facts, &intent("/dev/sdb", true));
    let failed = failing(&plan);
    assert!(failed.contains(&"target-not-in-use"), "{failed:?}");
    assert!(failed.contains(&"target-blank"), "{failed:?}");
    assert!(check(&plan, "target-not-in-use")
        .message
        .contains("LVM physical volume"));
    assert_refused(&plan);
}

#[test]
fn tools_missing_are_named() {
    let mut facts = common::facts("xs7-bios-boot-p3");
    facts.tools.insert("mdadm".into(), None);
    facts.tools.insert("sgdisk".into(), None);
    let plan = build_plan(&facts, &intent("/dev/sdb", false));
    assert_eq!(failing(&plan), vec!["tools-present"]);
    assert_eq!(
        check(&plan, "tools-present").message,
        "missing: mdadm, sgdisk"
    );
    assert_refused(&plan);
}

#[test]
fn half_converted_points_to_resume() {
    let mut facts = common::facts("xs7-bios-boot-p3");
    facts.arrays.push(MdArray {
        name: "md127".into(),
        dev: Some("9:127".into()),
        uuid: Some("11111111:22222222:33333333:44444444".into()),
        md_name: Some("xenraid:root".into()),
        level: Some("raid1".into()),
        metadata: Some("1.2".into()),
        array_state: Some("clean".into()),
        degraded: Some(1),
        sync_action: Some("idle".into()),
        members: vec!["sdb1".into()],
        mdstat: None,
    });
    let plan = build_plan(&facts, &intent("/dev/sdb", false));
    assert_eq!(failing(&plan), vec!["not-already-converted"]);
    let c = check(&plan, "not-already-converted");
    assert!(c.message.contains("half converted") && c.message.contains("md127"));
    assert!(c.fix.contains("xenraid resume"));
    assert_refused(&plan);
}

#[test]
fn root_already_on_md() {
    let mut facts = common::facts("xs7-bios-boot-p3");
    let root = facts
        .mounts
        .iter_mut()
        .find(|m| m.mount_point == "/")
        .expect("root");
    root.source = "/dev/md127".into();
    // The source disk is found through the root's partition; keep it so the rest still plans.
    let plan = build_plan(&facts, &intent("/dev/sdb", false));
    let c = check(&plan, "not-already-converted");
    assert!(!c.passed && c.message.contains("/dev/md127"));
    assert_refused(&plan);
}

#[test]
fn sr_on_a_partition_to_mirror_prints_the_xe_commands() {
    let mut facts = common::facts("xs7-bios-boot-p4");
    let sr_uuid = "7a7c8d2f-1b2c-3d4e-5f60-718293a4b5c6";
    facts.physical_volumes.push(PhysicalVolume {
        device: "/dev/sda3".into(),
        vg_name: Some(format!("VG_XenStorage-{sr_uuid}")),
        uuid: None,
    });
    facts.storage_repositories.push(StorageRepository {
        uuid: sr_uuid.into(),
        name_label: "Local storage".into(),
        sr_type: "lvm".into(),
        devices: vec!["/dev/disk/by-id/ata-WDC_WD5000AAKX-08U6AA0_WD-WCC6Y3KXN0AB-part3".into()],
        pbd_uuids: vec!["11111111-2222-3333-4444-555555555555".into()],
    });
    let plan = build_plan(&facts, &intent("/dev/sdb", false));
    assert_eq!(failing(&plan), vec!["sr-not-on-mirrored-partition"]);
    let c = check(&plan, "sr-not-on-mirrored-partition");
    assert!(c.message.contains(sr_uuid));
    assert!(c
        .fix
        .contains("xe pbd-unplug uuid=11111111-2222-3333-4444-555555555555"));
    assert!(c.fix.contains(&format!("xe sr-destroy uuid={sr_uuid}")));
    assert_refused(&plan);
}

#[test]
fn unrecognised_layout_says_what_was_seen() {
    let mut facts = common::facts("xs7-bios-boot-p3");
    facts.product.version = "5.6.0".into();
    let plan = build_plan(&facts, &intent("/dev/sdb", false));
    assert_eq!(failing(&plan), vec!["source-layout"]);
    let message = &check(&plan, "source-layout").message;
    assert!(
        message.contains("XenServer 5.6.0") && message.contains("Grub2"),
        "{message}"
    );
    assert_refused(&plan);
}
