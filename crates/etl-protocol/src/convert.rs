//! Object → converter → object: streams a CSV body through the converter into an upload
//! that is published whole or not at all, and records the source in the output so that
//! a repeated event costs one HEAD.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use etl_convert::{BadRows, ConvertOptions, ConvertSummary, RejectedRow};
use etl_s3::{ObjectInfo, PutCondition, PutOutcome, PutRequest};
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use crate::store::ObjectStore;
use crate::upload::{Gate, Publish};

/// User-metadata keys (and Parquet footer keys, with dots) recording an output's source.
pub mod source_keys {
    /// `s3://bucket/key` or `ftp://host/path` of the input, percent-encoded.
    pub const SOURCE: &str = "etl-source";
    /// ETag (S3) or size+time (FTP) of the input version converted.
    pub const VERSION: &str = "etl-source-version";
    /// Input size in bytes.
    pub const SIZE: &str = "etl-source-size";
    /// Options that shape the output bytes.
    pub const OPTIONS: &str = "etl-options";
    /// Converter version.
    pub const CONVERTER: &str = "etl-converter";
}

/// Where an input came from and which version of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// `s3://bucket/key` or `ftp://host/path`.
    pub uri: String,
    /// ETag, or another version token.
    pub version: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
}

impl SourceRecord {
    fn entries(&self, options: &ConvertOptions) -> Vec<(&'static str, String)> {
        let mut entries = vec![
            (source_keys::SOURCE, encode_metadata(&self.uri)),
            (source_keys::VERSION, encode_metadata(&self.version)),
            (
                source_keys::OPTIONS,
                encode_metadata(&options.fingerprint()),
            ),
            (source_keys::CONVERTER, env!("CARGO_PKG_VERSION").to_owned()),
        ];
        if let Some(size) = self.size {
            entries.push((source_keys::SIZE, size.to_string()));
        }
        entries
    }

    /// S3 user metadata for the output object.
    pub fn user_metadata(&self, options: &ConvertOptions) -> HashMap<String, String> {
        self.entries(options)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    /// Parquet footer key-values (`etl.source`, ...).
    pub fn footer_metadata(&self, options: &ConvertOptions) -> Vec<(String, String)> {
        self.entries(options)
            .into_iter()
            .map(|(k, v)| (k.replace('-', "."), v))
            .collect()
    }

    /// Whether an existing output's metadata says it was made from this very input version
    /// with these options by this converter version (a converter upgrade regenerates).
    pub fn is_recorded_in(&self, output: &ObjectInfo, options: &ConvertOptions) -> bool {
        let get = |k: &str| output.metadata.get(k).map(String::as_str);
        get(source_keys::SOURCE) == Some(encode_metadata(&self.uri).as_str())
            && get(source_keys::VERSION) == Some(encode_metadata(&self.version).as_str())
            && get(source_keys::OPTIONS) == Some(encode_metadata(&options.fingerprint()).as_str())
            && get(source_keys::CONVERTER) == Some(env!("CARGO_PKG_VERSION"))
    }
}

/// HTTP headers carry ASCII only: keys with spaces or non-ASCII letters are percent-encoded.
fn encode_metadata(value: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b':')
        .remove(b'.')
        .remove(b'-')
        .remove(b'_')
        .remove(b'=')
        .remove(b';')
        .remove(b',');
    percent_encoding::utf8_percent_encode(value, KEEP).to_string()
}

/// `s3://bucket/key`.
pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Streams `input` through the converter into `target`. The object appears only if the
/// whole conversion succeeded and `verify` accepted the drained input (an FTP transfer's
/// completion reply, say), so a cut-off download never becomes an output.
pub async fn convert_to_s3<S, R, V>(
    client: &S,
    input: R,
    target: PutRequest,
    options: &ConvertOptions,
    footer: Vec<(String, String)>,
    verify: V,
) -> anyhow::Result<(ConvertSummary, PutOutcome)>
where
    S: ObjectStore,
    R: AsyncRead + Send + Unpin + 'static,
    V: FnOnce(R) -> anyhow::Result<()> + Send + 'static,
{
    let streamed = stream_to_s3(
        client,
        input,
        target,
        options,
        footer,
        verify,
        Publish::default(),
        None,
        Arc::default(),
    )
    .await;
    streamed.result
}

/// What [`stream_to_s3`] did: its result, and whether it stored a quarantine sidecar.
pub struct Streamed {
    /// The conversion and the stored object.
    pub result: anyhow::Result<(ConvertSummary, PutOutcome)>,
    /// The sidecar was written (and must be removed if the output is not published).
    pub sidecar_written: bool,
}

/// [`convert_to_s3`] with a publication condition and check, and the sidecar's metadata.
/// The upload's own failure wins over the converter's broken pipe it causes.
#[allow(clippy::too_many_arguments)]
pub async fn stream_to_s3<S, R, V>(
    client: &S,
    input: R,
    target: PutRequest,
    options: &ConvertOptions,
    footer: Vec<(String, String)>,
    verify: V,
    publish: Publish,
    sidecar_metadata: Option<Vec<(String, String)>>,
    sidecar_written: Arc<AtomicBool>,
) -> Streamed
where
    S: ObjectStore,
    R: AsyncRead + Send + Unpin + 'static,
    V: FnOnce(R) -> anyhow::Result<()> + Send + 'static,
{
    let (writer, chunks) = etl_s3::upload_channel();
    let options = options.clone();
    // A stop interrupts the read, even one stalled on the network; one requested after the
    // whole input was read is caught by the gate below. Both paths (S3, FTP) pass here.
    let mut reader = SyncIoBridge::new(crate::shutdown::StopAware::new(input));
    let sidecar = (options.bad_rows == BadRows::Quarantine)
        .then(|| (target.bucket.clone(), quarantine_key(&target.key)));
    let sidecar_client = client.clone();
    let written = sidecar_written.clone();
    let runtime = tokio::runtime::Handle::current();
    let output_key = target.key.clone();
    let converting = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut quarantined = Vec::new();
        let summary = etl_convert::convert_with_rejects(
            &mut reader,
            &mut writer,
            &options,
            &footer,
            &mut |row| record_rejected(&output_key, row, sidecar.is_some(), &mut quarantined),
        )?;
        verify(reader.into_inner().into_inner())?;
        if crate::shutdown::requested() {
            return Err(crate::shutdown::interrupted().into());
        }
        // The rejected rows are stored before the output appears: none is lost unrecorded.
        if let Some((bucket, key)) = sidecar.filter(|_| summary.rejected > 0) {
            written.store(true, Ordering::SeqCst);
            let sidecar = PutRequest {
                bucket,
                key,
                content_type: "application/x-ndjson".to_owned(),
                metadata: sidecar_metadata.unwrap_or_default().into_iter().collect(),
            };
            runtime.block_on(sidecar_client.put(
                &sidecar,
                quarantined.into(),
                &PutCondition::None,
            ))?;
        }
        writer
            .finish()
            .map_err(|e| etl_convert::Error::Write(e.to_string()))?;
        Ok::<_, anyhow::Error>(summary)
    });
    let uploading = crate::upload::put_stream_with(client, &target, chunks, stop_gated(publish));
    let (converted, uploaded) = tokio::join!(converting, uploading);
    let converted = converted
        .map_err(|_| anyhow::anyhow!("the converter stopped unexpectedly"))
        .and_then(|c| c);
    let result = match (converted, uploaded) {
        (Ok(summary), Ok(outcome)) => Ok((summary, outcome)),
        // The converter's own failure made the upload give up: the converter's error says why.
        (Err(error), Err(etl_s3::Error::Abandoned { .. }) | Ok(_)) => Err(error),
        // The upload failed first; the converter only saw the pipe close.
        (_, Err(error)) => Err(error.into()),
    };
    Streamed {
        result,
        sidecar_written: sidecar_written.load(Ordering::SeqCst),
    }
}

/// `publish` whose gate first withholds the output once a stop was requested: a stop that
/// comes after the whole input was read (or while the last parts upload) publishes nothing.
fn stop_gated(publish: Publish) -> Publish {
    let Publish { condition, gate } = publish;
    let gate: Gate = Box::new(move || {
        Box::pin(async move {
            if crate::shutdown::requested() {
                return Err(crate::shutdown::interrupted().to_string());
            }
            match gate {
                Some(gate) => gate().await,
                None => Ok(()),
            }
        })
    });
    Publish {
        condition,
        gate: Some(gate),
    }
}

/// Bytes of quarantined rows kept in memory before the conversion stops: a file this bad
/// is better rejected whole.
const QUARANTINE_LIMIT: usize = 64 * 1024 * 1024;

/// Logs a set-aside row and, for quarantine, keeps it as a JSON line.
pub fn record_rejected(
    output: &str,
    row: RejectedRow,
    keep: bool,
    kept: &mut Vec<u8>,
) -> etl_convert::Result<()> {
    tracing::warn!(output, line = row.line, reason = %row.reason, "bad row set aside");
    if keep {
        let line =
            serde_json::to_string(&row).map_err(|e| etl_convert::Error::Write(e.to_string()))?;
        kept.extend_from_slice(line.as_bytes());
        kept.push(b'\n');
        if kept.len() > QUARANTINE_LIMIT {
            return Err(etl_convert::Error::Options(format!(
                "more than {} MiB of bad rows: rejecting the whole file",
                QUARANTINE_LIMIT >> 20
            )));
        }
    }
    Ok(())
}

/// The sidecar next to an output: `output/d/1.parquet` → `output/d/1.rejected.jsonl`.
pub fn quarantine_key(output_key: &str) -> String {
    let (dir, name) = output_key
        .rsplit_once('/')
        .map_or(("", output_key), |(d, n)| (d, n));
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    if dir.is_empty() {
        format!("{stem}.rejected.jsonl")
    } else {
        format!("{dir}/{stem}.rejected.jsonl")
    }
}

/// The outcome of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Converted and stored.
    Converted {
        /// Rows written.
        rows: u64,
        /// Rows set aside under `--bad-rows skip|quarantine`.
        rejected: u64,
        /// Output size.
        bytes: u64,
    },
    /// The output already records this input version and options: nothing done.
    UpToDate,
    /// A newer version of the source appeared while this one was converted: nothing was
    /// written; the newer version's run owns the output.
    Superseded {
        /// What changed.
        reason: String,
    },
    /// An earlier run found this very source version bad (its marker says why): not
    /// downloaded again until the source changes.
    KnownBad {
        /// The recorded reason.
        reason: String,
    },
}

/// The marker recording that a source version is bad: `output/d/1.parquet` →
/// `.etl/bad/output/d/1.parquet.json` in the output bucket, outside the output key space (a
/// failed conversion leaves nothing beside the outputs). It holds the reason and records
/// the source version, options and converter in its metadata like an output.
pub fn bad_marker_key(output_key: &str) -> String {
    format!(".etl/bad/{output_key}.json")
}

/// The state of one object for `--dry-run` of a sweep: up-to-date, stale, missing or bad.
pub async fn object_state<S: ObjectStore>(
    client: &S,
    job: &ObjectJob<'_>,
    options: &ConvertOptions,
) -> anyhow::Result<(&'static str, Option<String>)> {
    let uri = s3_uri(job.bucket, job.key);
    let etag = match job.known_etag {
        Some(etag) => etag.to_owned(),
        None => client
            .head(job.bucket, job.key)
            .await?
            .and_then(|info| info.etag)
            .unwrap_or_default(),
    };
    let record = record_for(&uri, &etag);
    if let Some(output) = client.head(job.target_bucket, job.target_key).await? {
        if record.is_recorded_in(&output, options) {
            return Ok(("up-to-date", None));
        }
    } else if let Some(reason) = known_bad(client, job, options, &record).await? {
        return Ok(("bad", Some(reason)));
    } else {
        return Ok(("missing", None));
    }
    match known_bad(client, job, options, &record).await? {
        Some(reason) => Ok(("bad", Some(reason))),
        None => Ok(("stale", None)),
    }
}

/// The reason recorded for this source version by an earlier run, if it found it bad.
async fn known_bad<S: ObjectStore>(
    client: &S,
    job: &ObjectJob<'_>,
    options: &ConvertOptions,
    record: &SourceRecord,
) -> anyhow::Result<Option<String>> {
    let key = bad_marker_key(job.target_key);
    let Some(marker) = client.head(job.target_bucket, &key).await? else {
        return Ok(None);
    };
    if !record.is_recorded_in(&marker, options) {
        return Ok(None);
    }
    let reason = match client
        .get_range(job.target_bucket, &key, 0..65536, None)
        .await
    {
        Ok((bytes, _)) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "bad input".to_owned()),
        Err(_) => "bad input".to_owned(),
    };
    Ok(Some(reason))
}

/// One S3 object to convert and where its output goes.
#[derive(Debug, Clone)]
pub struct ObjectJob<'a> {
    /// Source bucket.
    pub bucket: &'a str,
    /// Source key.
    pub key: &'a str,
    /// The ETag a notification or listing named (may be older than the object's).
    pub known_etag: Option<&'a str>,
    /// Output bucket.
    pub target_bucket: &'a str,
    /// Output key.
    pub target_key: &'a str,
}

/// How [`convert_object`] publishes.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    /// Convert even when the output records this version.
    pub force: bool,
    /// Whether to send `If-None-Match` / `If-Match` on the publishing write (the source
    /// re-check before and after publishing holds either way).
    pub conditional_writes: ConditionalWrites,
}

/// `--conditional-writes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalWrites {
    /// Always send the conditions.
    On,
    /// Never (stores that reject them).
    Off,
    /// Send them where the store enforces them: probed once per process, before the
    /// first write (see [`crate::probe`]).
    Auto,
}

/// Rounds of plan → convert → publish before giving up (exit 1) when the output keeps
/// changing under a run that holds the newest source version.
const ROUNDS: usize = 3;

/// Converts one S3 object unless its output already records the object's current version.
///
/// The protocol: HEAD the output and the source (the plan); GET the source pinned to the
/// planned ETag; convert into an upload; right before publishing HEAD the source again and
/// withhold the upload if it changed; publish with `If-None-Match: *` (no output at plan
/// time) or `If-Match` (the output's planned ETag); after publishing, HEAD the source once
/// more. A run that finds a newer source version writes nothing and reports
/// [`Outcome::Superseded`]; a run that holds the newest version but lost the write plans
/// again.
pub async fn convert_object<S: ObjectStore>(
    client: &S,
    job: &ObjectJob<'_>,
    options: &ConvertOptions,
    protocol: Protocol,
) -> anyhow::Result<Outcome> {
    let uri = s3_uri(job.bucket, job.key);
    let mut options = Cow::Borrowed(options);
    let mut widenings = 0;
    for round in 0..ROUNDS {
        let existing = client.head(job.target_bucket, job.target_key).await?;
        // A repeated event costs one HEAD when the output records the event's version.
        if round == 0
            && !protocol.force
            && let (Some(existing), Some(etag)) = (&existing, job.known_etag)
            && record_for(&uri, etag).is_recorded_in(existing, &options)
        {
            return Ok(Outcome::UpToDate);
        }
        // An output made from another source (`x.csv` vs `x.CSV`) is not ours to replace.
        if !protocol.force
            && let Some(other) = existing
                .as_ref()
                .and_then(|info| info.metadata.get(source_keys::SOURCE))
            && *other != encode_metadata(&uri)
        {
            return Err(anyhow::Error::from(OutputTaken {
                output: s3_uri(job.target_bucket, job.target_key),
                owner: percent_encoding::percent_decode_str(other)
                    .decode_utf8_lossy()
                    .into_owned(),
                input: uri,
            }));
        }
        // The object's current version, not the one an old (replayed) event names.
        let Some(source) = client.head(job.bucket, job.key).await? else {
            return Err(client
                .get(job.bucket, job.key, None)
                .await
                .err()
                .map(anyhow::Error::from)
                .unwrap_or_else(|| anyhow::anyhow!("{uri}: no such object")));
        };
        let etag = source.etag.clone().unwrap_or_default();
        if let Some(existing) = &existing
            && (!protocol.force || round > 0)
            && record_for(&uri, &etag).is_recorded_in(existing, &options)
        {
            return Ok(Outcome::UpToDate);
        }
        if !protocol.force
            && round == 0
            && let Some(reason) = known_bad(client, job, &options, &record_for(&uri, &etag)).await?
        {
            return Ok(Outcome::KnownBad { reason });
        }
        // A value after the sample that does not fit its column widens it: the upload of
        // the partial output was aborted, the same version is read again with the widened
        // schema.
        let attempt = loop {
            let version = (etag.as_str(), source.size);
            match convert_version(client, job, &options, protocol, version, existing.as_ref())
                .await?
            {
                Attempt::Widen(error) if widenings < MAX_WIDENINGS => {
                    if let Some(widening) = widening_of(&error) {
                        options = Cow::Owned(widened(&uri, &options, widening));
                    }
                    widenings += 1;
                }
                Attempt::Widen(error) => return Err(error),
                attempt => break attempt,
            }
        };
        match attempt {
            Attempt::Widen(error) => return Err(error),
            Attempt::Done(outcome) => {
                // A store that ignores conditional writes may have let this older version
                // over a newer one: if the source moved on meanwhile, go round again.
                match client.head(job.bucket, job.key).await? {
                    Some(now) if now.etag.as_deref() != Some(etag.as_str()) => {
                        tracing::info!(source = %uri, "the source changed while publishing; converting its new version");
                        continue;
                    }
                    _ => return Ok(outcome),
                }
            }
            Attempt::Lost => {
                let now = client.head(job.bucket, job.key).await?;
                let now_etag = now.and_then(|info| info.etag);
                if now_etag.as_deref() != Some(etag.as_str()) {
                    return Ok(Outcome::Superseded {
                        reason: format!(
                            "{uri} changed from ETag {etag} to {} during the conversion",
                            now_etag.as_deref().unwrap_or("(deleted)")
                        ),
                    });
                }
                // Still the newest version: the output changed under us; plan again.
                tracing::info!(source = %uri, "the output changed while converting; planning again");
            }
        }
    }
    Err(etl_s3::Error::Withheld {
        bucket: job.target_bucket.to_owned(),
        key: job.target_key.to_owned(),
        reason: format!("the output kept changing for {ROUNDS} rounds"),
    }
    .into())
}

/// The output key already holds the output of another source.
#[derive(Debug, thiserror::Error)]
#[error(
    "{output} is the output of {owner}, not of {input}: two sources map to one output key; choose an --output-key template that keeps them apart (or --force)"
)]
pub struct OutputTaken {
    /// The output.
    pub output: String,
    /// The source it records.
    pub owner: String,
    /// The source of this run.
    pub input: String,
}

impl etl_error::Classify for OutputTaken {
    fn class(&self) -> etl_error::ErrorClass {
        etl_error::ErrorClass::BadInput
    }
}

fn record_for(uri: &str, etag: &str) -> SourceRecord {
    SourceRecord {
        uri: uri.to_owned(),
        version: etag.to_owned(),
        size: None,
    }
}

/// One round's result.
enum Attempt {
    Done(Outcome),
    /// The source or the output changed; nothing was published.
    Lost,
    /// A value after the sample did not fit its column; nothing was published.
    Widen(anyhow::Error),
}

/// Reads the source at `version` (ETag and size; pinned), converts it and publishes it
/// conditionally. A large source with an ETag is read as ranged GETs, each pinned.
async fn convert_version<S: ObjectStore>(
    client: &S,
    job: &ObjectJob<'_>,
    options: &ConvertOptions,
    protocol: Protocol,
    (etag, size): (&str, u64),
    existing: Option<&ObjectInfo>,
) -> anyhow::Result<Attempt> {
    let uri = s3_uri(job.bucket, job.key);
    let pin = Some(etag).filter(|e| !e.is_empty());
    let transfer = client.transfer();
    let range_failure = crate::ranged::Failure::default();
    let got = match pin {
        Some(pin) if transfer.ranged(size) => {
            let (bucket, key) = (job.bucket, job.key);
            crate::ranged::get(client, bucket, key, pin, size, transfer, &range_failure).await
        }
        _ => client.get(job.bucket, job.key, pin).await,
    };
    let (info, body) = match got {
        Ok(got) => got,
        Err(error) if error.is_precondition_failed() => return Ok(Attempt::Lost),
        Err(error) => return Err(anyhow::Error::from(error).context(format!("reading {uri}"))),
    };
    // A server that ignores If-Match on GET: the response's ETag tells.
    if pin.is_some() && info.etag.as_deref() != pin {
        return Ok(Attempt::Lost);
    }
    let record = SourceRecord {
        uri: uri.clone(),
        version: etag.to_owned(),
        size: Some(info.size),
    };
    let target = PutRequest {
        bucket: job.target_bucket.to_owned(),
        key: job.target_key.to_owned(),
        content_type: options.content_type().to_owned(),
        metadata: record.user_metadata(options),
    };
    let footer = record.footer_metadata(options);
    let conditional_writes = match protocol.conditional_writes {
        ConditionalWrites::On => true,
        ConditionalWrites::Off => false,
        ConditionalWrites::Auto => crate::probe::enforced_once(client, job.target_bucket)
            .await
            .map_err(|e| {
                anyhow::Error::from(e).context("probing the store for conditional writes")
            })?,
    };
    let condition = match (conditional_writes, existing) {
        (false, _) => PutCondition::None,
        (true, None) => PutCondition::Absent,
        (true, Some(existing)) => PutCondition::Matches(existing.etag.clone().unwrap_or_default()),
    };
    let gate_client = client.clone();
    let (gate_bucket, gate_key, gate_etag) =
        (job.bucket.to_owned(), job.key.to_owned(), etag.to_owned());
    let (out_bucket, sidecar_key, marker_key) = (
        job.target_bucket.to_owned(),
        quarantine_key(job.target_key),
        bad_marker_key(job.target_key),
    );
    let sidecar_written = Arc::new(AtomicBool::new(false));
    let wrote_sidecar = sidecar_written.clone();
    let cleanup_failed: Arc<Mutex<Option<etl_s3::Error>>> = Arc::default();
    let cleanup_slot = cleanup_failed.clone();
    // Right before publishing: the source must still be the version converted, and what
    // belongs to older versions (their sidecar, a bad-input marker) goes first, so that a
    // fault after publishing cannot leave it beside an up-to-date output.
    let gate: Gate = Box::new(move || {
        Box::pin(async move {
            match gate_client.head(&gate_bucket, &gate_key).await {
                Ok(Some(now)) if now.etag.as_deref() == Some(gate_etag.as_str()) => {}
                Ok(Some(now)) => {
                    return Err(format!(
                        "the source changed to ETag {}",
                        now.etag.unwrap_or_default()
                    ));
                }
                Ok(None) => return Err("the source was deleted".to_owned()),
                Err(error) => return Err(format!("cannot check the source again: {error}")),
            }
            let mut stale = vec![marker_key];
            if !wrote_sidecar.load(Ordering::SeqCst) {
                stale.push(sidecar_key);
            }
            for key in stale {
                if let Err(error) = gate_client.delete(&out_bucket, &key).await {
                    let reason = error.to_string();
                    if let Ok(mut slot) = cleanup_slot.lock() {
                        *slot = Some(error);
                    }
                    return Err(reason);
                }
            }
            Ok(())
        })
    });
    let guard = BodyGuard::default();
    let reader = guard.wrap(body, info.size);
    let sidecar_metadata: Vec<(String, String)> =
        record.user_metadata(options).into_iter().collect();
    let streamed = stream_to_s3(
        client,
        reader,
        target,
        options,
        footer,
        |_| Ok(()),
        Publish {
            condition,
            gate: Some(gate),
        },
        Some(sidecar_metadata),
        sidecar_written,
    )
    .await;
    let sidecar = quarantine_key(job.target_key);
    match streamed.result {
        Ok((summary, stored)) => Ok(Attempt::Done(Outcome::Converted {
            rows: summary.rows,
            rejected: summary.rejected,
            bytes: stored.size,
        })),
        Err(error) => {
            // A publication whose reply was lost still published: its sidecar stays.
            if streamed.sidecar_written && !published(client, job, options, &record).await {
                remove_own_sidecar(client, job.target_bucket, &sidecar, &record).await;
            }
            if let Some(error) = cleanup_failed.lock().ok().and_then(|mut slot| slot.take()) {
                return Err(anyhow::Error::from(error).context(format!(
                    "removing what an older version left beside the output of {uri}"
                )));
            }
            if crate::shutdown::requested() {
                return Err(error.context(format!("converting {uri}")));
            }
            match error.downcast_ref::<etl_s3::Error>() {
                Some(e) if e.is_precondition_failed() => return Ok(Attempt::Lost),
                Some(etl_s3::Error::Withheld { .. }) => return Ok(Attempt::Lost),
                _ => {}
            }
            // Whatever failed, a source replaced meanwhile makes this run moot, not wrong.
            if let Ok(now) = client.head(job.bucket, job.key).await
                && now.and_then(|info| info.etag).as_deref() != Some(etag)
            {
                return Ok(Attempt::Lost);
            }
            // A range refused or answered for another version fails as one GET would.
            if let Some(error) = range_failure.take() {
                if error.is_precondition_failed() {
                    return Ok(Attempt::Lost);
                }
                return Err(anyhow::Error::from(error).context(format!("reading {uri}")));
            }
            // A transport fault while reading is never bad data, whatever the converter made
            // of the truncated input.
            if let Some(fault) = guard.fault() {
                return Err(anyhow::Error::from(etl_s3::Error::Body {
                    bucket: job.bucket.to_owned(),
                    key: job.key.to_owned(),
                    message: fault,
                }));
            }
            let error = error.context(format!("converting {uri}"));
            if widening_of(&error).is_some() {
                return Ok(Attempt::Widen(error));
            }
            // Only bad data is remembered; a refused request (AccessDenied) may be fixed
            // by an operator without the source changing.
            let bad_data = error.chain().any(|cause| {
                cause.downcast_ref::<etl_convert::Error>().is_some_and(|e| {
                    etl_error::Classify::class(e) == etl_error::ErrorClass::BadInput
                })
            }) && !error
                .chain()
                .any(|cause| cause.downcast_ref::<etl_s3::Error>().is_some());
            if bad_data {
                remember_bad(client, job, options, &record, &error).await;
            }
            Err(error)
        }
    }
}

/// Stores the marker that makes later runs skip this bad source version (best effort).
async fn remember_bad<S: ObjectStore>(
    client: &S,
    job: &ObjectJob<'_>,
    options: &ConvertOptions,
    record: &SourceRecord,
    error: &anyhow::Error,
) {
    let key = bad_marker_key(job.target_key);
    let body = serde_json::json!({"source": record.uri, "etag": record.version, "error": format!("{error:#}")});
    let marker = PutRequest {
        bucket: job.target_bucket.to_owned(),
        key,
        content_type: "application/json".to_owned(),
        metadata: record.user_metadata(options),
    };
    if let Err(error) = client
        .put(
            &marker,
            body.to_string().into_bytes().into(),
            &PutCondition::None,
        )
        .await
    {
        tracing::warn!(%error, "could not store the bad-input marker");
    }
}

/// Whether the output records this run's source version after a failed publish (the write
/// took effect but its reply was lost). Unknown counts as published: a sidecar is better
/// kept a while too long than lost.
async fn published<S: ObjectStore>(
    client: &S,
    job: &ObjectJob<'_>,
    options: &ConvertOptions,
    record: &SourceRecord,
) -> bool {
    match client.head(job.target_bucket, job.target_key).await {
        Ok(Some(output)) => record.is_recorded_in(&output, options),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// Removes a sidecar this run wrote for an output it did not publish (best effort: a
/// sidecar recording another version is left to its own run).
async fn remove_own_sidecar<S: ObjectStore>(
    client: &S,
    bucket: &str,
    key: &str,
    record: &SourceRecord,
) {
    let ours = match client.head(bucket, key).await {
        Ok(Some(info)) => {
            info.metadata.get(source_keys::VERSION).map(String::as_str)
                == Some(encode_metadata(&record.version).as_str())
        }
        _ => false,
    };
    if ours && let Err(error) = client.delete(bucket, key).await {
        tracing::warn!(%error, "could not remove the sidecar of an unpublished output");
    }
}

/// Conversions run again after a column had to widen, at most (each run widens at least
/// one column as far as the whole rest of the input needs).
pub const MAX_WIDENINGS: usize = 4;

/// The widening a failed conversion asks for, if that is why it failed.
pub fn widening_of(error: &anyhow::Error) -> Option<&etl_convert::Widening> {
    error.chain().find_map(|cause| match cause.downcast_ref() {
        Some(etl_convert::Error::Widened(widening)) => Some(&**widening),
        _ => None,
    })
}

/// Logs a widening and returns the options to convert again with.
pub fn widened(
    source: &str,
    options: &ConvertOptions,
    widening: &etl_convert::Widening,
) -> ConvertOptions {
    tracing::warn!(
        source,
        line = widening.line,
        column = %widening.column,
        from = widening.from.name(),
        to = widening.to.name(),
        "a value does not fit the type inferred from the sample: converting again with the column widened"
    );
    ConvertOptions {
        schema: Some(widening.schema.clone()),
        ..options.clone()
    }
}

/// Records a transport fault of a body stream: a read error, or a body that ends before
/// its Content-Length.
#[derive(Debug, Clone, Default)]
pub struct BodyGuard {
    fault: Arc<Mutex<Option<String>>>,
}

impl BodyGuard {
    /// Wraps `inner`, whose length should be `expected` bytes.
    pub fn wrap<R: AsyncRead + Unpin>(&self, inner: R, expected: u64) -> GuardedRead<R> {
        GuardedRead {
            inner,
            expected,
            seen: 0,
            fault: self.fault.clone(),
        }
    }

    /// The fault seen, if any.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }
}

/// A body reader that reports transport faults to its [`BodyGuard`].
pub struct GuardedRead<R> {
    inner: R,
    expected: u64,
    seen: u64,
    fault: Arc<Mutex<Option<String>>>,
}

impl<R> GuardedRead<R> {
    fn record(&self, message: String) {
        if let Ok(mut fault) = self.fault.lock()
            && fault.is_none()
        {
            *fault = Some(message);
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for GuardedRead<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = (buf.filled().len() - before) as u64;
                this.seen += read;
                if read == 0 && this.seen < this.expected {
                    let message = format!(
                        "the body ended after {} of {} bytes",
                        this.seen, this.expected
                    );
                    this.record(message.clone());
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        message,
                    )));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => {
                this.record(format!(
                    "the body stream failed after {} bytes: {error}",
                    this.seen
                ));
                Poll::Ready(Err(error))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_ascii_and_round_trips_the_check() {
        let record = SourceRecord {
            uri: "s3://etlproj/input/20230414/a+b 50%/서울.csv".into(),
            version: "9b2cf535f27731c974343645a3985328".into(),
            size: Some(30),
        };
        let options = ConvertOptions::default();
        let metadata = record.user_metadata(&options);
        assert!(metadata.values().all(|v| v.is_ascii()));
        assert_eq!(
            metadata[source_keys::SOURCE],
            "s3://etlproj/input/20230414/a%2Bb%2050%25/%EC%84%9C%EC%9A%B8.csv"
        );
        let output = ObjectInfo {
            size: 10,
            etag: None,
            metadata,
        };
        assert!(record.is_recorded_in(&output, &options));
        let other = SourceRecord {
            version: "other".into(),
            ..record.clone()
        };
        assert!(!other.is_recorded_in(&output, &options));
        let jsonl = ConvertOptions {
            format: etl_convert::OutputFormat::Jsonl,
            ..ConvertOptions::default()
        };
        assert!(!record.is_recorded_in(&output, &jsonl));
    }
}
