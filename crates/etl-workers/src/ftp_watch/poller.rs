//! One watched source: connect (with exponential backoff), poll the listing every
//! `interval`, feed it to the [`Tracker`], hand events to the stream, persist the
//! state. Stops as soon as the stream's receiver is gone (the client hung up).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etl_ftp::{FtpConnection, ListingCache, RemoteEntry};
use etl_grpc::Event;
use tokio::sync::mpsc;
use tonic::Status;

use super::config::{Existing, WatchSettings};
use super::state::{self, StateError, StateLocation, StateStore, WatchState};
use super::tracker::{Announcement, Observed, Stamp, Tracker};

/// First reconnect delay (capped by the poll interval when that is shorter).
const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The path of `path` relative to `dir` (no leading slash).
pub fn relative_name(dir: &str, path: &str) -> String {
    let dir = dir.trim_end_matches('/');
    let rest = path.strip_prefix(dir).unwrap_or(path);
    rest.trim_start_matches('/').to_owned()
}

/// Seconds since the epoch, if after it.
fn unix_seconds(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// The watched files of a walk: filtered by name, relative names, stamps. Pure.
pub fn observed(settings: &WatchSettings, entries: Vec<RemoteEntry>) -> Vec<Observed> {
    entries
        .into_iter()
        .filter(|e| !e.is_dir && settings.filter.matches(&e.name))
        .map(|e| Observed {
            name: relative_name(&settings.dir, &e.path),
            stamp: Stamp {
                sz: e.size,
                dt: e.modified.and_then(unix_seconds),
            },
            path: e.path,
        })
        .collect()
}

/// The JSON payload of an announcement: `{"name","sz","dt","path"}`, `dt` in RFC 3339
/// (UTC, seconds) or `null` when the server gave no time. Pure.
pub fn payload(announcement: &Announcement) -> serde_json::Value {
    let file = &announcement.file;
    let dt = file.stamp.dt.map(|seconds| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
    });
    serde_json::json!({
        "name": file.name,
        "sz": file.stamp.sz,
        "dt": dt,
        "path": file.path,
    })
}

/// The gRPC event of an announcement.
pub fn event(announcement: &Announcement) -> Event {
    Event {
        name: announcement.change.event_name().to_owned(),
        payload: payload(announcement).to_string().into_bytes(),
    }
}

/// Walks once; what `ftp-watch scan` and every poll do: within `depth`, leaving out
/// `exclude`d folders and files and files the name filter refuses (no MDTM for them). On
/// servers without MLSD, `cache` (kept across polls) limits MDTM to files whose LIST line
/// changed, and with `skip_unchanged_folders` it keeps the listings of unchanged folders.
///
/// # Errors
///
/// The FTP step that failed.
pub async fn walk(
    connection: &mut FtpConnection,
    settings: &WatchSettings,
    cache: &mut ListingCache,
) -> Result<Vec<Observed>, etl_ftp::Error> {
    let options = etl_ftp::WalkOptions {
        max_depth: settings.depth,
        skip_unchanged_folders: settings.skip_unchanged_folders,
    };
    let keep = |entry: &RemoteEntry| {
        !settings
            .exclude
            .excludes(&relative_name(&settings.dir, &entry.path))
            && (entry.is_dir || settings.filter.matches(&entry.name))
    };
    let entries = connection
        .walk_with(&settings.dir, &options, cache, &keep)
        .await?;
    Ok(observed(settings, entries))
}

fn server_id(settings: &WatchSettings) -> String {
    format!("{}:{}", settings.ftp.host, settings.ftp.port)
}

/// The S3 client of state objects: one per process, built on first use.
pub type S3Access = std::sync::Arc<tokio::sync::OnceCell<etl_s3::Client>>;

/// The S3 client when `location` is an S3 object.
///
/// # Errors
///
/// A malformed `AWS_ENDPOINT_URL`.
async fn s3_for<'a>(
    location: &StateLocation,
    s3: &'a S3Access,
) -> Result<Option<&'a etl_s3::Client>, etl_s3::Error> {
    match location {
        StateLocation::File(_) => Ok(None),
        StateLocation::S3 { .. } => s3.get_or_try_init(etl_s3::client_from_env).await.map(Some),
    }
}

/// Loads the saved state, retrying transient S3 failures with backoff; `Err` (with the
/// stream already told) when the state cannot be used or the client hung up.
async fn load_state(
    name: &str,
    store: &mut StateStore,
    s3: &S3Access,
    server: &str,
    settings: &WatchSettings,
    events: &mpsc::Sender<Result<Event, Status>>,
) -> Result<Option<Tracker>, ()> {
    let mut backoff = BACKOFF_START.min(settings.interval);
    loop {
        let loaded = match s3_for(store.location(), s3).await {
            Ok(client) => store.load(client, server, &settings.dir).await,
            Err(source) => Err(StateError::S3 {
                location: store.location().to_string(),
                source: Box::new(source),
            }),
        };
        match loaded {
            Ok(Some(saved)) => {
                tracing::info!(source = %name, state = %store.location(), files = saved.files.len(), "resuming from state");
                return Ok(Some(Tracker::with_announced(settings.settle, saved.files)));
            }
            Ok(None) => return Ok(None),
            Err(error) if error.is_retryable() => {
                tracing::warn!(source = %name, retry_in = ?backoff, "{error}: {}", source_text(&error));
                if !pause(events, backoff).await {
                    return Err(());
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(error) => {
                tracing::error!(source = %name, "{error}: {}", source_text(&error));
                let _ = events
                    .send(Err(Status::failed_precondition(error.to_string())))
                    .await;
                return Err(());
            }
        }
    }
}

/// Runs the poller of source `name` until the receiver of `events` is dropped.
///
/// Configuration-level failures (unreadable state, a state object another watcher
/// writes) end the stream with an error status; FTP failures and transient S3 failures
/// are logged and retried with backoff.
pub async fn run(
    name: String,
    settings: WatchSettings,
    s3: S3Access,
    events: mpsc::Sender<Result<Event, Status>>,
) {
    let server = server_id(&settings);
    let mut store = settings.state.clone().map(StateStore::new);
    let mut tracker = match store.as_mut() {
        Some(store) => match load_state(&name, store, &s3, &server, &settings, &events).await {
            Ok(tracker) => tracker,
            Err(()) => return,
        },
        None => None,
    };
    // What the state holds: written again only when the announced listing changes.
    let mut saved_files = tracker.as_ref().map(|t| t.announced().clone());
    let first_backoff = BACKOFF_START.min(settings.interval);
    let mut backoff = first_backoff;
    let mut connection: Option<FtpConnection> = None;
    let mut cache = ListingCache::default();
    loop {
        if events.is_closed() {
            break;
        }
        if connection.is_none() {
            match etl_ftp::connect(&settings.ftp).await {
                Ok(open) => connection = Some(open),
                Err(error) => {
                    tracing::warn!(source = %name, retry_in = ?backoff, "{error}: {}", source_text(&error));
                    if !pause(&events, backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        match walk(open, &settings, &mut cache).await {
            Ok(listing) => {
                backoff = first_backoff;
                let announcements = match tracker.as_mut() {
                    Some(tracker) => tracker.observe(&listing),
                    None => {
                        let mut fresh = Tracker::new(settings.settle);
                        let announcements = match settings.existing {
                            Existing::Ignore => {
                                fresh.accept_all(&listing);
                                Vec::new()
                            }
                            Existing::Emit => fresh.observe(&listing),
                        };
                        tracing::info!(source = %name, files = listing.len(), existing = ?settings.existing, "first listing");
                        tracker = Some(fresh);
                        announcements
                    }
                };
                for announcement in &announcements {
                    tracing::info!(source = %name, event = announcement.change.event_name(), file = %announcement.file.name, size = announcement.file.stamp.sz, "announcing");
                    if events.send(Ok(event(announcement))).await.is_err() {
                        return;
                    }
                }
                if let (Some(store), Some(tracker)) = (store.as_mut(), &tracker)
                    && saved_files.as_ref() != Some(tracker.announced())
                {
                    let snapshot = WatchState {
                        version: state::VERSION,
                        server: server.clone(),
                        dir: settings.dir.clone(),
                        files: tracker.announced().clone(),
                    };
                    let saved = match s3_for(store.location(), &s3).await {
                        Ok(client) => store.save(client, &snapshot).await,
                        Err(source) => Err(StateError::S3 {
                            location: store.location().to_string(),
                            source: Box::new(source),
                        }),
                    };
                    match saved {
                        Ok(()) => saved_files = Some(snapshot.files),
                        Err(error @ StateError::Conflict { .. }) => {
                            tracing::error!(source = %name, "{error}");
                            let _ = events.send(Err(Status::aborted(error.to_string()))).await;
                            break;
                        }
                        // The next poll writes the whole state again.
                        Err(error) => {
                            tracing::error!(source = %name, "{error}: {}", source_text(&error));
                        }
                    }
                }
                if !pause(&events, settings.interval).await {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(source = %name, retry_in = ?backoff, "{error}: {}", source_text(&error));
                connection = None;
                if !pause(&events, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    if let Some(open) = connection {
        let _ = open.quit().await;
    }
    tracing::info!(source = %name, "stream closed; poller stopped");
}

/// Waits `delay`; `false` when the client hung up meanwhile.
async fn pause(events: &mpsc::Sender<Result<Event, Status>>, delay: Duration) -> bool {
    tokio::select! {
        () = events.closed() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

fn source_text(error: &dyn std::error::Error) -> String {
    error.source().map_or_else(String::new, ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::super::tracker::Change;
    use super::*;

    #[test]
    fn names_relative_to_dir() {
        assert_eq!(relative_name("/", "/a.csv"), "a.csv");
        assert_eq!(relative_name("/in", "/in/2023/a.csv"), "2023/a.csv");
        assert_eq!(relative_name("/in/", "/in/a.csv"), "a.csv");
        assert_eq!(relative_name("in", "in/a.csv"), "a.csv");
    }

    #[test]
    fn payload_shape() {
        let a = Announcement {
            change: Change::New,
            file: Observed {
                name: "test.csv".into(),
                path: "/test.csv".into(),
                stamp: Stamp {
                    sz: 36,
                    dt: Some(1_681_434_123),
                },
            },
        };
        let e = event(&a);
        assert_eq!(e.name, "new");
        assert_eq!(
            String::from_utf8(e.payload).unwrap(),
            r#"{"dt":"2023-04-14T01:02:03Z","name":"test.csv","path":"/test.csv","sz":36}"#
        );
    }
}
