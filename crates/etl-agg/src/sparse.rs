//! A Parquet file known only by the byte ranges fetched so far.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};

use crate::{Error, Result};

/// Byte ranges of one object, with its total size.
#[derive(Debug, Clone)]
pub struct SparseFile {
    key: String,
    size: u64,
    ranges: Vec<(u64, Bytes)>,
}

impl SparseFile {
    /// An object of `size` bytes with nothing fetched yet.
    pub fn new(key: impl Into<String>, size: u64) -> SparseFile {
        SparseFile {
            key: key.into(),
            size,
            ranges: Vec::new(),
        }
    }

    /// The object key (for messages).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Total size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds bytes fetched at `start`.
    pub fn insert(&mut self, start: u64, data: Bytes) {
        self.ranges.push((start, data));
    }

    /// Whether `start..end` is already available.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        self.find(start, end).is_some()
    }

    /// The bytes `start..end`, if already fetched.
    pub fn get(&self, start: u64, end: u64) -> Option<Bytes> {
        self.find(start, end)
    }

    fn find(&self, start: u64, end: u64) -> Option<Bytes> {
        self.ranges.iter().find_map(|(offset, data)| {
            let stop = offset + data.len() as u64;
            (*offset <= start && end <= stop)
                .then(|| data.slice((start - offset) as usize..(end - offset) as usize))
        })
    }
}

impl Length for SparseFile {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for SparseFile {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.ranges
            .iter()
            .find(|(offset, data)| *offset <= start && start < offset + data.len() as u64)
            .map(|(offset, data)| data.slice((start - offset) as usize..).reader())
            .ok_or_else(|| ParquetError::General(format!("bytes from {start} were not fetched")))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.find(start, start + length as u64).ok_or_else(|| {
            ParquetError::General(format!(
                "bytes {start}..{} were not fetched",
                start + length as u64
            ))
        })
    }
}

/// The outcome of a footer parse over the fetched suffix.
#[derive(Debug)]
pub enum FooterParse {
    /// The metadata.
    Parsed(Arc<ParquetMetaData>),
    /// The footer is longer: fetch this many bytes from the end and try again.
    NeedSuffix(u64),
}

/// Parses the footer from the fetched suffix of the file.
pub fn parse_footer(file: &SparseFile) -> Result<FooterParse> {
    let corrupt = |reason: String| Error::Corrupt {
        key: file.key.clone(),
        reason,
    };
    if file.size < 12 {
        return Err(corrupt(format!("{} bytes is too small", file.size)));
    }
    let size = file.size;
    let Some(tail) = file.find(size - 8, size) else {
        return Ok(FooterParse::NeedSuffix(8));
    };
    if &tail[4..] != b"PAR1" {
        return Err(corrupt(
            "no Parquet magic at the end (not Parquet, or encrypted)".into(),
        ));
    }
    let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let needed = length + 8;
    if needed + 4 > size {
        return Err(corrupt(format!(
            "footer of {length} bytes in a {size}-byte file"
        )));
    }
    let Some(footer) = file.find(size - needed, size - 8) else {
        return Ok(FooterParse::NeedSuffix(needed));
    };
    ParquetMetaDataReader::decode_metadata(&footer)
        .map(|m| FooterParse::Parsed(Arc::new(m)))
        .map_err(|e| corrupt(e.to_string()))
}
