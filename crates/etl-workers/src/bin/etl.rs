//! `etl`: CSV objects or files to Parquet, JSON Lines or CSV. See `etl --help`.

use std::process::ExitCode;

use clap::Parser as _;
use etl_workers::etl::{EtlArgs, run};
use etl_workers::{exit, logging};

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "setup") {
        return etl_workers::setup::main();
    }
    let args = EtlArgs::parse();
    logging::init(args.log.log_format);
    exit::run_main("etl", run(args))
}
