//! Aggregation errors: a corrupt or unsuitable Parquet file is bad input.

use etl_error::{Classify, ErrorClass};

/// An aggregation failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a readable Parquet file.
    #[error("{key}: not a readable Parquet file: {reason}")]
    Corrupt {
        /// Object key.
        key: String,
        /// What the reader said.
        reason: String,
    },
    /// The aggregated column is missing.
    #[error("{key}: no column '{column}' (columns: {columns})")]
    NoColumn {
        /// Object key.
        key: String,
        /// The column asked for.
        column: String,
        /// The columns the file has.
        columns: String,
    },
    /// The aggregated column is not numeric.
    #[error("{key}: column '{column}' is {data_type}, not a number")]
    NotNumeric {
        /// Object key.
        key: String,
        /// The column.
        column: String,
        /// Its type.
        data_type: String,
    },
    /// The caller did not fetch a range the reader needed (a bug, or a file that changed).
    #[error("{key}: bytes {start}..{end} were not fetched")]
    Missing {
        /// Object key.
        key: String,
        /// First byte.
        start: u64,
        /// End (exclusive).
        end: u64,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            // The object may have been replaced between listing and reading.
            Error::Missing { .. } => ErrorClass::Retryable,
            _ => ErrorClass::BadInput,
        }
    }
}
