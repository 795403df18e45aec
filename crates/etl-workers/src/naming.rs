//! Output keys from input keys: the seed's rule and `--output-key` templates (pure).

use crate::exit::UsageError;

/// The seed's rule: first path segment `input` becomes `output` (a key outside `input/`
/// goes under `output/`), and the extension becomes the format's.
///
/// `input/20230414/1.csv` → `output/20230414/1.parquet`; `test.csv` → `output/test.parquet`.
pub fn default_output_key(key: &str, extension: &str) -> String {
    let rest = key.strip_prefix("input/").unwrap_or(key);
    let (dir, name) = split_dir(rest);
    let stem = stem_of(name);
    match dir {
        "" => format!("output/{stem}.{extension}"),
        dir => format!("output/{dir}/{stem}.{extension}"),
    }
}

/// Expands an `--output-key` template.
///
/// Placeholders: `{key}` the input key, `{dir}` its folder (`input/20230414`), `{parent}`
/// the folder without its first segment (`20230414`), `{name}` the file name (`1.csv`),
/// `{stem}` the name without extension (`1`), `{ext}` the output format's extension.
pub fn expand_template(template: &str, key: &str, extension: &str) -> Result<String, UsageError> {
    let (dir, name) = split_dir(key);
    let parent = dir.split_once('/').map_or("", |(_, rest)| rest);
    let mut out = String::with_capacity(template.len() + key.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err(UsageError(format!(
                "--output-key '{template}': unclosed '{{'"
            )));
        };
        let value = match &rest[open + 1..open + close] {
            "key" => key,
            "dir" => dir,
            "parent" => parent,
            "name" => name,
            "stem" => stem_of(name),
            "ext" => extension,
            other => {
                return Err(UsageError(format!(
                    "--output-key '{template}': unknown placeholder {{{other}}} (known: key, dir, parent, name, stem, ext)"
                )));
            }
        };
        out.push_str(value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    // Empty placeholders leave doubled or leading slashes: `output/{parent}/x` for `x.csv`.
    let cleaned: Vec<&str> = out.split('/').filter(|s| !s.is_empty()).collect();
    let cleaned = cleaned.join("/");
    if cleaned.is_empty() {
        return Err(UsageError(format!(
            "--output-key '{template}' gives an empty key for '{key}'"
        )));
    }
    Ok(cleaned)
}

fn split_dir(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

/// Extensions of compressed inputs, dropped before the format's (`x.csv.gz` → `x`).
pub const COMPRESSED_EXTENSIONS: [&str; 4] = [".gz", ".zst", ".zstd", ".bz2"];

/// A file name without its extension, and without a compression extension before that.
pub fn stem_of(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    let name = COMPRESSED_EXTENSIONS
        .iter()
        .find(|ext| lower.ends_with(*ext) && lower.len() > ext.len())
        .map_or(name, |ext| &name[..name.len() - ext.len()]);
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_rule() {
        assert_eq!(
            default_output_key("input/20230414/1.csv", "parquet"),
            "output/20230414/1.parquet"
        );
        assert_eq!(
            default_output_key("test.csv", "parquet"),
            "output/test.parquet"
        );
        assert_eq!(
            default_output_key("input/a b.CSV", "jsonl"),
            "output/a b.jsonl"
        );
        assert_eq!(
            default_output_key("in/x/y.tar.csv", "csv"),
            "output/in/x/y.tar.csv"
        );
        assert_eq!(
            default_output_key("input/noext", "parquet"),
            "output/noext.parquet"
        );
        assert_eq!(
            default_output_key("input/d/x.csv.gz", "parquet"),
            "output/d/x.parquet"
        );
        assert_eq!(
            default_output_key("x.CSV.ZST", "parquet"),
            "output/x.parquet"
        );
        assert_eq!(default_output_key("x.csv.bz2", "jsonl"), "output/x.jsonl");
    }

    #[test]
    fn templates() {
        let key = "input/20230414/1.csv";
        assert_eq!(
            expand_template("curated/{parent}/{stem}.{ext}", key, "parquet")
                .ok()
                .as_deref(),
            Some("curated/20230414/1.parquet")
        );
        assert_eq!(
            expand_template("{dir}/{name}.{ext}", key, "jsonl")
                .ok()
                .as_deref(),
            Some("input/20230414/1.csv.jsonl")
        );
        assert_eq!(
            expand_template("out/{parent}/{stem}.{ext}", "test.csv", "parquet")
                .ok()
                .as_deref(),
            Some("out/test.parquet")
        );
        let err = expand_template("x/{day}", key, "parquet")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown placeholder {day}"), "{err}");
        assert!(expand_template("x/{key", key, "parquet").is_err());
    }
}
