//! The input side: a sample decides delimiter, header and schema for every decoding path.

use std::io::Read;
use std::sync::Arc;

use arrow_schema::SchemaRef;

use crate::infer::{self, SampleRecord};
use crate::schema::ColumnSchema;
use crate::values::{Kind, Values};
use crate::{ConvertOptions, Error, HeaderMode, Result};

pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the sample told.
pub(crate) struct Sniffed {
    /// The input from its first record on (byte-order mark and leading blank lines
    /// removed), to be decoded first.
    pub(crate) sample: Vec<u8>,
    /// Physical line number of the sample's first byte.
    pub(crate) first_line: u64,
    /// Whether the first record is a header.
    pub(crate) header: bool,
    /// The schema of every batch.
    pub(crate) schema: SchemaRef,
    /// Names and kinds, and whether a misfit is a bad row (pinned) or widens (inferred).
    pub(crate) columns: ColumnSchema,
    /// Field delimiter.
    pub(crate) delimiter: u8,
    /// Null tokens and number spelling.
    pub(crate) values: Arc<Values>,
}

/// Reads a sample of `input` and decides delimiter, header and schema.
pub(crate) fn sniff(input: &mut impl Read, options: &ConvertOptions) -> Result<Sniffed> {
    let (mut sample, whole) = read_sample(input, options.sample_bytes, options.max_record_bytes)?;
    if sample.starts_with(UTF8_BOM) {
        sample.drain(..UTF8_BOM.len());
    }
    // Blank lines before the first record are skipped and counted.
    let mut first_line = 1u64;
    let mut start = 0;
    while let Some(end) = memchr::memchr(b'\n', &sample[start..]) {
        if sample[start..start + end]
            .iter()
            .all(u8::is_ascii_whitespace)
        {
            start += end + 1;
            first_line += 1;
        } else {
            break;
        }
    }
    sample.drain(..start);
    if sample.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Empty);
    }
    let delimiter = options
        .delimiter
        .unwrap_or_else(|| infer::sniff_delimiter(&sample));
    let values = Arc::new(Values::new(
        &options.null_tokens(),
        options.decimal_comma || delimiter == b';',
    ));
    let records = infer::frame(&sample, delimiter, whole).map_err(|e| shift(e, first_line - 1))?;
    let Some(first) = records.first() else {
        // One record cut by the sample's end: read_sample makes this impossible.
        return Err(Error::BadCsv(
            "no complete record in the first bytes".into(),
        ));
    };
    let width = first.len();
    let names = options.columns.as_ref().unwrap_or(&options.default_columns);
    // The kinds below the first record: both the header test and the schema need them.
    let data_kinds = if options.schema.is_none() || matches!(options.header, HeaderMode::Sniff) {
        infer::infer_kinds(records[1..].iter(), width, &values)
    } else {
        Vec::new()
    };
    let header = match options.header {
        HeaderMode::Present => true,
        HeaderMode::Absent => false,
        HeaderMode::Sniff => infer::is_header(&records, &data_kinds, names, &values),
    };
    let columns = match &options.schema {
        Some(pinned) => {
            if pinned.columns.len() != width {
                return Err(Error::ColumnCount {
                    given: pinned.columns.len(),
                    names: pinned
                        .columns
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    found: width,
                });
            }
            pinned.clone()
        }
        None => {
            let mut kinds = data_kinds;
            if !header {
                let first = infer::infer_kinds(records[..1].iter(), width, &values);
                kinds = infer::merge_kinds(&kinds, &first);
            }
            if let Some(extra) = &options.extra_sample {
                // Piece by piece, so that few records are held at once.
                let mut rest = &extra.0[..];
                while !rest.is_empty() {
                    let cut = rest.len().min(64 * 1024);
                    let end = memchr::memrchr(b'\n', &rest[..cut]).map_or(rest.len(), |i| i + 1);
                    let more = infer::frame(&rest[..end], delimiter, true).unwrap_or_default();
                    let more = infer::infer_kinds(more.iter(), width, &values);
                    kinds = infer::merge_kinds(&kinds, &more);
                    rest = &rest[end..];
                }
            }
            ColumnSchema {
                columns: unique_names(column_names(first, header, width, options)?)
                    .into_iter()
                    .zip(kinds)
                    .map(|(name, kind)| (name, if kind == Kind::Null { Kind::Text } else { kind }))
                    .collect(),
                strict: false,
            }
        }
    };
    Ok(Sniffed {
        sample,
        first_line,
        header,
        schema: columns.arrow(),
        columns,
        delimiter,
        values,
    })
}

/// `--columns`, the header's names, the seed's names or `column_N`.
fn column_names(
    first: &SampleRecord,
    header: bool,
    width: usize,
    options: &ConvertOptions,
) -> Result<Vec<String>> {
    if let Some(given) = &options.columns {
        if given.len() != width {
            return Err(Error::ColumnCount {
                given: given.len(),
                names: given.join(","),
                found: width,
            });
        }
        return Ok(given.clone());
    }
    if header {
        return Ok(first
            .fields()
            .enumerate()
            .map(|(i, f)| {
                let name = String::from_utf8_lossy(f).trim().to_owned();
                if name.is_empty() {
                    format!("column_{}", i + 1)
                } else {
                    name
                }
            })
            .collect());
    }
    if options.default_columns.len() == width {
        return Ok(options.default_columns.clone());
    }
    Ok((1..=width).map(|i| format!("column_{i}")).collect())
}

/// Names readers can select by: a repeated name gets `_2`, `_3`, … (Parquet allows
/// duplicates, but pyarrow, pandas and DuckDB cannot read such a column by name).
fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut taken: std::collections::HashSet<String> = names.iter().cloned().collect();
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .map(|name| {
            if seen.insert(name.clone()) {
                return name;
            }
            let unique = (2..)
                .map(|n| format!("{name}_{n}"))
                .find(|candidate| !taken.contains(candidate))
                .unwrap_or_default();
            tracing::warn!(column = %name, renamed = %unique, "a repeated column name is renamed");
            taken.insert(unique.clone());
            seen.insert(unique.clone());
            unique
        })
        .collect()
}

fn shift(error: Error, lines: u64) -> Error {
    match error {
        Error::BadRecord { line, reason } => Error::BadRecord {
            line: line + lines,
            reason,
        },
        other => other,
    }
}

/// Reads `limit` bytes, or more until the sample holds a whole first record (a very long
/// first line must not be inferred from its beginning), which must not be longer than
/// `max_record` bytes. Returns the sample and whether it is the whole input.
pub(crate) fn read_sample(
    input: &mut impl Read,
    limit: usize,
    max_record: usize,
) -> Result<(Vec<u8>, bool)> {
    let mut sample = Vec::with_capacity(limit.min(1 << 20));
    let mut budget = limit.max(1);
    loop {
        let before = sample.len();
        input
            .take(budget as u64)
            .read_to_end(&mut sample)
            .map_err(Error::Read)?;
        let exhausted = sample.len() - before < budget;
        if exhausted {
            return Ok((sample, true));
        }
        // At least one whole record (a quoted field may span lines).
        let content = sample.strip_prefix(UTF8_BOM).unwrap_or(&sample);
        if infer::holds_a_record(content, b',') {
            return Ok((sample, false));
        }
        // Room for a byte-order mark, blank lines before the record and its line ending.
        let allowed = max_record.saturating_add(1024);
        if sample.len() >= allowed {
            let content = sample.strip_prefix(UTF8_BOM).unwrap_or(&sample);
            let blank = content
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .filter(|b| **b == b'\n')
                .count() as u64;
            return Err(crate::options::too_long(blank + 1, max_record));
        }
        budget = sample.len().min(allowed - sample.len());
    }
}

/// Chunks of whole lines from several offsets of a seekable input, for type inference
/// that represents the whole file: `pieces` chunks of `bytes` each, evenly spread after
/// the first `skip` bytes.
pub fn sample_offsets<R: Read + std::io::Seek>(
    input: &mut R,
    skip: u64,
    pieces: u64,
    bytes: usize,
) -> std::io::Result<Vec<u8>> {
    use std::io::SeekFrom;
    let size = input.seek(SeekFrom::End(0))?;
    let mut out = Vec::new();
    if size <= skip + bytes as u64 || pieces == 0 {
        input.seek(SeekFrom::Start(0))?;
        return Ok(out);
    }
    let span = size - skip;
    for piece in 1..=pieces {
        let offset = skip + span * piece / (pieces + 1) - (bytes as u64).min(span / (pieces + 1));
        input.seek(SeekFrom::Start(offset))?;
        let mut chunk = Vec::with_capacity(bytes);
        input.by_ref().take(bytes as u64).read_to_end(&mut chunk)?;
        let (Some(first), Some(last)) = (
            memchr::memchr(b'\n', &chunk),
            memchr::memrchr(b'\n', &chunk),
        ) else {
            continue;
        };
        if first < last {
            out.extend_from_slice(&chunk[first + 1..=last]);
        }
    }
    input.seek(SeekFrom::Start(0))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn a_quoted_field_across_the_sample_end_reads_on() {
        let text = format!("1,\"{}\n\",3\n{}", "x".repeat(100), "2,b,4\n".repeat(100));
        let (sample, whole) = read_sample(&mut Cursor::new(text.as_bytes()), 10, 1000).unwrap();
        assert!(!whole);
        assert!(sample.len() > 100);
    }
}

#[cfg(test)]
mod unique_names_tests {
    use super::unique_names;

    #[test]
    fn repeated_names_get_a_number_that_is_not_taken() {
        let names = ["a", "a", "b", "a_2", "a"].map(String::from).to_vec();
        assert_eq!(unique_names(names), ["a", "a_3", "b", "a_2", "a_4"]);
    }
}
