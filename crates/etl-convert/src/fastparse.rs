//! The parallel path's decoder: a chunk of complete, unquoted lines into one batch, under
//! the same value rules ([`crate::values`]) and builders ([`crate::columns`]) as the
//! sequential path, with errors at physical lines of the whole input.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::Error;
#[cfg(test)]
use crate::Result;
use crate::columns::{self, Column};
use crate::schema::ColumnSchema;
use crate::values::{Kind, Values};

/// Why decoding a piece of the input stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Bad input (structural, or a misfit against a pinned schema).
    Bad(Error),
    /// A value does not fit its inferred column: `kinds` are the columns widened over the
    /// rest of the piece.
    Misfit {
        line: u64,
        column: usize,
        kinds: Vec<Kind>,
    },
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Bad(error)
    }
}

/// What every decoder shares.
pub(crate) struct Layout<'a> {
    pub(crate) schema: &'a SchemaRef,
    pub(crate) columns: &'a ColumnSchema,
    pub(crate) values: &'a Values,
    pub(crate) delimiter: u8,
}

impl Layout<'_> {
    /// The stop for a value in `column` at `line` that does not fit.
    pub(crate) fn misfit(&self, line: u64, column: usize) -> Stop {
        let (name, kind) = &self.columns.columns[column];
        if self.columns.strict {
            Stop::Bad(Error::BadRecord {
                line,
                reason: format!("column '{name}': a value does not fit {}", kind.name()),
            })
        } else {
            Stop::Misfit {
                line,
                column,
                kinds: self.columns.columns.iter().map(|(_, k)| *k).collect(),
            }
        }
    }

    /// Widens `kinds` to hold `fields`.
    pub(crate) fn widen<'f>(&self, kinds: &mut [Kind], fields: impl Iterator<Item = &'f [u8]>) {
        for (kind, field) in kinds.iter_mut().zip(fields) {
            if *kind != Kind::Text {
                *kind = kind.merge(self.values.classify(field));
            }
        }
    }
}

/// The line (counted from `first_line`) holding byte `offset` of `chunk`.
pub(crate) fn line_of(chunk: &[u8], offset: usize, first_line: u64) -> u64 {
    first_line + memchr::memchr_iter(b'\n', &chunk[..offset.min(chunk.len())]).count() as u64
}

/// Decodes `chunk` (complete lines, no quote characters) whose first line is `first_line`.
pub(crate) fn parse_chunk(
    chunk: &[u8],
    layout: &Layout<'_>,
    first_line: u64,
) -> std::result::Result<RecordBatch, Stop> {
    if let Err(error) = std::str::from_utf8(chunk) {
        return Err(Stop::Bad(Error::BadRecord {
            line: line_of(chunk, error.valid_up_to(), first_line),
            reason: "invalid UTF-8 (the file must be UTF-8 text)".into(),
        }));
    }
    let width = layout.schema.fields().len();
    let first_len = memchr::memchr(b'\n', chunk).map_or(chunk.len(), |i| i + 1);
    let rows_guess = chunk.len() / first_len.max(1) + 16;
    let mut columns = Column::for_schema(layout.schema, rows_guess, chunk.len());
    let delimiter = layout.delimiter;
    let mut line_number = first_line;
    let mut rest = chunk;
    while !rest.is_empty() {
        let (mut line, next) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.is_empty() {
            rest = next;
            line_number += 1;
            continue;
        }
        let mut fields = line.split(|b| *b == delimiter);
        for (index, column) in columns.iter_mut().enumerate() {
            let Some(field) = fields.next() else {
                return Err(ragged(line, delimiter, width, line_number));
            };
            if column.push(field, layout.values).is_err() {
                // A short or long record is bad input whatever its values.
                if memchr::memchr_iter(delimiter, line).count() + 1 != width {
                    return Err(ragged(line, delimiter, width, line_number));
                }
                return Err(widen_rest(rest, layout, line_number, index));
            }
        }
        if fields.next().is_some() {
            return Err(ragged(line, delimiter, width, line_number));
        }
        rest = next;
        line_number += 1;
    }
    columns::batch(layout.schema, columns)
        .ok_or_else(|| Stop::Bad(Error::BadCsv("could not assemble a batch".into())))
}

/// Decodes `chunk` (whole records, some quoted) as the `csv` crate frames them: a field
/// starting with a quote runs to the closing quote (newlines and delimiters included, `""`
/// for a quote), text after the closing quote is kept, `\r`, `\n` and `\r\n` end records.
/// Lines without quotes take the fast path. `None` for anything unusual (a bad record, a
/// misfit, invalid UTF-8, an unclosed quote): the caller decodes the chunk with the `csv`
/// crate then, for its exact errors.
pub(crate) fn parse_quoted_chunk(chunk: &[u8], layout: &Layout<'_>) -> Option<RecordBatch> {
    std::str::from_utf8(chunk).ok()?;
    let width = layout.schema.fields().len();
    let first_len = memchr::memchr(b'\n', chunk).map_or(chunk.len(), |i| i + 1);
    let rows_guess = chunk.len() / first_len.max(1) + 16;
    let mut columns = Column::for_schema(layout.schema, rows_guess, chunk.len());
    let delimiter = layout.delimiter;
    let mut scratch = Vec::new();
    let mut ends = Vec::with_capacity(width);
    let mut pos = 0;
    while pos < chunk.len() {
        let rest = &chunk[pos..];
        let line_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..line_end];
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        if memchr::memchr2(b'"', b'\r', body).is_none() {
            pos += (line_end + 1).min(rest.len());
            if body.is_empty() {
                continue;
            }
            let mut fields = body.split(|b| *b == delimiter);
            for column in columns.iter_mut() {
                column.push(fields.next()?, layout.values).ok()?;
            }
            if fields.next().is_some() {
                return None;
            }
            continue;
        }
        pos += quoted_record(rest, delimiter, &mut scratch, &mut ends)?;
        if ends.len() == 1 && ends[0] == 0 {
            continue;
        }
        if ends.len() != width {
            return None;
        }
        let mut start = 0;
        for (column, &end) in columns.iter_mut().zip(&ends) {
            column.push(&scratch[start..end], layout.values).ok()?;
            start = end;
        }
    }
    columns::batch(layout.schema, columns)
}

/// One record from the start of `data` into `scratch` (the fields' bytes, unquoted) and
/// `ends` (where each field ends in `scratch`); the bytes it took, terminator included.
fn quoted_record(
    data: &[u8],
    delimiter: u8,
    scratch: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> Option<usize> {
    scratch.clear();
    ends.clear();
    let mut i = 0;
    loop {
        if data.get(i) == Some(&b'"') {
            i += 1;
            loop {
                let quote = i + memchr::memchr(b'"', &data[i..])?;
                scratch.extend_from_slice(&data[i..quote]);
                if data.get(quote + 1) == Some(&b'"') {
                    scratch.push(b'"');
                    i = quote + 2;
                } else {
                    i = quote + 1;
                    break;
                }
            }
        }
        let stop = data[i..]
            .iter()
            .position(|&b| b == delimiter || b == b'\n' || b == b'\r')
            .map_or(data.len(), |k| i + k);
        scratch.extend_from_slice(&data[i..stop]);
        ends.push(scratch.len());
        match data.get(stop) {
            None => return Some(data.len()),
            Some(b'\n') => return Some(stop + 1),
            Some(b'\r') if data.get(stop + 1) == Some(&b'\n') => return Some(stop + 2),
            Some(b'\r') => return Some(stop + 1),
            Some(_) => i = stop + 1,
        }
    }
}

/// A record of the wrong width: bad input.
fn ragged(line: &[u8], delimiter: u8, width: usize, line_number: u64) -> Stop {
    let found = memchr::memchr_iter(delimiter, line).count() + 1;
    Stop::Bad(Error::BadRecord {
        line: line_number,
        reason: format!("expected {width} fields, found {found}"),
    })
}

/// The misfit at `line`, with the columns widened over the lines from there on.
fn widen_rest(rest: &[u8], layout: &Layout<'_>, line: u64, column: usize) -> Stop {
    let mut stop = layout.misfit(line, column);
    if let Stop::Misfit { kinds, .. } = &mut stop {
        let width = kinds.len();
        for text in rest.split(|b| *b == b'\n') {
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if memchr::memchr_iter(layout.delimiter, text).count() + 1 == width {
                layout.widen(kinds, text.split(|b| *b == layout.delimiter));
            }
        }
    }
    stop
}

/// Decodes a whole chunk for tests and small callers.
#[cfg(test)]
pub(crate) fn parse_for_test(chunk: &[u8], columns: &ColumnSchema) -> Result<RecordBatch> {
    let schema = columns.arrow();
    let values = Values::default();
    let layout = Layout {
        schema: &schema,
        columns,
        values: &values,
        delimiter: b',',
    };
    parse_chunk(chunk, &layout, 1).map_err(|stop| match stop {
        Stop::Bad(error) => error,
        Stop::Misfit { line, .. } => Error::BadRecord {
            line,
            reason: "misfit".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};

    fn columns(kinds: &[Kind]) -> ColumnSchema {
        ColumnSchema {
            columns: kinds
                .iter()
                .enumerate()
                .map(|(i, k)| (format!("c{i}"), *k))
                .collect(),
            strict: true,
        }
    }

    #[test]
    fn decodes_plain_records_nulls_and_crlf() {
        let s = columns(&[Kind::Int64, Kind::Text, Kind::Float64]);
        let batch = parse_for_test(b"1,aa,1.5\r\n-2,,3e2\n\n3,NA,NA\n", &s).unwrap();
        assert_eq!(batch.num_rows(), 3);
        let ints = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(ints.values().as_ref(), &[1, -2, 3]);
        let names = batch.column(1).as_string::<i32>();
        assert_eq!(names.value(0), "aa");
        assert!(names.is_null(1) && names.is_null(2));
        assert!(batch.column(2).is_null(2));
    }

    #[test]
    fn timestamps_and_dates() {
        let s = columns(&[Kind::TimestampUtc, Kind::Date, Kind::Boolean]);
        let batch =
            parse_for_test(b"2013-01-01T10:00:00Z,2024-01-31,True\nNULL,,FALSE\n", &s).unwrap();
        let ts = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 1_357_034_400_000_000);
        assert!(ts.is_null(1));
        assert_eq!(
            batch.schema().field(0).data_type().to_string(),
            "Timestamp(µs, \"UTC\")"
        );
    }

    #[test]
    fn errors_name_physical_lines() {
        let s = columns(&[Kind::Int64, Kind::Text]);
        let err = parse_for_test(b"1,a\n\n2,b,c\n", &s).unwrap_err();
        assert_eq!(err.to_string(), "line 3: expected 2 fields, found 3");
        let err = parse_for_test(b"1,a\n2,\xff\n", &s).unwrap_err();
        assert_eq!(err.line(), Some(2));
        let err = parse_for_test(b"1,a\nx,b\n", &s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: column 'c0': a value does not fit int64"
        );
    }
}
