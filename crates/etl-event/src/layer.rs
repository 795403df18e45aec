//! Peeling one wrapper layer: bytes or strings to JSON values.
//!
//! A layer is JSON text, or base64 of JSON bytes (Argo's default for SQS and generic
//! event sources). Text that starts like JSON (`{`, `[`, `"`) is parsed as JSON so
//! that its errors point at a line and column; anything else is taken for base64.
//! Which shapes are accepted once a value is in hand is decided by the callers.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::Error;

/// Standard alphabet, padding optional (Go's `StdEncoding` pads; some tools don't).
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe alphabet, padding optional.
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parses `bytes` as JSON, or as base64 of JSON when they do not look like JSON.
/// `what` names the layer in error messages. When neither works, the base64 error
/// is reported if `nested` (a string inside JSON, where base64 is what Argo puts) or
/// if the bytes look like base64; otherwise the JSON error is.
pub(crate) fn decode_layer(bytes: &[u8], what: &str, nested: bool) -> Result<Value, Error> {
    let trimmed = bytes.trim_ascii();
    let looks_like_json = matches!(trimmed.first(), Some(b'{' | b'[' | b'"'));
    if looks_like_json || trimmed.is_empty() {
        // Untrimmed, so that error positions refer to the bytes as given.
        return parse_json(bytes, what);
    }
    match serde_json::from_slice(bytes) {
        // Scalars (numbers, true, null) are JSON too; the caller rejects their shape.
        Ok(value) => Ok(value),
        Err(json_error) => {
            // Base64 may come wrapped in lines; other whitespace is an error.
            let compact: Vec<u8> = trimmed
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'\n' | b'\r'))
                .collect();
            let decoded = STANDARD
                .decode(&compact)
                .or_else(|standard_error| URL_SAFE.decode(&compact).map_err(|_| standard_error));
            match decoded {
                Ok(inner) => parse_json(&inner, &format!("base64-decoded {what}")),
                Err(base64_error) if nested || looks_like_base64(trimmed) => {
                    Err(Error::DecodeBase64 {
                        what: what.to_owned(),
                        message: base64_error.to_string(),
                    })
                }
                Err(_) => Err(json_error_to_error(&json_error, what)),
            }
        }
    }
}

/// Whether the bytes could have been meant as base64 (its alphabets and line breaks),
/// as opposed to broken JSON or prose, whose JSON error is the more useful one.
fn looks_like_base64(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'\n' | b'\r')
    })
}

fn parse_json(bytes: &[u8], what: &str) -> Result<Value, Error> {
    serde_json::from_slice(bytes).map_err(|error| json_error_to_error(&error, what))
}

fn json_error_to_error(error: &serde_json::Error, what: &str) -> Error {
    let full = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&position).unwrap_or(&full).to_owned();
    Error::ParseJson {
        what: what.to_owned(),
        message,
        line: error.line(),
        column: error.column(),
    }
}

/// A short description of a JSON value for "found ..." in error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.is_empty() => "an empty string".to_owned(),
        Value::String(_) => "a string".to_owned(),
        Value::Array(items) => format!("a JSON array of {} items", items.len()),
        Value::Object(map) if map.is_empty() => "an empty JSON object".to_owned(),
        Value::Object(map) => {
            const SHOWN: usize = 12;
            let mut keys: Vec<String> = map.keys().take(SHOWN).map(|key| shorten(key)).collect();
            if map.len() > SHOWN {
                keys.push("...".to_owned());
            }
            format!("a JSON object with keys [{}]", keys.join(", "))
        }
    }
}

/// A key cut to a readable length for messages (payload keys can be anything).
fn shorten(key: &str) -> String {
    const LONGEST: usize = 40;
    if key.chars().count() <= LONGEST {
        key.to_owned()
    } else {
        let mut short: String = key.chars().take(LONGEST).collect();
        short.push_str("...");
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_json_text() {
        assert_eq!(
            decode_layer(b" {\"a\":1} \n", "payload", false).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            decode_layer(b"\"x\"", "payload", false).unwrap(),
            json!("x")
        );
    }

    #[test]
    fn parses_base64_of_json_with_and_without_padding() {
        // {"a":1}
        assert_eq!(
            decode_layer(b"eyJhIjoxfQ==", "body", true).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            decode_layer(b"eyJhIjoxfQ", "body", true).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            decode_layer(b"eyJh\nIjoxfQ==\n", "body", true).unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn reports_json_errors_with_position() {
        let error = decode_layer(b"{\"a\":\n", "payload", false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "payload is not JSON: EOF while parsing a value at line 2 column 0"
        );
    }

    #[test]
    fn reports_empty_input_as_not_json() {
        let error = decode_layer(b"  ", "payload", false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "payload is not JSON: EOF while parsing a value at line 1 column 2"
        );
    }

    #[test]
    fn reports_bad_base64() {
        let error = decode_layer(b"eyJhIjox*Q==", "body", true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "body is neither JSON nor base64 of JSON: invalid base64 (Invalid symbol 42, offset 8.)"
        );
        let error = decode_layer(b"eyJhIjox*Q==", "payload", false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "payload is not JSON: expected value at line 1 column 1"
        );
        let error = decode_layer(b"this is not json", "payload", false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "payload is not JSON: expected ident at line 1 column 2"
        );
        let error = decode_layer(b"eyJhIjoxfQ=x", "body", true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "body is neither JSON nor base64 of JSON: invalid base64 (Invalid symbol 61, offset 10.)"
        );
    }

    #[test]
    fn reports_base64_of_non_json() {
        // "hello world"
        let error = decode_layer(b"aGVsbG8gd29ybGQ=", "body", true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "base64-decoded body is not JSON: expected value at line 1 column 1"
        );
    }

    #[test]
    fn describes_values() {
        assert_eq!(
            describe(&json!({"b": 1, "a": 2})),
            "a JSON object with keys [a, b]"
        );
        assert_eq!(describe(&json!([1, 2])), "a JSON array of 2 items");
        assert_eq!(describe(&json!(null)), "null");
        assert_eq!(describe(&json!(3)), "the number 3");
        assert_eq!(describe(&json!("")), "an empty string");
        assert_eq!(describe(&json!({})), "an empty JSON object");
        let long = "k".repeat(50);
        assert_eq!(
            describe(&json!({ long: 1 })),
            format!("a JSON object with keys [{}...]", "k".repeat(40))
        );
        let many: serde_json::Map<String, Value> =
            (0..20).map(|i| (format!("k{i:02}"), json!(i))).collect();
        assert_eq!(
            describe(&Value::Object(many)),
            "a JSON object with keys [k00, k01, k02, k03, k04, k05, k06, k07, k08, k09, k10, k11, ...]"
        );
    }
}
