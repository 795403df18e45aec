//! A standalone S3-compatible server on a local address, for benchmarks and manual tries.
//!
//! `etl-s3-server ROOT [ADDRESS] [BUCKET...]` serves the directory `ROOT` (one folder per
//! bucket) on `ADDRESS` (default `127.0.0.1:9000`), creates the buckets named, prints the
//! endpoint on the first line of stdout and the credentials to use on the next ones, then
//! runs until killed. The keys are the test server's fixed ones: never expose it.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Parser;
use etl_test_support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};

/// A local S3-compatible server (s3s-fs) for benchmarks and manual tries. Prints the
/// endpoint, then the credentials to use, and runs until killed. Its keys are fixed test
/// keys: never expose it beyond this machine.
#[derive(Debug, Parser)]
#[command(
    name = "etl-s3-server",
    version,
    after_help = "Example:\n  etl-s3-server /tmp/s3 127.0.0.1:9000 etlproj\n  AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \\\n    etl --bucket etlproj --key input/test.csv"
)]
struct Args {
    /// The folder served (one subfolder per bucket); created if missing.
    root: PathBuf,
    /// The address to listen on.
    #[arg(default_value = "127.0.0.1:9000")]
    address: String,
    /// Buckets to create.
    buckets: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = S3Server::start_at(&args.root, &args.address)?;
    for bucket in &args.buckets {
        server.create_bucket(bucket)?;
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", server.endpoint())?;
    writeln!(stdout, "AWS_ACCESS_KEY_ID={ACCESS_KEY}")?;
    writeln!(stdout, "AWS_SECRET_ACCESS_KEY={SECRET_KEY}")?;
    stdout.flush()?;
    drop(stdout);
    loop {
        std::thread::park();
    }
}
