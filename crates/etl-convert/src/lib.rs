//! Streaming CSV conversion to Parquet, JSON Lines or CSV: pure and synchronous.
//!
//! [`convert`] reads any [`std::io::Read`] in record batches and writes to any
//! [`std::io::Write`]; memory stays bounded by the batch and row-group sizes, never by the
//! file. Fetching and storing bytes (S3, FTP, files) is left to the callers.

mod bounded;
mod columns;
mod decompress;
mod error;
mod fastparse;
mod framing;
mod infer;
mod options;
mod pipeline;
mod pool;
mod reader;
mod schema;
mod sequential;
mod tolerant;
mod values;
mod writer;

pub use decompress::{Codec, open as decompress};
pub use error::{Error, Result};
pub use options::{
    BadRows, Compression, ConvertOptions, DEFAULT_MAX_RECORD_BYTES, ExtraSample, HeaderMode,
    OutputFormat, SEED_COLUMNS,
};
pub use pool::cpus;
pub use reader::sample_offsets;
pub use schema::{ColumnSchema, Widening};
pub use tolerant::RejectedRow;
pub use values::{DEFAULT_NULL_VALUES, Kind};

use std::io::{Read, Write};

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConvertSummary {
    /// Data rows written.
    pub rows: u64,
    /// Whether the input's first line was taken as a header.
    pub header: bool,
    /// Column names and types (as a schema file names them: int64, text, …), in order.
    pub columns: Vec<(String, String)>,
    /// Records set aside under `--bad-rows skip|quarantine`.
    pub rejected: u64,
    /// The schema used, as a schema file would pin it.
    #[serde(skip)]
    pub schema: ColumnSchema,
}

/// Converts CSV bytes from `input` into `options.format` written to `output`.
///
/// `metadata` goes into the Parquet footer's key-value metadata (ignored by other formats).
/// On error the output holds an incomplete file: callers write to a staging place and
/// publish only on success.
///
/// Chunks of the input are parsed on every core and Parquet columns are encoded in
/// parallel, with a fixed number of chunks in flight: memory does not grow with the input
/// (see the `pipeline` module). A compressed input is read and decompressed on a thread of
/// its own, overlapped with the parsing.
pub fn convert<R: Read + Send, W: Write + Send>(
    input: R,
    output: W,
    options: &ConvertOptions,
    metadata: &[(String, String)],
) -> Result<ConvertSummary> {
    convert_with_rejects(input, output, options, metadata, &mut |_| Ok(()))
}

/// Infers delimiter, header and schema from the first `options.sample_bytes` of `input`
/// (decompressed if need be), as a conversion would.
pub fn infer_schema<R: Read>(input: R, options: &ConvertOptions) -> Result<ConvertSummary> {
    let (mut input, _) = decompress::open(input)?;
    let sniffed = reader::sniff(&mut input, options)?;
    Ok(pipeline::summary(0, 0, sniffed.header, &sniffed.columns))
}

/// Like [`convert`], and under [`BadRows::Skip`] or [`BadRows::Quarantine`] hands every
/// record it sets aside to `rejects` (which may keep it, log it, or stop the conversion
/// by returning an error). Under [`BadRows::Fail`] the first bad record is an error.
pub fn convert_with_rejects<R: Read + Send, W: Write + Send>(
    input: R,
    output: W,
    options: &ConvertOptions,
    metadata: &[(String, String)],
    rejects: &mut dyn FnMut(RejectedRow) -> Result<()>,
) -> Result<ConvertSummary> {
    let (input, codec) = decompress::open(input)?;
    if codec == Codec::None {
        return decode(input, output, options, metadata, rejects);
    }
    decompress::overlapped(input, |piped| {
        decode(piped, output, options, metadata, rejects)
    })
}

fn decode<R: Read, W: Write + Send>(
    input: R,
    output: W,
    options: &ConvertOptions,
    metadata: &[(String, String)],
    rejects: &mut dyn FnMut(RejectedRow) -> Result<()>,
) -> Result<ConvertSummary> {
    match options.bad_rows {
        BadRows::Fail => pipeline::convert(input, output, options, metadata),
        BadRows::Skip | BadRows::Quarantine => {
            tolerant::convert(input, output, options, metadata, rejects)
        }
    }
}
