//! `ftp-watch`: the Argo Events *generic* event source for FTP.
//!
//! Layout:
//! - [`servers`]: the FTP servers and credentials ftp-watch may use (its own settings);
//! - [`config`]: the YAML config of an event source, validated into settings;
//! - [`filter`]: file name suffix/glob filters (pure);
//! - [`tracker`]: listing diffs, `settle` counting, `new`/`mod` decisions (pure);
//! - [`state`]: the JSON state file that survives restarts;
//! - [`poller`]: the polling loop of one stream (FTP via `etl-ftp`);
//! - [`service`]: the `generic.Eventing` gRPC service (served by `etl-grpc`).
//!
//! The proto, generated code and server plumbing live in `etl-grpc`; FTP sessions
//! and listing parsers in `etl-ftp`. This module only wires them together.

pub mod config;
pub mod filter;
pub mod poller;
pub mod servers;
pub mod service;
pub mod state;
pub mod tracker;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use etl_error::{Classify as _, ExitStatus};

use crate::cli::LogArgs;
use crate::env_vars;
use crate::exit::{Reported, UsageError};
use config::{Environment, Existing, WatchSettings};
use servers::Registry;

const EXAMPLES: &str = "\
Examples:
  # Serve the event source (Argo Events connects to it); the server `default`:
  FTP_HOST=ftp.example.com FTP_USER=etl FTP_PASSWD=secret ftp-watch --listen 0.0.0.0:50051 \\
    --auth-token-file /etc/ftp-watch/auth/token

  # More servers, each with its own credentials:
  ftp-watch --servers servers.yaml
  #   servers:
  #     archive: {host: archive.example.com, port: 21, tls: true, user: etl,
  #               password_file: /etc/ftp-watch/archive/password,
  #               ca_file: /etc/ftp-watch/archive/ca.pem}

  # EventSource config (YAML, in the Argo generic EventSource's `config`):
  #   server: default        # or, as the seed wrote it, host: ftp.example.com
  #   dir: /upload
  #   interval: 30s
  #   suffix: [.csv]
  #   settle: 2
  #   existing: ignore
  #   state: /var/lib/ftp-watch/upload.json

  # Debug a source: print what a first poll would announce, as JSON lines:
  FTP_PASSWD=secret ftp-watch scan --config source.yaml

Events: {\"name\": \"new\"|\"mod\", \"payload\": {\"name\": path relative to dir, \"sz\": bytes,
\"dt\": RFC 3339 modification time, \"path\": full remote path}}.
Config keys: server host port dir passive tls interval recursive depth exclude
skip_unchanged_folders suffix glob settle existing state user (and the seed's szfield, dtfields: accepted, ignored). A config only chooses among the configured servers: a host or port that is not a
configured server's is refused (PERMISSION_DENIED) and never connected to. Credentials come
from FTP_USER / FTP_PASSWD or the servers file only; unknown config keys are refused.
Exit codes: 0 done, 1 remote/transient failure, 2 invalid usage or configuration.";

/// Command line of `ftp-watch`.
#[derive(Debug, Parser)]
#[command(
    name = "ftp-watch",
    version,
    about = "Argo Events generic event source that watches an FTP directory and streams `new`/`mod` events over gRPC.",
    after_help = EXAMPLES
)]
pub struct FtpWatchArgs {
    /// Address to serve `generic.Eventing` on; port 0 picks a free port (printed as `listening on ADDR`).
    #[arg(long, env = env_vars::ETL_LISTEN, default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,
    /// YAML file of further servers: `servers: {NAME: {host, port, tls, ca_file, user, password_file}}`.
    #[arg(long, env = env_vars::FTP_WATCH_SERVERS)]
    pub servers: Option<PathBuf>,
    /// File holding the token every gRPC call must send as `authorization: Bearer <token>`
    /// (Argo's generic EventSource `authSecret`); calls without it get UNAUTHENTICATED.
    #[arg(long, env = env_vars::FTP_WATCH_AUTH_TOKEN_FILE)]
    pub auth_token_file: Option<PathBuf>,
    /// PEM certificate (chain): serve gRPC over TLS (with `--tls-key`).
    #[arg(long, env = env_vars::FTP_WATCH_TLS_CERT, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = env_vars::FTP_WATCH_TLS_KEY, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Subcommand (default: serve).
    #[command(subcommand)]
    pub command: Option<FtpWatchCommand>,
}

/// Subcommands of `ftp-watch`.
#[derive(Debug, Subcommand)]
pub enum FtpWatchCommand {
    /// Poll once and print the events as JSON lines (existing files count as new; settle and state are not used).
    Scan(ScanArgs),
}

/// `ftp-watch scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// YAML file with the event source config (same keys as `EventSource.config`).
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs `ftp-watch`.
///
/// # Errors
///
/// Usage errors (exit 2), bind or FTP failures (classified).
pub async fn run(args: FtpWatchArgs) -> anyhow::Result<ExitStatus> {
    let servers = load_servers(args.servers.as_deref()).await?;
    match args.command {
        Some(FtpWatchCommand::Scan(scan_args)) => scan(&scan_args, &servers).await,
        None => {
            let options = serve_options(&args).await?;
            serve(args.listen, servers, options).await
        }
    }
}

/// The bearer token (and TLS identity) the gRPC server requires.
async fn serve_options(args: &FtpWatchArgs) -> anyhow::Result<etl_grpc::ServeOptions> {
    let mut options = etl_grpc::ServeOptions::default();
    if let Some(path) = &args.auth_token_file {
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            UsageError(format!(
                "cannot read auth token file {}: {e}",
                path.display()
            ))
        })?;
        let token = etl_grpc::BearerToken::new(&text)
            .map_err(|e| UsageError(format!("auth token file {}: {e}", path.display())))?;
        options.token = Some(token);
    } else {
        tracing::warn!(
            "no --auth-token-file: any client that can reach the gRPC port can start event sources"
        );
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |path: &std::path::Path| {
            std::fs::read(path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))
        };
        options.tls = Some(etl_grpc::TlsPem {
            cert: read(cert)?,
            key: read(key)?,
        });
    }
    Ok(options)
}

/// The configured servers: `default` from `FTP_*`, plus the `--servers` file.
async fn load_servers(file: Option<&std::path::Path>) -> anyhow::Result<Registry> {
    let environment = Environment::from_env();
    let mut servers = Registry::from_environment(&environment)
        .map_err(|e| UsageError(format!("FTP settings: {e}")))?;
    if let Some(path) = file {
        let yaml = tokio::fs::read(path)
            .await
            .map_err(|e| UsageError(format!("cannot read servers file {}: {e}", path.display())))?;
        servers
            .add_file(&yaml, &environment, |path| std::fs::read_to_string(path))
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    }
    if servers.is_empty() {
        return Err(
            UsageError("no FTP server configured: set FTP_HOST or --servers".to_owned()).into(),
        );
    }
    Ok(servers)
}

async fn serve(
    listen: SocketAddr,
    servers: Registry,
    options: etl_grpc::ServeOptions,
) -> anyhow::Result<ExitStatus> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr().context("local address")?;
    #[allow(clippy::print_stderr)]
    {
        eprintln!("listening on {bound}");
    }
    tracing::info!(address = %bound, authenticated = options.token.is_some(), tls = options.tls.is_some(), "ftp-watch serving generic.Eventing");
    let service = service::WatchService::new(servers);
    etl_grpc::serve_with(listener, service, options, shutdown_signal()).await?;
    tracing::info!("ftp-watch stopped");
    Ok(ExitStatus::Success)
}

/// Completes on Ctrl-C or SIGTERM (Kubernetes stops pods with SIGTERM).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn scan(args: &ScanArgs, servers: &Registry) -> anyhow::Result<ExitStatus> {
    let yaml = tokio::fs::read(&args.config)
        .await
        .map_err(|e| UsageError(format!("cannot read config {}: {e}", args.config.display())))?;
    let mut settings = WatchSettings::from_yaml(&yaml, servers)
        .map_err(|e| UsageError(format!("{}: {e}", args.config.display())))?;
    settings.existing = Existing::Emit;
    settings.settle = 0;
    let listing = async {
        let mut connection = etl_ftp::connect(&settings.ftp).await?;
        let listing = poller::walk(
            &mut connection,
            &settings,
            &mut etl_ftp::ListingCache::default(),
        )
        .await?;
        let _ = connection.quit().await;
        Ok::<_, etl_ftp::Error>(listing)
    }
    .await
    .map_err(|error| {
        let chain = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        Reported {
            message: chain,
            class: error.class(),
        }
    })?;
    let mut tracker = tracker::Tracker::new(0);
    for announcement in tracker.observe(&listing) {
        let line = serde_json::json!({
            "name": announcement.change.event_name(),
            "payload": poller::payload(&announcement),
        });
        #[allow(clippy::print_stdout)]
        {
            println!("{line}");
        }
    }
    Ok(ExitStatus::Success)
}
