//! `status` on real md: eight arrays on a lab guest, each caught in one state
//! (tests/fixtures/md-states.sh built them and captured what status reads).

use std::path::PathBuf;

use xenraid::health::md_sysfs::MemberRole;
use xenraid::health::{report, HealthReport, Severity};
use xenraid::host::RootedSource;

fn captured() -> HealthReport {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/md/states");
    report(&RootedSource::captured(&root))
}

fn roles(r: &HealthReport, name: &str) -> Vec<(String, MemberRole)> {
    let a = r
        .arrays
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no md/{name}"));
    a.members
        .iter()
        .map(|m| (m.device.clone(), m.role))
        .collect()
}

#[test]
fn every_array_is_found_by_its_stable_name() {
    let r = captured();
    let mut names: Vec<&str> = r.arrays.iter().filter_map(|a| a.name.as_deref()).collect();
    names.sort();
    assert_eq!(
        names,
        ["check", "clean", "degraded", "faulty", "nobitmap", "recovery", "resync", "spare"]
    );
    assert!(r
        .arrays
        .iter()
        .all(|a| a.level == "raid1" && a.raid_disks == 2));
}

#[test]
fn member_roles_match_what_was_done_to_each_array() {
    use MemberRole::*;
    let r = captured();
    let d = |s: &str| s.to_string();
    assert_eq!(
        roles(&r, "clean"),
        [(d("sdb1"), Active), (d("sdb2"), Active)]
    );
    assert_eq!(roles(&r, "degraded"), [(d("sdb5"), Active)]);
    assert_eq!(
        roles(&r, "faulty"),
        [(d("sdb7"), Active), (d("sdb8"), Faulty)]
    );
    assert_eq!(
        roles(&r, "spare"),
        [
            (d("sdb9"), Active),
            (d("sdb10"), Active),
            (d("sdb11"), Spare)
        ]
    );
    assert_eq!(
        roles(&r, "recovery"),
        [(d("sdb12"), Active), (d("sdb13"), Rebuilding)]
    );
}

#[test]
fn states_sync_and_bitmaps_are_read() {
    let r = captured();
    let get = |n: &str| {
        r.arrays
            .iter()
            .find(|a| a.name.as_deref() == Some(n))
            .unwrap()
    };
    assert_eq!(get("degraded").missing, 1);
    assert_eq!(get("recovery").missing, 1);
    assert_eq!(get("recovery").sync_action, "recover");
    assert_eq!(get("resync").sync_action, "resync");
    let resync = get("resync").sync.as_ref().expect("resync progress");
    assert!(resync.done_sectors < resync.total_sectors && resync.total_sectors > 0);
    assert_eq!(get("check").sync_action, "check");
    assert_eq!(get("nobitmap").bitmap, None);
    assert_eq!(get("nobitmap").metadata.as_deref(), Some("0.90"));
    assert_eq!(
        get("clean").bitmap.as_deref(),
        Some("internal, 65536 KiB chunk")
    );
    assert_eq!(get("clean").sync_action, "idle");
}

#[test]
fn the_disk_is_named_by_serial_and_cannot_boot() {
    let r = captured();
    assert_eq!(r.disks.len(), 1);
    let d = &r.disks[0];
    assert_eq!(d.name, "sdb");
    assert_eq!(d.serial.as_deref(), Some("XRLAB-TGT0"));
    assert_eq!(
        d.by_id.as_deref(),
        Some("/dev/disk/by-id/wwn-0x5000c500a0000002")
    );
    assert!(!d.bootable);
}

#[test]
fn the_verdict_is_critical_and_lists_every_problem() {
    let r = captured();
    assert_eq!(r.verdict.severity, Severity::Critical);
    let about = |subject: &str| {
        r.verdict
            .problems
            .iter()
            .filter(|p| p.subject == subject)
            .map(|p| p.severity)
            .collect::<Vec<_>>()
    };
    assert_eq!(about("md/degraded"), [Severity::Critical]);
    assert_eq!(about("md/faulty"), [Severity::Critical]);
    assert_eq!(about("md/recovery"), [Severity::Critical]);
    assert_eq!(about("md/nobitmap"), [Severity::Warning]);
    assert_eq!(about("md/resync"), [Severity::Warning]);
    assert_eq!(about("md/check"), [Severity::Warning]);
    assert!(about("md/clean").is_empty() && about("md/spare").is_empty());
}

/// `status` takes what /proc/mdstat says from it (fewer sysfs reads); on real md output,
/// captured in one go, both ways must see the same arrays, members, states and progress.
#[test]
fn the_quick_read_through_mdstat_agrees_with_sysfs() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/md/states");
    let src = RootedSource::captured(&root);
    let quick = xenraid::health::quick_report(&src);
    assert_eq!(quick.arrays.len(), 8);
    assert_eq!(quick, report(&src));
}
