//! One handle for the S3 stores the tests run against: the in-process s3s-fs server or an
//! external one (Garage, named by `ETL_GARAGE_*`) behind a request-recording proxy.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::s3::{ACCESS_KEY, RecordedRequest, S3Server, SECRET_KEY};

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
        let server = S3Server::start()?;
        let bucket = "etlproj";
        server.create_bucket(bucket)?;
        let endpoint = server.endpoint();
        S3Store::new(
            Backend::InProcess(server),
            StoreKind::S3sFs,
            &endpoint,
            "us-east-1",
            ACCESS_KEY,
            SECRET_KEY,
            bucket,
            label,
        )
    }

    /// A fresh in-process s3s-fs server behind a [`RecordingProxy`], as Garage is seen.
    pub fn in_process_behind_proxy(label: &str) -> anyhow::Result<S3Store> {
        let server = S3Server::start()?;
        let bucket = "etlproj";
        server.create_bucket(bucket)?;
        let proxy = RecordingProxy::start(server.address())?;
        let endpoint = proxy.endpoint();
        S3Store::new(
            Backend::Proxied {
                _server: server,
                proxy,
            },
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
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config".to_owned()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
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
        let out = self
            .block(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(body.into()))
                    .send(),
            )
            .with_context(|| format!("PUT {key}"))?;
        Ok(out.e_tag().unwrap_or_default().trim_matches('"').to_owned())
    }

    /// The object's bytes, `None` if it does not exist (or cannot be read).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let out = self
            .block(
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .ok()?;
        self.block(out.body.collect())
            .ok()
            .map(|b| b.into_bytes().to_vec())
    }

    /// The object's ETag (unquoted) from a HEAD.
    pub fn head_etag(&self, key: &str) -> anyhow::Result<String> {
        let out = self
            .block(
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .with_context(|| format!("HEAD {key}"))?;
        Ok(out.e_tag().unwrap_or_default().trim_matches('"').to_owned())
    }

    /// Keys under `prefix` with the ETag the listing gives (empty where it gives none).
    pub fn list(&self, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
        let out = self
            .block(
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .send(),
            )
            .with_context(|| format!("LIST {prefix}"))?;
        Ok(out
            .contents()
            .iter()
            .map(|o| {
                (
                    o.key().unwrap_or_default().to_owned(),
                    o.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                )
            })
            .collect())
    }

    /// Keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.list(prefix)?.into_iter().map(|(key, _)| key).collect())
    }
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
    address: SocketAddr,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
    cut: Arc<Mutex<CutState>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RecordingProxy {
    /// Starts a proxy to `target`.
    pub fn start(target: SocketAddr) -> anyhow::Result<RecordingProxy> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the recording proxy")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let log: Arc<Mutex<Vec<RecordedRequest>>> = Arc::default();
        let cut: Arc<Mutex<CutState>> = Arc::default();
        let (shutdown, stop) = oneshot::channel();
        let thread_log = log.clone();
        let thread_cut = cut.clone();
        let thread = std::thread::Builder::new()
            .name("recording-proxy".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(accept_loop(listener, target, thread_log, thread_cut, stop));
            })?;
        Ok(RecordingProxy {
            address,
            log,
            cut,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request forwarded so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forgets the requests forwarded so far.
    pub fn clear_requests(&self) {
        if let Ok(mut log) = self.log.lock() {
            log.clear();
        }
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

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    target: SocketAddr,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
    cut: Arc<Mutex<CutState>>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                tokio::spawn(forward_connection(client, target, log.clone(), cut.clone()));
            }
        }
    }
}

/// One client connection ↔ one server connection, request by request.
async fn forward_connection(
    client: tokio::net::TcpStream,
    target: SocketAddr,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
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
            let recorded = RecordedRequest {
                method: request.method().to_string(),
                path: request.uri().path().to_owned(),
                query: request.uri().query().unwrap_or_default().to_owned(),
                range: request
                    .headers()
                    .get(http::header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                if_match: request
                    .headers()
                    .get(http::header::IF_MATCH)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            };
            let name = format!("{} {}", recorded.method, recorded.path);
            if let Ok(mut log) = log.lock() {
                log.push(recorded);
            }
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
