//! Execution of a plan: the journal, the engine that walks the steps (checking "already done"
//! before acting, so a resume after a crash is always safe), and rollback.

pub mod arrays;
pub mod efi;
pub mod engine;
pub mod journal;
pub mod progress;
pub mod rollback;
pub mod system;

pub use engine::{run_plan, Outcome};
pub use journal::{Journal, JournalStore, ResyncSpeed, RunOptions};

use crate::exec::ExecError;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("step {step}: {check} does not hold — stopping before anything else is written")]
    GuardFailed { step: String, check: String },
    #[error("step {step} ran, but {check} does not hold afterwards; fix the cause, then continue")]
    CheckFailed { step: String, check: String },
    #[error("this system runs from the original disk (still untouched), not from {root}: the first boot on the RAID did not come up, or it was interrupted before phase 2 began. Either `xenraid resume --retry-boot` (boots the RAID copy once more and continues) or `xenraid rollback` (undoes the conversion)")]
    RaidBootFailed { root: String },
    #[error("{devices}: degraded and not recovering; check `cat /proc/mdstat` and the kernel log for a failing disk")]
    Stalled { devices: String },
    #[error("rollback is no longer possible: the original disk was already changed at step {step}. Finish with `xenraid resume`")]
    PastPointOfNoReturn { step: String },
    #[error("this system runs from the RAID copy: reboot (the original disk boots the original system by default), then run `xenraid rollback` there")]
    RollbackFromRaid,
    #[error("array {device}: {problem}")]
    Array { device: String, problem: String },
    #[error("{problem}")]
    Firmware { problem: String },
}
