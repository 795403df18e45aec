//! The process-wide stop request (SIGTERM, SIGINT): the binary sets it, conversions in
//! flight see it in their input reader (even one stalled on the network) and at publishing.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Wakes the readers waiting on the network when the stop comes.
static STOP: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

/// Records a stop request; returns whether one was recorded before.
pub fn request() -> bool {
    let before = REQUESTED.swap(true, Ordering::Relaxed);
    STOP.cancel();
    before
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The error a conversion in flight fails with once a stop was requested.
pub fn interrupted() -> std::io::Error {
    // Not `Interrupted`: readers retry that kind forever.
    std::io::Error::other("stopped by a signal before the end; nothing was published")
}

/// A reader that fails with [`interrupted`] once a stop is requested, also while it waits
/// for data that does not come (a stalled transfer).
pub struct StopAware<R> {
    inner: R,
    token: CancellationToken,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<R> StopAware<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> StopAware<R> {
        StopAware::watching(inner, STOP.clone())
    }

    /// Wraps `inner`, stopped by `token` instead of the process-wide request.
    fn watching(inner: R, token: CancellationToken) -> StopAware<R> {
        StopAware {
            inner,
            stop: Box::pin(token.clone().cancelled_owned()),
            token,
        }
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for StopAware<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.token.is_cancelled() {
            return Poll::Ready(Err(interrupted()));
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            // Only a read that has to wait registers for the stop.
            Poll::Pending if this.stop.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(interrupted()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    #[tokio::test]
    async fn a_stop_wakes_a_reader_waiting_for_data() {
        let (_writer, reader) = tokio::io::duplex(64);
        let token = CancellationToken::new();
        let mut reader = StopAware::watching(reader, token.clone());
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            reader.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        assert!(!reading.is_finished());
        token.cancel();
        let error = reading.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), interrupted().to_string());
    }
}
