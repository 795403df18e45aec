//! The error type of this crate and its classification.
//!
//! Every failure here is a property of the payload (or of an option string), so
//! every variant is [`ErrorClass::BadInput`]: retrying the same payload cannot help.
//! Messages say what was expected and what was found; where a record is to blame,
//! they name its index.

use etl_error::{Classify, ErrorClass};

/// Why a payload could not be turned into a [`crate::Notification`] or a [`crate::FtpFile`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A layer (the payload itself, a `body`, an SNS `Message`) is not JSON.
    #[error("{what} is not JSON: {message} at line {line} column {column}")]
    ParseJson {
        /// Which layer: `payload`, `body`, `SNS Message`, ...
        what: String,
        /// serde_json's description, without its position.
        message: String,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
    },

    /// A layer that is not JSON text is not base64 of JSON either.
    #[error("{what} is neither JSON nor base64 of JSON: invalid base64 ({message})")]
    DecodeBase64 {
        /// Which layer: `payload`, `body`, ...
        what: String,
        /// The base64 decoder's description.
        message: String,
    },

    /// A layer is valid JSON, but not of a shape this crate knows.
    #[error("expected {expected}, found {found}")]
    UnexpectedShape {
        /// What would have been accepted, and where.
        expected: String,
        /// A short description of what is there instead.
        found: String,
    },

    /// Wrappers nested deeper than [`crate::MAX_DEPTH`].
    #[error(
        "expected at most {limit} nested wrappers (body, Message, JSON or base64 strings), found more"
    )]
    TooDeep {
        /// The limit that was reached.
        limit: usize,
    },

    /// An object-created record lacks a field it cannot do without.
    #[error("record {record} has no {field}")]
    MissingField {
        /// 0-based index of the record in its list.
        record: usize,
        /// Dotted path of the field, e.g. `s3.bucket.name`.
        field: &'static str,
    },

    /// An object-created record has a required field that is empty.
    #[error("record {record} has an empty {field}")]
    EmptyField {
        /// 0-based index of the record in its list.
        record: usize,
        /// Dotted path of the field, e.g. `s3.object.key`.
        field: &'static str,
    },

    /// A record field has the wrong JSON type.
    #[error("record {record}: expected {field} to be {expected}, found {found}")]
    FieldType {
        /// 0-based index of the record in its list.
        record: usize,
        /// Dotted path of the field.
        field: &'static str,
        /// The JSON type that was expected.
        expected: &'static str,
        /// A description of what is there.
        found: String,
    },

    /// A key that must be URL-decoded is not valid `application/x-www-form-urlencoded` text.
    #[error("record {record}: key {key:?} is not valid URL encoding: {reason}")]
    DecodeKey {
        /// 0-based index of the record in its list.
        record: usize,
        /// The key as it appears in the payload.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The generic (FTP) event lacks a usable `name`.
    #[error("FTP event: expected a non-empty string in name, found {found}")]
    FtpName {
        /// A description of what is there.
        found: String,
    },

    /// A field of the generic (FTP) event has the wrong type.
    #[error("FTP event: expected {field} to be {expected}, found {found}")]
    FtpField {
        /// The field: `sz` or `dt`.
        field: &'static str,
        /// The JSON type that was expected.
        expected: &'static str,
        /// A description of what is there.
        found: String,
    },

    /// An unknown `--key-encoding` value.
    #[error("expected a key encoding (auto, raw or url), found {found:?}")]
    UnknownKeyEncoding {
        /// The string that was given.
        found: String,
    },
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
