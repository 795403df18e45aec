//! Streaming upload that publishes the object whole or not at all: one PUT for small
//! outputs, a multipart upload (parts sent concurrently) for large ones, published only
//! after [`Chunk::End`].
//!
//! If the producer stops early, or a check before publishing fails, the multipart upload
//! is aborted.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use etl_s3::{Chunk, Error, PutCondition, PutOutcome, PutRequest, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use crate::store::ObjectStore;

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
pub async fn put_stream<S: ObjectStore>(
    store: &S,
    request: &PutRequest,
    chunks: mpsc::Receiver<Chunk>,
) -> Result<PutOutcome> {
    put_stream_with(store, request, chunks, Publish::default()).await
}

/// [`put_stream`] with a write condition and a check before publishing. A lost condition
/// is an [`Error::is_precondition_failed`] error; a failed check is [`Error::Withheld`].
///
/// Parts go out as they fill, up to the store's [`Transfer::concurrency`] at once; while
/// that many are in flight no more chunks are taken, so memory stays bounded.
///
/// [`Transfer::concurrency`]: crate::store::Transfer::concurrency
pub async fn put_stream_with<S: ObjectStore>(
    store: &S,
    request: &PutRequest,
    mut chunks: mpsc::Receiver<Chunk>,
    publish: Publish,
) -> Result<PutOutcome> {
    let part_size = store.part_size().max(1);
    let concurrency = store.transfer().concurrency.max(1);
    // The next part, allocated at its exact size: grown by doubling it would reach twice
    // the part size, and each part in flight would hold that much.
    let mut pending = BytesMut::new();
    // A chunk's bytes past a full part, taken before the next chunk.
    let mut spill = Bytes::new();
    let mut multipart: Option<Multipart> = None;
    let mut sending = FuturesUnordered::new();
    let mut ended = false;
    let mut size = 0u64;
    let failure = loop {
        // Start every full part (and, at the end, the last one) there is room for.
        while sending.len() < concurrency
            && (pending.len() >= part_size || (ended && multipart.is_some() && !pending.is_empty()))
        {
            let upload = match multipart.as_mut() {
                Some(upload) => upload,
                None => multipart.insert(Multipart::create(store, request).await?),
            };
            let part = std::mem::take(&mut pending).freeze();
            sending.push(upload.send_part(store, part));
            fill(&mut pending, &mut spill, part_size);
        }
        let room = !ended && pending.len() < part_size;
        tokio::select! {
            biased;
            Some(sent) = sending.next() => match sent {
                Ok(part) => {
                    if let Some(upload) = multipart.as_mut() {
                        upload.parts.push(part);
                    }
                }
                Err(error) => break Some(error),
            },
            chunk = chunks.recv(), if room => match chunk {
                Some(Chunk::Data(data)) => {
                    size += data.len() as u64;
                    spill = data;
                    fill(&mut pending, &mut spill, part_size);
                }
                Some(Chunk::End) => ended = true,
                None => {
                    break Some(Error::Abandoned {
                        bucket: request.bucket.clone(),
                        key: request.key.clone(),
                    });
                }
            },
            else => break None,
        }
    };
    drop(chunks);
    // A part cancelled on our side may still be stored by the server after the abort (S3 says
    // parts in progress "might or might not succeed"), leaving it behind: on failure, let the
    // parts in flight settle before aborting.
    if failure.is_some() {
        while sending.next().await.is_some() {}
    }
    drop(sending);
    if let Some(error) = failure {
        if let Some(upload) = multipart {
            upload.abort(store).await;
        }
        return Err(error);
    }
    if let Some(gate) = publish.gate
        && let Err(reason) = gate().await
    {
        if let Some(upload) = multipart {
            upload.abort(store).await;
        }
        return Err(Error::Withheld {
            bucket: request.bucket.clone(),
            key: request.key.clone(),
            reason,
        });
    }
    match multipart {
        None => {
            let etag = store
                .put(request, pending.freeze(), &publish.condition)
                .await?;
            Ok(PutOutcome {
                etag,
                size,
                parts: 1,
            })
        }
        Some(mut upload) => {
            upload.parts.sort_unstable_by_key(|(number, _)| *number);
            let parts = upload.parts.len() as u32;
            let etag = upload.complete(store, &publish.condition).await?;
            Ok(PutOutcome { etag, size, parts })
        }
    }
}

/// Moves bytes of `spill` into `pending`, up to one part.
fn fill(pending: &mut BytesMut, spill: &mut Bytes, part_size: usize) {
    if spill.is_empty() {
        return;
    }
    if pending.capacity() == 0 {
        *pending = BytesMut::with_capacity(part_size);
    }
    let n = spill.len().min(part_size.saturating_sub(pending.len()));
    pending.extend_from_slice(&spill.split_to(n));
}

struct Multipart {
    bucket: String,
    key: String,
    upload_id: String,
    /// Parts started so far (the last part's number).
    started: u32,
    /// Parts stored: number and ETag.
    parts: Vec<(u32, String)>,
}

impl Multipart {
    async fn create<S: ObjectStore>(store: &S, request: &PutRequest) -> Result<Multipart> {
        Ok(Multipart {
            bucket: request.bucket.clone(),
            key: request.key.clone(),
            upload_id: store.create_multipart(request).await?,
            started: 0,
            parts: Vec::new(),
        })
    }

    /// The next part's upload, owning what it needs so that several run at once; returns
    /// its number and ETag.
    fn send_part<S: ObjectStore>(
        &mut self,
        store: &S,
        data: Bytes,
    ) -> impl Future<Output = Result<(u32, String)>> + Send + 'static {
        self.started += 1;
        let number = self.started;
        let (store, bucket, key, upload_id) = (
            store.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.upload_id.clone(),
        );
        async move {
            let etag = store
                .upload_part(&bucket, &key, &upload_id, number, data)
                .await?;
            Ok((number, etag))
        }
    }

    async fn complete<S: ObjectStore>(self, store: &S, condition: &PutCondition) -> Result<String> {
        let result = store
            .complete_multipart(
                &self.bucket,
                &self.key,
                &self.upload_id,
                &self.parts,
                condition,
            )
            .await;
        if result.is_err() {
            self.abort(store).await;
        }
        result
    }

    /// Best effort: a failed abort leaves parts that a bucket lifecycle rule cleans up,
    /// never a visible object.
    async fn abort<S: ObjectStore>(&self, store: &S) {
        if let Err(error) = store
            .abort_multipart(&self.bucket, &self.key, &self.upload_id)
            .await
        {
            tracing::warn!(bucket = %self.bucket, key = %self.key, %error, "aborting the multipart upload failed");
        }
    }
}
