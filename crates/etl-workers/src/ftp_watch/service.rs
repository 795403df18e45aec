//! The `generic.Eventing` implementation: each `StartEventSource` call validates
//! its YAML config (bad config: `InvalidArgument`) and starts its own poller
//! behind a channel; the poller stops when the client drops the stream.

use etl_grpc::{Event, EventSource, Eventing};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::config::{Environment, WatchSettings};
use super::poller;

/// Events buffered per stream before the poller waits for the client.
const STREAM_BUFFER: usize = 64;

/// The service: credentials from the environment, one poller per stream.
#[derive(Debug, Clone)]
pub struct WatchService {
    environment: Environment,
}

impl WatchService {
    /// A service that logs in with `environment`'s `FTP_*` values.
    pub fn new(environment: Environment) -> Self {
        WatchService { environment }
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
        let settings =
            WatchSettings::from_yaml(&source.config, &self.environment).map_err(|e| {
                tracing::warn!(source = %source.name, "{e}");
                Status::invalid_argument(format!("event source {:?}: {e}", source.name))
            })?;
        tracing::info!(
            source = %source.name,
            host = %settings.ftp.host,
            port = settings.ftp.port,
            dir = %settings.dir,
            interval = ?settings.interval,
            settle = settings.settle,
            "event source started"
        );
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(poller::run(source.name, settings, sender));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
