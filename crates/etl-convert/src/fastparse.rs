//! A fast decoder for the plain case: a chunk of complete, unquoted CSV records.
//!
//! It handles a strict subset of what arrow-csv accepts (no quotes, `\n` or `\r\n` line
//! ends, no blank lines, `Int64`/`Float64`/`Boolean`/`Utf8` columns, values in their
//! canonical spelling) and gives the same arrays arrow-csv would. Anything else makes it
//! answer `None`, and the caller decodes the chunk with arrow-csv, which then also produces
//! the exact error message for bad data. So this path never reports errors itself.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_buffer::{BooleanBufferBuilder, NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, SchemaRef};

/// One column being built.
enum Column {
    Int64(Vec<i64>, NullBufferBuilder),
    Float64(Vec<f64>, NullBufferBuilder),
    Boolean(BooleanBufferBuilder, NullBufferBuilder),
    Utf8 {
        offsets: Vec<i32>,
        values: Vec<u8>,
        nulls: NullBufferBuilder,
    },
}

impl Column {
    fn new(data_type: &DataType, rows: usize, bytes: usize) -> Option<Column> {
        Some(match data_type {
            DataType::Int64 => {
                Column::Int64(Vec::with_capacity(rows), NullBufferBuilder::new(rows))
            }
            DataType::Float64 => {
                Column::Float64(Vec::with_capacity(rows), NullBufferBuilder::new(rows))
            }
            DataType::Boolean => Column::Boolean(
                BooleanBufferBuilder::new(rows),
                NullBufferBuilder::new(rows),
            ),
            DataType::Utf8 => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Column::Utf8 {
                    offsets,
                    values: Vec::with_capacity(bytes),
                    nulls: NullBufferBuilder::new(rows),
                }
            }
            _ => return None,
        })
    }

    /// Appends one field; `None` when the value is not in the fast path's spelling.
    #[inline]
    fn push(&mut self, field: &[u8]) -> Option<()> {
        match self {
            Column::Int64(values, nulls) => {
                if field.is_empty() {
                    values.push(0);
                    nulls.append_null();
                } else {
                    values.push(parse_i64(field)?);
                    nulls.append_non_null();
                }
            }
            Column::Float64(values, nulls) => {
                if field.is_empty() {
                    values.push(0.0);
                    nulls.append_null();
                } else {
                    values.push(parse_f64(field)?);
                    nulls.append_non_null();
                }
            }
            Column::Boolean(values, nulls) => {
                if field.is_empty() {
                    values.append(false);
                    nulls.append_null();
                } else if field.eq_ignore_ascii_case(b"true") {
                    values.append(true);
                    nulls.append_non_null();
                } else if field.eq_ignore_ascii_case(b"false") {
                    values.append(false);
                    nulls.append_non_null();
                } else {
                    return None;
                }
            }
            Column::Utf8 {
                offsets,
                values,
                nulls,
            } => {
                values.extend_from_slice(field);
                offsets.push(i32::try_from(values.len()).ok()?);
                if field.is_empty() {
                    nulls.append_null();
                } else {
                    nulls.append_non_null();
                }
            }
        }
        Some(())
    }

    fn finish(self) -> Option<ArrayRef> {
        Some(match self {
            Column::Int64(values, mut nulls) => {
                Arc::new(Int64Array::new(values.into(), nulls.finish())) as ArrayRef
            }
            Column::Float64(values, mut nulls) => {
                Arc::new(Float64Array::new(values.into(), nulls.finish()))
            }
            Column::Boolean(mut values, mut nulls) => {
                Arc::new(BooleanArray::new(values.finish(), nulls.finish()))
            }
            Column::Utf8 {
                offsets,
                values,
                mut nulls,
            } => {
                // Validates UTF-8: invalid text goes to arrow-csv for its error message.
                let array = StringArray::try_new(
                    OffsetBuffer::new(offsets.into()),
                    values.into(),
                    nulls.finish(),
                )
                .ok()?;
                Arc::new(array)
            }
        })
    }
}

/// `-?[0-9]+` into an `i64`, or `None` (other spellings and overflow go to arrow-csv).
#[inline]
fn parse_i64(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + i64::from(digit);
    }
    Some(if negative { -value } else { value })
}

/// `-?digits(.digits)?([eE][+-]?digits)?` into an `f64` (correctly rounded, as arrow-csv's
/// parser does), or `None`.
#[inline]
fn parse_f64(field: &[u8]) -> Option<f64> {
    let mut i = usize::from(field.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < field.len() && field[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if field.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(field.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(field.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != field.len() {
        return None;
    }
    // Only ASCII digits and signs were accepted above.
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Decodes `chunk` (complete records, no quote characters) into one batch of `schema`, or
/// `None` when anything falls outside the fast path.
pub(crate) fn parse_chunk(chunk: &[u8], schema: &SchemaRef, delimiter: u8) -> Option<RecordBatch> {
    if delimiter == b'\r' || delimiter == b'\n' || delimiter == b'"' {
        return None;
    }
    let width = schema.fields().len();
    // A first guess at the row count sizes the buffers.
    let first_line = memchr::memchr(b'\n', chunk).map_or(chunk.len(), |i| i + 1);
    let rows_guess = chunk.len() / first_line.max(1) + 16;
    let mut columns = schema
        .fields()
        .iter()
        .map(|f| Column::new(f.data_type(), rows_guess, chunk.len() / width.max(1)))
        .collect::<Option<Vec<_>>>()?;
    let has_cr = memchr::memchr(b'\r', chunk).is_some();
    let mut rows = 0usize;
    let mut rest = chunk;
    while !rest.is_empty() {
        let (mut line, next) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if has_cr {
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            // A lone carriage return also ends a record for arrow-csv.
            if memchr::memchr(b'\r', line).is_some() {
                return None;
            }
        }
        if line.is_empty() {
            return None;
        }
        let mut fields = line.split(|b| *b == delimiter);
        for column in &mut columns {
            column.push(fields.next()?)?;
        }
        if fields.next().is_some() {
            return None;
        }
        rows += 1;
    }
    let arrays = columns
        .into_iter()
        .map(Column::finish)
        .collect::<Option<Vec<_>>>()?;
    debug_assert!(arrays.iter().all(|a| a.len() == rows));
    RecordBatch::try_new(schema.clone(), arrays).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_schema::{Field, Schema};

    fn schema(types: &[DataType]) -> SchemaRef {
        Arc::new(Schema::new(
            types
                .iter()
                .enumerate()
                .map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    #[test]
    fn decodes_plain_records_and_crlf() {
        let s = schema(&[DataType::Int64, DataType::Utf8, DataType::Float64]);
        let batch = parse_chunk(b"1,aa,1.5\r\n-2,,3e2\n3,c,", &s, b',').unwrap();
        assert_eq!(batch.num_rows(), 3);
        let ints = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(ints.values().as_ref(), &[1, -2, 3]);
        let names = batch.column(1).as_string::<i32>();
        assert_eq!(names.value(0), "aa");
        assert!(names.is_null(1));
        assert!(batch.column(2).is_null(2));
    }

    #[test]
    fn leaves_unusual_input_to_arrow() {
        let s = schema(&[DataType::Int64, DataType::Utf8]);
        for chunk in [
            &b"+1,a\n"[..],
            b"1,a\n\n2,b\n",
            b"1,a,x\n",
            b"1\n",
            b"1,a\r2,b\n",
            b"99999999999999999999,a\n",
            b"1,\xff\n",
        ] {
            assert!(parse_chunk(chunk, &s, b',').is_none(), "{chunk:?}");
        }
        let s = schema(&[DataType::Date32]);
        assert!(parse_chunk(b"2024-01-01\n", &s, b',').is_none());
    }

    #[test]
    fn floats_and_booleans() {
        assert_eq!(parse_f64(b"-0.25"), Some(-0.25));
        assert_eq!(parse_f64(b"1E-3"), Some(0.001));
        assert_eq!(parse_f64(b"1."), None);
        assert_eq!(parse_f64(b"nan"), None);
        let s = schema(&[DataType::Boolean]);
        let batch = parse_chunk(b"TRUE\nfalse\n\n", &s, b',');
        assert!(batch.is_none(), "blank line");
        let batch = parse_chunk(b"TRUE\nfalse\n", &s, b',').unwrap();
        assert_eq!(batch.num_rows(), 2);
    }
}
