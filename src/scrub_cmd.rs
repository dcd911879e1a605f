//! `xenraid scrub`: the live host's md, the checkpoint file, progress on stderr.

use xenraid::host::RootedSource;
use xenraid::scrub::state::StateStore;
use xenraid::scrub::sysfs::{RootedSysfs, SystemClock};
use xenraid::scrub::{ScrubOptions, ScrubProgress, Scrubber};

use crate::cli::ScrubArgs;

pub fn scrub(args: &ScrubArgs) -> anyhow::Result<i32> {
    let src = RootedSource::live();
    let sysfs = RootedSysfs::live();
    let mut clock = SystemClock::start();
    let store = StateStore::new(&args.state);
    let options = ScrubOptions {
        budget: args.budget,
        arrays: args.arrays.clone(),
        ..ScrubOptions::default()
    };
    // One stderr line per whole percent, not one per poll (a 4 h run goes to the journal).
    let mut shown: Option<(String, u64)> = None;
    let mut show = |p: &ScrubProgress| {
        let pct = (p.done_sectors * 100)
            .checked_div(p.total_sectors)
            .unwrap_or(0);
        if shown.as_ref() != Some(&(p.device.clone(), pct)) {
            let speed = p
                .speed_kib
                .map(|s| format!(", {} MiB/s", s / 1024))
                .unwrap_or_default();
            eprintln!(
                "scrub {}: {pct}% ({} / {} sectors{speed})",
                p.device, p.done_sectors, p.total_sectors
            );
            shown = Some((p.device.clone(), pct));
        }
    };
    let outcome = Scrubber {
        src: &src,
        sysfs: &sysfs,
        clock: &mut clock,
        store: &store,
    }
    .run(&options, &mut show)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        for s in &outcome.skipped {
            println!("{}: skipped: {}", s.device, s.why);
        }
        for a in &outcome.arrays {
            let how = if a.finished {
                format!(
                    "finished; {} mismatched sectors in the whole pass",
                    a.pass_mismatch_sectors.unwrap_or(a.mismatch_sectors)
                )
            } else {
                format!(
                    "stopped at {:.1}% ({}), continues next run",
                    a.to_sector as f64 * 100.0 / a.total_sectors.max(1) as f64,
                    a.note.as_deref().unwrap_or("budget used up")
                )
            };
            println!(
                "{}: checked sectors {}..{} of {}: {how}",
                a.device, a.from_sector, a.to_sector, a.total_sectors
            );
        }
        for d in &outcome.not_reached {
            println!("{d}: not reached within the budget (next run)");
        }
    }
    for e in outcome.mismatch_events() {
        let line = format!(
            "MISMATCH {}: {} sectors differed between the members in sectors {}..{} \
             (echo repair > /sys/block/{}/md/sync_action, then check again)",
            e.device, e.mismatch_sectors, e.from_sector, e.to_sector, e.device
        );
        // Keep --json's stdout one JSON document.
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(outcome.exit_code())
}
