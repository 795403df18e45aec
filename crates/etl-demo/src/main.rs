//! `etl-demo`: the whole pipeline on this machine, no cloud and no cluster.
//!
//! Starts an S3-compatible server on 127.0.0.1, uploads the seed's files, runs the real
//! `etl` binary once per file with the notification MinIO would send, runs `agg` for the
//! day, and prints what landed in the bucket.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use etl_test_support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const BUCKET: &str = "etlproj";

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    let testdata = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata"));
    let binaries = std::env::current_exe()?
        .parent()
        .context("the demo binary has no folder")?
        .to_path_buf();
    let server = S3Server::start()?;
    server.create_bucket(BUCKET)?;
    println!(
        "S3-compatible server: {} (bucket {BUCKET})",
        server.endpoint()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = client_for(&server);
    let inputs = [
        ("test.csv", "input/test.csv"),
        ("20230414/1.csv", "input/20230414/1.csv"),
        ("20230414/2.csv", "input/20230414/2.csv"),
        ("20230414/3.csv", "input/20230414/3.csv"),
    ];
    for (file, key) in inputs {
        let body = std::fs::read(testdata.join(file)).with_context(|| format!("reading {file}"))?;
        runtime.block_on(
            client
                .put_object()
                .bucket(BUCKET)
                .key(key)
                .body(ByteStream::from(body))
                .send(),
        )?;
        println!("\n$ upload {file} -> s3://{BUCKET}/{key}");
        let event = minio_event(key);
        run(&server, &binaries.join("etl"), &["--event", &event])?;
    }

    let day_event = minio_event("output/20230414/3.parquet");
    println!("\n$ agg for output/20230414/");
    run(&server, &binaries.join("agg"), &["--event", &day_event])?;

    println!("\nObjects in s3://{BUCKET}:");
    let listing = runtime.block_on(client.list_objects_v2().bucket(BUCKET).send())?;
    for object in listing.contents() {
        println!(
            "  {:>6}  {}",
            object.size().unwrap_or(0),
            object.key().unwrap_or("")
        );
    }
    for key in ["output/test.parquet", "output/20230414/1.parquet"] {
        let bytes = get(&runtime, &client, key)?;
        println!("\ns3://{BUCKET}/{key}:");
        print_parquet(bytes)?;
    }
    let agg = get(&runtime, &client, "output/20230414/agg.txt")?;
    println!(
        "\ns3://{BUCKET}/output/20230414/agg.txt:\n{}",
        String::from_utf8_lossy(&agg)
    );
    Ok(())
}

fn client_for(server: &S3Server) -> Client {
    let credentials =
        aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "demo");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(server.endpoint())
        .credentials_provider(credentials)
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

/// The notification Argo's MinIO event source delivers for a new object.
fn minio_event(key: &str) -> String {
    serde_json::json!({"notification": [{
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}
    }]})
    .to_string()
}

#[allow(clippy::print_stdout)]
fn run(server: &S3Server, binary: &Path, args: &[&str]) -> anyhow::Result<()> {
    let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    println!("$ {name} {}", args.join(" "));
    let status = Command::new(binary)
        .args(args)
        .envs(server.env())
        // The test-support env points the SDK's profile files at paths that do not exist
        // (each run would warn four times); an empty file reads as no profile, silently.
        .env("AWS_CONFIG_FILE", os_null())
        .env("AWS_SHARED_CREDENTIALS_FILE", os_null())
        .env("ETL_LOG_FORMAT", "text")
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    if !status.success() {
        bail!("{name} failed: {status}");
    }
    Ok(())
}

/// An existing empty file.
fn os_null() -> &'static str {
    if cfg!(windows) { "NUL" } else { "/dev/null" }
}

fn get(runtime: &tokio::runtime::Runtime, client: &Client, key: &str) -> anyhow::Result<Vec<u8>> {
    let out = runtime
        .block_on(client.get_object().bucket(BUCKET).key(key).send())
        .with_context(|| format!("getting {key}"))?;
    Ok(runtime.block_on(out.body.collect())?.into_bytes().to_vec())
}

#[allow(clippy::print_stdout)]
fn print_parquet(bytes: Vec<u8>) -> anyhow::Result<()> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?;
    let schema = reader.schema().clone();
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    println!("  schema: {}", fields.join(", "));
    let options = FormatOptions::default();
    for batch in reader.build()? {
        let batch = batch?;
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            println!("  {}", cells.join(" | "));
        }
    }
    Ok(())
}
