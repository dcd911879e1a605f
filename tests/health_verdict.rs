//! The verdict `status --check` gives (Nagios codes) for each kind of trouble.

use xenraid::health::md_sysfs::{ArrayHealth, MemberHealth, MemberRole, SyncState};
use xenraid::health::verdict::judge;
use xenraid::health::{DiskHealth, Severity};
use xenraid::host::parse::mbr::BootCode;

fn member(device: &str, disk: &str, slot: Option<u32>, role: MemberRole) -> MemberHealth {
    MemberHealth {
        device: device.into(),
        disk: Some(disk.into()),
        role,
        slot,
        flags: Vec::new(),
        errors: 0,
    }
}

fn mirror(name: &str) -> ArrayHealth {
    ArrayHealth {
        device: format!("md{}", name.len()),
        name: Some(name.into()),
        level: "raid1".into(),
        state: "clean".into(),
        raid_disks: 2,
        missing: 0,
        sync_action: "idle".into(),
        sync: None,
        sync_delayed: false,
        resync_pending: false,
        bitmap: Some("+8".into()),
        mismatch_sectors: Some(0),
        metadata: Some("1.2".into()),
        uuid: None,
        size_bytes: 1 << 30,
        members: vec![
            member("sda1", "sda", Some(0), MemberRole::Active),
            member("sdb1", "sdb", Some(1), MemberRole::Active),
        ],
    }
}

fn disk(name: &str, bootable: bool) -> DiskHealth {
    DiskHealth {
        name: name.into(),
        serial: Some(format!("SER-{name}")),
        by_id: None,
        serves: Vec::new(),
        boot_code: if bootable {
            BootCode::Grub2
        } else {
            BootCode::Empty
        },
        has_esp: false,
        bootable,
    }
}

fn disks() -> Vec<DiskHealth> {
    vec![disk("sda", true), disk("sdb", true)]
}

#[test]
fn healthy_mirrors_are_ok() {
    let v = judge(&[mirror("root"), mirror("logs")], &disks(), true);
    assert_eq!(v.severity, Severity::Ok);
    assert_eq!(v.severity.exit_code(), 0);
    assert_eq!(v.summary, "RAID OK - 2 arrays in sync, 2 disks, 2 bootable");
}

#[test]
fn a_missing_or_faulty_member_is_critical_and_names_it() {
    let mut missing = mirror("root");
    missing.missing = 1;
    missing.members.pop();
    let v = judge(&[missing, mirror("logs")], &disks(), true);
    assert_eq!(v.severity, Severity::Critical);
    assert_eq!(v.severity.exit_code(), 2);
    assert!(
        v.summary
            .starts_with("RAID CRITICAL - md/root degraded (1 of 2 members missing)"),
        "{}",
        v.summary
    );

    let mut faulty = mirror("sr");
    faulty.members[1].role = MemberRole::Faulty;
    let v = judge(&[faulty], &disks(), true);
    assert_eq!(v.severity, Severity::Critical);
    assert!(v.summary.contains("faulty: sdb1"), "{}", v.summary);
}

#[test]
fn a_rebuild_stays_critical_until_redundant_and_shows_progress() {
    let mut a = mirror("root");
    a.missing = 1;
    a.sync_action = "recover".into();
    a.members[1].role = MemberRole::Rebuilding;
    a.sync = Some(SyncState {
        done_sectors: 250,
        total_sectors: 1000,
        speed_kib: Some(100),
        eta_seconds: Some(3),
    });
    let v = judge(&[a], &disks(), true);
    assert_eq!(v.severity, Severity::Critical);
    assert!(v.summary.contains("rebuilding 25.0%"), "{}", v.summary);
    assert!(
        v.problems[0].fix.is_none(),
        "nothing to do while it rebuilds"
    );
}

#[test]
fn a_running_check_a_missing_bitmap_and_mismatches_warn() {
    let mut check = mirror("root");
    check.sync_action = "check".into();
    let v = judge(&[check], &disks(), true);
    assert_eq!((v.severity, v.severity.exit_code()), (Severity::Warning, 1));
    assert!(v.summary.contains("check running"), "{}", v.summary);

    let mut no_bitmap = mirror("sr");
    no_bitmap.bitmap = None;
    let v = judge(&[no_bitmap], &disks(), true);
    assert_eq!(v.severity, Severity::Warning);
    assert_eq!(
        v.problems[0].fix.as_deref(),
        Some("mdadm --grow --bitmap=internal /dev/md2")
    );

    let mut mismatched = mirror("logs");
    mismatched.mismatch_sectors = Some(128);
    let v = judge(&[mismatched], &disks(), true);
    assert_eq!(v.severity, Severity::Warning);
    assert!(v.summary.contains("128 sectors differed"), "{}", v.summary);
}

#[test]
fn a_mirror_disk_without_boot_code_warns() {
    let v = judge(
        &[mirror("root")],
        &[disk("sda", true), disk("sdb", false)],
        true,
    );
    assert_eq!(v.severity, Severity::Warning);
    assert_eq!(v.problems[0].subject, "sdb");
    // An SR mirror on two data disks needs no boot code.
    let v = judge(
        &[mirror("sr2")],
        &[disk("sda", false), disk("sdb", false)],
        true,
    );
    assert_eq!(v.severity, Severity::Ok);
}

#[test]
fn no_md_is_unknown() {
    let v = judge(&[], &[], false);
    assert_eq!((v.severity, v.severity.exit_code()), (Severity::Unknown, 3));
    assert!(v.summary.contains("not loaded"));
    assert_eq!(judge(&[], &[], true).severity, Severity::Unknown);
}

#[test]
fn the_worst_problem_decides() {
    let mut degraded = mirror("root");
    degraded.missing = 1;
    let mut check = mirror("logs");
    check.sync_action = "check".into();
    let v = judge(&[check, degraded], &disks(), true);
    assert_eq!(v.severity, Severity::Critical);
    assert_eq!(v.problems.len(), 2);
    assert_eq!(v.problems[0].severity, Severity::Critical);
}

#[test]
fn a_first_sync_held_back_by_read_auto_is_a_warning_with_the_way_to_start_it() {
    let mut a = mirror("sr");
    a.state = "read-auto".into();
    a.resync_pending = true;
    let v = judge(&[a, mirror("root")], &disks(), true);
    assert_eq!(v.severity, Severity::Warning);
    assert!(v.summary.contains("resync pending"), "{}", v.summary);
    let fix = v.problems[0].fix.as_deref().unwrap_or_default();
    assert!(fix.contains("mdadm --readwrite /dev/md2"), "{fix}");
}
