//! The scrub checkpoint: where each array's check stopped, and how its last full pass ended.
//! Kept in `/var/lib/xenraid/scrub.json`, replaced atomically; keyed by array UUID (kernel
//! names such as md127 can change between boots).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const DEFAULT_STATE: &str = "/var/lib/xenraid/scrub.json";

#[derive(Debug, Error)]
pub enum StateError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({source}); move it away to start every array's check afresh")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubState {
    /// By array UUID (the kernel name when md reports none).
    #[serde(default)]
    pub arrays: BTreeMap<String, ArrayCheckpoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayCheckpoint {
    /// Kernel name when last seen (informational).
    pub device: String,
    /// Where the next check starts (sectors); 0 = a fresh pass.
    pub next_sector: u64,
    /// The members' size (component_size, in sectors); a different one (the array grew)
    /// starts a fresh pass.
    pub total_sectors: u64,
    /// Mismatches found by the earlier parts of the pass in progress (md counts per run).
    #[serde(default)]
    pub pass_mismatch_sectors: u64,
    /// When the pass in progress started (Unix seconds).
    #[serde(default)]
    pub pass_started: Option<u64>,
    /// When the last full pass finished (Unix seconds), and what it found.
    #[serde(default)]
    pub last_finished: Option<u64>,
    #[serde(default)]
    pub last_mismatch_sectors: Option<u64>,
}

impl ArrayCheckpoint {
    pub fn in_progress(&self) -> bool {
        self.next_sector > 0
    }
}

#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    pub fn new(path: impl Into<PathBuf>) -> StateStore {
        StateStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state; empty when there is none yet.
    pub fn load(&self) -> Result<ScrubState, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ScrubState::default()),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        serde_json::from_str(&text).map_err(|source| StateError::Parse {
            path: self.path.clone(),
            source,
        })
    }

    pub fn save(&self, state: &ScrubState) -> Result<(), StateError> {
        let mut text = serde_json::to_string_pretty(state).unwrap_or_default();
        text.push('\n');
        crate::convert::journal::write_atomic(&self.path, text.as_bytes()).map_err(|source| {
            StateError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_empty_and_saved_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("sub/scrub.json"));
        assert_eq!(store.load().unwrap(), ScrubState::default());
        let mut state = ScrubState::default();
        state.arrays.insert(
            "u".into(),
            ArrayCheckpoint {
                device: "md127".into(),
                next_sector: 8,
                total_sectors: 16,
                ..Default::default()
            },
        );
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), state);
        std::fs::write(store.path(), "{").unwrap();
        assert!(matches!(store.load(), Err(StateError::Parse { .. })));
    }
}
