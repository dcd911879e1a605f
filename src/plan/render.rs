//! `xenraid plan` for humans: preflight as PASS/FAIL with fixes, then phases → numbered steps.

use std::fmt::Write;

use crate::exec::Command;
use crate::host::render::table;

use super::model::*;

fn writes_text(writes: &[Writes]) -> String {
    writes
        .iter()
        .map(|w| match w {
            Writes::Nothing => "nothing".to_string(),
            Writes::Firmware => "firmware boot entries".to_string(),
            Writes::HostFile { path } => format!("file {path}"),
            Writes::Disk { serial, by_id, .. } => match serial {
                Some(serial) => format!("disk serial {serial} ({by_id})"),
                None => format!("disk {by_id}"),
            },
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    if let (Some(source), Some(target)) = (&plan.source, &plan.target) {
        let _ = writeln!(
            out,
            "Source    {} (serial {})",
            source.by_id,
            source.serial.as_deref().unwrap_or("unknown")
        );
        let _ = writeln!(
            out,
            "Target    {} (serial {})",
            target.by_id,
            target.serial.as_deref().unwrap_or("unknown")
        );
    }
    if let Some(profile) = plan.profile {
        let _ = writeln!(out, "Profile   {profile:?}");
    }

    let _ = writeln!(out, "\nPreflight");
    for check in &plan.preflight {
        let _ = writeln!(
            out,
            "  {}  {:<29} {}",
            if check.passed { "PASS" } else { "FAIL" },
            check.name,
            check.message
        );
        if !check.passed && !check.fix.is_empty() {
            out.push_str(&indent(&check.fix, "        fix: "));
        }
    }
    if plan.refused() {
        let _ = writeln!(
            out,
            "\nREFUSED: nothing will be written. Fix the FAIL lines above."
        );
        return out;
    }

    if !plan.arrays.is_empty() {
        let _ = writeln!(out, "\nArrays");
        let rows: Vec<Vec<String>> = plan
            .arrays
            .iter()
            .map(|a| {
                let what = match &a.content {
                    Content::Filesystem {
                        fs_type,
                        mount_point,
                        new_uuid,
                        new_label,
                        ..
                    } => format!("{fs_type} {mount_point} UUID={new_uuid} LABEL={new_label}"),
                    Content::Swap { new_uuid, .. } => format!("swap UUID={new_uuid}"),
                    Content::Unused => "empty".into(),
                    Content::Storage => "SR physical volume".into(),
                };
                vec![
                    a.device.clone(),
                    format!("p{}", a.partition),
                    a.metadata.clone(),
                    a.uuid.clone(),
                    what,
                ]
            })
            .collect();
        out.push_str(&table(
            &["ARRAY", "PART", "META", "MD UUID", "CONTENT"],
            &rows,
        ));
    }

    let mut number = 0;
    for phase in &plan.phases {
        let title = match phase.kind {
            PhaseKind::BeforeReboot => "Phase 1, before the reboot (writes only the target, plus a backed-up boot-once entry)",
            PhaseKind::AfterReboot => "Phase 2, after the reboot on the RAID (folds the original disk in)",
            PhaseKind::Storage => "Phase 3, storage",
            PhaseKind::Maintenance => "Steps (no reboot)",
        };
        let _ = writeln!(out, "\n{title}");
        for step in &phase.steps {
            number += 1;
            let _ = writeln!(out, "\n {number:>2}. {}  — {}", step.id, step.why);
            let _ = writeln!(out, "     writes: {}", writes_text(&step.writes));
            for action in &step.actions {
                match action {
                    Action::Run { argv } => {
                        let text = Command::from_argv(argv)
                            .map(|c| c.to_string())
                            .unwrap_or_default();
                        let _ = writeln!(out, "     $ {text}");
                    }
                    Action::EditFile { path, diff, .. } => {
                        let _ = writeln!(out, "     edit {path}:");
                        out.push_str(&indent(diff, "       "));
                    }
                    Action::Assert { check } => {
                        let _ = writeln!(out, "     require {}", check_text(check));
                    }
                    Action::SaveJournal { root } => {
                        let _ = writeln!(out, "     record the journal under {root} (fsynced)");
                    }
                    Action::EfiBootNext { label } => {
                        let _ = writeln!(out, "     $ efibootmgr --bootnext <number of '{label}'>");
                    }
                    Action::EfiBootOrderFirst { labels } => {
                        let _ = writeln!(
                            out,
                            "     $ efibootmgr --bootorder <numbers of '{}'>,<the others>",
                            labels.join("', '")
                        );
                    }
                    Action::RecreateArray { device, create, .. } => {
                        let create = Command::from_argv(create)
                            .map(|c| c.to_string())
                            .unwrap_or_default();
                        let _ = writeln!(
                            out,
                            "     $ udevadm control --stop-exec-queue\n     $ mdadm --stop {device}  (if it runs)\n     $ {create}\n     $ udevadm control --start-exec-queue"
                        );
                    }
                    Action::WaitSync { devices } => {
                        let _ = writeln!(
                            out,
                            "     wait for the resync of {} (not with --no-wait)",
                            devices.join(", ")
                        );
                    }
                    Action::RequireSync { devices } => {
                        let _ = writeln!(
                            out,
                            "     wait until {} is in sync (with --no-wait: stop here until it is)",
                            devices.join(", ")
                        );
                    }
                }
            }
            let _ = writeln!(out, "     done when: {}", check_text(&step.done_check));
        }
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(out, "\nNotes");
        for note in &plan.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    out
}

pub fn check_text(check: &DoneCheck) -> String {
    match check {
        DoneCheck::Journal => "the journal records it (safe to repeat)".into(),
        DoneCheck::PartitionTable { by_id, partitions } => format!(
            "{by_id} has partitions {}",
            partitions
                .iter()
                .map(|p| format!("{}:{}-{}:{}", p.number, p.start, p.end, p.type_code))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        DoneCheck::ArrayMember { uuid, member } => format!("array {uuid} has member {member}"),
        DoneCheck::Filesystem {
            device,
            fs_type,
            uuid,
        } => format!("{device} holds {fs_type} UUID={uuid}"),
        DoneCheck::Mounted {
            device,
            mount_point,
        } => format!("{device} is mounted on {mount_point}"),
        DoneCheck::FileContains { path, text } => format!("{path} contains `{text}`"),
        DoneCheck::BootCode { by_id, code } => format!("{by_id} has {code} boot code"),
        DoneCheck::Detached { member } => format!("{member} is in no array"),
        DoneCheck::EfiBootEntry { label } => format!("an EFI boot entry '{label}' exists"),
        DoneCheck::EfiBootOrderFirst { labels } => {
            format!("BootOrder starts with '{}'", labels.join("', '"))
        }
        DoneCheck::RootOn { device, .. } => format!("/ is mounted from {device}"),
        DoneCheck::SrExists { name_label, device } => {
            format!("SR '{name_label}' exists on {device}")
        }
        DoneCheck::All { checks } if checks.is_empty() => "the journal records it".into(),
        DoneCheck::All { checks } => checks.iter().map(check_text).collect::<Vec<_>>().join("; "),
        DoneCheck::Any { checks } => checks
            .iter()
            .map(check_text)
            .collect::<Vec<_>>()
            .join(", or "),
        DoneCheck::Unmounted { mount_point } => format!("nothing is mounted under {mount_point}"),
        DoneCheck::JournalRecords { step } => format!("the journal records step {step} as done"),
        DoneCheck::DiskSerial { by_id, serial } => {
            format!("{by_id} is the disk with serial {serial}")
        }
        DoneCheck::InitramfsContains { image, path, text } => {
            format!("{image} holds {path} with `{text}`")
        }
        DoneCheck::InSync { devices } => format!("{} in sync", devices.join(", ")),
    }
}
