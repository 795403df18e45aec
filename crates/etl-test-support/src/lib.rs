//! In-process S3-compatible and FTP servers on 127.0.0.1 for tests and the local demo.
pub mod ftp;
