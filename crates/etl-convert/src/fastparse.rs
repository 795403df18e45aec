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
/// `None` for anything unusual (a bad record, a misfit, invalid UTF-8, an unclosed quote):
/// the caller decodes the chunk with the `csv` crate then, for its exact errors.
pub(crate) fn parse_quoted_chunk(chunk: &[u8], layout: &Layout<'_>) -> Option<RecordBatch> {
    fast_chunk(chunk, layout, Framing::Quoted)
}

/// Decodes `chunk` (complete lines, no quote characters) as [`parse_chunk`] does, `None`
/// where that one would stop (it is then asked for the exact error).
pub(crate) fn parse_plain_chunk(chunk: &[u8], layout: &Layout<'_>) -> Option<RecordBatch> {
    fast_chunk(chunk, layout, Framing::Lines)
}

/// How records end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// The `csv` crate's: quotes, and `\r`, `\n` or `\r\n` end a record.
    Quoted,
    /// Lines: only `\n` ends a record, a `\r` before it is dropped; no quoting.
    Lines,
}

fn fast_chunk(chunk: &[u8], layout: &Layout<'_>, framing: Framing) -> Option<RecordBatch> {
    let delimiter = layout.delimiter;
    if matches!(delimiter, b'\n' | b'\r' | b'"') || !valid_utf8(chunk) {
        return None;
    }
    let first_len = memchr::memchr(b'\n', chunk).map_or(chunk.len(), |i| i + 1);
    let rows_guess = chunk.len() / first_len.max(1) + 16;
    let mut columns = Column::for_schema(layout.schema, rows_guess, chunk.len());
    records(chunk, layout, &mut columns, framing)?;
    columns::batch(layout.schema, columns)
}

/// Whether `bytes` are UTF-8 (SIMD where the CPU has it: every chunk is checked whole).
fn valid_utf8(bytes: &[u8]) -> bool {
    simdutf8::basic::from_utf8(bytes).is_ok()
}

/// Where a field's value is: bytes of the chunk, or (flagged) of the unescaped values.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// The flag on [`Span::start`] of a value unescaped into the side buffer.
const UNESCAPED: u32 = 1 << 31;

impl Span {
    #[inline]
    fn bytes<'a>(self, chunk: &'a [u8], unescaped: &'a [u8]) -> &'a [u8] {
        let (source, start) = if self.start & UNESCAPED == 0 {
            (chunk, self.start)
        } else {
            (unescaped, self.start & !UNESCAPED)
        };
        &source[start as usize..self.end as usize]
    }
}

/// Appends the records of `chunk` to `columns`; `None` at anything unusual. Records are
/// framed a batch at a time into spans, then each column takes its fields in one go (one
/// type decision per column and batch, not per field).
fn records(
    chunk: &[u8],
    layout: &Layout<'_>,
    columns: &mut [Column],
    framing: Framing,
) -> Option<()> {
    let len = chunk.len();
    let width = columns.len();
    if width == 0 || u32::try_from(len).map_or(true, |len| len >= UNESCAPED) {
        return None;
    }
    let quoted = framing == Framing::Quoted;
    // About 16 K fields per batch: the spans stay in the L2 cache.
    let batch_rows = (16 * 1024 / width).max(16);
    let mut spans: Vec<Span> = Vec::with_capacity(batch_rows * width);
    let mut unescaped = Vec::new();
    let mut ends = Ends::new(chunk, layout.delimiter, quoted);
    let mut pos = 0;
    while pos < len {
        spans.clear();
        unescaped.clear();
        let mut rows = 0;
        while rows < batch_rows && pos < len {
            // Blank lines are no records.
            match chunk[pos] {
                b'\n' => {
                    pos += 1;
                    continue;
                }
                b'\r' if quoted => {
                    pos += 1;
                    continue;
                }
                b'\r' if matches!(chunk.get(pos + 1), None | Some(b'\n')) => {
                    pos += 2;
                    continue;
                }
                _ => {}
            }
            let first = spans.len();
            loop {
                let (mut span, stop) = if quoted && chunk[pos] == b'"' {
                    quoted_field(chunk, pos, &mut ends, &mut unescaped)?
                } else {
                    let stop = ends.next(pos);
                    (
                        Span {
                            start: pos as u32,
                            end: stop as u32,
                        },
                        stop,
                    )
                };
                let record_ends = match chunk.get(stop) {
                    None => {
                        pos = len;
                        true
                    }
                    Some(b'\n') => {
                        pos = stop + 1;
                        true
                    }
                    Some(b'\r') if quoted => {
                        pos = stop + 1 + usize::from(chunk.get(stop + 1) == Some(&b'\n'));
                        true
                    }
                    Some(_) => {
                        pos = stop + 1;
                        false
                    }
                };
                if record_ends && !quoted && span.end > span.start {
                    // Lines end at `\n`: a `\r` before it is no part of the value.
                    span.end -= u32::from(chunk[span.end as usize - 1] == b'\r');
                }
                spans.push(span);
                if record_ends {
                    break;
                }
            }
            let fields = spans.len() - first;
            // A record of one empty field is skipped, as the sequential decoder does.
            if fields == 1 && spans[first].start & !UNESCAPED == spans[first].end {
                spans.truncate(first);
                continue;
            }
            if fields != width {
                return None;
            }
            rows += 1;
        }
        for (index, column) in columns.iter_mut().enumerate() {
            let fields = spans[index..]
                .iter()
                .step_by(width)
                .map(|span| span.bytes(chunk, &unescaped));
            column.extend(fields, layout.values).ok()?;
        }
    }
    Some(())
}

/// The quoted field starting at `pos` (its opening quote): its value and where it stops
/// (at a delimiter, a line end or the end of `chunk`). A value with `""` inside or text
/// after the closing quote is built in `unescaped`.
fn quoted_field(
    chunk: &[u8],
    pos: usize,
    ends: &mut Ends<'_>,
    unescaped: &mut Vec<u8>,
) -> Option<(Span, usize)> {
    let open = pos + 1;
    let close = open + memchr::memchr(b'"', &chunk[open..])?;
    let mut after = close + 1;
    if chunk.get(after) != Some(&b'"') {
        match chunk.get(after) {
            None | Some(b'\n' | b'\r') => {}
            Some(&byte) if byte == ends.delimiter => {}
            Some(_) => return Some(unescape(chunk, open, close, after, ends, unescaped)),
        }
        let span = Span {
            start: open as u32,
            end: close as u32,
        };
        return Some((span, after));
    }
    let start = unescaped.len();
    // `""` inside: the value is unescaped.
    unescaped.extend_from_slice(&chunk[open..close]);
    unescaped.push(b'"');
    let mut i = after + 1;
    loop {
        let quote = i + memchr::memchr(b'"', &chunk[i..])?;
        unescaped.extend_from_slice(&chunk[i..quote]);
        if chunk.get(quote + 1) == Some(&b'"') {
            unescaped.push(b'"');
            i = quote + 2;
        } else {
            after = quote + 1;
            break;
        }
    }
    let stop = ends.next(after);
    unescaped.extend_from_slice(&chunk[after..stop]);
    let span = Span {
        start: start as u32 | UNESCAPED,
        end: unescaped.len() as u32,
    };
    Some((span, stop))
}

/// A quoted value `chunk[open..close]` followed by unquoted text from `after` on, which
/// belongs to the field too.
fn unescape(
    chunk: &[u8],
    open: usize,
    close: usize,
    after: usize,
    ends: &mut Ends<'_>,
    unescaped: &mut Vec<u8>,
) -> (Span, usize) {
    let start = unescaped.len();
    unescaped.extend_from_slice(&chunk[open..close]);
    let stop = ends.next(after);
    unescaped.extend_from_slice(&chunk[after..stop]);
    let span = Span {
        start: start as u32 | UNESCAPED,
        end: unescaped.len() as u32,
    };
    (span, stop)
}

/// The bytes that end an unquoted field (the delimiter, `\n`, and `\r` under the `csv`
/// crate's framing), found 64 at a time as a bit mask.
struct Ends<'a> {
    data: &'a [u8],
    delimiter: u8,
    /// `\r`, or `\n` again where `\r` ends nothing.
    cr: u8,
    /// Where the block of `mask` starts.
    base: usize,
    /// Bit `i`: byte `base + i` ends a field.
    mask: u64,
}

impl<'a> Ends<'a> {
    fn new(data: &'a [u8], delimiter: u8, cr_ends: bool) -> Self {
        let mut ends = Ends {
            data,
            delimiter,
            cr: if cr_ends { b'\r' } else { b'\n' },
            base: 0,
            mask: 0,
        };
        ends.load(0);
        ends
    }

    /// The first byte at or after `from` that ends a field, or the end of the data.
    #[inline]
    fn next(&mut self, mut from: usize) -> usize {
        loop {
            if from < self.base || from >= self.base + 64 {
                if from >= self.data.len() {
                    return self.data.len();
                }
                self.load(from);
            }
            let mask = self.mask & (u64::MAX << (from - self.base));
            if mask != 0 {
                return self.base + mask.trailing_zeros() as usize;
            }
            from = self.base + 64;
        }
    }

    /// The mask of the 64 bytes from `at` (fewer at the end: the rest of the bits clear).
    #[inline]
    fn load(&mut self, at: usize) {
        self.base = at;
        let rest = &self.data[at.min(self.data.len())..];
        self.mask = match rest.first_chunk::<64>() {
            Some(block) => block_mask(block, self.delimiter, self.cr),
            None => {
                let mut block = [0u8; 64];
                block[..rest.len()].copy_from_slice(rest);
                block_mask(&block, self.delimiter, self.cr) & ((1u64 << rest.len()) - 1)
            }
        };
    }
}

/// Bit `i` set where `block[i]` is `delimiter`, `\n` or `cr`. Written so that the
/// compares become vector compares; each 8 bytes of 0/1 flags become 8 bits with one
/// multiplication (byte `j` lands on bit `56 + j`, no two partial products meet).
#[inline]
fn block_mask(block: &[u8; 64], delimiter: u8, cr: u8) -> u64 {
    let mut hits = [0u8; 64];
    for (hit, &byte) in hits.iter_mut().zip(block) {
        *hit = u8::from((byte == delimiter) | (byte == b'\n') | (byte == cr));
    }
    let mut mask = 0u64;
    for (k, flags) in hits.as_chunks::<8>().0.iter().enumerate() {
        let flags = u64::from_le_bytes(*flags);
        mask |= (flags.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    mask
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
