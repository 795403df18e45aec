//! How object keys are written in notifications, and their decoding.
//!
//! AWS S3 notifications (direct, through SNS or SQS) and MinIO's notification
//! targets write keys `application/x-www-form-urlencoded` style (`+` for a space,
//! `%XX` for other bytes of the UTF-8 key); MinIO's listen API and EventBridge write
//! them raw. [`KeyEncoding`] lets the caller override that per-source rule. Which
//! source a record came from is decided by the parser, not here.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// How to treat object keys found in a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyEncoding {
    /// Decide by source: decode AWS S3 and MinIO target records, keep MinIO listen
    /// and EventBridge keys as they stand.
    #[default]
    Auto,
    /// Never decode.
    Raw,
    /// Always decode (`+` is a space, `%XX` a byte).
    Url,
}

impl KeyEncoding {
    /// The lower-case name used on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEncoding::Auto => "auto",
            KeyEncoding::Raw => "raw",
            KeyEncoding::Url => "url",
        }
    }

    /// Whether keys from a source whose native encoding is `source_is_url` are decoded.
    pub(crate) fn decodes(self, source_is_url: bool) -> bool {
        match self {
            KeyEncoding::Auto => source_is_url,
            KeyEncoding::Raw => false,
            KeyEncoding::Url => true,
        }
    }
}

impl fmt::Display for KeyEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyEncoding {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(KeyEncoding::Auto),
            "raw" => Ok(KeyEncoding::Raw),
            "url" => Ok(KeyEncoding::Url),
            other => Err(Error::UnknownKeyEncoding {
                found: other.to_owned(),
            }),
        }
    }
}

/// Decodes a form-urlencoded key: `+` becomes a space, `%XX` the byte `XX`, and the
/// bytes must be UTF-8. On failure, returns the reason (the caller adds the key).
pub(crate) fn url_decode(key: &str) -> Result<String, String> {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let high = bytes.get(i + 1).copied().and_then(hex_value);
                let low = bytes.get(i + 2).copied().and_then(hex_value);
                match (high, low) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 3;
                    }
                    _ => {
                        let escape: String =
                            key.get(i..).unwrap_or_default().chars().take(3).collect();
                        return Err(format!(
                            "{escape:?} at byte {i} is not a percent-escape (% and two hex digits)"
                        ));
                    }
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|error| {
        format!(
            "it decodes to bytes that are not UTF-8 (at decoded byte {})",
            error.utf8_error().valid_up_to()
        )
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etl_error::{Classify, ErrorClass};

    #[test]
    fn key_encoding_round_trips_through_strings() {
        for encoding in [KeyEncoding::Auto, KeyEncoding::Raw, KeyEncoding::Url] {
            assert_eq!(encoding.to_string().parse::<KeyEncoding>(), Ok(encoding));
        }
        assert_eq!(KeyEncoding::default(), KeyEncoding::Auto);
    }

    #[test]
    fn unknown_key_encoding_is_bad_input() {
        let error = "URL".parse::<KeyEncoding>().unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"expected a key encoding (auto, raw or url), found "URL""#
        );
        assert_eq!(error.class(), ErrorClass::BadInput);
    }

    #[test]
    fn decodes_plus_and_percent_escapes() {
        assert_eq!(url_decode("a+b%2Bc%25d").unwrap(), "a b+c%d");
        assert_eq!(
            url_decode("input%2F%ED%95%9C%EA%B8%80.csv").unwrap(),
            "input/한글.csv"
        );
        assert_eq!(url_decode("%e2%82%ac").unwrap(), "€");
        assert_eq!(url_decode("").unwrap(), "");
        assert_eq!(url_decode("plain/key.csv").unwrap(), "plain/key.csv");
    }

    #[test]
    fn rejects_invalid_escapes() {
        assert_eq!(
            url_decode("input/%zz.csv").unwrap_err(),
            r#""%zz" at byte 6 is not a percent-escape (% and two hex digits)"#
        );
        assert_eq!(
            url_decode("50%").unwrap_err(),
            r#""%" at byte 2 is not a percent-escape (% and two hex digits)"#
        );
        assert_eq!(
            url_decode("%4").unwrap_err(),
            r#""%4" at byte 0 is not a percent-escape (% and two hex digits)"#
        );
        // A multi-byte character right after the % must not split a char boundary.
        assert_eq!(
            url_decode("%한").unwrap_err(),
            r#""%한" at byte 0 is not a percent-escape (% and two hex digits)"#
        );
    }

    #[test]
    fn rejects_non_utf8_results() {
        assert_eq!(
            url_decode("ok%FF").unwrap_err(),
            "it decodes to bytes that are not UTF-8 (at decoded byte 2)"
        );
    }
}
