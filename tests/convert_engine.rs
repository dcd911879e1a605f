//! The engine on the real xs7-bios lab plan, against a scripted machine: what it runs, in
//! which order, what the journal says after a reboot; what it never touches before the point
//! of no return.

mod engine_harness;

use engine_harness::*;

#[test]
fn phase_one_writes_only_the_target_then_reboots() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    let sys = Scripted::default();
    let outcome = run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    assert_eq!(outcome, Outcome::Rebooting);

    let commands = sys.commands.borrow();
    // The original disk is only read (sgdisk --replicate reads it) before the reboot.
    for argv in commands.iter() {
        let touches_system = argv.iter().any(|a| a.starts_with(SYSTEM));
        let reads_it = argv[0] == "sgdisk" && argv[1] == format!("--replicate={TARGET}");
        assert!(
            !touches_system || reads_it,
            "phase 1 touched the original: {argv:?}"
        );
    }
    assert_eq!(
        commands.last().unwrap(),
        &vec!["systemctl".to_string(), "reboot".into()]
    );
    let ids = phase1_ids(&journal.plan);
    for id in &ids[..ids.len() - 1] {
        assert_eq!(journal.status(id), StepStatus::Done, "{id}");
    }
    assert_eq!(journal.status("reboot"), StepStatus::Started);
    // Only the copy's files and the original's boot-once entry are edited.
    for path in sys.files.borrow().iter() {
        assert!(
            path.starts_with("/run/xenraid/newroot/") || path == "/boot/grub/grub.cfg",
            "{path}"
        );
    }
    assert!(
        sys.files
            .borrow()
            .iter()
            .any(|p| p == "/run/xenraid/newroot/var/lib/xenraid/convert.json"),
        "the journal is handed to the new root through the system"
    );
    // The journal handed to the new root says the copy finished.
    let saved = store.load().unwrap().unwrap();
    assert_eq!(saved, journal);
}

#[test]
fn the_step_hook_runs_at_every_boundary_and_a_failing_hook_stops_before_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    let sys = Scripted::default();
    run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    assert_eq!(*sys.boundaries.borrow(), phase1_ids(&journal.plan));

    let mut journal = Journal::new(lab_plan(), options());
    let sys = Scripted {
        hook_fails_at: Some("copy-files".into()),
        ..Scripted::default()
    };
    assert!(run_plan(&sys, &store, &mut journal, &quiet).is_err());
    assert_eq!(journal.status("copy-files"), StepStatus::Pending);
    assert_eq!(store.load().unwrap().unwrap(), journal);
    assert!(sys.commands.borrow().iter().all(|argv| argv[0] != "cp"));
}

/// What a step wrote is flushed before the journal calls it done: a power cut right after
/// a step (the crash matrix's `bootloader-original`: grub-install's core.img still in the page
/// cache) must not leave a "done" step whose writes never reached the disk.
#[test]
fn every_step_that_ran_is_flushed_before_the_next_begins() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    let sys = Scripted::default();
    run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    let events = sys.events.borrow();
    let mut ran_since_flush = None;
    for e in events.iter() {
        if let Some(step) = e.strip_prefix("step ") {
            assert!(
                ran_since_flush.is_none(),
                "{step} began while {:?}'s writes were not flushed",
                ran_since_flush
            );
        } else if e == "flush" {
            ran_since_flush = None;
        } else if let Some(cmd) = e.strip_prefix("run ") {
            ran_since_flush = Some(cmd.to_string());
        }
    }
    let bootloader = events
        .iter()
        .position(|e| e.starts_with("run ") && e.contains("grub-install"))
        .expect("grub-install ran");
    assert_eq!(
        events[bootloader + 1],
        "flush",
        "{:?}",
        &events[bootloader..]
    );
}

/// The crash matrix's `add-member-swap` boundary: power cut after `add-member-logs` ran.
/// md assembled md/logs at boot without the member that was still rebuilding, so the done
/// step must run again rather than leave wait-resync facing a degraded array.
#[test]
fn a_member_lost_to_a_power_cut_is_added_again_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    done_through(&mut journal, "add-member-logs");
    let sys = Scripted::default();
    sys.on_raid.set(true);
    run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    let adds: Vec<String> = sys
        .commands
        .borrow()
        .iter()
        .filter(|a| a[0] == "mdadm" && a[1] == "--add")
        .map(|a| a[2].clone())
        .collect();
    // Every add-member step's member was found missing (the scripted machine says "not yet"
    // the first time), so each is added again, md/logs included.
    assert!(adds.iter().any(|d| d.ends_with("logs")), "{adds:?}");
    assert!(adds.iter().any(|d| d.ends_with("root")), "{adds:?}");
    // The arrays that hold nothing are made anew, never rebuilt member by member.
    assert!(
        !adds
            .iter()
            .any(|d| d.ends_with("backup") || d.ends_with("sr")),
        "{adds:?}"
    );
}

/// The SR and backup arrays hold nothing when the original disk joins: each is stopped
/// (under the kernel's name for it) and made anew on both disks after the arrays holding data
/// are in sync, so md never rebuilds empty space before the root.
#[test]
fn blank_arrays_are_made_anew_on_both_disks_after_the_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    done_through(&mut journal, "bootloader-both");
    let tgt = "/dev/disk/by-id/wwn-0x5000c500a0000002";
    let src = "/dev/disk/by-id/wwn-0x5000c500a0000001";
    let mut sys = Scripted::default();
    sys.on_raid.set(true);
    sys.holders
        .insert(format!("{tgt}-part4"), "md125".to_string());
    run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    let events = sys.events.borrow();
    let at = |text: &str| {
        events
            .iter()
            .position(|e| e.contains(text))
            .unwrap_or_else(|| panic!("no {text} in {events:?}"))
    };
    let create_sr = at("mdadm --create /dev/md/sr");
    assert!(at("step wait-resync") < at("mdadm --create /dev/md/backup"));
    // udev is held from before the stop to after the create: its incremental assembly would
    // start the old array again from the members in between.
    let held = at("udevadm control --stop-exec-queue");
    assert!(held < at("mdadm --stop /dev/md125"));
    assert!(at("mdadm --stop /dev/md125") < create_sr);
    let released = events
        .iter()
        .skip(create_sr)
        .position(|e| e.contains("udevadm control --start-exec-queue"))
        .expect("udev released after the create");
    assert!(released > 0);
    assert!(create_sr < at("pvcreate"), "{events:?}");
    let create = &events[create_sr];
    assert!(
        create.contains(&format!("{tgt}-part4 {src}-part4")) && !create.contains("missing"),
        "{create}"
    );
    let resync = journal
        .plan_steps()
        .find(|s| s.id == "wait-resync")
        .map(|s| s.done_check.clone())
        .unwrap();
    assert_eq!(
        resync,
        DoneCheck::InSync {
            devices: ["/dev/md/root", "/dev/md/logs", "/dev/md/swap"]
                .map(String::from)
                .to_vec()
        }
    );
}

#[test]
fn a_boot_order_the_firmware_rewrote_is_put_back_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan_of("xcpng8-uefi"), options());
    let labels = journal
        .plan_steps()
        .find(|s| s.id == "boot-order")
        .map(|s| s.done_check.clone())
        .expect("a UEFI plan has a boot-order step");
    assert_eq!(
        labels,
        DoneCheck::EfiBootOrderFirst {
            labels: vec![
                "XCP-ng (xenraid XRLAB-TGT0)".into(),
                "XCP-ng (xenraid XRLAB-SYS0)".into()
            ]
        }
    );
    // The power cut came after boot-order; the boot after it let the firmware reorder.
    let ids: Vec<String> = journal.plan_steps().map(|s| s.id.clone()).collect();
    for id in &ids {
        journal.mark(id, StepStatus::Done, None);
        if id == "boot-order" {
            break;
        }
    }
    let sys = Scripted::default();
    sys.on_raid.set(true);
    run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    let orders: Vec<Vec<String>> = sys
        .commands
        .borrow()
        .iter()
        .filter(|a| a.len() == 3 && a[0] == "efibootmgr" && a[1] == "--bootorder")
        .cloned()
        .collect();
    assert_eq!(orders, [["efibootmgr", "--bootorder", "0004,0005,0001"]]);
    assert_eq!(journal.state, JournalState::Complete);
}

#[test]
fn after_the_reboot_phase_two_runs_to_the_end_and_records_the_sr() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(lab_plan(), options());
    // What the new root's journal holds: everything up to the handoff.
    for id in phase1_ids(&journal.plan) {
        if id == "boot-once" || id == "unmount-new-root" || id == "reboot" {
            break;
        }
        journal.mark(&id, StepStatus::Done, None);
    }
    // The point of no return's guards hold on a healthy RAID boot.
    let sys = Scripted::on_raid_with_guards_holding(&journal);
    let outcome = run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(journal.state, JournalState::Complete);
    assert_eq!(journal.sr_uuid.as_deref(), Some("4f1c-sr-uuid"));
    let commands = sys.commands.borrow();
    let first_write = commands
        .iter()
        .position(|a| a.iter().any(|x| x.starts_with(SYSTEM)))
        .unwrap();
    // First the original is made to boot the RAID, only then are its filesystems erased.
    assert_eq!(
        commands[first_write][0], "grub-install",
        "{:?}",
        commands[first_write]
    );
    assert!(commands
        .iter()
        .any(|a| a.first().map(String::as_str) == Some("xe")
            && a.get(1).map(String::as_str) == Some("sr-create")));
    // Resync speed raised before the members join, restored after the wait.
    let files = sys.files.borrow();
    let raised = files
        .iter()
        .position(|f| f.ends_with("speed_limit_max=2000000000"))
        .unwrap();
    let restored = files
        .iter()
        .position(|f| f.ends_with("speed_limit_max=200000"))
        .unwrap();
    assert!(raised < restored);
    assert!(journal.saved_speed_limit_max.is_none());
}

/// CentOS 5's inittab as a 6.5 dom0 has it (abridged).
const SYSV_INITTAB: &str = "id:3:initdefault:\nsi::sysinit:/etc/rc.d/rc.sysinit\nl3:3:wait:/etc/rc.d/rc 3\n1:2345:respawn:/sbin/mingetty tty1\n";

#[test]
fn without_systemd_the_copy_resumes_from_inittab_and_the_finish_takes_the_entry_out() {
    let mut facts = lab_facts("xs65-bios");
    facts.boot.init = InitSystem::Sysv;
    facts
        .files
        .insert("/etc/inittab".into(), SYSV_INITTAB.into());
    let plan = plan_from(&facts);
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("convert.json"));
    let mut journal = Journal::new(plan, options());

    let sys = Scripted::default();
    let outcome = run_plan(&sys, &store, &mut journal, &quiet).unwrap();
    assert_eq!(outcome, Outcome::Rebooting);
    assert_eq!(sys.commands.borrow().last().unwrap(), &vec!["reboot"]);
    let written = sys.files.borrow().clone();
    assert!(written.contains(&"/run/xenraid/newroot/etc/inittab".to_string()));
    assert!(
        !sys.commands
            .borrow()
            .iter()
            .flatten()
            .any(|a| a.contains("systemd")),
        "no systemd unit on a host without systemd"
    );

    let sys = Scripted::on_raid_with_guards_holding(&journal);
    assert_eq!(
        run_plan(&sys, &store, &mut journal, &quiet).unwrap(),
        Outcome::Complete
    );
    assert_eq!(sys.files.borrow().last().unwrap(), "/etc/inittab");
    assert_eq!(
        sys.commands.borrow().last().unwrap(),
        &vec!["rm", "-f", "/var/lib/xenraid/xenraid"]
    );
}
