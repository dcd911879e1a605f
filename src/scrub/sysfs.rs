//! The two things a scrub does to the world besides its checkpoint: write md's sysfs
//! attributes, and wait. Both behind traits so a test drives a fake md in a temporary tree.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Writes sysfs attributes (`/sys/block/md127/md/sync_action` …).
pub trait SysfsWrite {
    fn write(&self, path: &str, value: &str) -> std::io::Result<()>;
}

/// Writes under `root` (`/` on a live host). The attribute must exist: sysfs never creates
/// files, and a fake tree that lacks one should fail the same way.
pub struct RootedSysfs {
    root: PathBuf,
}

impl RootedSysfs {
    pub fn live() -> RootedSysfs {
        RootedSysfs { root: "/".into() }
    }

    pub fn under(root: impl Into<PathBuf>) -> RootedSysfs {
        RootedSysfs { root: root.into() }
    }
}

impl SysfsWrite for RootedSysfs {
    fn write(&self, path: &str, value: &str) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.root.join(path.trim_start_matches('/')))?;
        // One write(2): sysfs takes the value from a single call.
        file.write_all(value.as_bytes())
    }
}

/// Time as the scrub sees it.
pub trait Clock {
    /// Since the scrub started (monotonic).
    fn elapsed(&self) -> Duration;
    /// Wall clock, Unix seconds, for the checkpoint's records.
    fn now_unix(&self) -> u64;
    fn sleep(&mut self, duration: Duration);
}

pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    pub fn start() -> SystemClock {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration)
    }
}

/// `4h`, `90m`, `1h30m`, `45s`, `2d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}`: use a duration such as 4h, 90m, 1h30m, 45s");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("4x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("4h3").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn writes_replace_an_existing_attribute_and_never_create_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/md")).unwrap();
        std::fs::write(dir.path().join("sys/md/sync_action"), "idle\n").unwrap();
        let sys = RootedSysfs::under(dir.path());
        sys.write("/sys/md/sync_action", "check").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sys/md/sync_action")).unwrap(),
            "check"
        );
        assert!(sys.write("/sys/md/nope", "1").is_err());
    }
}
