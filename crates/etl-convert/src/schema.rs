//! Schema contracts: the small editable file `etl --print-schema` writes and `--schema`
//! reads (one `name: type` line per column), and the widening a misfit asks for.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{Field, Schema, SchemaRef};

use crate::Error;
use crate::values::Kind;

/// Column names and kinds, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    /// `(name, kind)` per column.
    pub columns: Vec<(String, Kind)>,
    /// From a schema file (`--schema`): a value that does not fit is a bad row. Otherwise
    /// (a conversion run again after widening) a misfit widens again.
    pub strict: bool,
}

impl ColumnSchema {
    /// The Arrow schema.
    pub fn arrow(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(name, kind)| Field::new(name, kind.data_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// From an Arrow schema this converter wrote.
    pub fn from_arrow(schema: &Schema, strict: bool) -> ColumnSchema {
        ColumnSchema {
            columns: schema
                .fields()
                .iter()
                .map(|f| {
                    (
                        f.name().clone(),
                        Kind::of(f.data_type()).unwrap_or(Kind::Text),
                    )
                })
                .collect(),
            strict,
        }
    }

    /// Parses a schema file: `name: type` per line, `#` comments, blank lines ignored.
    pub fn parse(text: &str) -> Result<ColumnSchema, Error> {
        let mut columns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, kind) = line.rsplit_once(':').ok_or_else(|| {
                Error::Options(format!(
                    "schema line {}: expected 'name: type', got '{line}'",
                    index + 1
                ))
            })?;
            let kind = Kind::from_name(kind).ok_or_else(|| {
                Error::Options(format!(
                    "schema line {}: unknown type '{}' (known: text, int64, float64, boolean, date, timestamp, timestamp_utc)",
                    index + 1,
                    kind.trim()
                ))
            })?;
            columns.push((name.trim().to_owned(), kind));
        }
        if columns.is_empty() {
            return Err(Error::Options("the schema file lists no columns".into()));
        }
        Ok(ColumnSchema {
            columns,
            strict: true,
        })
    }

    /// A one-line form for the Parquet footer: `name:type,name:type`.
    pub fn compact(&self) -> String {
        self.columns
            .iter()
            .map(|(name, kind)| format!("{name}:{}", kind.name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for ColumnSchema {
    /// The editable file form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# etl schema: one 'name: type' line per column, in file order; edit and pass with --schema"
        )?;
        writeln!(
            f,
            "# types: text, int64, float64, boolean, date, timestamp (no zone), timestamp_utc, time"
        )?;
        for (name, kind) in &self.columns {
            writeln!(f, "{name}: {}", kind.name())?;
        }
        Ok(())
    }
}

/// A value did not fit the type inferred from the sample: the conversion must run again
/// with `schema`, where the column is widened (int → float → text).
#[derive(Debug, Clone)]
pub struct Widening {
    /// 1-based physical line of the first value that did not fit.
    pub line: u64,
    /// Its column.
    pub column: String,
    /// The kind it was inferred as.
    pub from: Kind,
    /// The kind it needs.
    pub to: Kind,
    /// Every column widened as far as the rest of the input required.
    pub schema: ColumnSchema,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_file_form() {
        let schema = ColumnSchema {
            columns: vec![
                ("no".into(), Kind::Int64),
                ("at: time".into(), Kind::TimestampUtc),
                ("name".into(), Kind::Text),
            ],
            strict: true,
        };
        let parsed = ColumnSchema::parse(&schema.to_string()).unwrap();
        assert_eq!(parsed, schema);
        assert_eq!(
            schema.compact(),
            "no:int64,at: time:timestamp_utc,name:text"
        );
        let err = ColumnSchema::parse("a: decimal").unwrap_err().to_string();
        assert!(err.contains("unknown type 'decimal'"), "{err}");
    }
}
