//! A rebuild md will never start on its own. An array assembled at boot stays `read-auto`
//! until its first write, and md starts no recovery on a read-auto array: after a reboot in
//! the middle of a rebuild, an array nothing writes (XenServer's backup root partition, swap
//! before it is used) stays degraded with its new member waiting, for months. The crash
//! matrix found this; `convert` now wakes such arrays, and doctor finds them anywhere else.
//! The same holds for a whole array's first sync: a new array (convert makes the SR and backup
//! arrays anew) rebooted before its first pass ended comes back read-auto with that pass
//! pending, and never-written space stays unchecked until something writes to the array.

use crate::health::md_sysfs::{ArrayHealth, MemberRole};

use super::checks::{Check, Status};
use super::facts::DoctorFacts;

pub const NAME: &str = "recovery";

/// Read-auto, nothing syncing, and either a member that could fill a hole or a pending
/// resync: md starts neither until the array is written.
pub fn stalled(a: &ArrayHealth) -> bool {
    let member_waits = a.missing > 0
        && a.members
            .iter()
            .any(|m| matches!(m.role, MemberRole::Spare | MemberRole::Rebuilding));
    a.state == "read-auto" && a.sync.is_none() && (member_waits || a.resync_pending)
}

pub fn check(facts: &DoctorFacts) -> Check {
    let stalled: Vec<&str> = facts
        .arrays
        .iter()
        .filter(|a| stalled(&a.health))
        .map(|a| a.health.device.as_str())
        .collect();
    if stalled.is_empty() {
        return Check {
            name: NAME.into(),
            subject: None,
            status: Status::Pass,
            seen: "no array is waiting for a write to start its rebuild or resync".into(),
            fix: None,
        };
    }
    Check {
        name: NAME.into(),
        subject: None,
        status: Status::Fail,
        seen: format!(
            "{} read-auto with a rebuild or resync waiting: md starts neither until the array is written",
            stalled.join(", ")
        ),
        fix: Some(
            stalled
                .iter()
                .map(|d| format!("mdadm --readwrite /dev/{d}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}
