//! Progress for the two long waits of a conversion: the copy (bytes, rate, ETA from the
//! destination's fill level) and the resync (md's own counters). A bar on a terminal, a log
//! line every few seconds otherwise (the resume unit writes to the journal and the console).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::exec::Command;

use super::system::{LiveSystem, System};
use super::ConvertError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    Bar,
    Log,
    Quiet,
}

impl ProgressStyle {
    pub fn detect(quiet: bool) -> ProgressStyle {
        if quiet {
            ProgressStyle::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressStyle::Bar
        } else {
            ProgressStyle::Log
        }
    }
}

const LOG_EVERY: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(500);

struct Reporter {
    style: ProgressStyle,
    bar: Option<indicatif::ProgressBar>,
    last_log: Instant,
    started: Instant,
    what: String,
}

impl Reporter {
    fn new(style: ProgressStyle, what: &str, total: u64) -> Reporter {
        let bar = (style == ProgressStyle::Bar).then(|| {
            let bar = indicatif::ProgressBar::new(total.max(1));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "  {msg:<8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            bar
        });
        Reporter {
            style,
            bar,
            last_log: Instant::now(),
            started: Instant::now(),
            what: what.to_string(),
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total.max(1));
            bar.set_position(done.min(total));
        } else if self.style == ProgressStyle::Log && self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let rate = done as f64 / secs;
            let eta = if rate > 0.0 {
                format!("{:.0} s", total.saturating_sub(done) as f64 / rate)
            } else {
                "?".into()
            };
            eprintln!(
                "  {}: {} of {} MiB ({:.0}%), {:.1} MiB/s, ETA {eta}",
                self.what,
                done >> 20,
                total >> 20,
                100.0 * done as f64 / total.max(1) as f64,
                rate / 1048576.0
            );
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn used_bytes(path: &str) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_blocks.saturating_sub(st.f_bfree) * st.f_frsize)
}

/// Runs `cp -ax SRC/. DEST/` in a thread and reports the destination filling up.
pub fn run_copy(sys: &LiveSystem<'_>, command: &Command, dest: &str) -> Result<(), ConvertError> {
    let source = command
        .args
        .iter()
        .rev()
        .nth(1)
        .map(|s| s.trim_end_matches('.').to_string())
        .unwrap_or_else(|| "/".into());
    let total = used_bytes(&source).unwrap_or(0);
    let base = used_bytes(dest).unwrap_or(0);
    let mut reporter = Reporter::new(sys.progress, &format!("copy {source}"), total);
    let result = std::thread::scope(|scope| {
        let handle = scope.spawn(|| sys.runner.run(command));
        while !handle.is_finished() {
            std::thread::sleep(POLL);
            let now = used_bytes(dest).unwrap_or(base).saturating_sub(base);
            reporter.update(now, total);
        }
        handle.join().expect("the copy thread does not panic")
    });
    reporter.finish();
    result.map(|_| ()).map_err(ConvertError::from)
}

/// Waits until every array is in sync; fails when one is degraded with nothing to recover from.
pub fn wait_sync(sys: &LiveSystem<'_>, devices: &[String]) -> Result<(), ConvertError> {
    let mut reporter: Option<Reporter> = None;
    let mut stalled_since: Option<Instant> = None;
    wake_read_auto(sys, devices)?;
    loop {
        let mut done = 0u64;
        let mut total = 0u64;
        let mut all_in_sync = true;
        let mut stalled = Vec::new();
        for device in devices {
            if sys.in_sync(device) {
                continue;
            }
            all_in_sync = false;
            let md = sys.resolve(device).unwrap_or_default();
            let md = md.trim_start_matches("/dev/");
            let action = sys
                .read_value(&format!("/sys/block/{md}/md/sync_action"))
                .unwrap_or_default();
            let completed = sys
                .read_value(&format!("/sys/block/{md}/md/sync_completed"))
                .unwrap_or_default();
            match parse_sync_completed(&completed) {
                Some((d, t)) => {
                    done += d * 512;
                    total += t * 512;
                }
                None if action == "idle" => stalled.push(device.clone()),
                None => {
                    // Delayed or pending behind another array on the same disks: count it whole.
                    let size = sys
                        .read_value(&format!("/sys/block/{md}/size"))
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0);
                    total += size * 512;
                }
            }
        }
        if all_in_sync {
            if let Some(r) = reporter {
                r.finish();
            }
            return Ok(());
        }
        if !stalled.is_empty() {
            let since = *stalled_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(60) {
                return Err(ConvertError::Stalled {
                    devices: stalled.join(", "),
                });
            }
        } else {
            stalled_since = None;
        }
        reporter
            .get_or_insert_with(|| Reporter::new(sys.progress, "resync", total))
            .update(done, total);
        std::thread::sleep(POLL);
    }
}

/// An array assembled at boot starts `read-auto`, and md starts no recovery on it until
/// its first write. A member added before a power cut comes back as a spare of such an
/// array, and an array nothing mounts (the backup root, swap before swapon) would wait
/// forever: switch those to read-write, which md takes as the cue to recover.
fn wake_read_auto(sys: &LiveSystem<'_>, devices: &[String]) -> Result<(), ConvertError> {
    for device in devices {
        if array_is_read_auto(sys, device) && !sys.in_sync(device) {
            tracing::info!("{device}: assembled read-auto at boot; switching it to read-write so its recovery starts");
            sys.runner
                .run(&Command::new("mdadm", ["--readwrite", device.as_str()]))?;
        }
    }
    Ok(())
}

/// The array (by any path to it) runs `read-auto`: assembled at boot, not written since.
pub(super) fn array_is_read_auto(sys: &dyn System, device: &str) -> bool {
    sys.resolve(device)
        .and_then(|md| {
            sys.read_value(&format!(
                "/sys/block/{}/md/array_state",
                md.trim_start_matches("/dev/")
            ))
        })
        .is_some_and(|state| is_read_auto(&state))
}

fn is_read_auto(array_state: &str) -> bool {
    array_state.trim() == "read-auto"
}

/// md's `sync_completed`: "done / total" in sectors, or "none"/"delayed"/"pending".
pub fn parse_sync_completed(text: &str) -> Option<(u64, u64)> {
    let (d, t) = text.split_once('/')?;
    Some((d.trim().parse().ok()?, t.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_completed_forms() {
        assert_eq!(parse_sync_completed("1024 / 4096"), Some((1024, 4096)));
        assert_eq!(parse_sync_completed("none"), None);
        assert_eq!(parse_sync_completed("delayed"), None);
    }

    #[test]
    fn only_read_auto_waits_for_a_write() {
        assert!(is_read_auto("read-auto\n"));
        for other in ["clean", "active", "readonly", "inactive", "write-pending"] {
            assert!(!is_read_auto(other), "{other}");
        }
    }
}
