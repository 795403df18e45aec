//! The `agg` command: the row with the highest value of a column across a day folder's
//! Parquet files, written as `agg.txt` (pandas layout) and `agg.json`.
//!
//! Reads little: one LIST, a footer suffix and one column's chunks per file (range GETs,
//! concurrently), and the winner's row group. Skips everything when `agg.json` already
//! records the same inputs, and never lets an older aggregate overwrite a newer one.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use etl_agg::{AggReport, Candidate, FooterParse, SparseFile};
use etl_error::{ErrorClass, ExitStatus};
use etl_event::KeyEncoding;
use etl_s3::{Client, ListedObject, PutCondition};
use futures_util::StreamExt as _;
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

/// How one folder ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FolderOutcome {
    Written { source_key: String, files: usize },
    UpToDate,
    Empty,
    Superseded,
}

/// Suffix fetched first: the footer of most files (a larger footer costs one more request),
/// or the whole of a small file.
const FOOTER_GUESS: u64 = 16 * 1024;
/// Metadata of `agg.json` naming its layout ([`etl_agg::REPORT_FORMAT`]).
const FORMAT_METADATA: &str = "etl-agg-format";
/// Rounds of list → read → re-list before giving up to a newer run.
const MAX_ROUNDS: usize = 3;

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
    let mut last = None;
    let mut failures: Vec<(String, anyhow::Error)> = Vec::new();
    let single = targets.len() == 1;
    for (bucket, prefix) in &targets {
        let uri = format!("s3://{bucket}/{prefix}");
        let outcome = match aggregate_folder(&client, bucket, prefix, &args).await {
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

/// The direct subfolders of each prefix that hold Parquet inputs.
async fn subfolders(
    client: &Client,
    parents: &[(String, String)],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut folders = Vec::new();
    for (bucket, prefix) in parents {
        let listed = etl_s3::list_objects(client, bucket, prefix).await?;
        let mut seen = BTreeSet::new();
        for object in listed {
            let rest = &object.key[prefix.len().min(object.key.len())..];
            if let Some((folder, name)) = rest.split_once('/')
                && !name.contains('/')
                && name.to_ascii_lowercase().ends_with(".parquet")
            {
                seen.insert(format!("{prefix}{folder}/"));
            }
        }
        folders.extend(seen.into_iter().map(|folder| (bucket.clone(), folder)));
    }
    Ok(folders)
}

fn is_input(prefix: &str, object: &ListedObject) -> bool {
    let name = &object.key[prefix.len().min(object.key.len())..];
    // Direct children only: a day folder's files, not deeper folders.
    !name.contains('/') && name.to_ascii_lowercase().ends_with(".parquet")
}

async fn list_inputs(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<Vec<ListedObject>> {
    let listed = etl_s3::list_objects(client, bucket, prefix).await?;
    Ok(listed.into_iter().filter(|o| is_input(prefix, o)).collect())
}

/// A listing's identity: keys with ETags (or sizes and times where a server lists no ETag).
fn version_of(object: &ListedObject) -> String {
    if object.etag.is_empty() {
        format!(
            "{}@{}",
            object.size,
            object.last_modified.unwrap_or_default()
        )
    } else {
        object.etag.clone()
    }
}

/// The inputs' versions alone (for settling: has the folder changed?).
fn fingerprint_of(inputs: &[ListedObject]) -> String {
    let versions: Vec<(String, String)> = inputs
        .iter()
        .map(|o| (o.key.clone(), version_of(o)))
        .collect();
    etl_agg::fingerprint(versions.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// What `agg.json` records: the inputs' versions and every option that shapes the result
/// (the column, the tool's version). Option lines start with a NUL, which no key has.
fn result_fingerprint(inputs: &[ListedObject], column: &str) -> String {
    let mut entries: Vec<(String, String)> = inputs
        .iter()
        .map(|o| (o.key.clone(), version_of(o)))
        .collect();
    entries.push(("\0column".to_owned(), column.to_owned()));
    entries.push(("\0agg".to_owned(), env!("CARGO_PKG_VERSION").to_owned()));
    etl_agg::fingerprint(entries.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Waits until the listing stays the same for `settle` (bounded by `timeout`).
async fn settle(
    client: &Client,
    bucket: &str,
    prefix: &str,
    settle: Duration,
    timeout: Duration,
) -> anyhow::Result<()> {
    if settle.is_zero() {
        return Ok(());
    }
    let started = Instant::now();
    let poll = (settle / 5).clamp(Duration::from_millis(50), Duration::from_secs(2));
    let mut seen = fingerprint_of(&list_inputs(client, bucket, prefix).await?);
    let mut quiet_since = Instant::now();
    loop {
        if quiet_since.elapsed() >= settle {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            tracing::warn!(
                prefix,
                "the folder kept changing for the whole --settle-timeout; aggregating now"
            );
            return Ok(());
        }
        tokio::time::sleep(poll).await;
        let now = fingerprint_of(&list_inputs(client, bucket, prefix).await?);
        if now != seen {
            tracing::info!(prefix, "inputs changed while settling; waiting for quiet");
            seen = now;
            quiet_since = Instant::now();
        }
    }
}

async fn aggregate_folder(
    client: &Client,
    bucket: &str,
    prefix: &str,
    args: &AggArgs,
) -> anyhow::Result<FolderOutcome> {
    settle(client, bucket, prefix, args.settle, args.settle_timeout).await?;
    let json_key = format!("{prefix}agg.json");
    let txt_key = format!("{prefix}agg.txt");
    let mut inputs = list_inputs(client, bucket, prefix).await?;
    let mut force = args.force;
    for _round in 0..MAX_ROUNDS {
        if inputs.is_empty() {
            return Ok(FolderOutcome::Empty);
        }
        let fingerprint = result_fingerprint(&inputs, &args.column);
        // agg.json is the commit record, written last: when it records these inputs and
        // options, agg.txt was written before it.
        let existing = etl_s3::head_object(client, bucket, &json_key).await?;
        // An agg.json of an older layout (no format recorded) is stale, never an error.
        if !force
            && existing.as_ref().is_some_and(|info| {
                info.metadata.get("etl-fingerprint") == Some(&fingerprint)
                    && info.metadata.get(FORMAT_METADATA).map(String::as_str)
                        == Some(etl_agg::REPORT_FORMAT)
            })
        {
            return Ok(FolderOutcome::UpToDate);
        }
        let existing_txt = etl_s3::head_object(client, bucket, &txt_key).await?;

        let report = match compute(
            client,
            bucket,
            &inputs,
            &args.column,
            args.jobs,
            &fingerprint,
        )
        .await
        {
            Ok(report) => report,
            // A file rewritten between the listing and a range GET: list again.
            Err(error) if is_changed(&error) => {
                tracing::info!(
                    prefix,
                    "an input changed while it was read; aggregating again"
                );
                inputs = list_inputs(client, bucket, prefix).await?;
                continue;
            }
            Err(error) => return Err(error),
        };

        // The inputs may have changed while we read: then this aggregate is already stale.
        let now = list_inputs(client, bucket, prefix).await?;
        if fingerprint_of(&now) != fingerprint_of(&inputs) {
            tracing::info!(
                prefix,
                "inputs changed while aggregating; aggregating again"
            );
            inputs = now;
            continue;
        }

        let condition_of = |info: &Option<etl_s3::ObjectInfo>| match info {
            Some(info) => PutCondition::Matches(info.etag.clone().unwrap_or_default()),
            None => PutCondition::Absent,
        };
        let conditions = (condition_of(&existing_txt), condition_of(&existing));
        match write_report(client, bucket, &json_key, &txt_key, &report, conditions).await {
            Ok(()) => {
                // A store that ignores conditional writes may have let an older run's
                // result land after a newer one's: a changed listing means go round again.
                let after = list_inputs(client, bucket, prefix).await?;
                if fingerprint_of(&after) != fingerprint_of(&inputs) {
                    tracing::info!(prefix, "inputs changed while writing; aggregating again");
                    inputs = after;
                    force = false;
                    continue;
                }
                return Ok(FolderOutcome::Written {
                    source_key: report.source_key,
                    files: report.files,
                });
            }
            Err(error) if error.is_precondition_failed() => {
                // Another run wrote first. If it saw the same inputs, it wrote this result.
                tracing::info!(
                    prefix,
                    "another aggregation wrote first; checking its inputs"
                );
                inputs = list_inputs(client, bucket, prefix).await?;
                force = false;
                continue;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(FolderOutcome::Superseded)
}

/// A pinned read found the object changed (412, or another ETag in the response).
fn is_changed(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<etl_s3::Error>())
        .any(etl_s3::Error::is_precondition_failed)
}

/// Reads footers and the column concurrently, picks the first maximum in key order, then
/// reads the winner's row.
async fn compute(
    client: &Client,
    bucket: &str,
    inputs: &[ListedObject],
    column: &str,
    jobs: usize,
    fingerprint: &str,
) -> anyhow::Result<AggReport> {
    let column_owned = column.to_owned();
    let results: Vec<anyhow::Result<ReadColumn>> =
        futures_util::stream::iter(inputs.iter().cloned())
            .map(|object| {
                let column = column_owned.clone();
                async move { read_column(client, bucket, &object, &column).await }
            })
            .buffered(jobs.max(1))
            .collect()
            .await;
    let mut best: Option<(usize, Candidate)> = None;
    let mut files = Vec::with_capacity(results.len());
    for (index, result) in results.into_iter().enumerate() {
        let (file, candidate, metadata, pin) = result?;
        if let Some(candidate) = candidate
            && best.is_none_or(|(_, b)| candidate.value.greater_than(b.value))
        {
            best = Some((index, candidate));
        }
        files.push((file, metadata, pin));
    }
    let Some((winner, candidate)) = best else {
        return Err(UsageError(format!(
            "no file in the folder has a value in column '{column}'"
        ))
        .into());
    };
    let (file, metadata, pin) = &mut files[winner];
    // Only the pages holding the row (the offset index says which), not its row group.
    let mut reader = etl_agg::RowReader::try_new(file.key(), file.size(), metadata, candidate.row)?;
    let row = loop {
        match reader.step()? {
            etl_agg::Step::Fetch(ranges) => {
                let mut data = Vec::with_capacity(ranges.len());
                for range in &ranges {
                    fetch_into(client, bucket, file, pin, range.clone()).await?;
                    data.push(file.get(range.start, range.end).unwrap_or_default());
                }
                reader.push(ranges, data)?;
            }
            etl_agg::Step::Row(row) => break row,
        }
    };
    Ok(AggReport {
        column: column.to_owned(),
        source_key: file.key().to_owned(),
        index: candidate.row,
        row,
        files: inputs.len(),
        fingerprint: fingerprint.to_owned(),
    })
}

/// A file's bytes at hand, its best candidate, its footer and the ETag its reads are
/// pinned to.
type ReadColumn = (
    SparseFile,
    Option<Candidate>,
    std::sync::Arc<parquet::file::metadata::ParquetMetaData>,
    Option<String>,
);

async fn read_column(
    client: &Client,
    bucket: &str,
    object: &ListedObject,
    column: &str,
) -> anyhow::Result<ReadColumn> {
    let mut file = SparseFile::new(object.key.clone(), object.size);
    // The listed ETag where the server lists one; else the first response's.
    let mut pin = Some(object.etag.clone()).filter(|e| !e.is_empty());
    let mut suffix = FOOTER_GUESS.min(object.size);
    let metadata = loop {
        let start = object.size - suffix;
        fetch_into(client, bucket, &mut file, &mut pin, start..object.size).await?;
        match etl_agg::parse_footer(&file)? {
            FooterParse::Parsed(metadata) => break metadata,
            FooterParse::NeedSuffix(needed) if needed > suffix => suffix = needed,
            FooterParse::NeedSuffix(_) => {
                return Err(etl_agg::Error::Corrupt {
                    key: object.key.clone(),
                    reason: "the footer could not be read".into(),
                }
                .into());
            }
        }
    };
    let index = etl_agg::resolve_column(&file, &metadata, column)?;
    for range in etl_agg::column_chunk_ranges(&metadata, index) {
        fetch_into(client, bucket, &mut file, &mut pin, range).await?;
    }
    let candidate = etl_agg::column_max(&file, &metadata, column)?;
    Ok((file, candidate, metadata, pin))
}

/// Range GET of `range` unless those bytes are already at hand.
async fn fetch_into(
    client: &Client,
    bucket: &str,
    file: &mut SparseFile,
    pin: &mut Option<String>,
    range: std::ops::Range<u64>,
) -> anyhow::Result<()> {
    if range.is_empty() || file.contains(range.start, range.end) {
        return Ok(());
    }
    let header = format!("bytes={}-{}", range.start, range.end - 1);
    let (data, etag) =
        etl_s3::get_range_pinned(client, bucket, file.key(), &header, pin.as_deref()).await?;
    if pin.is_none() {
        *pin = etag;
    }
    if data.len() as u64 != range.end - range.start {
        return Err(etl_agg::Error::Missing {
            key: file.key().to_owned(),
            start: range.start,
            end: range.end,
        }
        .into());
    }
    file.insert(range.start, data);
    Ok(())
}

/// Writes `agg.txt`, then `agg.json` (the commit record, with the fingerprint), each with
/// `If-Match` / `If-None-Match` on what the plan saw: a crash between them leaves an
/// `agg.json` that no longer matches, so a rerun writes both again.
async fn write_report(
    client: &Client,
    bucket: &str,
    json_key: &str,
    txt_key: &str,
    report: &AggReport,
    (txt_condition, json_condition): (PutCondition, PutCondition),
) -> Result<(), etl_s3::Error> {
    let text = etl_agg::format_series(report.index, &report.row);
    let json = serde_json::to_vec_pretty(report).unwrap_or_default();
    let metadata = [
        ("etl-fingerprint".to_owned(), report.fingerprint.clone()),
        (
            FORMAT_METADATA.to_owned(),
            etl_agg::REPORT_FORMAT.to_owned(),
        ),
    ];
    put_conditional(
        client,
        bucket,
        txt_key,
        text.into_bytes(),
        "text/plain; charset=utf-8",
        txt_condition,
        &metadata,
    )
    .await?;
    put_conditional(
        client,
        bucket,
        json_key,
        json,
        "application/json",
        json_condition,
        &metadata,
    )
    .await
}

/// A conditional PUT, unconditional where the server does not implement conditions.
async fn put_conditional(
    client: &Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
    condition: PutCondition,
    metadata: &[(String, String)],
) -> Result<(), etl_s3::Error> {
    match etl_s3::put_bytes(
        client,
        bucket,
        key,
        body.clone(),
        content_type,
        &condition,
        metadata,
    )
    .await
    {
        Err(error) if error.is_not_implemented() => {
            tracing::warn!(
                "the server does not support conditional writes; writing unconditionally"
            );
            etl_s3::put_bytes(
                client,
                bucket,
                key,
                body,
                content_type,
                &PutCondition::None,
                metadata,
            )
            .await
            .map(drop)
        }
        other => other.map(drop),
    }
}
