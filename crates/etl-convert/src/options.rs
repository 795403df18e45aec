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

/// Output compression: a Parquet codec, or the whole file's for CSV and JSON Lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Zstandard at the given level (Parquet's default: level 1; `zstd` alone: level 3).
    Zstd(i32),
    /// Snappy (Parquet only).
    Snappy,
    /// Gzip at the given level (CSV and JSON Lines only; default level 6).
    Gzip(u32),
    /// No compression.
    None,
}

impl Default for Compression {
    /// Level 1: a quarter less CPU than level 3 for about 5% more bytes (issue 15's
    /// realistic files), where the encoder is a third of the conversion's work.
    fn default() -> Self {
        Compression::Zstd(1)
    }
}

impl Compression {
    /// What a format gets when no compression is asked for: zstd inside Parquet, none for
    /// CSV and JSON Lines (readers expect plain text unless the name says otherwise).
    pub fn default_for(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Parquet => Compression::default(),
            OutputFormat::Jsonl | OutputFormat::Csv => Compression::None,
        }
    }

    /// Refuses a codec the format cannot carry (snappy for CSV, gzip inside Parquet).
    pub fn check(self, format: OutputFormat) -> Result<(), Error> {
        let fits = match (format, self) {
            (_, Compression::None | Compression::Zstd(_)) => true,
            (OutputFormat::Parquet, Compression::Snappy) => true,
            (OutputFormat::Jsonl | OutputFormat::Csv, Compression::Gzip(_)) => true,
            (OutputFormat::Parquet, Compression::Gzip(_))
            | (OutputFormat::Jsonl | OutputFormat::Csv, Compression::Snappy) => false,
        };
        if fits {
            return Ok(());
        }
        let expected = match format {
            OutputFormat::Parquet => "zstd, zstd:LEVEL, snappy or none",
            OutputFormat::Jsonl | OutputFormat::Csv => "gzip, gzip:LEVEL, zstd, zstd:LEVEL or none",
        };
        Err(Error::Options(format!(
            "--compression {} does not apply to {format} output: expected {expected}",
            self.name()
        )))
    }

    /// The codec's name without its level.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd(_) => "zstd",
            Compression::Snappy => "snappy",
            Compression::Gzip(_) => "gzip",
            Compression::None => "none",
        }
    }

    /// The extension a whole compressed file gets after the format's (`gz`, `zst`); none
    /// for Parquet, whose codec is inside the file.
    pub fn file_extension(self, format: OutputFormat) -> Option<&'static str> {
        match (format, self) {
            (OutputFormat::Parquet, _) | (_, Compression::None | Compression::Snappy) => None,
            (_, Compression::Gzip(_)) => Some("gz"),
            (_, Compression::Zstd(_)) => Some("zst"),
        }
    }

    /// The codec a file extension names (`gz`, `zst`, `zstd`).
    pub fn from_file_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "gz" | "gzip" => Some(Compression::Gzip(6)),
            "zst" | "zstd" => Some(Compression::Zstd(3)),
            _ => None,
        }
    }
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.to_ascii_lowercase();
        let (name, level) = match lower.split_once([':', '-']) {
            Some((name, level)) => (name, Some(level)),
            None => (lower.as_str(), None),
        };
        let level_of = |range: std::ops::RangeInclusive<i32>, default: i32| match level {
            None => Ok(default),
            Some(text) => text
                .parse::<i32>()
                .ok()
                .filter(|l| range.contains(l))
                .ok_or_else(|| {
                    Error::Options(format!(
                        "{name} level must be {}..={}, got '{text}'",
                        range.start(),
                        range.end()
                    ))
                }),
        };
        match name {
            "zstd" => Ok(Compression::Zstd(level_of(1..=22, 3)?)),
            "gzip" | "gz" => Ok(Compression::Gzip(level_of(1..=9, 6)?.unsigned_abs())),
            "snappy" if level.is_none() => Ok(Compression::Snappy),
            "none" | "uncompressed" if level.is_none() => Ok(Compression::None),
            _ => Err(Error::Options(format!(
                "unknown compression '{s}': expected zstd, zstd:LEVEL, gzip, gzip:LEVEL, snappy or none"
            ))),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::Zstd(level) => write!(f, "zstd:{level}"),
            Compression::Gzip(level) => write!(f, "gzip:{level}"),
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
    /// Output compression [default: [`Compression::default_for`] the format]; see
    /// [`Compression::check`].
    pub compression: Option<Compression>,
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
    /// A record (line ending excluded) longer than this is a bad record; memory stays
    /// bounded by it whatever the input.
    pub max_record_bytes: usize,
}

/// The default of [`ConvertOptions::max_record_bytes`]: records of JSON or long text fit,
/// and a conversion holding a few of them stays well inside the smallest pod `--plan`
/// suggests.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 << 20;

/// `16 MiB`, `1.5 KiB`, `100 bytes`.
pub(crate) fn byte_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (scale, unit) in UNITS {
        if bytes >= scale {
            let value = bytes as f64 / scale as f64;
            return if bytes.is_multiple_of(scale) {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// The bad record at `line` that is longer than `limit`.
pub(crate) fn too_long(line: u64, limit: usize) -> Error {
    Error::BadRecord {
        line,
        reason: format!(
            "the record is longer than {} (--max-record-bytes)",
            byte_size(limit as u64)
        ),
    }
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: OutputFormat::default(),
            compression: None,
            header: HeaderMode::default(),
            columns: None,
            default_columns: SEED_COLUMNS.iter().map(|s| (*s).to_owned()).collect(),
            delimiter: None,
            null_values: None,
            decimal_comma: false,
            schema: None,
            extra_sample: None,
            bad_rows: BadRows::Fail,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            batch_size: 64 * 1024,
            row_group_rows: 1024 * 1024,
            sample_bytes: 1024 * 1024,
        }
    }
}

impl ConvertOptions {
    /// The compression in force: the one asked for, else the format's default.
    pub fn compression(&self) -> Compression {
        self.compression
            .unwrap_or_else(|| Compression::default_for(self.format))
    }

    /// The output file's extension: the format's, then the compression's (`csv.gz`).
    pub fn extension(&self) -> String {
        match self.compression().file_extension(self.format) {
            Some(codec) => format!("{}.{codec}", self.format.extension()),
            None => self.format.extension().to_owned(),
        }
    }

    /// The media type of the output (a compressed text file is stored as such, so that
    /// HTTP clients do not unpack it behind the reader's back).
    pub fn content_type(&self) -> &'static str {
        match self.compression().file_extension(self.format) {
            Some("gz") => "application/gzip",
            Some(_) => "application/zstd",
            None => self.format.content_type(),
        }
    }

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
            self.compression(),
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
        if self.max_record_bytes != DEFAULT_MAX_RECORD_BYTES {
            fingerprint.push_str(&format!(";max_record_bytes={}", self.max_record_bytes));
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
            Some(
                "unknown compression 'lz5': expected zstd, zstd:LEVEL, gzip, gzip:LEVEL, snappy or none"
            )
        );
        assert!("zstd:23".parse::<Compression>().is_err());
        assert!("gzip:10".parse::<Compression>().is_err());
        assert_eq!(
            "gzip:9".parse::<Compression>().ok(),
            Some(Compression::Gzip(9))
        );
        assert_eq!(
            "zstd-7".parse::<Compression>().ok(),
            Some(Compression::Zstd(7))
        );
    }

    #[test]
    fn codecs_fit_formats() {
        let csv = OutputFormat::Csv;
        assert!(Compression::Gzip(6).check(csv).is_ok());
        assert!(Compression::Zstd(3).check(OutputFormat::Jsonl).is_ok());
        let err = Compression::Snappy.check(csv).unwrap_err().to_string();
        assert_eq!(
            err,
            "--compression snappy does not apply to csv output: expected gzip, gzip:LEVEL, zstd, zstd:LEVEL or none"
        );
        assert!(Compression::Gzip(6).check(OutputFormat::Parquet).is_err());
        let options = ConvertOptions {
            format: csv,
            compression: Some(Compression::Gzip(6)),
            ..ConvertOptions::default()
        };
        assert_eq!(options.extension(), "csv.gz");
        assert_eq!(ConvertOptions::default().extension(), "parquet");
    }

    #[test]
    fn byte_sizes_read_plainly() {
        assert_eq!(byte_size(16 << 20), "16 MiB");
        assert_eq!(byte_size(1536), "1.5 KiB");
        assert_eq!(byte_size(100), "100 bytes");
    }
}
