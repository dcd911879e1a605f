//! The one way xenraid runs external programs.
//!
//! Every command is an argv vector, never a shell string, so what the plan prints is exactly what
//! runs and no quoting bug can turn a device path into two arguments.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Stdio;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How many bytes of stderr an error keeps: enough for mdadm/sgdisk's last complaint, small enough
/// to print on one screen.
const STDERR_TAIL_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
}

impl Command {
    pub fn new<I, S>(program: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// Builds a command from a full argv; `None` for an empty argv.
    pub fn from_argv(argv: &[String]) -> Option<Self> {
        let (program, args) = argv.split_first()?;
        Some(Command {
            program: program.clone(),
            args: args.to_vec(),
        })
    }

    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// The file name under which a captured tree stores this command's output
    /// (`cmd/<name>.out`); `tests/fixtures/capture.sh` computes the same name.
    pub fn capture_name(&self) -> String {
        self.argv()
            .join(" ")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

impl fmt::Display for Command {
    /// Shell-quoted for humans to copy; execution never goes through a shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self.argv().iter().map(|a| shell_quote(a)).collect();
        f.write_str(&quoted.join(" "))
    }
}

pub fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: Command,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed with exit status {status}: {stderr_tail}")]
    Failed {
        command: Command,
        status: i32,
        stderr_tail: String,
        /// Kept because some tools (blkid exit 2 = nothing found) report facts through failure.
        stdout: String,
    },
    #[error("`{command}` was killed by a signal: {stderr_tail}")]
    Killed {
        command: Command,
        stderr_tail: String,
    },
    #[error("no recorded output for `{command}`")]
    NotRecorded { command: Command },
}

impl ExecError {
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            ExecError::Failed { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub fn stderr_tail(stderr: &str) -> String {
    let trimmed = stderr.trim_end();
    if trimmed.len() <= STDERR_TAIL_BYTES {
        return trimmed.to_string();
    }
    let mut start = trimmed.len() - STDERR_TAIL_BYTES;
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &trimmed[start..])
}

/// Turns a finished process into `Ok` only when it exited 0.
pub fn check_output(command: &Command, output: CommandOutput) -> Result<CommandOutput, ExecError> {
    if output.status == 0 {
        Ok(output)
    } else {
        Err(ExecError::Failed {
            command: command.clone(),
            status: output.status,
            stderr_tail: stderr_tail(&output.stderr),
            stdout: output.stdout,
        })
    }
}

pub trait Runner: Send + Sync {
    /// Runs the command to completion; a non-zero exit is an error that carries the output.
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError>;

    /// Runs the command with `input` on its stdin (sendmail). Runners that do not execute
    /// (dry-run, recording) treat it as `run`: they record the argv, not the input.
    fn run_with_input(&self, command: &Command, input: &[u8]) -> Result<CommandOutput, ExecError> {
        let _ = input;
        self.run(command)
    }
}

/// Runs commands for real through `std::process`, with the environment's PATH and a C locale so
/// that the outputs we parse are not translated.
#[derive(Debug, Default)]
pub struct RealRunner;

impl Runner for RealRunner {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        self.execute(command, None)
    }

    fn run_with_input(&self, command: &Command, input: &[u8]) -> Result<CommandOutput, ExecError> {
        self.execute(command, Some(input))
    }
}

impl RealRunner {
    fn execute(&self, command: &Command, input: Option<&[u8]>) -> Result<CommandOutput, ExecError> {
        use std::io::Write;
        tracing::debug!(%command, "running");
        let spawn_error = |source| ExecError::Spawn {
            command: command.clone(),
            source,
        };
        let mut child = std::process::Command::new(&command.program)
            .args(&command.args)
            .env("LC_ALL", "C")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A program that exits without reading all of it reports that through its status.
            let _ = stdin.write_all(input);
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        match output.status.code() {
            Some(status) => check_output(
                command,
                CommandOutput {
                    status,
                    stdout,
                    stderr,
                },
            ),
            None => Err(ExecError::Killed {
                command: command.clone(),
                stderr_tail: stderr_tail(&stderr),
            }),
        }
    }
}

/// Prints what it would run and succeeds with empty output: for `--dry-run` of mutating steps.
#[derive(Debug, Default)]
pub struct DryRunRunner {
    seen: Mutex<Vec<Command>>,
}

impl DryRunRunner {
    pub fn commands(&self) -> Vec<Command> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Runner for DryRunRunner {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        tracing::info!(%command, "dry run: not executed");
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(command.clone());
        }
        Ok(CommandOutput {
            status: 0,
            stdout: String::new(),
            stderr: String::new(),
        })
    }
}

/// Returns canned outputs and records every call, for tests. An unknown command is an error, so a
/// test cannot silently depend on a command it did not describe.
#[derive(Debug, Default)]
pub struct RecordingRunner {
    canned: BTreeMap<Vec<String>, CommandOutput>,
    calls: Mutex<Vec<Command>>,
}

impl RecordingRunner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_output(mut self, argv: &[&str], status: i32, stdout: &str) -> Self {
        self.canned.insert(
            argv.iter().map(|s| s.to_string()).collect(),
            CommandOutput {
                status,
                stdout: stdout.to_string(),
                stderr: if status == 0 {
                    String::new()
                } else {
                    format!("{} failed", argv.first().copied().unwrap_or_default())
                },
            },
        );
        self
    }

    pub fn calls(&self) -> Vec<Command> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Runner for RecordingRunner {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(command.clone());
        }
        match self.canned.get(&command.argv()) {
            Some(output) => check_output(command, output.clone()),
            None => Err(ExecError::NotRecorded {
                command: command.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_name_is_filesystem_safe_and_stable() {
        let cmd = Command::new("blkid", ["-p", "-o", "export", "/dev/sda1"]);
        assert_eq!(cmd.capture_name(), "blkid_-p_-o_export__dev_sda1");
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Command::new("xe", ["sr-create", "name-label=Local storage", "type=lvm"]);
        assert_eq!(
            cmd.to_string(),
            "xe sr-create 'name-label=Local storage' type=lvm"
        );
    }

    #[test]
    fn real_runner_error_carries_command_status_and_stderr() {
        let cmd = Command::new("sh", ["-c", "echo oops >&2; exit 3"]);
        let err = RealRunner.run(&cmd).unwrap_err();
        assert_eq!(err.exit_status(), Some(3));
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("oops"), "{text}");
    }

    #[test]
    fn real_runner_reports_missing_program() {
        let cmd = Command::new("/nonexistent/xenraid-tool", Vec::<String>::new());
        assert!(matches!(RealRunner.run(&cmd), Err(ExecError::Spawn { .. })));
    }

    #[test]
    fn recording_runner_returns_canned_output_and_records_calls() {
        let runner = RecordingRunner::new().with_output(&["mdadm", "--version"], 0, "v4.1\n");
        let out = runner
            .run(&Command::new("mdadm", ["--version"]))
            .expect("canned");
        assert_eq!(out.stdout, "v4.1\n");
        assert!(runner.run(&Command::new("mdadm", ["--stop"])).is_err());
        assert_eq!(runner.calls().len(), 2);
    }

    #[test]
    fn dry_run_runner_runs_nothing() {
        let runner = DryRunRunner::default();
        runner
            .run(&Command::new("sgdisk", ["--zap-all", "/dev/sdz"]))
            .expect("dry run succeeds");
        assert_eq!(runner.commands().len(), 1);
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let long = "x".repeat(5000) + "END";
        let tail = stderr_tail(&long);
        assert!(tail.ends_with("END"));
        assert!(tail.len() < 2100);
    }
}
