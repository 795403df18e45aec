//! S3 errors: the failed step, the object, and whether retrying may help.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use etl_error::{Classify, ErrorClass};

/// An S3 failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request failed after the SDK's retries.
    #[error("{operation} s3://{bucket}/{key}: {message}")]
    Request {
        /// The S3 operation (`GetObject`, `PutObject`, ...).
        operation: &'static str,
        /// Bucket.
        bucket: String,
        /// Key or prefix.
        key: String,
        /// The SDK's description, error code included.
        message: String,
        /// HTTP status, when a response arrived.
        status: Option<u16>,
        /// S3 error code (`NoSuchKey`, `PreconditionFailed`, ...).
        code: Option<String>,
        /// Whether retrying may help.
        class: ErrorClass,
    },
    /// Reading a response body failed midway.
    #[error("reading s3://{bucket}/{key}: {message}")]
    Body {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// The producer of an upload stopped without finishing; nothing was published.
    #[error("upload of s3://{bucket}/{key} abandoned before completion; nothing was written")]
    Abandoned {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Request { class, .. } => *class,
            Error::Body { .. } | Error::Abandoned { .. } => ErrorClass::Retryable,
        }
    }
}

impl Error {
    /// Wraps an SDK error with the step and object it concerns.
    pub(crate) fn request<E, R>(
        operation: &'static str,
        bucket: &str,
        key: &str,
        error: SdkError<E, R>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HttpStatus + Send + Sync + 'static,
    {
        let status = error.raw_response().map(HttpStatus::status);
        let code = error.code().map(str::to_owned);
        let class = classify(&error, status);
        let message = match (&error, code.as_deref()) {
            (SdkError::ServiceError(service), Some(code)) => match service.err().message() {
                Some(text) => format!("{code}: {text}"),
                None => code.to_owned(),
            },
            (SdkError::ServiceError(_), None) => match status {
                Some(404) => "not found (404)".to_owned(),
                Some(s) => format!("HTTP status {s}"),
                None => source_chain(&error),
            },
            _ => source_chain(&error),
        };
        Error::Request {
            operation,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message,
            status,
            code,
            class,
        }
    }

    /// The object does not exist (404, `NoSuchKey`, `NotFound`).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::Request {
                status: Some(404),
                ..
            }
        ) || matches!(self, Error::Request { code: Some(c), .. } if c == "NoSuchKey" || c == "NotFound")
    }

    /// A conditional write lost its race (412 `PreconditionFailed`, 409 `ConditionalRequestConflict`).
    pub fn is_precondition_failed(&self) -> bool {
        matches!(
            self,
            Error::Request {
                status: Some(412 | 409),
                ..
            }
        )
    }

    /// The server does not support a feature we asked for (501 `NotImplemented`).
    pub fn is_not_implemented(&self) -> bool {
        matches!(
            self,
            Error::Request {
                status: Some(501),
                ..
            }
        )
    }
}

/// The error and its sources as text, without the SDK's debug dumps.
fn source_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Transport faults, throttling and 5xx may pass; a bad request, a missing object or
/// denied access will not.
fn classify<E, R>(error: &SdkError<E, R>, status: Option<u16>) -> ErrorClass {
    match error {
        SdkError::ConstructionFailure(_) => ErrorClass::BadInput,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorClass::Retryable
        }
        SdkError::ServiceError(_) => match status {
            Some(408 | 429) => ErrorClass::Retryable,
            Some(s) if (400..500).contains(&s) => ErrorClass::BadInput,
            _ => ErrorClass::Retryable,
        },
        _ => ErrorClass::Retryable,
    }
}

/// The HTTP status of a raw response, whatever its type.
pub(crate) trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}
