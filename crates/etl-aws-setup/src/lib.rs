//! The AWS side of the S3 flows: the queue (with its dead-letter queue) or topic, their
//! policies and the bucket's notification entry, set up, checked and removed idempotently.
//!
//! [`wanted`] holds the pure logic (names, policies, merging notification configurations,
//! diffs); [`aws`] makes the SDK calls.

pub mod aws;
mod error;
pub mod wanted;

pub use aws::{Clients, Outcome, build_clients, check, delete, setup};
pub use error::{Error, Result};
pub use wanted::{Drift, Via, Wanted};
