//! Error classes and exit statuses shared by every crate.
//!
//! Each library error says whether retrying can help ([`ErrorClass`]); the binaries turn
//! that into the exit codes of the design contract ([`ExitStatus`]) so that Argo's
//! `retryStrategy` retries transient failures only.

use std::process::ExitCode;

/// Whether a failure can go away on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Remote or transient: a network fault, a 5xx, a timeout. Retrying may help.
    Retryable,
    /// Invalid usage, configuration, payload or data. Retrying will not help.
    BadInput,
}

/// Implemented by every library error so the edge can pick an exit code.
pub trait Classify {
    /// The class of this failure.
    fn class(&self) -> ErrorClass;
}

impl ErrorClass {
    /// The process exit status for a failure of this class.
    pub fn exit_status(self) -> ExitStatus {
        match self {
            ErrorClass::Retryable => ExitStatus::Retryable,
            ErrorClass::BadInput => ExitStatus::BadInput,
        }
    }

    /// The worse of two classes: bad input outranks a transient failure, because
    /// retrying a run that contains bad input cannot make it succeed.
    pub fn worst(self, other: ErrorClass) -> ErrorClass {
        if self == ErrorClass::BadInput || other == ErrorClass::BadInput {
            ErrorClass::BadInput
        } else {
            ErrorClass::Retryable
        }
    }
}

/// Exit statuses of every binary (design contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `0`: done, or nothing to do.
    Success,
    /// `1`: a remote or transient failure after retries; retrying may help.
    Retryable,
    /// `2`: invalid usage, configuration, payload or data; retrying will not help.
    BadInput,
}

impl ExitStatus {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Retryable => 1,
            ExitStatus::BadInput => 2,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_outranks_retryable() {
        assert_eq!(
            ErrorClass::Retryable.worst(ErrorClass::BadInput),
            ErrorClass::BadInput
        );
        assert_eq!(
            ErrorClass::Retryable.worst(ErrorClass::Retryable),
            ErrorClass::Retryable
        );
        assert_eq!(ErrorClass::BadInput.exit_status().code(), 2);
        assert_eq!(ErrorClass::Retryable.exit_status().code(), 1);
    }
}
