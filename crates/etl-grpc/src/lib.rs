//! Argo Events generic event source: the gRPC contract and a server helper.
//!
//! This crate owns `proto/generic.proto` (package `generic`, service
//! `Eventing.StartEventSource`), the tonic code generated from it (server *and*
//! client, so tests can talk to a server) and [`serve`], which runs a service on an
//! already bound listener until a shutdown future completes, refusing streams without
//! the configured [`BearerToken`].
//!
//! It deliberately knows nothing about FTP: the polling logic implements
//! [`proto::eventing_server::Eventing`] in `etl-workers` (module `ftp_watch`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Status;
use tonic::metadata::MetadataMap;

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
    /// The TLS certificate or key cannot be used.
    #[error("gRPC TLS certificate/key")]
    Tls(#[source] tonic::transport::Error),
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

/// The token a client must send as gRPC metadata `authorization: Bearer <token>` (what
/// Argo's generic event source sends when `authSecret` is set).
///
/// Only its SHA-256 is kept; [`Debug`] never shows it.
#[derive(Clone)]
pub struct BearerToken {
    digest: Arc<[u8; 32]>,
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// A token that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the auth token is empty or holds characters other than visible ASCII")]
pub struct InvalidToken;

impl BearerToken {
    /// A token from its text (surrounding whitespace, e.g. a file's newline, removed).
    ///
    /// # Errors
    ///
    /// [`InvalidToken`] when empty or not visible ASCII (it could never be sent as metadata).
    pub fn new(text: &str) -> Result<Self, InvalidToken> {
        let token = text.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidToken);
        }
        Ok(BearerToken {
            digest: Arc::new(Sha256::digest(token.as_bytes()).into()),
        })
    }

    /// Whether `metadata` carries `authorization: Bearer <this token>`. The comparison
    /// is of SHA-256 digests in constant time, so neither the token's bytes nor its
    /// length can be learned from timing.
    ///
    /// # Errors
    ///
    /// [`Status::unauthenticated`] when the header is missing, malformed or wrong.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let Some(value) = metadata.get("authorization") else {
            return Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata",
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| Status::unauthenticated("`authorization` is not `Bearer <token>`"))?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(digest.ct_eq(&*self.digest)) {
            Ok(())
        } else {
            Err(Status::unauthenticated("wrong bearer token"))
        }
    }
}

/// A PEM certificate chain and its private key to serve TLS with ([`Debug`] hides the key).
#[derive(Clone)]
pub struct TlsPem {
    /// Certificate chain (PEM).
    pub cert: Vec<u8>,
    /// Private key (PEM).
    pub key: Vec<u8>,
}

impl fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsPem")
            .field("cert_bytes", &self.cert.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// How [`serve_with`] protects the service.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Refuse every call without this token (`UNAUTHENTICATED`).
    pub token: Option<BearerToken>,
    /// Serve over TLS (rustls, aws-lc-rs) with this identity instead of plain HTTP/2.
    pub tls: Option<TlsPem>,
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl etl_error::Classify for Error {
    fn class(&self) -> etl_error::ErrorClass {
        match self {
            Error::Tls(_) => etl_error::ErrorClass::BadInput,
            Error::Serve { .. } => etl_error::ErrorClass::Retryable,
        }
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
    serve_with(listener, service, ServeOptions::default(), shutdown).await
}

/// [`serve`] with [`ServeOptions`]: with a token, every call lacking it is refused with
/// `UNAUTHENTICATED` before the service sees it; with TLS, only TLS clients are served.
///
/// # Errors
///
/// [`Error::Tls`] for an unusable identity, [`Error::Serve`] when the transport fails.
pub async fn serve_with<S, F>(
    listener: TcpListener,
    service: S,
    options: ServeOptions,
    shutdown: F,
) -> Result<()>
where
    S: Eventing,
    F: Future<Output = ()> + Send,
{
    let address = listener
        .local_addr()
        .map_or_else(|_| "unknown address".to_owned(), |a| a.to_string());
    let token = options.token;
    let guarded = EventingServer::with_interceptor(service, move |request: tonic::Request<()>| {
        if let Some(token) = &token {
            token.check(request.metadata()).inspect_err(|status| {
                tracing::warn!(
                    reason = status.message(),
                    "refused an unauthenticated gRPC call"
                );
            })?;
        }
        Ok(request)
    });
    let mut builder = tonic::transport::Server::builder();
    if let Some(pem) = options.tls {
        let identity = tonic::transport::Identity::from_pem(pem.cert, pem.key);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(Error::Tls)?;
    }
    builder
        .add_service(guarded)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(|source| Error::Serve { address, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: Option<&str>) -> MetadataMap {
        let mut map = MetadataMap::new();
        if let Some(value) = value {
            map.insert("authorization", value.parse().unwrap());
        }
        map
    }

    #[test]
    fn bearer_token_checks() {
        let token = BearerToken::new("s3cret-token\n").unwrap();
        assert!(token.check(&metadata(Some("Bearer s3cret-token"))).is_ok());
        assert!(token.check(&metadata(Some("bearer s3cret-token"))).is_ok());
        for wrong in [
            None,
            Some("Bearer s3cret-tokeN"),
            Some("Bearer s3cret-token2"),
            Some("Bearer "),
            Some("Basic s3cret-token"),
            Some("s3cret-token"),
        ] {
            let status = token.check(&metadata(wrong)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{wrong:?}");
            assert!(!status.message().contains("s3cret"));
        }
        assert!(!format!("{token:?}").contains("s3cret"));
        assert_eq!(BearerToken::new(" \n").unwrap_err(), InvalidToken);
        assert_eq!(BearerToken::new("a b").unwrap_err(), InvalidToken);
    }

    #[test]
    fn tls_key_is_not_printed() {
        let pem = TlsPem {
            cert: b"CERT".to_vec(),
            key: b"-----BEGIN PRIVATE KEY-----".to_vec(),
        };
        assert!(!format!("{pem:?}").contains("PRIVATE"));
        assert!(
            !format!(
                "{:?}",
                ServeOptions {
                    token: None,
                    tls: Some(pem)
                }
            )
            .contains("PRIVATE")
        );
    }
}
