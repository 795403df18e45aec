//! The `state`: the announced listing as JSON, in a local file or an S3 object, so a
//! restarted watcher neither misses files that arrived while it was down nor repeats old ones.
//!
//! Written after the events of a poll were handed to the stream (delivery is at least
//! once): a file atomically (temporary file, then rename); an S3 object as one whole PUT,
//! conditional on the ETag last read or written (`If-None-Match: *` when there was none),
//! so two watchers sharing one state object are detected instead of overwriting each other.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use etl_s3::PutCondition;
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

/// Where a source keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A local file (a PersistentVolumeClaim in a cluster).
    File(PathBuf),
    /// An S3 object, `s3://bucket/key`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

impl StateLocation {
    /// Parses the config's `state`: `s3://bucket/key` or a local path; `None` when empty. Pure.
    ///
    /// # Errors
    ///
    /// An `s3://` URL without a bucket or a key.
    pub fn parse(text: &str) -> Result<Option<StateLocation>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(Some(StateLocation::File(PathBuf::from(text))));
        };
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') => {
                Ok(Some(StateLocation::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }))
            }
            _ => Err(format!(
                "`state` {text:?} is not s3://BUCKET/KEY (an object, not a prefix)"
            )),
        }
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::File(path) => write!(f, "{}", path.display()),
            StateLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// Reading or writing the state failed.
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
    /// Reading or writing the state object failed.
    #[error("state {location}")]
    S3 {
        /// `s3://bucket/key`.
        location: String,
        /// Cause.
        #[source]
        source: Box<etl_s3::Error>,
    },
    /// The state object changed since this watcher last read or wrote it: another watcher
    /// uses the same state.
    #[error(
        "state {location} was changed by another writer; one state per source, and one ftp-watch per state"
    )]
    Conflict {
        /// `s3://bucket/key`.
        location: String,
    },
}

impl StateError {
    /// Worth retrying later (an S3 request that failed transiently).
    pub fn is_retryable(&self) -> bool {
        use etl_error::Classify as _;
        match self {
            StateError::S3 { source, .. } => {
                source.as_ref().class() == etl_error::ErrorClass::Retryable
            }
            _ => false,
        }
    }
}

/// The state of one source where it lives, with the ETag of the object as last read or
/// written (for the next conditional write).
#[derive(Debug)]
pub struct StateStore {
    location: StateLocation,
    etag: Option<String>,
    conditional: bool,
}

impl StateStore {
    /// The store at `location`; nothing read yet.
    pub fn new(location: StateLocation) -> Self {
        StateStore {
            location,
            etag: None,
            conditional: true,
        }
    }

    /// Where it lives.
    pub fn location(&self) -> &StateLocation {
        &self.location
    }

    /// Loads the state; `Ok(None)` when there is none yet (first start). `s3` is the
    /// S3 client, needed for an S3 location only.
    ///
    /// # Errors
    ///
    /// See [`StateError`].
    pub async fn load(
        &mut self,
        s3: Option<&etl_s3::Client>,
        server: &str,
        dir: &str,
    ) -> Result<Option<WatchState>, StateError> {
        match &self.location {
            StateLocation::File(path) => load(path, server, dir).await,
            StateLocation::S3 { bucket, key } => {
                let location = self.location.to_string();
                let s3_error = |source| StateError::S3 {
                    location: location.clone(),
                    source: Box::new(source),
                };
                let client =
                    s3.ok_or_else(|| s3_error(etl_s3::Error::Config("no S3 client".to_owned())))?;
                let (info, body) = match etl_s3::get_object(client, bucket, key).await {
                    Ok(found) => found,
                    Err(error) if error.is_not_found() => {
                        self.etag = None;
                        return Ok(None);
                    }
                    Err(error) => return Err(s3_error(error)),
                };
                let bytes = body
                    .collect()
                    .await
                    .map_err(|e| {
                        s3_error(etl_s3::Error::Body {
                            bucket: bucket.clone(),
                            key: key.clone(),
                            message: e.to_string(),
                        })
                    })?
                    .into_bytes();
                let text = String::from_utf8_lossy(&bytes);
                let state = parse(Path::new(&location), &text, server, dir)?;
                self.etag = info.etag;
                Ok(Some(state))
            }
        }
    }

    /// Writes the state: a file atomically; an S3 object with one PUT conditional on the
    /// ETag last read or written (`If-None-Match: *` when the object did not exist).
    ///
    /// # Errors
    ///
    /// [`StateError::Conflict`] when another writer changed the object; others per
    /// [`StateError`].
    pub async fn save(
        &mut self,
        s3: Option<&etl_s3::Client>,
        state: &WatchState,
    ) -> Result<(), StateError> {
        let (bucket, key) = match &self.location {
            StateLocation::File(path) => return save(path, state).await,
            StateLocation::S3 { bucket, key } => (bucket.clone(), key.clone()),
        };
        let location = self.location.to_string();
        let s3_error = |source| StateError::S3 {
            location: location.clone(),
            source: Box::new(source),
        };
        let client =
            s3.ok_or_else(|| s3_error(etl_s3::Error::Config("no S3 client".to_owned())))?;
        let body = render(state).map_err(|e| s3_error(etl_s3::Error::Config(e.to_string())))?;
        let condition = match (&self.etag, self.conditional) {
            (_, false) => PutCondition::None,
            (Some(etag), true) => PutCondition::Matches(etag.clone()),
            (None, true) => PutCondition::Absent,
        };
        let put = |condition: PutCondition| {
            let body = body.clone().into_bytes();
            let (bucket, key) = (bucket.clone(), key.clone());
            async move {
                etl_s3::put_bytes(
                    client,
                    &bucket,
                    &key,
                    body,
                    "application/json",
                    &condition,
                    &[],
                )
                .await
            }
        };
        let etag = match put(condition).await {
            Ok(etag) => etag,
            Err(error) if error.is_precondition_failed() => {
                return Err(StateError::Conflict { location });
            }
            Err(error) if error.is_not_implemented() => {
                tracing::warn!(state = %location, "the S3 server does not support conditional writes; writing the state unconditionally");
                self.conditional = false;
                put(PutCondition::None).await.map_err(s3_error)?
            }
            Err(error) => return Err(s3_error(error)),
        };
        self.etag = Some(etag).filter(|e| !e.is_empty());
        Ok(())
    }
}

/// The JSON text of a state (pretty, newline-terminated). Pure.
fn render(state: &WatchState) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(state)?;
    text.push('\n');
    Ok(text)
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
    let text = render(state).map_err(|e| write_error(e.into()))?;
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

    #[test]
    fn locations() {
        assert_eq!(StateLocation::parse(" ").unwrap(), None);
        assert_eq!(
            StateLocation::parse("/var/lib/s.json").unwrap(),
            Some(StateLocation::File("/var/lib/s.json".into()))
        );
        let s3 = StateLocation::parse("s3://b/ftp-watch/up.json")
            .unwrap()
            .unwrap();
        assert_eq!(
            s3,
            StateLocation::S3 {
                bucket: "b".into(),
                key: "ftp-watch/up.json".into()
            }
        );
        assert_eq!(s3.to_string(), "s3://b/ftp-watch/up.json");
        for bad in ["s3://", "s3://b", "s3://b/", "s3:///k", "s3://b/dir/"] {
            assert!(StateLocation::parse(bad).is_err(), "{bad}");
        }
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
