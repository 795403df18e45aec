//! One handle for the S3 stores the tests run against: the in-process s3s-fs server or an
//! external one (Garage, named by `ETL_GARAGE_*`) behind a request-recording proxy.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::s3::{ACCESS_KEY, RecordedRequest, RequestLog, S3Server, SECRET_KEY, sdk_env};
use crate::server::{ServerThread, bind};

/// The variable that names the external store's endpoint; unset: its tests are skipped.
pub const GARAGE_ENDPOINT: &str = "ETL_GARAGE_ENDPOINT";

/// Which kind of store a handle talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The in-process s3s-fs server.
    S3sFs,
    /// An external Garage (`scripts/garage-start.sh`).
    Garage,
}

enum Backend {
    InProcess(S3Server),
    External(RecordingProxy),
    /// s3s-fs seen through the recording proxy (to check the proxy and the scenarios).
    Proxied {
        _server: S3Server,
        proxy: RecordingProxy,
    },
}

/// A store, its credentials, a client and a key prefix no other test uses.
///
/// Keys of one test live under `input/<run>/` and `output/<run>/` (the default output
/// naming maps the first segment, so the run goes second).
pub struct S3Store {
    backend: Backend,
    kind: StoreKind,
    region: String,
    access_key: String,
    secret_key: String,
    bucket: String,
    run: String,
    client: aws_sdk_s3::Client,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for S3Store {
    fn drop(&mut self) {
        // A test may drop the handle inside its own runtime, where blocking is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn fresh_run(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{label}-{}-{}-{nanos:x}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    )
}

impl S3Store {
    /// A fresh in-process s3s-fs server with bucket `etlproj`.
    pub fn in_process(label: &str) -> anyhow::Result<S3Store> {
        S3Store::local(label, false)
    }

    /// A fresh in-process s3s-fs server behind a [`RecordingProxy`], as Garage is seen.
    pub fn in_process_behind_proxy(label: &str) -> anyhow::Result<S3Store> {
        S3Store::local(label, true)
    }

    /// A fresh s3s-fs server with bucket `etlproj`, seen directly or through the proxy.
    fn local(label: &str, behind_proxy: bool) -> anyhow::Result<S3Store> {
        let server = S3Server::start()?;
        let bucket = "etlproj";
        server.create_bucket(bucket)?;
        let (backend, endpoint) = if behind_proxy {
            let proxy = RecordingProxy::start(server.address())?;
            let endpoint = proxy.endpoint();
            let backend = Backend::Proxied {
                _server: server,
                proxy,
            };
            (backend, endpoint)
        } else {
            let endpoint = server.endpoint();
            (Backend::InProcess(server), endpoint)
        };
        S3Store::new(
            backend,
            StoreKind::S3sFs,
            &endpoint,
            "us-east-1",
            ACCESS_KEY,
            SECRET_KEY,
            bucket,
            label,
        )
    }

    /// The Garage named by `ETL_GARAGE_ENDPOINT`, `ETL_GARAGE_REGION`,
    /// `ETL_GARAGE_ACCESS_KEY_ID`, `ETL_GARAGE_SECRET_ACCESS_KEY` and `ETL_GARAGE_BUCKET`;
    /// `Ok(None)` when the endpoint is unset.
    pub fn garage_from_env(label: &str) -> anyhow::Result<Option<S3Store>> {
        let Ok(endpoint) = std::env::var(GARAGE_ENDPOINT) else {
            return Ok(None);
        };
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is unset"));
        let target: SocketAddr = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("{GARAGE_ENDPOINT}={endpoint}: want http://IP:PORT"))?;
        let proxy = RecordingProxy::start(target)?;
        let proxied = proxy.endpoint();
        S3Store::new(
            Backend::External(proxy),
            StoreKind::Garage,
            &proxied,
            &var("ETL_GARAGE_REGION")?,
            &var("ETL_GARAGE_ACCESS_KEY_ID")?,
            &var("ETL_GARAGE_SECRET_ACCESS_KEY")?,
            &var("ETL_GARAGE_BUCKET")?,
            label,
        )
        .map(Some)
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        backend: Backend,
        kind: StoreKind,
        endpoint: &str,
        region: &str,
        access_key: &str,
        secret_key: &str,
        bucket: &str,
        label: &str,
    ) -> anyhow::Result<S3Store> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("a runtime for the test client")?;
        let credentials =
            aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "test");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .force_path_style(true)
            .build();
        Ok(S3Store {
            backend,
            kind,
            region: region.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            bucket: bucket.to_owned(),
            run: fresh_run(label),
            client: aws_sdk_s3::Client::from_conf(config),
            runtime: Some(runtime),
        })
    }

    /// Which store this is.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The address the binaries talk to (the server, or the recording proxy before Garage):
    /// the target for a [`crate::proxy::FaultProxy`].
    pub fn address(&self) -> SocketAddr {
        match &self.backend {
            Backend::InProcess(server) => server.address(),
            Backend::External(proxy) | Backend::Proxied { proxy, .. } => proxy.address,
        }
    }

    /// `http://ADDRESS` of [`S3Store::address`].
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address())
    }

    /// The bucket every key of this handle lives in.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// This test's own segment: `input/<run>/...`, `output/<run>/...`.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// `input/<run>/<name>`.
    pub fn input(&self, name: &str) -> String {
        format!("input/{}/{name}", self.run)
    }

    /// `output/<run>/<name>`.
    pub fn output(&self, name: &str) -> String {
        format!("output/{}/{name}", self.run)
    }

    /// The client for seeding and checking (its requests are recorded too).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Environment for a binary that should talk to this store through the SDK's chain.
    pub fn env(&self) -> Vec<(String, String)> {
        sdk_env(
            self.endpoint(),
            Some(&self.region),
            &self.access_key,
            &self.secret_key,
        )
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        match &self.backend {
            Backend::InProcess(server) => server.requests(),
            Backend::External(proxy) | Backend::Proxied { proxy, .. } => proxy.requests(),
        }
    }

    /// Hangs the `n`th request from now (stores behind the recording proxy only).
    pub fn cut_at(&self, n: usize, cut: Cut) -> anyhow::Result<()> {
        match &self.backend {
            Backend::InProcess(_) => anyhow::bail!("cut_at needs a store behind the proxy"),
            Backend::External(proxy) | Backend::Proxied { proxy, .. } => {
                proxy.cut_at(n, cut);
                Ok(())
            }
        }
    }

    /// The request cut, once it arrived.
    pub fn cut_hit(&self) -> Option<String> {
        match &self.backend {
            Backend::InProcess(_) => None,
            Backend::External(proxy) | Backend::Proxied { proxy, .. } => proxy.cut_hit(),
        }
    }

    /// Forwards everything again.
    pub fn clear_cut(&self) {
        if let Backend::External(proxy) | Backend::Proxied { proxy, .. } = &self.backend {
            proxy.clear_cut();
        }
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        match &self.backend {
            Backend::InProcess(server) => server.clear_requests(),
            Backend::External(proxy) | Backend::Proxied { proxy, .. } => proxy.clear_requests(),
        }
    }

    /// Runs an S3 call to completion, also from inside an async test.
    pub fn block<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(runtime) = self.runtime.as_ref() else {
            panic!("the store's runtime is gone");
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(
                |scope| match scope.spawn(|| runtime.block_on(future)).join() {
                    Ok(output) => output,
                    Err(panic) => std::panic::resume_unwind(panic),
                },
            )
        } else {
            runtime.block_on(future)
        }
    }

    /// PUTs `body` at `key`; the ETag the store answered (unquoted).
    pub fn put(&self, key: &str, body: impl Into<Vec<u8>>) -> anyhow::Result<String> {
        let request = self.client.put_object().bucket(&self.bucket).key(key);
        let out = self
            .block(request.body(ByteStream::from(body.into())).send())
            .with_context(|| format!("PUT {key}"))?;
        Ok(unquoted(out.e_tag()))
    }

    /// The object's bytes, `None` if it does not exist (or cannot be read).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let request = self.client.get_object().bucket(&self.bucket).key(key);
        let out = self.block(request.send()).ok()?;
        let body = self.block(out.body.collect()).ok()?;
        Some(body.into_bytes().to_vec())
    }

    /// The object's ETag (unquoted) from a HEAD.
    pub fn head_etag(&self, key: &str) -> anyhow::Result<String> {
        let request = self.client.head_object().bucket(&self.bucket).key(key);
        let out = self
            .block(request.send())
            .with_context(|| format!("HEAD {key}"))?;
        Ok(unquoted(out.e_tag()))
    }

    /// Keys under `prefix` with the ETag the listing gives (empty where it gives none).
    pub fn list(&self, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
        let request = self.client.list_objects_v2().bucket(&self.bucket);
        let out = self
            .block(request.prefix(prefix).send())
            .with_context(|| format!("LIST {prefix}"))?;
        Ok(out
            .contents()
            .iter()
            .map(|o| (o.key().unwrap_or_default().to_owned(), unquoted(o.e_tag())))
            .collect())
    }

    /// Keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.list(prefix)?.into_iter().map(|(key, _)| key).collect())
    }
}

/// An ETag as S3 sends it (`"..."`) without its quotes; empty when absent.
fn unquoted(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_owned()
}

/// Where a crash window is cut: the connection of the chosen request hangs (the client
/// process is then killed, as a crash would), before or after the store acted on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The request never reaches the store.
    Before,
    /// The store acts on the request; its reply never reaches the client.
    After,
}

#[derive(Debug, Default)]
struct CutState {
    /// The Nth request (from 0, counted from [`RecordingProxy::cut_at`]) and how.
    at: Option<(usize, Cut)>,
    seen: usize,
    /// `METHOD path` of the request cut.
    hit: Option<String>,
}

/// An HTTP/1.1 proxy on 127.0.0.1 that forwards every request unchanged (the Host header
/// included, so signatures stay valid) and records it; stops when dropped.
pub struct RecordingProxy {
    _thread: ServerThread,
    address: SocketAddr,
    log: RequestLog,
    cut: Arc<Mutex<CutState>>,
}

impl RecordingProxy {
    /// Starts a proxy to `target`.
    pub fn start(target: SocketAddr) -> anyhow::Result<RecordingProxy> {
        let (listener, address) = bind("127.0.0.1:0").context("binding the recording proxy")?;
        let log = RequestLog::default();
        let cut: Arc<Mutex<CutState>> = Arc::default();
        let (thread_log, thread_cut) = (log.clone(), cut.clone());
        let thread = ServerThread::serve("recording-proxy", listener, move |client| {
            forward_connection(client, target, thread_log.clone(), thread_cut.clone())
        })
        .context("starting the recording proxy")?;
        Ok(RecordingProxy {
            _thread: thread,
            address,
            log,
            cut,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request forwarded so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.snapshot()
    }

    /// Forgets the requests forwarded so far.
    pub fn clear_requests(&self) {
        self.log.clear();
    }

    /// Hangs the `n`th request from now (from 0), before or after the store acts on it.
    pub fn cut_at(&self, n: usize, cut: Cut) {
        if let Ok(mut state) = self.cut.lock() {
            *state = CutState {
                at: Some((n, cut)),
                ..CutState::default()
            };
        }
    }

    /// The request cut (`METHOD path`), once it arrived.
    pub fn cut_hit(&self) -> Option<String> {
        self.cut.lock().ok().and_then(|state| state.hit.clone())
    }

    /// Forwards everything again.
    pub fn clear_cut(&self) {
        if let Ok(mut state) = self.cut.lock() {
            *state = CutState::default();
        }
    }
}

/// One client connection ↔ one server connection, request by request.
async fn forward_connection(
    client: tokio::net::TcpStream,
    target: SocketAddr,
    log: RequestLog,
    cut: Arc<Mutex<CutState>>,
) {
    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    let Ok((sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Incoming>(TokioIo::new(server)).await
    else {
        return;
    };
    tokio::spawn(connection);
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let (sender, log, cut) = (sender.clone(), log.clone(), cut.clone());
        async move {
            let recorded = RecordedRequest::of(&request);
            let name = format!("{} {}", recorded.method, recorded.path);
            log.push(recorded);
            let cut_here = match cut.lock() {
                Ok(mut state) => {
                    let index = state.seen;
                    state.seen += 1;
                    match state.at {
                        Some((n, how)) if n == index => {
                            if how == Cut::Before {
                                state.hit = Some(name.clone());
                            }
                            Some(how)
                        }
                        _ => None,
                    }
                }
                Err(_) => None,
            };
            if cut_here == Some(Cut::Before) {
                std::future::pending::<()>().await;
            }
            let mut sender = sender.lock().await;
            sender.ready().await?;
            let response = sender.send_request(request).await;
            if cut_here == Some(Cut::After) {
                // The store acted; take the whole reply, then never deliver it.
                if let Ok(response) = response {
                    let _ = http_body_util::BodyExt::collect(response.into_body()).await;
                }
                if let Ok(mut state) = cut.lock() {
                    state.hit = Some(name);
                }
                return std::future::pending().await;
            }
            response
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(client), service)
        .await;
}
