//! Errors of the FTP edge, one variant per step, each carrying the host and path.
//!
//! Classification ([`etl_error::Classify`]) lives here because only this crate
//! understands suppaftp's errors: a refused login (530) or a missing file (550) is
//! bad input, everything else (network, timeouts, 4xx replies) is retryable.

use etl_error::{Classify, ErrorClass};
use suppaftp::{FtpError, Status};

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed FTP step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection or the server greeting failed.
    #[error("cannot connect to FTP server {host}:{port}")]
    Connect {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// Cause.
        #[source]
        source: FtpError,
    },
    /// Connecting took longer than the configured timeout.
    #[error("connecting to FTP server {host}:{port} timed out")]
    ConnectTimeout {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// Explicit FTPS (`AUTH TLS`) failed.
    #[error("TLS negotiation with FTP server {host} failed")]
    Tls {
        /// Host name or address.
        host: String,
        /// Cause.
        #[source]
        source: FtpError,
    },
    /// The server answered `AUTH TLS` with a refusal: it does not offer FTPS.
    #[error(
        "FTP server {host}:{port} does not offer TLS (it answered AUTH TLS with {reply:?}); connect without FTPS or enable TLS on the server"
    )]
    TlsRefused {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// The server's reply.
        reply: String,
    },
    /// The server's certificate failed verification.
    #[error(
        "the TLS certificate of FTP server {host}:{port} failed verification ({reason}); for a private CA give its PEM bundle (FTP_CA_FILE or a server's ca_file)"
    )]
    Certificate {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// What rustls said.
        reason: String,
    },
    /// The CA bundle given for FTPS cannot be used.
    #[error("cannot use CA bundle {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The server refused the user or password (the password is never shown).
    #[error("login as {user:?} on FTP server {host} failed")]
    Login {
        /// Host name or address.
        host: String,
        /// User name.
        user: String,
        /// Cause.
        #[source]
        source: FtpError,
    },
    /// A session setup command (e.g. `TYPE I`) failed.
    #[error("FTP session setup ({step}) on {host} failed")]
    Setup {
        /// Host name or address.
        host: String,
        /// The command that failed.
        step: &'static str,
        /// Cause.
        #[source]
        source: FtpError,
    },
    /// Listing a directory failed.
    #[error("cannot list {path} on FTP server {host}")]
    List {
        /// Host name or address.
        host: String,
        /// Remote directory.
        path: String,
        /// Cause.
        #[source]
        source: FtpError,
    },
    /// `SIZE` or `MDTM` of a file failed.
    #[error("cannot stat {path} on FTP server {host}")]
    Stat {
        /// Host name or address.
        host: String,
        /// Remote path.
        path: String,
        /// Cause.
        #[source]
        source: FtpError,
    },
    /// Starting or completing a download (`RETR`) failed.
    #[error("cannot retrieve {path} from FTP server {host}")]
    Retrieve {
        /// Host name or address.
        host: String,
        /// Remote path.
        path: String,
        /// Cause.
        #[source]
        source: FtpError,
    },
    /// Closing the session (`QUIT`) failed.
    #[error("closing the session with FTP server {host} failed")]
    Quit {
        /// Host name or address.
        host: String,
        /// Cause.
        #[source]
        source: FtpError,
    },
}

impl Error {
    /// The suppaftp error behind this one, if any.
    pub fn ftp_error(&self) -> Option<&FtpError> {
        match self {
            Error::Connect { source, .. }
            | Error::Tls { source, .. }
            | Error::Login { source, .. }
            | Error::Setup { source, .. }
            | Error::List { source, .. }
            | Error::Stat { source, .. }
            | Error::Retrieve { source, .. }
            | Error::Quit { source, .. } => Some(source),
            Error::ConnectTimeout { .. }
            | Error::TlsRefused { .. }
            | Error::Certificate { .. }
            | Error::CaFile { .. } => None,
        }
    }

    /// The FTP reply code behind this error, when the server answered.
    pub fn reply_code(&self) -> Option<u32> {
        match self.ftp_error() {
            Some(FtpError::UnexpectedResponse(response)) => Some(response.status.code()),
            _ => None,
        }
    }

    /// Whether the server said the file or directory does not exist (550).
    pub fn is_not_found(&self) -> bool {
        self.reply_code() == Some(Status::FileUnavailable.code())
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            // A refused login will be refused again.
            Error::Login { source, .. } => match source {
                FtpError::UnexpectedResponse(r) if r.status.code() >= 500 => ErrorClass::BadInput,
                _ => ErrorClass::Retryable,
            },
            // A bad certificate or a server without AUTH TLS will not change either.
            Error::TlsRefused { .. } | Error::Certificate { .. } | Error::CaFile { .. } => {
                ErrorClass::BadInput
            }
            Error::Tls {
                source: FtpError::SecureError(_),
                ..
            } => ErrorClass::BadInput,
            _ => match self.reply_code() {
                // 550 not found / no access, 553 bad name, 501 bad argument, 530 not logged in.
                Some(501 | 530 | 550 | 553) => ErrorClass::BadInput,
                _ => ErrorClass::Retryable,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suppaftp::types::Response;

    fn reply(code: u32) -> FtpError {
        FtpError::UnexpectedResponse(Response::new(Status::from(code), b"x".to_vec()))
    }

    #[test]
    fn missing_file_is_bad_input() {
        let error = Error::Retrieve {
            host: "h".into(),
            path: "/a.csv".into(),
            source: reply(550),
        };
        assert!(error.is_not_found());
        assert_eq!(error.class(), ErrorClass::BadInput);
        assert_eq!(
            error.to_string(),
            "cannot retrieve /a.csv from FTP server h"
        );
    }

    #[test]
    fn refused_login_is_bad_input() {
        let error = Error::Login {
            host: "h".into(),
            user: "u".into(),
            source: reply(530),
        };
        assert_eq!(error.class(), ErrorClass::BadInput);
    }

    #[test]
    fn network_and_busy_server_are_retryable() {
        let error = Error::Connect {
            host: "h".into(),
            port: 21,
            source: FtpError::ConnectionError(std::io::ErrorKind::ConnectionRefused.into()),
        };
        assert_eq!(error.class(), ErrorClass::Retryable);
        let error = Error::List {
            host: "h".into(),
            path: "/".into(),
            source: reply(421),
        };
        assert_eq!(error.class(), ErrorClass::Retryable);
    }
}
