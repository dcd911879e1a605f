//! The monitor end to end over a copy of real md sysfs (tests/fixtures/md/states, captured
//! from eight arrays on a lab guest): change what the kernel would change, look again, and
//! check the alerts that come out — names, severity, the disk's serial, dedupe, reminders.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xenraid::config::Config;
use xenraid::health::Severity;
use xenraid::host::RootedSource;
use xenraid::monitor::Monitor;
use xenraid::notify::{Alert, Notifier, NotifyError};

struct Collect(Arc<Mutex<Vec<Alert>>>);

impl Notifier for Collect {
    fn name(&self) -> &'static str {
        "collect"
    }
    fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        self.0.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

struct Host {
    dir: tempfile::TempDir,
    config: Config,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/md/states");
        copy_tree(&fixture, dir.path());
        let mut config = Config::default();
        config.monitor.state_file = dir.path().join("monitor-state.json");
        Host { dir, config }
    }

    fn md(&self, dev: &str, attr: &str) -> PathBuf {
        self.dir.path().join(format!("sys/block/{dev}/md/{attr}"))
    }

    fn set(&self, dev: &str, attr: &str, value: &str) {
        std::fs::write(self.md(dev, attr), format!("{value}\n")).unwrap();
    }
}

fn run<F: FnOnce(&Host)>(host: &Host, start: u64, change: F, at: u64) -> (Vec<Alert>, Vec<Alert>) {
    let src = RootedSource::captured(host.dir.path());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut m = Monitor::new(&src, &host.config, vec![Box::new(Collect(seen.clone()))]);
    m.start(start);
    let at_start = std::mem::take(&mut *seen.lock().unwrap());
    change(host);
    m.tick(at);
    let after = seen.lock().unwrap().clone();
    (at_start, after)
}

#[test]
fn at_start_the_arrays_already_degraded_are_reported_once() {
    let host = Host::new();
    let (at_start, after) = run(&host, 1000, |_| {}, 1001);
    // One alert for all three: degraded (md125), faulty (md124) and recovery (md122) are not
    // redundant in the capture.
    assert_eq!(at_start.len(), 1, "{at_start:#?}");
    let a = &at_start[0];
    assert_eq!(
        (a.event.as_str(), a.severity),
        ("DegradedArray", Severity::Critical)
    );
    assert!(a.summary.ends_with("(+2 more)"), "{}", a.summary);
    for name in ["md/degraded", "md/faulty", "md/recovery"] {
        assert!(
            a.detail
                .contains(&format!("DegradedArray: {name} is degraded")),
            "{name}: {}",
            a.detail
        );
    }
    assert!(after.is_empty(), "nothing changed, nothing sent: {after:?}");
}

#[test]
fn a_member_failing_alerts_with_its_disk_serial_and_the_fix() {
    let host = Host::new();
    // md127 ("clean") loses a member the way md reports it.
    let members: Vec<String> = std::fs::read_dir(host.dir.path().join("sys/block/md127/md"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("dev-")
                .map(str::to_string)
        })
        .collect();
    let victim = members.iter().max().unwrap().clone();
    let (_, after) = run(
        &host,
        1000,
        |h| {
            h.set("md127", &format!("dev-{victim}/state"), "faulty");
            h.set("md127", "degraded", "1");
        },
        1001,
    );
    assert_eq!(after.len(), 1, "one failure, one alert: {after:#?}");
    let fail = &after[0];
    assert_eq!(fail.event, "Fail");
    assert!(fail.summary.ends_with("(+1 more)"), "{}", fail.summary);
    assert!(
        fail.detail
            .contains("CRITICAL DegradedArray: md/clean is degraded"),
        "{}",
        fail.detail
    );
    assert_eq!(fail.severity, Severity::Critical);
    assert_eq!(fail.member.as_deref(), Some(victim.as_str()));
    assert!(
        fail.disk_serial.as_deref().is_some_and(|s| !s.is_empty()),
        "{fail:#?}"
    );
    assert!(fail.summary.contains("md/clean"), "{}", fail.summary);
    assert!(fail.detail.contains(fail.disk_serial.as_deref().unwrap()));
    assert!(fail.detail.contains("fix:"), "{}", fail.detail);
}

#[test]
fn a_member_vanishing_is_named_by_the_serial_it_had() {
    let host = Host::new();
    let md = host.md("md127", "");
    let victim = std::fs::read_dir(&md)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("dev-")
                .map(str::to_string)
        })
        .max()
        .unwrap();
    let (_, after) = run(
        &host,
        1000,
        |h| {
            std::fs::remove_dir_all(md.join(format!("dev-{victim}"))).unwrap();
            h.set("md127", "degraded", "1");
        },
        1001,
    );
    assert_eq!(after.len(), 1, "{after:#?}");
    let removed = &after[0];
    assert!(
        removed
            .detail
            .contains(&format!("DeviceRemoved: {victim} removed from md/clean")),
        "{}",
        removed.detail
    );
    assert!(
        removed.detail.contains("DegradedArray"),
        "{}",
        removed.detail
    );
    let serial = removed.disk_serial.as_deref().expect("the serial it had");
    assert!(
        removed.detail.contains(&format!("serial {serial}")),
        "{}",
        removed.detail
    );
}

#[test]
fn sync_and_check_transitions() {
    let host = Host::new();
    let (_, after) = run(
        &host,
        1000,
        |h| {
            // resync (md126) finishes; check (md121) finishes with mismatches; clean starts one.
            h.set("md126", "sync_action", "idle");
            h.set("md126", "sync_completed", "none");
            h.set("md121", "sync_action", "idle");
            h.set("md121", "sync_completed", "none");
            h.set("md121", "mismatch_cnt", "128");
            h.set("md127", "sync_action", "check");
            h.set("md127", "sync_completed", "0 / 1000");
        },
        1001,
    );
    assert_eq!(after.len(), 1, "{after:#?}");
    let a = &after[0];
    // The most severe first: the mismatches.
    assert_eq!(
        (a.event.as_str(), a.severity),
        ("CheckFinished", Severity::Warning)
    );
    assert!(
        a.summary
            .contains("md/check: check finished, 128 sectors differ"),
        "{}",
        a.summary
    );
    assert!(
        a.detail
            .contains("OK RebuildFinished: md/resync: resync finished"),
        "{}",
        a.detail
    );
}

#[test]
fn the_same_event_is_deduped_and_a_degraded_array_is_reminded() {
    let mut host = Host::new();
    host.config.monitor.reminder = "1h".into();
    for dev in ["md126", "md121", "md122"] {
        host.set(dev, "sync_action", "idle");
    }
    let src = RootedSource::captured(host.dir.path());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut m = Monitor::new(&src, &host.config, vec![Box::new(Collect(seen.clone()))]);
    assert_eq!(m.start(1000).len(), 1);
    // A restart within the dedupe window sends nothing again (the state file remembers).
    drop(m);
    let mut m = Monitor::new(&src, &host.config, vec![Box::new(Collect(seen.clone()))]);
    assert!(m.start(1100).is_empty());
    // While degraded: the next look is due when the reminder is.
    assert_eq!(m.next_timeout(1100), Some(Duration::from_secs(3500)));
    assert!(m.tick(2000).is_empty());
    let reminded = m.tick(4600);
    assert_eq!(reminded.len(), 1, "{reminded:#?}");
    assert_eq!(reminded[0].alert.event, "StillDegraded");
    assert_eq!(
        reminded[0].alert.detail.matches("StillDegraded:").count(),
        3
    );
}

#[test]
fn an_idle_healthy_host_has_no_timeout_at_all() {
    let host = Host::new();
    let src = RootedSource::captured(host.dir.path());
    let mut m = Monitor::new(&src, &host.config, Vec::new());
    m.start(1000);
    // The capture has a resync and a check running: progress is looked at every 30 s.
    assert_eq!(
        m.next_timeout(1000),
        Some(xenraid::monitor::SYNC_PROGRESS_INTERVAL)
    );
    for dev in ["md126", "md121", "md122"] {
        host.set(dev, "sync_action", "idle");
    }
    // …and no reminder configured, the degraded arrays still set none.
    let mut idle = host.config.clone();
    idle.monitor.reminder = "0".into();
    let mut m = Monitor::new(&src, &idle, Vec::new());
    m.start(1000);
    assert_eq!(m.next_timeout(1000), None);
}
