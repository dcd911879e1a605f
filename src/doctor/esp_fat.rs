//! An ESP that is not mounted, read as FAT straight from its partition and never written:
//! doctor compares every copy without mounting anything.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::host::source::{HostSource, ReadPos};

pub const ESP_MAX_FILES: usize = 10_000;
pub const ESP_MAX_DEPTH: usize = 16;
pub const ESP_MAX_FILE: usize = 256 << 20;

/// A file's entry in an ESP tree: (size, hash of the content). Names are lower-cased: FAT
/// does not tell case apart, and Linux shows 8.3 names in the case it was asked to.
pub fn content_key(bytes: &[u8]) -> (u64, u64) {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    (bytes.len() as u64, hasher.finish())
}

/// Every file of the FAT filesystem on `device`: relative path → `content_key`.
pub fn fat_tree(src: &dyn HostSource, device: &str) -> Option<BTreeMap<String, (u64, u64)>> {
    let reader = DeviceReader {
        src,
        path: device.to_string(),
        pos: 0,
        block: None,
    };
    let fs = fatfs::FileSystem::new(reader, fatfs::FsOptions::new()).ok()?;
    let mut out = BTreeMap::new();
    walk(&fs.root_dir(), "", 0, &mut out)?;
    Some(out)
}

fn walk<T: fatfs::ReadWriteSeek>(
    dir: &fatfs::Dir<'_, T>,
    rel: &str,
    depth: usize,
    out: &mut BTreeMap<String, (u64, u64)>,
) -> Option<()> {
    for entry in dir.iter() {
        let entry = entry.ok()?;
        let name = entry.file_name();
        if name == "." || name == ".." {
            continue;
        }
        let child = if rel.is_empty() {
            name.to_lowercase()
        } else {
            format!("{rel}/{}", name.to_lowercase())
        };
        if entry.is_dir() {
            if depth < ESP_MAX_DEPTH {
                walk(&entry.to_dir(), &child, depth + 1, out)?;
            }
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .to_file()
            .take(ESP_MAX_FILE as u64)
            .read_to_end(&mut bytes)
            .ok()?;
        out.insert(child, content_key(&bytes));
        if out.len() > ESP_MAX_FILES {
            return None;
        }
    }
    Some(())
}

const BLOCK: u64 = 64 << 10;

/// The partition as a read-only stream, 64 KiB at a time (FAT is read in 32-byte entries).
struct DeviceReader<'a> {
    src: &'a dyn HostSource,
    path: String,
    pos: u64,
    block: Option<(u64, Vec<u8>)>,
}

impl Read for DeviceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.pos / BLOCK * BLOCK;
        if self.block.as_ref().map(|(at, _)| *at) != Some(start) {
            let mut got = self
                .src
                .read_ranges(&self.path, &[(ReadPos::Start(start), BLOCK as usize)])?;
            self.block = Some((start, got.pop().unwrap_or_default()));
        }
        let data = self
            .block
            .as_ref()
            .map(|(_, d)| d.as_slice())
            .unwrap_or(&[]);
        let offset = (self.pos - start) as usize;
        let n = data.len().saturating_sub(offset).min(buf.len());
        buf[..n].copy_from_slice(&data[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for DeviceReader<'_> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "doctor reads ESPs, it never writes them",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for DeviceReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "seek before the start")
            })?,
            SeekFrom::End(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "the partition's size is not needed to read FAT",
                ))
            }
        };
        Ok(self.pos)
    }
}
