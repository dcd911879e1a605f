//! `xenraid monitor`: reacts to md events as the kernel reports them and alerts at once.
//!
//! `events` says what changed between two looks at the arrays; this module turns events into
//! alerts (with the disk's serial and the fix), dedupes them, reminds while an array stays
//! degraded, and remembers what it sent across restarts; `watch` sleeps in poll() until md
//! signals a change: no timer runs while every array is idle and in sync.

pub mod events;
pub mod watch;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::health::{self, HealthReport, Severity};
use crate::host::source::HostSource;
use crate::notify::{self, Alert, Delivery, HostIdentity, Notifier};
pub use events::Event;

/// While a resync runs, look this often for progress (md signals start and end, not progress).
pub const SYNC_PROGRESS_INTERVAL: Duration = Duration::from_secs(30);

/// What the monitor sent, by alert key (Unix seconds), persisted for dedupe and reminders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentState {
    pub sent: BTreeMap<String, u64>,
    pub last_alert: Option<u64>,
}

impl SentState {
    pub fn load(path: &Path) -> SentState {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::convert::journal::write_atomic(path, text.as_bytes())
    }
}

pub struct Monitor<'a> {
    pub src: &'a dyn HostSource,
    pub config: &'a Config,
    pub channels: Vec<Box<dyn Notifier + 'a>>,
    pub host: HostIdentity,
    pub state: SentState,
    pub last: HealthReport,
}

/// One alert and what each channel did with it.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub alert: Alert,
    pub deliveries: Vec<Delivery>,
}

impl<'a> Monitor<'a> {
    pub fn new(
        src: &'a dyn HostSource,
        config: &'a Config,
        channels: Vec<Box<dyn Notifier + 'a>>,
    ) -> Monitor<'a> {
        let host = HostIdentity::read(src);
        let state = SentState::load(&config.monitor.state_file);
        Monitor {
            src,
            config,
            channels,
            host,
            state,
            last: health::report(src),
        }
    }

    /// At start: what is already wrong is news to whoever reads the alerts (deduped against
    /// what an earlier run sent).
    pub fn start(&mut self, now: u64) -> Vec<Sent> {
        let report = self.last.clone();
        let events: Vec<Event> = events::degraded(&report)
            .into_iter()
            .map(|a| Event {
                name: "DegradedArray".into(),
                severity: Severity::Critical,
                array: a.device.clone(),
                array_label: health::disks::display_name(a),
                member: None,
                disk: None,
                what: format!(
                    "{} is degraded: {} of {} members missing",
                    health::disks::display_name(a),
                    a.missing,
                    a.raid_disks
                ),
            })
            .collect();
        self.send(&events, &report, &report, now)
    }

    /// Looks again, alerts on what changed and on degraded arrays due a reminder.
    pub fn tick(&mut self, now: u64) -> Vec<Sent> {
        let report = health::report(self.src);
        let mut events = events::diff(&self.last, &report, self.config.monitor.progress_step);
        events.extend(self.reminders(&report, now));
        let before = std::mem::replace(&mut self.last, report.clone());
        self.send(&events, &report, &before, now)
    }

    fn reminders(&self, report: &HealthReport, now: u64) -> Vec<Event> {
        let Some(every) = self.config.reminder() else {
            return Vec::new();
        };
        events::degraded(report)
            .into_iter()
            .filter(|a| {
                self.last_alert_on(&a.device)
                    .is_some_and(|t| now.saturating_sub(t) >= every.as_secs())
            })
            .map(|a| Event {
                name: "StillDegraded".into(),
                severity: Severity::Critical,
                array: a.device.clone(),
                array_label: health::disks::display_name(a),
                member: None,
                disk: None,
                what: format!(
                    "{} is still degraded ({} of {} members missing)",
                    health::disks::display_name(a),
                    a.missing,
                    a.raid_disks
                ),
            })
            .collect()
    }

    /// When the monitor last alerted about this array (Unix seconds).
    fn last_alert_on(&self, device: &str) -> Option<u64> {
        self.state
            .sent
            .iter()
            .filter(|(k, _)| k.split(':').nth(1) == Some(device))
            .map(|(_, t)| *t)
            .max()
    }

    /// When to look again without a signal from md: during a resync (for progress) or when
    /// a reminder is due; `None` means sleep until md signals.
    pub fn next_timeout(&self, now: u64) -> Option<Duration> {
        let syncing = self
            .last
            .arrays
            .iter()
            .any(|a| a.sync_action != "idle" && a.sync_action != "frozen");
        let mut next = syncing.then_some(SYNC_PROGRESS_INTERVAL);
        if let Some(every) = self.config.reminder() {
            for a in events::degraded(&self.last) {
                let last = self.last_alert_on(&a.device).unwrap_or(now);
                let due = Duration::from_secs((last + every.as_secs()).saturating_sub(now).max(1));
                next = Some(next.map_or(due, |n: Duration| n.min(due)));
            }
        }
        next
    }

    /// Sends what is new as ONE alert: a pulled disk fails a member in every array at once,
    /// and that is one message to read at 3 a.m., not ten.
    fn send(
        &mut self,
        events: &[Event],
        report: &HealthReport,
        before: &HealthReport,
        now: u64,
    ) -> Vec<Sent> {
        let dedupe = self.config.dedupe().as_secs();
        let mut fresh: Vec<Event> = Vec::new();
        for e in events {
            let key = e.key();
            let recent = self
                .state
                .sent
                .get(&key)
                .is_some_and(|t| now.saturating_sub(*t) < dedupe && e.name != "StillDegraded");
            if recent {
                tracing::info!(key, "already alerted within the dedupe window");
                continue;
            }
            if e.name == "Redundant" {
                // A new failure after the recovery is news again, however soon it comes.
                self.state
                    .sent
                    .retain(|k, _| k.split(':').nth(1) != Some(e.array.as_str()));
            }
            fresh.push(e.clone());
        }
        if fresh.is_empty() {
            return Vec::new();
        }
        let alert = alert_for(&fresh, report, before, &self.host, now);
        let deliveries = notify::dispatch(&self.channels, &alert);
        for e in &fresh {
            self.state.sent.insert(e.key(), now);
        }
        self.state.last_alert = Some(now);
        if let Err(e) = self.state.save(&self.config.monitor.state_file) {
            tracing::warn!(
                "cannot save {}: {e} (dedupe and reminders restart from scratch)",
                self.config.monitor.state_file.display()
            );
        }
        vec![Sent { alert, deliveries }]
    }
}

/// Events in words for people: what happened (the most severe first), which physical disk
/// (serial, by-id), the host's verdict with each fix, and the full status. `before` names a
/// disk that has just vanished (its serial is known only from there).
pub fn alert_for(
    events: &[Event],
    report: &HealthReport,
    before: &HealthReport,
    host: &HostIdentity,
    now: u64,
) -> Alert {
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.severity));
    let find_disk = |name: &str| {
        report
            .disks
            .iter()
            .chain(before.disks.iter())
            .find(|x| x.name == name)
    };
    let mut detail = String::new();
    let mut disks_named: Vec<&str> = Vec::new();
    for e in &events {
        detail += &format!("{} {}: {}.\n", e.severity.word(), e.name, e.what);
    }
    for e in &events {
        let (Some(member), Some(disk)) = (&e.member, &e.disk) else {
            continue;
        };
        if disks_named.contains(&disk.as_str()) {
            continue;
        }
        disks_named.push(disk);
        detail += &format!("\n{member} is on disk {disk}");
        if let Some(d) = find_disk(disk) {
            detail += &format!(
                ", serial {}{}",
                d.serial.as_deref().unwrap_or("?"),
                d.by_id
                    .as_deref()
                    .map(|b| format!(", {b}"))
                    .unwrap_or_default()
            );
        }
        detail += ".\n";
    }
    detail += &format!("\nHost: {}\n", report.verdict.summary);
    for p in &report.verdict.problems {
        detail += &format!("  - {} {}", p.subject, p.what);
        if let Some(fix) = &p.fix {
            detail += &format!("\n    fix: {fix}");
        }
        detail += "\n";
    }
    detail += "\n";
    detail += &health::render::render(report);
    let first = events[0];
    let serial = events
        .iter()
        .find_map(|e| e.disk.as_deref().and_then(find_disk))
        .and_then(|d| d.serial.clone());
    let more = if events.len() > 1 {
        format!(" (+{} more)", events.len() - 1)
    } else {
        String::new()
    };
    Alert {
        host: host.hostname.clone(),
        severity: first.severity,
        event: first.name.clone(),
        array: Some(first.array.clone()),
        member: first.member.clone(),
        disk_serial: serial,
        summary: format!(
            "{} {}: {}{more}",
            first.severity.word(),
            first.name,
            first.what
        ),
        detail,
        time: now,
    }
}
