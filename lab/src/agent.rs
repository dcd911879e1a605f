//! Host side of the guest agent protocol (see `guest/xenraid-lab-agent`): framed
//! commands over a virtio-serial port that QEMU exposes as a unix socket.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a command run in the guest produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

pub struct Agent {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    /// A line that a read timeout cut in two: the rest comes with the next read.
    partial: String,
    /// How often a long wait looks up from the channel (`run_watched`).
    watch_every: Duration,
}

const WATCH_EVERY: Duration = Duration::from_secs(20);

impl Agent {
    fn over(stream: UnixStream) -> Result<Agent> {
        let writer = stream.try_clone()?;
        Ok(Agent {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
            partial: String::new(),
            watch_every: WATCH_EVERY,
        })
    }

    /// Connects to the QEMU end of the agent port (QEMU creates the socket at start-up).
    pub fn connect(socket: &Path, deadline: Instant) -> Result<Agent> {
        loop {
            match UnixStream::connect(socket) {
                Ok(stream) => {
                    return Agent::over(stream);
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e).with_context(|| format!("connect {}", socket.display())),
            }
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn set_deadline(&self, deadline: Instant) -> Result<()> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        self.reader.get_ref().set_read_timeout(Some(left))?;
        // A guest that never opens its port (stuck in the boot loader) stops draining the
        // channel: once QEMU's buffer is full a write would block past every deadline.
        self.writer.set_write_timeout(Some(left))?;
        Ok(())
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String> {
        self.set_deadline(deadline)?;
        // read_line keeps what it read before a timeout in the buffer it was given
        let n = self.reader.read_line(&mut self.partial)?;
        if n == 0 && !self.partial.ends_with('\n') {
            bail!("agent channel closed");
        }
        let line = std::mem::take(&mut self.partial);
        Ok(line.trim_end().to_string())
    }

    /// Pings until the agent answers; returns the guest's boot id.
    pub fn wait_ready(&mut self, deadline: Instant) -> Result<String> {
        loop {
            if Instant::now() >= deadline {
                bail!("guest agent did not answer before the deadline");
            }
            let id = self.id();
            self.set_deadline(deadline)?;
            if writeln!(self.writer, "PING {id}").is_err() {
                // The channel is full (nobody reads it yet): wait, then try again.
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            let wait = (Instant::now() + Duration::from_secs(2)).min(deadline);
            while Instant::now() < wait {
                match self.read_line(wait) {
                    Ok(line) => {
                        let f: Vec<&str> = line.split(' ').collect();
                        if f.len() == 3 && f[0] == "PONG" && f[1] == id.to_string() {
                            return Ok(f[2].to_string());
                        }
                        // stale PONGs of earlier pings, or noise from a previous boot: skip
                    }
                    Err(_) => break,
                }
            }
        }
    }

    /// Runs a bash script in the guest and waits for its exit status.
    pub fn run(&mut self, script: &str, deadline: Instant) -> Result<Output> {
        self.run_watched(script, deadline, || Ok(()))
    }

    /// `run`, calling `watch` every 20 s while the guest is silent: a wait of an
    /// hour ends as soon as `watch` finds the guest can no longer answer.
    pub fn run_watched(
        &mut self,
        script: &str,
        deadline: Instant,
        watch: impl FnMut() -> Result<()>,
    ) -> Result<Output> {
        let id = self.id();
        write!(self.writer, "RUN {id} {}\n{script}", script.len())?;
        self.writer.flush()?;
        let (status, out_len, err_len) = self.wait_done(id, deadline, watch)?;
        let stdout = self.read_exact(out_len, deadline)?;
        let stderr = self.read_exact(err_len, deadline)?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Writes `data` to `path` in the guest (atomically: temp file + rename).
    pub fn put(&mut self, path: &str, mode: u32, data: &[u8], deadline: Instant) -> Result<()> {
        if path.contains('\n') {
            bail!("guest path may not contain a newline: {path:?}");
        }
        let id = self.id();
        writeln!(self.writer, "PUT {id} {} {mode:o} {path}", data.len())?;
        self.writer.write_all(data)?;
        self.writer.flush()?;
        let (status, _, _) = self.wait_done(id, deadline, || Ok(()))?;
        if status != 0 {
            bail!("writing {path} in the guest failed with status {status}");
        }
        Ok(())
    }

    fn wait_done(
        &mut self,
        id: u64,
        deadline: Instant,
        mut watch: impl FnMut() -> Result<()>,
    ) -> Result<(i32, usize, usize)> {
        loop {
            let slice = (Instant::now() + self.watch_every).min(deadline);
            let line = match self.read_line(slice) {
                Ok(line) => line,
                Err(e) if Instant::now() < deadline && is_timeout(&e) => {
                    watch()?;
                    continue;
                }
                Err(e) => bail!("no answer from the guest agent before the deadline ({e})"),
            };
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 5 && f[0] == "DONE" && f[1] == id.to_string() {
                return Ok((f[2].parse()?, f[3].parse()?, f[4].parse()?));
            }
        }
    }

    fn read_exact(&mut self, len: usize, deadline: Instant) -> Result<String> {
        debug_assert!(self.partial.is_empty(), "a payload follows a whole line");
        self.set_deadline(deadline)?;
        let mut buf = vec![0u8; len];
        self.reader.read_exact(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

fn is_timeout(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake guest end: reads one RUN, then answers with `chunks`, pausing between them.
    fn guest(stream: UnixStream, chunks: Vec<(&'static str, u64)>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let len: usize = header.split(' ').nth(2).unwrap().trim().parse().unwrap();
            let mut script = vec![0u8; len];
            reader.read_exact(&mut script).unwrap();
            let mut w = stream;
            for (text, pause_ms) in chunks {
                std::thread::sleep(Duration::from_millis(pause_ms));
                w.write_all(text.as_bytes()).unwrap();
            }
        })
    }

    #[test]
    fn a_reply_cut_by_a_watch_slice_is_read_whole() {
        let (host, far) = UnixStream::pair().unwrap();
        let mut agent = Agent::over(host).unwrap();
        agent.watch_every = Duration::from_millis(100);
        let g = guest(
            far,
            vec![("PONG 1 x\nDO", 0), ("NE 2 0 3 1\nout", 350), ("e", 0)],
        );
        let mut watched = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        let out = agent
            .run_watched("true", deadline, || {
                watched += 1;
                Ok(())
            })
            .unwrap();
        g.join().unwrap();
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (0, "out", "e")
        );
        assert!(watched >= 2, "watch ran {watched} times");
    }

    #[test]
    fn a_watch_that_fails_ends_the_wait_long_before_the_deadline() {
        let (host, far) = UnixStream::pair().unwrap();
        let mut agent = Agent::over(host).unwrap();
        agent.watch_every = Duration::from_millis(100);
        let _g = guest(far, vec![("", 5000)]);
        let t = Instant::now();
        let e = agent
            .run_watched("sleep 3600", t + Duration::from_secs(3600), || {
                bail!("the guest is not running (QEMU status io-error)")
            })
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(format!("{e:#}").contains("io-error"), "{e:#}");
    }
}
