//! `ftp-watch`: the FTP generic event source for Argo Events. See `ftp-watch --help`.

use std::process::ExitCode;

use clap::Parser as _;
use etl_workers::ftp_watch::{FtpWatchArgs, run};
use etl_workers::{exit, logging};

fn main() -> ExitCode {
    let args = FtpWatchArgs::parse();
    logging::init(args.log.log_format);
    exit::run_main("ftp-watch", run(args))
}
