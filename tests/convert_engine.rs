//! The engine on the real xs7-bios lab plan, against a scripted machine: what it runs, in
//! which order, what the journal says after a reboot, a crash, a requested stop; what it never
//! touches before the point of no return.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use xenraid::convert::journal::{JournalState, StepStatus};
use xenraid::convert::system::System;
use xenraid::convert::{
    run_plan, ConvertError, Journal, JournalStore, Outcome, ResyncSpeed, RunOptions,
};
use xenraid::exec::{Command, CommandOutput, ExecError};
use xenraid::host::{discover, HostSource, RootedSource};
use xenraid::plan::{build_plan, Action, DoneCheck, Intent, Plan, SrChoice};

const TARGET: &str = "/dev/disk/by-id/wwn-0x5000c500a0000002";
const SYSTEM: &str = "/dev/disk/by-id/wwn-0x5000c500a0000001";

fn lab_plan() -> Plan {
    lab_plan_of("xs7-bios")
}

fn lab_plan_of(profile: &str) -> Plan {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lab")
        .join(profile);
    let source = RootedSource::captured(&root);
    let facts = discover(&source as &dyn HostSource).unwrap();
    let plan = build_plan(
        &facts,
        &Intent {
            target: TARGET.into(),
            wipe_target: false,
            sr: SrChoice::Create {
                name_label: "Local storage".into(),
            },
            program: "/root/xenraid".into(),
        },
    );
    assert!(!plan.refused());
    plan
}

/// A machine where a step's check holds once the step has run: the first question about a
/// check says "not yet", later ones "yes". `already` holds from the start.
#[derive(Default)]
struct Scripted {
    on_raid: Cell<bool>,
    asked: RefCell<HashSet<String>>,
    already: HashSet<String>,
    commands: RefCell<Vec<Vec<String>>>,
    files: RefCell<Vec<String>>,
    crash_on: Option<String>,
    /// Fails the command with this text once, with the given stderr, then lets it succeed.
    fail_once: RefCell<Option<(String, String)>>,
    boundaries: RefCell<Vec<String>>,
    hook_fails_at: Option<String>,
    /// Steps, commands and flushes in the order they happened.
    events: RefCell<Vec<String>>,
    /// member → the md device holding it.
    holders: HashMap<String, String>,
    /// Every array comes back read-auto (assembled at boot, not written since).
    read_auto: bool,
    /// member → the md UUID its superblock carries (`mdadm --examine --export`).
    superblocks: HashMap<String, String>,
    /// A resync runs: no array is in sync.
    resyncing: Cell<bool>,
}

/// Records every step up to and including `last` as done: a run resumed after that step.
fn done_through(journal: &mut Journal, last: &str) {
    let ids: Vec<String> = journal.plan_steps().map(|s| s.id.clone()).collect();
    for id in &ids {
        journal.mark(id, StepStatus::Done, None);
        if id == last {
            return;
        }
    }
    panic!("no step {last} in the plan");
}

fn key(check: &DoneCheck) -> String {
    serde_json::to_string(check).unwrap()
}

impl System for Scripted {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        self.commands.borrow_mut().push(command.argv());
        self.events.borrow_mut().push(format!("run {command}"));
        let failing = self
            .fail_once
            .borrow()
            .as_ref()
            .filter(|(c, _)| *c == command.to_string())
            .map(|(_, stderr)| stderr.clone());
        if let Some(stderr) = failing {
            *self.fail_once.borrow_mut() = None;
            return Err(ExecError::Failed {
                command: command.clone(),
                status: 1,
                stderr_tail: stderr,
                stdout: String::new(),
            });
        }
        if self.crash_on.as_deref() == Some(command.to_string().as_str()) {
            return Err(ExecError::Killed {
                command: command.clone(),
                stderr_tail: "power cut".into(),
            });
        }
        let argv = command.argv();
        if argv.len() == 4 && argv[1..3] == ["--examine", "--export"] {
            if let Some(uuid) = self.superblocks.get(&argv[3]) {
                return Ok(CommandOutput {
                    status: 0,
                    stdout: format!("MD_LEVEL=raid1\nMD_UUID={uuid}\n"),
                    stderr: String::new(),
                });
            }
        }
        let stdout = if command.program == "xe" {
            "4f1c-sr-uuid\n"
        } else if command.argv() == ["efibootmgr"] {
            // what OVMF leaves after a boot: the booted disk's entry and its own first
            "BootCurrent: 0005\nBootOrder: 0005,0001,0004\n\
             Boot0001* UEFI QEMU QEMU HARDDISK \tPciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x0,0x0)\n\
             Boot0004* XCP-ng (xenraid XRLAB-TGT0)\tHD(4,GPT,0f00eb5b-d340-448a-8483-8dd10d4263b1,0x540800,0x20000)/File(\\EFI\\xenserver\\grubx64.efi)\n\
             Boot0005* XCP-ng (xenraid XRLAB-SYS0)\tHD(4,GPT,9be87be7-e4be-450e-94c1-f51a12ca0dac,0x540800,0x20000)/File(\\EFI\\xenserver\\grubx64.efi)\n"
        } else {
            ""
        };
        Ok(CommandOutput {
            status: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        })
    }
    fn run_copy(&self, command: &Command, _dest: &str) -> Result<(), ConvertError> {
        self.run(command).map(|_| ()).map_err(Into::into)
    }
    fn holds(&self, check: &DoneCheck, journal: &Journal) -> Result<bool, ConvertError> {
        Ok(match check {
            DoneCheck::Journal => false,
            DoneCheck::RootOn { .. } => self.on_raid.get(),
            DoneCheck::JournalRecords { step } => journal.is_done(step),
            DoneCheck::InSync { .. } if self.resyncing.get() => {
                // Asked once already: in sync as soon as the resync ends.
                self.asked.borrow_mut().insert(key(check));
                false
            }
            c if self.already.contains(&key(c)) => true,
            c => !self.asked.borrow_mut().insert(key(c)),
        })
    }
    fn write_file(&self, path: &str, _content: &str) -> Result<(), ConvertError> {
        self.files.borrow_mut().push(path.into());
        Ok(())
    }
    fn wait_sync(&self, _devices: &[String]) -> Result<(), ConvertError> {
        Ok(())
    }
    fn mounts_under(&self, _dir: &str) -> Vec<String> {
        Vec::new()
    }
    fn holder_of(&self, member: &str) -> Option<String> {
        self.holders.get(member).cloned()
    }
    fn resolve(&self, path: &str) -> Option<String> {
        Some(path.into())
    }
    fn read_value(&self, path: &str) -> Option<String> {
        if self.read_auto && path.ends_with("/array_state") {
            return Some("read-auto".into());
        }
        Some("200000".into())
    }
    fn write_value(&self, path: &str, value: &str) -> Result<(), ConvertError> {
        self.files.borrow_mut().push(format!("{path}={value}"));
        Ok(())
    }
    fn flush(&self) {
        self.events.borrow_mut().push("flush".into());
    }
    fn before_step(&self, step: &str) -> Result<(), ConvertError> {
        self.boundaries.borrow_mut().push(step.into());
        self.events.borrow_mut().push(format!("step {step}"));
        if self.hook_fails_at.as_deref() == Some(step) {
            return Err(ConvertError::Exec(ExecError::Killed {
                command: Command::new("hook", [step]),
                stderr_tail: "hook said no".into(),
            }));
        }
        Ok(())
    }
}

fn options() -> RunOptions {
    RunOptions {
        no_wait: false,
        resync_speed: ResyncSpeed::Max,
        stop_before: None,
    }
}

fn quiet(_: &str) {}

fn phase1_ids(plan: &Plan) -> Vec<String> {
    plan.phases[0].steps.iter().map(|s| s.id.clone()).collect()
}

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
    let mut sys = Scripted::default();
    sys.on_raid.set(true);
    // The point of no return's guards hold on a healthy RAID boot.
    for step in journal.plan_steps() {
        for action in &step.actions {
            if let Action::Assert { check } = action {
                sys.already.insert(key(check));
            }
        }
    }
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
