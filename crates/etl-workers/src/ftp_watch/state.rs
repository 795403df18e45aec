//! The `state` file: the announced listing as JSON, so a restarted watcher
//! neither misses files that arrived while it was down nor repeats old ones.
//!
//! Written atomically (temporary file, then rename) after the events of a poll
//! were handed to the stream: delivery is at least once. A state on S3 is not
//! implemented (the config refuses `s3://`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tracker::Stamp;

/// Current file format version.
pub const VERSION: u32 = 1;

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchState {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// Server the listing belongs to (`host:port`).
    pub server: String,
    /// Watched directory.
    pub dir: String,
    /// Announced files by name relative to `dir`.
    pub files: BTreeMap<String, Stamp>,
}

/// Reading or writing the state file failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file exists but cannot be read.
    #[error("cannot read state file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state file of this version.
    #[error("state file {path} is not valid ftp-watch state")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The file belongs to another server or directory.
    #[error(
        "state file {path} belongs to {server} {dir}, not to this source; use one state file per source"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Server recorded in the file.
        server: String,
        /// Directory recorded in the file.
        dir: String,
    },
    /// Writing failed.
    #[error("cannot write state file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Parses state JSON. Pure.
///
/// # Errors
///
/// [`StateError::Parse`] or [`StateError::Mismatch`].
pub fn parse(path: &Path, text: &str, server: &str, dir: &str) -> Result<WatchState, StateError> {
    let state: WatchState = serde_json::from_str(text).map_err(|source| StateError::Parse {
        path: path.to_owned(),
        source,
    })?;
    if state.version != VERSION || state.server != server || state.dir != dir {
        return Err(StateError::Mismatch {
            path: path.to_owned(),
            server: state.server,
            dir: state.dir,
        });
    }
    Ok(state)
}

/// Loads the state; `Ok(None)` when the file does not exist yet (first start).
///
/// # Errors
///
/// See [`StateError`].
pub async fn load(path: &Path, server: &str, dir: &str) -> Result<Option<WatchState>, StateError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => parse(path, &text, server, dir).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes the state atomically.
///
/// # Errors
///
/// [`StateError::Write`].
pub async fn save(path: &Path, state: &WatchState) -> Result<(), StateError> {
    let write_error = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let mut text = serde_json::to_string_pretty(state).map_err(|e| write_error(e.into()))?;
    text.push('\n');
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(write_error)?;
    }
    tokio::fs::write(&temporary, text)
        .await
        .map_err(write_error)?;
    tokio::fs::rename(&temporary, path)
        .await
        .map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> WatchState {
        WatchState {
            version: VERSION,
            server: "h:21".into(),
            dir: "/".into(),
            files: BTreeMap::from([("a.csv".to_owned(), Stamp { sz: 3, dt: Some(7) })]),
        }
    }

    #[test]
    fn round_trip() {
        let text = serde_json::to_string(&state()).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"server":"h:21","dir":"/","files":{"a.csv":{"sz":3,"dt":7}}}"#
        );
        assert_eq!(parse(Path::new("s"), &text, "h:21", "/").unwrap(), state());
    }

    #[test]
    fn other_source_is_refused() {
        let text = serde_json::to_string(&state()).unwrap();
        let e = parse(Path::new("s.json"), &text, "h:21", "/in").unwrap_err();
        assert!(e.to_string().contains("belongs to h:21 /"), "{e}");
        assert!(parse(Path::new("s.json"), "{", "h:21", "/").is_err());
    }

    #[tokio::test]
    async fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        assert_eq!(load(&path, "h:21", "/").await.unwrap(), None);
        save(&path, &state()).await.unwrap();
        assert_eq!(load(&path, "h:21", "/").await.unwrap(), Some(state()));
    }
}
