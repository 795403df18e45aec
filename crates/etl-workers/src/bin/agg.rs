//! `agg`: the day's row with the highest score. See `agg --help`.

use std::process::ExitCode;

use clap::Parser as _;
use etl_workers::agg::{AggArgs, run};
use etl_workers::{exit, logging};

fn main() -> ExitCode {
    let args = AggArgs::parse();
    logging::init(args.log.log_format);
    exit::run_main("agg", run(args))
}
