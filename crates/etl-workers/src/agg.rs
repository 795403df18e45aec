//! The `agg` command: the row with the highest value of a column across a day folder's
//! Parquet files, written as `agg.txt` (pandas layout) and `agg.json`.
//!
//! Reads little: one LIST, a footer suffix and one column's chunks per file (range GETs,
//! concurrently), and the winner's row group. Skips everything when `agg.json` already
//! records the same inputs, and never lets an older aggregate overwrite a newer one.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use etl_error::{ErrorClass, ExitStatus};
use etl_event::KeyEncoding;
use etl_protocol::agg::{AggOptions, FolderOutcome, aggregate_folder, subfolders};
use serde_json::json;

use crate::cli::LogArgs;
use crate::exit::{Reported, UsageError, class_of};
use crate::{env_vars, payload, result_dir};

const EXAMPLES: &str = "\
Examples:
  # the day folder of a new Parquet object (the agg flow's event)
  agg --event @notification.json --settle 10s

  # a folder, or the folder of a key
  agg --bucket etlproj --prefix output/20230414/
  agg --bucket etlproj --key output/20230414/3.parquet

  # what would be read and written, without I/O
  agg --event @notification.json --dry-run

Writes <prefix>agg.txt (pandas Series.to_string() of the winning row, with index = the
row's position in its file) and <prefix>agg.json (the row as typed JSON, source key,
files read, input fingerprint). Ties go to the first maximum in key order, then row order (pandas idxmax).
Only *.parquet objects are inputs. An empty folder is nothing to do (exit 0).

Exit codes: 0 done, up to date, superseded or nothing to do; 1 transient failure;
2 invalid usage or a file that cannot be aggregated (named in the message).";

/// The row with the highest value of a column across a folder's Parquet files.
#[derive(Debug, Parser)]
#[command(name = "agg", version, about = "Find the row with the highest value of a column in a folder of Parquet files.", after_help = EXAMPLES)]
pub struct AggArgs {
    /// Bucket of the folder.
    #[arg(long, env = env_vars::ETL_BUCKET)]
    pub bucket: Option<String>,
    /// The folder (key prefix, e.g. output/20230414/; a missing final `/` is added; or
    /// `s3://bucket/prefix`).
    #[arg(long, conflicts_with_all = ["key", "event"])]
    pub prefix: Option<String>,
    /// With --prefix: aggregate every direct subfolder of the prefix (each day folder under
    /// output/) whose inputs changed since its agg.json. Lists the bucket even with --dry-run.
    #[arg(long, requires = "prefix")]
    pub each_folder: bool,
    /// A key whose folder is aggregated (or `s3://bucket/key`, then without --bucket).
    #[arg(long, conflicts_with = "event")]
    pub key: Option<String>,
    /// A notification payload (JSON text, @FILE or -): the folder of each object in it.
    #[arg(long)]
    pub event: Option<String>,
    /// The column to maximise.
    #[arg(long, env = env_vars::ETL_AGG_COLUMN, default_value = "score")]
    pub column: String,
    /// Wait until the folder has had no new or changed Parquet object for this long.
    #[arg(long, env = env_vars::ETL_SETTLE, default_value = "0s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Give up waiting for quiet after this long and aggregate what is there.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub settle_timeout: Duration,
    /// How notification keys are encoded: auto, raw or url.
    #[arg(long, env = env_vars::ETL_KEY_ENCODING, default_value = "auto")]
    pub key_encoding: KeyEncoding,
    /// Aggregate even when agg.json already records the same inputs.
    #[arg(long, env = env_vars::ETL_FORCE, value_parser = clap::builder::BoolishValueParser::new())]
    pub force: bool,
    /// Print the folders and output keys; no I/O.
    #[arg(long)]
    pub dry_run: bool,
    /// Files read concurrently.
    #[arg(long, env = env_vars::ETL_JOBS, default_value_t = 16)]
    pub jobs: usize,
    /// Write Argo output parameters (status, output_key, files, source_key) here.
    #[arg(long, env = env_vars::ETL_RESULT_DIR)]
    pub result_dir: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Runs `agg`.
pub async fn run(mut args: AggArgs) -> anyhow::Result<ExitStatus> {
    result_dir::prepare(args.result_dir.as_deref())?;
    crate::cli::split_s3_uri(&mut args.bucket, &mut args.key)?;
    crate::cli::split_s3_uri(&mut args.bucket, &mut args.prefix)?;
    // `output/20230414` means the folder, as `output/20230414/` does.
    if let Some(prefix) = args.prefix.as_mut()
        && !prefix.is_empty()
        && !prefix.ends_with('/')
    {
        prefix.push('/');
    }
    let mut targets = targets(&args)?;
    let mut client = None;
    if args.each_folder {
        let listing_client = etl_s3::client_from_env().await?;
        targets = subfolders(&listing_client, &targets).await?;
        tracing::info!(folders = targets.len(), "folders with Parquet inputs");
        client = Some(listing_client);
    }
    if args.dry_run {
        let mut stdout = std::io::stdout().lock();
        for (bucket, prefix) in &targets {
            let line = json!({
                "bucket": bucket,
                "prefix": prefix,
                "output_keys": [format!("{prefix}agg.txt"), format!("{prefix}agg.json")],
            });
            writeln!(stdout, "{line}").context("writing to stdout")?;
        }
        return Ok(ExitStatus::Success);
    }
    if targets.is_empty() {
        tracing::info!("nothing to do: no object-created record in the notification");
        return Ok(ExitStatus::Success);
    }
    let client = match client {
        Some(client) => client,
        None => etl_s3::client_from_env().await?,
    };
    let options = AggOptions {
        column: args.column.clone(),
        settle: args.settle,
        settle_timeout: args.settle_timeout,
        force: args.force,
        jobs: args.jobs,
    };
    let mut last = None;
    let mut failures: Vec<(String, anyhow::Error)> = Vec::new();
    let single = targets.len() == 1;
    for (bucket, prefix) in &targets {
        let uri = format!("s3://{bucket}/{prefix}");
        let outcome = match aggregate_folder(&client, bucket, prefix, &options).await {
            Ok(outcome) => outcome,
            // One folder that cannot be aggregated does not stop the others.
            Err(error) => {
                let message = format!("{error:#}");
                tracing::warn!(folder = %uri, error = %message, "failed");
                println!(
                    "{}",
                    json!({"bucket": bucket, "prefix": prefix, "status": "failed", "error": message})
                );
                failures.push((uri, error));
                continue;
            }
        };
        match &outcome {
            FolderOutcome::Written { source_key, files } => {
                tracing::info!(folder = %uri, files, source_key = %source_key, "aggregate written");
            }
            FolderOutcome::UpToDate => {
                tracing::info!(folder = %uri, "up to date: agg.json already records these inputs");
            }
            FolderOutcome::Empty => {
                tracing::warn!(folder = %uri, "no Parquet objects in the folder: nothing to aggregate");
            }
            FolderOutcome::Superseded => {
                tracing::info!(folder = %uri, "superseded: the inputs kept changing; a newer run aggregates them");
            }
        }
        println!(
            "{}",
            json!({"bucket": bucket, "prefix": prefix, "status": status_name(&outcome)})
        );
        last = Some((prefix.clone(), outcome));
    }
    if let (Some(dir), Some((prefix, outcome))) = (&args.result_dir, last) {
        let (source, files) = match &outcome {
            FolderOutcome::Written { source_key, files } => (source_key.clone(), *files),
            _ => (String::new(), 0),
        };
        result_dir::write(
            dir,
            &[
                ("status", status_name(&outcome).to_owned()),
                ("output_key", format!("{prefix}agg.txt")),
                ("source_key", source),
                ("files", files.to_string()),
            ],
        )?;
    }
    if failures.is_empty() {
        return Ok(ExitStatus::Success);
    }
    if single && let Some((_, error)) = failures.pop() {
        return Err(error);
    }
    // Like an etl sweep: a retry helps if any failure was transient.
    let class = if failures
        .iter()
        .any(|(_, e)| class_of(e) == ErrorClass::Retryable)
    {
        ErrorClass::Retryable
    } else {
        ErrorClass::BadInput
    };
    let names: Vec<String> = failures
        .iter()
        .map(|(uri, e)| format!("{uri}: {e:#}"))
        .collect();
    Err(Reported {
        message: format!(
            "{} of {} folders failed: {}",
            failures.len(),
            targets.len(),
            names.join("; ")
        ),
        class,
    }
    .into())
}

fn status_name(outcome: &FolderOutcome) -> &'static str {
    match outcome {
        FolderOutcome::Written { .. } => "written",
        FolderOutcome::UpToDate => "up-to-date",
        FolderOutcome::Empty => "empty",
        FolderOutcome::Superseded => "superseded",
    }
}

/// The (bucket, folder) pairs to aggregate, in order, without repeats.
fn targets(args: &AggArgs) -> anyhow::Result<Vec<(String, String)>> {
    let folder_of = |key: &str| match key.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/"),
        None => String::new(),
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut add = |bucket: String, prefix: String| {
        if seen.insert((bucket.clone(), prefix.clone())) {
            out.push((bucket, prefix));
        }
    };
    if let Some(event) = &args.event {
        let bytes = payload::read_payload(event)?;
        let notification = etl_event::parse_notification(&bytes, args.key_encoding)?;
        for object in notification.objects {
            add(object.bucket, folder_of(&object.key));
        }
    } else if let (Some(bucket), Some(prefix)) = (&args.bucket, &args.prefix) {
        add(bucket.clone(), prefix.clone());
    } else if let (Some(bucket), Some(key)) = (&args.bucket, &args.key) {
        add(bucket.clone(), folder_of(key));
    } else {
        return Err(UsageError(
            "nothing to aggregate: give --bucket with --prefix or --key, or --event (see --help)"
                .into(),
        )
        .into());
    }
    Ok(out)
}
