//! `ftp-etl`: an FTP file to Parquet in S3. See `ftp-etl --help`.

use std::process::ExitCode;

use clap::Parser as _;
use etl_workers::ftp_etl::{FtpEtlArgs, run};
use etl_workers::{exit, logging};

fn main() -> ExitCode {
    let args = FtpEtlArgs::parse();
    logging::init(args.log.log_format);
    exit::run_main("ftp-etl", run(args))
}
