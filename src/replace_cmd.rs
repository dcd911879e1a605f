//! `xenraid replace`: the live facts, what the conversion recorded of its disks, where each
//! disk sits; then the plan, run like every other operation (journal, confirmation).

use std::path::PathBuf;

use xenraid::cli::{ReplaceArgs, EXIT_OK, EXIT_REFUSED};
use xenraid::convert::journal::JournalState;
use xenraid::convert::JournalStore;
use xenraid::host::HostFacts;
use xenraid::plan::lifecycle_steps::JOURNAL_FILE;
use xenraid::plan::render::render_plan;
use xenraid::plan::replace::{build_replace_plan, ReplaceIntent};

use crate::run_cmd::{run_operation, Operation};

pub const REPLACE_JOURNAL: &str = "/var/lib/xenraid/replace.json";

pub fn replace(
    root: &Option<PathBuf>,
    args: &ReplaceArgs,
    facts: HostFacts,
) -> anyhow::Result<i32> {
    let conversion = JournalStore::new(JOURNAL_FILE).load().ok().flatten();
    if root.is_none()
        && conversion
            .as_ref()
            .is_some_and(|j| j.state == JournalState::InProgress)
    {
        // Between its phases a conversion owns both disks; its resume adds the members.
        eprintln!("xenraid: a conversion is in progress: finish it first (`xenraid resume`)");
        return Ok(EXIT_REFUSED);
    }
    let intent = ReplaceIntent {
        failed: args.failed.clone(),
        new: args.new.clone(),
        wipe_target: args.wipe_target,
        spare: args.spare,
        known_disks: conversion
            .map(|j| j.plan.source.into_iter().chain(j.plan.target).collect())
            .unwrap_or_default(),
        slots: facts
            .disks
            .iter()
            .filter_map(|d| slot(&d.name).map(|s| (d.name.clone(), s)))
            .collect(),
    };
    let plan = build_replace_plan(&facts, &intent);
    if root.is_some() {
        // A captured tree: show the plan, never run it.
        if args.run.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print!("{}", render_plan(&plan));
        }
        return Ok(if plan.refused() {
            EXIT_REFUSED
        } else {
            EXIT_OK
        });
    }
    let nothing_to_run = plan.phases.iter().all(|p| p.steps.is_empty());
    if nothing_to_run && !plan.refused() {
        print!("{}", render_plan(&plan));
        println!("nothing to do");
        return Ok(EXIT_OK);
    }
    let question = match &plan.target {
        Some(new) => format!(
            "This writes {} (serial {}) and adds it to the arrays.",
            new.by_id,
            new.serial.as_deref().unwrap_or("unknown")
        ),
        None => "This takes the failed disk's members out of the arrays.".into(),
    };
    let notes = plan.notes.clone();
    let code = run_operation(
        &Operation {
            name: "replace",
            journal_file: REPLACE_JOURNAL,
            question,
            yes: args.yes,
            run: &args.run,
        },
        || Ok(plan),
    )?;
    if code == EXIT_OK && !args.run.json {
        for note in notes
            .iter()
            .filter(|n| n.starts_with("then") || n.contains("pulled"))
        {
            println!("next: {note}");
        }
    }
    // The journal of a finished replacement is kept for the record; the next one starts anew.
    Ok(code)
}

/// Where a disk sits, as sysfs tells: its enclosure slot, else its SCSI address.
fn slot(name: &str) -> Option<String> {
    let device = format!("/sys/block/{name}/device");
    if let Ok(entries) = std::fs::read_dir(&device) {
        for e in entries.flatten() {
            let entry = e.file_name().to_string_lossy().into_owned();
            if let Some(slot) = entry.strip_prefix("enclosure_device:") {
                return Some(format!("enclosure slot {slot}"));
            }
        }
    }
    let target = std::fs::read_link(&device).ok()?;
    let address = target.file_name()?.to_string_lossy().into_owned();
    address
        .chars()
        .all(|c| c.is_ascii_digit() || c == ':')
        .then(|| format!("SCSI address {address}"))
}
