//! `xenraid doctor` over a converted host: the eight arrays captured from real md
//! (tests/fixtures/md/states) with what a converted XenServer 7 host has around them — `/` on
//! md127, mdadm.conf, an initramfs built here (uncompressed microcode cpio + gzip'd main cpio),
//! the dracut conf, GRUB in sdb's MBR and core.img in a BIOS boot partition, the monitor and an
//! alert channel. Every test breaks one invariant and reads what doctor says and plans.

use std::fs;

use xenraid::doctor::facts::{gather, normalize_uuid};
use xenraid::doctor::fix::{execute, FixStep};
use xenraid::doctor::initramfs::{newc_archive, scan};
use xenraid::doctor::{checks, Status, EXIT_CHECK_FAILED};
use xenraid::exec::RecordingRunner;
use xenraid::host::RootedSource;
use xenraid::plan::edits::DRACUT_CONF;

mod doctor_host;
use doctor_host::*;

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
