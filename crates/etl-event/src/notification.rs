//! Notification payloads to object references: shape detection and unwrapping.
//!
//! A payload is peeled layer by layer (Argo `body` wrappers, SQS event data, SNS
//! envelopes, JSON strings and base64 strings) until a known S3-style shape is found:
//! AWS `Records`, MinIO listen `notification`, EventBridge `detail`, or a message that
//! means there is nothing to do. Peeling is bounded by [`MAX_DEPTH`]. Fetching the
//! objects is left to the storage crates; this module only reads the payload.

use serde_json::{Map, Value};

use crate::encoding::url_decode;
use crate::layer::{decode_layer, describe};
use crate::{Error, KeyEncoding, Notification, ObjectRef, Result, Skipped};

/// The most wrapper layers (`body`, `Message`, JSON or base64 strings) peeled
/// before giving up.
pub const MAX_DEPTH: usize = 8;

/// What an S3 notification may be wrapped in, for "expected ..." messages.
const ANY_SHAPE: &str = "an S3 event notification (Records, notification, Message, body, detail)";

/// What an SNS `Message` may hold.
const SNS_MESSAGE_SHAPE: &str = "an S3 event (Records) or s3:TestEvent";

/// Which shapes a layer may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Any wrapper or event.
    Any,
    /// Inside an SNS `Message`: an S3 event or a test event only.
    SnsMessage,
}

/// Where native key encoding comes from, for [`KeyEncoding::Auto`].
#[derive(Clone, Copy)]
enum Source {
    /// AWS S3 and MinIO notification targets: URL-encoded keys.
    UrlEncoded,
    /// MinIO listen API and EventBridge: raw keys.
    Raw,
}

/// Parses a notification payload; see [`crate::parse_notification`].
pub(crate) fn parse(payload: &[u8], encoding: KeyEncoding) -> Result<Notification> {
    let value = decode_layer(payload, "payload", false)?;
    Walker { encoding }.walk(value, 0, "", Expect::Any)
}

struct Walker {
    encoding: KeyEncoding,
}

impl Walker {
    /// Classifies `value`, found at `at` (a dotted path, empty for the payload itself).
    fn walk(&self, value: Value, depth: usize, at: &str, expect: Expect) -> Result<Notification> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { limit: MAX_DEPTH });
        }
        match value {
            Value::String(text) => {
                let what = if at.is_empty() { "payload string" } else { at };
                let inner = decode_layer(text.as_bytes(), what, true)?;
                self.walk(inner, depth + 1, at, expect)
            }
            Value::Object(map) => self.walk_object(map, depth, at, expect),
            other => Err(unexpected_shape(expect, at, &other)),
        }
    }

    fn walk_object(
        &self,
        mut map: Map<String, Value>,
        depth: usize,
        at: &str,
        expect: Expect,
    ) -> Result<Notification> {
        if let Some(records) = map.get("Records") {
            return self.records(records, "Records", Source::UrlEncoded, at);
        }
        if map.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            return Ok(nothing_to_do("s3:TestEvent"));
        }
        if expect == Expect::SnsMessage {
            return Err(unexpected_shape(expect, at, &Value::Object(map)));
        }
        if let Some(records) = map.get("notification") {
            return self.records(records, "notification", Source::Raw, at);
        }
        if map.contains_key("Type") || map.contains_key("Message") {
            return self.sns(map, depth, at);
        }
        if map.contains_key("detail-type") || map.contains_key("detail") {
            return self.eventbridge(&map, at);
        }
        if let Some(body) = map.remove("body") {
            return self.walk(body, depth + 1, &join(at, "body"), Expect::Any);
        }
        Err(unexpected_shape(expect, at, &Value::Object(map)))
    }

    /// An SNS envelope: a `Notification` carries an S3 event in `Message`; the
    /// subscription handshakes carry nothing to do.
    fn sns(&self, mut map: Map<String, Value>, depth: usize, at: &str) -> Result<Notification> {
        match map.get("Type") {
            None => {}
            Some(Value::String(kind)) => match kind.as_str() {
                "Notification" => {}
                "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                    return Ok(nothing_to_do(&format!("SNS {kind}")));
                }
                other => {
                    return Err(Error::UnexpectedShape {
                        expected: format!(
                            "an SNS Type of Notification, SubscriptionConfirmation or UnsubscribeConfirmation{}",
                            in_location(at)
                        ),
                        found: format!("Type {other:?}"),
                    });
                }
            },
            Some(other) => {
                return Err(Error::UnexpectedShape {
                    expected: format!("the SNS Type{} to be a string", in_location(at)),
                    found: describe(other),
                });
            }
        }
        match map.remove("Message") {
            Some(message) => {
                self.walk(message, depth + 1, &join(at, "Message"), Expect::SnsMessage)
            }
            None => Err(Error::UnexpectedShape {
                expected: format!("a Message in the SNS Notification{}", in_location(at)),
                found: describe(&Value::Object(map)),
            }),
        }
    }

    /// An S3-style record list: AWS `Records` (also MinIO targets) or MinIO `notification`.
    fn records(&self, list: &Value, field: &str, source: Source, at: &str) -> Result<Notification> {
        let Value::Array(records) = list else {
            return Err(Error::UnexpectedShape {
                expected: format!("{} to be an array of records", join(at, field)),
                found: describe(list),
            });
        };
        let decode = self.encoding.decodes(matches!(source, Source::UrlEncoded));
        let mut notification = Notification::default();
        if records.is_empty() {
            notification.nothing_to_do = Some(format!("empty {field} list"));
            return Ok(notification);
        }
        for (index, record) in records.iter().enumerate() {
            let Value::Object(record) = record else {
                return Err(Error::UnexpectedShape {
                    expected: format!("record {index} to be a JSON object"),
                    found: describe(record),
                });
            };
            let event_name = required_str(record, index, "eventName", &["eventName"])?;
            let bucket = optional_str(record, index, "s3.bucket.name", &["s3", "bucket", "name"])?;
            let key = optional_str(record, index, "s3.object.key", &["s3", "object", "key"])?;
            let created = event_name
                .strip_prefix("s3:")
                .unwrap_or(event_name)
                .starts_with("ObjectCreated:");
            if !created {
                notification.skipped.push(Skipped {
                    bucket: bucket.map(str::to_owned),
                    key: key.map(|key| best_effort_key(key, decode)),
                    reason: format!("eventName {event_name} is not ObjectCreated:*"),
                });
                continue;
            }
            let bucket = non_empty(bucket, index, "s3.bucket.name")?;
            let key = non_empty(key, index, "s3.object.key")?;
            let object = lookup(record, &["s3", "object"]);
            notification.objects.push(ObjectRef {
                bucket: bucket.to_owned(),
                key: decode_key(key, index, decode)?,
                size: object.and_then(|o| o.get("size")).and_then(Value::as_u64),
                etag: object
                    .and_then(|o| o.get("eTag"))
                    .and_then(non_empty_string),
                event_name: event_name.to_owned(),
            });
        }
        Ok(notification)
    }

    /// An EventBridge S3 event: one object per event, raw key.
    fn eventbridge(&self, map: &Map<String, Value>, at: &str) -> Result<Notification> {
        if let Some(source) = map.get("source")
            && source.as_str() != Some("aws.s3")
        {
            return Err(Error::UnexpectedShape {
                expected: format!("an EventBridge event from source aws.s3{}", in_location(at)),
                found: match source.as_str() {
                    Some(text) => format!("source {text:?}"),
                    None => format!("source {}", describe(source)),
                },
            });
        }
        let detail_type = required_str(map, 0, "detail-type", &["detail-type"])?;
        let Some(Value::Object(detail)) = map.get("detail") else {
            return Err(Error::UnexpectedShape {
                expected: format!("an EventBridge detail object{}", in_location(at)),
                found: map
                    .get("detail")
                    .map_or_else(|| "no detail".to_owned(), describe),
            });
        };
        let decode = self.encoding.decodes(false);
        let bucket = optional_str(detail, 0, "detail.bucket.name", &["bucket", "name"])?;
        let key = optional_str(detail, 0, "detail.object.key", &["object", "key"])?;
        let mut notification = Notification::default();
        if detail_type != "Object Created" {
            notification.skipped.push(Skipped {
                bucket: bucket.map(str::to_owned),
                key: key.map(|key| best_effort_key(key, decode)),
                reason: format!("detail-type {detail_type} is not Object Created"),
            });
            return Ok(notification);
        }
        let bucket = non_empty(bucket, 0, "detail.bucket.name")?;
        let key = non_empty(key, 0, "detail.object.key")?;
        let object = detail.get("object");
        notification.objects.push(ObjectRef {
            bucket: bucket.to_owned(),
            key: decode_key(key, 0, decode)?,
            size: object.and_then(|o| o.get("size")).and_then(Value::as_u64),
            etag: object
                .and_then(|o| o.get("etag"))
                .and_then(non_empty_string),
            event_name: detail_type.to_owned(),
        });
        Ok(notification)
    }
}

fn nothing_to_do(reason: &str) -> Notification {
    Notification {
        nothing_to_do: Some(reason.to_owned()),
        ..Notification::default()
    }
}

fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_owned()
    } else {
        format!("{at}.{field}")
    }
}

fn in_location(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" in {at}")
    }
}

fn unexpected_shape(expect: Expect, at: &str, found: &Value) -> Error {
    let shape = match expect {
        Expect::Any => ANY_SHAPE,
        Expect::SnsMessage => SNS_MESSAGE_SHAPE,
    };
    Error::UnexpectedShape {
        expected: format!("{shape}{}", in_location(at)),
        found: describe(found),
    }
}

fn lookup<'a>(map: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(map.get(*first)?, |value, part| value.get(part))
}

/// A string field that may be absent (or null); any other type is an error.
fn optional_str<'a>(
    map: &'a Map<String, Value>,
    record: usize,
    field: &'static str,
    path: &[&str],
) -> Result<Option<&'a str>> {
    match lookup(map, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(Error::FieldType {
            record,
            field,
            expected: "a string",
            found: describe(other),
        }),
    }
}

fn required_str<'a>(
    map: &'a Map<String, Value>,
    record: usize,
    field: &'static str,
    path: &[&str],
) -> Result<&'a str> {
    optional_str(map, record, field, path)?.ok_or(Error::MissingField { record, field })
}

fn non_empty<'a>(value: Option<&'a str>, record: usize, field: &'static str) -> Result<&'a str> {
    match value {
        None => Err(Error::MissingField { record, field }),
        Some("") => Err(Error::EmptyField { record, field }),
        Some(text) => Ok(text),
    }
}

fn non_empty_string(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

fn decode_key(key: &str, record: usize, decode: bool) -> Result<String> {
    if !decode {
        return Ok(key.to_owned());
    }
    url_decode(key).map_err(|reason| Error::DecodeKey {
        record,
        key: key.to_owned(),
        reason,
    })
}

/// Keys of skipped records are informative only: decode them when possible.
fn best_effort_key(key: &str, decode: bool) -> String {
    if decode {
        url_decode(key).unwrap_or_else(|_| key.to_owned())
    } else {
        key.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use etl_error::{Classify, ErrorClass};
    use serde_json::json;

    fn record(event_name: &str, bucket: &str, key: &str) -> Value {
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": event_name,
            "s3": {
                "bucket": {"name": bucket},
                "object": {"key": key, "size": 36, "eTag": "abc123", "sequencer": "0055AED6DCD90281E5"}
            }
        })
    }

    fn s3_event(key: &str) -> Value {
        json!({"Records": [record("ObjectCreated:Put", "etlproj", key)]})
    }

    fn parse_value(value: &Value, encoding: KeyEncoding) -> Result<Notification> {
        parse(value.to_string().as_bytes(), encoding)
    }

    fn keys(notification: &Notification) -> Vec<(&str, &str)> {
        notification
            .objects
            .iter()
            .map(|o| (o.bucket.as_str(), o.key.as_str()))
            .collect()
    }

    fn error_message(value: &Value) -> String {
        let error = parse_value(value, KeyEncoding::Auto).unwrap_err();
        assert_eq!(error.class(), ErrorClass::BadInput);
        error.to_string()
    }

    fn base64(value: &Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(value.to_string())
    }

    fn sns(message: &Value) -> Value {
        json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:ap-northeast-2:123456789012:etl",
            "Message": message.to_string(),
        })
    }

    #[test]
    fn s3_event_yields_every_field_and_decodes_keys() {
        let notification = parse_value(&s3_event("input/a+b%2Bc.csv"), KeyEncoding::Auto).unwrap();
        assert_eq!(
            notification,
            Notification {
                objects: vec![ObjectRef {
                    bucket: "etlproj".to_owned(),
                    key: "input/a b+c.csv".to_owned(),
                    size: Some(36),
                    etag: Some("abc123".to_owned()),
                    event_name: "ObjectCreated:Put".to_owned(),
                }],
                skipped: vec![],
                nothing_to_do: None,
            }
        );
    }

    #[test]
    fn key_encoding_overrides_the_source_rule() {
        let aws = s3_event("input/a+b%2Bc.csv");
        let minio = json!({"notification": [record("s3:ObjectCreated:Put", "etlproj", "input/a+b%2Bc.csv")]});
        let cases = [
            (&aws, KeyEncoding::Auto, "input/a b+c.csv"),
            (&aws, KeyEncoding::Url, "input/a b+c.csv"),
            (&aws, KeyEncoding::Raw, "input/a+b%2Bc.csv"),
            (&minio, KeyEncoding::Auto, "input/a+b%2Bc.csv"),
            (&minio, KeyEncoding::Raw, "input/a+b%2Bc.csv"),
            (&minio, KeyEncoding::Url, "input/a b+c.csv"),
        ];
        for (payload, encoding, key) in cases {
            let notification = parse_value(payload, encoding).unwrap();
            assert_eq!(
                keys(&notification),
                [("etlproj", key)],
                "{encoding} {payload}"
            );
        }
    }

    #[test]
    fn minio_listen_keys_are_raw_and_event_names_prefixed() {
        let payload = json!({"notification": [
            record("s3:ObjectCreated:Put", "etlproj", "input/20230414/a+b 50%.csv"),
            record("s3:ObjectCreated:CompleteMultipartUpload", "etlproj", "input/20230414/1.csv"),
        ]});
        let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
        assert_eq!(
            keys(&notification),
            [
                ("etlproj", "input/20230414/a+b 50%.csv"),
                ("etlproj", "input/20230414/1.csv")
            ]
        );
        assert_eq!(
            notification.objects[1].event_name,
            "s3:ObjectCreated:CompleteMultipartUpload"
        );
    }

    #[test]
    fn minio_webhook_record_keys_are_decoded() {
        let payload = json!({
            "EventName": "s3:ObjectCreated:Put",
            "Key": "etlproj/input/a+b 50%.csv",
            "Records": [record("s3:ObjectCreated:Put", "etlproj", "input%2Fa%2Bb+50%25.csv")],
        });
        let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
        assert_eq!(keys(&notification), [("etlproj", "input/a+b 50%.csv")]);
    }

    #[test]
    fn other_records_are_skipped_in_order() {
        let payload = json!({"Records": [
            record("ObjectRemoved:Delete", "etlproj", "input/old+file.csv"),
            record("ObjectCreated:Copy", "etlproj", "input/1.csv"),
            record("s3:ObjectRemoved:DeleteMarkerCreated", "etlproj", "input/%zz"),
            record("ObjectCreated:Post", "etlproj", "input/2.csv"),
        ]});
        let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
        assert_eq!(
            keys(&notification),
            [("etlproj", "input/1.csv"), ("etlproj", "input/2.csv")]
        );
        assert_eq!(
            notification.skipped,
            [
                Skipped {
                    bucket: Some("etlproj".to_owned()),
                    key: Some("input/old file.csv".to_owned()),
                    reason: "eventName ObjectRemoved:Delete is not ObjectCreated:*".to_owned(),
                },
                Skipped {
                    bucket: Some("etlproj".to_owned()),
                    key: Some("input/%zz".to_owned()),
                    reason: "eventName s3:ObjectRemoved:DeleteMarkerCreated is not ObjectCreated:*"
                        .to_owned(),
                },
            ]
        );
        assert_eq!(notification.nothing_to_do, None);
    }

    #[test]
    fn skipped_records_need_no_bucket_or_key() {
        let payload = json!({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {}}]});
        let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
        assert!(notification.objects.is_empty());
        assert_eq!(notification.skipped[0].bucket, None);
        assert_eq!(notification.skipped[0].key, None);
    }

    #[test]
    fn empty_record_lists_mean_nothing_to_do() {
        let notification = parse_value(&json!({"Records": []}), KeyEncoding::Auto).unwrap();
        assert_eq!(
            notification.nothing_to_do.as_deref(),
            Some("empty Records list")
        );
        let notification = parse_value(&json!({"notification": []}), KeyEncoding::Auto).unwrap();
        assert_eq!(
            notification.nothing_to_do.as_deref(),
            Some("empty notification list")
        );
        assert!(notification.objects.is_empty());
    }

    #[test]
    fn test_events_mean_nothing_to_do() {
        let test_event =
            json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "etlproj"});
        for payload in [
            test_event.clone(),
            sns(&test_event),
            json!({"messageId": "1", "body": base64(&test_event)}),
            json!({"header": {}, "body": sns(&test_event)}),
        ] {
            let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
            assert_eq!(
                notification.nothing_to_do.as_deref(),
                Some("s3:TestEvent"),
                "{payload}"
            );
            assert!(notification.objects.is_empty());
        }
    }

    #[test]
    fn sns_handshakes_mean_nothing_to_do() {
        for kind in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
            let payload = json!({"header": {}, "body": {"Type": kind, "Message": "You have chosen to subscribe", "Token": "t"}});
            let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
            assert_eq!(notification.nothing_to_do, Some(format!("SNS {kind}")));
        }
    }

    #[test]
    fn every_wrapper_reaches_the_s3_event() {
        let event = s3_event("input/a+b.csv");
        let sns_envelope = sns(&event);
        let payloads = [
            event.clone(),
            sns_envelope.clone(),
            json!({"header": {"Content-Type": ["text/plain"]}, "body": sns_envelope}),
            json!({"body": sns_envelope}),
            json!({"body": sns_envelope.to_string()}),
            json!({"messageId": "1", "messageAttributes": {}, "body": base64(&event)}),
            json!({"messageId": "1", "messageAttributes": {}, "body": event}),
            json!({"messageId": "1", "messageAttributes": {}, "body": event.to_string()}),
            json!({"messageId": "1", "messageAttributes": {}, "body": base64(&sns_envelope)}),
            json!({"header": {}, "body": {"messageId": "1", "body": base64(&event)}}),
            Value::String(event.to_string()),
            Value::String(json!({"body": sns_envelope}).to_string()),
            // An SNS envelope without Type (some relays drop it).
            json!({"Message": event.to_string()}),
            // A Message given as an object rather than a string.
            json!({"Type": "Notification", "Message": event}),
        ];
        for payload in payloads {
            let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
            assert_eq!(
                keys(&notification),
                [("etlproj", "input/a b.csv")],
                "{payload}"
            );
        }
    }

    #[test]
    fn whole_payload_may_be_base64() {
        let event = s3_event("input/1.csv");
        let notification = parse(base64(&event).as_bytes(), KeyEncoding::Auto).unwrap();
        assert_eq!(keys(&notification), [("etlproj", "input/1.csv")]);
    }

    #[test]
    fn eventbridge_created_keys_are_raw() {
        let payload = json!({
            "version": "0",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {
                "version": "0",
                "bucket": {"name": "etlproj"},
                "object": {"key": "input/a+b 50%.csv", "size": 5, "etag": "e1"},
                "reason": "PutObject"
            }
        });
        let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
        assert_eq!(
            notification.objects,
            [ObjectRef {
                bucket: "etlproj".to_owned(),
                key: "input/a+b 50%.csv".to_owned(),
                size: Some(5),
                etag: Some("e1".to_owned()),
                event_name: "Object Created".to_owned(),
            }]
        );
        let error = parse_value(&payload, KeyEncoding::Url).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"record 0: key "input/a+b 50%.csv" is not valid URL encoding: "%.c" at byte 12 is not a percent-escape (% and two hex digits)"#
        );
    }

    #[test]
    fn eventbridge_other_detail_types_are_skipped() {
        let payload = json!({
            "detail-type": "Object Deleted",
            "source": "aws.s3",
            "detail": {"bucket": {"name": "etlproj"}, "object": {"key": "input/1.csv"}}
        });
        let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
        assert!(notification.objects.is_empty());
        assert_eq!(
            notification.skipped,
            [Skipped {
                bucket: Some("etlproj".to_owned()),
                key: Some("input/1.csv".to_owned()),
                reason: "detail-type Object Deleted is not Object Created".to_owned(),
            }]
        );
    }

    #[test]
    fn eventbridge_errors_name_what_is_missing() {
        assert_eq!(
            error_message(
                &json!({"detail-type": "Object Created", "source": "aws.ec2", "detail": {}})
            ),
            r#"expected an EventBridge event from source aws.s3, found source "aws.ec2""#
        );
        assert_eq!(
            error_message(&json!({"detail-type": "Object Created", "source": "aws.s3"})),
            "expected an EventBridge detail object, found no detail"
        );
        assert_eq!(
            error_message(
                &json!({"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}})
            ),
            "record 0 has no detail.object.key"
        );
        assert_eq!(
            error_message(&json!({"detail": {"bucket": {"name": "b"}}})),
            "record 0 has no detail-type"
        );
    }

    #[test]
    fn records_without_bucket_or_key_are_errors() {
        let mut no_bucket = record("ObjectCreated:Put", "etlproj", "k");
        no_bucket["s3"]["bucket"] = json!({});
        let payload = json!({"Records": [record("ObjectCreated:Put", "etlproj", "k"), record("ObjectCreated:Put", "etlproj", "k"), no_bucket]});
        assert_eq!(error_message(&payload), "record 2 has no s3.bucket.name");

        let payload = json!({"Records": [record("ObjectCreated:Put", "etlproj", "")]});
        assert_eq!(
            error_message(&payload),
            "record 0 has an empty s3.object.key"
        );

        let payload = json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]});
        assert_eq!(error_message(&payload), "record 0 has no s3.object.key");

        let payload = json!({"Records": [{"s3": {}}]});
        assert_eq!(error_message(&payload), "record 0 has no eventName");
    }

    #[test]
    fn wrong_types_are_errors() {
        assert_eq!(
            error_message(&json!({"Records": [record("ObjectCreated:Put", "etlproj", "k"), 7]})),
            "expected record 1 to be a JSON object, found the number 7"
        );
        assert_eq!(
            error_message(&json!({"Records": {"eventName": "x"}})),
            "expected Records to be an array of records, found a JSON object with keys [eventName]"
        );
        assert_eq!(
            error_message(&json!({"body": {"notification": "x"}})),
            "expected body.notification to be an array of records, found a string"
        );
        let mut numeric_key = record("ObjectCreated:Put", "etlproj", "k");
        numeric_key["s3"]["object"]["key"] = json!(12);
        assert_eq!(
            error_message(&json!({"Records": [numeric_key]})),
            "record 0: expected s3.object.key to be a string, found the number 12"
        );
    }

    #[test]
    fn invalid_escapes_name_the_key() {
        assert_eq!(
            error_message(&s3_event("input/%zz.csv")),
            r#"record 0: key "input/%zz.csv" is not valid URL encoding: "%zz" at byte 6 is not a percent-escape (% and two hex digits)"#
        );
        assert_eq!(
            error_message(&s3_event("input/%C3%28.csv")),
            r#"record 0: key "input/%C3%28.csv" is not valid URL encoding: it decodes to bytes that are not UTF-8 (at decoded byte 6)"#
        );
        // Raw never decodes, so the same key is accepted as it stands.
        let notification = parse_value(&s3_event("input/%zz.csv"), KeyEncoding::Raw).unwrap();
        assert_eq!(keys(&notification), [("etlproj", "input/%zz.csv")]);
    }

    #[test]
    fn unknown_shapes_say_what_was_expected() {
        assert_eq!(
            error_message(&json!({"foo": 1, "bar": 2})),
            "expected an S3 event notification (Records, notification, Message, body, detail), found a JSON object with keys [bar, foo]"
        );
        assert_eq!(
            error_message(&json!([1, 2, 3])),
            "expected an S3 event notification (Records, notification, Message, body, detail), found a JSON array of 3 items"
        );
        assert_eq!(
            error_message(&json!({"header": {}, "body": 42})),
            "expected an S3 event notification (Records, notification, Message, body, detail) in body, found the number 42"
        );
        assert_eq!(
            error_message(&json!({"messageId": "1", "body": "bm90IGpzb24="})),
            "base64-decoded body is not JSON: expected ident at line 1 column 2"
        );
        assert_eq!(
            error_message(&json!({"messageId": "1", "body": "{\"Records\": ["})),
            "body is not JSON: EOF while parsing a list at line 1 column 13"
        );
        assert_eq!(
            error_message(&json!("12")),
            "expected an S3 event notification (Records, notification, Message, body, detail), found the number 12"
        );
    }

    #[test]
    fn sns_messages_must_hold_s3_events() {
        assert_eq!(
            error_message(&sns(&json!({"AlarmName": "cpu"}))),
            "expected an S3 event (Records) or s3:TestEvent in Message, found a JSON object with keys [AlarmName]"
        );
        assert_eq!(
            error_message(&json!({"body": sns(&json!({"body": s3_event("k")}))})),
            "expected an S3 event (Records) or s3:TestEvent in body.Message, found a JSON object with keys [body]"
        );
        assert_eq!(
            error_message(&json!({"Type": "Notification", "Message": "plain text, not JSON"})),
            "Message is neither JSON nor base64 of JSON: invalid base64 (Invalid symbol 32, offset 5.)"
        );
        assert_eq!(
            error_message(&json!({"Type": "Notification", "Subject": "x"})),
            "expected a Message in the SNS Notification, found a JSON object with keys [Subject, Type]"
        );
        assert_eq!(
            error_message(&json!({"body": {"Type": "Weird", "Message": "{}"}})),
            r#"expected an SNS Type of Notification, SubscriptionConfirmation or UnsubscribeConfirmation in body, found Type "Weird""#
        );
        assert_eq!(
            error_message(&json!({"Type": 3})),
            "expected the SNS Type to be a string, found the number 3"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut payload = s3_event("k");
        for _ in 0..MAX_DEPTH {
            payload = json!({ "body": payload });
        }
        assert!(parse_value(&payload, KeyEncoding::Auto).is_ok());
        payload = json!({ "body": payload });
        assert_eq!(
            error_message(&payload),
            "expected at most 8 nested wrappers (body, Message, JSON or base64 strings), found more"
        );
        // Strings nested in strings count too.
        let mut text = s3_event("k").to_string();
        for _ in 0..=MAX_DEPTH {
            text = Value::String(text).to_string();
        }
        let error = parse(text.as_bytes(), KeyEncoding::Auto).unwrap_err();
        assert!(matches!(error, Error::TooDeep { limit: 8 }), "{error}");
    }

    #[test]
    fn deep_json_is_an_error_not_a_crash() {
        let payload = "[".repeat(100_000);
        let error = parse(payload.as_bytes(), KeyEncoding::Auto).unwrap_err();
        assert_eq!(
            error.to_string(),
            "payload is not JSON: recursion limit exceeded at line 1 column 128"
        );
    }

    #[test]
    fn size_and_etag_are_optional() {
        let payload = json!({"Records": [{
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "etlproj"}, "object": {"key": "k", "size": -1, "eTag": ""}}
        }]});
        let notification = parse_value(&payload, KeyEncoding::Auto).unwrap();
        assert_eq!(notification.objects[0].size, None);
        assert_eq!(notification.objects[0].etag, None);
    }

    #[test]
    fn object_refs_serialize_for_dry_runs() {
        let notification = parse_value(&s3_event("input/1.csv"), KeyEncoding::Auto).unwrap();
        assert_eq!(
            serde_json::to_value(&notification.objects[0]).unwrap(),
            json!({"bucket": "etlproj", "key": "input/1.csv", "size": 36, "etag": "abc123", "event_name": "ObjectCreated:Put"})
        );
    }
}
