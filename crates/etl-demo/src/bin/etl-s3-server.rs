//! A standalone S3-compatible server on a local address, for benchmarks and manual tries.
//!
//! `etl-s3-server ROOT [ADDRESS] [BUCKET...]` serves the directory `ROOT` (one folder per
//! bucket) on `ADDRESS` (default `127.0.0.1:9000`), creates the buckets named, prints the
//! endpoint on the first line of stdout and the credentials to use on the next ones, then
//! runs until killed. The keys are the test server's fixed ones: never expose it.

use std::io::Write as _;
use std::path::PathBuf;

use etl_test_support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(root) = args.next().filter(|a| a != "--help" && a != "-h") else {
        eprintln!("usage: etl-s3-server ROOT [ADDRESS] [BUCKET...]");
        std::process::exit(2);
    };
    let address = args.next().unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let server = S3Server::start_at(&PathBuf::from(root), &address)?;
    for bucket in args {
        server.create_bucket(&bucket)?;
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
