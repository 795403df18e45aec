//! Library behind the worker binaries `etl`, `agg`, `ftp-etl`, `ftp-watch` and `etl-notify`.
//!
//! Layout:
//! - [`env_vars`]: every environment variable the binaries read, in one place;
//! - [`cli`]: clap argument groups shared by the binaries;
//! - [`logging`], [`exit`]: tracing setup and the mapping of errors to exit codes;
//! - [`naming`]: output keys from input keys (pure);
//! - [`payload`]: reading `--event` arguments;
//! - [`etl`], [`agg`], [`ftp_etl`], [`ftp_watch`], [`notify`]: one module per command.

pub mod agg;
pub mod cli;
pub mod env_vars;
pub mod etl;
pub mod exit;
pub mod ftp_etl;
pub mod ftp_watch;
pub mod logging;
pub mod malloc;
pub mod naming;
pub mod notify;
pub mod payload;
pub mod result_dir;
pub mod setup;
pub mod shutdown;
