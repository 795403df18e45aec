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
    /// The source changed while it was being converted: the upload was withheld and
    /// nothing was published.
    #[error("upload of s3://{bucket}/{key} withheld: {reason}; nothing was written")]
    Withheld {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why (which version changed).
        reason: String,
    },
    /// The S3 settings cannot work (a malformed endpoint, no credentials anywhere in the
    /// chain): retrying will not help.
    #[error("{0}")]
    Config(String),
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
            Error::Body { .. } | Error::Abandoned { .. } | Error::Withheld { .. } => {
                ErrorClass::Retryable
            }
            Error::Config(_) => ErrorClass::BadInput,
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
        if let Some(missing) = missing_credentials(&error) {
            return Error::Config(missing);
        }
        let status = error.raw_response().map(HttpStatus::status);
        let code = error.code().map(str::to_owned);
        let class = classify(&error, status, code.as_deref());
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

    /// A response for another version than the one pinned (a server that ignores
    /// `If-Match` on GET): the same as a 412.
    pub(crate) fn changed(
        operation: &'static str,
        bucket: &str,
        key: &str,
        expected: &str,
        got: &str,
    ) -> Error {
        Error::Request {
            operation,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: format!(
                "PreconditionFailed: the object changed (ETag {got}, expected {expected})"
            ),
            status: Some(412),
            code: Some("PreconditionFailed".to_owned()),
            class: ErrorClass::Retryable,
        }
    }

    /// The object does not exist (404, `NoSuchKey`, `NotFound`); a missing bucket is not
    /// a missing object.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Request { code: Some(c), .. } if c == "NoSuchBucket" => false,
            Error::Request { code: Some(c), .. } if c == "NoSuchKey" || c == "NotFound" => true,
            Error::Request { status, .. } => *status == Some(404),
            _ => false,
        }
    }

    /// A conditional request lost its race (412 `PreconditionFailed`, 409
    /// `ConditionalRequestConflict`; not 409 `OperationAborted`, which is retryable).
    pub fn is_precondition_failed(&self) -> bool {
        match self {
            Error::Request { code: Some(c), .. }
                if c == "PreconditionFailed" || c == "ConditionalRequestConflict" =>
            {
                true
            }
            Error::Request { status, .. } => *status == Some(412),
            _ => false,
        }
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

/// S3 error codes that a retry can fix, whatever their HTTP status (`RequestTimeout` is a
/// 400, `OperationAborted` a 409).
const RETRYABLE_CODES: &[&str] = &[
    "RequestTimeout",
    "OperationAborted",
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestTimeTooSkewed",
    "ConditionalRequestConflict",
    "PreconditionFailed",
];

/// S3 error codes that no retry fixes, whatever their HTTP status.
const PERMANENT_CODES: &[&str] = &[
    "AccessDenied",
    "NoSuchBucket",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
    "AllAccessDisabled",
];

/// Transport faults, throttling and 5xx may pass; a bad request, a missing object or
/// denied access will not. The error code decides first, the status second.
pub(crate) fn classify<E, R>(
    error: &SdkError<E, R>,
    status: Option<u16>,
    code: Option<&str>,
) -> ErrorClass {
    match error {
        SdkError::ConstructionFailure(_) => ErrorClass::BadInput,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorClass::Retryable
        }
        SdkError::ServiceError(_) => classify_response(status, code),
        _ => ErrorClass::Retryable,
    }
}

/// The class of an error response from its code and status.
pub fn classify_response(status: Option<u16>, code: Option<&str>) -> ErrorClass {
    match code {
        Some(c) if RETRYABLE_CODES.contains(&c) => return ErrorClass::Retryable,
        Some(c) if PERMANENT_CODES.contains(&c) => return ErrorClass::BadInput,
        _ => {}
    }
    match status {
        // 412: the object changed under a pinned request; a new attempt sees the new version.
        Some(408 | 412 | 429) => ErrorClass::Retryable,
        Some(s) if (400..500).contains(&s) => ErrorClass::BadInput,
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

/// No credentials anywhere in the SDK's chain (or a chain configured wrongly): a setting to
/// fix, not a fault to retry. A provider that timed out or failed stays retryable.
fn missing_credentials(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(credentials) = current.downcast_ref::<CredentialsError>() {
            return match credentials {
                CredentialsError::CredentialsNotLoaded(_)
                | CredentialsError::InvalidConfiguration(_) => Some(format!(
                    "no usable AWS credentials ({}): set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY, a profile, or a web identity (IRSA)",
                    source_chain(credentials)
                )),
                _ => None,
            };
        }
        cause = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_before_statuses() {
        use ErrorClass::*;
        assert_eq!(
            classify_response(Some(400), Some("RequestTimeout")),
            Retryable
        );
        assert_eq!(
            classify_response(Some(409), Some("OperationAborted")),
            Retryable
        );
        assert_eq!(classify_response(Some(503), Some("SlowDown")), Retryable);
        assert_eq!(
            classify_response(Some(500), Some("InternalError")),
            Retryable
        );
        assert_eq!(classify_response(Some(403), Some("AccessDenied")), BadInput);
        assert_eq!(classify_response(Some(404), Some("NoSuchBucket")), BadInput);
        assert_eq!(
            classify_response(Some(403), Some("InvalidAccessKeyId")),
            BadInput
        );
        assert_eq!(
            classify_response(Some(400), Some("InvalidArgument")),
            BadInput
        );
        assert_eq!(classify_response(Some(502), None), Retryable);
    }

    fn request(status: u16, code: &str) -> Error {
        Error::Request {
            operation: "HeadObject",
            bucket: "b".into(),
            key: "k".into(),
            message: code.into(),
            status: Some(status),
            code: Some(code.into()),
            class: classify_response(Some(status), Some(code)),
        }
    }

    #[test]
    fn a_missing_bucket_is_not_a_missing_object() {
        assert!(!request(404, "NoSuchBucket").is_not_found());
        assert!(request(404, "NoSuchKey").is_not_found());
        assert!(request(412, "PreconditionFailed").is_precondition_failed());
        assert!(!request(409, "OperationAborted").is_precondition_failed());
    }
}
