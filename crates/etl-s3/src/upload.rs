//! Streaming upload that publishes the object whole or not at all.
//!
//! A synchronous producer (the converter) writes into an [`UploadWriter`]; chunks travel
//! over a bounded channel to [`put_stream`], which sends one PUT for small outputs and a
//! multipart upload for large ones. The object appears only when the producer called
//! [`UploadWriter::finish`]; if it stops early, the multipart upload is aborted.

use std::collections::HashMap;
use std::io::{self, Write};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::objects::quoted;
use crate::{Error, PutCondition, Result, bare_etag};

/// Parts of a multipart upload (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;
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

/// A check run right before the object is published (the single PUT or the
/// `CompleteMultipartUpload`): `Err(reason)` withholds the upload.
pub type Gate = Box<
    dyn FnOnce() -> futures_util::future::BoxFuture<'static, std::result::Result<(), String>>
        + Send,
>;

/// How an upload is published: a condition on the write and a last check before it.
#[derive(Default)]
pub struct Publish {
    /// `If-None-Match: *` or `If-Match` on the PUT or `CompleteMultipartUpload`.
    pub condition: PutCondition,
    /// Run just before publishing; a store that ignores conditional writes still gets
    /// this check.
    pub gate: Option<Gate>,
}

/// Uploads what arrives on `chunks`; publishes only after [`Chunk::End`].
pub async fn put_stream(
    client: &Client,
    request: &PutRequest,
    chunks: mpsc::Receiver<Chunk>,
) -> Result<PutOutcome> {
    put_stream_with(client, request, chunks, Publish::default()).await
}

/// [`put_stream`] with a write condition and a check before publishing. A lost condition
/// is an [`Error::is_precondition_failed`] error; a failed check is [`Error::Withheld`].
pub async fn put_stream_with(
    client: &Client,
    request: &PutRequest,
    mut chunks: mpsc::Receiver<Chunk>,
    publish: Publish,
) -> Result<PutOutcome> {
    let mut pending = BytesMut::new();
    let mut multipart: Option<Multipart> = None;
    let mut size = 0u64;
    loop {
        match chunks.recv().await {
            Some(Chunk::Data(data)) => {
                size += data.len() as u64;
                pending.extend_from_slice(&data);
                while pending.len() >= PART_SIZE {
                    let part = pending.split_to(PART_SIZE).freeze();
                    let upload = match multipart.as_mut() {
                        Some(upload) => upload,
                        None => multipart.insert(Multipart::create(client, request).await?),
                    };
                    if let Err(error) = upload.send_part(client, part).await {
                        upload.abort(client).await;
                        return Err(error);
                    }
                }
            }
            Some(Chunk::End) => break,
            None => {
                drop(chunks);
                if let Some(upload) = multipart {
                    upload.abort(client).await;
                }
                return Err(Error::Abandoned {
                    bucket: request.bucket.clone(),
                    key: request.key.clone(),
                });
            }
        }
    }
    drop(chunks);
    if let Some(upload) = multipart.as_mut()
        && !pending.is_empty()
        && let Err(error) = upload.send_part(client, pending.split().freeze()).await
    {
        upload.abort(client).await;
        return Err(error);
    }
    if let Some(gate) = publish.gate
        && let Err(reason) = gate().await
    {
        if let Some(upload) = multipart {
            upload.abort(client).await;
        }
        return Err(Error::Withheld {
            bucket: request.bucket.clone(),
            key: request.key.clone(),
            reason,
        });
    }
    let (if_match, if_none_match) = match &publish.condition {
        PutCondition::None => (None, None),
        PutCondition::Absent => (None, Some("*".to_owned())),
        PutCondition::Matches(etag) => (Some(quoted(etag)), None),
    };
    match multipart {
        None => {
            let out = client
                .put_object()
                .bucket(&request.bucket)
                .key(&request.key)
                .content_type(&request.content_type)
                .set_metadata(Some(request.metadata.clone()))
                .set_if_match(if_match)
                .set_if_none_match(if_none_match)
                .body(ByteStream::from(pending.freeze()))
                .send()
                .await
                .map_err(|e| Error::request("PutObject", &request.bucket, &request.key, e))?;
            Ok(PutOutcome {
                etag: out.e_tag().map(bare_etag).unwrap_or_default(),
                size,
                parts: 1,
            })
        }
        Some(upload) => {
            let parts = upload.parts.len() as u32;
            let etag = upload.complete(client, if_match, if_none_match).await?;
            Ok(PutOutcome { etag, size, parts })
        }
    }
}

struct Multipart {
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl Multipart {
    async fn create(client: &Client, request: &PutRequest) -> Result<Multipart> {
        let out = client
            .create_multipart_upload()
            .bucket(&request.bucket)
            .key(&request.key)
            .content_type(&request.content_type)
            .set_metadata(Some(request.metadata.clone()))
            .send()
            .await
            .map_err(|e| {
                Error::request("CreateMultipartUpload", &request.bucket, &request.key, e)
            })?;
        Ok(Multipart {
            bucket: request.bucket.clone(),
            key: request.key.clone(),
            upload_id: out.upload_id().unwrap_or_default().to_owned(),
            parts: Vec::new(),
        })
    }

    async fn send_part(&mut self, client: &Client, data: Bytes) -> Result<()> {
        let number = self.parts.len() as i32 + 1;
        let out = client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| Error::request("UploadPart", &self.bucket, &self.key, e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    async fn complete(
        self,
        client: &Client,
        if_match: Option<String>,
        if_none_match: Option<String>,
    ) -> Result<String> {
        let result = client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .set_if_match(if_match)
            .set_if_none_match(if_none_match)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.e_tag().map(bare_etag).unwrap_or_default()),
            Err(e) => {
                let error = Error::request("CompleteMultipartUpload", &self.bucket, &self.key, e);
                self.abort(client).await;
                Err(error)
            }
        }
    }

    /// Best effort: a failed abort leaves parts that a bucket lifecycle rule cleans up,
    /// never a visible object.
    async fn abort(&self, client: &Client) {
        let result = client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(error) = result {
            tracing::warn!(bucket = %self.bucket, key = %self.key, error = %aws_sdk_s3::error::DisplayErrorContext(&error), "aborting the multipart upload failed");
        }
    }
}
