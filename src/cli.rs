//! Command-line interface (clap derive). In the library so that `packaging/gen` (man pages,
//! shell completions) builds the same `Cli` without putting its generators in the product.

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
    after_help = "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 preflight refused the plan, 4 a doctor check failed."
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
    /// Convert to RAID1: phase 1 now (writes only the target), one reboot, phase 2 resumes by
    /// itself. Asks for confirmation unless --yes.
    Convert(ConvertArgs),
    /// Continue an interrupted conversion from its journal (the resume unit runs this after
    /// the reboot).
    Resume(ResumeArgs),
    /// Undo a conversion that has not touched the original disk yet.
    Rollback(RollbackArgs),
    /// Every array (members by disk serial, sync progress, bitmap, mismatches) and every disk
    /// under them (what it serves, whether it can boot).
    Status(StatusArgs),
    /// Watch the arrays and alert at once (mail, XenCenter message, webhook, journal); runs
    /// as the xenraid-monitor systemd service. Sleeps until md reports a change.
    Monitor(MonitorArgs),
    /// Alert on an mdadm event: mdadm.conf `PROGRAM /usr/sbin/xenraid event` calls it as
    /// `EVENT MD [DEVICE]`.
    Event(EventArgs),
    /// Send a test alert through every configured channel; fails on any channel that fails.
    AlertTest(AlertTestArgs),
    /// The health as Prometheus metrics (node_exporter's md names plus xenraid_*): printed,
    /// written as a node_exporter textfile, or served on /metrics.
    Metrics(MetricsArgs),
    /// md `check` of every redundant array, one at a time, resumed from a checkpoint so a long
    /// check spreads over several runs. Exit 1 (WARNING) when mismatches were found.
    Scrub(ScrubArgs),
    /// Two blank disks become another mirrored local SR: a partition on each, a RAID1 with a
    /// bitmap and a name kept across reboots (mdadm.conf, initramfs), pvcreate, xe sr-create.
    /// Refuses disks in use, or holding data unless --wipe-target. Asks unless --yes; run
    /// again after an interruption, it continues.
    AddMirror(AddMirrorArgs),
    /// Check the invariants that keep a mirrored host bootable (mdadm.conf, initramfs, dracut
    /// conf, boot loader on every member disk, fstab, labels, bitmaps, monitor); --fix repairs
    /// what is safe. Exit 4 when a check fails.
    Doctor(DoctorArgs),
    /// Replace a failed or missing member disk: its members out, then (with --new) the new
    /// disk partitioned like the healthy one, added to every array, made bootable, resynced.
    /// A member disk that came back after a brief loss is re-added (the bitmap limits the
    /// resync). Run again after an interruption, it continues.
    Replace(ReplaceArgs),
}

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// The member disk to replace (/dev/sdX or /dev/disk/by-id/…); found by itself when one
    /// disk has failed members or is gone. Naming a working disk retires it.
    #[arg(long, value_name = "DISK")]
    pub failed: Option<String>,

    /// The disk that takes its place: blank, at least as large as the healthy disk.
    #[arg(long, value_name = "DISK")]
    pub new: Option<String>,

    /// Erase what the new disk holds (it must not be in use).
    #[arg(long)]
    pub wipe_target: bool,

    /// Add the new disk as a hot spare to every array instead (the arrays are complete).
    #[arg(long)]
    pub spare: bool,

    /// Do not ask for confirmation (automation).
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Configuration file (default /etc/xenraid/xenraid.toml; a missing default file means
    /// journal-only alerts).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Look once, alert on what changed since the start, and exit.
    #[arg(long)]
    pub once: bool,
    /// One JSON object per alert on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EventArgs {
    /// mdadm's event name: Fail, DegradedArray, RebuildStarted, SpareActive, …
    pub event: String,
    /// The array: /dev/md127 or /dev/md/root.
    pub md: String,
    /// The member device, when the event has one.
    pub device: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AlertTestArgs {
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Write node_exporter's textfile atomically (default path when PATH is left out).
    #[arg(long, value_name = "PATH", num_args = 0..=1,
          default_missing_value = crate::metrics::DEFAULT_TEXTFILE, conflicts_with = "listen")]
    pub textfile: Option<PathBuf>,
    /// Serve GET /metrics on ADDR (default 127.0.0.1:9747), computed at every scrape.
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = crate::metrics::DEFAULT_LISTEN)]
    pub listen: Option<String>,
    /// Let --listen take a non-loopback address (the metrics name disks and serials).
    #[arg(long, requires = "listen")]
    pub allow_remote: bool,
    /// Leave out node_md_* (when node_exporter's own mdadm collector already exports them).
    #[arg(long)]
    pub no_node_md: bool,
}

#[derive(Debug, Args)]
pub struct ScrubArgs {
    /// Stop after this long (4h, 90m, 1h30m); the next run continues where this one stopped.
    #[arg(long, value_name = "DURATION", value_parser = crate::scrub::sysfs::parse_duration)]
    pub budget: Option<std::time::Duration>,
    /// Only this array (md127, /dev/md127 or md/NAME); repeat for more. Default: every
    /// redundant array.
    #[arg(long = "array", value_name = "ARRAY")]
    pub arrays: Vec<String>,
    /// The checkpoint file.
    #[arg(long, value_name = "PATH", default_value = crate::scrub::state::DEFAULT_STATE)]
    pub state: PathBuf,
    /// Machine-readable JSON outcome on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Repair what is safe (initramfs, boot code, bitmaps, config files, ESP copies), say what
    /// was done, and check again.
    #[arg(long)]
    pub fix: bool,
    /// Machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// One line and a Nagios exit code: 0 OK, 1 WARNING (resync/check running, no bitmap,
    /// mismatches, a mirror disk that cannot boot), 2 CRITICAL (degraded, faulty, inactive),
    /// 3 UNKNOWN (no md).
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Do not wait for the resync; it goes on in the kernel (`xenraid status` shows it). On
    /// 6.5 a step that must not run before it ends (the boot flag) stops the run there; the
    /// same command (convert: `xenraid resume`) finishes once it has.
    #[arg(long)]
    pub no_wait: bool,

    /// md resync speed for the initial sync: default (leave md's limit), max, or KiB/s.
    #[arg(long, value_name = "SPEED", default_value = "default", value_parser = parse_speed)]
    pub resync_speed: ResyncSpeedArg,

    /// Stop before this step id (see `plan`), as if interrupted; `resume` (convert) or the
    /// same command again (add-mirror) continues.
    #[arg(long, value_name = "STEP")]
    pub stop_before: Option<String>,

    /// Machine-readable JSON summary on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncSpeedArg {
    Default,
    Max,
    KbPerSec(u64),
}

fn parse_speed(text: &str) -> Result<ResyncSpeedArg, String> {
    match text {
        "default" => Ok(ResyncSpeedArg::Default),
        "max" => Ok(ResyncSpeedArg::Max),
        n => n
            .parse::<u64>()
            .ok()
            .filter(|v| *v >= 1000)
            .map(ResyncSpeedArg::KbPerSec)
            .ok_or_else(|| format!("`{n}`: use default, max, or a speed in KiB/s (at least 1000)")),
    }
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub plan: PlanTargetArgs,

    /// Do not ask for confirmation (automation).
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct AddMirrorArgs {
    /// The two new disks, comma-separated: /dev/sdX or /dev/disk/by-id/… (recorded by
    /// serial/WWN).
    #[arg(long, value_name = "A,B", value_delimiter = ',', required = true)]
    pub disks: Vec<String>,

    /// Name of the new local SR (default: "Local storage <array name>").
    #[arg(long, value_name = "NAME")]
    pub sr_name: Option<String>,

    /// Name of the array, /dev/md/NAME (default: the first free sr2, sr3, …).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Allow erasing partitions and signatures found on the disks (never when in use).
    #[arg(long)]
    pub wipe_target: bool,

    /// Do not ask for confirmation (automation).
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Accepted for symmetry with convert; resume continues what was confirmed then.
    #[arg(long)]
    pub yes: bool,

    /// The first boot on the RAID did not come up: set the one-shot entry and reboot again.
    #[arg(long)]
    pub retry_boot: bool,

    /// Do not wait for the resync.
    #[arg(long, conflicts_with = "wait")]
    pub no_wait: bool,

    /// Wait for the resync even if the conversion was started with --no-wait (the resume
    /// entry of a SysV-init host runs in the background and finishes the whole conversion).
    #[arg(long)]
    pub wait: bool,

    /// Stop before this step id, as if interrupted.
    #[arg(long, value_name = "STEP")]
    pub stop_before: Option<String>,

    /// Machine-readable JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,

    /// Machine-readable JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Machine-readable JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: PlanTargetArgs,

    /// Machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanTargetArgs {
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
}
