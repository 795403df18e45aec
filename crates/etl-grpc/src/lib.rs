//! Argo Events generic event source: the gRPC contract and a server helper.
//!
//! This crate owns `proto/generic.proto` (package `generic`, service
//! `Eventing.StartEventSource`), the tonic code generated from it (server *and*
//! client, so tests can talk to a server) and [`serve`], which runs a service on an
//! already bound listener until a shutdown future completes.
//!
//! It deliberately knows nothing about FTP: the polling logic implements
//! [`proto::eventing_server::Eventing`] in `etl-workers` (module `ftp_watch`).

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// Code generated from `proto/generic.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("generic");
}

pub use proto::eventing_client::EventingClient;
pub use proto::eventing_server::{Eventing, EventingServer};
pub use proto::{Event, EventSource};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gRPC server failed while serving `address`.
    #[error("gRPC server on {address} failed")]
    Serve {
        /// The local address the server was bound to.
        address: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl etl_error::Classify for Error {
    fn class(&self) -> etl_error::ErrorClass {
        etl_error::ErrorClass::Retryable
    }
}

/// Serves `service` as `generic.Eventing` on `listener` until `shutdown` completes.
///
/// The listener is bound by the caller (bind `127.0.0.1:0` in tests and read the
/// port from [`TcpListener::local_addr`]). On shutdown, open streams are dropped,
/// which stops the pollers behind them.
///
/// # Errors
///
/// [`Error::Serve`] when the transport fails.
pub async fn serve<S, F>(listener: TcpListener, service: S, shutdown: F) -> Result<()>
where
    S: Eventing,
    F: Future<Output = ()> + Send,
{
    let address = listener
        .local_addr()
        .map_or_else(|_| "unknown address".to_owned(), |a| a.to_string());
    tonic::transport::Server::builder()
        .add_service(EventingServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(|source| Error::Serve { address, source })
}
