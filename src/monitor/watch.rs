//! Sleeping until md has news: poll() for POLLPRI on `/proc/mdstat` (md raises it on every md
//! event: a member failing, added or removed, a sync starting or ending, an array starting or
//! stopping) and on the md sysfs attributes the kernel notifies (`degraded`, `sync_action`,
//! each member's `state`). Not `array_state`: md notifies it at every active/clean flip, i.e.
//! after every burst of writes, which would wake the monitor for nothing all day. Each file is read once before poll() so the wait
//! starts from what was just seen; a change after that read wakes poll at once.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("poll: {0}")]
    Poll(std::io::Error),
}

/// Why the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// md signalled a change.
    Signalled,
    /// The timeout passed (a resync's progress, a reminder due).
    Timeout,
}

/// The files to wait on, opened and read (armed).
pub struct Armed {
    files: Vec<(PathBuf, File)>,
}

/// The attributes md notifies, relative to `/sys/block/mdX/md`.
const ARRAY_ATTRIBUTES: [&str; 2] = ["degraded", "sync_action"];

impl Armed {
    /// Opens `/proc/mdstat` and the notified attributes of every array under `root`
    /// (`/` live, a tree in tests), reading each to its end.
    pub fn arm(root: &Path) -> Result<Armed, WatchError> {
        let mut paths = vec![root.join("proc/mdstat")];
        let block = root.join("sys/block");
        if let Ok(entries) = std::fs::read_dir(&block) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let md = block.join(&name).join("md");
                if !name.starts_with("md") || !md.is_dir() {
                    continue;
                }
                for attr in ARRAY_ATTRIBUTES {
                    let p = md.join(attr);
                    if p.exists() {
                        paths.push(p);
                    }
                }
                if let Ok(members) = std::fs::read_dir(&md) {
                    for m in members.flatten() {
                        if m.file_name().to_string_lossy().starts_with("dev-") {
                            paths.push(m.path().join("state"));
                        }
                    }
                }
            }
        }
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            match File::open(&path) {
                Ok(mut f) => {
                    let mut sink = Vec::new();
                    // An attribute that errors on read (array mid-teardown) is still watched.
                    let _ = f.read_to_end(&mut sink);
                    files.push((path, f));
                }
                // A member or array that vanished between listing and opening: the next
                // look sees the change anyway.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.ends_with("mdstat") => {
                }
                Err(source) => return Err(WatchError::Open { path, source }),
            }
        }
        Ok(Armed { files })
    }

    pub fn watched(&self) -> usize {
        self.files.len()
    }

    /// Waits for a signal or the timeout (`None`: no timeout).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Woke, WatchError> {
        let mut fds: Vec<PollFd> = self
            .files
            .iter()
            .map(|(_, f)| PollFd::new(f, PollFlags::PRI))
            .collect();
        let timeout = timeout.map(|d| Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        loop {
            match poll(&mut fds, timeout.as_ref()) {
                Ok(0) => return Ok(Woke::Timeout),
                Ok(_) => return Ok(Woke::Signalled),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(WatchError::Poll(e.into())),
            }
        }
    }
}
