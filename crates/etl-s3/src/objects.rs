//! Single-request object operations: head, get, ranged get, list, small conditional put.

use std::collections::HashMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::{Error, Result, bare_etag};

/// What a HEAD or GET tells about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: Option<String>,
    /// User metadata (`x-amz-meta-*`), keys lower-case.
    pub metadata: HashMap<String, String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// Last modification, seconds since the epoch.
    pub last_modified: Option<i64>,
}

/// HEAD of an object; `Ok(None)` when it does not exist.
pub async fn head_object(client: &Client, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Some(ObjectInfo {
            size: out.content_length().map_or(0, |n| n.max(0) as u64),
            etag: out.e_tag().map(bare_etag),
            metadata: out.metadata().cloned().unwrap_or_default(),
        })),
        Err(e) => {
            let error = Error::request("HeadObject", bucket, key, e);
            if error.is_not_found() {
                Ok(None)
            } else {
                Err(error)
            }
        }
    }
}

/// GET of a whole object as a stream of bytes.
pub async fn get_object(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<(ObjectInfo, ByteStream)> {
    get_object_pinned(client, bucket, key, None).await
}

/// GET of a whole object, pinned to one version with `If-Match` when `etag` is given
/// (a changed object answers 412, see [`Error::is_precondition_failed`]). Some servers
/// ignore `If-Match` on GET: callers compare the returned ETag too.
pub async fn get_object_pinned(
    client: &Client,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<(ObjectInfo, ByteStream)> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_if_match(etag.map(quoted))
        .send()
        .await
        .map_err(|e| Error::request("GetObject", bucket, key, e))?;
    let info = ObjectInfo {
        size: out.content_length().map_or(0, |n| n.max(0) as u64),
        etag: out.e_tag().map(bare_etag),
        metadata: out.metadata().cloned().unwrap_or_default(),
    };
    Ok((info, out.body))
}

/// GET of a byte range (`bytes=start-end` inclusive, or `bytes=-N` for the last N bytes),
/// collected in memory: for footers and column chunks, not whole files.
pub async fn get_range(client: &Client, bucket: &str, key: &str, range: &str) -> Result<Bytes> {
    Ok(get_range_pinned(client, bucket, key, range, None).await?.0)
}

/// [`get_range`] pinned to one version with `If-Match` when `etag` is given; a response
/// carrying another ETag (a server ignoring `If-Match`) is a 412 too. Also returns the
/// response's ETag, to pin the next ranges of the same object.
pub async fn get_range_pinned(
    client: &Client,
    bucket: &str,
    key: &str,
    range: &str,
    etag: Option<&str>,
) -> Result<(Bytes, Option<String>)> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(range)
        .set_if_match(etag.map(quoted))
        .send()
        .await
        .map_err(|e| Error::request("GetObject", bucket, key, e))?;
    if let (Some(expected), Some(got)) = (etag, out.e_tag().map(bare_etag))
        && expected != got
    {
        return Err(Error::changed("GetObject", bucket, key, expected, &got));
    }
    let got = out.e_tag().map(bare_etag);
    let length = out.content_length().map_or(0, |n| n.max(0) as usize);
    let data = gather(out.body, length).await.map_err(|e| Error::Body {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: e.to_string(),
    })?;
    Ok((data, got))
}

/// A body copied frame by frame into one buffer sized by `Content-Length`: each frame is
/// dropped as soon as it is copied, so a range costs its own size once. The SDK's
/// `collect()` keeps every frame (and the read buffers they share) until it makes a second,
/// contiguous copy: twice the range at the end of each GET.
async fn gather(
    mut body: ByteStream,
    length: usize,
) -> std::result::Result<Bytes, aws_sdk_s3::primitives::ByteStreamError> {
    // A wrong Content-Length only costs a reallocation (the caller checks the length);
    // the cap keeps a nonsensical one from failing the allocation.
    let mut data = Vec::with_capacity(length.min(1 << 30));
    while let Some(frame) = body.next().await {
        data.extend_from_slice(&frame?);
    }
    Ok(Bytes::from(data))
}

/// DELETE of an object (absent is fine).
pub async fn delete_object(client: &Client, bucket: &str, key: &str) -> Result<()> {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| Error::request("DeleteObject", bucket, key, e))?;
    Ok(())
}

/// `"etag"`, as conditional headers want it.
pub(crate) fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

/// The objects under `prefix`, page after page (each in key order) as the listing goes:
/// a caller holds one page at a time, whatever the number of objects. `page_keys` asks
/// for smaller pages than S3's 1,000 (tests). The stream ends after an error.
pub fn list_pages(
    client: &Client,
    bucket: &str,
    prefix: &str,
    page_keys: Option<i32>,
) -> impl futures_util::Stream<Item = Result<Vec<ListedObject>>> + Send + 'static {
    let pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .set_max_keys(page_keys)
        .into_paginator()
        .send();
    let (bucket, prefix) = (bucket.to_owned(), prefix.to_owned());
    futures_util::stream::unfold(Some(pages), move |pages| {
        let (bucket, prefix) = (bucket.clone(), prefix.clone());
        async move {
            let mut pages = pages?;
            let page = match pages.next().await? {
                Ok(page) => page,
                Err(e) => {
                    let error = Error::request("ListObjectsV2", &bucket, &prefix, e);
                    return Some((Err(error), None));
                }
            };
            let mut objects: Vec<ListedObject> =
                page.contents().iter().filter_map(listed).collect();
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            Some((Ok(objects), Some(pages)))
        }
    })
}

fn listed(object: &aws_sdk_s3::types::Object) -> Option<ListedObject> {
    Some(ListedObject {
        key: object.key()?.to_owned(),
        size: object.size().map_or(0, |n| n.max(0) as u64),
        etag: object.e_tag().map(bare_etag).unwrap_or_default(),
        last_modified: object.last_modified().map(|t| t.secs()),
    })
}

/// One page of a listing (up to 1,000 keys, in key order) and the token of the next page.
pub async fn list_page(
    client: &Client,
    bucket: &str,
    prefix: &str,
    token: Option<&str>,
) -> Result<(Vec<ListedObject>, Option<String>)> {
    let page = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .set_continuation_token(token.map(str::to_owned))
        .send()
        .await
        .map_err(|e| Error::request("ListObjectsV2", bucket, prefix, e))?;
    let mut objects: Vec<ListedObject> = page.contents().iter().filter_map(listed).collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let next = page
        .next_continuation_token()
        .filter(|_| page.is_truncated() == Some(true))
        .map(str::to_owned);
    Ok((objects, next))
}

/// A condition on a write, so that concurrent writers cannot overwrite each other blindly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PutCondition {
    /// Write unconditionally.
    #[default]
    None,
    /// Write only if the object does not exist (`If-None-Match: *`).
    Absent,
    /// Write only if the object still has this ETag (`If-Match`).
    Matches(String),
}

/// PUT of a small in-memory body (aggregates, sidecars) with an optional condition.
pub async fn put_bytes(
    client: &Client,
    bucket: &str,
    key: &str,
    body: impl Into<Bytes>,
    content_type: &str,
    condition: &PutCondition,
    metadata: &[(String, String)],
) -> Result<String> {
    let mut request = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body.into()));
    for (name, value) in metadata {
        request = request.metadata(name, value);
    }
    let (if_match, if_none_match) = crate::upload::condition_headers(condition);
    request = request
        .set_if_match(if_match)
        .set_if_none_match(if_none_match);
    let out = request
        .send()
        .await
        .map_err(|e| Error::request("PutObject", bucket, key, e))?;
    Ok(out.e_tag().map(bare_etag).unwrap_or_default())
}
