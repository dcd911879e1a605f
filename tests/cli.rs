//! The binary: exit codes and outputs on captured hosts.

mod common;

use assert_cmd::Command;

fn xenraid() -> Command {
    Command::cargo_bin("xenraid").expect("binary")
}

#[test]
fn inspect_json_on_a_captured_tree() {
    let out = xenraid()
        .args(["inspect", "--json", "--root"])
        .arg(common::fixture("xs7-bios-boot-p3"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(json["product"]["brand"], "XenServer");
    assert_eq!(json["boot"]["mode"], "bios");
    assert_eq!(json["disks"][0]["serial"], "WD-WCC6Y3KXN0AB");
    assert_eq!(json["disks"][0]["partitions"][0]["label"], "root-ocmtfp");
}

#[test]
fn inspect_text_is_a_table() {
    let out = xenraid()
        .arg("inspect")
        .arg("--root")
        .arg(common::fixture("xs65-bios"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.contains("syslinuxgptmbr"));
    assert!(text.contains("root-vbzwtkpe"));
}

#[test]
fn plan_succeeds_and_prints_json() {
    let out = xenraid()
        .args(["plan", "--json", "--target", "/dev/sdb", "--root"])
        .arg(common::fixture("debian-bios"))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(json["profile"], "plain_grub2");
    assert_eq!(json["target"]["serial"], "QM00002");
}

#[test]
fn refused_plan_exits_3() {
    xenraid()
        .args(["plan", "--target", "/dev/sda", "--root"])
        .arg(common::fixture("xs7-bios-boot-p3"))
        .assert()
        .code(3)
        .stdout(predicates::str::contains("FAIL  target-not-in-use"))
        .stdout(predicates::str::contains("REFUSED"));
}

#[test]
fn usage_error_exits_2() {
    xenraid().args(["plan"]).assert().code(2);
    xenraid()
        .args(["plan", "--target", "/dev/sdb", "--no-sr", "--sr-name", "x"])
        .assert()
        .code(2);
}

#[test]
fn missing_root_is_a_runtime_error() {
    xenraid()
        .args(["inspect", "--root", "/nonexistent/xenraid-tree"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("mountinfo"));
}

#[test]
fn add_mirror_wants_the_live_host_and_two_comma_separated_disks() {
    let out = xenraid()
        .args([
            "add-mirror",
            "--disks",
            "/dev/sdc,/dev/sdd",
            "--yes",
            "--root",
        ])
        .arg(common::fixture("xs7-bios-boot-p3"))
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    assert!(String::from_utf8_lossy(&out).contains("live host only"));
    xenraid().args(["add-mirror", "--yes"]).assert().code(2);
}
