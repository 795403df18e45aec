//! Object → converter → object: streams a CSV body through the converter into an upload
//! that is published whole or not at all, and records the source in the output so that
//! a repeated event costs one HEAD.

use std::collections::HashMap;

use anyhow::Context as _;
use etl_convert::{BadRows, ConvertOptions, ConvertSummary, RejectedRow};
use etl_s3::{Client, ObjectInfo, PutOutcome, PutRequest};
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

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
    /// with these options.
    pub fn is_recorded_in(&self, output: &ObjectInfo, options: &ConvertOptions) -> bool {
        let get = |k: &str| output.metadata.get(k).map(String::as_str);
        get(source_keys::SOURCE) == Some(encode_metadata(&self.uri).as_str())
            && get(source_keys::VERSION) == Some(encode_metadata(&self.version).as_str())
            && get(source_keys::OPTIONS) == Some(encode_metadata(&options.fingerprint()).as_str())
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
pub async fn convert_to_s3<R, V>(
    client: &Client,
    input: R,
    target: PutRequest,
    options: &ConvertOptions,
    footer: Vec<(String, String)>,
    verify: V,
) -> anyhow::Result<(ConvertSummary, PutOutcome)>
where
    R: AsyncRead + Send + Unpin + 'static,
    V: FnOnce(R) -> anyhow::Result<()> + Send + 'static,
{
    let (writer, chunks) = etl_s3::upload_channel();
    let options = options.clone();
    let mut reader = SyncIoBridge::new(input);
    let sidecar = (options.bad_rows == BadRows::Quarantine)
        .then(|| (target.bucket.clone(), quarantine_key(&target.key)));
    let sidecar_client = client.clone();
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
        verify(reader.into_inner())?;
        // The rejected rows are stored before the output appears: none is lost unrecorded.
        if let Some((bucket, key)) = sidecar.filter(|_| summary.rejected > 0) {
            runtime.block_on(etl_s3::put_bytes(
                &sidecar_client,
                &bucket,
                &key,
                quarantined,
                "application/x-ndjson",
                &etl_s3::PutCondition::None,
                &[],
            ))?;
        }
        writer
            .finish()
            .map_err(|e| etl_convert::Error::Write(e.to_string()))?;
        Ok::<_, anyhow::Error>(summary)
    });
    let uploading = etl_s3::put_stream(client, &target, chunks);
    let (converted, uploaded) = tokio::join!(converting, uploading);
    let summary = converted.context("the converter stopped unexpectedly")??;
    let outcome = uploaded?;
    Ok((summary, outcome))
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
}

/// Converts one S3 object to another unless the output is already up to date.
///
/// `known_etag` (from a notification or a listing) lets a repeat cost one HEAD of the
/// output; without it the input is HEADed too.
#[allow(clippy::too_many_arguments)]
pub async fn convert_object(
    client: &Client,
    bucket: &str,
    key: &str,
    known_etag: Option<&str>,
    target_bucket: &str,
    target_key: &str,
    options: &ConvertOptions,
    force: bool,
) -> anyhow::Result<Outcome> {
    let uri = s3_uri(bucket, key);
    if !force && let Some(existing) = etl_s3::head_object(client, target_bucket, target_key).await?
    {
        let etag = match known_etag {
            Some(etag) => Some(etag.to_owned()),
            None => etl_s3::head_object(client, bucket, key)
                .await?
                .and_then(|info| info.etag),
        };
        if let Some(etag) = etag {
            let record = SourceRecord {
                uri: uri.clone(),
                version: etag,
                size: None,
            };
            if record.is_recorded_in(&existing, options) {
                return Ok(Outcome::UpToDate);
            }
        }
    }

    // A value after the sample that does not fit its column widens it: the upload of the
    // partial output was aborted, the object is read again with the widened schema.
    let mut options = std::borrow::Cow::Borrowed(options);
    let mut widenings = 0;
    let (summary, stored) = loop {
        let (info, body) = etl_s3::get_object(client, bucket, key).await?;
        let record = SourceRecord {
            uri: uri.clone(),
            version: info.etag.clone().unwrap_or_default(),
            size: Some(info.size),
        };
        let target = PutRequest {
            bucket: target_bucket.to_owned(),
            key: target_key.to_owned(),
            content_type: options.format.content_type().to_owned(),
            metadata: record.user_metadata(&options),
        };
        let footer = record.footer_metadata(&options);
        let converted = convert_to_s3(
            client,
            body.into_async_read(),
            target,
            &options,
            footer,
            |_| Ok(()),
        )
        .await;
        match converted {
            Err(error) if widenings < 4 && crate::etl::widening_of(&error).is_some() => {
                if let Some(widening) = crate::etl::widening_of(&error) {
                    options =
                        std::borrow::Cow::Owned(crate::etl::widened(&uri, &options, widening));
                }
                widenings += 1;
            }
            other => break other.with_context(|| format!("converting {uri}"))?,
        }
    };
    Ok(Outcome::Converted {
        rows: summary.rows,
        rejected: summary.rejected,
        bytes: stored.size,
    })
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
