//! What an initramfs holds, read without unpacking it.
//!
//! An image is a concatenation of cpio "newc" archives (magic `070701`, or `070702` with
//! checksums): often an uncompressed early-microcode archive first, then the main archive
//! compressed with gzip, xz, zstd or lz4 (the kernel's legacy lz4 format). The archive parser
//! is a push parser over bytes as they come out of the file or the decompressor: it keeps at
//! most one header and one name, never trusts a size for an allocation, and collects only
//! `etc/mdadm.conf`'s content (bounded) and the names that matter.

use std::io::{self, BufRead, BufReader, Read, Write};

use serde::Serialize;

/// The most of `etc/mdadm.conf` that is kept; a bigger one is not an mdadm.conf.
pub const MAX_CONF_BYTES: u64 = 1 << 20;
const HEADER_LEN: usize = 110;
/// PATH_MAX: a longer name is a broken archive.
const MAX_NAME: usize = 4096;
const TRAILER: &str = "TRAILER!!!";
/// The kernel's legacy lz4 format: blocks of at most 8 MiB uncompressed.
const LZ4_BLOCK: usize = 8 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InitramfsContents {
    /// Entries seen in all archives (the trailers not counted).
    pub entries: u64,
    /// The compression of the main archive; None when nothing was compressed.
    pub compression: Option<String>,
    /// `etc/mdadm.conf` (or Debian's `etc/mdadm/mdadm.conf`) as packed.
    pub mdadm_conf: Option<String>,
    pub mdadm_conf_path: Option<String>,
    /// The path of the raid1 module (`…/raid1.ko`, `.ko.xz`, `.ko.gz`, `.ko.zst`).
    pub raid1_module: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("cannot read the image: {0}")]
    Io(#[from] io::Error),
    #[error("not a newc cpio archive at byte {offset}: {why}")]
    Cpio { offset: u64, why: String },
    #[error("the archive ends in the middle of an entry")]
    Truncated,
    #[error("{0}-compressed data: xenraid reads gzip, xz, zstd and lz4 images only")]
    Unsupported(&'static str),
    #[error("the {format} data is corrupt: {why}")]
    Corrupt { format: &'static str, why: String },
}

/// Where a fed chunk ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Every byte belonged to cpio archives (or the zero padding between them).
    All,
    /// Only the first n bytes did; the rest starts something that is not a cpio archive
    /// (compressed data). Later feeds are ignored.
    Foreign(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between archives: zero padding, then an archive or foreign data.
    Boundary,
    Header,
    Name {
        namesize: usize,
        padded: usize,
        filesize: u64,
        mode: u32,
    },
    Data {
        remaining: u64,
        pad: usize,
    },
    Pad(usize),
    Foreign,
}

/// The push parser: `feed` bytes in order, then `finish`.
#[derive(Debug)]
pub struct NewcScanner {
    state: State,
    buf: Vec<u8>,
    offset: u64,
    collecting: Option<(String, Vec<u8>)>,
    pub contents: InitramfsContents,
}

impl Default for NewcScanner {
    fn default() -> Self {
        NewcScanner {
            state: State::Boundary,
            buf: Vec::with_capacity(HEADER_LEN),
            offset: 0,
            collecting: None,
            contents: InitramfsContents::default(),
        }
    }
}

fn pad4(n: u64) -> u64 {
    (4 - n % 4) % 4
}

fn hex_field(header: &[u8], index: usize) -> Option<u32> {
    let field = header.get(6 + index * 8..14 + index * 8)?;
    let text = std::str::from_utf8(field).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// `raid1.ko` and its compressed forms.
pub fn is_raid1_module(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    ["raid1.ko", "raid1.ko.xz", "raid1.ko.gz", "raid1.ko.zst"].contains(&base)
}

fn is_mdadm_conf(name: &str) -> bool {
    name == "etc/mdadm.conf" || name == "etc/mdadm/mdadm.conf"
}

impl NewcScanner {
    pub fn feed(&mut self, data: &[u8]) -> Result<Fed, InitramfsError> {
        let mut at = 0;
        while at < data.len() {
            let rest = &data[at..];
            let used = match self.state {
                State::Foreign => return Ok(Fed::Foreign(at)),
                State::Boundary => {
                    let zeros = rest.iter().take_while(|b| **b == 0).count();
                    if zeros == rest.len() {
                        zeros
                    } else if zeros == 0 && rest[0] != b'0' {
                        self.state = State::Foreign;
                        return Ok(Fed::Foreign(at));
                    } else {
                        if rest[zeros] == b'0' {
                            self.state = State::Header;
                        }
                        zeros
                    }
                }
                State::Header => {
                    let take = (HEADER_LEN - self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(&rest[..take]);
                    if self.buf.len() == HEADER_LEN {
                        self.state = self.parse_header()?;
                        self.buf.clear();
                    }
                    take
                }
                State::Name {
                    namesize,
                    padded,
                    filesize,
                    mode,
                } => {
                    let take = (padded - self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(&rest[..take]);
                    if self.buf.len() == padded {
                        let name = String::from_utf8_lossy(&self.buf[..namesize])
                            .trim_end_matches('\0')
                            .to_string();
                        self.buf.clear();
                        self.state = self.start_entry(name, filesize, mode);
                    }
                    take
                }
                State::Data { remaining, pad } => {
                    let take = remaining.min(rest.len() as u64) as usize;
                    if let Some((_, content)) = &mut self.collecting {
                        content.extend_from_slice(&rest[..take]);
                    }
                    let remaining = remaining - take as u64;
                    if remaining == 0 {
                        self.end_entry();
                        self.state = State::Pad(pad);
                    } else {
                        self.state = State::Data { remaining, pad };
                    }
                    take
                }
                State::Pad(n) => {
                    let take = n.min(rest.len());
                    self.state = if take == n {
                        State::Header
                    } else {
                        State::Pad(n - take)
                    };
                    take
                }
            };
            // Pad(0) after an empty file: straight on to the next header.
            if self.state == State::Pad(0) {
                self.state = State::Header;
            }
            at += used;
            self.offset += used as u64;
        }
        Ok(if self.state == State::Foreign {
            Fed::Foreign(at)
        } else {
            Fed::All
        })
    }

    /// The end of the input: it must not fall inside an entry.
    pub fn finish(self) -> Result<InitramfsContents, InitramfsError> {
        match self.state {
            State::Boundary | State::Foreign => Ok(self.contents),
            _ => Err(InitramfsError::Truncated),
        }
    }

    fn parse_header(&mut self) -> Result<State, InitramfsError> {
        let offset = self.offset + self.buf.len() as u64 - HEADER_LEN as u64;
        let bad = |why: &str| InitramfsError::Cpio {
            offset,
            why: why.to_string(),
        };
        let magic = &self.buf[..6];
        if magic != b"070701" && magic != b"070702" {
            return Err(bad("bad magic (only the newc format is read)"));
        }
        let field = |i| hex_field(&self.buf, i).ok_or_else(|| bad("a header field is not hex"));
        let mode = field(1)?;
        let filesize = u64::from(field(6)?);
        let namesize = field(11)? as usize;
        if namesize == 0 || namesize > MAX_NAME {
            return Err(bad("impossible name size"));
        }
        let padded = namesize + pad4((HEADER_LEN + namesize) as u64) as usize;
        Ok(State::Name {
            namesize,
            padded,
            filesize,
            mode,
        })
    }

    fn start_entry(&mut self, name: String, filesize: u64, mode: u32) -> State {
        if name == TRAILER {
            return State::Boundary;
        }
        self.contents.entries += 1;
        let name = name
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        let regular = mode & 0o170000 == 0o100000;
        if regular && is_raid1_module(&name) && self.contents.raid1_module.is_none() {
            self.contents.raid1_module = Some(name.clone());
        }
        if regular && is_mdadm_conf(&name) && filesize <= MAX_CONF_BYTES {
            self.collecting = Some((name, Vec::new()));
        }
        let pad = pad4(filesize) as usize;
        if filesize == 0 {
            self.end_entry();
            return State::Pad(pad);
        }
        State::Data {
            remaining: filesize,
            pad,
        }
    }

    fn end_entry(&mut self) {
        let Some((name, content)) = self.collecting.take() else {
            return;
        };
        // etc/mdadm.conf wins over Debian's etc/mdadm/mdadm.conf when both are packed.
        if self.contents.mdadm_conf.is_none() || name == "etc/mdadm.conf" {
            self.contents.mdadm_conf = Some(String::from_utf8_lossy(&content).into_owned());
            self.contents.mdadm_conf_path = Some(name);
        }
    }
}

/// Feeds what a decompressor writes into a scanner, keeping the scanner's own error.
struct Sink<'a> {
    scanner: &'a mut NewcScanner,
    error: Option<InitramfsError>,
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.scanner.feed(buf) {
            Ok(_) => Ok(buf.len()),
            Err(err) => {
                self.error = Some(err);
                Err(io::Error::other("cpio"))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compression formats by magic number, as the kernel's `decompress_method` knows them.
fn compression_of(head: &[u8]) -> Result<&'static str, InitramfsError> {
    Ok(match head {
        [0x1f, 0x8b, ..] | [0x1f, 0x9e, ..] => "gzip",
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => "xz",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        [0x02, 0x21, 0x4c, 0x18, ..] => "lz4",
        [b'B', b'Z', b'h', ..] => return Err(InitramfsError::Unsupported("bzip2")),
        [0x5d, 0x00, 0x00, ..] => return Err(InitramfsError::Unsupported("lzma")),
        [0x89, b'L', b'Z', b'O', ..] => return Err(InitramfsError::Unsupported("lzo")),
        _ => {
            return Err(InitramfsError::Cpio {
                offset: 0,
                why: "neither a cpio archive nor compressed data".into(),
            })
        }
    })
}

/// Reads an initramfs image from `reader` as a stream.
pub fn scan<R: Read>(reader: R) -> Result<InitramfsContents, InitramfsError> {
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    let mut scanner = NewcScanner::default();
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return scanner.finish();
        }
        let len = chunk.len();
        match scanner.feed(chunk)? {
            Fed::All => reader.consume(len),
            Fed::Foreign(used) => {
                reader.consume(used);
                break;
            }
        }
    }
    let mut head = Vec::with_capacity(6);
    (&mut reader).take(6).read_to_end(&mut head)?;
    let format = compression_of(&head)?;
    let mut input = BufReader::new(io::Cursor::new(head).chain(reader));
    let mut inner = NewcScanner {
        contents: std::mem::take(&mut scanner.contents),
        ..NewcScanner::default()
    };
    inner.contents.compression = Some(format.to_string());
    let mut sink = Sink {
        scanner: &mut inner,
        error: None,
    };
    let corrupt = |why: String| InitramfsError::Corrupt { format, why };
    let result: Result<(), InitramfsError> = match format {
        "gzip" => io::copy(&mut flate2::bufread::GzDecoder::new(input), &mut sink)
            .map(drop)
            .map_err(|e| corrupt(e.to_string())),
        "xz" => lzma_rs::xz_decompress(&mut input, &mut sink).map_err(|e| corrupt(e.to_string())),
        "zstd" => match ruzstd::decoding::StreamingDecoder::new(&mut input) {
            Ok(mut decoder) => io::copy(&mut decoder, &mut sink)
                .map(drop)
                .map_err(|e| corrupt(e.to_string())),
            Err(e) => Err(corrupt(e.to_string())),
        },
        _ => lz4_legacy(&mut input, &mut sink).map_err(corrupt),
    };
    if let Some(err) = sink.error.take() {
        return Err(err);
    }
    result?;
    inner.finish()
}

/// The kernel's legacy lz4 framing: the magic, then blocks of (u32 LE compressed size, data),
/// until the input ends, a zero size, or another magic (a new stream).
fn lz4_legacy<R: Read>(input: &mut R, sink: &mut Sink<'_>) -> Result<(), String> {
    let mut word = [0u8; 4];
    input.read_exact(&mut word).map_err(|e| e.to_string())?;
    let bound = LZ4_BLOCK + LZ4_BLOCK / 255 + 16;
    loop {
        let mut got = 0;
        while got < 4 {
            match input.read(&mut word[got..]) {
                Ok(0) if got == 0 => return Ok(()),
                Ok(0) => return Err("a block size is cut short".into()),
                Ok(n) => got += n,
                Err(e) => return Err(e.to_string()),
            }
        }
        let size = u32::from_le_bytes(word);
        if size == 0 {
            return Ok(());
        }
        if size == 0x184c2102 {
            continue;
        }
        if size as usize > bound {
            return Err(format!("a block of {size} bytes is larger than lz4 allows"));
        }
        let mut block = Vec::with_capacity(size as usize);
        input
            .take(u64::from(size))
            .read_to_end(&mut block)
            .map_err(|e| e.to_string())?;
        if block.len() != size as usize {
            return Err("a block is cut short".into());
        }
        let data = lz4_flex::block::decompress(&block, LZ4_BLOCK).map_err(|e| e.to_string())?;
        sink.write_all(&data).map_err(|e| e.to_string())?;
    }
}

/// A newc archive of regular files (mode 0644) and directories (names ending in `/`), with
/// its trailer, padded to 512 bytes as `cpio -H newc` pads: for tests and fixtures.
pub fn newc_archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |name: &str, mode: u32, data: &[u8]| {
        let namesize = name.len() + 1;
        out.extend_from_slice(
            format!(
                "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
                1, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, 0
            )
            .as_bytes(),
        );
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len() + pad4((HEADER_LEN + namesize) as u64) as usize, 0);
        out.extend_from_slice(data);
        out.resize(out.len() + pad4(data.len() as u64) as usize, 0);
    };
    for (name, data) in entries {
        match name.strip_suffix('/') {
            Some(dir) => push(dir, 0o040755, &[]),
            None => push(name, 0o100644, data),
        }
    }
    push(TRAILER, 0, &[]);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_bytes(bytes: &[u8]) -> Result<InitramfsContents, InitramfsError> {
        scan(io::Cursor::new(bytes))
    }

    #[test]
    fn newc_names_conf_and_module_are_found() {
        let img = newc_archive(&[
            ("etc/", b""),
            ("etc/mdadm.conf", b"ARRAY /dev/md0 UUID=a:b:c:d\n"),
            (
                "usr/lib/modules/4.19/kernel/drivers/md/raid1.ko.xz",
                b"\xfd7zXZ",
            ),
            ("empty", b""),
        ]);
        let c = scan_bytes(&img).expect("parses");
        assert_eq!(c.entries, 4);
        assert_eq!(
            c.mdadm_conf.as_deref(),
            Some("ARRAY /dev/md0 UUID=a:b:c:d\n")
        );
        assert_eq!(
            c.raid1_module.as_deref(),
            Some("usr/lib/modules/4.19/kernel/drivers/md/raid1.ko.xz")
        );
        assert_eq!(c.compression, None);
    }

    #[test]
    fn byte_by_byte_feeding_gives_the_same_answer() {
        let img = newc_archive(&[("./etc/mdadm.conf", b"MAILADDR root\n"), ("raid1.ko", b"x")]);
        let mut s = NewcScanner::default();
        for b in &img {
            assert_eq!(s.feed(std::slice::from_ref(b)).unwrap(), Fed::All);
        }
        let c = s.finish().unwrap();
        assert_eq!(c.mdadm_conf.as_deref(), Some("MAILADDR root\n"));
        assert_eq!(c.raid1_module.as_deref(), Some("raid1.ko"));
    }

    #[test]
    fn foreign_data_after_the_trailer_is_handed_back() {
        let mut img = newc_archive(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
        let cpio_len = img.len();
        img.extend_from_slice(&[0x1f, 0x8b, 8, 0]);
        let mut s = NewcScanner::default();
        assert_eq!(s.feed(&img).unwrap(), Fed::Foreign(cpio_len));
    }

    #[test]
    fn debian_conf_path_counts_and_etc_wins() {
        let img = newc_archive(&[("etc/mdadm/mdadm.conf", b"deb\n")]);
        let c = scan_bytes(&img).unwrap();
        assert_eq!(c.mdadm_conf_path.as_deref(), Some("etc/mdadm/mdadm.conf"));
        let img = newc_archive(&[
            ("etc/mdadm.conf", b"rh\n"),
            ("etc/mdadm/mdadm.conf", b"deb\n"),
        ]);
        assert_eq!(
            scan_bytes(&img).unwrap().mdadm_conf.as_deref(),
            Some("rh\n")
        );
    }

    #[test]
    fn broken_archives_are_errors_not_panics() {
        let img = newc_archive(&[("etc/mdadm.conf", b"0123456789")]);
        assert!(matches!(
            scan_bytes(&img[..120]),
            Err(InitramfsError::Truncated)
        ));
        let mut bad = img.clone();
        bad[3] = b'9';
        assert!(matches!(scan_bytes(&bad), Err(InitramfsError::Cpio { .. })));
        let mut huge_name = img.clone();
        huge_name[94..102].copy_from_slice(b"ffffffff");
        assert!(matches!(
            scan_bytes(&huge_name),
            Err(InitramfsError::Cpio { .. })
        ));
        assert!(matches!(
            scan_bytes(b"BZh91AY&SY"),
            Err(InitramfsError::Unsupported("bzip2"))
        ));
    }

    #[test]
    fn symlinked_conf_is_not_taken_for_the_file() {
        let mut img = newc_archive(&[("etc/mdadm.conf", b"../x")]);
        // mode field: S_IFLNK
        img[14..22].copy_from_slice(b"0000a1ff");
        let c = scan_bytes(&img).unwrap();
        assert_eq!(c.mdadm_conf, None);
    }

    #[test]
    fn lz4_legacy_stream_is_read() {
        let cpio = newc_archive(&[("etc/mdadm.conf", b"lz4 conf\n")]);
        let block = lz4_flex::block::compress(&cpio);
        let mut img = vec![0x02, 0x21, 0x4c, 0x18];
        img.extend_from_slice(&(block.len() as u32).to_le_bytes());
        img.extend_from_slice(&block);
        let c = scan_bytes(&img).unwrap();
        assert_eq!(c.compression.as_deref(), Some("lz4"));
        assert_eq!(c.mdadm_conf.as_deref(), Some("lz4 conf\n"));
    }

    proptest::proptest! {
        #[test]
        fn scanning_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = scan_bytes(&bytes);
            let mut prefixed = newc_archive(&[("a", b"b")]);
            prefixed.extend_from_slice(&bytes);
            let _ = scan_bytes(&prefixed);
        }
    }
}
