//! The alerting commands: monitor (the daemon), event (mdadm's PROGRAM hook), alert-test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use xenraid::config::{Config, DEFAULT_PATH};
use xenraid::exec::RealRunner;
use xenraid::health::{self, Severity};
use xenraid::host::source::HostSource;
use xenraid::host::RootedSource;
use xenraid::monitor::events::mdadm_event_severity;
use xenraid::monitor::watch::{Armed, Woke};
use xenraid::monitor::{alert_for, Event, Monitor, Sent};
use xenraid::notify::{self, now, Alert, HostIdentity};

use crate::cli::{AlertTestArgs, EventArgs, MonitorArgs, EXIT_OK, EXIT_RUNTIME};

fn load_config(path: &Option<PathBuf>) -> anyhow::Result<Config> {
    let (path, explicit) = match path {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    Ok(Config::load(&path, explicit)?)
}

/// How long a burst of md events may take before the monitor looks.
const SETTLE: Duration = Duration::from_millis(150);
/// After an alert, further events are gathered this long into the next one.
const HOLDOFF: Duration = Duration::from_secs(5);

/// The live host, or a captured tree with `--root` (tests, offline diagnosis).
fn source(root: &Option<PathBuf>) -> Box<dyn HostSource> {
    match root {
        Some(r) => Box::new(RootedSource::captured(r)),
        None => Box::new(RootedSource::live()),
    }
}

fn print_sent(sent: &[Sent], as_json: bool) {
    for s in sent {
        if as_json {
            println!("{}", json!({"alert": s.alert, "deliveries": s.deliveries}));
            continue;
        }
        let channels: Vec<String> = s
            .deliveries
            .iter()
            .map(|d| match &d.error {
                None => format!("{} ok ({} ms)", d.channel, d.millis),
                Some(e) => format!("{} FAILED: {e}", d.channel),
            })
            .collect();
        println!(
            "ALERT {} -> {}",
            s.alert.summary,
            if channels.is_empty() {
                "journal only (no channel configured)".into()
            } else {
                channels.join(", ")
            }
        );
    }
}

pub fn monitor(root: &Option<PathBuf>, args: &MonitorArgs) -> anyhow::Result<i32> {
    let config = load_config(&args.config)?;
    let root_dir = root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let src = source(root);
    let src = src.as_ref();
    let runner = RealRunner;
    let host = HostIdentity::read(src);
    let channels = notify::channels(&config, &host, &runner);
    if channels.is_empty() {
        tracing::warn!(
            "no alert channel in {}: alerts go to the journal only (add [alert.mail], [alert.xapi] or [alert.webhook])",
            args.config.as_deref().unwrap_or(Path::new(DEFAULT_PATH)).display()
        );
    }
    let mut monitor = Monitor::new(src, &config, channels);
    println!(
        "xenraid monitor: watching {} arrays ({})",
        monitor.last.arrays.len(),
        monitor.last.verdict.summary
    );
    print_sent(&monitor.start(now()), args.json);
    let mut last_sent: Option<Instant> = None;
    loop {
        let armed = Armed::arm(&root_dir)?;
        let sent = monitor.tick(now());
        if !sent.is_empty() {
            last_sent = Some(Instant::now());
        }
        print_sent(&sent, args.json);
        write_metrics(&config, &monitor);
        if args.once {
            return Ok(EXIT_OK);
        }
        let timeout = monitor.next_timeout(now());
        tracing::debug!(watched = armed.watched(), ?timeout, "waiting for md");
        if armed.wait(timeout)? == Woke::Signalled {
            // The first alert goes at once; what follows it closely (the rest of a pulled
            // disk's arrays, which md reports one by one) waits out HOLDOFF and goes as one.
            let since = last_sent.map_or(HOLDOFF, |t| t.elapsed());
            std::thread::sleep(HOLDOFF.saturating_sub(since).max(SETTLE));
        }
    }
}

/// node_exporter's textfile, rewritten at every look (the file is how Prometheus sees the
/// failed member within one scrape).
fn write_metrics(config: &Config, monitor: &Monitor) {
    let Some(path) = &config.metrics.textfile else {
        return;
    };
    let options = xenraid::metrics::MetricsOptions {
        last_alert_unix: monitor.state.last_alert,
        skip_node_md: config.metrics.skip_node_md,
    };
    let text = xenraid::metrics::render(&monitor.last, &options);
    if let Err(e) = xenraid::metrics::textfile::write_textfile(path, &text) {
        tracing::warn!("metrics textfile {}: {e}", path.display());
    }
}

/// mdadm.conf `PROGRAM /usr/sbin/xenraid event`: mdadm calls it as `EVENT MD [DEVICE]`.
pub fn event(root: &Option<PathBuf>, args: &EventArgs) -> anyhow::Result<i32> {
    let config = load_config(&args.config)?;
    let src = source(root);
    let src = src.as_ref();
    let report = health::report(src);
    let array = kernel_name(src, &args.md);
    let member = args
        .device
        .as_deref()
        .map(|d| d.trim_start_matches("/dev/").to_string());
    let found = report.arrays.iter().find(|a| a.device == array);
    let disk = member
        .as_deref()
        .and_then(|m| health::md_sysfs::whole_disk(src, m));
    let e = Event {
        name: args.event.clone(),
        severity: mdadm_event_severity(&args.event),
        array: array.clone(),
        array_label: found
            .map(health::disks::display_name)
            .unwrap_or_else(|| array.clone()),
        member: member.clone(),
        disk,
        what: format!(
            "mdadm reports {} on {}{}",
            args.event,
            args.md,
            args.device
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
    };
    let runner = RealRunner;
    let host = HostIdentity::read(src);
    let channels = notify::channels(&config, &host, &runner);
    let alert = alert_for(std::slice::from_ref(&e), &report, &report, &host, now());
    let deliveries = notify::dispatch(&channels, &alert);
    let sent = Sent { alert, deliveries };
    print_sent(std::slice::from_ref(&sent), args.json);
    Ok(if sent.deliveries.iter().all(|d| d.ok) {
        EXIT_OK
    } else {
        EXIT_RUNTIME
    })
}

/// `/dev/md/root` or `/dev/md127` → `md127`.
fn kernel_name(src: &dyn HostSource, md: &str) -> String {
    if let Ok(target) = src.read_link(md) {
        if let Some(name) = target.rsplit('/').next() {
            return name.to_string();
        }
    }
    md.rsplit('/').next().unwrap_or(md).to_string()
}

/// Sends a test alert through every configured channel; any failure fails the command.
pub fn alert_test(root: &Option<PathBuf>, args: &AlertTestArgs) -> anyhow::Result<i32> {
    let config = load_config(&args.config)?;
    let src = source(root);
    let src = src.as_ref();
    let runner = RealRunner;
    let host = HostIdentity::read(src);
    let channels = notify::channels(&config, &host, &runner);
    anyhow::ensure!(
        !channels.is_empty(),
        "no alert channel configured in {}: add [alert.mail] (to, smtp), [alert.xapi] or [alert.webhook] (url)",
        args.config.as_deref().unwrap_or(Path::new(DEFAULT_PATH)).display()
    );
    let report = health::report(src);
    let alert = Alert {
        host: host.hostname.clone(),
        severity: Severity::Ok,
        event: "TestMessage".into(),
        array: None,
        member: None,
        disk_serial: None,
        summary: format!("test alert from xenraid on {}", host.hostname),
        detail: format!(
            "This is a test: if you read it, this channel works.\n\nHost: {}\n",
            report.verdict.summary
        ),
        time: now(),
    };
    let deliveries = notify::dispatch(&channels, &alert);
    let failed = deliveries.iter().filter(|d| !d.ok).count();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"deliveries": deliveries}))?
        );
    } else {
        for d in &deliveries {
            match &d.error {
                None => println!("OK    {:<8} sent in {} ms", d.channel, d.millis),
                Some(e) => println!("FAIL  {:<8} {e}", d.channel),
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "xenraid: {failed} of {} alert channels failed",
            deliveries.len()
        );
        return Ok(EXIT_RUNTIME);
    }
    Ok(EXIT_OK)
}
