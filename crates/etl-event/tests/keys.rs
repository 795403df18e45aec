//! Property tests: keys survive the encodings their sources use.
//!
//! AWS S3 writes keys `application/x-www-form-urlencoded` style in `Records`; MinIO's
//! listen API (`notification`) writes them raw. Either way the key that comes back
//! must be the key that was stored.

use etl_event::{KeyEncoding, parse_notification};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use serde_json::json;

/// What S3 leaves unescaped: alphanumerics, `/` and a few marks. Everything else
/// (space included) becomes `%XX`; spaces are then written as `+`.
const S3_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*')
    .remove(b'~');

fn s3_encode(key: &str) -> String {
    // Every `%` in the output starts an escape, so `%20` is only ever a space.
    utf8_percent_encode(key, S3_ESCAPED)
        .to_string()
        .replace("%20", "+")
}

fn record(event_name: &str, key: &str) -> serde_json::Value {
    json!({
        "eventVersion": "2.1",
        "eventName": event_name,
        "s3": {"bucket": {"name": "etlproj"}, "object": {"key": key, "size": 1}}
    })
}

/// Keys heavy in the characters that matter here, plus arbitrary Unicode.
fn key() -> impl Strategy<Value = String> {
    let interesting = prop_oneof![
        Just(' '),
        Just('+'),
        Just('%'),
        Just('/'),
        Just('한'),
        any::<char>(),
    ];
    prop_oneof![
        proptest::collection::vec(interesting, 1..48).prop_map(|chars| chars.into_iter().collect()),
        any::<String>().prop_filter("keys are non-empty", |key| !key.is_empty()),
    ]
}

proptest! {
    #[test]
    fn s3_encoded_keys_decode_to_themselves(key in key()) {
        let encoded = s3_encode(&key);
        let payload = json!({"Records": [record("ObjectCreated:Put", &encoded)]}).to_string();
        for encoding in [KeyEncoding::Auto, KeyEncoding::Url] {
            let notification = parse_notification(payload.as_bytes(), encoding).unwrap();
            prop_assert_eq!(notification.objects.len(), 1);
            prop_assert_eq!(&notification.objects[0].key, &key);
        }
        let raw = parse_notification(payload.as_bytes(), KeyEncoding::Raw).unwrap();
        prop_assert_eq!(&raw.objects[0].key, &encoded);
    }

    #[test]
    fn minio_listen_keys_come_back_unchanged(key in key()) {
        let payload = json!({"notification": [record("s3:ObjectCreated:Put", &key)]}).to_string();
        for encoding in [KeyEncoding::Auto, KeyEncoding::Raw] {
            let notification = parse_notification(payload.as_bytes(), encoding).unwrap();
            prop_assert_eq!(notification.objects.len(), 1);
            prop_assert_eq!(&notification.objects[0].key, &key);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_notification(&bytes, KeyEncoding::Auto);
        let _ = etl_event::parse_ftp_event(&bytes);
    }
}
