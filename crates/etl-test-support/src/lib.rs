//! In-process S3-compatible and FTP servers on 127.0.0.1 for tests and the local demo.
//!
//! Each server runs on its own thread and runtime, listens on an ephemeral port, records
//! what it was asked, and stops when dropped.

pub mod external_s3;
pub mod ftp;
pub mod ftp_count;
pub mod ftp_cut;
pub mod ftp_hold;
mod ftp_lines;
pub mod proxy;
pub mod s3;
mod server;
