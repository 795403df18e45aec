//! The process-wide stop request (SIGTERM, SIGINT): the binary sets it, conversions in
//! flight see it in their body reader and stop before publishing.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Records a stop request; returns whether one was recorded before.
pub fn request() -> bool {
    REQUESTED.swap(true, Ordering::Relaxed)
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
