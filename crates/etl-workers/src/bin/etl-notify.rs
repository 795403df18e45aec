//! `etl-notify`: a workflow's outcome to a Slack-compatible webhook. See `etl-notify --help`.

use std::process::ExitCode;

use clap::Parser as _;
use etl_workers::notify::{NotifyArgs, run};
use etl_workers::{exit, logging};

fn main() -> ExitCode {
    let args = NotifyArgs::parse();
    // The HTTP stack's own lines name the webhook's host: never below info.
    logging::init_capped(
        args.log.log_format,
        &[
            "hyper=info",
            "hyper_util=info",
            "hyper_rustls=info",
            "rustls=info",
            "h2=info",
        ],
    );
    exit::run_main("etl-notify", run(args))
}
