//! The `generic.Eventing` implementation: each `StartEventSource` call validates its
//! YAML config against the configured servers (bad config: `InvalidArgument`, another
//! server: `PermissionDenied`, before any connection) and starts its own poller.

use std::sync::Arc;

use etl_grpc::{Event, EventSource, Eventing};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::config::{ConfigError, WatchSettings};
use super::poller;
use super::servers::{ChoiceError, Registry};

/// Events buffered per stream before the poller waits for the client.
const STREAM_BUFFER: usize = 64;

/// The service: the configured servers and their credentials, one poller per stream,
/// one S3 client (built when a source first keeps its state on S3).
#[derive(Debug, Clone)]
pub struct WatchService {
    servers: Arc<Registry>,
    s3: poller::S3Access,
}

impl WatchService {
    /// A service whose streams may only watch `servers`.
    pub fn new(servers: Registry) -> Self {
        WatchService {
            servers: Arc::new(servers),
            s3: poller::S3Access::default(),
        }
    }
}

/// The gRPC status of a refused config.
fn status(source: &str, error: &ConfigError) -> Status {
    let message = format!("event source {source:?}: {error}");
    match error {
        ConfigError::Invalid(_) => Status::invalid_argument(message),
        ConfigError::Denied(ChoiceError::NoServers) => Status::failed_precondition(message),
        ConfigError::Denied(_) => Status::permission_denied(message),
    }
}

#[tonic::async_trait]
impl Eventing for WatchService {
    type StartEventSourceStream = ReceiverStream<Result<Event, Status>>;

    async fn start_event_source(
        &self,
        request: Request<EventSource>,
    ) -> Result<Response<Self::StartEventSourceStream>, Status> {
        let source = request.into_inner();
        let settings = WatchSettings::from_yaml(&source.config, &self.servers).map_err(|e| {
            tracing::warn!(source = %source.name, "{e}");
            status(&source.name, &e)
        })?;
        if !settings.ignored.is_empty() {
            tracing::info!(source = %source.name, keys = ?settings.ignored, "ignoring the seed's LIST column keys: listings are parsed from MLSD/LIST");
        }
        tracing::info!(
            source = %source.name,
            server = %settings.server,
            host = %settings.ftp.host,
            port = settings.ftp.port,
            dir = %settings.dir,
            interval = ?settings.interval,
            settle = settings.settle,
            "event source started"
        );
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(poller::run(
            source.name,
            settings,
            Arc::clone(&self.s3),
            sender,
        ));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
