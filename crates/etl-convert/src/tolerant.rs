//! `--bad-rows skip|quarantine`: a sequential path that sets bad records aside instead
//! of failing, and reports each one (line, reason, text) to the caller.
//!
//! Records are framed by the `csv` crate (which knows each record's physical line),
//! checked for width and UTF-8, and decoded by arrow-csv in batches; a batch that fails
//! is decoded record by record to find the culprits. Slower than the parallel path, and
//! only used when the caller asked to keep going.

use std::io::{Cursor, Read, Write};

use arrow_array::RecordBatch;
use arrow_csv::reader::ReaderBuilder;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::reader::{Sniffed, UTF8_BOM, map_arrow_error, read_sample, sniff};
use crate::writer::BatchSink;
use crate::{ConvertOptions, ConvertSummary, Error, Result};

/// A record set aside.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RejectedRow {
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
    /// The record as CSV text (invalid UTF-8 replaced).
    pub record: String,
}

/// Records per arrow batch on this path.
const BATCH_RECORDS: usize = 8192;

pub(crate) fn convert<R: Read, W: Write + Send>(
    mut input: R,
    output: W,
    options: &ConvertOptions,
    metadata: &[(String, String)],
    rejects: &mut dyn FnMut(RejectedRow) -> Result<()>,
) -> Result<ConvertSummary> {
    let (mut sample, _) = read_sample(&mut input, options.sample_bytes)?;
    if sample.starts_with(UTF8_BOM) {
        sample.drain(..UTF8_BOM.len());
    }
    // Header and types come from the sample's well-formed records, so that the bad ones
    // this mode is for do not decide the schema.
    let (clean, majority_numeric) = well_formed(&sample, options.delimiter);
    let Sniffed { header, schema, .. } = sniff(&mut Cursor::new(clean), options)?;
    let schema = numeric_by_majority(&schema, &majority_numeric);
    let mut records = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.delimiter)
        .from_reader(Cursor::new(sample).chain(input));
    let width = schema.fields().len();
    let mut state = Batcher {
        schema: schema.clone(),
        output: Some(output),
        sink: None,
        options,
        metadata,
        pending: Vec::with_capacity(BATCH_RECORDS),
        set_aside: Vec::new(),
        rows: 0,
    };
    let mut rejected = 0u64;
    let mut rejects = |row: RejectedRow| {
        rejected += 1;
        rejects(row)
    };
    let rejects: &mut dyn FnMut(RejectedRow) -> Result<()> = &mut rejects;
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    loop {
        match records.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let reason = error.to_string();
                let line = error.position().map_or(0, csv::Position::line);
                return Err(match error.into_kind() {
                    csv::ErrorKind::Io(io) => Error::Read(io),
                    // The csv crate's own framing errors carry no record to set aside.
                    _ => Error::BadRecord { line, reason },
                });
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        if std::mem::take(&mut first) && header {
            continue;
        }
        // A blank line is one empty field: not a record (as arrow-csv reads it).
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            continue;
        }
        if record.len() != width {
            state.set_aside.push(RejectedRow {
                line,
                reason: format!("expected {width} fields, found {}", record.len()),
                record: text_of(&record, options.delimiter),
            });
            continue;
        }
        if record
            .iter()
            .any(|field| std::str::from_utf8(field).is_err())
        {
            state.set_aside.push(RejectedRow {
                line,
                reason: "invalid UTF-8 (the file must be UTF-8 text)".into(),
                record: text_of(&record, options.delimiter),
            });
            continue;
        }
        state.pending.push((line, record.clone()));
        if state.pending.len() >= BATCH_RECORDS {
            state.flush(rejects)?;
        }
    }
    state.flush(rejects)?;
    let rows = state.rows;
    match state.sink {
        Some(sink) if rows > 0 => sink.finish()?,
        _ => return Err(Error::NoRows),
    }
    Ok(ConvertSummary {
        rows,
        rejected,
        header,
        columns: schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
    })
}

struct Batcher<'a, W: Write + Send> {
    schema: SchemaRef,
    output: Option<W>,
    sink: Option<BatchSink<W>>,
    options: &'a ConvertOptions,
    metadata: &'a [(String, String)],
    pending: Vec<(u64, csv::ByteRecord)>,
    /// Records rejected since the last flush, reported with the batch in line order.
    set_aside: Vec<RejectedRow>,
    rows: u64,
}

impl<W: Write + Send> Batcher<'_, W> {
    fn flush(&mut self, rejects: &mut dyn FnMut(RejectedRow) -> Result<()>) -> Result<()> {
        let mut set_aside = std::mem::take(&mut self.set_aside);
        let pending = std::mem::take(&mut self.pending);
        let batch = if pending.is_empty() {
            None
        } else {
            Some(match decode(&self.schema, pending.iter().map(|(_, r)| r)) {
                Ok(batch) => batch,
                Err(_) => {
                    // Find the bad records one by one, keep the rest.
                    let mut good = Vec::with_capacity(pending.len());
                    for (line, record) in &pending {
                        match decode(&self.schema, std::iter::once(record)) {
                            Ok(_) => good.push(record),
                            Err(error) => set_aside.push(RejectedRow {
                                line: *line,
                                reason: match error {
                                    Error::BadRecord { reason, .. } => reason,
                                    other => other.to_string(),
                                },
                                record: text_of(record, b','),
                            }),
                        }
                    }
                    decode(&self.schema, good.into_iter())?
                }
            })
        };
        set_aside.sort_by_key(|row| row.line);
        for row in set_aside {
            rejects(row)?;
        }
        self.pending = pending;
        self.pending.clear();
        match batch {
            Some(batch) => self.write(&batch),
            None => Ok(()),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let sink = match (&mut self.sink, self.output.take()) {
            (Some(sink), _) => sink,
            (None, Some(output)) => self.sink.insert(BatchSink::try_new(
                output,
                self.schema.clone(),
                self.options,
                self.metadata,
                Some(batch),
            )?),
            (None, None) => return Err(Error::Write("no output".into())),
        };
        sink.write(batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
}

/// Re-encodes records as plain CSV and decodes them with arrow-csv.
fn decode<'r>(
    schema: &SchemaRef,
    records: impl Iterator<Item = &'r csv::ByteRecord>,
) -> Result<RecordBatch> {
    let mut encoded = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let mut count = 0usize;
    for record in records {
        encoded
            .write_byte_record(record)
            .map_err(|e| Error::Write(e.to_string()))?;
        count += 1;
    }
    let encoded = encoded
        .into_inner()
        .map_err(|e| Error::Write(e.to_string()))?;
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(count.max(1))
        .build_decoder();
    let mut rest = &encoded[..];
    while !rest.is_empty() {
        let used = decoder.decode(rest).map_err(map_arrow_error)?;
        if used == 0 {
            break;
        }
        rest = &rest[used..];
    }
    decoder.decode(&[]).map_err(map_arrow_error)?;
    Ok(decoder
        .flush()
        .map_err(map_arrow_error)?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}

fn text_of(record: &csv::ByteRecord, delimiter: u8) -> String {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = writer.write_byte_record(record);
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\n')
        .to_owned()
}

/// What a column's sample values mostly are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mostly {
    Int,
    Float,
    Other,
}

/// Share of a column's non-empty sample values that must be numbers for the column to be
/// numeric (the rest are bad rows).
const NUMERIC_MAJORITY: f64 = 0.9;

/// The sample's records of the most common width with valid UTF-8, re-encoded, and what
/// each column's values mostly are (the header line, if any, is the first record and
/// does not count: it is text by nature).
fn well_formed(sample: &[u8], delimiter: u8) -> (Vec<u8>, Vec<Mostly>) {
    let complete = match sample.iter().rposition(|b| *b == b'\n') {
        Some(end) => &sample[..=end],
        None => sample,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(complete);
    let records: Vec<csv::ByteRecord> = reader
        .byte_records()
        .map_while(std::result::Result::ok)
        .filter(|r| !(r.len() == 1 && r.get(0).is_some_and(<[u8]>::is_empty)))
        .collect();
    let mut widths = std::collections::BTreeMap::<usize, usize>::new();
    for record in &records {
        *widths.entry(record.len()).or_default() += 1;
    }
    let width = widths
        .iter()
        .max_by_key(|(_, count)| **count)
        .map_or(0, |(width, _)| *width);
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_writer(Vec::new());
    let mut ints = vec![0usize; width];
    let mut floats = vec![0usize; width];
    let mut values = vec![0usize; width];
    for (index, record) in records.iter().enumerate() {
        if record.len() != width || record.iter().any(|f| std::str::from_utf8(f).is_err()) {
            continue;
        }
        let _ = writer.write_byte_record(record);
        if index == 0 {
            continue;
        }
        for (column, field) in record.iter().enumerate() {
            let text = String::from_utf8_lossy(field);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            values[column] += 1;
            if text.parse::<i64>().is_ok() {
                ints[column] += 1;
            }
            if text.parse::<f64>().is_ok() {
                floats[column] += 1;
            }
        }
    }
    let mostly = (0..width)
        .map(|c| {
            let total = values[c].max(1) as f64;
            if ints[c] as f64 / total >= NUMERIC_MAJORITY {
                Mostly::Int
            } else if floats[c] as f64 / total >= NUMERIC_MAJORITY {
                Mostly::Float
            } else {
                Mostly::Other
            }
        })
        .collect();
    (writer.into_inner().unwrap_or_default(), mostly)
}

/// Text columns whose values are mostly numbers become numbers.
fn numeric_by_majority(schema: &SchemaRef, mostly: &[Mostly]) -> SchemaRef {
    if mostly.len() != schema.fields().len() {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(mostly)
        .map(|(field, mostly)| {
            let data_type = match (field.data_type(), mostly) {
                (DataType::Utf8, Mostly::Int) => DataType::Int64,
                (DataType::Utf8, Mostly::Float) => DataType::Float64,
                (other, _) => other.clone(),
            };
            Field::new(field.name(), data_type, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}
