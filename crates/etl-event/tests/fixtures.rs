//! Every recorded payload under `testdata/events/` against its expectation.
//!
//! `<name>.json` is read with [`parse_notification`] (or [`parse_ftp_event`] when the
//! name starts with `generic-ftp`). Good fixtures sit next to `<name>.expected.jsonl`
//! (one `{"bucket","key"}` line per object, or the `FtpFile` as JSON; empty when there
//! is nothing to do); bad ones under `bad/` next to `<name>.expected-error.txt`, a
//! substring of the error message.

use std::fs;
use std::path::{Path, PathBuf};

use etl_error::{Classify, ErrorClass};
use etl_event::{FtpFile, KeyEncoding, parse_ftp_event, parse_notification};
use serde_json::{Value, json};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/events")
}

/// The `*.json` payloads of a directory, sorted, excluding expectations.
fn payloads(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    path.with_file_name(format!("{stem}{suffix}"))
}

fn is_ftp(path: &Path) -> bool {
    path.file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("generic-ftp")
}

/// The payload's result as the lines its expectation file holds.
fn actual_lines(path: &Path, payload: &[u8]) -> Result<Vec<Value>, etl_event::Error> {
    if is_ftp(path) {
        let file: FtpFile = parse_ftp_event(payload)?;
        return Ok(vec![serde_json::to_value(file).unwrap()]);
    }
    let notification = parse_notification(payload, KeyEncoding::Auto)?;
    if notification.objects.is_empty() {
        assert!(
            notification.nothing_to_do.is_some() || !notification.skipped.is_empty(),
            "{}: no objects, yet neither nothing_to_do nor skipped records",
            path.display()
        );
    }
    Ok(notification
        .objects
        .iter()
        .map(|object| json!({"bucket": object.bucket, "key": object.key}))
        .collect())
}

#[test]
fn good_fixtures_match_their_expectations() {
    let paths = payloads(&fixture_dir());
    assert!(paths.len() >= 20, "only {} fixtures found", paths.len());
    for path in paths {
        let payload = fs::read(&path).unwrap();
        let expected_path = sibling(&path, ".expected.jsonl");
        let expected_text = fs::read_to_string(&expected_path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", expected_path.display()));
        let expected: Vec<Value> = expected_text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let actual = actual_lines(&path, &payload)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(actual, expected, "{}", path.display());
    }
}

#[test]
fn bad_fixtures_fail_with_their_messages() {
    let paths = payloads(&fixture_dir().join("bad"));
    assert!(paths.len() >= 5, "only {} bad fixtures found", paths.len());
    for path in paths {
        let payload = fs::read(&path).unwrap();
        let expected_path = sibling(&path, ".expected-error.txt");
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", expected_path.display()));
        let expected = expected.trim();
        match actual_lines(&path, &payload) {
            Ok(lines) => panic!("{}: expected an error, got {lines:?}", path.display()),
            Err(error) => {
                let message = error.to_string();
                assert!(
                    message.contains(expected),
                    "{}: {message:?} does not contain {expected:?}",
                    path.display()
                );
                assert_eq!(error.class(), ErrorClass::BadInput);
            }
        }
    }
}

#[test]
fn raw_and_url_overrides_apply_to_fixtures() {
    let dir = fixture_dir();
    // An S3 (encoded) key read raw stays encoded.
    let payload = fs::read(dir.join("s3-unicode.json")).unwrap();
    let raw = parse_notification(&payload, KeyEncoding::Raw).unwrap();
    assert_eq!(
        raw.objects[0].key,
        "input/20230414/%EC%A0%90%EC%88%98+%EB%8D%B0%EC%9D%B4%ED%84%B0.csv"
    );
    // A MinIO listen (raw) key read as URL-encoded: `%.c` is not an escape.
    let payload = fs::read(dir.join("minio-listen.json")).unwrap();
    let error = parse_notification(&payload, KeyEncoding::Url).unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"record 0: key "input/20230414/a+b 50%.csv" is not valid URL encoding: "%.c" at byte 21 is not a percent-escape (% and two hex digits)"#
    );
}
