//! Errors of the conversion, each classified as bad input or retryable I/O.

use etl_error::{Classify, ErrorClass};

/// A conversion failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input holds no bytes (or only a byte-order mark and blank space).
    #[error("the file is empty")]
    Empty,
    /// A record could not be parsed or does not fit the schema.
    #[error("line {line}: {reason}")]
    BadRecord {
        /// 1-based physical line of the input (header included).
        line: u64,
        /// What was wrong.
        reason: String,
    },
    /// The CSV cannot be read at all (bad UTF-8 in a header, inconsistent options).
    #[error("{0}")]
    BadCsv(String),
    /// `--columns` does not match the file.
    #[error("{given} column names given ({names}) but the file has {found} columns")]
    ColumnCount {
        /// Number of names given.
        given: usize,
        /// The names given, comma-separated.
        names: String,
        /// Fields in the file's first record.
        found: usize,
    },
    /// A value does not fit the type inferred from the sample; the conversion can run
    /// again with the widened schema it carries (an input that cannot be read twice,
    /// such as stdin, reports it as bad input).
    #[error(
        "line {}: column '{}' holds a value that does not fit {} (types are inferred from a sample); it needs {}: pin it with --schema (see --print-schema)",
        .0.line, .0.column, .0.from.name(), .0.to.name()
    )]
    Widened(Box<crate::Widening>),
    /// An invalid option value.
    #[error("{0}")]
    Options(String),
    /// Reading the input failed (network, disk).
    #[error("reading the input failed")]
    Read(#[source] std::io::Error),
    /// Writing or encoding the output failed.
    #[error("writing the output failed: {0}")]
    Write(String),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Read(error)
                if error
                    .get_ref()
                    .is_some_and(|e| e.is::<crate::decompress::CorruptInput>()) =>
            {
                ErrorClass::BadInput
            }
            Error::Read(_) | Error::Write(_) => ErrorClass::Retryable,
            _ => ErrorClass::BadInput,
        }
    }
}

impl Error {
    /// The 1-based input line the error is about, when known.
    pub fn line(&self) -> Option<u64> {
        match self {
            Error::BadRecord { line, .. } => Some(*line),
            Error::Widened(widening) => Some(widening.line),
            _ => None,
        }
    }
}
