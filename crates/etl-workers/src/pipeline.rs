//! Object → converter → object: the protocol lives in [`etl_protocol::convert`]; this
//! module re-exports it for the binaries.

pub use etl_protocol::convert::*;
