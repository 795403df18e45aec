//! The `agg` driver: settle, list, read (footers and one column by range GETs), commit
//! `agg.txt` then `agg.json`, over any [`ObjectStore`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use etl_agg::{AggReport, Candidate, FooterParse, SparseFile};
use etl_s3::{ListedObject, PutCondition, PutRequest};
use futures_util::StreamExt as _;

use crate::store::{ObjectStore, list_all};

/// What shapes one folder's aggregation.
#[derive(Debug, Clone)]
pub struct AggOptions {
    /// The column to maximise.
    pub column: String,
    /// Wait until the folder has had no new or changed input for this long.
    pub settle: Duration,
    /// Give up waiting for quiet after this long.
    pub settle_timeout: Duration,
    /// Aggregate even when agg.json records the same inputs.
    pub force: bool,
    /// Files read concurrently.
    pub jobs: usize,
}

/// No file of the folder has a value in the column: bad input.
#[derive(Debug, thiserror::Error)]
#[error("no file in the folder has a value in column '{column}'")]
pub struct NoValues {
    /// The column.
    pub column: String,
}

impl etl_error::Classify for NoValues {
    fn class(&self) -> etl_error::ErrorClass {
        etl_error::ErrorClass::BadInput
    }
}

/// How one folder ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderOutcome {
    /// agg.txt and agg.json were written.
    Written {
        /// The file holding the winning row.
        source_key: String,
        /// Files read.
        files: usize,
    },
    /// agg.json already records these inputs and options.
    UpToDate,
    /// No Parquet input in the folder.
    Empty,
    /// The inputs kept changing; a newer run aggregates them.
    Superseded,
}

/// Suffix fetched first: the footer of most files (a larger footer costs one more request),
/// or the whole of a small file.
const FOOTER_GUESS: u64 = 16 * 1024;
/// Metadata of `agg.json` naming its layout ([`etl_agg::REPORT_FORMAT`]).
const FORMAT_METADATA: &str = "etl-agg-format";
/// Rounds of list → read → re-list before giving up to a newer run.
const MAX_ROUNDS: usize = 3;

/// The direct subfolders of each prefix that hold Parquet inputs.
pub async fn subfolders<S: ObjectStore>(
    client: &S,
    parents: &[(String, String)],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut folders = Vec::new();
    for (bucket, prefix) in parents {
        let listed = list_all(client, bucket, prefix).await?;
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

async fn list_inputs<S: ObjectStore>(
    client: &S,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<Vec<ListedObject>> {
    let listed = list_all(client, bucket, prefix).await?;
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
async fn settle<S: ObjectStore>(
    client: &S,
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

/// Aggregates one folder: settle, list, read, commit (agg.txt, then agg.json), with the
/// listing checked again before and after writing.
pub async fn aggregate_folder<S: ObjectStore>(
    client: &S,
    bucket: &str,
    prefix: &str,
    args: &AggOptions,
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
        let existing = client.head(bucket, &json_key).await?;
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
        let existing_txt = client.head(bucket, &txt_key).await?;

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
async fn compute<S: ObjectStore>(
    client: &S,
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
        return Err(NoValues {
            column: column.to_owned(),
        }
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

async fn read_column<S: ObjectStore>(
    client: &S,
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
async fn fetch_into<S: ObjectStore>(
    client: &S,
    bucket: &str,
    file: &mut SparseFile,
    pin: &mut Option<String>,
    range: std::ops::Range<u64>,
) -> anyhow::Result<()> {
    if range.is_empty() || file.contains(range.start, range.end) {
        return Ok(());
    }
    let (data, etag) = client
        .get_range(bucket, file.key(), range.clone(), pin.as_deref())
        .await?;
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
async fn write_report<S: ObjectStore>(
    client: &S,
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
async fn put_conditional<S: ObjectStore>(
    client: &S,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
    condition: PutCondition,
    metadata: &[(String, String)],
) -> Result<(), etl_s3::Error> {
    let object = PutRequest {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        content_type: content_type.to_owned(),
        metadata: metadata.iter().cloned().collect(),
    };
    let body = bytes::Bytes::from(body);
    match client.put(&object, body.clone(), &condition).await {
        Err(error) if error.is_not_implemented() => {
            tracing::warn!(
                "the server does not support conditional writes; writing unconditionally"
            );
            client
                .put(&object, body, &PutCondition::None)
                .await
                .map(drop)
        }
        other => other.map(drop),
    }
}
