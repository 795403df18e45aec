//! Conversion options: output format, compression, header handling, column names.

use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::schema::ColumnSchema;

/// Column names of the seed's headerless files (`1,aaa,100`).
pub const SEED_COLUMNS: [&str; 3] = ["no", "name", "score"];

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Apache Parquet (default).
    #[default]
    Parquet,
    /// JSON Lines: one object per row (the seed's first version).
    Jsonl,
    /// CSV with a header line (the MinIO example's output).
    Csv,
}

impl OutputFormat {
    /// The file extension, without a dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Csv => "csv",
        }
    }

    /// The media type to store with the object.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Parquet => "application/vnd.apache.parquet",
            OutputFormat::Jsonl => "application/x-ndjson",
            OutputFormat::Csv => "text/csv",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "parquet" => Ok(OutputFormat::Parquet),
            "jsonl" | "ndjson" | "json" => Ok(OutputFormat::Jsonl),
            "csv" => Ok(OutputFormat::Csv),
            other => Err(Error::Options(format!(
                "unknown format '{other}': expected parquet, jsonl or csv"
            ))),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Zstandard at the given level (default level 3).
    Zstd(i32),
    /// Snappy.
    Snappy,
    /// No compression.
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(3)
    }
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "zstd" => Ok(Compression::default()),
            "snappy" => Ok(Compression::Snappy),
            "none" | "uncompressed" => Ok(Compression::None),
            _ => match lower
                .strip_prefix("zstd:")
                .or_else(|| lower.strip_prefix("zstd-"))
            {
                Some(level) => level
                    .parse::<i32>()
                    .ok()
                    .filter(|l| (1..=22).contains(l))
                    .map(Compression::Zstd)
                    .ok_or_else(|| {
                        Error::Options(format!("zstd level must be 1..=22, got '{level}'"))
                    }),
                None => Err(Error::Options(format!(
                    "unknown compression '{s}': expected zstd, zstd:LEVEL, snappy or none"
                ))),
            },
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::Zstd(level) => write!(f, "zstd:{level}"),
            Compression::Snappy => f.write_str("snappy"),
            Compression::None => f.write_str("none"),
        }
    }
}

impl ConvertOptions {
    /// The null tokens in force.
    pub fn null_tokens(&self) -> Vec<String> {
        self.null_values.clone().unwrap_or_else(|| {
            crate::DEFAULT_NULL_VALUES
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        })
    }
}

/// Whether the first line is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMode {
    /// Decide from the data: a header when the first line is text where the rest is not,
    /// or when it repeats the column names.
    #[default]
    Sniff,
    /// The first line is a header.
    Present,
    /// There is no header.
    Absent,
}

/// What to do with a record that cannot be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadRows {
    /// Stop at the first bad record (default): nothing is written.
    #[default]
    Fail,
    /// Leave bad records out; each is reported to the caller (logged, counted).
    Skip,
    /// Like `Skip`, and the caller keeps the records in a sidecar file.
    Quarantine,
}

impl FromStr for BadRows {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "fail" => Ok(BadRows::Fail),
            "skip" => Ok(BadRows::Skip),
            "quarantine" => Ok(BadRows::Quarantine),
            other => Err(Error::Options(format!(
                "unknown bad-rows policy '{other}': expected fail, skip or quarantine"
            ))),
        }
    }
}

/// Input bytes from further into a file, whole lines, used only for type inference.
#[derive(Clone, Default)]
pub struct ExtraSample(pub std::sync::Arc<Vec<u8>>);

impl fmt::Debug for ExtraSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExtraSample({} bytes)", self.0.len())
    }
}

/// Everything that shapes a conversion.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Output format.
    pub format: OutputFormat,
    /// Parquet codec.
    pub compression: Compression,
    /// Header handling.
    pub header: HeaderMode,
    /// Column names given by the user; with a header they replace the header's names.
    pub columns: Option<Vec<String>>,
    /// Names for a headerless file when none are given and the width matches
    /// (the seed's `no,name,score`); otherwise `column_1..N`.
    pub default_columns: Vec<String>,
    /// Field delimiter [default: sniffed among `,` `;` tab `|`].
    pub delimiter: Option<u8>,
    /// Null tokens [default: [`crate::DEFAULT_NULL_VALUES`]].
    pub null_values: Option<Vec<String>>,
    /// `3,50` is a number (always so with a `;` delimiter).
    pub decimal_comma: bool,
    /// Names and types pinned by a schema file, or widened after a misfit.
    pub schema: Option<ColumnSchema>,
    /// More of the input to infer types from (chunks from further into a file).
    pub extra_sample: Option<ExtraSample>,
    /// Rows per record batch.
    pub batch_size: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Bytes read ahead to sniff the header and infer types.
    pub sample_bytes: usize,
    /// Bad records: fail, skip or quarantine.
    pub bad_rows: BadRows,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: OutputFormat::default(),
            compression: Compression::default(),
            header: HeaderMode::default(),
            columns: None,
            default_columns: SEED_COLUMNS.iter().map(|s| (*s).to_owned()).collect(),
            delimiter: None,
            null_values: None,
            decimal_comma: false,
            schema: None,
            extra_sample: None,
            bad_rows: BadRows::Fail,
            batch_size: 64 * 1024,
            row_group_rows: 1024 * 1024,
            sample_bytes: 1024 * 1024,
        }
    }
}

impl ConvertOptions {
    /// A short, stable description of the options that change the output bytes, recorded
    /// with every output so that a changed option makes an existing output stale.
    pub fn fingerprint(&self) -> String {
        let header = match self.header {
            HeaderMode::Sniff => "sniff",
            HeaderMode::Present => "yes",
            HeaderMode::Absent => "no",
        };
        let columns = self
            .columns
            .as_ref()
            .map(|c| c.join(","))
            .unwrap_or_default();
        let mut fingerprint = format!(
            "format={};compression={};header={header};columns={columns};delimiter={}",
            self.format,
            self.compression,
            self.delimiter.map_or(',', char::from)
        );
        // Each only when set, so that outputs made before the option existed stay current.
        if let Some(nulls) = &self.null_values {
            fingerprint.push_str(&format!(";null_values={}", nulls.join("|")));
        }
        if self.decimal_comma {
            fingerprint.push_str(";decimal_comma");
        }
        if let Some(schema) = self.schema.as_ref().filter(|s| s.strict) {
            fingerprint.push_str(&format!(";schema={}", schema.compact()));
        }
        match self.bad_rows {
            BadRows::Fail => {}
            BadRows::Skip => fingerprint.push_str(";bad_rows=skip"),
            BadRows::Quarantine => fingerprint.push_str(";bad_rows=quarantine"),
        }
        fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats_and_codecs() {
        assert_eq!(
            "JSONL".parse::<OutputFormat>().ok(),
            Some(OutputFormat::Jsonl)
        );
        assert_eq!(
            "zstd:9".parse::<Compression>().ok(),
            Some(Compression::Zstd(9))
        );
        assert_eq!(
            "snappy".parse::<Compression>().ok(),
            Some(Compression::Snappy)
        );
        let err = "lz5".parse::<Compression>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown compression 'lz5': expected zstd, zstd:LEVEL, snappy or none")
        );
        assert!("zstd:23".parse::<Compression>().is_err());
    }
}
