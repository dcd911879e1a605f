//! Discovery and planning on trees captured from the lab's real guests (refresh them with
//! `cargo run -p xenraid-lab -- capture tests/fixtures/capture.sh tests/fixtures/lab`).
//! The guests' system disk has serial XRLAB-SYS0 / WWN 0x5000c500a0000001, the blank
//! target XRLAB-TGT0 / WWN 0x5000c500a0000002 (lab/src/images.rs).

use std::path::PathBuf;
use xenraid::host::{discover, BootMode, HostFacts, HostSource, RootedSource};
use xenraid::plan::render::render_plan;
use xenraid::plan::{build_plan, Intent, Plan, SrChoice};

const TARGET: &str = "/dev/disk/by-id/wwn-0x5000c500a0000002";
const SYSTEM: &str = "/dev/disk/by-id/wwn-0x5000c500a0000001";

fn lab_facts(guest: &str) -> HostFacts {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lab")
        .join(guest);
    let source = RootedSource::captured(&root);
    discover(&source as &dyn HostSource).expect("lab capture discovers")
}

fn plan(facts: &HostFacts, target: &str) -> Plan {
    build_plan(
        facts,
        &Intent {
            target: target.into(),
            wipe_target: false,
            sr: SrChoice::Create {
                name_label: "Local storage".into(),
            },
            program: xenraid::plan::DEFAULT_PROGRAM.into(),
        },
    )
}

fn system_disk(facts: &HostFacts) -> &xenraid::host::Disk {
    facts
        .disks
        .iter()
        .find(|d| d.serial.as_deref() == Some("XRLAB-SYS0"))
        .expect("system disk by serial")
}

fn labels(facts: &HostFacts) -> Vec<String> {
    system_disk(facts)
        .partitions
        .iter()
        .filter_map(|p| p.label.clone())
        .collect()
}

fn check_guest(guest: &str, version: &str, mode: BootMode, parts: &[u32], label_prefixes: &[&str]) {
    let facts = lab_facts(guest);
    assert_eq!(facts.product.version, version, "{guest} product");
    assert_eq!(facts.boot.mode, mode, "{guest} boot mode");
    let sys = system_disk(&facts);
    assert_eq!(
        sys.wwn.as_deref(),
        Some("0x5000c500a0000001"),
        "{guest} WWN"
    );
    let mut numbers: Vec<u32> = sys.partitions.iter().map(|p| p.number).collect();
    numbers.sort();
    assert_eq!(numbers, parts, "{guest} partitions");
    let found = labels(&facts);
    for prefix in label_prefixes {
        assert!(
            found
                .iter()
                .any(|l| l.starts_with(prefix) && l.len() == prefix.len() + 6),
            "{guest}: no {prefix}xxxxxx label in {found:?}"
        );
    }
    let good = plan(&facts, TARGET);
    assert!(
        !good.refused(),
        "{guest}: plan onto the blank disk refused:\n{}",
        render_plan(&good)
    );
    insta::assert_snapshot!(format!("lab-{guest}-plan"), render_plan(&good));
    let own = plan(&facts, SYSTEM);
    let failed: Vec<&str> = own
        .preflight
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        failed.contains(&"target-not-in-use"),
        "{guest}: plan onto the system disk: {failed:?}"
    );
}

#[test]
fn xs7_bios_capture() {
    check_guest(
        "xs7-bios",
        "7.6.0",
        BootMode::Bios,
        &[1, 2, 3, 5, 6],
        &["root-", "logs-", "swap-"],
    );
}

#[test]
fn xs65_bios_capture() {
    let facts = lab_facts("xs65-bios");
    let p1 = system_disk(&facts)
        .partitions
        .iter()
        .find(|p| p.number == 1)
        .expect("p1");
    assert!(
        p1.legacy_bios_bootable,
        "6.5's root partition carries the legacy-BIOS-bootable attribute"
    );
    check_guest("xs65-bios", "6.5.0", BootMode::Bios, &[1, 2, 3], &["root-"]);
}

#[test]
fn xcpng8_uefi_capture() {
    check_guest(
        "xcpng8-uefi",
        "8.2.1",
        BootMode::Uefi,
        &[1, 2, 4, 5, 6],
        &["root-", "logs-", "swap-", "BOOT-"],
    );
}
