//! The object protocols of the workers, over an [`ObjectStore`] (the S3 client, or a test
//! double): convert one object ([`convert`]), aggregate one folder ([`agg`]).
//!
//! - [`store`]: the store trait, implemented for [`etl_s3::Client`];
//! - [`upload`]: streaming upload published whole or not at all, parts sent concurrently;
//! - [`convert`]: plan, pinned read, conversion, conditional publish, bad-input markers;
//! - [`agg`]: settle, list, read, commit `agg.txt` then `agg.json`;
//! - [`ranged`]: a large object read as ranged GETs, a few in flight;
//! - [`probe`]: does the store enforce conditional writes;
//! - [`shutdown`]: the stop request the binaries set on SIGTERM.

pub mod agg;
pub mod convert;
pub mod probe;
pub mod ranged;
pub mod shutdown;
pub mod store;
pub mod upload;

pub use convert::OutputTaken;
pub use store::{Body, ObjectStore, Transfer, list_all};
