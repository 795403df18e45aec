//! Notification payloads (S3, SNS, SQS, MinIO, EventBridge, generic FTP) to object
//! references; pure.
//!
//! This crate reads the bytes an Argo Events sensor hands a worker and says which
//! objects to process. It does no I/O, no async and no logging: fetching objects is
//! `etl-s3`'s and `etl-ftp`'s job, exit codes are `etl-workers`'.
//!
//! Accepted shapes are detected, and wrappers peeled, automatically (at most
//! [`MAX_DEPTH`] layers):
//! - AWS S3 events `{"Records": [...]}` (URL-encoded keys) and `s3:TestEvent`;
//! - SNS envelopes (`Type` `Notification` with the event in `Message`; the
//!   subscription handshakes mean nothing to do);
//! - Argo event data `{"header", "body"}`, SQS event data `{"messageId", "body"}`,
//!   where `body` is JSON, a JSON string or base64 of JSON;
//! - MinIO listen `{"notification": [...]}` (raw keys) and MinIO target events
//!   `{"EventName", "Key", "Records"}` (URL-encoded keys);
//! - EventBridge `{"detail-type": "Object Created", "detail": {...}}` (raw keys).
//!
//! Only object-created records become [`ObjectRef`]s; the others are listed in
//! [`Notification::skipped`].
//!
//! ```
//! use etl_event::{parse_notification, KeyEncoding};
//!
//! let payload = br#"{"notification": [{"eventName": "s3:ObjectCreated:Put",
//!     "s3": {"bucket": {"name": "etlproj"}, "object": {"key": "input/a+b.csv", "size": 9}}}]}"#;
//! let notification = parse_notification(payload, KeyEncoding::Auto)?;
//! assert_eq!(notification.objects[0].key, "input/a+b.csv");
//! assert_eq!(notification.objects[0].size, Some(9));
//! # Ok::<(), etl_event::Error>(())
//! ```
#![deny(missing_docs)]

mod encoding;
mod error;
mod ftp;
mod layer;
mod notification;

pub use encoding::KeyEncoding;
pub use error::{Error, Result};
pub use notification::MAX_DEPTH;

use serde::{Deserialize, Serialize};

/// One object to process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// The bucket name.
    pub bucket: String,
    /// The object key, decoded according to the [`KeyEncoding`].
    pub key: String,
    /// The object size in bytes, when the notification gives it.
    pub size: Option<u64>,
    /// The ETag as the notification gives it (no quotes for S3), when present.
    pub etag: Option<String>,
    /// The event name as sent: `ObjectCreated:Put`, `s3:ObjectCreated:Put`, `Object Created`.
    pub event_name: String,
}

/// A record that was read but is not to be processed (not object-created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The bucket, when the record names one.
    pub bucket: Option<String>,
    /// The key (decoded when possible), when the record names one.
    pub key: Option<String>,
    /// Why it was skipped, e.g. `eventName ObjectRemoved:Delete is not ObjectCreated:*`.
    pub reason: String,
}

/// What a notification payload asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Object-created records, in payload order.
    pub objects: Vec<ObjectRef>,
    /// Other records, in payload order.
    pub skipped: Vec<Skipped>,
    /// Set when the payload carries no records at all, and says why:
    /// `s3:TestEvent`, `SNS SubscriptionConfirmation`, `empty Records list`, ...
    pub nothing_to_do: Option<String>,
}

/// The file announced by the project's generic (FTP) event source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtpFile {
    /// The remote path, never empty.
    pub name: String,
    /// The size in bytes, when known.
    pub sz: Option<u64>,
    /// The modification time as the FTP server reported it, when known.
    pub dt: Option<String>,
    /// The full remote path, when the event source sends it (`name` is relative to the
    /// watched folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Reads a notification payload (JSON, or base64 of JSON) and lists the objects to process.
///
/// `encoding` decides whether object keys are URL-decoded; [`KeyEncoding::Auto`]
/// follows the source (see [`KeyEncoding`]).
///
/// # Errors
///
/// [`Error`] (always [`etl_error::ErrorClass::BadInput`]) when the payload is not
/// JSON, has no known shape, nests too deeply, or an object-created record lacks its
/// bucket or key or has a key that is not valid URL encoding.
pub fn parse_notification(payload: &[u8], encoding: KeyEncoding) -> Result<Notification> {
    notification::parse(payload, encoding)
}

/// Reads a generic event payload `{"name", "sz", "dt"}`: plain JSON, base64 of JSON,
/// a JSON string, or inside Argo event data `{"body": ...}`.
///
/// # Errors
///
/// [`Error`] (always [`etl_error::ErrorClass::BadInput`]) when the payload is neither
/// JSON nor base64 of JSON, has another shape, or lacks a non-empty `name`.
pub fn parse_ftp_event(payload: &[u8]) -> Result<FtpFile> {
    ftp::parse(payload)
}
