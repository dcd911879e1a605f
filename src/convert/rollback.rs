//! Undo a conversion that has not reached its point of no return: stop and erase the arrays on
//! the target, blank the target, restore the original's boot configuration from its backup.
//! Runs on the original system (the one-shot RAID boot returns there on the next boot).

use std::path::Path;

use crate::exec::Command;
use crate::plan::steps::NEW_ROOT;
use crate::plan::{Action, DoneCheck};

use super::engine::Say;
use super::journal::{Journal, JournalState, JournalStore, StepStatus};
use super::system::System;
use super::ConvertError;

pub fn rollback(
    sys: &dyn System,
    store: &JournalStore,
    journal: &mut Journal,
    say: &dyn Say,
) -> Result<(), ConvertError> {
    if journal.past_point_of_no_return() {
        let step = journal
            .steps
            .iter()
            .skip_while(|r| r.id != "point-of-no-return")
            .skip(1)
            .find(|r| r.status != StepStatus::Pending)
            .map(|r| r.id.clone())
            .unwrap_or_default();
        return Err(ConvertError::PastPointOfNoReturn { step });
    }
    if let Some(reboot) = journal.plan_steps().find(|s| s.id == "reboot") {
        if matches!(reboot.done_check, DoneCheck::RootOn { .. })
            && sys.holds(&reboot.done_check, journal)?
        {
            return Err(ConvertError::RollbackFromRaid);
        }
    }

    if !sys.mounts_under(NEW_ROOT).is_empty() {
        say.say(&format!("unmounting {NEW_ROOT}"));
        sys.run(&Command::new("umount", ["--recursive", NEW_ROOT]))?;
    }
    let target = journal.plan.target.clone();
    if let Some(target) = &target {
        for spec in &journal.plan.arrays {
            let member = format!("{}-part{}", target.by_id, spec.partition);
            if Path::new(&member).exists() {
                super::arrays::stop_and_zero(sys, spec, &member)?;
                say.say(&format!(
                    "{}: stopped, superblock erased on {member}",
                    spec.device
                ));
            }
        }
        blank_disk(sys, &target.by_id)?;
        say.say(&format!("{}: blank again", target.by_id));
    }
    restore_boot_config(sys, journal, say)?;
    remove_firmware_entries(sys, journal, say)?;

    journal.state = JournalState::RolledBack;
    store.remove()?;
    if let Some(dir) = store.path.parent() {
        // Leave no trace on the original root: the directory goes if xenraid made it empty.
        let _ = std::fs::remove_dir(dir);
    }
    say.say("rolled back: the host is as it was before `xenraid convert`");
    Ok(())
}

/// The target's UEFI boot entry (and a BootNext pointing at it) go with the target's content.
fn remove_firmware_entries(
    sys: &dyn System,
    journal: &Journal,
    say: &dyn Say,
) -> Result<(), ConvertError> {
    let labels: Vec<String> = journal
        .plan_steps()
        .filter(|s| s.id == "bootloader-target")
        .filter_map(|s| match &s.done_check {
            DoneCheck::EfiBootEntry { label } => Some(label.clone()),
            _ => None,
        })
        .collect();
    for label in labels {
        let removed = super::efi::delete_entries(sys, &label)?;
        if removed > 0 {
            say.say(&format!("firmware boot entry '{label}' removed"));
        }
    }
    Ok(())
}

fn blank_disk(sys: &dyn System, disk: &str) -> Result<(), ConvertError> {
    let parts: Vec<String> = (1..=128)
        .map(|n| format!("{disk}-part{n}"))
        .filter(|p| Path::new(p).exists())
        .collect();
    for part in &parts {
        sys.run(&Command::new("wipefs", ["--all", "--quiet", part.as_str()]))?;
    }
    sys.run(&Command::new("sgdisk", ["--zap-all", disk]))?;
    sys.run(&Command::new("wipefs", ["--all", "--quiet", disk]))?;
    let _ = sys.run(&Command::new("partx", ["-d", disk]));
    sys.run(&Command::new("udevadm", ["settle"]))?;
    Ok(())
}

/// Undoes the boot-once step from its own actions: the backed-up file back in place, the
/// one-shot variable cleared, the RAID initrd copy removed.
fn restore_boot_config(
    sys: &dyn System,
    journal: &Journal,
    say: &dyn Say,
) -> Result<(), ConvertError> {
    let Some(step) = journal.plan_steps().find(|s| s.id == "boot-once").cloned() else {
        return Ok(());
    };
    for action in &step.actions {
        let Action::Run { argv } = action else {
            continue;
        };
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["cp", "-a", "--no-clobber", path, backup] if Path::new(backup).exists() => {
                let content = std::fs::read(backup).map_err(|source| ConvertError::Io {
                    what: format!("reading {backup}"),
                    source,
                })?;
                super::journal::write_atomic(Path::new(path), &content).map_err(|source| {
                    ConvertError::Io {
                        what: format!("restoring {path}"),
                        source,
                    }
                })?;
                std::fs::remove_file(backup).map_err(|source| ConvertError::Io {
                    what: format!("removing {backup}"),
                    source,
                })?;
                say.say(&format!("{path}: restored from {backup}"));
            }
            ["cp", _, copy] if copy.starts_with("/boot/") => {
                let _ = std::fs::remove_file(copy);
            }
            [editenv, env, "set", assignment] if Path::new(env).exists() => {
                let var = assignment.split('=').next().unwrap_or_default();
                sys.run(&Command::new(editenv, [*env, "unset", var]))?;
                say.say(&format!("{env}: {var} cleared"));
            }
            ["extlinux", once, dir] if once.starts_with("--once=") => {
                sys.run(&Command::new("extlinux", ["--clear-once", *dir]))?;
            }
            _ => {}
        }
    }
    Ok(())
}
