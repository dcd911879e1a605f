//! The textfile node_exporter reads: replaced whole, never seen half written.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TextfileError {
    #[error("{path}: node_exporter's textfile collector reads only *.prom files")]
    NotProm { path: PathBuf },
    #[error("{dir}: no such directory (is node_exporter's textfile collector set up?)")]
    NoDirectory { dir: PathBuf },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes `text` to `path` atomically: a temporary file in the same directory (named so the
/// collector's `*.prom` glob skips it), fsync, rename over the old file, fsync the directory.
/// The directory must exist: creating node_exporter's directory is its package's job.
pub fn write_textfile(path: &Path, text: &str) -> Result<(), TextfileError> {
    if path.extension().and_then(|e| e.to_str()) != Some("prom") {
        return Err(TextfileError::NotProm {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(d) if d.as_os_str().is_empty() => Path::new("."),
        Some(d) => d,
        None => Path::new("/"),
    };
    if !dir.is_dir() {
        return Err(TextfileError::NoDirectory {
            dir: dir.to_path_buf(),
        });
    }
    crate::convert::journal::write_atomic(path, text.as_bytes()).map_err(|source| {
        TextfileError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xenraid.prom");
        write_textfile(&path, "a 1\n").unwrap();
        write_textfile(&path, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["xenraid.prom"]);
    }

    #[test]
    fn refuses_a_name_the_collector_would_not_read_and_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            write_textfile(&dir.path().join("xenraid.txt"), ""),
            Err(TextfileError::NotProm { .. })
        ));
        assert!(matches!(
            write_textfile(&dir.path().join("nope/xenraid.prom"), ""),
            Err(TextfileError::NoDirectory { .. })
        ));
    }
}
