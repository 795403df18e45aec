//! Graceful stop on SIGTERM (eviction, scale-down, rollout) or SIGINT: no new object is
//! started, conversions in flight are interrupted (their uploads aborted), what finished is
//! reported; a second signal exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

use etl_error::ExitStatus;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The error a conversion in flight fails with once a stop was requested.
pub fn interrupted() -> std::io::Error {
    // Not `Interrupted`: readers retry that kind forever.
    std::io::Error::other("stopped by a signal before the end; nothing was published")
}

/// Listens for SIGTERM and SIGINT in the background (call inside the runtime).
pub fn listen() {
    tokio::spawn(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if REQUESTED.swap(true, Ordering::Relaxed) {
                    tracing::warn!("second signal: exiting now");
                    std::process::exit(i32::from(ExitStatus::Retryable.code()));
                }
                tracing::warn!(
                    "signal received: starting no new object, interrupting the conversions in flight (a second signal exits at once)"
                );
            }
        }
    });
}
