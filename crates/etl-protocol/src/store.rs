//! The object store the protocols run against: the few S3 requests they make, one method
//! each, so that a test double can fail or crash at any one of them.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::OnceLock;

use bytes::Bytes;
use etl_s3::{Client, ListedObject, ObjectInfo, PutCondition, PutRequest, Result};
use tokio::io::AsyncRead;

/// A streamed object body.
pub type Body = Pin<Box<dyn AsyncRead + Send>>;

/// Parts of a multipart upload and ranges of a ranged read (S3's minimum part is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// How large objects move: parts uploaded concurrently, and objects above a size read as
/// ranged GETs, a few in flight. Memory held is about `(concurrency + 1) × part_size` each
/// way, whatever the object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes per upload part and per ranged GET.
    pub part_size: usize,
    /// Parts in flight: uploads, and ranged GETs ahead of the reader (1: one at a time).
    pub concurrency: usize,
    /// Objects larger than this are read with ranged GETs (pinned to their ETag); smaller
    /// ones with one GET.
    pub ranged_read_above: u64,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer {
            part_size: PART_SIZE,
            concurrency: 4,
            ranged_read_above: 64 * 1024 * 1024,
        }
    }
}

static CONFIGURED: OnceLock<Transfer> = OnceLock::new();

impl Transfer {
    /// Makes `self` the settings of the S3 client for the rest of the process (set once,
    /// by a binary at start; later calls are ignored).
    pub fn configure(self) {
        let _ = CONFIGURED.set(self);
    }

    /// The configured settings, or the defaults.
    pub fn configured() -> Transfer {
        CONFIGURED.get().copied().unwrap_or_default()
    }

    /// Whether an object of `size` bytes is read with ranged GETs.
    pub fn ranged(&self, size: u64) -> bool {
        self.concurrency > 1 && size > self.ranged_read_above && size > self.part_size as u64
    }
}

/// An S3-like store. Errors are [`etl_s3::Error`]s, classified by code as S3's are.
pub trait ObjectStore: Clone + Send + Sync + 'static {
    /// HEAD: `Ok(None)` when the object does not exist.
    fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectInfo>>> + Send;

    /// GET of the whole object, pinned with `If-Match` to `etag` when given (412 if it
    /// changed; some servers ignore it, so callers compare the returned ETag too).
    fn get(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> impl Future<Output = Result<(ObjectInfo, Body)>> + Send;

    /// GET of `range` (clipped to the object), pinned like [`ObjectStore::get`]; a response
    /// for another ETag than the pinned one is a 412. Returns the response's ETag.
    fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> impl Future<Output = Result<(Bytes, Option<String>)>> + Send;

    /// One page of the objects under `prefix`, in key order, and the next page's token.
    fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<ListedObject>, Option<String>)>> + Send;

    /// PUT of a whole object under `condition`; returns its ETag.
    fn put(
        &self,
        object: &PutRequest,
        body: Bytes,
        condition: &PutCondition,
    ) -> impl Future<Output = Result<String>> + Send;

    /// Starts a multipart upload; returns its id.
    fn create_multipart(&self, object: &PutRequest) -> impl Future<Output = Result<String>> + Send;

    /// Sends part `number` (from 1); returns the part's ETag.
    fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> impl Future<Output = Result<String>> + Send;

    /// Publishes an upload from its parts under `condition`; returns the object's ETag.
    fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        condition: &PutCondition,
    ) -> impl Future<Output = Result<String>> + Send;

    /// Drops an upload and its parts.
    fn abort_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// DELETE (absent is fine).
    fn delete(&self, bucket: &str, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Part sizes, concurrency and the ranged-read threshold.
    fn transfer(&self) -> Transfer {
        Transfer::configured()
    }

    /// Size of the parts of a multipart upload; outputs up to this size take one PUT.
    fn part_size(&self) -> usize {
        self.transfer().part_size
    }
}

/// Every object under `prefix`, page after page, in key order.
pub async fn list_all<S: ObjectStore>(
    store: &S,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ListedObject>> {
    let mut objects = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = store.list_page(bucket, prefix, token.as_deref()).await?;
        objects.extend(page);
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// The S3 client is the production store.
impl ObjectStore for Client {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        etl_s3::head_object(self, bucket, key).await
    }

    async fn get(&self, bucket: &str, key: &str, etag: Option<&str>) -> Result<(ObjectInfo, Body)> {
        let (info, body) = etl_s3::get_object_pinned(self, bucket, key, etag).await?;
        Ok((info, Box::pin(body.into_async_read())))
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<(Bytes, Option<String>)> {
        let header = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
        etl_s3::get_range_pinned(self, bucket, key, &header, etag).await
    }

    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<(Vec<ListedObject>, Option<String>)> {
        etl_s3::list_page(self, bucket, prefix, token).await
    }

    async fn put(
        &self,
        object: &PutRequest,
        body: Bytes,
        condition: &PutCondition,
    ) -> Result<String> {
        let metadata: Vec<(String, String)> = object
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        etl_s3::put_bytes(
            self,
            &object.bucket,
            &object.key,
            body,
            &object.content_type,
            condition,
            &metadata,
        )
        .await
    }

    async fn create_multipart(&self, object: &PutRequest) -> Result<String> {
        etl_s3::create_multipart(self, object).await
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> Result<String> {
        etl_s3::upload_part(self, bucket, key, upload_id, number, data).await
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        condition: &PutCondition,
    ) -> Result<String> {
        etl_s3::complete_multipart(self, bucket, key, upload_id, parts, condition).await
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        etl_s3::abort_multipart(self, bucket, key, upload_id).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        etl_s3::delete_object(self, bucket, key).await
    }
}
