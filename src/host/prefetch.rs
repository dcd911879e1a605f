//! Runs discovery's commands side by side before discovery asks for them, and reads every
//! file and device window once.
//!
//! In the common case discovery runs no command at all: it reads the GPT and the signatures
//! from the devices itself, md arrays from sysfs and the udev database, and asks `pvs`/`xe`
//! only when there is LVM. When it does need commands (a device the direct reader is not
//! sure about, an array udev knows nothing of, LVM), they cost far more waiting than working
//! (one process start is ~75 ms in a lab guest), so they are started all at once: a dry run
//! of discovery, answering every command with "not recorded", lists what the real run is
//! going to ask; the real run then finds the answers ready. Anything the dry run could not
//! foresee (a command that depends on another's answer) simply runs when asked.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use super::discover::discover;
use super::facts::HostFacts;
use super::source::{HostSource, ReadPos};
use crate::exec::{Command, CommandOutput, ExecError};

type Answer = Result<CommandOutput, ExecError>;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Read {
    Text(String),
    Dir(String),
    Link(String),
}

#[derive(Clone)]
enum Value {
    Text(String),
    Names(Vec<String>),
}

pub struct Prefetched<'a> {
    inner: &'a (dyn HostSource + Sync),
    answers: Mutex<HashMap<String, Answer>>,
    /// Reads already made (the dry run makes them all): `None` for a read that failed.
    reads: Mutex<HashMap<Read, Option<Value>>>,
    exists: Mutex<HashMap<String, bool>>,
    /// The dry run's facts when it asked for no command: then they are the answer.
    settled: Mutex<Option<HostFacts>>,
}

impl<'a> Prefetched<'a> {
    /// Runs every command discovery is going to ask `inner` for, all at once.
    pub fn new(inner: &'a (dyn HostSource + Sync)) -> Prefetched<'a> {
        let mut this = Prefetched {
            inner,
            answers: Mutex::new(HashMap::new()),
            reads: Mutex::new(HashMap::new()),
            exists: Mutex::new(HashMap::new()),
            settled: Mutex::new(None),
        };
        let (commands, facts) = this.planned_commands();
        if commands.is_empty() {
            // The common case: the dry run was the real run.
            this.settled = Mutex::new(facts);
            return this;
        }
        let answers: HashMap<String, Answer> = std::thread::scope(|scope| {
            let handles: Vec<_> = commands
                .iter()
                .map(|c| scope.spawn(move || (c.capture_name(), inner.run(c))))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        this.answers = Mutex::new(answers);
        this
    }

    /// The commands `discover` runs, found by running it without running them, and what
    /// it found.
    fn planned_commands(&self) -> (Vec<Command>, Option<HostFacts>) {
        let dry = DryRun {
            reads: self,
            asked: Mutex::new(Vec::new()),
        };
        let facts = discover(&dry).ok();
        let mut asked = dry.asked.into_inner().unwrap_or_default();
        asked.sort();
        asked.dedup();
        (asked, facts)
    }

    fn memo(&self, key: Read, read: impl FnOnce() -> io::Result<Value>) -> io::Result<Value> {
        if let Some(known) = self.reads.lock().ok().and_then(|r| r.get(&key).cloned()) {
            return known.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "read failed"));
        }
        let value = read();
        if let Ok(mut reads) = self.reads.lock() {
            reads.insert(key, value.as_ref().ok().cloned());
        }
        value
    }
}

fn text(v: io::Result<Value>) -> io::Result<String> {
    match v? {
        Value::Text(t) => Ok(t),
        _ => Err(io::Error::other("cached read of another kind")),
    }
}

fn names(v: io::Result<Value>) -> io::Result<Vec<String>> {
    match v? {
        Value::Names(n) => Ok(n),
        _ => Err(io::Error::other("cached read of another kind")),
    }
}

impl HostSource for Prefetched<'_> {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        text(self.memo(Read::Text(path.into()), || {
            self.inner.read_to_string(path).map(Value::Text)
        }))
    }
    // Device bytes are not kept: each is read once when the dry run settles the facts, and
    // copying them costs a guest more than reading them again from the page cache.
    fn read_prefix(&self, path: &str, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read_prefix(path, len)
    }
    fn read_ranges(&self, path: &str, ranges: &[(ReadPos, usize)]) -> io::Result<Vec<Vec<u8>>> {
        self.inner.read_ranges(path, ranges)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        names(self.memo(Read::Dir(path.into()), || {
            self.inner.list_dir(path).map(Value::Names)
        }))
    }
    fn read_link(&self, path: &str) -> io::Result<String> {
        text(self.memo(Read::Link(path.into()), || {
            self.inner.read_link(path).map(Value::Text)
        }))
    }
    fn exists(&self, path: &str) -> bool {
        if let Some(known) = self.exists.lock().ok().and_then(|e| e.get(path).copied()) {
            return known;
        }
        let found = self.inner.exists(path);
        if let Ok(mut e) = self.exists.lock() {
            e.insert(path.to_string(), found);
        }
        found
    }
    fn settled_facts(&self) -> Option<HostFacts> {
        // Handed over once: the facts are the caller's now.
        self.settled.lock().ok()?.take()
    }
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        let ready = self
            .answers
            .lock()
            .ok()
            .and_then(|mut a| a.remove(&command.capture_name()));
        ready.unwrap_or_else(|| self.inner.run(command))
    }
}

/// Discovery's sources, but every command only noted.
struct DryRun<'a, 'b> {
    reads: &'b Prefetched<'a>,
    asked: Mutex<Vec<Command>>,
}

impl HostSource for DryRun<'_, '_> {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        self.reads.read_to_string(path)
    }
    fn read_prefix(&self, path: &str, len: usize) -> io::Result<Vec<u8>> {
        self.reads.read_prefix(path, len)
    }
    fn read_ranges(&self, path: &str, ranges: &[(ReadPos, usize)]) -> io::Result<Vec<Vec<u8>>> {
        self.reads.read_ranges(path, ranges)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        self.reads.list_dir(path)
    }
    fn read_link(&self, path: &str) -> io::Result<String> {
        self.reads.read_link(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.reads.exists(path)
    }
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(command.clone());
        }
        Err(ExecError::NotRecorded {
            command: command.clone(),
        })
    }
}
