//! A large object read as ranged GETs, a few in flight, reassembled in order into one body;
//! every range is pinned to the object's ETag, so a rewritten source fails, never mixes.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use etl_s3::{Error, ObjectInfo, Result};
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::store::{Body, ObjectStore, Transfer};

/// The first failed range's error, kept for the caller: the body itself can only report an
/// I/O error, and a refused or changed range must keep its S3 class.
#[derive(Debug, Clone, Default)]
pub struct Failure(Arc<Mutex<Option<Error>>>);

impl Failure {
    /// The error of the first range that failed, if one did.
    pub fn take(&self) -> Option<Error> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }

    fn keep(&self, error: Error) -> std::io::Error {
        let io = std::io::Error::other(error.to_string());
        if let Ok(mut slot) = self.0.lock()
            && slot.is_none()
        {
            *slot = Some(error);
        }
        io
    }
}

/// GETs `size` bytes of `key` at version `etag` in ranges of `transfer.part_size`, with up
/// to `transfer.concurrency` ranges in flight ahead of the reader. The first range is
/// awaited here, so a changed object (412) or a refused read fails now, as one GET would;
/// a later range's failure is a read error of the body, its S3 error kept in `failure`.
pub async fn get<S: ObjectStore>(
    store: &S,
    bucket: &str,
    key: &str,
    etag: &str,
    size: u64,
    transfer: Transfer,
    failure: &Failure,
) -> Result<(ObjectInfo, Body)> {
    let part = transfer.part_size.max(1) as u64;
    let ranges = (0..size.div_ceil(part))
        .map(|index| index * part..((index + 1) * part).min(size))
        .collect();
    let mut body = RangedBody {
        fetch: Fetch {
            store: store.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag: etag.to_owned(),
        },
        runtime: Handle::current(),
        ranges,
        in_flight: FuturesOrdered::new(),
        concurrency: transfer.concurrency.max(1),
        current: Bytes::new(),
        failure: failure.clone(),
    };
    body.refill();
    if let Some(first) = body.in_flight.next().await {
        body.current = first.map_err(|e| e.into_inner(bucket, key))??;
    }
    let info = ObjectInfo {
        size,
        etag: Some(etag.to_owned()),
        metadata: Default::default(),
    };
    Ok((info, Box::pin(body)))
}

/// What one ranged GET needs.
struct Fetch<S> {
    store: S,
    bucket: String,
    key: String,
    etag: String,
}

impl<S: ObjectStore> Fetch<S> {
    fn range(&self, range: Range<u64>) -> impl Future<Output = Result<Bytes>> + Send + 'static {
        let (store, bucket, key, etag) = (
            self.store.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.etag.clone(),
        );
        async move {
            let expected = range.end - range.start;
            let (data, _) = store
                .get_range(&bucket, &key, range.clone(), Some(&etag))
                .await?;
            if data.len() as u64 != expected {
                return Err(Error::Body {
                    bucket,
                    key,
                    message: format!(
                        "bytes {}-{} answered {} of {expected} bytes",
                        range.start,
                        range.end - 1,
                        data.len()
                    ),
                });
            }
            Ok(data)
        }
    }
}

/// A spawned ranged GET, cancelled when dropped (the body was dropped before reading it).
struct Part(JoinHandle<Result<Bytes>>);

/// A part's task that did not finish (cancelled or panicked).
struct Stopped(String);

impl Stopped {
    fn into_inner(self, bucket: &str, key: &str) -> Error {
        Error::Body {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: self.0,
        }
    }
}

impl Future for Part {
    type Output = std::result::Result<Result<Bytes>, Stopped>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| joined.map_err(|e| Stopped(format!("a ranged read stopped: {e}"))))
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct RangedBody<S> {
    fetch: Fetch<S>,
    runtime: Handle,
    /// Ranges not requested yet, in order.
    ranges: VecDeque<Range<u64>>,
    /// Requested ranges, answered in order.
    in_flight: FuturesOrdered<Part>,
    concurrency: usize,
    /// The part being read.
    current: Bytes,
    failure: Failure,
}

impl<S: ObjectStore> RangedBody<S> {
    /// Keeps `concurrency` ranges in flight ahead of the reader.
    fn refill(&mut self) {
        while self.in_flight.len() < self.concurrency
            && let Some(range) = self.ranges.pop_front()
        {
            let task = self.runtime.spawn(self.fetch.range(range));
            self.in_flight.push_back(Part(task));
        }
    }
}

// Nothing in the body is pinned structurally: the store is only cloned.
impl<S> Unpin for RangedBody<S> {}

impl<S: ObjectStore> AsyncRead for RangedBody<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.current.is_empty() {
                let n = this.current.len().min(buf.remaining());
                buf.put_slice(&this.current.split_to(n));
                this.refill();
                return Poll::Ready(Ok(()));
            }
            this.refill();
            match this.in_flight.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(Ok(data)))) => this.current = data,
                Poll::Ready(Some(Ok(Err(error)))) => {
                    return Poll::Ready(Err(this.failure.keep(error)));
                }
                Poll::Ready(Some(Err(stopped))) => {
                    let error = stopped.into_inner(&this.fetch.bucket, &this.fetch.key);
                    return Poll::Ready(Err(this.failure.keep(error)));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
