//! An S3-compatible server (s3s + s3s-fs) on 127.0.0.1 that logs every request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};

use crate::server::{ServerThread, bind};

/// Access key the server accepts.
pub const ACCESS_KEY: &str = "etl-test-access";
/// Secret key the server accepts (tests check it never reaches a log).
pub const SECRET_KEY: &str = "etl-test-secret-Zq8w3Vx1";

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path (`/bucket/key`, percent-encoded as sent).
    pub path: String,
    /// Query string.
    pub query: String,
    /// `Range` header, if any.
    pub range: Option<String>,
    /// `If-Match` header, if any.
    pub if_match: Option<String>,
}

impl RecordedRequest {
    /// What a server or proxy records of `request`.
    pub(crate) fn of<B>(request: &http::Request<B>) -> RecordedRequest {
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        RecordedRequest {
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().unwrap_or_default().to_owned(),
            range: header(http::header::RANGE),
            if_match: header(http::header::IF_MATCH),
        }
    }

    /// A GET of an object (not a listing: listings have `list-type` in the query).
    pub fn is_object_get(&self) -> bool {
        self.method == "GET"
            && !self.query.contains("list-type")
            && self.path.matches('/').count() >= 2
    }

    /// A PUT of an object or a part.
    pub fn is_put(&self) -> bool {
        self.method == "PUT"
    }
}

/// The requests a server or proxy received, shared with its connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestLog(Arc<Mutex<Vec<RecordedRequest>>>);

impl RequestLog {
    pub(crate) fn push(&self, request: RecordedRequest) {
        if let Ok(mut log) = self.0.lock() {
            log.push(request);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut log) = self.0.lock() {
            log.clear();
        }
    }
}

/// Environment for a process that should talk to `endpoint` through the SDK's chain (and
/// nothing else: no profile, no instance metadata).
pub(crate) fn sdk_env(
    endpoint: String,
    region: Option<&str>,
    access_key: &str,
    secret_key: &str,
) -> Vec<(String, String)> {
    let mut env = vec![("AWS_ENDPOINT_URL", endpoint)];
    env.extend(region.map(|region| ("AWS_REGION", region.to_owned())));
    env.extend([
        ("AWS_ACCESS_KEY_ID", access_key.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", secret_key.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials".to_owned(),
        ),
    ]);
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub use s3s::S3ErrorCode;

/// A refusal the server answers instead of doing an operation (as a bucket policy or a
/// failing store would): `operation` is S3's name (`CreateMultipartUpload`, `GetObject`).
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The operation refused.
    pub operation: String,
    /// Only keys containing this (empty: every key).
    pub key_contains: String,
    /// The error answered (`AccessDenied` is 403, `InternalError` 500, ...).
    pub code: S3ErrorCode,
}

type Refusals = Arc<Mutex<Vec<Refusal>>>;

/// What happens to the Nth request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NthRequest {
    /// It is answered with this error.
    Fail(S3ErrorCode),
    /// It is never answered (a test then kills the client: a crash at that point).
    Hang,
}

/// Requests still to pass before one fails, how it fails, and what it was.
#[derive(Debug, Default)]
struct NthFault {
    countdown: Option<(usize, NthRequest)>,
    failed: Option<String>,
}

/// The access check of the test server: signed requests pass unless a refusal matches.
struct Access {
    refusals: Refusals,
    nth: Arc<Mutex<NthFault>>,
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Access {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3s::s3_error!(AccessDenied, "signature required"));
        }
        let key = match cx.s3_path() {
            s3s::path::S3Path::Object { key, .. } => key.to_string(),
            _ => String::new(),
        };
        let injected = self.nth.lock().ok().and_then(|mut nth| {
            let (countdown, what) = nth.countdown.take()?;
            if countdown == 0 {
                nth.failed = Some(format!("{} {key}", cx.s3_op().name()));
                Some(what)
            } else {
                nth.countdown = Some((countdown - 1, what));
                None
            }
        });
        match injected {
            Some(NthRequest::Fail(code)) => {
                return Err(s3s::S3Error::with_message(code, "injected fault"));
            }
            Some(NthRequest::Hang) => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                return Err(s3s::s3_error!(InternalError, "hung"));
            }
            None => {}
        }
        let refused = self.refusals.lock().ok().and_then(|refusals| {
            refusals
                .iter()
                .find(|r| r.operation == cx.s3_op().name() && key.contains(&r.key_contains))
                .map(|r| r.code.clone())
        });
        match refused {
            Some(code) => Err(s3s::S3Error::with_message(
                code,
                "refused by the test server",
            )),
            None => Ok(()),
        }
    }
}

/// A running server; stops when dropped.
pub struct S3Server {
    // First, so that the server stops before its directory goes.
    _thread: ServerThread,
    address: SocketAddr,
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
    log: RequestLog,
    refusals: Refusals,
    nth: Arc<Mutex<NthFault>>,
}

impl S3Server {
    /// Starts a server over a fresh temporary directory.
    pub fn start() -> anyhow::Result<S3Server> {
        let temp = tempfile::tempdir().context("creating the server's directory")?;
        let root = temp.path().to_path_buf();
        let mut server = S3Server::start_at(&root, "127.0.0.1:0")?;
        server._temp = Some(temp);
        Ok(server)
    }

    /// Starts a server storing objects under `root` (one directory per bucket).
    pub fn start_at(root: &Path, address: &str) -> anyhow::Result<S3Server> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let filesystem = s3s_fs::FileSystem::new(root)
            .map_err(|e| anyhow::anyhow!("s3s-fs over {}: {e:?}", root.display()))?;
        let mut builder = S3ServiceBuilder::new(filesystem);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let refusals: Refusals = Arc::default();
        let nth: Arc<Mutex<NthFault>> = Arc::default();
        builder.set_access(Access {
            refusals: refusals.clone(),
            nth: nth.clone(),
        });
        let recording = Recording {
            inner: builder.build(),
            log: RequestLog::default(),
        };
        let log = recording.log.clone();
        let (listener, address) = bind(address).with_context(|| format!("binding {address}"))?;
        let thread = ServerThread::serve("s3-test-server", listener, move |stream| {
            let service = recording.clone();
            async move {
                let connection = ConnectionBuilder::new(TokioExecutor::new());
                let _ = connection
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        })
        .context("starting the S3 server")?;
        Ok(S3Server {
            _thread: thread,
            address,
            root: root.to_path_buf(),
            _temp: None,
            log,
            refusals,
            nth,
        })
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The directory holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a bucket (a directory for s3s-fs).
    pub fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.root.join(bucket)).context("creating a bucket")
    }

    /// Environment for a process that should talk to this server through the SDK's chain.
    pub fn env(&self) -> Vec<(String, String)> {
        sdk_env(self.endpoint(), None, ACCESS_KEY, SECRET_KEY)
    }

    /// From now on, answers `operation` on keys containing `key_contains` with `code`.
    pub fn refuse(&self, operation: &str, key_contains: &str, code: S3ErrorCode) {
        if let Ok(mut refusals) = self.refusals.lock() {
            refusals.push(Refusal {
                operation: operation.to_owned(),
                key_contains: key_contains.to_owned(),
                code,
            });
        }
    }

    /// Fails the request `n` requests from now (0: the next one) with `code`, once.
    pub fn fail_nth(&self, n: usize, code: S3ErrorCode) {
        self.nth_request(n, NthRequest::Fail(code));
    }

    /// Does `what` to the request `n` requests from now (0: the next one), once.
    pub fn nth_request(&self, n: usize, what: NthRequest) {
        if let Ok(mut nth) = self.nth.lock() {
            *nth = NthFault {
                countdown: Some((n, what)),
                failed: None,
            };
        }
    }

    /// The request the last [`S3Server::fail_nth`] failed (`Operation key`), if it came.
    pub fn failed_request(&self) -> Option<String> {
        self.nth.lock().ok().and_then(|nth| nth.failed.clone())
    }

    /// Forgets every refusal and a pending [`S3Server::fail_nth`].
    pub fn clear_refusals(&self) {
        if let Ok(mut refusals) = self.refusals.lock() {
            refusals.clear();
        }
        if let Ok(mut nth) = self.nth.lock() {
            nth.countdown = None;
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.snapshot()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.log.clear();
    }
}

#[derive(Clone)]
struct Recording {
    inner: S3Service,
    log: RequestLog,
}

impl Service<http::Request<Incoming>> for Recording {
    type Response = <S3Service as Service<http::Request<Incoming>>>::Response;
    type Error = <S3Service as Service<http::Request<Incoming>>>::Error;
    type Future = <S3Service as Service<http::Request<Incoming>>>::Future;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        self.log.push(RecordedRequest::of(&request));
        Service::call(&self.inner, request)
    }
}
