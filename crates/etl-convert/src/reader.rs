//! The streaming CSV side: sniff header and types from a sample, then decode batches.

use std::io::{BufRead, BufReader, Chain, Cursor, Read};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_csv::reader::{Decoder, Format, ReaderBuilder};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::{ConvertOptions, Error, HeaderMode, Result};

pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Records looked at to infer types; the sample's byte budget bounds it too.
const INFER_RECORDS: usize = 10_000;

/// A CSV input decoded into record batches of a schema inferred from its first bytes.
pub struct CsvSource<R: Read> {
    input: BufReader<Chain<Cursor<Vec<u8>>, R>>,
    decoder: Decoder,
    schema: SchemaRef,
    header: bool,
    finished: bool,
}

/// What the sample told: header, schema and the arrow-csv format to decode with.
pub(crate) struct Sniffed {
    /// The first bytes of the input (byte-order mark removed), to be decoded first.
    pub(crate) sample: Vec<u8>,
    /// Whether the first record is a header.
    pub(crate) header: bool,
    /// The schema of every batch.
    pub(crate) schema: SchemaRef,
    /// Delimiter etc., without the header flag.
    pub(crate) format: Format,
}

/// Reads a sample of `input` and decides header and schema.
pub(crate) fn sniff(input: &mut impl Read, options: &ConvertOptions) -> Result<Sniffed> {
    let (mut sample, whole) = read_sample(input, options.sample_bytes)?;
    if sample.starts_with(UTF8_BOM) {
        sample.drain(..UTF8_BOM.len());
    }
    if sample.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Empty);
    }
    if whole {
        check_quotes(&sample, b'"')?;
    }
    // Only complete records inform the inference; the tail may be cut mid-line.
    let complete = match sample.iter().rposition(|b| *b == b'\n') {
        Some(end) => &sample[..=end],
        None => &sample[..],
    };

    let format = Format::default().with_delimiter(options.delimiter);
    let header = match options.header {
        HeaderMode::Present => true,
        HeaderMode::Absent => false,
        HeaderMode::Sniff => sniff_header(&format, complete, options)?,
    };
    let (inferred, _) = format
        .clone()
        .with_header(header)
        .infer_schema(Cursor::new(complete), Some(INFER_RECORDS))
        .map_err(map_arrow_error)?;
    let schema = Arc::new(name_columns(inferred, header, options)?);
    Ok(Sniffed {
        sample,
        header,
        schema,
        format,
    })
}

impl<R: Read> CsvSource<R> {
    /// Reads a sample of `input`, decides header and schema, and gets ready to decode.
    pub fn open(mut input: R, options: &ConvertOptions) -> Result<Self> {
        let sniffed = sniff(&mut input, options)?;
        Ok(Self::from_parts(
            sniffed.sample,
            input,
            sniffed.schema,
            sniffed.format.with_header(sniffed.header),
            sniffed.header,
            options.batch_size,
        ))
    }

    /// A decoder over `prefix` followed by `input`; `format` says whether to skip a header.
    pub(crate) fn from_parts(
        prefix: Vec<u8>,
        input: R,
        schema: SchemaRef,
        format: Format,
        header: bool,
        batch_size: usize,
    ) -> Self {
        let decoder = ReaderBuilder::new(schema.clone())
            .with_format(format)
            .with_batch_size(batch_size)
            .build_decoder();
        let input = BufReader::with_capacity(256 * 1024, Cursor::new(prefix).chain(input));
        CsvSource {
            input,
            decoder,
            schema,
            header,
            finished: false,
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Whether the first line was taken as a header.
    pub fn has_header(&self) -> bool {
        self.header
    }

    /// The next batch, or `None` at the end of the input.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.finished {
            return Ok(None);
        }
        loop {
            let buf = self.input.fill_buf().map_err(Error::Read)?;
            if buf.is_empty() {
                // End of input: completes a last record that has no final newline.
                self.decoder.decode(&[]).map_err(map_arrow_error)?;
                self.finished = true;
                break;
            }
            let consumed = self.decoder.decode(buf).map_err(map_arrow_error)?;
            self.input.consume(consumed);
            if consumed == 0 || self.decoder.capacity() == 0 {
                break;
            }
        }
        self.decoder.flush().map_err(map_arrow_error)
    }
}

/// Lines longer than this are refused rather than buffered.
const MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

/// Reads `limit` bytes, or more until the sample holds a whole first record (a very long
/// first line must not be inferred from its beginning). Returns the sample and whether it
/// is the whole input.
pub(crate) fn read_sample(input: &mut impl Read, limit: usize) -> Result<(Vec<u8>, bool)> {
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
        if sample.contains(&b'\n') {
            return Ok((sample, false));
        }
        if sample.len() >= MAX_LINE_BYTES {
            return Err(Error::BadRecord {
                line: 1,
                reason: format!("the line is longer than {} MiB", MAX_LINE_BYTES >> 20),
            });
        }
        budget = sample.len();
    }
}

/// In a complete input, a quote that is never closed swallows the rest of the file into
/// one field; report where it opened instead of a confusing field count.
fn check_quotes(data: &[u8], quote: u8) -> Result<()> {
    let mut inside = false;
    let mut line = 1u64;
    let mut opened_at = 0u64;
    for &byte in data {
        if byte == quote {
            if !inside {
                opened_at = line;
            }
            inside = !inside;
        } else if byte == b'\n' {
            line += 1;
        }
    }
    if inside {
        return Err(Error::BadRecord {
            line: opened_at,
            reason: "a quoted field opens here and is never closed".into(),
        });
    }
    Ok(())
}

/// A header when arrow's sniffer sees text above typed columns, or when the first record
/// repeats the column names we would give the file anyway (a header-only file, a file of
/// text columns).
fn sniff_header(format: &Format, sample: &[u8], options: &ConvertOptions) -> Result<bool> {
    let first_record = |format: Format| -> Result<Vec<String>> {
        let (schema, _) = format
            .with_header(true)
            .infer_schema(Cursor::new(sample), Some(0))
            .map_err(map_arrow_error)?;
        Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
    };
    let first = first_record(format.clone())?;
    let names = options.columns.as_ref().unwrap_or(&options.default_columns);
    let repeats_names = first.len() == names.len()
        && first
            .iter()
            .zip(names)
            .all(|(a, b)| a.trim().eq_ignore_ascii_case(b));
    if repeats_names {
        return Ok(true);
    }
    let (sniffed, _) = format
        .clone()
        .infer_format(Cursor::new(sample), Some(INFER_RECORDS))
        .map_err(map_arrow_error)?;
    // `Format` keeps its header flag private: without a header, inference names the
    // columns `column_N`.
    let (schema, _) = sniffed
        .infer_schema(Cursor::new(sample), Some(0))
        .map_err(map_arrow_error)?;
    Ok(schema
        .fields()
        .iter()
        .enumerate()
        .any(|(i, f)| *f.name() != format!("column_{}", i + 1)))
}

/// Applies `--columns`, the seed's default names or arrow's `column_N` names.
fn name_columns(inferred: Schema, header: bool, options: &ConvertOptions) -> Result<Schema> {
    let found = inferred.fields().len();
    let names: Option<&Vec<String>> = match (&options.columns, header) {
        (Some(given), _) => {
            if given.len() != found {
                return Err(Error::ColumnCount {
                    given: given.len(),
                    names: given.join(","),
                    found,
                });
            }
            Some(given)
        }
        (None, false) if options.default_columns.len() == found => Some(&options.default_columns),
        _ => None,
    };
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let name = names.map_or_else(|| field.name().clone(), |n| n[i].clone());
            // An all-empty sample column infers as Null; keep it as text so later values fit.
            let data_type = match field.data_type() {
                DataType::Null => DataType::Utf8,
                other => other.clone(),
            };
            Field::new(name, data_type, true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// Turns arrow's errors into ours, with 1-based line numbers of the input.
///
/// arrow-csv counts records from 1 in framing errors ("for line N") and from 0 in value
/// errors ("at line N"); both count the header.
pub(crate) fn map_arrow_error(error: ArrowError) -> Error {
    match error {
        ArrowError::IoError(_, source) => Error::Read(source),
        ArrowError::CsvError(message) => {
            match line_after(&message, "for line ").or_else(|| line_after(&message, "at line ")) {
                Some(line) => Error::BadRecord {
                    line,
                    reason: strip_line(&message),
                },
                None => Error::BadCsv(message),
            }
        }
        ArrowError::ParseError(message) => match line_after(&message, "at line ") {
            Some(line) => Error::BadRecord {
                line: line + 1,
                reason: strip_line(&message),
            },
            None => Error::BadCsv(message),
        },
        other => Error::BadCsv(other.to_string()),
    }
}

fn line_after(message: &str, marker: &str) -> Option<u64> {
    let start = message.find(marker)? + marker.len();
    let digits: String = message[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// arrow's message minus its own (differently counted) line reference.
fn strip_line(message: &str) -> String {
    let mut text = message.to_owned();
    for marker in [" for line ", " at line "] {
        if let Some(start) = text.find(marker) {
            let rest = &text[start + marker.len()..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            text.replace_range(start..start + marker.len() + digits, "");
        }
    }
    if let Some(rest) =
        text.strip_prefix("Encountered unequal lengths between records on CSV file. Expected ")
    {
        // "Expected 3 records, found 2 records" counts fields, not records.
        let numbers: Vec<&str> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .collect();
        if let [expected, found] = numbers[..] {
            return format!("expected {expected} fields, found {found}");
        }
    }
    if text.contains("invalid UTF-8") || text.contains("invalid utf-8") {
        return "invalid UTF-8 (the file must be UTF-8 text)".to_owned();
    }
    text.replace("Error while parsing value", "cannot parse")
}
