//! Generic (FTP) event payloads to the file they announce.
//!
//! The project's own generic event source emits `{"name", "sz", "dt"}`; Argo delivers
//! it as base64 (its default) or JSON (`jsonBody: true`), alone or inside the event
//! data `{"header", "body"}`. Downloading the file is `etl-ftp`'s job.

use serde_json::{Map, Value};

use crate::layer::{decode_layer, describe};
use crate::notification::MAX_DEPTH;
use crate::{Error, FtpFile, Result};

const FTP_SHAPE: &str = "an FTP file event {name, sz, dt} or Argo event data {body}";

/// Parses a generic event payload; see [`crate::parse_ftp_event`].
pub(crate) fn parse(payload: &[u8]) -> Result<FtpFile> {
    let value = decode_layer(payload, "payload", false)?;
    walk(value, 0, "")
}

fn walk(value: Value, depth: usize, at: &str) -> Result<FtpFile> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep { limit: MAX_DEPTH });
    }
    match value {
        Value::String(text) => {
            let what = if at.is_empty() { "payload string" } else { at };
            let inner = decode_layer(text.as_bytes(), what, true)?;
            walk(inner, depth + 1, at)
        }
        Value::Object(mut map) => {
            if map.contains_key("name") {
                return file(&map);
            }
            if let Some(body) = map.remove("body") {
                let at = if at.is_empty() {
                    "body".to_owned()
                } else {
                    format!("{at}.body")
                };
                return walk(body, depth + 1, &at);
            }
            Err(unexpected(at, &Value::Object(map)))
        }
        other => Err(unexpected(at, &other)),
    }
}

fn unexpected(at: &str, found: &Value) -> Error {
    let location = if at.is_empty() {
        String::new()
    } else {
        format!(" in {at}")
    };
    Error::UnexpectedShape {
        expected: format!("{FTP_SHAPE}{location}"),
        found: describe(found),
    }
}

fn file(map: &Map<String, Value>) -> Result<FtpFile> {
    let name = match map.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(other) => {
            return Err(Error::FtpName {
                found: describe(other),
            });
        }
        None => {
            return Err(Error::FtpName {
                found: "no name".to_owned(),
            });
        }
    };
    let sz = match map.get("sz") {
        None | Some(Value::Null) => None,
        Some(Value::Number(number)) if number.as_u64().is_some() => number.as_u64(),
        Some(Value::String(text)) if text.parse::<u64>().is_ok() => text.parse().ok(),
        Some(other) => {
            return Err(Error::FtpField {
                field: "sz",
                expected: "a non-negative integer",
                found: describe(other),
            });
        }
    };
    let dt = match map.get("dt") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            return Err(Error::FtpField {
                field: "dt",
                expected: "a string",
                found: describe(other),
            });
        }
    };
    let path = match map.get("path") {
        Some(Value::String(path)) if !path.is_empty() => Some(path.clone()),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(Error::FtpField {
                field: "path",
                expected: "a non-empty string",
                found: describe(other),
            });
        }
    };
    Ok(FtpFile { name, sz, dt, path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use etl_error::{Classify, ErrorClass};
    use serde_json::json;

    fn expected() -> FtpFile {
        FtpFile {
            name: "/upload/20230414/1.csv".to_owned(),
            sz: Some(36),
            dt: Some("2023-04-14T01:02:03Z".to_owned()),
            path: None,
        }
    }

    fn event() -> Value {
        json!({"name": "/upload/20230414/1.csv", "sz": 36, "dt": "2023-04-14T01:02:03Z"})
    }

    fn base64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn error_message(payload: &[u8]) -> String {
        let error = parse(payload).unwrap_err();
        assert_eq!(error.class(), ErrorClass::BadInput);
        error.to_string()
    }

    #[test]
    fn accepts_every_delivery_form() {
        let text = event().to_string();
        let payloads = [
            text.clone(),
            base64(&text),
            format!("{}\n", base64(&text)),
            Value::String(text.clone()).to_string(),
            json!({"body": base64(&text)}).to_string(),
            json!({"body": event()}).to_string(),
            json!({"body": text}).to_string(),
            json!({"header": {"Content-Type": ["application/json"]}, "body": event()}).to_string(),
            base64(&json!({"body": base64(&text)}).to_string()),
        ];
        for payload in payloads {
            assert_eq!(parse(payload.as_bytes()).unwrap(), expected(), "{payload}");
        }
    }

    #[test]
    fn size_and_time_are_optional_and_size_may_be_a_string() {
        let file = parse(br#"{"name": "a.csv"}"#).unwrap();
        assert_eq!(
            file,
            FtpFile {
                name: "a.csv".to_owned(),
                sz: None,
                dt: None,
                path: None
            }
        );
        let file = parse(br#"{"name": "a.csv", "sz": "12", "dt": null}"#).unwrap();
        assert_eq!(file.sz, Some(12));
    }

    #[test]
    fn name_is_required_and_non_empty() {
        assert_eq!(
            error_message(br#"{"name": ""}"#),
            "FTP event: expected a non-empty string in name, found an empty string"
        );
        assert_eq!(
            error_message(br#"{"name": 5}"#),
            "FTP event: expected a non-empty string in name, found the number 5"
        );
        assert_eq!(
            error_message(br#"{"sz": 5}"#),
            "expected an FTP file event {name, sz, dt} or Argo event data {body}, found a JSON object with keys [sz]"
        );
        assert_eq!(
            error_message(br#"{"header": {}, "body": {"size": 5}}"#),
            "expected an FTP file event {name, sz, dt} or Argo event data {body} in body, found a JSON object with keys [size]"
        );
    }

    #[test]
    fn wrong_field_types_are_errors() {
        assert_eq!(
            error_message(br#"{"name": "a", "sz": -3}"#),
            "FTP event: expected sz to be a non-negative integer, found the number -3"
        );
        assert_eq!(
            error_message(br#"{"name": "a", "dt": 20230414}"#),
            "FTP event: expected dt to be a string, found the number 20230414"
        );
    }

    #[test]
    fn bad_encodings_are_errors() {
        assert_eq!(
            error_message(b"{\"name\": "),
            "payload is not JSON: EOF while parsing a value at line 1 column 9"
        );
        assert_eq!(
            error_message(br#"{"body": "e30*"}"#),
            "body is neither JSON nor base64 of JSON: invalid base64 (Invalid symbol 42, offset 3.)"
        );
        assert_eq!(
            error_message(b"null"),
            "expected an FTP file event {name, sz, dt} or Argo event data {body}, found null"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut payload = event();
        for _ in 0..=MAX_DEPTH {
            payload = json!({ "body": payload });
        }
        assert_eq!(
            error_message(payload.to_string().as_bytes()),
            "expected at most 8 nested wrappers (body, Message, JSON or base64 strings), found more"
        );
    }

    #[test]
    fn ftp_file_round_trips_through_serde() {
        let file = expected();
        let text = serde_json::to_string(&file).unwrap();
        assert_eq!(serde_json::from_str::<FtpFile>(&text).unwrap(), file);
        assert_eq!(parse(text.as_bytes()).unwrap(), file);
    }
}
