//! What `agg` writes: the pandas-style `agg.txt`, the `agg.json` record, and the
//! fingerprint of the inputs.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The layout of `agg.json` this version writes: an `agg.json` without it (the row as
/// string pairs, before version 2) is stale and written again.
pub const REPORT_FORMAT: &str = "2";

/// One value of the winning row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// The column's name.
    pub name: String,
    /// As pandas prints it (`agg.txt`).
    pub text: String,
    /// As typed JSON (`agg.json`): a number, a boolean, text, null; dates and timestamps
    /// as ISO 8601 text.
    pub value: serde_json::Value,
}

/// `agg.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggReport {
    /// The aggregated column.
    pub column: String,
    /// Key of the file holding the winning row.
    pub source_key: String,
    /// Row position of the winner in its file (pandas `index`).
    pub index: u64,
    /// The winning row, in column order; written as one JSON object of typed values.
    #[serde(serialize_with = "row_object")]
    pub row: Vec<Cell>,
    /// Number of input files read.
    pub files: usize,
    /// Fingerprint of the inputs (keys and ETags), see [`fingerprint`].
    pub fingerprint: String,
}

/// The row as `{"no": 3, "name": "x", …}`, keys in column order.
fn row_object<S: Serializer>(row: &[Cell], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(row.len()))?;
    for cell in row {
        map.serialize_entry(&cell.name, &cell.value)?;
    }
    map.end()
}

/// SHA-256 over the sorted `key ETag` lines of the inputs: equal fingerprints mean the
/// same set of the same object versions.
pub fn fingerprint<'a>(inputs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut lines: Vec<String> = inputs
        .into_iter()
        .map(|(key, etag)| format!("{key} {etag}\n"))
        .collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The winning row as pandas `Series.to_string()` prints it, `index` first: labels
/// left-aligned, values right-aligned, four spaces between.
pub fn format_series(index: u64, row: &[Cell]) -> String {
    let mut entries: Vec<(&str, String)> = vec![("index", index.to_string())];
    entries.extend(row.iter().map(|c| (c.name.as_str(), c.text.clone())));
    let label_width = entries
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let value_width = entries
        .iter()
        .map(|(_, v)| v.chars().count())
        .max()
        .unwrap_or(0);
    entries
        .iter()
        .map(|(label, value)| format!("{label:<label_width$}    {value:>value_width$}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(name: &str, text: &str, value: serde_json::Value) -> Cell {
        Cell {
            name: name.to_owned(),
            text: text.to_owned(),
            value,
        }
    }

    #[test]
    fn seed_layout() {
        let row = vec![
            cell("no", "9", 9.into()),
            cell("name", "iii", "iii".into()),
            cell("score", "100", 100.into()),
        ];
        assert_eq!(
            format_series(2, &row),
            "index      2\nno         9\nname     iii\nscore    100"
        );
    }

    #[test]
    fn the_row_is_one_object_in_column_order() {
        let report = AggReport {
            column: "score".into(),
            source_key: "output/d/1.parquet".into(),
            index: 0,
            row: vec![
                cell("score", "100.5", 100.5.into()),
                cell("name", "x", "x".into()),
                cell("no", "NaN", serde_json::Value::Null),
            ],
            files: 1,
            fingerprint: "f".into(),
        };
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.contains(r#""row":{"score":100.5,"name":"x","no":null}"#),
            "{json}"
        );
    }

    #[test]
    fn fingerprint_ignores_order_and_sees_versions() {
        let a = fingerprint([("a", "1"), ("b", "2")]);
        assert_eq!(a, fingerprint([("b", "2"), ("a", "1")]));
        assert_ne!(a, fingerprint([("a", "1"), ("b", "3")]));
        assert_ne!(a, fingerprint([("a", "1")]));
    }
}
