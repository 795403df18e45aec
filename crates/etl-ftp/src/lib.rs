//! FTP edge: connection, listing and streaming download over suppaftp's tokio API.
//!
//! - [`connect`] opens a session from [`FtpSettings`]: TCP (with a timeout),
//!   optional explicit FTPS (`AUTH TLS`), login, binary transfer type (suppaftp
//!   starts in ASCII mode), then `FEAT` to learn whether `MLSD`, `MDTM` and `SIZE`
//!   are available.
//! - [`FtpConnection::list_dir`] lists one directory exactly: `MLSD` where the server
//!   has it; otherwise `LIST` (UNIX or DOS style, parsed by suppaftp) refined with
//!   `MDTM` per file, because `LIST` times have minute (or day) precision.
//! - [`FtpConnection::walk`] walks a tree itself, one directory at a time (never
//!   `LIST -R`, which servers implement inconsistently); [`FtpConnection::walk_with`]
//!   bounds it ([`WalkOptions`]: depth, reuse of unchanged folders) and keeps a
//!   [`ListingCache`] across polls so unchanged files cost no `MDTM`.
//! - [`FtpConnection::retr_stream`] starts a download and returns a [`Download`]:
//!   an [`AsyncRead`] over the data connection, closed with [`Download::finish`],
//!   which also checks the server's final reply.
//!
//! This crate never prints and never logs the password. What to do with a listing
//! (diffing, events) belongs to `etl-workers`; turning bytes into Parquet belongs to
//! `etl-convert`.

mod error;
mod listing;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use suppaftp::tokio::{
    AsyncRustlsConnector, AsyncRustlsFtpStream, AsyncRustlsStream, TransferStream,
};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};
use tokio::io::{AsyncRead, ReadBuf};

pub use error::{Error, Result};
pub use listing::{RemoteEntry, join, parse_list_line, parse_mlsd_line};

/// Default FTP control port.
pub const DEFAULT_PORT: u16 = 21;
/// Default connect timeout (TCP connect plus server greeting).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach and log in to an FTP server.
///
/// The [`Debug`] output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct FtpSettings {
    /// Host name or IP address.
    pub host: String,
    /// Control port (21).
    pub port: u16,
    /// User name (`anonymous` when not given).
    pub user: String,
    /// Password (may be empty).
    pub password: String,
    /// Passive mode (default `true`); `false` uses active mode.
    pub passive: bool,
    /// Explicit FTPS (`AUTH TLS` on the control port) when `true`.
    pub tls: bool,
    /// PEM file of CA certificates trusted besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Timeout for the TCP connect and the server greeting.
    pub connect_timeout: Duration,
}

impl FtpSettings {
    /// Settings for `host` with defaults: port 21, user `anonymous`, empty password,
    /// passive, no TLS, 30 s connect timeout.
    pub fn new(host: impl Into<String>) -> Self {
        FtpSettings {
            host: host.into(),
            port: DEFAULT_PORT,
            user: "anonymous".to_owned(),
            password: String::new(),
            passive: true,
            tls: false,
            ca_file: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl fmt::Debug for FtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    "<empty>"
                } else {
                    "<redacted>"
                },
            )
            .field("passive", &self.passive)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// What the server said it supports (from `FEAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `MLST`/`MLSD` machine-readable listings.
    pub mlsd: bool,
    /// `MDTM` modification times.
    pub mdtm: bool,
    /// `SIZE` file sizes.
    pub size: bool,
}

/// What the last LIST said about each file and the exact time MDTM gave then, so that a
/// later listing asks MDTM only for files whose LIST line (size, coarse time, name)
/// changed. Keep one per watched tree across polls (and reconnections).
#[derive(Debug, Clone, Default)]
pub struct ListingCache {
    files: HashMap<String, Cached>,
    folders: HashMap<String, FolderListing>,
}

/// A folder's last listing, kept for [`WalkOptions::skip_unchanged_folders`].
#[derive(Debug, Clone)]
struct FolderListing {
    /// The folder's time in its parent's listing when it was listed.
    modified: Option<SystemTime>,
    /// Local time of that listing.
    listed_at: SystemTime,
    /// What it held (files refined, subfolders as listed).
    entries: Vec<RemoteEntry>,
}

/// Clock difference allowed between this host and the FTP server when deciding whether a
/// folder's time proves that its listing is complete.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(15 * 60);

/// Whether the listing of a folder kept in `cached` still holds: the folder has no
/// subfolders, its time in its parent's fresh listing (`entry`) is the one it had then, and
/// that listing was taken after
/// the end of the time's precision window (a second for MLSD, a day for LIST, whose times
/// have minute or day precision and may be in the server's zone) plus the clock allowance,
/// so no entry was added or removed in the same window afterwards. Pure.
fn folder_unchanged(entry: &RemoteEntry, cached: &FolderListing) -> bool {
    let Some(modified) = entry.modified else {
        return false;
    };
    let precision = if entry.exact {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(24 * 3600)
    };
    // A subfolder's changes do not show in its parent's time: only leaves are reused.
    cached.modified == Some(modified)
        && !cached.entries.iter().any(|e| e.is_dir)
        && modified
            .checked_add(precision + CLOCK_SKEW_ALLOWANCE)
            .is_some_and(|settled| cached.listed_at >= settled)
}

/// How far and where [`FtpConnection::walk_with`] descends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// Levels of subfolders listed below the walked folder: `Some(0)` that folder only,
    /// `None` no limit.
    pub max_depth: Option<usize>,
    /// Reuse the last listing of a folder without subfolders whose time in its parent's
    /// listing is unchanged and old enough (see [`CLOCK_SKEW_ALLOWANCE`]). A folder's time changes when entries
    /// are added, removed or renamed, not when a file inside is overwritten in place: for
    /// write-once layouts only.
    pub skip_unchanged_folders: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cached {
    size: u64,
    coarse: Option<SystemTime>,
    modified: Option<SystemTime>,
    exact: bool,
}

impl ListingCache {
    /// Files remembered.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Folders whose last listing is kept.
    pub fn folders(&self) -> usize {
        self.folders.len()
    }

    /// The refined values of `entry` if its LIST line is unchanged. Pure.
    fn reuse(&self, entry: &mut RemoteEntry) -> bool {
        match self.files.get(&entry.path) {
            Some(cached) if cached.size == entry.size && cached.coarse == entry.modified => {
                entry.modified = cached.modified;
                entry.exact = cached.exact;
                true
            }
            _ => false,
        }
    }

    fn keep(&mut self, coarse: Option<SystemTime>, entry: &RemoteEntry) {
        self.files.insert(
            entry.path.clone(),
            Cached {
                size: entry.size,
                coarse,
                modified: entry.modified,
                exact: entry.exact,
            },
        );
    }
}

/// An open, logged-in FTP session in binary mode.
pub struct FtpConnection {
    stream: AsyncRustlsFtpStream,
    host: String,
    capabilities: Capabilities,
}

impl fmt::Debug for FtpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpConnection")
            .field("host", &self.host)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// The certificates of a PEM bundle. Pure.
fn pem_certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<suppaftp::tokio_rustls::rustls::pki_types::CertificateDer<'static>>> {
    use suppaftp::tokio_rustls::rustls::pki_types::CertificateDer;
    use suppaftp::tokio_rustls::rustls::pki_types::pem::PemObject as _;
    let bad = |reason: String| Error::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certificates.is_empty() {
        return Err(bad("no PEM certificate in it".to_owned()));
    }
    Ok(certificates)
}

fn tls_connector(ca_file: Option<&Path>) -> Result<AsyncRustlsConnector> {
    use suppaftp::tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A single unreadable system certificate must not disable TLS altogether.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| Error::CaFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        for certificate in pem_certificates(path, &pem)? {
            roots.add(certificate).map_err(|e| Error::CaFile {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::CaFile {
                path: ca_file.map(Path::to_owned).unwrap_or_default(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(AsyncRustlsConnector::from(
        suppaftp::tokio_rustls::TlsConnector::from(Arc::new(config)),
    ))
}

/// The error of a failed `AUTH TLS` upgrade, telling a server without TLS and a
/// certificate that fails verification from other failures.
fn tls_error(host: &str, port: u16, source: FtpError) -> Error {
    match source {
        FtpError::UnexpectedResponse(response) if response.status.code() >= 500 => {
            Error::TlsRefused {
                host: host.to_owned(),
                port,
                reply: String::from_utf8_lossy(&response.body).trim().to_owned(),
            }
        }
        FtpError::SecureError(text) if text.contains("certificate") => Error::Certificate {
            host: host.to_owned(),
            port,
            reason: text,
        },
        source => Error::Tls {
            host: host.to_owned(),
            source,
        },
    }
}

/// Opens a session: connect (with timeout), optional `AUTH TLS`, login, `TYPE I`, `FEAT`.
///
/// # Errors
///
/// [`Error::Connect`] / [`Error::ConnectTimeout`] (retryable), [`Error::Tls`],
/// [`Error::Login`] (bad input when the server refuses the credentials),
/// [`Error::Setup`] when `TYPE I` is refused.
pub async fn connect(settings: &FtpSettings) -> Result<FtpConnection> {
    let host = settings.host.clone();
    let port = settings.port;
    let connecting = AsyncRustlsFtpStream::connect((host.as_str(), port));
    let mut stream = tokio::time::timeout(settings.connect_timeout, connecting)
        .await
        .map_err(|_| Error::ConnectTimeout {
            host: host.clone(),
            port,
        })?
        .map_err(|source| Error::Connect {
            host: host.clone(),
            port,
            source,
        })?;
    if settings.tls {
        let connector = tls_connector(settings.ca_file.as_deref())?;
        stream = stream
            .into_secure(connector, &host)
            .await
            .map_err(|source| tls_error(&host, port, source))?;
    }
    if settings.passive {
        // Servers behind NAT (containers, Kubernetes services) often announce an
        // internal address in their PASV reply: connect to the control peer instead.
        stream.set_passive_nat_workaround(true);
    } else {
        stream = stream.active_mode(settings.connect_timeout);
    }
    stream
        .login(settings.user.as_str(), settings.password.as_str())
        .await
        .map_err(|source| Error::Login {
            host: host.clone(),
            user: settings.user.clone(),
            source,
        })?;
    stream
        .transfer_type(FileType::Binary)
        .await
        .map_err(|source| Error::Setup {
            host: host.clone(),
            step: "TYPE I",
            source,
        })?;
    let capabilities = match stream.feat().await {
        Ok(features) => {
            let has = |name: &str| features.keys().any(|k| k.eq_ignore_ascii_case(name));
            Capabilities {
                mlsd: has("MLST") || has("MLSD"),
                mdtm: has("MDTM"),
                size: has("SIZE"),
            }
        }
        // No FEAT (RFC 959 servers): try MDTM/SIZE anyway, tolerate refusals.
        Err(_) => Capabilities {
            mlsd: false,
            mdtm: true,
            size: true,
        },
    };
    tracing::debug!(host = %host, port, user = %settings.user, tls = settings.tls, ?capabilities, "FTP session open");
    Ok(FtpConnection {
        stream,
        host,
        capabilities,
    })
}

fn unsupported(error: &FtpError) -> bool {
    matches!(error, FtpError::UnexpectedResponse(r)
        if matches!(r.status, Status::BadCommand | Status::NotImplemented | Status::NotImplementedParameter))
}

/// Seconds since the epoch (as MDTM's UTC time gives them) to a [`SystemTime`].
fn system_time(unix_seconds: i64) -> Option<SystemTime> {
    let seconds = u64::try_from(unix_seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

impl FtpConnection {
    /// The host this session talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// What the server supports, as learned from `FEAT` (and from refusals since).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Lists one directory (not recursive), without `.` and `..`.
    ///
    /// Uses `MLSD` when supported; otherwise `LIST`, and then `MDTM` for each file
    /// so that modification times have second precision ([`RemoteEntry::exact`]).
    ///
    /// # Errors
    ///
    /// [`Error::List`] when the listing fails.
    pub async fn list_dir(&mut self, path: &str) -> Result<Vec<RemoteEntry>> {
        self.list_dir_cached(path, &mut ListingCache::default())
            .await
    }

    /// [`FtpConnection::list_dir`], sending `MDTM` (after a LIST) only for files that are
    /// new in `cache` or whose LIST size or time changed; the others get the exact time
    /// kept in `cache`. Entries of `path` are added to `cache`, none removed.
    ///
    /// # Errors
    ///
    /// [`Error::List`] when the listing fails.
    pub async fn list_dir_cached(
        &mut self,
        path: &str,
        cache: &mut ListingCache,
    ) -> Result<Vec<RemoteEntry>> {
        self.list_dir_kept(path, cache, &|_| true).await
    }

    /// [`FtpConnection::list_dir_cached`] returning (and refining) only the entries `keep`
    /// accepts, so that files nobody wants cost no `MDTM`.
    async fn list_dir_kept(
        &mut self,
        path: &str,
        cache: &mut ListingCache,
        keep: &(dyn Fn(&RemoteEntry) -> bool + Sync),
    ) -> Result<Vec<RemoteEntry>> {
        if self.capabilities.mlsd {
            match self.stream.mlsd(Some(path)).await {
                Ok(lines) => {
                    return Ok(lines
                        .iter()
                        .filter_map(|line| parse_mlsd_line(path, line))
                        .filter(|entry| keep(entry))
                        .collect());
                }
                Err(error) if unsupported(&error) => self.capabilities.mlsd = false,
                Err(source) => return Err(self.list_error(path, source)),
            }
        }
        let lines = self
            .stream
            .list(Some(path))
            .await
            .map_err(|source| self.list_error(path, source))?;
        let mut entries: Vec<RemoteEntry> = lines
            .iter()
            .filter_map(|line| parse_list_line(path, line))
            .filter(|entry| keep(entry))
            .collect();
        for entry in entries.iter_mut().filter(|e| !e.is_dir) {
            if cache.reuse(entry) {
                continue;
            }
            let coarse = entry.modified;
            self.refine(entry).await?;
            cache.keep(coarse, entry);
        }
        Ok(entries)
    }

    /// Replaces LIST's imprecise time (and a symlink's own size) with MDTM/SIZE.
    async fn refine(&mut self, entry: &mut RemoteEntry) -> Result<()> {
        if self.capabilities.mdtm {
            match self.stream.mdtm(&entry.path).await {
                Ok(time) => {
                    entry.modified = system_time(time.and_utc().timestamp()).or(entry.modified);
                    entry.exact = true;
                }
                Err(error) if unsupported(&error) => self.capabilities.mdtm = false,
                // Gone since the listing, or not a plain file: keep the LIST values.
                Err(FtpError::UnexpectedResponse(_) | FtpError::BadResponse) => {}
                Err(source) => return Err(self.stat_error(&entry.path, source)),
            }
        }
        Ok(())
    }

    /// The exact size of a file (`SIZE`).
    ///
    /// # Errors
    ///
    /// [`Error::Stat`]; [`Error::is_not_found`] tells a missing file.
    pub async fn size(&mut self, path: &str) -> Result<u64> {
        let size = self
            .stream
            .size(path)
            .await
            .map_err(|source| self.stat_error(path, source))?;
        Ok(u64::try_from(size).unwrap_or(u64::MAX))
    }

    /// The modification time of a file (`MDTM`, UTC).
    ///
    /// # Errors
    ///
    /// [`Error::Stat`]; [`Error::is_not_found`] tells a missing file.
    pub async fn modified(&mut self, path: &str) -> Result<Option<SystemTime>> {
        let time = self
            .stream
            .mdtm(path)
            .await
            .map_err(|source| self.stat_error(path, source))?;
        Ok(system_time(time.and_utc().timestamp()))
    }

    /// Every file under `dir` (sorted by path), descending into subdirectories
    /// when `recursive`. Directories themselves are not returned. Symbolic links
    /// are listed as files and never followed, so link loops cannot trap the walk.
    ///
    /// # Errors
    ///
    /// The first [`Error::List`] met.
    pub async fn walk(&mut self, dir: &str, recursive: bool) -> Result<Vec<RemoteEntry>> {
        self.walk_cached(dir, recursive, &mut ListingCache::default())
            .await
    }

    /// [`FtpConnection::walk`] with a [`ListingCache`] kept across calls: one listing per
    /// folder, and `MDTM` only for files new or changed since the previous walk. Files
    /// gone from the tree are dropped from `cache`.
    ///
    /// # Errors
    ///
    /// The first [`Error::List`] met (`cache` keeps what it learned).
    pub async fn walk_cached(
        &mut self,
        dir: &str,
        recursive: bool,
        cache: &mut ListingCache,
    ) -> Result<Vec<RemoteEntry>> {
        let options = WalkOptions {
            max_depth: (!recursive).then_some(0),
            skip_unchanged_folders: false,
        };
        self.walk_with(dir, &options, cache, &|_| true).await
    }

    /// [`FtpConnection::walk_cached`] bounded by `options`, listing only what `keep`
    /// accepts: a refused folder is not descended into, a refused file costs no `MDTM`.
    /// Folders and files gone from the tree are dropped from `cache`.
    ///
    /// # Errors
    ///
    /// The first [`Error::List`] met (`cache` keeps what it learned).
    pub async fn walk_with(
        &mut self,
        dir: &str,
        options: &WalkOptions,
        cache: &mut ListingCache,
        keep: &(dyn Fn(&RemoteEntry) -> bool + Sync),
    ) -> Result<Vec<RemoteEntry>> {
        let mut files = Vec::new();
        let mut folders_seen = std::collections::HashSet::new();
        // (folder, depth, its entry in a listing of its parent made this walk)
        let mut pending: Vec<(String, usize, Option<RemoteEntry>)> =
            vec![(dir.to_owned(), 0, None)];
        while let Some((next, depth, fresh)) = pending.pop() {
            let reused = match (&fresh, cache.folders.get(&next)) {
                (Some(entry), Some(cached))
                    if options.skip_unchanged_folders && folder_unchanged(entry, cached) =>
                {
                    Some(cached.entries.clone())
                }
                _ => None,
            };
            let entries = match reused {
                Some(entries) => entries,
                None => {
                    let listed_at = SystemTime::now();
                    let entries = self.list_dir_kept(&next, cache, keep).await?;
                    if options.skip_unchanged_folders {
                        // Subfolders beyond the depth limit are not walked: not kept either.
                        let walked = options.max_depth.is_none_or(|max| depth < max);
                        cache.folders.insert(
                            next.clone(),
                            FolderListing {
                                modified: fresh.as_ref().and_then(|e| e.modified),
                                listed_at,
                                entries: entries
                                    .iter()
                                    .filter(|e| walked || !e.is_dir)
                                    .cloned()
                                    .collect(),
                            },
                        );
                    }
                    entries
                }
            };
            folders_seen.insert(next);
            for entry in entries {
                if entry.is_dir {
                    if options.max_depth.is_none_or(|max| depth < max) {
                        pending.push((entry.path.clone(), depth + 1, Some(entry)));
                    }
                } else {
                    files.push(entry);
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let seen: std::collections::HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        cache.files.retain(|path, _| seen.contains(path.as_str()));
        cache
            .folders
            .retain(|path, _| folders_seen.contains(path.as_str()));
        Ok(files)
    }

    /// Starts downloading `path` (`RETR`) and returns the data connection.
    ///
    /// Read the [`Download`] to its end, then call [`Download::finish`] to close the
    /// data connection and check the server's completion reply: only then is the
    /// download known to be complete. Issue no other command on this connection
    /// while the download is open.
    ///
    /// # Errors
    ///
    /// [`Error::Retrieve`]; [`Error::is_not_found`] (550) for a missing file.
    pub async fn retr_stream(&mut self, path: &str) -> Result<Download> {
        let inner = self
            .stream
            .retr_as_stream(path)
            .await
            .map_err(|source| Error::Retrieve {
                host: self.host.clone(),
                path: path.to_owned(),
                source,
            })?;
        Ok(Download {
            inner,
            host: self.host.clone(),
            path: path.to_owned(),
        })
    }

    /// Checks that the session is alive (`NOOP`).
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] when the server does not answer.
    pub async fn noop(&mut self) -> Result<()> {
        self.stream.noop().await.map_err(|source| Error::Setup {
            host: self.host.clone(),
            step: "NOOP",
            source,
        })
    }

    /// Ends the session politely (`QUIT`).
    ///
    /// # Errors
    ///
    /// [`Error::Quit`]; the connection is closed either way.
    pub async fn quit(mut self) -> Result<()> {
        self.stream.quit().await.map_err(|source| Error::Quit {
            host: self.host.clone(),
            source,
        })
    }

    fn list_error(&self, path: &str, source: FtpError) -> Error {
        Error::List {
            host: self.host.clone(),
            path: path.to_owned(),
            source,
        }
    }

    fn stat_error(&self, path: &str, source: FtpError) -> Error {
        Error::Stat {
            host: self.host.clone(),
            path: path.to_owned(),
            source,
        }
    }
}

/// A download in progress: an [`AsyncRead`] over the FTP data connection.
///
/// Owns no borrow of the [`FtpConnection`] (it can move to another task), but the
/// connection must not be used until [`Download::finish`] has returned. Dropping a
/// download without finishing it aborts the transfer; the connection drains the
/// server's reply before its next command.
pub struct Download {
    inner: TransferStream<AsyncRustlsStream>,
    host: String,
    path: String,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("host", &self.host)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// The remote path being downloaded.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Closes the data connection and reads the server's completion reply (226/250).
    ///
    /// # Errors
    ///
    /// [`Error::Retrieve`] when the server reports a failed transfer (e.g. 426) or
    /// the control connection broke.
    pub async fn finish(self) -> Result<()> {
        let Download { inner, host, path } = self;
        inner
            .finish()
            .await
            .map_err(|source| Error::Retrieve { host, path, source })
    }
}

impl AsyncRead for Download {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(modified: SystemTime, exact: bool) -> RemoteEntry {
        RemoteEntry {
            name: "d1".into(),
            path: "/days/d1".into(),
            size: 0,
            modified: Some(modified),
            is_dir: true,
            exact,
        }
    }

    fn listing(
        modified: SystemTime,
        listed_at: SystemTime,
        entries: Vec<RemoteEntry>,
    ) -> FolderListing {
        FolderListing {
            modified: Some(modified),
            listed_at,
            entries,
        }
    }

    #[test]
    fn a_leaf_folder_is_reused_once_its_time_is_old_enough() {
        let day = Duration::from_secs(24 * 3600);
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let late = t + day + CLOCK_SKEW_ALLOWANCE;
        // LIST times (minute or day precision, maybe local): a day plus the allowance.
        assert!(folder_unchanged(
            &folder(t, false),
            &listing(t, late, vec![])
        ));
        assert!(!folder_unchanged(
            &folder(t, false),
            &listing(t, late - Duration::from_secs(1), vec![])
        ));
        // MLSD times are exact: a second plus the allowance.
        let soon = t + Duration::from_secs(1) + CLOCK_SKEW_ALLOWANCE;
        assert!(folder_unchanged(
            &folder(t, true),
            &listing(t, soon, vec![])
        ));
        // Another time, no time, or a subfolder inside: list again.
        let other = t + Duration::from_secs(60);
        assert!(!folder_unchanged(
            &folder(other, false),
            &listing(t, late, vec![])
        ));
        let mut timeless = folder(t, false);
        timeless.modified = None;
        assert!(!folder_unchanged(&timeless, &listing(t, late, vec![])));
        let sub = folder(t, false);
        assert!(!folder_unchanged(
            &folder(t, false),
            &listing(t, late, vec![sub])
        ));
    }
}
