//! Health of the mirrors: what md says about every array and member (`md_sysfs`), which disk
//! serves what and can boot (`disks`), and the verdict a monitoring system acts on (`verdict`).
//! Read from sysfs and /proc only: `mdadm --detail` per array would cost a process each.

pub mod disks;
pub mod md_sysfs;
pub mod render;
pub mod verdict;

use serde::Serialize;

pub use disks::DiskHealth;
pub use md_sysfs::{ArrayHealth, MemberHealth, MemberRole};
pub use verdict::{Severity, Verdict};

/// Everything `xenraid status` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub arrays: Vec<ArrayHealth>,
    pub disks: Vec<DiskHealth>,
    pub verdict: Verdict,
}

/// Reads the arrays (sysfs, the attributes the monitor watches change) and their disks, and
/// judges them.
pub fn report(src: &dyn crate::host::source::HostSource) -> HealthReport {
    judged(src, md_sysfs::read_arrays(src))
}

/// The same for a one-off look (`status`, `metrics`): what /proc/mdstat says is read once
/// from it (see `md_sysfs::read_arrays_quick`).
pub fn quick_report(src: &dyn crate::host::source::HostSource) -> HealthReport {
    judged(src, md_sysfs::read_arrays_quick(src))
}

fn judged(src: &dyn crate::host::source::HostSource, arrays: Vec<ArrayHealth>) -> HealthReport {
    let disks = disks::read_disks(src, &arrays);
    let verdict = verdict::judge(&arrays, &disks, src.exists("/proc/mdstat"));
    HealthReport {
        arrays,
        disks,
        verdict,
    }
}
