//! S3 edge: client construction from the SDK's own chain, streaming get, atomic put,
//! head and list, with every SDK error classified as retryable or not.
//!
//! Conversion and payload parsing live elsewhere; this crate only moves bytes.

mod client;
mod error;
mod objects;
mod upload;

pub use aws_sdk_s3::Client;
pub use aws_sdk_s3::primitives::ByteStream;
pub use client::{ClientSettings, build_client, client_from_env, sdk_config};
pub use error::classify_response;
pub use error::{Error, Result};
pub use objects::{
    ListedObject, ObjectInfo, PutCondition, delete_object, get_object, get_object_pinned,
    get_range, get_range_pinned, head_object, list_page, list_pages, put_bytes,
};
pub use upload::{
    Chunk, PutOutcome, PutRequest, UploadWriter, abort_multipart, complete_multipart,
    create_multipart, upload_channel, upload_part,
};

/// An ETag without the quotes S3 puts around it (notifications carry it bare).
pub fn bare_etag(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}
