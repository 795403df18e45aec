//! Reading one row back with as few bytes as possible: the page index tells which page of
//! each column holds the row, and only those pages (plus dictionaries) are asked for.
//!
//! A pull-style state machine: [`RowReader::step`] says which byte ranges it needs next or
//! yields the row; the caller fetches the ranges and hands them to [`RowReader::push`].

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use parquet::DecodeResult;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::arrow::push_decoder::{ParquetPushDecoder, ParquetPushDecoderBuilder};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataPushDecoder};

use crate::winner::format_row;
use crate::{Error, Result};

/// What the reader wants next.
#[derive(Debug)]
pub enum Step {
    /// Fetch these byte ranges and [`RowReader::push`] them.
    Fetch(Vec<Range<u64>>),
    /// The row, in column order.
    Row(Vec<crate::Cell>),
}

enum Stage {
    /// Loading the offset index of each column chunk.
    PageIndex(Box<ParquetMetaDataPushDecoder>),
    /// Decoding the selected row.
    Rows(Box<ParquetPushDecoder>),
}

/// Reads row `row` (0-based, in the file) of a file whose footer is known.
pub struct RowReader {
    key: String,
    row: u64,
    stage: Stage,
}

impl RowReader {
    /// A reader for `row` of the object `key` of `size` bytes.
    pub fn try_new(
        key: &str,
        size: u64,
        metadata: &ParquetMetaData,
        row: u64,
    ) -> Result<RowReader> {
        let decoder = ParquetMetaDataPushDecoder::try_new_with_metadata(size, metadata.clone())
            .map_err(|e| corrupt(key, &e))?
            .with_offset_index_policy(PageIndexPolicy::Optional)
            .with_column_index_policy(PageIndexPolicy::Skip);
        Ok(RowReader {
            key: key.to_owned(),
            row,
            stage: Stage::PageIndex(Box::new(decoder)),
        })
    }

    /// The next thing to do.
    pub fn step(&mut self) -> Result<Step> {
        loop {
            match &mut self.stage {
                Stage::PageIndex(decoder) => {
                    match decoder.try_decode().map_err(|e| corrupt(&self.key, &e))? {
                        DecodeResult::NeedsData(ranges) => return Ok(Step::Fetch(ranges)),
                        DecodeResult::Data(metadata) => {
                            let rows = metadata.file_metadata().num_rows().max(0) as u64;
                            if self.row >= rows {
                                return Err(Error::Corrupt {
                                    key: self.key.clone(),
                                    reason: format!("row {} is beyond its {rows} rows", self.row),
                                });
                            }
                            let selection = RowSelection::from(vec![
                                RowSelector::skip(self.row as usize),
                                RowSelector::select(1),
                            ]);
                            let decoder =
                                ParquetPushDecoderBuilder::try_new_decoder(Arc::new(metadata))
                                    .map_err(|e| corrupt(&self.key, &e))?
                                    .with_row_selection(selection)
                                    .with_batch_size(1)
                                    .build()
                                    .map_err(|e| corrupt(&self.key, &e))?;
                            self.stage = Stage::Rows(Box::new(decoder));
                        }
                        DecodeResult::Finished => {
                            return Err(Error::Corrupt {
                                key: self.key.clone(),
                                reason: "the footer ended early".into(),
                            });
                        }
                    }
                }
                Stage::Rows(decoder) => {
                    match decoder.try_decode().map_err(|e| corrupt(&self.key, &e))? {
                        DecodeResult::NeedsData(ranges) => return Ok(Step::Fetch(ranges)),
                        DecodeResult::Data(batch) if batch.num_rows() > 0 => {
                            return format_row(&self.key, &batch, 0).map(Step::Row);
                        }
                        DecodeResult::Data(_) => {}
                        DecodeResult::Finished => {
                            return Err(Error::Corrupt {
                                key: self.key.clone(),
                                reason: format!("row {} was not found", self.row),
                            });
                        }
                    }
                }
            }
        }
    }

    /// Hands over fetched ranges (in the order [`Step::Fetch`] listed them).
    pub fn push(&mut self, ranges: Vec<Range<u64>>, data: Vec<Bytes>) -> Result<()> {
        let outcome = match &mut self.stage {
            Stage::PageIndex(decoder) => decoder.push_ranges(ranges, data),
            Stage::Rows(decoder) => decoder.push_ranges(ranges, data),
        };
        outcome.map_err(|e| corrupt(&self.key, &e))
    }
}

fn corrupt(key: &str, error: &parquet::errors::ParquetError) -> Error {
    Error::Corrupt {
        key: key.to_owned(),
        reason: error.to_string(),
    }
}
