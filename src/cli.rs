//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub const EXIT_OK: i32 = 0;
pub const EXIT_RUNTIME: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_REFUSED: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "xenraid",
    version,
    about = "Move a running single-disk XenServer / XCP-ng host onto Linux software RAID1",
    after_help = "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 preflight refused the plan."
)]
pub struct Cli {
    /// Read a captured host tree (see tests/fixtures/capture.sh) instead of the live host.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Log more (repeat for more detail); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Show what is on this host: disks, partitions, mounts, arrays, boot loader, product.
    Inspect(InspectArgs),
    /// Print the whole conversion to RAID1 (every command, every file edit) and the preflight
    /// checks; writes nothing.
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Machine-readable JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The empty disk that becomes the first RAID1 member: /dev/sdX or /dev/disk/by-id/…
    /// (recorded by serial/WWN).
    #[arg(long, value_name = "DISK")]
    pub target: String,

    /// Allow the plan to erase partitions and signatures found on the target (never when in use).
    #[arg(long)]
    pub wipe_target: bool,

    /// Name of the local SR created on the mirrored storage partition.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "Local storage",
        conflicts_with = "no_sr"
    )]
    pub sr_name: String,

    /// Create no SR (and no storage array).
    #[arg(long)]
    pub no_sr: bool,

    /// Machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
