//! Host side of the guest agent protocol (see `guest/xenraid-lab-agent`): framed
//! commands over a virtio-serial port that QEMU exposes as a unix socket.

use anyhow::{anyhow, bail, Context, Result};
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
}

impl Agent {
    /// Connects to the QEMU end of the agent port (QEMU creates the socket at start-up).
    pub fn connect(socket: &Path, deadline: Instant) -> Result<Agent> {
        loop {
            match UnixStream::connect(socket) {
                Ok(stream) => {
                    let writer = stream.try_clone()?;
                    return Ok(Agent {
                        reader: BufReader::new(stream),
                        writer,
                        next_id: 1,
                    });
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
        let mut line = String::new();
        let n = self.reader.read_line(&mut line)?;
        if n == 0 {
            bail!("agent channel closed");
        }
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
        let id = self.id();
        write!(self.writer, "RUN {id} {}\n{script}", script.len())?;
        self.writer.flush()?;
        let (status, out_len, err_len) = self.wait_done(id, deadline)?;
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
        let (status, _, _) = self.wait_done(id, deadline)?;
        if status != 0 {
            bail!("writing {path} in the guest failed with status {status}");
        }
        Ok(())
    }

    fn wait_done(&mut self, id: u64, deadline: Instant) -> Result<(i32, usize, usize)> {
        loop {
            let line = self
                .read_line(deadline)
                .map_err(|e| anyhow!("no answer from the guest agent before the deadline ({e})"))?;
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 5 && f[0] == "DONE" && f[1] == id.to_string() {
                return Ok((f[2].parse()?, f[3].parse()?, f[4].parse()?));
            }
        }
    }

    fn read_exact(&mut self, len: usize, deadline: Instant) -> Result<String> {
        self.set_deadline(deadline)?;
        let mut buf = vec![0u8; len];
        self.reader.read_exact(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
