//! Where discovery reads from: the live host, or a captured tree of the same files.
//!
//! A captured tree (see `tests/fixtures/capture.sh`) mirrors the host's paths under a root
//! directory and keeps each command's stdout in `cmd/<Command::capture_name>.out` (exit status in
//! `.rc` when not 0), so the same discovery code runs on a lab guest's capture and on the host.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::exec::{check_output, Command, CommandOutput, ExecError, RealRunner, Runner};

pub trait HostSource {
    fn read_to_string(&self, path: &str) -> io::Result<String>;
    fn read_prefix(&self, path: &str, len: usize) -> io::Result<Vec<u8>>;
    /// Several ranges of a file or block device, read through one open. A captured tree keeps
    /// a device's first bytes in `<path>` and its last ones in `<path>.tail`; a range they do
    /// not hold is an error.
    fn read_ranges(&self, path: &str, ranges: &[(ReadPos, usize)]) -> io::Result<Vec<Vec<u8>>>;
    /// Entry names, sorted, so discovery is deterministic.
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>>;
    fn read_link(&self, path: &str) -> io::Result<String>;
    fn exists(&self, path: &str) -> bool;
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError>;
    /// Facts this source already holds, complete: `discover` returns them as they are.
    /// (`Prefetched` when its dry run of discovery needed no command: running discovery
    /// again over the same reads would only repeat it.)
    fn settled_facts(&self) -> Option<super::facts::HostFacts> {
        None
    }
    /// A whole file as a stream (an initramfs image is read this way, never held at once).
    fn open_stream(&self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        let _ = path;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this source cannot stream files",
        ))
    }
}

/// Where a range starts: bytes from the start, or bytes before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadPos {
    Start(u64),
    FromEnd(u64),
}

/// Reads files under `root` (`/` on a live host) and runs commands through `runner`.
pub struct RootedSource<R: Runner> {
    root: PathBuf,
    runner: R,
    /// Device tails are kept in `<path>.tail` files (a captured tree).
    tail_files: bool,
    /// Devices stay open until the source is dropped: the kernel drops the page cache of a
    /// block device nobody holds open at its last close, and under TCG reading it again from
    /// the emulated disk costs more than anything else discovery does.
    open_files: Mutex<HashMap<PathBuf, Arc<std::fs::File>>>,
    /// `/sys/block/mdN/md` directories, open: an attribute below one is opened relative to
    /// it. The full path walks ~11 components (`/sys/block/mdN` is a symlink into
    /// /sys/devices), which under TCG costs more than the read itself, and `status` opens
    /// ~6 attributes per array.
    md_dirs: Mutex<HashMap<String, Arc<rustix::fd::OwnedFd>>>,
}

impl RootedSource<RealRunner> {
    pub fn live() -> Self {
        RootedSource {
            root: PathBuf::from("/"),
            runner: RealRunner,
            tail_files: false,
            open_files: Mutex::default(),
            md_dirs: Mutex::default(),
        }
    }
}

impl RootedSource<CapturedRunner> {
    pub fn captured(root: &Path) -> Self {
        RootedSource {
            root: root.to_path_buf(),
            runner: CapturedRunner {
                dir: root.join("cmd"),
            },
            tail_files: true,
            open_files: Mutex::default(),
            md_dirs: Mutex::default(),
        }
    }
}

/// One sysfs attribute: open, one read into a stack buffer, close. Through rustix, because
/// musl's `open()` follows every O_CLOEXEC open with an fcntl and its malloc maps and unmaps
/// a heap buffer this size on every call: under emulation those doubled `status`'s time.
fn read_attribute(path: &Path) -> io::Result<String> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    read_attribute_fd(fd)
}

/// The same, `rel` opened relative to the directory `dir`.
fn read_attribute_at(dir: &rustix::fd::OwnedFd, rel: &str) -> io::Result<String> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    read_attribute_fd(fd)
}

fn read_attribute_fd(fd: rustix::fd::OwnedFd) -> io::Result<String> {
    let mut page = [0u8; 4096];
    let n = rustix::io::read(&fd, &mut page)?;
    if n < page.len() {
        return Ok(String::from_utf8_lossy(&page[..n]).into_owned());
    }
    // Larger than a page (a binary attribute): read on through std.
    let mut rest = page.to_vec();
    std::fs::File::from(fd).read_to_end(&mut rest)?;
    Ok(String::from_utf8_lossy(&rest).into_owned())
}

/// `/sys/block/NAME/md/REST` → (`/sys/block/NAME/md`, `REST`).
fn split_md_dir(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix("/sys/block/")?;
    let (name, rest) = after.split_once('/')?;
    let rest = rest.strip_prefix("md/").filter(|r| !r.is_empty())?;
    Some((
        &path[.."/sys/block/".len() + name.len() + "/md".len()],
        rest,
    ))
}

impl<R: Runner> RootedSource<R> {
    fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The open `/sys/block/mdN/md` directory (O_PATH: only a handle to open below).
    fn md_dir(&self, dir: &str) -> io::Result<Arc<rustix::fd::OwnedFd>> {
        use rustix::fs::{Mode, OFlags};
        let mut dirs = self
            .md_dirs
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        if let Some(fd) = dirs.get(dir) {
            return Ok(fd.clone());
        }
        let fd = Arc::new(rustix::fs::open(
            self.path(dir),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
        dirs.insert(dir.to_string(), fd.clone());
        Ok(fd)
    }

    fn forget_md_dir(&self, dir: &str) {
        if let Ok(mut dirs) = self.md_dirs.lock() {
            dirs.remove(dir);
        }
    }

    fn open(&self, path: &Path) -> io::Result<Arc<std::fs::File>> {
        let mut files = self
            .open_files
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        if let Some(file) = files.get(path) {
            return Ok(file.clone());
        }
        let file = Arc::new(std::fs::File::open(path)?);
        files.insert(path.to_path_buf(), file.clone());
        Ok(file)
    }
}

impl<R: Runner> HostSource for RootedSource<R> {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        // A sysfs attribute is at most a page and comes whole from the first read: one open,
        // one read, one close (std's fs::read adds a statx and a read that returns 0, and
        // `status` reads ~200 attributes). procfs' seq_files can return short reads with more
        // to come, so everything else is read to the end.
        if let Some((dir, rel)) = split_md_dir(path) {
            match read_attribute_at(&*self.md_dir(dir)?, rel) {
                Ok(text) => return Ok(text),
                // The array may have been stopped (and made again under the same name) since
                // the directory was opened: a long-lived source (the monitor) opens it anew.
                Err(_) => {
                    self.forget_md_dir(dir);
                    return read_attribute_at(&*self.md_dir(dir)?, rel);
                }
            }
        }
        let full = self.path(path);
        if path.starts_with("/sys/") {
            return read_attribute(&full);
        }
        let bytes = std::fs::read(full)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn read_prefix(&self, path: &str, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(len);
        std::fs::File::open(self.path(path))?
            .take(len as u64)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn read_ranges(&self, path: &str, ranges: &[(ReadPos, usize)]) -> io::Result<Vec<Vec<u8>>> {
        let path = self.path(path);
        let mut out = Vec::with_capacity(ranges.len());
        for (pos, len) in ranges {
            let mut buf = vec![0; *len];
            match *pos {
                ReadPos::Start(offset) => {
                    // pread: one system call per range, each of which costs a TCG guest.
                    self.open(&path)?.read_exact_at(&mut buf, offset)?;
                }
                ReadPos::FromEnd(back) => {
                    let mut tail_path = path.clone();
                    if self.tail_files {
                        tail_path.as_mut_os_string().push(".tail");
                    }
                    let file = self.open(&tail_path)?;
                    let size = (&*file).seek(SeekFrom::End(0))?;
                    let offset = size.checked_sub(back).ok_or_else(|| {
                        io::Error::new(io::ErrorKind::UnexpectedEof, "before the start")
                    })?;
                    file.read_exact_at(&mut buf, offset)?;
                }
            }
            out.push(buf);
        }
        Ok(out)
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        // getdents through rustix: std's read_dir allocates twice per entry (its DirEntry and
        // the name), and an md directory has ~35 entries (callgrind: a quarter of `status`).
        use rustix::fs::{Dir, Mode, OFlags};
        let fd = rustix::fs::open(
            self.path(path),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names = Vec::new();
        for entry in Dir::new(fd)? {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(
                    String::from_utf8(name)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                );
            }
        }
        names.sort_unstable();
        Ok(names)
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        Ok(std::fs::read_link(self.path(path))?
            .to_string_lossy()
            .into_owned())
    }

    fn exists(&self, path: &str) -> bool {
        std::fs::symlink_metadata(self.path(path)).is_ok()
    }

    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        self.runner.run(command)
    }

    fn open_stream(&self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(std::fs::File::open(self.path(path))?))
    }
}

/// Replays command outputs stored in a captured tree.
#[derive(Debug)]
pub struct CapturedRunner {
    dir: PathBuf,
}

impl Runner for CapturedRunner {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        let name = command.capture_name();
        let stdout = std::fs::read(self.dir.join(format!("{name}.out"))).map_err(|_| {
            ExecError::NotRecorded {
                command: command.clone(),
            }
        })?;
        let status = std::fs::read_to_string(self.dir.join(format!("{name}.rc")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        check_output(
            command,
            CommandOutput {
                status,
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::new(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::split_md_dir;

    #[test]
    fn md_attributes_are_read_relative_to_the_array_directory() {
        assert_eq!(
            split_md_dir("/sys/block/md127/md/dev-sdb1/state"),
            Some(("/sys/block/md127/md", "dev-sdb1/state"))
        );
        assert_eq!(
            split_md_dir("/sys/block/md0/md/uuid"),
            Some(("/sys/block/md0/md", "uuid"))
        );
        assert_eq!(split_md_dir("/sys/block/md0/size"), None);
        assert_eq!(split_md_dir("/sys/block/md0/md"), None);
        assert_eq!(split_md_dir("/sys/block/sda/queue/rotational"), None);
    }
}
