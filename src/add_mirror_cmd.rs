//! `xenraid add-mirror`: plans from the live host, then the maintenance runner confirms,
//! journals and runs it (and continues it when run again after an interruption).

use xenraid::cli::{AddMirrorArgs, Cli, EXIT_REFUSED};
use xenraid::convert::journal::JournalState;
use xenraid::convert::JournalStore;
use xenraid::plan::add_mirror::{build_add_mirror_plan, AddMirrorIntent, JOURNAL_FILE};

use crate::run_cmd::{run_operation, Operation};

pub fn add_mirror(cli: &Cli, args: &AddMirrorArgs) -> anyhow::Result<i32> {
    if cli.root.is_some() {
        anyhow::bail!("add-mirror works on the live host only (--root reads a captured tree)");
    }
    // A conversion between its phases owns the disks' layout and mdadm.conf; a second writer
    // would race its resume.
    let convert = JournalStore::new(xenraid::plan::lifecycle_steps::JOURNAL_FILE).load()?;
    if convert.is_some_and(|j| j.state == JournalState::InProgress) {
        eprintln!("xenraid: a conversion is in progress: finish it first (`xenraid resume`), then add the mirror");
        return Ok(EXIT_REFUSED);
    }
    let intent = AddMirrorIntent {
        disks: args.disks.clone(),
        name: args.name.clone(),
        sr_name: args.sr_name.clone(),
        wipe: args.wipe_target,
    };
    let op = Operation {
        name: "add-mirror",
        journal_file: JOURNAL_FILE,
        question: format!(
            "This erases {} and makes them a RAID1 with a new SR.",
            args.disks.join(" and ")
        ),
        yes: args.yes,
        run: &args.run,
    };
    run_operation(&op, || {
        Ok(build_add_mirror_plan(&crate::read_facts(cli)?, &intent))
    })
}
