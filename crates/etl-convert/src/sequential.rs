//! The sequential decoder: records framed by the `csv` crate (quoted fields, newlines in
//! quotes), each knowing its physical line, built into batches by the shared builders.
//! Under `--bad-rows skip|quarantine` bad records are handed to the caller instead.

use std::io::Read;

use arrow_array::RecordBatch;

use crate::bounded::Bounded;
use crate::columns::{self, Column};
use crate::fastparse::{Layout, Stop};
use crate::tolerant::RejectedRow;
use crate::{Error, Result};

/// Decodes records from a `csv` reader into batches.
pub(crate) struct Sequential<R: Read> {
    reader: csv::Reader<Bounded<R>>,
    record: csv::ByteRecord,
    /// Added to the reader's line numbers to give lines of the whole input.
    line_offset: u64,
    skip_header: bool,
    batch_size: usize,
}

/// Where set-aside records go (`None`: the first bad record stops the conversion).
pub(crate) type Rejects<'a> = Option<&'a mut dyn FnMut(RejectedRow) -> Result<()>>;

impl<R: Read> Sequential<R> {
    /// Records of `input`, whose first line is `first_line` of the whole input; records
    /// longer than `max_record_bytes` are bad records (never held whole).
    pub(crate) fn new(
        input: R,
        delimiter: u8,
        first_line: u64,
        skip_header: bool,
        batch_size: usize,
        max_record_bytes: usize,
    ) -> Self {
        let input = Bounded::new(input, delimiter, max_record_bytes as u64);
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(256 * 1024)
            .from_reader(input);
        Sequential {
            reader,
            record: csv::ByteRecord::new(),
            line_offset: first_line - 1,
            skip_header,
            batch_size: batch_size.max(1),
        }
    }

    /// The next record and its line, `None` at the end; blank lines and the header are
    /// skipped. A record cut at the length limit comes with `true` (only the bytes up to
    /// the limit are in `self.record`).
    fn read(&mut self) -> Result<Option<(u64, bool)>> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return Ok(None),
                Ok(true) => {}
                Err(error) => {
                    let line = error.position().map_or(0, csv::Position::line) + self.line_offset;
                    let reason = error.to_string();
                    return Err(match error.into_kind() {
                        csv::ErrorKind::Io(io) => Error::Read(io),
                        _ => Error::BadRecord { line, reason },
                    });
                }
            }
            let start = self.record.position().map_or(0, csv::Position::byte);
            let end = self.reader.position().byte();
            if let Some(line) = self.reader.get_mut().take_cut(start, end) {
                return Ok(Some((line + self.line_offset, true)));
            }
            let line = self.record.position().map_or(0, csv::Position::line) + self.line_offset;
            if std::mem::take(&mut self.skip_header) {
                continue;
            }
            if self.record.len() == 1 && self.record.get(0).is_some_and(<[u8]>::is_empty) {
                continue;
            }
            return Ok(Some((line, false)));
        }
    }

    /// The next batch, or `None` at the end of the input.
    pub(crate) fn next_batch(
        &mut self,
        layout: &Layout<'_>,
        mut rejects: Rejects<'_>,
    ) -> std::result::Result<Option<RecordBatch>, Stop> {
        let width = layout.schema.fields().len();
        let mut columns = Column::for_schema(layout.schema, self.batch_size, 0);
        let mut rows = 0usize;
        while rows < self.batch_size {
            let Some((line, cut)) = self.read()? else {
                break;
            };
            let problem = if cut {
                let limit = usize::try_from(self.reader.get_ref().limit()).unwrap_or(usize::MAX);
                match crate::options::too_long(line, limit) {
                    Error::BadRecord { reason, .. } => Some(reason),
                    other => Some(other.to_string()),
                }
            } else if self.record.len() != width {
                Some(format!(
                    "expected {width} fields, found {}",
                    self.record.len()
                ))
            } else if std::str::from_utf8(self.record.as_slice()).is_err() {
                Some("invalid UTF-8 (the file must be UTF-8 text)".to_owned())
            } else {
                None
            };
            if let Some(reason) = problem {
                match rejects.as_deref_mut() {
                    Some(rejects) => {
                        let row = if cut {
                            // Only its line and reason: the record is too long to keep.
                            RejectedRow {
                                line,
                                reason,
                                record: String::new(),
                            }
                        } else {
                            self.rejected(line, reason, layout.delimiter)
                        };
                        rejects(row)?;
                        continue;
                    }
                    None => return Err(Stop::Bad(Error::BadRecord { line, reason })),
                }
            }
            if rejects.is_some() {
                // Check first: a record set aside must leave no value behind.
                let misfit = columns
                    .iter()
                    .zip(self.record.iter())
                    .position(|(c, f)| !c.fits(f, layout.values));
                if let Some(column) = misfit {
                    match layout.misfit(line, column) {
                        Stop::Bad(Error::BadRecord { reason, .. }) => {
                            let row = self.rejected(line, reason, layout.delimiter);
                            if let Some(rejects) = rejects.as_deref_mut() {
                                rejects(row)?;
                            }
                            continue;
                        }
                        stop => return Err(self.widen_rest(layout, stop)),
                    }
                }
            }
            for (index, (column, field)) in columns.iter_mut().zip(self.record.iter()).enumerate() {
                if column.push(field, layout.values).is_err() {
                    let stop = layout.misfit(line, index);
                    return Err(self.widen_rest(layout, stop));
                }
            }
            rows += 1;
        }
        if rows == 0 {
            return Ok(None);
        }
        columns::batch(layout.schema, columns)
            .map(Some)
            .ok_or_else(|| Stop::Bad(Error::BadCsv("could not assemble a batch".into())))
    }

    /// Completes a misfit with the columns widened over the rest of the input.
    fn widen_rest(&mut self, layout: &Layout<'_>, mut stop: Stop) -> Stop {
        if let Stop::Misfit { kinds, .. } = &mut stop {
            let width = kinds.len();
            let record = self.record.clone();
            layout.widen(kinds, record.iter());
            while let Ok(Some((_, cut))) = self.read() {
                if !cut && self.record.len() == width {
                    let record = &self.record;
                    layout.widen(kinds, record.iter());
                }
            }
        }
        stop
    }

    fn rejected(&self, line: u64, reason: String, delimiter: u8) -> RejectedRow {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let _ = writer.write_byte_record(&self.record);
        let bytes = writer.into_inner().unwrap_or_default();
        RejectedRow {
            line,
            reason,
            record: String::from_utf8_lossy(&bytes)
                .trim_end_matches('\n')
                .to_owned(),
        }
    }
}
