//! Graceful stop on SIGTERM (eviction, scale-down, rollout) or SIGINT: no new object is
//! started, conversions in flight are interrupted (their uploads aborted), what finished is
//! reported; a second signal exits at once.

use etl_error::ExitStatus;
pub use etl_protocol::shutdown::{interrupted, requested};

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
                if etl_protocol::shutdown::request() {
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
