//! The engine when things go wrong: a failing command tried again or not, a crash mid-step,
//! a requested stop, a failed guard, a boot that came back on the original, arrays udev still
//! holds, a resync `--no-wait` must not outrun.

mod engine_harness;

use engine_harness::*;

const WIPE_PART1: &str = "wipefs --all /dev/disk/by-id/wwn-0x5000c500a0000002-part1";

fn runs_of(sys: &Scripted, text: &str) -> usize {
    sys.events
        .borrow()
        .iter()
        .filter(|e| *e == &format!("run {text}"))
        .count()
}

/// Runs the lab plan with the first `wipefs` of the target's partition 1 failing once with
/// `stderr`.
fn run_with_wipefs_failing_once(
    stderr: &str,
) -> (Scripted, Journal, Result<Outcome, ConvertError>) {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    let sys = Scripted {
        fail_once: RefCell::new(Some((WIPE_PART1.into(), stderr.into()))),
        ..Scripted::default()
    };
    let result = run_plan(&sys, &store, &mut journal, &quiet);
    (sys, journal, result)
}

#[test]
fn a_device_udev_was_re_creating_is_tried_again() {
    // What the bench hit: udev re-read the new partition table once more after `settle`,
    // and wipefs found no -part1 link for an instant.
    let (sys, journal, result) = run_with_wipefs_failing_once(
        "wipefs: error: /dev/disk/by-id/wwn-0x5000c500a0000002-part1: probing initialization failed: No such file or directory",
    );
    result.unwrap();
    assert_eq!(runs_of(&sys, WIPE_PART1), 2);
    assert_eq!(journal.status("clear-target-signatures"), StepStatus::Done);
}

#[test]
fn any_other_failure_is_not_retried() {
    let (sys, journal, result) = run_with_wipefs_failing_once(
        "wipefs: error: /dev/disk/by-id/wwn-0x5000c500a0000002-part1: Device or resource busy",
    );
    let err = result.unwrap_err();
    assert!(err.to_string().contains("busy"), "{err}");
    assert_eq!(runs_of(&sys, WIPE_PART1), 1);
    assert_ne!(journal.status("clear-target-signatures"), StepStatus::Done);
}

#[test]
fn a_crash_mid_copy_reruns_the_copy_and_nothing_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    let ids = phase1_ids(&journal.plan);
    for id in ids.iter().take_while(|id| *id != "copy-files") {
        journal.mark(id, StepStatus::Done, None);
    }
    journal.mark("copy-files", StepStatus::Started, None);
    let sys = Scripted::default();
    run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    let commands = sys.commands.borrow();
    assert!(
        !commands.iter().any(|a| a[0] == "mkfs.ext3"),
        "no mkfs after a crash mid-copy"
    );
    assert!(commands.iter().any(|a| a[0] == "cp" && a[1] == "-ax"));
}

#[test]
fn a_requested_stop_before_the_point_of_no_return_touches_nothing_of_phase_two() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut opts = options();
    opts.stop_before = Some("point-of-no-return".into());
    let mut journal = Journal::new(lab_plan(), opts);
    let sys = Scripted::default();
    sys.on_raid.set(true);
    let outcome = run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    assert_eq!(
        outcome,
        Outcome::Stopped {
            before: "point-of-no-return".into()
        }
    );
    assert!(sys.commands.borrow().is_empty());
    assert!(!journal.past_point_of_no_return());
}

#[test]
fn a_failed_guard_stops_before_the_original_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    let sys = Scripted::default();
    sys.on_raid.set(true);
    // No guard is pre-satisfied: the first (root on md) holds, the array check does not.
    let err = run_plan(&sys, &store, &mut journal, &quiet).unwrap_err();
    assert!(matches!(err, ConvertError::GuardFailed { .. }), "{err}");
    assert!(!sys
        .commands
        .borrow()
        .iter()
        .any(|a| a.iter().any(|x| x.starts_with(SYSTEM))));
    let saved = store.load().unwrap().unwrap();
    assert_eq!(saved.status("point-of-no-return"), StepStatus::Started);
    assert!(!saved.past_point_of_no_return());
}

#[test]
fn coming_back_on_the_original_after_the_reboot_is_an_error_with_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    for id in phase1_ids(&journal.plan) {
        journal.mark(&id, StepStatus::Done, None);
    }
    journal.mark("reboot", StepStatus::Started, None);
    let sys = Scripted::default();
    let err = run_plan(&sys, &store, &mut journal, &quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rollback") && err.contains("--retry-boot"),
        "{err}"
    );
}

/// A RAID boot cut short (power cut before the point of no return) comes back on the
/// original: the one-shot was spent by that boot, while the boot config still names the RAID
/// entry. `resume --retry-boot` must arm the one-shot again before it reboots (the crash
/// matrix found xs65 rebooting into the original for ever).
#[test]
fn a_retried_boot_arms_the_one_shot_again_on_every_profile() {
    for (profile, arm) in [
        ("xs65-bios", "extlinux --once=xenraid-raid1 /boot"),
        ("xs7-bios", "grub-editenv"),
        ("xcpng8-uefi", "efibootmgr --bootnext"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(dir.path().join("convert.json"));
        let mut journal = Journal::new(lab_plan_of(profile), options());
        done_through(&mut journal, "reboot");
        journal.retry_boot();
        // What the spent one-shot leaves: the edited config still holds the RAID entry.
        let boot_once = journal
            .plan_steps()
            .find(|s| s.id == "boot-once")
            .expect("a boot-once step")
            .clone();
        let sys = Scripted {
            already: [key(&boot_once.done_check)]
                .into_iter()
                .filter(|k| !k.contains("grubenv"))
                .collect(),
            ..Scripted::default()
        };
        assert_eq!(
            run_plan(&sys, &store, &mut journal, &quiet).unwrap(),
            Outcome::Rebooting,
            "{profile}"
        );
        let ran: Vec<String> = sys.commands.borrow().iter().map(|a| a.join(" ")).collect();
        let armed = ran.iter().position(|c| c.contains(arm));
        let rebooted = ran.iter().position(|c| c == "systemctl reboot");
        assert!(
            armed.is_some() && armed < rebooted,
            "{profile}: {arm} before the reboot, ran {ran:#?}"
        );
        // The copy mounted again for the one-shot is released again before the reboot.
        let unmounted = ran
            .iter()
            .rposition(|c| c.starts_with("umount --recursive"));
        let mounted = ran.iter().rposition(|c| c.starts_with("mount "));
        assert!(
            mounted.is_none() || (mounted < unmounted && unmounted < rebooted),
            "{profile}: mounted again, so unmounted before the reboot: {ran:#?}"
        );
    }
}

/// A power cut during the made-anew arrays' first pass: at boot md assembles them read-auto
/// and resumes no sync until a write. The end of the resumed run switches them to read-write.
#[test]
fn made_anew_arrays_found_read_auto_are_woken_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    done_through(&mut journal, "create-sr");
    let sys = Scripted {
        read_auto: true,
        ..Scripted::default()
    };
    sys.on_raid.set(true);
    run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    let woken: Vec<String> = sys
        .commands
        .borrow()
        .iter()
        .filter(|a| a.len() == 3 && a[0] == "mdadm" && a[1] == "--readwrite")
        .map(|a| a[2].clone())
        .collect();
    assert_eq!(woken, vec!["/dev/md/backup", "/dev/md/sr"]);
}

#[test]
fn an_array_udev_is_still_probing_after_the_boot_is_stopped_once_it_lets_go() {
    // The 6.5 crash matrix (power cut before install-resume): `resume` run as soon as the
    // original had booted found the copy's root array under the kernel's name md125, and
    // its stop failed while udev still had it open.
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let plan = lab_plan();
    let root = plan
        .arrays
        .iter()
        .find(|a| a.role == "root")
        .unwrap()
        .clone();
    let member = format!("{TARGET}-part{}", root.partition);
    let mut journal = Journal::new(plan, options());
    done_through(&mut journal, "dracut-config");
    let busy = "mdadm: Cannot get exclusive access to /dev/md125:Perhaps a running process, mounted filesystem or active volume group?";
    let sys = Scripted {
        holders: HashMap::from([(member.clone(), "md125".to_string())]),
        superblocks: HashMap::from([(member.clone(), root.uuid.clone())]),
        fail_once: RefCell::new(Some(("mdadm --stop /dev/md125".into(), busy.into()))),
        ..Scripted::default()
    };
    run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    assert_eq!(runs_of(&sys, "mdadm --stop /dev/md125"), 2);
    let events = sys.events.borrow();
    let stop = events
        .iter()
        .position(|e| e == "run mdadm --stop /dev/md125")
        .unwrap();
    assert_eq!(events[stop - 1], "run udevadm settle --timeout=10");
    assert!(events.iter().any(|e| e.starts_with(&format!(
        "run mdadm --assemble --run {} --uuid={}",
        root.device, root.uuid
    ))));
}

#[test]
fn no_wait_on_65_stops_before_the_boot_flag_moves_to_a_root_still_rebuilding() {
    // gptmbr.bin on the original (the disk the BIOS boots) would start its root member while
    // it still rebuilds: with --no-wait the run stops there, and the same command finishes.
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(
        lab_plan_of("xs65-bios"),
        RunOptions {
            no_wait: true,
            ..options()
        },
    );
    for id in phase1_ids(&journal.plan) {
        if id == "boot-once" || id == "unmount-new-root" || id == "reboot" {
            break;
        }
        journal.mark(&id, StepStatus::Done, None);
    }
    let mut sys = Scripted::default();
    sys.on_raid.set(true);
    let mut gate = None;
    for step in journal.plan_steps() {
        for action in &step.actions {
            match action {
                Action::RequireSync { devices } => gate = Some((step.id.clone(), devices.clone())),
                Action::Assert { check } => {
                    sys.already.insert(key(check));
                }
                _ => {}
            }
        }
    }
    let gate = gate.expect("a step gated on the root array's sync");
    assert_eq!(
        gate,
        ("bootloader-both".into(), vec!["/dev/md0".to_string()])
    );
    sys.resyncing.set(true);
    let outcome = run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    assert_eq!(
        outcome,
        Outcome::WaitingForResync {
            before: "bootloader-both".into(),
            devices: vec!["/dev/md0".into()],
        }
    );
    assert!(journal.is_done("wait-resync"));
    assert!(!journal.is_done("bootloader-both"));
    let flags_root =
        |a: &Vec<String>| a[0] == "sgdisk" && a.iter().any(|x| x == "--attributes=1:set:2");
    let commands = sys.commands.borrow().clone();
    let joined = commands
        .iter()
        .position(|a| a[..2] == ["mdadm", "--add"] && a[3].ends_with("-part1"))
        .expect("the original's root member joins");
    assert!(
        !commands[joined..].iter().any(flags_root),
        "no boot flag on root while it rebuilds: {:?}",
        &commands[joined..]
    );
    // Run again during the resync: it stops at the same place.
    let mut saved = store.load().unwrap().unwrap();
    let outcome = run_plan(&sys, &store, &mut saved, &quiet).unwrap();
    assert!(matches!(outcome, Outcome::WaitingForResync { .. }));
    sys.resyncing.set(false);
    let outcome = run_plan(&sys, &store, &mut saved, &quiet).unwrap();
    assert_eq!(outcome, Outcome::Complete);
    assert!(sys.commands.borrow()[commands.len()..]
        .iter()
        .any(flags_root));
}
