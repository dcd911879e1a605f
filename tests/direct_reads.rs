//! Discovery reads signatures, the GPT and md arrays straight from the devices and spawns no
//! process in the common case (each costs ~75–320 ms in a lab guest). On the lab guests'
//! captures (which keep the device windows discovery reads, and blkid's answers for the same
//! devices): no command runs, and the facts are exactly those blkid gives.

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use xenraid::exec::{Command, CommandOutput, ExecError};
use xenraid::host::prefetch::Prefetched;
use xenraid::host::source::ReadPos;
use xenraid::host::{discover, HostFacts, HostSource, RootedSource};

const GUESTS: &[&str] = &["xs7-bios", "xs65-bios", "xcpng8-uefi"];

/// Passes everything through, notes every command; with `blkid_only`, hides the device
/// ranges (the first sector, the boot code, stays readable), so discovery must ask blkid.
struct Recording<'a> {
    inner: &'a (dyn HostSource + Sync),
    blkid_only: bool,
    ran: Mutex<Vec<String>>,
}

impl<'a> Recording<'a> {
    fn new(inner: &'a (dyn HostSource + Sync), blkid_only: bool) -> Self {
        Recording {
            inner,
            blkid_only,
            ran: Mutex::new(Vec::new()),
        }
    }
    fn ran(&self) -> Vec<String> {
        self.ran.lock().expect("lock").clone()
    }
}

impl HostSource for Recording<'_> {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        self.inner.read_to_string(path)
    }
    fn read_prefix(&self, path: &str, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read_prefix(path, len)
    }
    fn read_ranges(&self, path: &str, ranges: &[(ReadPos, usize)]) -> io::Result<Vec<Vec<u8>>> {
        if self.blkid_only {
            return Err(io::Error::new(io::ErrorKind::NotFound, "hidden"));
        }
        self.inner.read_ranges(path, ranges)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn read_link(&self, path: &str) -> io::Result<String> {
        self.inner.read_link(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.exists(path)
    }
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        self.ran.lock().expect("lock").push(command.to_string());
        self.inner.run(command)
    }
}

fn capture(guest: &str) -> RootedSource<xenraid::host::source::CapturedRunner> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lab")
        .join(guest);
    RootedSource::captured(&root)
}

#[test]
fn lab_discovery_spawns_no_process() {
    for guest in GUESTS {
        let source = capture(guest);
        let recording = Recording::new(&source, false);
        discover(&recording as &dyn HostSource).expect("discovers");
        assert_eq!(recording.ran(), Vec::<String>::new(), "{guest}: discover");

        // As `xenraid inspect` runs it: the prefetching dry run must not start any either.
        let recording = Recording::new(&source, false);
        let prefetched = Prefetched::new(&recording);
        discover(&prefetched as &dyn HostSource).expect("discovers");
        assert_eq!(recording.ran(), Vec::<String>::new(), "{guest}: prefetched");
    }
}

#[test]
fn direct_reads_give_what_blkid_gives() {
    for guest in GUESTS {
        let source = capture(guest);
        let direct: HostFacts = discover(&source as &dyn HostSource).expect("direct");
        let recording = Recording::new(&source, true);
        let via_blkid = discover(&recording as &dyn HostSource).expect("via blkid");
        assert!(
            recording.ran().iter().any(|c| c.starts_with("blkid")),
            "{guest}: the blkid path was not taken"
        );
        assert_eq!(direct, via_blkid, "{guest}: direct reads differ from blkid");
    }
}
