//! What `agg` writes: the pandas-style `agg.txt`, the `agg.json` record, and the
//! fingerprint of the inputs.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `agg.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggReport {
    /// The aggregated column.
    pub column: String,
    /// Key of the file holding the winning row.
    pub source_key: String,
    /// Row position of the winner in its file (pandas `index`).
    pub index: u64,
    /// The winning row: column name → formatted value, in column order.
    pub row: Vec<(String, String)>,
    /// Number of input files read.
    pub files: usize,
    /// Fingerprint of the inputs (keys and ETags), see [`fingerprint`].
    pub fingerprint: String,
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
pub fn format_series(index: u64, row: &[(String, String)]) -> String {
    let mut entries: Vec<(&str, String)> = vec![("index", index.to_string())];
    entries.extend(row.iter().map(|(k, v)| (k.as_str(), v.clone())));
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

    #[test]
    fn seed_layout() {
        let row = vec![
            ("no".to_owned(), "9".to_owned()),
            ("name".to_owned(), "iii".to_owned()),
            ("score".to_owned(), "100".to_owned()),
        ];
        assert_eq!(
            format_series(2, &row),
            "index      2\nno         9\nname     iii\nscore    100"
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
