//! `xenraid scrub`: md's `check` on every redundant array, one array at a time, spread over
//! as many runs as it takes.
//!
//! md checks from `sync_min` (sectors). At the budget's end the position `sync_completed`
//! reached goes into the checkpoint and `idle` stops the check; the next run writes that
//! position to `sync_min` and goes on. md counts `mismatch_cnt` per run (it resets it as a check
//! starts), so the checkpoint sums the parts of a pass. When a pass completes, md itself resets
//! `sync_min` to 0 (an interrupted check leaves it at the interruption point): that is how a
//! finished check is told from one stopped by someone else.

pub mod state;
pub mod sysfs;

use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::health::md_sysfs::{parse_sync_completed, read_arrays, ArrayHealth};
use crate::host::source::HostSource;

use state::{ArrayCheckpoint, ScrubState, StateError, StateStore};
use sysfs::{Clock, SysfsWrite};

const REDUNDANT_LEVELS: [&str; 5] = ["raid1", "raid4", "raid5", "raid6", "raid10"];
/// How long md gets to wind a stopped check down.
const STOP_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum ScrubError {
    #[error("no md array {name} (see `xenraid status`)")]
    NoArray { name: String },
    #[error("writing {value:?} to {path}: {source}")]
    Sysfs {
        path: String,
        value: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug, Clone)]
pub struct ScrubOptions {
    /// Stop (and checkpoint) after this long; None runs every check to its end.
    pub budget: Option<Duration>,
    /// Kernel names (`md127`), `/dev/md127` or `md/NAME`; empty = every redundant array.
    pub arrays: Vec<String>,
    /// How often a running check is looked at.
    pub poll: Duration,
}

impl Default for ScrubOptions {
    fn default() -> Self {
        ScrubOptions {
            budget: None,
            arrays: Vec::new(),
            poll: Duration::from_secs(5),
        }
    }
}

/// What one run did to one array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayScrub {
    pub device: String,
    pub uuid: Option<String>,
    /// The range checked by this run, in sectors.
    pub from_sector: u64,
    pub to_sector: u64,
    pub total_sectors: u64,
    /// The pass reached the end of the array in this run.
    pub finished: bool,
    /// Mismatches md found in this run's range.
    pub mismatch_sectors: u64,
    /// Mismatches of the whole pass, when it finished in this run.
    pub pass_mismatch_sectors: Option<u64>,
    /// Why the check ended early, when something other than the budget stopped it.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub device: String,
    pub why: String,
}

/// The result of `scrub`: what was checked, what was left out, and the events for the monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScrubOutcome {
    pub arrays: Vec<ArrayScrub>,
    pub skipped: Vec<Skipped>,
    /// Eligible arrays the budget did not reach (next run).
    pub not_reached: Vec<String>,
}

impl ScrubOutcome {
    /// Arrays whose members differed somewhere in the range checked: the events to report.
    pub fn mismatch_events(&self) -> impl Iterator<Item = &ArrayScrub> {
        self.arrays.iter().filter(|a| a.mismatch_sectors > 0)
    }

    /// 0 clean, 1 (WARNING, as Nagios) when a check found mismatches.
    pub fn exit_code(&self) -> i32 {
        if self.mismatch_events().next().is_some() {
            1
        } else {
            0
        }
    }
}

/// Progress of the running check, for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubProgress {
    pub device: String,
    pub done_sectors: u64,
    pub total_sectors: u64,
    pub speed_kib: Option<u64>,
}

enum Checked {
    Done(ArrayScrub),
    NotStarted(String),
}

/// Everything a scrub touches.
pub struct Scrubber<'a> {
    pub src: &'a dyn HostSource,
    pub sysfs: &'a dyn SysfsWrite,
    pub clock: &'a mut dyn Clock,
    pub store: &'a StateStore,
}

impl Scrubber<'_> {
    pub fn run(
        &mut self,
        options: &ScrubOptions,
        progress: &mut dyn FnMut(&ScrubProgress),
    ) -> Result<ScrubOutcome, ScrubError> {
        let arrays = select(read_arrays(self.src), &options.arrays)?;
        let mut state = self.store.load()?;
        let mut outcome = ScrubOutcome::default();
        let mut eligible = Vec::new();
        for a in arrays {
            match ineligible(&a) {
                Some(why) => outcome.skipped.push(Skipped {
                    device: a.device.clone(),
                    why,
                }),
                None => eligible.push(a),
            }
        }
        // A pass in progress first, then the array whose last pass is oldest (never first).
        eligible.sort_by_key(|a| {
            let c = state.arrays.get(&key(a));
            (
                !c.is_some_and(ArrayCheckpoint::in_progress),
                c.and_then(|c| c.last_finished),
                a.device.clone(),
            )
        });
        for a in eligible {
            if self.budget_left(options).is_some_and(|d| d.is_zero()) {
                outcome.not_reached.push(a.device.clone());
                continue;
            }
            match self.check_array(&a, &mut state, options, progress)? {
                Checked::Done(done) => outcome.arrays.push(done),
                Checked::NotStarted(why) => outcome.skipped.push(Skipped {
                    device: a.device.clone(),
                    why,
                }),
            }
        }
        Ok(outcome)
    }

    fn budget_left(&self, options: &ScrubOptions) -> Option<Duration> {
        options
            .budget
            .map(|b| b.saturating_sub(self.clock.elapsed()))
    }

    fn write(&self, path: &str, value: &str) -> Result<(), ScrubError> {
        tracing::info!("{path} <- {value}");
        self.sysfs
            .write(path, value)
            .map_err(|source| ScrubError::Sysfs {
                path: path.into(),
                value: value.into(),
                source,
            })
    }

    fn read(&self, path: &str) -> Option<String> {
        self.src
            .read_to_string(path)
            .ok()
            .map(|t| t.trim().to_string())
    }

    fn number(&self, path: &str) -> Option<u64> {
        self.read(path)?.parse().ok()
    }

    fn check_array(
        &mut self,
        a: &ArrayHealth,
        state: &mut ScrubState,
        options: &ScrubOptions,
        progress: &mut dyn FnMut(&ScrubProgress),
    ) -> Result<Checked, ScrubError> {
        let md = format!("/sys/block/{}/md", a.device);
        // A check covers each member's data area: component_size (KiB) in sectors (the
        // kernel's own figure replaces it once sync_completed shows one: raid10 differs).
        let size = self
            .number(&format!("{md}/component_size"))
            .map(|k| k * 2)
            .unwrap_or(a.size_bytes / 512);
        let mut total = size;
        // md wants sync_min on a chunk boundary for striped levels (chunk_size is in bytes).
        let chunk = self
            .number(&format!("{md}/chunk_size"))
            .map(|b| b / 512)
            .filter(|c| *c > 0)
            .unwrap_or(1);
        let entry = state.arrays.entry(key(a)).or_default();
        // A resized array starts a fresh pass.
        if entry.total_sectors != size {
            entry.next_sector = 0;
            entry.pass_mismatch_sectors = 0;
        }
        entry.device = a.device.clone();
        entry.total_sectors = size;
        let from = entry.next_sector / chunk * chunk;
        if from == 0 {
            entry.pass_mismatch_sectors = 0;
            entry.pass_started = Some(self.clock.now_unix());
        }
        tracing::info!("{}: check from sector {from} of {total}", a.device);
        // md refuses these while another sync starts on the array (EBUSY): skip it then.
        let started = self
            .write(&format!("{md}/sync_max"), "max")
            .and_then(|()| self.write(&format!("{md}/sync_min"), &from.to_string()))
            .and_then(|()| self.write(&format!("{md}/sync_action"), "check"));
        if let Err(err) = started {
            return Ok(Checked::NotStarted(format!(
                "could not start the check: {err}"
            )));
        }
        self.store.save(state)?;

        let mut reached = from;
        let mut stopped_by_budget = false;
        loop {
            let wait = match self.budget_left(options) {
                Some(left) if left.is_zero() => {
                    // Unless it ended since the last look: then it is judged as ended.
                    stopped_by_budget =
                        self.read(&format!("{md}/sync_action")).as_deref() == Some("check");
                    break;
                }
                Some(left) => left.min(options.poll),
                None => options.poll,
            };
            self.clock.sleep(wait);
            if let Some((done, kernel_total)) = self
                .read(&format!("{md}/sync_completed"))
                .and_then(|t| parse_sync_completed(&t))
            {
                if kernel_total > 0 {
                    total = kernel_total;
                }
                reached = reached.max(done);
                progress(&ScrubProgress {
                    device: a.device.clone(),
                    done_sectors: done,
                    total_sectors: total,
                    speed_kib: self.number(&format!("{md}/sync_speed")),
                });
            }
            if self.read(&format!("{md}/sync_action")).as_deref() != Some("check") {
                break;
            }
        }
        if stopped_by_budget {
            if let Some((done, _)) = self
                .read(&format!("{md}/sync_completed"))
                .and_then(|t| parse_sync_completed(&t))
            {
                reached = reached.max(done);
            }
            self.write(&format!("{md}/sync_action"), "idle")?;
            self.wait_idle(&md);
        }
        // md leaves sync_min where an interrupted check stopped, and resets it to 0 when a
        // check completes.
        let sync_min = self.number(&format!("{md}/sync_min")).unwrap_or(0);
        let degraded = self.number(&format!("{md}/degraded")).unwrap_or(0);
        let mismatches = self.number(&format!("{md}/mismatch_cnt")).unwrap_or(0);
        let now = self.clock.now_unix();
        let entry = state.arrays.entry(key(a)).or_default();
        let finished = !stopped_by_budget && sync_min == 0 && degraded == 0;
        let mut result = ArrayScrub {
            device: a.device.clone(),
            uuid: a.uuid.clone(),
            from_sector: from,
            to_sector: reached,
            total_sectors: total,
            finished,
            mismatch_sectors: mismatches,
            pass_mismatch_sectors: None,
            note: None,
        };
        if finished {
            let pass = entry.pass_mismatch_sectors + mismatches;
            entry.last_finished = Some(now);
            entry.last_mismatch_sectors = Some(pass);
            entry.next_sector = 0;
            entry.pass_mismatch_sectors = 0;
            entry.pass_started = None;
            result.to_sector = total;
            result.pass_mismatch_sectors = Some(pass);
            tracing::info!("{}: check finished, {pass} mismatched sectors", a.device);
        } else {
            reached = reached.max(sync_min).min(total);
            result.to_sector = reached;
            entry.next_sector = reached;
            entry.pass_mismatch_sectors += mismatches;
            if !stopped_by_budget {
                result.note = Some(if degraded > 0 {
                    "the array lost a member during the check".into()
                } else {
                    "the check was stopped by something else".into()
                });
            }
        }
        self.store.save(state)?;
        Ok(Checked::Done(result))
    }

    /// After `idle`: md reports idle once the check thread has wound down.
    fn wait_idle(&mut self, md: &str) {
        let step = Duration::from_secs(1);
        let mut waited = Duration::ZERO;
        while self.read(&format!("{md}/sync_action")).as_deref() == Some("check")
            && waited < STOP_WAIT
        {
            self.clock.sleep(step);
            waited += step;
        }
    }
}

/// The checkpoint key: the UUID survives renumbering across boots.
fn key(a: &ArrayHealth) -> String {
    a.uuid.clone().unwrap_or_else(|| a.device.clone())
}

/// Why an array is not checked, or None when it is.
fn ineligible(a: &ArrayHealth) -> Option<String> {
    if !REDUNDANT_LEVELS.contains(&a.level.as_str()) {
        return Some(format!("{}: nothing to compare", a.level));
    }
    if a.state == "inactive" || a.state == "readonly" {
        return Some(format!("array is {}", a.state));
    }
    if a.missing > 0 {
        return Some(format!(
            "degraded ({} of {} members missing): nothing to compare it with",
            a.missing, a.raid_disks
        ));
    }
    if a.sync_action != "idle" {
        return Some(format!("busy: {} running", a.sync_action));
    }
    None
}

/// The arrays asked for (all when none is named), by kernel name, /dev path or md/NAME.
fn select(arrays: Vec<ArrayHealth>, wanted: &[String]) -> Result<Vec<ArrayHealth>, ScrubError> {
    if wanted.is_empty() {
        return Ok(arrays);
    }
    let mut out: Vec<ArrayHealth> = Vec::new();
    for w in wanted {
        let bare = w.trim_start_matches("/dev/");
        let found = arrays
            .iter()
            .find(|a| {
                a.device == bare
                    || a.name
                        .as_deref()
                        .is_some_and(|n| bare.strip_prefix("md/") == Some(n))
            })
            .ok_or_else(|| ScrubError::NoArray { name: w.clone() })?;
        if !out.iter().any(|a| a.device == found.device) {
            out.push(found.clone());
        }
    }
    Ok(out)
}
