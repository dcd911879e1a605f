//! `xenraid doctor`: the invariants that keep a mirrored host bootable after updates, each a
//! named check with what was seen and the fix; `--fix` repairs what is safe.
//!
//! Data flows one way: `facts::gather` reads the host (through `HostSource`, reads only),
//! `checks::run` judges the facts (pure), `fix::plan` turns failed checks into actions (data),
//! and `fix::execute` runs them through the one `Runner`.

pub mod checks;
pub mod esp_fat;
pub mod facts;
pub mod fix;
pub mod gptmbr;
pub mod initramfs;
pub mod monitor_sysv;
pub mod recovery;
pub mod render;

use serde::Serialize;

use crate::host::source::HostSource;

pub use checks::{Check, Status};
pub use facts::DoctorFacts;
pub use fix::{FixAction, FixOutcome};

/// Exit status of `doctor` when a check failed (after `--fix`: one that still fails).
pub const EXIT_CHECK_FAILED: i32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("reading the host: {0}")]
    Discover(#[from] crate::host::DiscoveryError),
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub checks: Vec<Check>,
    /// What `--fix` would do (or did), in order.
    pub fixes: Vec<FixAction>,
    /// With `--fix`: what each action did.
    pub outcomes: Vec<FixOutcome>,
    /// With `--fix`: the checks again, after the repairs.
    pub after_fix: Option<Vec<Check>>,
    /// What doctor could not read.
    pub warnings: Vec<String>,
}

impl DoctorReport {
    /// The checks that decide the exit status: after `--fix`, the ones run again.
    pub fn final_checks(&self) -> &[Check] {
        self.after_fix.as_deref().unwrap_or(&self.checks)
    }

    pub fn failed(&self) -> bool {
        self.final_checks().iter().any(|c| c.status == Status::Fail)
    }

    pub fn exit_code(&self) -> i32 {
        if self.failed() {
            EXIT_CHECK_FAILED
        } else {
            0
        }
    }
}

/// Reads the host and runs every check; plans the fixes without running them.
pub fn examine(src: &dyn HostSource) -> Result<DoctorReport, DoctorError> {
    let facts = facts::gather(src)?;
    let checks = checks::run(&facts);
    let fixes = fix::plan(&facts, &checks);
    Ok(DoctorReport {
        checks,
        fixes,
        outcomes: Vec::new(),
        after_fix: None,
        warnings: facts.warnings,
    })
}

/// `--fix`: examines, runs the planned actions through `runner` (files are written under
/// `root`), then examines again.
pub fn examine_and_fix(
    src: &dyn HostSource,
    runner: &dyn crate::exec::Runner,
    root: &std::path::Path,
) -> Result<DoctorReport, DoctorError> {
    let mut report = examine(src)?;
    if report.fixes.is_empty() {
        return Ok(report);
    }
    report.outcomes = fix::execute(&report.fixes, runner, root);
    let again = facts::gather(src)?;
    report.after_fix = Some(checks::run(&again));
    Ok(report)
}
