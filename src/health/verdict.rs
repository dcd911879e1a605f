//! The verdict a monitoring system acts on, with Nagios' exit codes (`status --check`).

use serde::Serialize;

use super::disks::{display_name, DiskHealth};
use super::md_sysfs::{ArrayHealth, MemberRole};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Severity {
    /// Nagios plugin exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Ok => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
            Severity::Unknown => 3,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// The array or disk it is about.
    pub subject: String,
    pub what: String,
    /// What to do about it, when there is something to do.
    pub fix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub severity: Severity,
    /// One line, Nagios style: `RAID CRITICAL - md/root degraded …`.
    pub summary: String,
    pub problems: Vec<Problem>,
}

const REDUNDANT_LEVELS: [&str; 5] = ["raid1", "raid4", "raid5", "raid6", "raid10"];

pub fn judge(arrays: &[ArrayHealth], disks: &[DiskHealth], md_loaded: bool) -> Verdict {
    if !md_loaded || arrays.is_empty() {
        let why = if md_loaded {
            "no md arrays on this host"
        } else {
            "the md driver is not loaded (no /proc/mdstat)"
        };
        return Verdict {
            severity: Severity::Unknown,
            summary: format!("RAID UNKNOWN - {why}"),
            problems: vec![Problem {
                severity: Severity::Unknown,
                subject: "host".into(),
                what: why.into(),
                fix: None,
            }],
        };
    }
    let mut problems: Vec<Problem> = arrays.iter().flat_map(array_problems).collect();
    problems.extend(boot_problems(arrays, disks));
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    let severity = problems
        .iter()
        .map(|p| p.severity)
        .max()
        .unwrap_or(Severity::Ok);
    let summary = if problems.is_empty() {
        let bootable = disks.iter().filter(|d| d.bootable).count();
        format!(
            "RAID OK - {} arrays in sync, {} disks, {bootable} bootable",
            arrays.len(),
            disks.len()
        )
    } else {
        let worst: Vec<String> = problems
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p| format!("{} {}", p.subject, p.what))
            .collect();
        format!("RAID {} - {}", severity.word(), worst.join("; "))
    };
    Verdict {
        severity,
        summary,
        problems,
    }
}

fn array_problems(a: &ArrayHealth) -> Vec<Problem> {
    let subject = display_name(a);
    let mut out = Vec::new();
    let mut add = |severity, what: String, fix: Option<String>| {
        out.push(Problem {
            severity,
            subject: subject.clone(),
            what,
            fix,
        })
    };
    if a.state == "inactive" {
        add(
            Severity::Critical,
            "is inactive (assembled without enough members)".into(),
            Some(format!("check the members with `mdadm --examine`; `mdadm --run /dev/{}` starts it degraded", a.device)),
        );
        return out;
    }
    let faulty: Vec<&str> = a
        .members
        .iter()
        .filter(|m| m.role == MemberRole::Faulty)
        .map(|m| m.device.as_str())
        .collect();
    let rebuilding = a.members.iter().any(|m| m.role == MemberRole::Rebuilding);
    if a.missing > 0 || !faulty.is_empty() {
        let mut what = format!(
            "degraded ({} of {} members missing",
            a.missing, a.raid_disks
        );
        if !faulty.is_empty() {
            what += &format!(", faulty: {}", faulty.join(", "));
        }
        what.push(')');
        if rebuilding {
            what += &progress(a, "rebuilding");
        }
        add(
            Severity::Critical,
            what,
            (!rebuilding).then(|| {
                "`xenraid replace` names the disk to pull and rebuilds onto the new one".into()
            }),
        );
    } else if a.resync_pending && a.sync.is_none() {
        add(
            Severity::Warning,
            "resync pending: read-auto since boot, md starts it at the first write".into(),
            Some(format!(
                "mdadm --readwrite /dev/{} (or `xenraid doctor --fix`)",
                a.device
            )),
        );
    } else if a.sync_action != "idle" && a.sync_action != "frozen" {
        let pct = a
            .sync
            .as_ref()
            .map(|s| format!(" {:.1}%", s.percent()))
            .unwrap_or_default();
        add(
            Severity::Warning,
            format!("{} running{pct}", a.sync_action),
            None,
        );
    }
    if a.bitmap.is_none() && REDUNDANT_LEVELS.contains(&a.level.as_str()) {
        add(
            Severity::Warning,
            "has no write-intent bitmap (a crash or a briefly lost disk means a full resync)"
                .into(),
            Some(format!("mdadm --grow --bitmap=internal /dev/{}", a.device)),
        );
    }
    if a.sync_action == "idle" && a.mismatch_sectors.unwrap_or(0) > 0 {
        add(
            Severity::Warning,
            format!(
                "{} sectors differed between the members at the last check",
                a.mismatch_sectors.unwrap_or(0)
            ),
            Some(format!(
                "echo repair > /sys/block/{}/md/sync_action (then check again)",
                a.device
            )),
        );
    }
    out
}

/// `, rebuilding 25.0%`, or that it waits its turn behind another array on the same disk.
fn progress(a: &ArrayHealth, doing: &str) -> String {
    match &a.sync {
        Some(s) => format!(", {doing} {:.1}%", s.percent()),
        None if a.sync_delayed => {
            format!(", {doing} (waiting: another array on the same disk syncs first)")
        }
        None => format!(", {doing}"),
    }
}

/// A disk that mirrors a bootable disk's arrays but cannot boot itself is a mirror that does
/// not survive the loss of the other disk.
fn boot_problems(arrays: &[ArrayHealth], disks: &[DiskHealth]) -> Vec<Problem> {
    let serves = |d: &DiskHealth, a: &ArrayHealth| {
        a.members
            .iter()
            .any(|m| m.disk.as_deref() == Some(d.name.as_str()) && m.role == MemberRole::Active)
    };
    disks
        .iter()
        .filter(|d| !d.bootable)
        .filter(|d| {
            disks
                .iter()
                .filter(|b| b.bootable)
                .any(|b| arrays.iter().any(|a| serves(d, a) && serves(b, a)))
        })
        .map(|d| Problem {
            severity: Severity::Warning,
            subject: d.name.clone(),
            what: "holds a mirror of the system but has no boot code: it cannot boot alone".into(),
            fix: Some(
                "`xenraid doctor --fix` reinstalls the boot loader on every member disk".into(),
            ),
        })
        .collect()
}
