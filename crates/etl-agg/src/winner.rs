//! Finding the maximum of one column, and reading the winning row back.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaData;

use crate::{Cell, Error, Result, SparseFile};

/// A comparable value of the aggregated column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// Any integer column, signed or unsigned (`u64` values above `i64::MAX` included).
    Int(i128),
    /// Any floating-point column.
    Float(f64),
}

impl Value {
    /// `self > other`, across integer and float columns.
    pub fn greater_than(self, other: Value) -> bool {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a > b,
            (a, b) => a.as_f64() > b.as_f64(),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
        }
    }
}

/// The first maximum of a file: its value and row position in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The maximum.
    pub value: Value,
    /// 0-based row of the first row holding it.
    pub row: u64,
}

/// Byte ranges of column `column` in every row group.
pub fn column_chunk_ranges(metadata: &ParquetMetaData, column: usize) -> Vec<Range<u64>> {
    metadata
        .row_groups()
        .iter()
        .map(|rg| {
            let (start, length) = rg.column(column).byte_range();
            start..start + length
        })
        .collect()
}

/// Index of the leaf column named `name`, or an error listing the columns.
fn column_index(file: &SparseFile, metadata: &ParquetMetaData, name: &str) -> Result<usize> {
    let schema = metadata.file_metadata().schema_descr();
    (0..schema.num_columns())
        .find(|i| schema.column(*i).name() == name)
        .ok_or_else(|| Error::NoColumn {
            key: file.key().to_owned(),
            column: name.to_owned(),
            columns: (0..schema.num_columns())
                .map(|i| schema.column(i).name().to_owned())
                .collect::<Vec<_>>()
                .join(","),
        })
}

fn builder(
    file: &SparseFile,
    metadata: &Arc<ParquetMetaData>,
) -> Result<ParquetRecordBatchReaderBuilder<SparseFile>> {
    let corrupt = |e: parquet::errors::ParquetError| Error::Corrupt {
        key: file.key().to_owned(),
        reason: e.to_string(),
    };
    let reader_metadata = ArrowReaderMetadata::try_new(metadata.clone(), ArrowReaderOptions::new())
        .map_err(corrupt)?;
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
        file.clone(),
        reader_metadata,
    ))
}

/// Resolves `column` to its leaf index (for [`column_chunk_ranges`]).
pub fn resolve_column(
    file: &SparseFile,
    metadata: &ParquetMetaData,
    column: &str,
) -> Result<usize> {
    column_index(file, metadata, column)
}

/// The first maximum of `column` (nulls and NaN skipped, as pandas `idxmax` does), or
/// `None` for a file without rows or values. Reads only that column's chunks.
pub fn column_max(
    file: &SparseFile,
    metadata: &Arc<ParquetMetaData>,
    column: &str,
) -> Result<Option<Candidate>> {
    let index = column_index(file, metadata, column)?;
    let corrupt = |reason: String| Error::Corrupt {
        key: file.key().to_owned(),
        reason,
    };
    let builder = builder(file, metadata)?;
    let mask = ProjectionMask::leaves(metadata.file_metadata().schema_descr(), [index]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    let mut best: Option<Candidate> = None;
    let mut offset = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        let array = batch.column(0);
        let data_type = array.data_type().clone();
        let consider = |value: Value, row: u64, best: &mut Option<Candidate>| {
            if best.is_none_or(|b| value.greater_than(b.value)) {
                *best = Some(Candidate { value, row });
            }
        };
        if data_type == DataType::UInt64 {
            // Above i64::MAX a cast to Int64 would turn values into nulls.
            for (i, v) in array.as_primitive::<UInt64Type>().iter().enumerate() {
                if let Some(v) = v {
                    consider(Value::Int(i128::from(v)), offset + i as u64, &mut best);
                }
            }
        } else if data_type.is_integer() {
            let ints =
                arrow_cast::cast(array, &DataType::Int64).map_err(|e| corrupt(e.to_string()))?;
            for (i, v) in ints.as_primitive::<Int64Type>().iter().enumerate() {
                if let Some(v) = v {
                    consider(Value::Int(i128::from(v)), offset + i as u64, &mut best);
                }
            }
        } else if data_type.is_floating()
            || matches!(
                data_type,
                DataType::Decimal128(..) | DataType::Decimal256(..)
            )
        {
            let floats =
                arrow_cast::cast(array, &DataType::Float64).map_err(|e| corrupt(e.to_string()))?;
            for (i, v) in floats.as_primitive::<Float64Type>().iter().enumerate() {
                if let Some(v) = v.filter(|v| !v.is_nan()) {
                    consider(Value::Float(v), offset + i as u64, &mut best);
                }
            }
        } else {
            return Err(Error::NotNumeric {
                key: file.key().to_owned(),
                column: column.to_owned(),
                data_type: plain_type_name(&data_type),
            });
        }
        offset += batch.num_rows() as u64;
    }
    Ok(best)
}

/// A type as users name it (`int64`, `float64`, `text`, `date`, `timestamp`, `bool`),
/// not as Arrow prints it (`Utf8`, `Timestamp(µs, "UTC")`).
pub(crate) fn plain_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".to_owned(),
        DataType::Boolean => "bool".to_owned(),
        DataType::Date32 | DataType::Date64 => "date".to_owned(),
        DataType::Timestamp(..) => "timestamp".to_owned(),
        DataType::Time32(_) | DataType::Time64(_) => "time".to_owned(),
        DataType::Duration(_) | DataType::Interval(_) => "duration".to_owned(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".to_owned(),
        DataType::FixedSizeBinary(_) => "binary".to_owned(),
        DataType::Null => "null".to_owned(),
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(..) => "list".to_owned(),
        DataType::Struct(_) => "struct".to_owned(),
        DataType::Map(..) => "map".to_owned(),
        DataType::Dictionary(_, values) => plain_type_name(values),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// Row `index` of `batch` with its column names: as pandas prints it (nulls as `NaN`) and
/// as typed JSON.
pub(crate) fn format_row(
    key: &str,
    batch: &arrow_array::RecordBatch,
    index: usize,
) -> Result<Vec<Cell>> {
    let options = FormatOptions::default().with_null("NaN");
    let schema = batch.schema();
    let mut values = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let corrupt = |e: arrow_schema::ArrowError| Error::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        };
        // Arrow formats only offset time zones without a zone database: an instant with a
        // named zone ("UTC", as etl writes) is shown in UTC, which it is.
        let array = match array.data_type() {
            DataType::Timestamp(unit, Some(_)) => {
                arrow_cast::cast(array, &DataType::Timestamp(*unit, Some("+00:00".into())))
                    .map_err(corrupt)?
            }
            _ => array.clone(),
        };
        let formatter = ArrayFormatter::try_new(array.as_ref(), &options).map_err(corrupt)?;
        let text = formatter.value(index).to_string();
        let value = json_value(array.as_ref(), index, &text);
        values.push(Cell {
            name: field.name().clone(),
            text,
            value,
        });
    }
    Ok(values)
}

/// Value `index` of `array` as JSON: numbers and booleans as such (a float that JSON
/// cannot hold, NaN or infinite, as null), anything else as its text.
fn json_value(array: &dyn Array, index: usize, text: &str) -> serde_json::Value {
    use arrow_array::types::{
        Float32Type, Int8Type, Int16Type, Int32Type, UInt8Type, UInt16Type, UInt32Type,
    };
    use serde_json::Value as Json;
    if array.is_null(index) {
        return Json::Null;
    }
    let float = |v: f64| serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number);
    match array.data_type() {
        DataType::Boolean => Json::Bool(array.as_boolean().value(index)),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(index).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(index).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(index).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(index).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(index).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(index).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(index).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(index).into(),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(index))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(index)),
        _ => Json::String(text.to_owned()),
    }
}
