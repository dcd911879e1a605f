//! A rebuild md will never start on its own. An array assembled at boot stays `read-auto`
//! until its first write, and md starts no recovery on a read-auto array: after a reboot in
//! the middle of a rebuild, an array nothing writes (XenServer's backup root partition, swap
//! before it is used) stays degraded with its new member waiting, for months. The crash
//! matrix found this; `convert` now wakes such arrays, and doctor finds them anywhere else.

use crate::health::md_sysfs::{ArrayHealth, MemberRole};

use super::checks::{Check, Status};
use super::facts::DoctorFacts;

pub const NAME: &str = "recovery";

/// Degraded, read-auto, nothing syncing, and a member that could fill the hole.
pub fn stalled(a: &ArrayHealth) -> bool {
    a.missing > 0
        && a.state == "read-auto"
        && a.sync_action == "idle"
        && a.members
            .iter()
            .any(|m| matches!(m.role, MemberRole::Spare | MemberRole::Rebuilding))
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
            seen: "no degraded array is waiting for a write to start its rebuild".into(),
            fix: None,
        };
    }
    Check {
        name: NAME.into(),
        subject: None,
        status: Status::Fail,
        seen: format!(
            "{} degraded and read-auto with a member waiting: md starts no rebuild until the array is written",
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
