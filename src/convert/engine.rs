//! Walks the plan's steps in order. For each: done in the journal → skip; its check already
//! holds → record "already done"; otherwise record "started", act, verify the check, record
//! "done". The journal is saved (atomically) before and after every step.

use crate::exec::{Command, ExecError};
use crate::plan::lifecycle_steps::JOURNAL_FILE;
use crate::plan::render::check_text;
use crate::plan::steps::NEW_ROOT;
use crate::plan::{Action, DoneCheck, PhaseKind, Step};

use super::journal::{Journal, JournalState, JournalStore, ResyncSpeed, StepStatus};
use super::system::{System, SPEED_LIMIT_MAX};
use super::ConvertError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step is done.
    Complete,
    /// The machine is rebooting into the RAID; the resume unit continues.
    Rebooting,
    /// Stopped before this step, as asked (`--stop-before`).
    Stopped { before: String },
    /// `--no-wait`: stopped before this step, which needs these arrays in sync first (6.5's
    /// boot flag on a member still rebuilding would start half a copy).
    WaitingForResync {
        before: String,
        devices: Vec<String>,
    },
}

/// Where the engine says what it does (stdout for a human, the journal for the unit).
pub trait Say {
    fn say(&self, line: &str);
}

impl<F: Fn(&str)> Say for F {
    fn say(&self, line: &str) {
        self(line)
    }
}

pub fn run_plan(
    sys: &dyn System,
    store: &JournalStore,
    journal: &mut Journal,
    say: &dyn Say,
) -> Result<Outcome, ConvertError> {
    let steps: Vec<Step> = journal.plan_steps().cloned().collect();
    let total = steps.len();
    prepare(sys, store, journal, say)?;

    for (index, step) in steps.iter().enumerate() {
        let label = format!("[{:>2}/{total}] {}", index + 1, step.id);
        let status = journal.status(&step.id);
        if status == StepStatus::Done {
            // A reboot can undo three kinds of step: mounts, members added to an array but
            // not yet in sync (after a power cut md assembles the array without them), and
            // BootOrder (firmware may reorder it at boot: OVMF does, from QEMU's boot order).
            // Such a step runs again while its phase is unfinished and its effect is gone; so
            // does the unmount after mounts that ran again (`resume --retry-boot`).
            let transient = matches!(
                step.done_check,
                DoneCheck::Mounted { .. }
                    | DoneCheck::Unmounted { .. }
                    | DoneCheck::ArrayMember { .. }
                    | DoneCheck::EfiBootOrderFirst { .. }
            ) && !phase_complete(journal, &step.id);
            if !transient || sys.holds(&step.done_check, journal)? {
                continue;
            }
        }
        sys.before_step(&step.id)?;
        if let Some(devices) = unmet_sync_gate(sys, journal, step)? {
            store.save(journal)?;
            say.say(&format!(
                "{label}: waits until {} is in sync (--no-wait); `xenraid status` shows the resync, then the same command runs this step and the rest",
                devices.join(", ")
            ));
            return Ok(Outcome::WaitingForResync {
                before: step.id.clone(),
                devices,
            });
        }
        if journal.options.stop_before.as_deref() == Some(step.id.as_str()) {
            store.save(journal)?;
            say.say(&format!("{label}: stopping here, as asked (--stop-before)"));
            return Ok(Outcome::Stopped {
                before: step.id.clone(),
            });
        }
        if step.done_check != DoneCheck::Journal
            && status != StepStatus::Done
            && sys.holds(&step.done_check, journal)?
        {
            sys.flush();
            journal.mark(&step.id, StepStatus::Done, Some("already done"));
            store.save(journal)?;
            say.say(&format!("{label}: already done"));
            continue;
        }
        // The steps that start a resync: convert's members joining, add-mirror's new array.
        if step.id.starts_with("add-member-") || step.id == "create-array" {
            raise_resync_speed(sys, store, journal, say)?;
        }
        journal.mark(&step.id, StepStatus::Started, None);
        store.save(journal)?;
        say.say(&format!("{label}: {}", step.why));
        let started = std::time::Instant::now();
        if let Some(outcome) = execute(sys, journal, step, say)? {
            return Ok(outcome);
        }
        let skipped_wait = journal.options.no_wait && is_wait(step);
        if step.done_check != DoneCheck::Journal
            && !skipped_wait
            && !sys.holds(&step.done_check, journal)?
        {
            return Err(ConvertError::CheckFailed {
                step: step.id.clone(),
                check: check_text(&step.done_check),
            });
        }
        if is_wait(step) {
            restore_resync_speed(sys, store, journal, say)?;
        }
        let note = if skipped_wait {
            "skipped: --no-wait (the resync goes on in the kernel)"
        } else {
            "ran"
        };
        sys.flush();
        journal.mark(&step.id, StepStatus::Done, Some(note));
        store.save(journal)?;
        say.say(&format!(
            "{label}: done in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
    }
    restore_resync_speed(sys, store, journal, say)?;
    journal.state = JournalState::Complete;
    store.save(journal)?;
    wake_made_anew_arrays(sys, journal, say);
    Ok(Outcome::Complete)
}

/// With `--no-wait`, a step that requires arrays in sync is where the run stops while they are
/// not; without it, the step waits for them as it runs.
fn unmet_sync_gate(
    sys: &dyn System,
    journal: &Journal,
    step: &Step,
) -> Result<Option<Vec<String>>, ConvertError> {
    if !journal.options.no_wait {
        return Ok(None);
    }
    for action in &step.actions {
        if let Action::RequireSync { devices } = action {
            let check = DoneCheck::InSync {
                devices: devices.clone(),
            };
            if !sys.holds(&check, journal)? {
                return Ok(Some(devices.clone()));
            }
        }
    }
    Ok(None)
}

/// The arrays made anew run their first pass in the background. After a power cut in it, one
/// nothing mounts comes back read-auto, and md resumes no sync on it until a write: wake it.
fn wake_made_anew_arrays(sys: &dyn System, journal: &Journal, say: &dyn Say) {
    let made_anew: Vec<&String> = journal
        .plan_steps()
        .flat_map(|s| &s.actions)
        .filter_map(|a| match a {
            Action::RecreateArray { device, .. } => Some(device),
            _ => None,
        })
        .collect();
    for device in &made_anew {
        if !super::progress::array_is_read_auto(sys, device) {
            continue;
        }
        match sys.run(&Command::new("mdadm", ["--readwrite", device.as_str()])) {
            Ok(_) => say.say(&format!(
                "{device}: assembled read-auto at boot; switched to read-write so its first pass goes on"
            )),
            Err(e) => say.say(&format!(
                "{device}: could not switch it to read-write ({e}); `mdadm --readwrite {device}` does"
            )),
        }
    }
    if !made_anew.is_empty() {
        let names: Vec<&str> = made_anew.iter().map(|d| d.as_str()).collect();
        say.say(&format!(
            "{}: everything written to them is on both disks; md's first pass over their never-written space runs on in the background (`xenraid status` shows it)",
            names.join(", ")
        ));
    }
}

fn phase_complete(journal: &Journal, id: &str) -> bool {
    journal
        .plan
        .phases
        .iter()
        .find(|p| p.steps.iter().any(|s| s.id == id))
        .is_some_and(|p| p.steps.iter().all(|s| journal.is_done(&s.id)))
}

fn is_wait(step: &Step) -> bool {
    step.actions
        .iter()
        .any(|a| matches!(a, Action::WaitSync { .. }))
}

/// Where are we? On the RAID root after the reboot, phase 1 is over whatever its records say
/// (they stop at the journal handoff). On the original root after a crash, leftovers of the
/// interrupted run are put back in order: mounts released, arrays assembled by UUID.
fn prepare(
    sys: &dyn System,
    store: &JournalStore,
    journal: &mut Journal,
    say: &dyn Say,
) -> Result<(), ConvertError> {
    let reboot = journal.plan_steps().find(|s| s.id == "reboot").cloned();
    let Some(reboot) = reboot else {
        return Ok(());
    };
    if sys.holds(&reboot.done_check, journal)? {
        let phase1: Vec<String> = journal
            .plan
            .phases
            .iter()
            .filter(|p| p.kind == PhaseKind::BeforeReboot)
            .flat_map(|p| p.steps.iter().map(|s| s.id.clone()))
            .collect();
        let mut changed = false;
        for id in phase1 {
            if !journal.is_done(&id) {
                journal.mark(
                    &id,
                    StepStatus::Done,
                    Some("finished by the reboot onto the RAID"),
                );
                changed = true;
            }
        }
        if changed {
            store.save(journal)?;
            say.say("running on the RAID copy: phase 1 is complete");
        }
        return Ok(());
    }
    if journal.status("reboot") != StepStatus::Pending {
        let root = match &reboot.done_check {
            DoneCheck::RootOn { device, .. } => device.clone(),
            _ => "the RAID".into(),
        };
        return Err(ConvertError::RaidBootFailed { root });
    }
    if journal.done_count() == 0
        && journal.next_step().map(|r| r.status) == Some(StepStatus::Pending)
    {
        return Ok(());
    }
    if !sys.mounts_under(NEW_ROOT).is_empty() {
        say.say("releasing the mounts of the interrupted run");
        sys.run(&Command::new("umount", ["--recursive", NEW_ROOT]))?;
    }
    let Some(target) = journal.plan.target.clone() else {
        return Ok(());
    };
    for spec in journal.plan.arrays.clone() {
        if journal.status(&format!("create-array-{}", spec.role)) == StepStatus::Pending {
            continue;
        }
        let member = format!("{}-part{}", target.by_id, spec.partition);
        if super::arrays::ensure_assembled(sys, &spec, &member)? {
            say.say(&format!("{}: assembled from {member}", spec.device));
        }
    }
    Ok(())
}

/// Runs a step's actions. Returns an outcome when the step ends the process (the reboot).
fn execute(
    sys: &dyn System,
    journal: &mut Journal,
    step: &Step,
    say: &dyn Say,
) -> Result<Option<Outcome>, ConvertError> {
    for action in &step.actions {
        match action {
            Action::Run { argv } => {
                let Some(cmd) = Command::from_argv(argv) else {
                    continue;
                };
                if argv == &["systemctl", "reboot"] || argv == &["reboot"] {
                    say.say("rebooting into the RAID copy; the conversion resumes by itself after the boot");
                    sys.run(&cmd)?;
                    return Ok(Some(Outcome::Rebooting));
                }
                if cmd.program == "cp" && cmd.args.first().map(String::as_str) == Some("-ax") {
                    let dest = cmd.args.last().cloned().unwrap_or_default();
                    sys.run_copy(&cmd, &dest)?;
                    continue;
                }
                let out = run_on_settled_devices(sys, &cmd, say)?;
                if cmd.program == "xe" && cmd.args.first().map(String::as_str) == Some("sr-create")
                {
                    let uuid = out.stdout.trim().to_string();
                    say.say(&format!("created SR {uuid}"));
                    journal.sr_uuid = Some(uuid);
                }
            }
            Action::EditFile {
                path, new_content, ..
            } => sys.write_file(path, new_content)?,
            Action::Assert { check } => {
                if !sys.holds(check, journal)? {
                    return Err(ConvertError::GuardFailed {
                        step: step.id.clone(),
                        check: check_text(check),
                    });
                }
            }
            Action::SaveJournal { root } => {
                let mut copy = journal.clone();
                copy.mark(
                    &step.id,
                    StepStatus::Done,
                    Some("handed off to the new root"),
                );
                // Through the system like every other write, so a test never touches /run.
                let text = serde_json::to_string_pretty(&copy).expect("the journal serialises");
                let path = JournalStore::under(root, JOURNAL_FILE).path;
                sys.write_file(&path.to_string_lossy(), &text)?;
            }
            Action::EfiBootNext { label } => super::efi::set_boot_next(sys, label)?,
            Action::EfiBootOrderFirst { labels } => super::efi::put_first(sys, labels)?,
            Action::RecreateArray {
                members, create, ..
            } => {
                if let Some(create) = Command::from_argv(create) {
                    // The links must be there before udev is held: nothing makes them meanwhile.
                    wait_for_devices(sys, &create);
                    super::arrays::recreate(sys, members, &create)?;
                }
            }
            // Passed the gate: in sync, or waited for without --no-wait (after a power cut,
            // md may be catching up on the bitmap's dirty regions).
            Action::RequireSync { devices } => sys.wait_sync(devices)?,
            Action::WaitSync { devices } => {
                if journal.options.no_wait {
                    say.say("not waiting for the resync (--no-wait); `xenraid status` shows it");
                } else {
                    sys.wait_sync(devices)?;
                }
            }
        }
    }
    Ok(None)
}

/// grub-install is handed the kernel name the stable path resolves to at this instant (as
/// the seed's `readlink -f` does): given a by-id link inside the copy's chroot it reported
/// success and left the target's BIOS boot partition without core.img (seen in the lab).
fn resolve_for_grub(sys: &dyn System, cmd: Command) -> Command {
    let is_grub = |p: &str| matches!(p, "grub-install" | "grub2-install");
    let grub = is_grub(&cmd.program)
        || (cmd.program == "chroot" && cmd.args.get(1).is_some_and(|p| is_grub(p)));
    if !grub {
        return cmd;
    }
    let args = cmd
        .args
        .iter()
        .map(|a| {
            if a.starts_with("/dev/disk/by-id/") {
                sys.resolve(a).unwrap_or_else(|| a.clone())
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>();
    Command::new(&cmd.program, args)
}

/// udev recreates by-id links after a partition table is rewritten, and may re-read the table
/// again when the writer closes the disk (its inotify watch): `udevadm settle` can return
/// before the links exist. Wait for every by-id path a command names, up to 30 s; if one
/// never appears the command runs anyway and fails with its own error.
fn wait_for_devices(sys: &dyn System, cmd: &Command) {
    let wanted = stable_paths(cmd);
    if wanted.is_empty() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while wanted.iter().any(|p| sys.resolve(p).is_none()) && std::time::Instant::now() < deadline {
        let _ = sys.run(&Command::new("udevadm", ["settle", "--timeout=5"]));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The by-id paths a command opens (sgdisk and partx work on the whole disk and are what
/// makes udev redo the links, so they are never held back).
fn stable_paths(cmd: &Command) -> Vec<&String> {
    if matches!(cmd.program.as_str(), "sgdisk" | "partx") {
        return Vec::new();
    }
    cmd.args
        .iter()
        .filter(|a| a.starts_with("/dev/disk/by-id/"))
        .collect()
}

/// How often a command whose device vanished under it is tried again.
const DEVICE_RETRIES: usize = 3;

/// Runs a command on devices named by by-id path. udev may re-read a partition table once
/// more after `settle` returned (its watch fires when the last writer closes the disk), and
/// then removes and re-adds every partition's node and links: a command can find its link
/// one moment and not the next (the bench hit it: `wipefs` right after partitioning failed
/// with "No such file or directory"). Such a command did nothing (it could not open its
/// device), so it waits for the links again and retries.
fn run_on_settled_devices(
    sys: &dyn System,
    cmd: &Command,
    say: &dyn Say,
) -> Result<crate::exec::CommandOutput, ConvertError> {
    let mut tries = 0;
    loop {
        wait_for_devices(sys, cmd);
        let resolved = resolve_for_grub(sys, cmd.clone());
        match sys.run(&resolved) {
            Err(e) if tries < DEVICE_RETRIES && device_vanished(sys, cmd, &e) => {
                tries += 1;
                say.say(&format!(
                    "{}: a device was being re-created by udev; trying again",
                    cmd.program
                ));
                let _ = sys.run(&Command::new("udevadm", ["settle", "--timeout=10"]));
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            other => return Ok(other?),
        }
    }
}

fn device_vanished(sys: &dyn System, cmd: &Command, e: &ExecError) -> bool {
    let paths = stable_paths(cmd);
    let stderr = match e {
        ExecError::Failed { stderr_tail, .. } => stderr_tail.as_str(),
        _ => return false,
    };
    !paths.is_empty()
        && (stderr.contains("No such file or directory")
            || paths.iter().any(|p| sys.resolve(p).is_none()))
}

fn raise_resync_speed(
    sys: &dyn System,
    store: &JournalStore,
    journal: &mut Journal,
    say: &dyn Say,
) -> Result<(), ConvertError> {
    let value = match journal.options.resync_speed {
        ResyncSpeed::Default => return Ok(()),
        ResyncSpeed::Max => 2_000_000_000,
        ResyncSpeed::KbPerSec(kb) => kb,
    };
    if journal.saved_speed_limit_max.is_none() {
        let Some(old) = sys
            .read_value(SPEED_LIMIT_MAX)
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return Ok(());
        };
        // Saved before it is changed: a crash in between restores the right value.
        journal.saved_speed_limit_max = Some(old);
        store.save(journal)?;
    }
    sys.write_value(SPEED_LIMIT_MAX, &value.to_string())?;
    say.say(&format!("resync speed limit raised to {value} KiB/s"));
    Ok(())
}

fn restore_resync_speed(
    sys: &dyn System,
    store: &JournalStore,
    journal: &mut Journal,
    say: &dyn Say,
) -> Result<(), ConvertError> {
    if journal.options.no_wait {
        // The resync is still running: leave the raised limit to it. A reboot resets it.
        return Ok(());
    }
    if let Some(old) = journal.saved_speed_limit_max.take() {
        sys.write_value(SPEED_LIMIT_MAX, &old.to_string())?;
        store.save(journal)?;
        say.say(&format!("resync speed limit restored to {old} KiB/s"));
    }
    Ok(())
}
