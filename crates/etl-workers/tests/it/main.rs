//! Black-box tests: real binaries against real S3-compatible and FTP servers on 127.0.0.1.

mod support;

mod agg;
mod aws_setup;
mod bad_input;
mod conventions;
mod crash;
mod csv_inputs;
mod etl;
mod events;
mod faults;
mod ftp_etl;
mod ftp_scale;
mod ftp_signals;
mod ftp_watch;
mod garage;
mod notify;
mod operating;
mod race;
mod security;
mod signals;
mod sweep;
mod transfer;
