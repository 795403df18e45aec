//! Errors of the AWS setup: an SDK call that failed (named), or a state we will not touch.

use etl_error::{Classify, ErrorClass};

/// A failure of `etl setup aws`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An SDK call failed; `retryable` tells a transient fault from a refusal.
    #[error("{call}: {message}")]
    Call {
        call: String,
        message: String,
        retryable: bool,
    },
    /// Something we were asked to manage exists but is not ours (no tag of ours).
    #[error("{0}")]
    NotOurs(String),
    /// Invalid arguments or a reply we cannot read.
    #[error("{0}")]
    Invalid(String),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Call {
                retryable: true, ..
            } => ErrorClass::Retryable,
            _ => ErrorClass::BadInput,
        }
    }
}

/// Wraps an SDK error: service refusals (access denied, invalid parameter) are not
/// retryable, transport faults and throttling are.
pub(crate) fn call_error<E>(
    call: &str,
    error: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let (message, retryable) = match &error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = service.raw().status().as_u16();
            let fallback = format!("HTTP {status}, {}", DisplayChain(e));
            let code = e.code().unwrap_or(&fallback);
            let throttled = code.contains("Throttl") || code.contains("SlowDown");
            let message = match e.message() {
                Some(m) => format!("{code}: {m}"),
                None => code.to_owned(),
            };
            (message, throttled || code.contains("Internal"))
        }
        SdkError::ConstructionFailure(_) => (format!("{error:?}"), false),
        other => (format!("{}", DisplayChain(other)), true),
    };
    Error::Call {
        call: call.to_owned(),
        message,
        retryable,
    }
}

struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
