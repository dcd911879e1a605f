//! The commands that write: convert, resume, rollback. Confirmation, journal, engine, summary.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use serde_json::json;

use xenraid::convert::journal::JournalState;
use xenraid::convert::progress::ProgressStyle;
use xenraid::convert::rollback::rollback as roll_back;
use xenraid::convert::system::LiveSystem;
use xenraid::convert::{run_plan, Journal, JournalStore, Outcome, ResyncSpeed, RunOptions};
use xenraid::exec::RealRunner;
use xenraid::plan::lifecycle_steps::JOURNAL_FILE;
use xenraid::plan::Plan;

use crate::cli::{
    ConvertArgs, ResumeArgs, ResyncSpeedArg, RollbackArgs, RunArgs, EXIT_OK, EXIT_REFUSED,
    EXIT_RUNTIME, EXIT_USAGE,
};

const RESUME: &str = "`xenraid resume`";

fn store() -> JournalStore {
    JournalStore::new(JOURNAL_FILE)
}

/// Human progress goes to stdout, or to stderr when stdout carries JSON.
fn sayer(json: bool) -> impl Fn(&str) {
    move |line: &str| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

fn target_path(plan: &Plan) -> String {
    plan.target
        .as_ref()
        .map(|t| t.by_id.clone())
        .unwrap_or_default()
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        eprintln!("xenraid: refusing without --yes: stdin is not a terminal to confirm on");
        return Ok(false);
    }
    print!("{question} Type 'yes' to go on: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

pub fn convert(args: &ConvertArgs, plan: Plan) -> anyhow::Result<i32> {
    let store = store();
    if let Some(existing) = store.load()? {
        let what = match existing.state {
            JournalState::InProgress => format!(
                "a conversion is in progress (next step: {}); continue it with `xenraid resume` or undo it with `xenraid rollback`",
                existing.next_step().map(|r| r.id.as_str()).unwrap_or("none")
            ),
            JournalState::Complete => "this host was already converted (see `xenraid status`)".into(),
            JournalState::RolledBack => format!("{JOURNAL_FILE} records a rolled-back conversion; remove it to start again"),
        };
        eprintln!("xenraid: {what}");
        return Ok(EXIT_REFUSED);
    }
    if !args.run.json {
        print!("{}", xenraid::plan::render::render_plan(&plan));
    }
    if plan.refused() {
        if args.run.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        }
        eprintln!("xenraid: preflight refused the plan; nothing was written");
        return Ok(EXIT_REFUSED);
    }
    let target = target_path(&plan);
    if !args.yes
        && !confirm(&format!(
            "\nThis erases {target} and converts this host to RAID1 (one reboot)."
        ))?
    {
        eprintln!("xenraid: not confirmed; nothing was written");
        return Ok(EXIT_USAGE);
    }
    let mut journal = Journal::new(plan, run_options(&args.run));
    store.save(&journal).context("starting the journal")?;
    drive(&store, &mut journal, args.run.json, RESUME, |j, s| {
        run_plan(&live(args.run.json), &store, j, s)
    })
}

fn run_options(run: &RunArgs) -> RunOptions {
    RunOptions {
        no_wait: run.no_wait,
        resync_speed: match run.resync_speed {
            ResyncSpeedArg::Default => ResyncSpeed::Default,
            ResyncSpeedArg::Max => ResyncSpeed::Max,
            ResyncSpeedArg::KbPerSec(v) => ResyncSpeed::KbPerSec(v),
        },
        stop_before: run.stop_before.clone(),
    }
}

/// A maintenance operation (replace, add-mirror): its plan printed, refused on a failed
/// preflight, confirmed, then run through the engine with its own journal. Run again after an
/// interruption, the same command continues the journal instead of planning anew.
pub struct Operation<'a> {
    /// `replace`, `add-mirror`: names the journal and the messages.
    pub name: &'a str,
    pub journal_file: &'a str,
    /// Asked before anything is written ("This erases …").
    pub question: String,
    pub yes: bool,
    pub run: &'a RunArgs,
}

pub fn run_operation(
    op: &Operation<'_>,
    plan: impl FnOnce() -> anyhow::Result<Plan>,
) -> anyhow::Result<i32> {
    let store = JournalStore::new(op.journal_file);
    let again = format!("`xenraid {}` run again", op.name);
    if let Some(mut journal) = store.load()? {
        if journal.state == JournalState::InProgress {
            sayer(op.run.json)(&format!(
                "xenraid: continuing the interrupted {} from {} (next step: {})",
                op.name,
                op.journal_file,
                journal.next_step().map(|r| r.id.as_str()).unwrap_or("none")
            ));
            journal.options.no_wait |= op.run.no_wait;
            journal.options.stop_before = op.run.stop_before.clone();
            return drive(&store, &mut journal, op.run.json, &again, |j, s| {
                run_plan(&live(op.run.json), &store, j, s)
            });
        }
    }
    let plan = plan()?;
    if !op.run.json {
        print!("{}", xenraid::plan::render::render_plan(&plan));
    }
    if plan.refused() {
        if op.run.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        }
        eprintln!(
            "xenraid: preflight refused the {}; nothing was written",
            op.name
        );
        return Ok(EXIT_REFUSED);
    }
    if !op.yes && !confirm(&format!("\n{}", op.question))? {
        eprintln!("xenraid: not confirmed; nothing was written");
        return Ok(EXIT_USAGE);
    }
    let mut journal = Journal::new(plan, run_options(op.run));
    store.save(&journal).context("starting the journal")?;
    drive(&store, &mut journal, op.run.json, &again, |j, s| {
        run_plan(&live(op.run.json), &store, j, s)
    })
}

fn live(json: bool) -> LiveSystem<'static> {
    LiveSystem {
        runner: &RealRunner,
        progress: ProgressStyle::detect(json && !std::io::stderr().is_terminal()),
    }
}

pub fn resume(args: &ResumeArgs) -> anyhow::Result<i32> {
    let store = store();
    let Some(mut journal) = store.load()? else {
        eprintln!("xenraid: no conversion to resume ({JOURNAL_FILE} does not exist)");
        return Ok(EXIT_RUNTIME);
    };
    match journal.state {
        JournalState::Complete => {
            sayer(args.json)("the conversion is complete; nothing to resume");
            return Ok(EXIT_OK);
        }
        JournalState::RolledBack => {
            eprintln!("xenraid: this conversion was rolled back");
            return Ok(EXIT_REFUSED);
        }
        JournalState::InProgress => {}
    }
    journal.options.resume_waiting(args.no_wait, args.wait);
    if args.stop_before.is_some() {
        journal.options.stop_before = args.stop_before.clone();
    } else if journal.options.stop_before.as_deref() == journal.next_step().map(|r| r.id.as_str()) {
        // Resuming by hand after a requested stop: go on past it.
        journal.options.stop_before = None;
    }
    if args.retry_boot {
        journal.retry_boot();
    }
    drive(&store, &mut journal, args.json, RESUME, |j, s| {
        run_plan(&live(args.json), &store, j, s)
    })
}

/// `continue_with`: how the user carries on after an error (`xenraid resume` for convert).
fn drive(
    store: &JournalStore,
    journal: &mut Journal,
    json: bool,
    continue_with: &str,
    go: impl FnOnce(
        &mut Journal,
        &dyn xenraid::convert::engine::Say,
    ) -> Result<Outcome, xenraid::convert::ConvertError>,
) -> anyhow::Result<i32> {
    let say = sayer(json);
    let result = go(journal, &say);
    let (code, outcome) = match &result {
        Ok(Outcome::Complete) => (EXIT_OK, "complete".to_string()),
        Ok(Outcome::Rebooting) => (EXIT_OK, "rebooting".to_string()),
        Ok(Outcome::Stopped { before }) => (EXIT_OK, format!("stopped before {before}")),
        Ok(Outcome::WaitingForResync { before, devices }) => {
            eprintln!(
                "xenraid: {before} waits for the resync of {} (--no-wait): once `xenraid status` shows it in sync, {continue_with} finishes",
                devices.join(", ")
            );
            (EXIT_OK, format!("waiting for the resync before {before}"))
        }
        Err(err) => {
            eprintln!("xenraid: error: {err}");
            eprintln!(
                "xenraid: the journal {} records where it stopped; {continue_with} continues",
                store.path.display()
            );
            (EXIT_RUNTIME, format!("error: {err}"))
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "outcome": outcome,
                "journal": store.path,
                "sr_uuid": journal.sr_uuid,
                "steps": journal.steps,
            }))?
        );
    } else if code == EXIT_OK {
        say(&format!("xenraid: {outcome}"));
    }
    Ok(code)
}

pub fn rollback(args: &RollbackArgs) -> anyhow::Result<i32> {
    let store = store();
    let Some(mut journal) = store.load()? else {
        eprintln!("xenraid: no conversion to roll back ({JOURNAL_FILE} does not exist)");
        return Ok(EXIT_RUNTIME);
    };
    if journal.state != JournalState::InProgress {
        eprintln!("xenraid: the conversion is not in progress; nothing to roll back");
        return Ok(EXIT_REFUSED);
    }
    let target = target_path(&journal.plan);
    if !args.yes
        && !confirm(&format!(
            "This stops the new arrays, blanks {target} and restores the boot configuration."
        ))?
    {
        return Ok(EXIT_USAGE);
    }
    let say = sayer(args.json);
    match roll_back(&live(args.json), &store, &mut journal, &say) {
        Ok(()) => {
            if args.json {
                println!("{}", json!({"outcome": "rolled back"}));
            }
            Ok(EXIT_OK)
        }
        Err(err) => {
            eprintln!("xenraid: error: {err}");
            Ok(match err {
                xenraid::convert::ConvertError::PastPointOfNoReturn { .. }
                | xenraid::convert::ConvertError::RollbackFromRaid => EXIT_REFUSED,
                _ => EXIT_RUNTIME,
            })
        }
    }
}
