//! Arrow column builders fed one field at a time under the rules of [`crate::values`];
//! every decoding path (parallel, sequential, tolerant) builds its batches with them.

use std::sync::Arc;

use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, PrimitiveArray, RecordBatch,
    StringArray, Time64MicrosecondArray,
};
use arrow_buffer::{BooleanBufferBuilder, NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, SchemaRef};

use crate::values::{Kind, Values, parse_bool, parse_date, parse_i64, parse_time, parse_timestamp};

/// One column being built.
pub(crate) enum Column {
    Boolean(BooleanBufferBuilder, NullBufferBuilder),
    Int64(Vec<i64>, NullBufferBuilder),
    Float64(Vec<f64>, NullBufferBuilder),
    Date(Vec<i32>, NullBufferBuilder),
    Time(Vec<i64>, NullBufferBuilder),
    Timestamp {
        values: Vec<i64>,
        nulls: NullBufferBuilder,
        zoned: bool,
        data_type: DataType,
    },
    Text {
        offsets: Vec<i32>,
        values: Vec<u8>,
        nulls: NullBufferBuilder,
    },
}

/// A value that does not fit its column's type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Misfit;

impl Column {
    pub(crate) fn new(data_type: &DataType, rows: usize, bytes: usize) -> Column {
        match Kind::of(data_type).unwrap_or(Kind::Text) {
            Kind::Boolean => Column::Boolean(
                BooleanBufferBuilder::new(rows),
                NullBufferBuilder::new(rows),
            ),
            Kind::Int64 => Column::Int64(Vec::with_capacity(rows), NullBufferBuilder::new(rows)),
            Kind::Float64 => {
                Column::Float64(Vec::with_capacity(rows), NullBufferBuilder::new(rows))
            }
            Kind::Date => Column::Date(Vec::with_capacity(rows), NullBufferBuilder::new(rows)),
            Kind::Time => Column::Time(Vec::with_capacity(rows), NullBufferBuilder::new(rows)),
            kind @ (Kind::Timestamp | Kind::TimestampUtc) => Column::Timestamp {
                values: Vec::with_capacity(rows),
                nulls: NullBufferBuilder::new(rows),
                zoned: kind == Kind::TimestampUtc,
                data_type: kind.data_type(),
            },
            Kind::Null | Kind::Text => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Column::Text {
                    offsets,
                    values: Vec::with_capacity(bytes),
                    nulls: NullBufferBuilder::new(rows),
                }
            }
        }
    }

    /// Builders for every column of `schema`.
    pub(crate) fn for_schema(schema: &SchemaRef, rows: usize, bytes: usize) -> Vec<Column> {
        let width = schema.fields().len().max(1);
        schema
            .fields()
            .iter()
            .map(|f| Column::new(f.data_type(), rows, bytes / width))
            .collect()
    }

    /// Whether `field` fits this column, without appending it.
    pub(crate) fn fits(&self, field: &[u8], rules: &Values) -> bool {
        if rules.is_null(field) {
            return true;
        }
        match self {
            Column::Boolean(..) => parse_bool(field).is_some(),
            Column::Int64(..) => parse_i64(field).is_some(),
            Column::Float64(..) => rules.parse_f64(field).is_some(),
            Column::Date(..) => parse_date(field).is_some(),
            Column::Time(..) => parse_time(field).is_some(),
            Column::Timestamp { zoned, .. } => timestamp(field, *zoned).is_some(),
            Column::Text { .. } => true,
        }
    }

    /// Appends one field.
    #[inline]
    pub(crate) fn push(&mut self, field: &[u8], rules: &Values) -> Result<(), Misfit> {
        self.extend(std::iter::once(field), rules)
    }

    /// Appends fields one after the other (the type is matched once, not per field).
    #[inline]
    pub(crate) fn extend<'f>(
        &mut self,
        fields: impl Iterator<Item = &'f [u8]>,
        rules: &Values,
    ) -> Result<(), Misfit> {
        match self {
            Column::Int64(values, nulls) => fill(values, nulls, fields, rules, parse_i64)?,
            Column::Float64(values, nulls) => {
                for field in fields {
                    match rules.parse_f64(field) {
                        Some(v) if !rules.float_may_be_null(v) => {
                            values.push(v);
                            nulls.append_non_null();
                        }
                        // A null token wins over the float spelling of NaN.
                        _ if rules.is_null(field) => {
                            values.push(0.0);
                            nulls.append_null();
                        }
                        Some(v) => {
                            values.push(v);
                            nulls.append_non_null();
                        }
                        None => return Err(Misfit),
                    }
                }
            }
            Column::Boolean(values, nulls) => {
                for field in fields {
                    match parse_bool(field) {
                        Some(v) => {
                            values.append(v);
                            nulls.append_non_null();
                        }
                        None if rules.is_null(field) => {
                            values.append(false);
                            nulls.append_null();
                        }
                        None => return Err(Misfit),
                    }
                }
            }
            Column::Date(values, nulls) => fill(values, nulls, fields, rules, parse_date)?,
            Column::Time(values, nulls) => fill(values, nulls, fields, rules, parse_time)?,
            Column::Timestamp {
                values,
                nulls,
                zoned,
                ..
            } => {
                let zoned = *zoned;
                fill(values, nulls, fields, rules, |field| {
                    timestamp(field, zoned)
                })?
            }
            Column::Text {
                offsets,
                values,
                nulls,
            } => {
                for field in fields {
                    if rules.is_null(field) {
                        nulls.append_null();
                    } else {
                        values.extend_from_slice(field);
                        nulls.append_non_null();
                    }
                    // Offsets beyond i32 cannot happen: chunks and batches are far smaller.
                    offsets.push(i32::try_from(values.len()).map_err(|_| Misfit)?);
                }
            }
        }
        Ok(())
    }

    /// The finished array; `None` when text is not UTF-8 (callers validate first).
    pub(crate) fn finish(self) -> Option<ArrayRef> {
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
            Column::Date(values, mut nulls) => {
                Arc::new(Date32Array::new(values.into(), nulls.finish()))
            }
            Column::Time(values, mut nulls) => {
                Arc::new(Time64MicrosecondArray::new(values.into(), nulls.finish()))
            }
            Column::Timestamp {
                values,
                mut nulls,
                data_type,
                ..
            } => Arc::new(
                PrimitiveArray::<TimestampMicrosecondType>::new(values.into(), nulls.finish())
                    .with_data_type(data_type),
            ),
            Column::Text {
                offsets,
                values,
                mut nulls,
            } => Arc::new(
                StringArray::try_new(
                    OffsetBuffer::new(offsets.into()),
                    values.into(),
                    nulls.finish(),
                )
                .ok()?,
            ),
        })
    }
}

/// Appends fields parsed by `parse` to a primitive column; a null token is a null.
#[inline]
fn fill<'f, T: Default>(
    values: &mut Vec<T>,
    nulls: &mut NullBufferBuilder,
    fields: impl Iterator<Item = &'f [u8]>,
    rules: &Values,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> Result<(), Misfit> {
    for field in fields {
        match parse(field) {
            Some(v) => {
                values.push(v);
                nulls.append_non_null();
            }
            None if rules.is_null(field) => {
                values.push(T::default());
                nulls.append_null();
            }
            None => return Err(Misfit),
        }
    }
    Ok(())
}

/// A timestamp of the column's zoning: a zoned column takes only zoned values; a naive
/// one takes naive values and plain dates (midnight).
#[inline]
fn timestamp(field: &[u8], zoned: bool) -> Option<i64> {
    match parse_timestamp(field) {
        Some((v, z)) if z == zoned => Some(v),
        Some(_) => None,
        None if !zoned => parse_date(field).map(|d| i64::from(d) * 86_400_000_000),
        None => None,
    }
}

/// A batch from finished columns.
pub(crate) fn batch(schema: &SchemaRef, columns: Vec<Column>) -> Option<RecordBatch> {
    let arrays = columns
        .into_iter()
        .map(Column::finish)
        .collect::<Option<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), arrays).ok()
}
