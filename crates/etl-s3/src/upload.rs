//! Upload plumbing: a synchronous producer (the converter) writes into an [`UploadWriter`]
//! whose chunks travel over a bounded channel; and the multipart requests, one call each.

use std::collections::HashMap;
use std::io::{self, Write};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::objects::quoted;
use crate::{Error, PutCondition, Result, bare_etag};

/// Bytes the writer gathers before handing them to the uploader.
const CHUNK_SIZE: usize = 1024 * 1024;
/// Chunks in flight between producer and uploader: bounds memory.
const CHANNEL_DEPTH: usize = 4;

/// A message from producer to uploader.
#[derive(Debug)]
pub enum Chunk {
    /// More bytes of the object.
    Data(Bytes),
    /// The producer finished successfully: publish the object.
    End,
}

/// Where and how to store an object.
#[derive(Debug, Clone, Default)]
pub struct PutRequest {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Media type.
    pub content_type: String,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: HashMap<String, String>,
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// ETag without quotes.
    pub etag: String,
    /// Bytes stored.
    pub size: u64,
    /// Number of parts (1 for a single PUT).
    pub parts: u32,
}

/// A channel pair for one upload.
pub fn upload_channel() -> (UploadWriter, mpsc::Receiver<Chunk>) {
    let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
    (
        UploadWriter {
            sender,
            buffer: BytesMut::with_capacity(CHUNK_SIZE),
        },
        receiver,
    )
}

/// The synchronous end of an upload: implements [`Write`]; call from a blocking thread.
pub struct UploadWriter {
    sender: mpsc::Sender<Chunk>,
    buffer: BytesMut,
}

impl UploadWriter {
    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        self.sender
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            let data = self.buffer.split().freeze();
            self.send(Chunk::Data(data))?;
        }
        Ok(())
    }

    /// Sends what is left and tells the uploader to publish the object.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buffer()?;
        self.send(Chunk::End)
    }
}

impl Write for UploadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_SIZE {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts a multipart upload of `request`'s object; returns its upload id.
pub async fn create_multipart(client: &Client, request: &PutRequest) -> Result<String> {
    let out = client
        .create_multipart_upload()
        .bucket(&request.bucket)
        .key(&request.key)
        .content_type(&request.content_type)
        .set_metadata(Some(request.metadata.clone()))
        .send()
        .await
        .map_err(|e| Error::request("CreateMultipartUpload", &request.bucket, &request.key, e))?;
    Ok(out.upload_id().unwrap_or_default().to_owned())
}

/// Sends part `number` (from 1) of an upload; returns the part's ETag as sent by S3.
pub async fn upload_part(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    number: u32,
    data: Bytes,
) -> Result<String> {
    let out = client
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number as i32)
        .body(ByteStream::from(data))
        .send()
        .await
        .map_err(|e| Error::request("UploadPart", bucket, key, e))?;
    Ok(out.e_tag().unwrap_or_default().to_owned())
}

/// Publishes an upload from its parts (number, ETag) under `condition`; returns the
/// object's ETag.
pub async fn complete_multipart(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[(u32, String)],
    condition: &PutCondition,
) -> Result<String> {
    let (if_match, if_none_match) = condition_headers(condition);
    let parts = parts
        .iter()
        .map(|(number, etag)| {
            CompletedPart::builder()
                .part_number(*number as i32)
                .e_tag(etag)
                .build()
        })
        .collect();
    let out = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .set_if_match(if_match)
        .set_if_none_match(if_none_match)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| Error::request("CompleteMultipartUpload", bucket, key, e))?;
    Ok(out.e_tag().map(bare_etag).unwrap_or_default())
}

/// Drops an upload and its parts.
pub async fn abort_multipart(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<()> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map_err(|e| Error::request("AbortMultipartUpload", bucket, key, e))?;
    Ok(())
}

/// `If-Match` / `If-None-Match` header values of a condition.
pub(crate) fn condition_headers(condition: &PutCondition) -> (Option<String>, Option<String>) {
    match condition {
        PutCondition::None => (None, None),
        PutCondition::Absent => (None, Some("*".to_owned())),
        PutCondition::Matches(etag) => (Some(quoted(etag)), None),
    }
}
