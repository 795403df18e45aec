//! Clap argument groups shared by the binaries: logging and conversion options.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use etl_convert::{BadRows, ColumnSchema, Compression, ConvertOptions, HeaderMode, OutputFormat};

use crate::env_vars;
use crate::exit::UsageError;
use crate::logging::LogFormat;

/// `--log-format`.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log line format on stderr [default: text on a terminal, json otherwise]. `RUST_LOG` sets the level.
    #[arg(long, value_enum, env = env_vars::ETL_LOG_FORMAT, global = true)]
    pub log_format: Option<LogFormat>,
}

/// Output format and CSV dialect.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Output format: parquet, jsonl or csv [default: from the --output file's extension,
    /// else parquet].
    #[arg(long, env = env_vars::ETL_FORMAT, value_parser = parse_format)]
    pub format: Option<OutputFormat>,
    /// Column names, comma-separated: names a headerless file, or replaces a header's names
    /// [default for a headerless 3-column file: no,name,score].
    #[arg(long, env = env_vars::ETL_COLUMNS, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// The first line is a header [default: sniffed from the data].
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The first line is data.
    #[arg(long)]
    pub no_header: bool,
    /// Field delimiter: one character, or `tab` [default: sniffed among , ; tab |].
    #[arg(long, env = env_vars::ETL_DELIMITER, value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Null tokens, comma-separated; replaces the default set
    /// [default: empty, NA, N/A, NULL, null, NaN, nan, #N/A, \N].
    #[arg(long, env = env_vars::ETL_NULL_VALUES, allow_hyphen_values = true)]
    pub null_values: Option<String>,
    /// Read `3,50` as a number (always so with a `;` delimiter).
    #[arg(long)]
    pub decimal_comma: bool,
    /// A schema file (or s3://bucket/key) pinning column names and types (`name: type`
    /// per line, as --print-schema writes it); a value that does not fit is a bad row.
    #[arg(long, env = env_vars::ETL_SCHEMA)]
    pub schema: Option<PathBuf>,
    /// Bad records: fail (stop at the first, write nothing), skip (leave them out, logged
    /// and counted) or quarantine (also stored as <output>.rejected.jsonl next to the output).
    #[arg(long, env = env_vars::ETL_BAD_ROWS, default_value = "fail", value_parser = parse_bad_rows)]
    pub bad_rows: BadRows,
    /// Compression: inside Parquet zstd, zstd:LEVEL (1-22), snappy or none [default: zstd];
    /// of a whole CSV or JSON Lines file gzip, gzip:LEVEL (1-9), zstd, zstd:LEVEL or none
    /// [default: none, or what the --output name ends with: .gz, .zst].
    #[arg(long, env = env_vars::ETL_COMPRESSION, value_parser = parse_compression)]
    pub compression: Option<Compression>,
    /// A record (or field) longer than this is a bad row, never held in memory whole:
    /// bytes, or with a unit (64KiB, 16MiB, 1GiB).
    #[arg(long, env = env_vars::ETL_MAX_RECORD_BYTES, default_value = "16MiB", value_parser = parse_byte_size)]
    pub max_record_bytes: usize,
}

/// How large objects move to and from S3.
#[derive(Debug, Clone, Args)]
pub struct TransferArgs {
    /// Size of multipart upload parts and of ranged GETs: bytes, or with a unit (at least
    /// 5MiB, S3's smallest part).
    #[arg(long, env = env_vars::ETL_S3_PART_SIZE, default_value = "8MiB", value_parser = parse_part_size)]
    pub s3_part_size: usize,
    /// Parts in flight each way: uploads, and ranged GETs ahead of the converter (1: one
    /// GET stream, one part at a time). Memory: about (this + 1) × --s3-part-size each way.
    #[arg(long, env = env_vars::ETL_S3_CONCURRENCY, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub s3_concurrency: u16,
    /// Objects larger than this are read with ranged GETs, each pinned to the object's
    /// ETag (0: every object larger than a part).
    #[arg(long, env = env_vars::ETL_S3_RANGED_READ_ABOVE, default_value = "64MiB", value_parser = parse_size_or_zero)]
    pub s3_ranged_read_above: u64,
}

impl TransferArgs {
    /// Makes these the S3 client's settings for the process.
    pub fn configure(&self) {
        etl_protocol::Transfer {
            part_size: self.s3_part_size,
            concurrency: usize::from(self.s3_concurrency),
            ranged_read_above: self.s3_ranged_read_above,
        }
        .configure();
    }
}

fn parse_part_size(value: &str) -> Result<usize, String> {
    let size = parse_byte_size(value)?;
    if size < 5 << 20 {
        return Err(format!("'{value}': S3 parts are at least 5MiB"));
    }
    Ok(size)
}

fn parse_size_or_zero(value: &str) -> Result<u64, String> {
    if value.trim() == "0" {
        return Ok(0);
    }
    parse_byte_size(value).map(|n| n as u64)
}

impl ConvertArgs {
    /// The converter's options.
    pub fn options(&self) -> Result<ConvertOptions, UsageError> {
        let header = match (self.header, self.no_header) {
            (true, _) => HeaderMode::Present,
            (_, true) => HeaderMode::Absent,
            _ => HeaderMode::Sniff,
        };
        let columns = match &self.columns {
            Some(names) => {
                let names: Vec<String> = names.iter().map(|n| n.trim().to_owned()).collect();
                if names.iter().any(String::is_empty) {
                    return Err(UsageError("--columns has an empty name".into()));
                }
                Some(names)
            }
            None => None,
        };
        let schema = match &self.schema {
            // Read by `load_s3_schema`, which needs a client.
            Some(_) if self.schema_in_s3().is_some() => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    UsageError(format!("cannot read the schema {}: {e}", path.display()))
                })?;
                let schema = ColumnSchema::parse(&text)
                    .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
                Some(schema)
            }
            None => None,
        };
        let format = self.format.unwrap_or_default();
        if let Some(compression) = self.compression {
            compression
                .check(format)
                .map_err(|e| UsageError(e.to_string()))?;
        }
        Ok(ConvertOptions {
            format,
            compression: self.compression,
            max_record_bytes: self.max_record_bytes,
            header,
            columns,
            delimiter: self.delimiter,
            null_values: self
                .null_values
                .as_ref()
                .map(|v| v.split(',').map(str::to_owned).collect()),
            decimal_comma: self.decimal_comma,
            schema,
            bad_rows: self.bad_rows,
            ..ConvertOptions::default()
        })
    }
}

impl ConvertArgs {
    /// `--schema s3://bucket/key`: the bucket and key.
    fn schema_in_s3(&self) -> Option<(&str, &str)> {
        let uri = self.schema.as_deref()?.to_str()?.strip_prefix("s3://")?;
        Some(uri.split_once('/').unwrap_or((uri, "")))
    }

    /// Reads `--schema s3://bucket/key` into `options` (nothing to do for a local file).
    ///
    /// # Errors
    ///
    /// A missing bucket or key, a missing object, or a malformed schema: usage errors (exit 2)
    /// naming the object; S3 unreachable: transient.
    pub async fn load_s3_schema(&self, options: &mut ConvertOptions) -> anyhow::Result<()> {
        let Some((bucket, key)) = self.schema_in_s3() else {
            return Ok(());
        };
        let uri = format!("s3://{bucket}/{key}");
        if bucket.is_empty() || key.is_empty() {
            return Err(UsageError(format!("--schema {uri}: give s3://bucket/key")).into());
        }
        let client = etl_s3::client_from_env().await?;
        let body = match etl_s3::get_object(&client, bucket, key).await {
            Ok((_, body)) => body,
            Err(error) if error.is_not_found() => {
                return Err(UsageError(format!("the schema {uri} does not exist")).into());
            }
            Err(error) => return Err(anyhow::Error::from(error).context("reading the schema")),
        };
        let bytes = body
            .collect()
            .await
            .with_context(|| format!("reading the schema {uri}"))?
            .into_bytes();
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| UsageError(format!("the schema {uri} is not UTF-8 text")))?;
        let schema = ColumnSchema::parse(text).map_err(|e| UsageError(format!("{uri}: {e}")))?;
        options.schema = Some(schema);
        Ok(())
    }
}

fn parse_format(value: &str) -> Result<OutputFormat, String> {
    value.parse().map_err(|e: etl_convert::Error| e.to_string())
}

fn parse_bad_rows(value: &str) -> Result<BadRows, String> {
    value.parse().map_err(|e: etl_convert::Error| e.to_string())
}

fn parse_compression(value: &str) -> Result<Compression, String> {
    value.parse().map_err(|e: etl_convert::Error| e.to_string())
}

/// `1000`, `64KiB`, `16MiB`, `1GiB` (also `k`, `M`, `G`, `KB`, `MB`, `GB`: all powers of 1024).
fn parse_byte_size(value: &str) -> Result<usize, String> {
    let text = value.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "'{value}': expected bytes, or a number with KiB, MiB or GiB"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n > 0)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("'{value}': expected a positive size such as 16MiB"))
}

fn parse_delimiter(value: &str) -> Result<u8, String> {
    match value {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        v if v.len() == 1 && v.is_ascii() => Ok(v.as_bytes()[0]),
        v => Err(format!(
            "the delimiter must be one ASCII character or 'tab', got '{v}'"
        )),
    }
}

/// The format a local output file's extension names (`.parquet`, `.jsonl`/`.ndjson`,
/// `.csv`), and the compression of a whole file (`x.csv.gz`, `x.jsonl.zst`).
pub fn format_of_path(path: &std::path::Path) -> Option<(OutputFormat, Option<Compression>)> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let (rest, codec) = match name.rsplit_once('.') {
        Some((rest, ext)) => match Compression::from_file_extension(ext) {
            Some(codec) => (rest.to_owned(), Some(codec)),
            None => (name.clone(), None),
        },
        None => (name.clone(), None),
    };
    let format = match rest.rsplit_once('.')?.1 {
        "parquet" | "pq" => OutputFormat::Parquet,
        "jsonl" | "ndjson" => OutputFormat::Jsonl,
        "csv" => OutputFormat::Csv,
        _ => return None,
    };
    Some((format, codec))
}

/// `--key s3://bucket/key` (or `--prefix s3://bucket/prefix`): the bucket and key it names,
/// checked against `--bucket` when both are given.
pub fn split_s3_uri(
    bucket: &mut Option<String>,
    key: &mut Option<String>,
) -> Result<(), UsageError> {
    let Some(rest) = key.as_deref().and_then(|k| k.strip_prefix("s3://")) else {
        return Ok(());
    };
    let (named, path) = rest.split_once('/').unwrap_or((rest, ""));
    if named.is_empty() {
        return Err(UsageError(format!(
            "{}: no bucket in the URI",
            key.as_deref().unwrap_or("")
        )));
    }
    if let Some(given) = bucket.as_deref()
        && given != named
    {
        return Err(UsageError(format!(
            "--bucket {given} and s3://{named}/… name two buckets"
        )));
    }
    let path = path.to_owned();
    *bucket = Some(named.to_owned());
    *key = Some(path);
    Ok(())
}
