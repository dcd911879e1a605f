//! What changed between two looks at the arrays, as events named like mdadm's (so a reader of
//! `mdadm --monitor` docs recognises them), each with its severity.

use serde::Serialize;

use crate::health::disks::display_name;
use crate::health::{ArrayHealth, HealthReport, MemberRole, Severity};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// mdadm's name where one exists: Fail, DegradedArray, RebuildStarted, RebuildNN,
    /// RebuildFinished, SpareActive, NewArray, DeviceDisappeared, MoveSpare…; xenraid's own:
    /// DeviceRemoved, SpareAdded, SpareRemoved, Redundant, CheckFinished, StillDegraded.
    pub name: String,
    pub severity: Severity,
    /// Kernel name: md127.
    pub array: String,
    /// `md/root (md127)` for people.
    pub array_label: String,
    pub member: Option<String>,
    /// The member's whole disk: sdb.
    pub disk: Option<String>,
    pub what: String,
}

impl Event {
    /// What makes two events "the same" for dedupe: name, array, member.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.name,
            self.array,
            self.member.as_deref().unwrap_or("-")
        )
    }
}

fn event(
    name: &str,
    severity: Severity,
    a: &ArrayHealth,
    member: Option<&str>,
    disk: Option<&str>,
    what: String,
) -> Event {
    Event {
        name: name.into(),
        severity,
        array: a.device.clone(),
        array_label: display_name(a),
        member: member.map(str::to_string),
        disk: disk.map(str::to_string),
        what,
    }
}

fn is_sync(action: &str) -> bool {
    matches!(action, "resync" | "recover" | "reshape")
}

/// Events from `before` to `after`; `progress_step` percent between RebuildNN events (0: none).
pub fn diff(before: &HealthReport, after: &HealthReport, progress_step: u8) -> Vec<Event> {
    let mut out = Vec::new();
    for a in &after.arrays {
        match find(&before.arrays, a) {
            None => out.push(event(
                "NewArray",
                Severity::Ok,
                a,
                None,
                None,
                format!(
                    "{} appeared: {}, {} of {} members",
                    display_name(a),
                    a.level,
                    a.raid_disks - a.missing.min(a.raid_disks),
                    a.raid_disks
                ),
            )),
            Some(b) => array_changes(b, a, progress_step, &mut out),
        }
    }
    for b in &before.arrays {
        if find(&after.arrays, b).is_none() {
            out.push(event(
                "DeviceDisappeared",
                Severity::Warning,
                b,
                None,
                None,
                format!(
                    "{} is gone (stopped, or its members vanished)",
                    display_name(b)
                ),
            ));
        }
    }
    out
}

/// The same array in another look: by UUID when md has one, else by kernel name.
fn find<'a>(arrays: &'a [ArrayHealth], a: &ArrayHealth) -> Option<&'a ArrayHealth> {
    arrays.iter().find(|x| match (&x.uuid, &a.uuid) {
        (Some(u), Some(v)) => u == v,
        _ => x.device == a.device,
    })
}

fn array_changes(b: &ArrayHealth, a: &ArrayHealth, step: u8, out: &mut Vec<Event>) {
    let label = display_name(a);
    for m in &a.members {
        let old = b.members.iter().find(|x| x.device == m.device);
        let disk = m.disk.as_deref();
        match (old.map(|o| o.role), m.role) {
            (Some(MemberRole::Faulty), MemberRole::Faulty) => {}
            (_, MemberRole::Faulty) => out.push(event(
                "Fail",
                Severity::Critical,
                a,
                Some(&m.device),
                disk,
                format!("{} marked {} faulty", label, m.device),
            )),
            (None, MemberRole::Spare) => out.push(event(
                "SpareAdded",
                Severity::Ok,
                a,
                Some(&m.device),
                disk,
                format!("{} added to {} as a spare", m.device, label),
            )),
            (None, MemberRole::Rebuilding) | (Some(MemberRole::Spare), MemberRole::Rebuilding) => {
                out.push(event(
                    "MemberAdded",
                    Severity::Ok,
                    a,
                    Some(&m.device),
                    disk,
                    format!("{} added to {}, it is being rebuilt", m.device, label),
                ))
            }
            (Some(MemberRole::Rebuilding | MemberRole::Spare), MemberRole::Active) => {
                out.push(event(
                    "SpareActive",
                    Severity::Ok,
                    a,
                    Some(&m.device),
                    disk,
                    format!("{} is in sync in {}", m.device, label),
                ))
            }
            _ => {}
        }
    }
    for m in &b.members {
        if !a.members.iter().any(|x| x.device == m.device) {
            out.push(event(
                if m.role == MemberRole::Spare {
                    "SpareRemoved"
                } else {
                    "DeviceRemoved"
                },
                if m.role == MemberRole::Spare {
                    Severity::Warning
                } else {
                    Severity::Critical
                },
                a,
                Some(&m.device),
                m.disk.as_deref(),
                format!("{} removed from {}", m.device, label),
            ));
        }
    }
    if a.missing > b.missing {
        out.push(event(
            "DegradedArray",
            Severity::Critical,
            a,
            None,
            None,
            format!(
                "{} is degraded: {} of {} members missing",
                label, a.missing, a.raid_disks
            ),
        ));
    } else if a.missing == 0 && b.missing > 0 {
        out.push(event(
            "Redundant",
            Severity::Ok,
            a,
            None,
            None,
            format!(
                "{} is redundant again: all {} members in sync",
                label, a.raid_disks
            ),
        ));
    }
    if a.state == "inactive" && b.state != "inactive" {
        out.push(event(
            "Inactive",
            Severity::Critical,
            a,
            None,
            None,
            format!("{label} became inactive"),
        ));
    }
    let was = b.sync_action.as_str();
    let now = a.sync_action.as_str();
    let pct = |x: &ArrayHealth| x.sync.as_ref().map(|s| s.percent()).unwrap_or(0.0);
    if is_sync(now) && !is_sync(was) {
        out.push(event(
            "RebuildStarted",
            Severity::Warning,
            a,
            None,
            None,
            format!("{label}: {now} started"),
        ));
    } else if is_sync(was) && !is_sync(now) {
        out.push(event(
            "RebuildFinished",
            Severity::Ok,
            a,
            None,
            None,
            format!("{label}: {was} finished"),
        ));
    } else if is_sync(now) && step > 0 {
        let (p0, p1) = (pct(b) as u32 / step as u32, pct(a) as u32 / step as u32);
        if p1 > p0 {
            let n = p1 * step as u32;
            out.push(event(
                &format!("Rebuild{n}"),
                Severity::Warning,
                a,
                None,
                None,
                format!("{label}: {now} {n}% done"),
            ));
        }
    }
    if matches!(was, "check" | "repair") && now == "idle" {
        let mismatches = a.mismatch_sectors.unwrap_or(0);
        out.push(event(
            "CheckFinished",
            if mismatches > 0 {
                Severity::Warning
            } else {
                Severity::Ok
            },
            a,
            None,
            None,
            if mismatches > 0 {
                format!("{label}: {was} finished, {mismatches} sectors differ between the members")
            } else {
                format!("{label}: {was} finished, the members agree")
            },
        ));
    }
}

/// mdadm's `PROGRAM` hook vocabulary → severity (`xenraid event EVENT MD [DEV]`).
pub fn mdadm_event_severity(name: &str) -> Severity {
    match name {
        "Fail" | "FailSpare" | "DegradedArray" | "DeviceDisappeared" => Severity::Critical,
        "SparesMissing" | "RebuildStarted" | "MoveSpare" => Severity::Warning,
        n if n.starts_with("Rebuild") && n != "RebuildFinished" => Severity::Warning,
        _ => Severity::Ok,
    }
}

/// Arrays still degraded now (for reminders).
pub fn degraded(report: &HealthReport) -> Vec<&ArrayHealth> {
    report
        .arrays
        .iter()
        .filter(|a| a.missing > 0 || a.members.iter().any(|m| m.role == MemberRole::Faulty))
        .collect()
}
