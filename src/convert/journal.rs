//! The conversion's journal: the plan being run and where each step stands, written atomically
//! (temporary file, fsync, rename, fsync of the directory) before and after every step, so a
//! crash at any instant leaves either the old or the new record, never half of one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Step};

pub const JOURNAL_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal {path} is not valid ({source}); it was written by another xenraid version or damaged — move it aside only if no conversion is in progress")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the journal {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    /// Begun and not known to be finished: resume checks it and runs it again if needed.
    Started,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub status: StepStatus,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    /// How it ended: "ran", "already done", "phase 1 finished before the reboot"…
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalState {
    InProgress,
    Complete,
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "kb_per_s")]
pub enum ResyncSpeed {
    /// Leave md's limits alone.
    Default,
    /// Lift speed_limit_max for the initial sync.
    Max,
    KbPerSec(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    pub no_wait: bool,
    pub resync_speed: ResyncSpeed,
    /// Stop (as if interrupted) before this step: for a cautious pause before the point of no
    /// return, and for the lab's crash matrix.
    pub stop_before: Option<String>,
}

impl RunOptions {
    /// `resume`'s say on the resync wait: `--no-wait` stops waiting from now on, `--wait`
    /// waits again whatever the conversion was started with, neither keeps what it had.
    pub fn resume_waiting(&mut self, no_wait: bool, wait: bool) {
        if wait {
            self.no_wait = false;
        } else {
            self.no_wait |= no_wait;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    pub state: JournalState,
    pub created_at: u64,
    pub plan: Plan,
    pub options: RunOptions,
    pub steps: Vec<StepRecord>,
    /// md's speed_limit_max before xenraid raised it, restored when the resync is over.
    pub saved_speed_limit_max: Option<u64>,
    /// The SR xenraid created.
    pub sr_uuid: Option<String>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Journal {
    pub fn new(plan: Plan, options: RunOptions) -> Journal {
        let steps = plan
            .phases
            .iter()
            .flat_map(|p| p.steps.iter())
            .map(|s| StepRecord {
                id: s.id.clone(),
                status: StepStatus::Pending,
                started_at: None,
                finished_at: None,
                note: None,
            })
            .collect();
        Journal {
            version: JOURNAL_VERSION,
            state: JournalState::InProgress,
            created_at: now(),
            plan,
            options,
            steps,
            saved_speed_limit_max: None,
            sr_uuid: None,
        }
    }

    pub fn plan_steps(&self) -> impl Iterator<Item = &Step> {
        self.plan.phases.iter().flat_map(|p| p.steps.iter())
    }

    pub fn record(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.id == id)
    }

    pub fn status(&self, id: &str) -> StepStatus {
        self.record(id)
            .map(|r| r.status)
            .unwrap_or(StepStatus::Pending)
    }

    pub fn is_done(&self, id: &str) -> bool {
        self.status(id) == StepStatus::Done
    }

    /// `resume --retry-boot`: the RAID boot did not come up (or was cut short), so the
    /// one-shot boot entry is armed again and the machine rebooted once more.
    pub fn retry_boot(&mut self) {
        for id in ["boot-once", "reboot"] {
            self.mark(id, StepStatus::Pending, Some("retried by hand"));
        }
    }

    pub fn mark(&mut self, id: &str, status: StepStatus, note: Option<&str>) {
        if let Some(r) = self.steps.iter_mut().find(|r| r.id == id) {
            r.status = status;
            match status {
                StepStatus::Started => r.started_at = Some(now()),
                StepStatus::Done => r.finished_at = Some(now()),
                StepStatus::Pending => {}
            }
            if let Some(note) = note {
                r.note = Some(note.to_string());
            }
        }
    }

    /// True once the original disk may have been touched: rollback is no longer possible.
    pub fn past_point_of_no_return(&self) -> bool {
        self.status("point-of-no-return") != StepStatus::Pending
            && self
                .steps
                .iter()
                .skip_while(|r| r.id != "point-of-no-return")
                .skip(1)
                .any(|r| r.status != StepStatus::Pending)
    }

    /// The step to run next, or none when every step is done.
    pub fn next_step(&self) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.status != StepStatus::Done)
    }

    pub fn done_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|r| r.status == StepStatus::Done)
            .count()
    }
}

/// Where the conversion stands, for `inspect` (and automation such as the Ansible role,
/// which decides from it whether to convert, wait for the resume unit, or do nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversionSummary {
    /// none, in_progress, complete, rolled_back, or unreadable (see `error`).
    pub state: &'static str,
    pub next_step: Option<String>,
    pub steps_done: usize,
    pub steps_total: usize,
    /// The original disk may have been touched: rollback is no longer possible.
    pub past_point_of_no_return: bool,
    /// The target disk, by-id path, as planned.
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ConversionSummary {
    pub fn of(loaded: Result<Option<Journal>, JournalError>) -> ConversionSummary {
        let mut summary = ConversionSummary {
            state: "none",
            next_step: None,
            steps_done: 0,
            steps_total: 0,
            past_point_of_no_return: false,
            target: None,
            error: None,
        };
        match loaded {
            Ok(None) => {}
            Ok(Some(j)) => {
                summary.state = match j.state {
                    JournalState::InProgress => "in_progress",
                    JournalState::Complete => "complete",
                    JournalState::RolledBack => "rolled_back",
                };
                summary.next_step = j.next_step().map(|r| r.id.clone());
                summary.steps_done = j.done_count();
                summary.steps_total = j.steps.len();
                summary.past_point_of_no_return = j.past_point_of_no_return();
                summary.target = j.plan.target.as_ref().map(|t| t.by_id.clone());
            }
            Err(e) => {
                summary.state = "unreadable";
                summary.error = Some(e.to_string());
            }
        }
        summary
    }

    /// One line for `inspect`'s text output.
    pub fn render(&self) -> String {
        match self.state {
            "none" => "Conversion: none recorded".into(),
            "in_progress" => format!(
                "Conversion: in progress, {}/{} steps done, next `{}`: continue with `xenraid resume`{}",
                self.steps_done,
                self.steps_total,
                self.next_step.as_deref().unwrap_or("-"),
                if self.past_point_of_no_return {
                    ""
                } else {
                    " or undo with `xenraid rollback`"
                }
            ),
            "complete" => "Conversion: complete (see `xenraid status`)".into(),
            "rolled_back" => "Conversion: rolled back".into(),
            _ => format!(
                "Conversion: {}",
                self.error.as_deref().unwrap_or("journal unreadable")
            ),
        }
    }
}

/// Where the journal is kept on a root filesystem.
#[derive(Debug, Clone)]
pub struct JournalStore {
    pub path: PathBuf,
}

impl JournalStore {
    pub fn new(path: impl Into<PathBuf>) -> JournalStore {
        JournalStore { path: path.into() }
    }

    /// The same journal file under another root (the new root before the reboot).
    pub fn under(root: &str, path: &str) -> JournalStore {
        JournalStore::new(format!("{}{}", root.trim_end_matches('/'), path))
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    pub fn load(&self) -> Result<Option<Journal>, JournalError> {
        let display = self.path.display().to_string();
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(JournalError::Read {
                    path: display,
                    source,
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| JournalError::Parse {
                path: display,
                source,
            })
    }

    pub fn save(&self, journal: &Journal) -> Result<(), JournalError> {
        let text = serde_json::to_vec_pretty(journal).expect("the journal serialises");
        write_atomic(&self.path, &text).map_err(|source| JournalError::Write {
            path: self.path.display().to_string(),
            source,
        })
    }

    pub fn remove(&self) -> Result<(), JournalError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(JournalError::Write {
                path: self.path.display().to_string(),
                source,
            }),
        }
    }
}

/// Replaces `path` with `content` so that a crash leaves the old or the new file whole.
pub fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.xenraid-tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    if let Ok(meta) = fs::metadata(path) {
        // Keep the mode of a file we replace (a unit file, grub.cfg…).
        let _ = fs::set_permissions(&tmp, meta.permissions());
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with(ids: &[&str]) -> Plan {
        use crate::plan::*;
        Plan {
            profile: None,
            source: None,
            target: None,
            arrays: vec![],
            preflight: vec![],
            phases: vec![Phase {
                kind: PhaseKind::BeforeReboot,
                steps: ids
                    .iter()
                    .map(|id| Step {
                        id: id.to_string(),
                        why: String::new(),
                        writes: vec![],
                        actions: vec![],
                        done_check: DoneCheck::Journal,
                    })
                    .collect(),
            }],
            notes: vec![],
        }
    }

    fn opts() -> RunOptions {
        RunOptions {
            no_wait: false,
            resync_speed: ResyncSpeed::Default,
            stop_before: None,
        }
    }

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(dir.path().join("sub/convert.json"));
        assert!(store.load().unwrap().is_none());
        let mut j = Journal::new(plan_with(&["a", "b"]), opts());
        j.mark("a", StepStatus::Done, Some("ran"));
        store.save(&j).unwrap();
        let back = store.load().unwrap().unwrap();
        assert_eq!(back, j);
        assert_eq!(back.next_step().unwrap().id, "b");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[test]
    fn the_summary_tells_automation_what_to_do_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(dir.path().join("convert.json"));
        let none = ConversionSummary::of(store.load());
        assert_eq!((none.state, none.steps_total), ("none", 0));
        assert_eq!(none.render(), "Conversion: none recorded");

        let mut j = Journal::new(
            plan_with(&["reboot", "point-of-no-return", "wipe-original"]),
            opts(),
        );
        j.mark("reboot", StepStatus::Done, Some("ran"));
        store.save(&j).unwrap();
        let going = ConversionSummary::of(store.load());
        assert_eq!(going.state, "in_progress");
        assert_eq!(going.next_step.as_deref(), Some("point-of-no-return"));
        assert_eq!((going.steps_done, going.steps_total), (1, 3));
        assert!(!going.past_point_of_no_return);
        assert!(going.render().contains("or undo with `xenraid rollback`"));

        for id in ["point-of-no-return", "wipe-original"] {
            j.mark(id, StepStatus::Done, Some("ran"));
        }
        j.state = JournalState::Complete;
        store.save(&j).unwrap();
        let done = ConversionSummary::of(store.load());
        assert_eq!((done.state, done.next_step), ("complete", None));
        assert!(done.past_point_of_no_return);

        fs::write(&store.path, "{ not a journal").unwrap();
        let damaged = ConversionSummary::of(store.load());
        assert_eq!(damaged.state, "unreadable");
        assert!(
            damaged.render().contains("is not valid"),
            "{}",
            damaged.render()
        );
    }

    #[test]
    fn point_of_no_return_is_crossed_only_by_a_later_step() {
        let mut j = Journal::new(
            plan_with(&["reboot", "point-of-no-return", "wipe-original"]),
            opts(),
        );
        j.mark("point-of-no-return", StepStatus::Done, None);
        assert!(!j.past_point_of_no_return());
        j.mark("wipe-original", StepStatus::Started, None);
        assert!(j.past_point_of_no_return());
    }

    #[test]
    fn damaged_journal_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("convert.json");
        fs::write(&path, "{ not json").unwrap();
        let err = JournalStore::new(&path).load().unwrap_err().to_string();
        assert!(err.contains("convert.json"), "{err}");
    }

    #[test]
    fn resume_wait_overrides_a_no_wait_conversion_and_no_wait_sticks_otherwise() {
        let mut o = RunOptions {
            no_wait: true,
            resync_speed: ResyncSpeed::Default,
            stop_before: None,
        };
        o.resume_waiting(false, false);
        assert!(o.no_wait, "a plain resume keeps --no-wait");
        o.resume_waiting(false, true);
        assert!(!o.no_wait, "--wait waits again");
        o.resume_waiting(true, false);
        assert!(o.no_wait);
    }
}
