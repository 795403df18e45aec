//! The S3 scenarios against Garage (`scripts/garage-start.sh`, `ETL_GARAGE_*`) and, where
//! the stores differ, against s3s-fs too: each difference is asserted on both.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;
use etl_test_support::external_s3::{Cut, S3Store, StoreKind};
use etl_test_support::proxy::{Fault, FaultProxy};
use etl_test_support::s3::RecordedRequest;

use crate::support::{
    assert_exit, csv_rows, read_parquet, s3_notification, stderr, stdout, testdata,
};

const ETL: &str = env!("CARGO_BIN_EXE_etl");
const AGG: &str = env!("CARGO_BIN_EXE_agg");

const SEED_RESULT: &str = "index      2\nno         9\nname     iii\nscore    100";

/// Garage, or `None` with a note when `ETL_GARAGE_ENDPOINT` is unset.
fn garage(label: &str) -> Option<S3Store> {
    let store = S3Store::garage_from_env(label).expect("the ETL_GARAGE_* variables");
    if store.is_none() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "skipped: set ETL_GARAGE_ENDPOINT (source the env file of scripts/garage-start.sh) to run against Garage"
            );
        }
    }
    store
}

/// s3s-fs always, Garage when it is configured.
fn stores(label: &str) -> Vec<S3Store> {
    let mut stores = vec![S3Store::in_process(label).expect("the in-process S3 server")];
    stores.extend(garage(label));
    stores
}

fn command(store: &S3Store, binary: &str) -> Command {
    let mut command = Command::new(binary);
    command.env_clear();
    for name in ["PATH", "HOME", "TMPDIR"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(store.env());
    command.env("ETL_LOG_FORMAT", "text");
    // As before the probe existed; `auto` has its own tests below.
    command.env("ETL_CONDITIONAL_WRITES", "on");
    command
}

fn etl_key(store: &S3Store, key: &str, extra: &[&str]) -> Output {
    command(store, ETL)
        .args(["--bucket", store.bucket(), "--key", key])
        .args(extra)
        .output()
        .unwrap()
}

fn rows_of(store: &S3Store, key: &str) -> usize {
    read_parquet(store.get(key).expect("output object"))
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

fn count(requests: &[RecordedRequest], method: &str) -> usize {
    requests.iter().filter(|r| r.method == method).count()
}

fn is_list(r: &RecordedRequest) -> bool {
    r.method == "GET" && r.query.contains("list-type")
}

fn seed_day(store: &S3Store) {
    for n in 1..=3 {
        let csv = std::fs::read(testdata(&format!("20230414/{n}.csv"))).unwrap();
        store
            .put(&store.input(&format!("20230414/{n}.csv")), csv)
            .unwrap();
    }
    let out = command(store, ETL)
        .args(["--bucket", store.bucket()])
        .args(["--prefix", &store.input("20230414/")])
        .output()
        .unwrap();
    assert_exit(&out, 0);
}

#[test]
fn etl_by_key_then_an_idempotent_rerun_on_each_store() {
    for store in stores("bykey") {
        let key = store.input("r.csv");
        store.put(&key, csv_rows(50)).unwrap();
        let out = etl_key(&store, &key, &[]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("\"converted\""), "{}", stdout(&out));
        assert_eq!(rows_of(&store, &store.output("r.parquet")), 50);

        // A rerun: the output HEAD and the source HEAD, nothing read, nothing written.
        store.clear_requests();
        let out = etl_key(&store, &key, &[]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
        let requests = store.requests();
        assert_eq!(
            count(&requests, "HEAD"),
            2,
            "{:?}: {requests:?}",
            store.kind()
        );
        assert_eq!(requests.len(), 2, "{:?}: {requests:?}", store.kind());
        assert_eq!(
            store.keys(&store.output("")).unwrap(),
            [store.output("r.parquet")]
        );
    }
}

#[test]
fn etl_by_event_then_the_same_event_costs_one_head_on_each_store() {
    for store in stores("byevent") {
        let key = store.input("e.csv");
        let etag = store.put(&key, csv_rows(7)).unwrap();
        // The ETag the PUT answered is the one HEAD gives (the events carry it).
        assert_eq!(store.head_etag(&key).unwrap(), etag, "{:?}", store.kind());
        let event = s3_notification(store.bucket(), &key, &etag);
        let run = || {
            command(&store, ETL)
                .args(["--event", &event])
                .output()
                .unwrap()
        };
        let out = run();
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("\"converted\""), "{}", stdout(&out));
        assert_eq!(rows_of(&store, &store.output("e.parquet")), 7);

        store.clear_requests();
        let out = run();
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
        let requests = store.requests();
        assert_eq!(requests.len(), 1, "{:?}: {requests:?}", store.kind());
        assert_eq!(requests[0].method, "HEAD");
        assert!(requests[0].path.ends_with("/e.parquet"), "{requests:?}");
    }
}

#[test]
fn listing_etags_garage_lists_them_s3s_fs_does_not() {
    for store in stores("listetag") {
        let key = store.input("l.csv");
        let etag = store.put(&key, csv_rows(3)).unwrap();
        let listed = store.list(&store.input("")).unwrap();
        assert_eq!(listed.len(), 1);
        match store.kind() {
            StoreKind::Garage => assert_eq!(listed[0], (key, etag)),
            StoreKind::S3sFs => assert_eq!(listed[0], (key, String::new())),
        }
    }
}

#[test]
fn a_sweep_of_up_to_date_objects_heads_outputs_only_where_the_listing_has_etags() {
    for store in stores("sweep") {
        for n in 1..=3 {
            store
                .put(&store.input(&format!("s/{n}.csv")), csv_rows(n * 10))
                .unwrap();
        }
        let sweep = || {
            command(&store, ETL)
                .args(["--bucket", store.bucket(), "--prefix", &store.input("s/")])
                .output()
                .unwrap()
        };
        let out = sweep();
        assert_exit(&out, 0);
        assert_eq!(stdout(&out).matches("\"converted\"").count(), 3);
        for n in 1..=3u64 {
            assert_eq!(
                rows_of(&store, &store.output(&format!("s/{n}.parquet"))),
                n as usize * 10
            );
        }

        store.clear_requests();
        let out = sweep();
        assert_exit(&out, 0);
        assert_eq!(
            stdout(&out).matches("up-to-date").count(),
            3,
            "{}",
            stdout(&out)
        );
        let requests = store.requests();
        let kind = store.kind();
        assert_eq!(
            requests.iter().filter(|r| is_list(r)).count(),
            1,
            "{kind:?}: {requests:?}"
        );
        assert!(
            !requests.iter().any(|r| r.is_object_get() || r.is_put()),
            "{kind:?}: {requests:?}"
        );
        let output_heads = requests
            .iter()
            .filter(|r| r.method == "HEAD" && r.path.contains("/output/"))
            .count();
        let source_heads = requests
            .iter()
            .filter(|r| r.method == "HEAD" && r.path.contains("/input/"))
            .count();
        // Each output is HEADed (its metadata records the source version); the source is
        // HEADed only where the listing gave no ETag.
        assert_eq!(output_heads, 3, "{kind:?}: {requests:?}");
        let expected_source_heads = match kind {
            StoreKind::Garage => 0,
            StoreKind::S3sFs => 3,
        };
        assert_eq!(
            source_heads, expected_source_heads,
            "{kind:?}: {requests:?}"
        );
        assert_eq!(requests.len(), 4 + expected_source_heads, "{requests:?}");
    }
}

#[test]
fn agg_of_the_seed_day_then_an_up_to_date_rerun_on_each_store() {
    for store in stores("agg") {
        seed_day(&store);
        let folder = store.output("20230414/");
        let run = || {
            command(&store, AGG)
                .args(["--bucket", store.bucket(), "--prefix", &folder])
                .output()
                .unwrap()
        };
        let out = run();
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("\"written\""), "{}", stdout(&out));
        let txt = store.get(&format!("{folder}agg.txt")).expect("agg.txt");
        assert_eq!(String::from_utf8(txt).unwrap(), SEED_RESULT);
        let report: serde_json::Value =
            serde_json::from_slice(&store.get(&format!("{folder}agg.json")).unwrap()).unwrap();
        assert_eq!(report["source_key"], format!("{folder}3.parquet"));
        assert_eq!(report["files"], 3);

        store.clear_requests();
        let out = run();
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
        let requests = store.requests();
        let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(methods, ["GET", "HEAD"], "{:?}: {requests:?}", store.kind());
        assert!(is_list(&requests[0]), "{requests:?}");
    }
}

/// A PUT of `body` at `key` carrying `If-None-Match: *` or `If-Match: "etag"`.
fn conditional_put(
    store: &S3Store,
    key: &str,
    body: &str,
    if_match: Option<&str>,
) -> Result<(), String> {
    let request = store
        .client()
        .put_object()
        .bucket(store.bucket())
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()));
    let request = match if_match {
        Some(etag) => request.if_match(format!("\"{etag}\"")),
        None => request.if_none_match("*"),
    };
    store
        .block(request.send())
        .map(drop)
        .map_err(|e| e.code().unwrap_or("(no code)").to_owned())
}

/// Records what each store does with conditional PUTs. If Garage starts enforcing them this
/// fails: then the README's S3 section (which guarantee holds where) must change.
#[test]
fn conditional_puts_s3s_fs_enforces_them_garage_ignores_them() {
    for store in stores("condput") {
        let key = store.input("c.txt");
        let first = store.put(&key, "first").unwrap();
        let absent = conditional_put(&store, &key, "second", None);
        let stale = conditional_put(
            &store,
            &key,
            "third",
            Some("0123456789abcdef0123456789abcdef"),
        );
        let now = String::from_utf8(store.get(&key).unwrap()).unwrap();
        match store.kind() {
            StoreKind::S3sFs => {
                assert_eq!(absent, Err("PreconditionFailed".to_owned()));
                assert_eq!(stale, Err("PreconditionFailed".to_owned()));
                assert_eq!(now, "first");
            }
            StoreKind::Garage => {
                assert_eq!(absent, Ok(()), "Garage now enforces If-None-Match on PUT");
                assert_eq!(stale, Ok(()), "Garage now enforces If-Match on PUT");
                assert_eq!(now, "third", "the ignored conditions let both PUTs write");
            }
        }
        // A PUT matching the current ETag succeeds everywhere.
        let current = store.head_etag(&key).unwrap();
        assert_eq!(current == first, store.kind() == StoreKind::S3sFs);
        assert_eq!(
            conditional_put(&store, &key, "fourth", Some(&current)),
            Ok(())
        );
    }
}

/// A GET pinned with `If-Match` to an ETag the object no longer has.
#[test]
fn pinned_gets_garage_answers_412_s3s_fs_ignores_the_pin() {
    for store in stores("pinget") {
        let key = store.input("p.txt");
        let old = store.put(&key, "old").unwrap();
        store.put(&key, "new").unwrap();
        let got = store.block(
            store
                .client()
                .get_object()
                .bucket(store.bucket())
                .key(&key)
                .if_match(format!("\"{old}\""))
                .send(),
        );
        match store.kind() {
            StoreKind::Garage => {
                // A bare 412 with an empty body: no error code (etl-s3 goes by the status).
                let error = got.expect_err("Garage served a stale pin");
                let status = error.raw_response().map(|r| r.status().as_u16());
                assert_eq!(status, Some(412), "{error:?}");
                assert_eq!(error.code(), None, "{error:?}");
            }
            StoreKind::S3sFs => {
                // Served anyway: the pipeline checks the response's ETag against the pin.
                let out = got.expect("s3s-fs answered the pinned GET");
                assert_ne!(out.e_tag().unwrap_or_default().trim_matches('"'), old);
            }
        }
    }
}

#[test]
fn error_codes_for_a_missing_key_and_a_missing_bucket_on_each_store() {
    for store in stores("codes") {
        let missing_key = store.block(
            store
                .client()
                .get_object()
                .bucket(store.bucket())
                .key(store.input("none.csv"))
                .send(),
        );
        assert_eq!(
            missing_key.expect_err("no such key").code(),
            Some("NoSuchKey"),
            "{:?}",
            store.kind()
        );
        let missing_bucket = store.block(
            store
                .client()
                .get_object()
                .bucket("etl-no-such-bucket")
                .key("x.csv")
                .send(),
        );
        // s3s-fs answers a GET in a missing bucket with NoSuchKey; Garage (as AWS S3) with
        // NoSuchBucket.
        let expected = match store.kind() {
            StoreKind::S3sFs => "NoSuchKey",
            StoreKind::Garage => "NoSuchBucket",
        };
        assert_eq!(
            missing_bucket.expect_err("no such bucket").code(),
            Some(expected),
            "{:?}",
            store.kind()
        );
        // What the binary makes of them: exit 2 naming the object.
        let out = etl_key(&store, &store.input("none.csv"), &[]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("none.csv"), "{}", stderr(&out));
        let out = command(&store, ETL)
            .args(["--bucket", "etl-no-such-bucket", "--key", "input/x.csv"])
            .output()
            .unwrap();
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains("etl-no-such-bucket"),
            "{:?}: {}",
            store.kind(),
            stderr(&out)
        );
    }
}

/// Uploads two parts (5 MiB + 1 byte) and completes; the ETag the object then has.
fn multipart_etag(store: &S3Store, key: &str) -> String {
    let client = store.client();
    let bucket = store.bucket();
    let created = store
        .block(
            client
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .send(),
        )
        .unwrap();
    let upload_id = created.upload_id().unwrap().to_owned();
    let mut parts = Vec::new();
    for (number, body) in [(1, vec![b'a'; 5 << 20]), (2, b"b".to_vec())] {
        let part = store
            .block(
                client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .unwrap();
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .build(),
        );
    }
    let upload = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    store
        .block(
            client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(upload)
                .send(),
        )
        .unwrap();
    store.head_etag(key).unwrap()
}

#[test]
fn multipart_etags_end_in_the_part_count_on_each_store() {
    for store in stores("multipart") {
        let etag = multipart_etag(&store, &store.input("m.bin"));
        let (hash, parts) = etag.split_once('-').unwrap_or((&etag, ""));
        assert_eq!(parts, "2", "{:?}: {etag}", store.kind());
        assert_eq!(hash.len(), 32, "{:?}: {etag}", store.kind());
        assert_eq!(
            store.list(&store.input("m.bin")).unwrap()[0].1,
            match store.kind() {
                StoreKind::Garage => etag.clone(),
                StoreKind::S3sFs => String::new(),
            }
        );
    }
}

/// v1 (150,000 rows) is read slowly through the fault proxy while v2 (3 rows) is uploaded
/// and converted; on Garage the conditional PUTs are ignored, so only the source re-checks
/// keep v1's output from replacing v2's.
fn slow_old_version_loses(store: &S3Store, extra: &[&str]) {
    let key = store.input("r.csv");
    let output = store.output("r.parquet");
    store.put(&key, csv_rows(150_000)).unwrap();
    let proxy = FaultProxy::start(store.address()).unwrap();
    proxy.set(Fault::Slow(Duration::from_millis(2)));
    store.clear_requests();
    let slow = command(store, ETL)
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .args(["--bucket", store.bucket(), "--key", &key])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while !store
        .requests()
        .iter()
        .any(|r| r.is_object_get() && r.path.ends_with("/r.csv"))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    store.put(&key, csv_rows(3)).unwrap();
    let out = etl_key(store, &key, extra);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("\"converted\""), "{}", stdout(&out));
    assert_eq!(rows_of(store, &output), 3);

    let old = slow.wait_with_output().unwrap();
    assert_exit(&old, 0);
    assert!(
        stdout(&old).contains("\"status\":\"superseded\""),
        "the old run did not report superseded: {}\n{}",
        stdout(&old),
        stderr(&old)
    );
    assert_eq!(rows_of(store, &output), 3, "v1 replaced v2's output");
    assert_eq!(store.keys(&store.output("")).unwrap(), [output]);
    let out = etl_key(store, &key, &[]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
}

#[test]
fn garage_a_slow_old_version_never_replaces_a_newer_output() {
    if let Some(store) = garage("race") {
        slow_old_version_loses(&store, &[]);
    }
}

#[test]
fn garage_a_slow_old_version_loses_with_conditional_writes_auto() {
    if let Some(store) = garage("raceauto") {
        slow_old_version_loses(&store, &["--conditional-writes", "auto"]);
    }
}

/// `--conditional-writes auto` probes once, before the first write: s3s-fs enforces
/// conditional PUTs, Garage does not; the scratch key is gone afterwards, and a run with
/// nothing to write does not probe.
#[test]
fn conditional_writes_auto_probes_the_store_once_and_cleans_up() {
    for store in stores("probe") {
        let key = store.input("p.csv");
        store.put(&key, csv_rows(5)).unwrap();
        store.clear_requests();
        let out = etl_key(&store, &key, &["--conditional-writes", "auto"]);
        assert_exit(&out, 0);
        let expected = match store.kind() {
            StoreKind::Garage => "enforced=false",
            _ => "enforced=true",
        };
        assert!(
            stderr(&out).contains(expected),
            "{:?}: {}",
            store.kind(),
            stderr(&out)
        );
        let probes: Vec<RecordedRequest> = store
            .requests()
            .into_iter()
            .filter(|r| r.path.contains(".etl/probe/"))
            .collect();
        assert_eq!(count(&probes, "PUT"), 2, "{probes:?}");
        assert_eq!(count(&probes, "DELETE"), 1, "{probes:?}");
        let listed = store.list(".etl/probe/").unwrap();
        assert!(
            probes.iter().all(|p| listed
                .iter()
                .all(|(key, _)| !p.path.ends_with(key.as_str()))),
            "the scratch key is deleted: {listed:?}"
        );
        assert_eq!(rows_of(&store, &store.output("p.parquet")), 5);

        store.clear_requests();
        let again = etl_key(&store, &key, &["--conditional-writes", "auto"]);
        assert_exit(&again, 0);
        assert!(stdout(&again).contains("up-to-date"), "{}", stdout(&again));
        assert!(
            store
                .requests()
                .iter()
                .all(|r| !r.path.contains(".etl/probe/")),
            "an up-to-date run does not probe"
        );
    }
}

#[test]
fn garage_a_slow_old_version_loses_without_conditional_writes_too() {
    if let Some(store) = garage("raceoff") {
        slow_old_version_loses(&store, &["--conditional-writes", "off"]);
    }
}

/// The harness itself: the recording proxy forwards signed requests unchanged and the race
/// scenarios run through it (on s3s-fs, where they also hold).
#[test]
fn the_race_scenarios_through_the_recording_proxy_on_s3s_fs() {
    let store = S3Store::in_process_behind_proxy("proxied").unwrap();
    slow_old_version_loses(&store, &[]);
    let etag = multipart_etag(&store, &store.input("m.bin"));
    assert!(etag.ends_with("-2"), "{etag}");
    let store = S3Store::in_process_behind_proxy("proxiedagg").unwrap();
    slow_aggregation_loses(&store);
}

/// A slow `agg` of the seed day while a file with a higher score arrives and a fast `agg`
/// commits it: whatever order the writes land in on Garage (conditions ignored), the day
/// ends with the new file's row and an `agg.json` a rerun finds up to date.
#[test]
fn garage_a_slow_aggregation_never_leaves_an_older_result() {
    if let Some(store) = garage("aggrace") {
        slow_aggregation_loses(&store);
    }
}

fn slow_aggregation_loses(store: &S3Store) {
    seed_day(store);
    let folder = store.output("20230414/");
    let proxy = FaultProxy::start(store.address()).unwrap();
    proxy.set(Fault::Slow(Duration::from_millis(150)));
    store.clear_requests();
    let slow = command(store, AGG)
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .args(["--bucket", store.bucket(), "--prefix", &folder])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while !store
        .requests()
        .iter()
        .any(|r| r.is_object_get() && r.range.is_some() && r.path.ends_with(".parquet"))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let newest = store.input("20230414/4.csv");
    store.put(&newest, "10,zzz,500\n").unwrap();
    assert_exit(&etl_key(store, &newest, &[]), 0);
    let fast = command(store, AGG)
        .args(["--bucket", store.bucket(), "--prefix", &folder])
        .output()
        .unwrap();
    assert_exit(&fast, 0);

    let slow = slow.wait_with_output().unwrap();
    assert_exit(&slow, 0);
    let report: serde_json::Value =
        serde_json::from_slice(&store.get(&format!("{folder}agg.json")).unwrap()).unwrap();
    assert_eq!(
        report["source_key"],
        format!("{folder}4.parquet"),
        "slow run: {}\n{}",
        stdout(&slow),
        stderr(&slow)
    );
    assert_eq!(report["files"], 4);
    let txt = String::from_utf8(store.get(&format!("{folder}agg.txt")).unwrap()).unwrap();
    assert!(txt.contains("zzz") && txt.contains("500"), "{txt}");
    let out = command(store, AGG)
        .args(["--bucket", store.bucket(), "--prefix", &folder])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
}

/// The SDK sends a CRC32 with every PUT; whether HEAD (checksum mode on) gives it back.
#[test]
fn put_checksums_come_back_on_head_on_each_store() {
    for store in stores("checksum") {
        let key = store.input("k.txt");
        let put = store
            .block(
                store
                    .client()
                    .put_object()
                    .bucket(store.bucket())
                    .key(&key)
                    .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
                    .body(ByteStream::from_static(b"checksummed"))
                    .send(),
            )
            .unwrap();
        let sent = put.checksum_crc32().map(str::to_owned);
        let head = store
            .block(
                store
                    .client()
                    .head_object()
                    .bucket(store.bucket())
                    .key(&key)
                    .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                    .send(),
            )
            .unwrap();
        assert!(
            sent.is_some(),
            "{:?}: no checksum in the PUT's answer",
            store.kind()
        );
        assert_eq!(head.checksum_crc32(), sent.as_deref(), "{:?}", store.kind());
    }
}

/// s3s-fs behind the recording proxy always, Garage when it is configured: stores whose
/// connections can be cut at a chosen request.
fn cuttable_stores(label: &str) -> Vec<S3Store> {
    let mut stores =
        vec![S3Store::in_process_behind_proxy(label).expect("s3s-fs behind the proxy")];
    stores.extend(garage(label));
    stores
}

/// For each store and each request N of `step` (from 0) and each side of it (the request
/// lost before the store acts, or acted on with the reply lost): the process is killed
/// there, as a crash would, then a plain rerun must exit 0 and leave `after` true.
/// Returns the crash points per store kind.
fn crash_windows(
    label: &str,
    setup: impl Fn(&S3Store),
    step: impl Fn(&S3Store) -> Command,
    after: impl Fn(&S3Store),
) -> Vec<(StoreKind, usize)> {
    let mut points = Vec::new();
    for kind in cuttable_stores(label).iter().map(S3Store::kind) {
        let mut count = 0;
        for cut in [Cut::Before, Cut::After] {
            for n in 0.. {
                let store = cuttable_stores(label)
                    .into_iter()
                    .find(|s| s.kind() == kind)
                    .expect("the same store");
                setup(&store);
                store.cut_at(n, cut).unwrap();
                let mut child = step(&store)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let hit = loop {
                    if let Some(hit) = store.cut_hit() {
                        break Some(hit);
                    }
                    if child.try_wait().unwrap().is_some() {
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                };
                let _ = child.kill();
                let _ = child.wait();
                let Some(hit) = hit else { break };
                count += 1;
                store.clear_cut();
                let rerun = step(&store).output().unwrap();
                assert_exit(&rerun, 0);
                after(&store);
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("{kind:?}: crash {cut:?} request {n} ({hit}): rerun right");
                }
            }
        }
        points.push((kind, count));
    }
    points
}

fn parquet_of(csv: &str) -> Vec<u8> {
    let mut out = Vec::new();
    etl_convert::convert(
        csv.as_bytes(),
        &mut out,
        &etl_convert::ConvertOptions::default(),
        &[],
    )
    .unwrap();
    out
}

/// The output-publish window: a crash at every request of a conversion of a new source
/// version (probe, plan, pinned GET, re-check, PUT, check after) on each store.
#[test]
fn a_crash_in_every_window_of_a_conversion_then_a_rerun_is_right_on_each_store() {
    let points = crash_windows(
        "crashetl",
        |store| {
            let key = store.input("c.csv");
            store.put(&key, csv_rows(5)).unwrap();
            assert_exit(&etl_key(store, &key, &[]), 0);
            store.put(&key, csv_rows(7)).unwrap();
        },
        |store| {
            let mut command = command(store, ETL);
            command
                .args(["--bucket", store.bucket(), "--key", &store.input("c.csv")])
                .args(["--conditional-writes", "auto"]);
            command
        },
        |store| {
            let output = store.output("c.parquet");
            assert_eq!(rows_of(store, &output), 7);
            let etag = store.head_etag(&store.input("c.csv")).unwrap();
            let head = store.block(
                store
                    .client()
                    .head_object()
                    .bucket(store.bucket())
                    .key(&output)
                    .send(),
            );
            let metadata = head.unwrap().metadata().cloned().unwrap_or_default();
            assert_eq!(metadata.get("etl-source-version"), Some(&etag));
        },
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("crash points: {points:?}");
    }
    assert!(points.iter().all(|(_, n)| *n >= 8), "{points:?}");
}

/// The agg.txt / agg.json windows: a crash at every request of an aggregation after one
/// input changed; the rerun leaves both files right and from one commit.
#[test]
fn a_crash_in_every_window_of_an_aggregation_then_a_rerun_is_right_on_each_store() {
    let folder = |store: &S3Store| store.output("d/");
    let points = crash_windows(
        "crashagg",
        |store| {
            let dir = folder(store);
            store
                .put(
                    &format!("{dir}1.parquet"),
                    parquet_of("id,score\n1,3\n2,9\n"),
                )
                .unwrap();
            store
                .put(
                    &format!("{dir}2.parquet"),
                    parquet_of("id,score\n3,2\n4,5\n"),
                )
                .unwrap();
            let out = command(store, AGG)
                .args(["--bucket", store.bucket(), "--prefix", &dir])
                .output()
                .unwrap();
            assert_exit(&out, 0);
            store
                .put(
                    &format!("{dir}2.parquet"),
                    parquet_of("id,score\n3,2\n4,50\n5,1\n6,4\n"),
                )
                .unwrap();
        },
        |store| {
            let mut command = command(store, AGG);
            command.args(["--bucket", store.bucket(), "--prefix", &folder(store)]);
            command
        },
        |store| {
            let dir = folder(store);
            let report: serde_json::Value =
                serde_json::from_slice(&store.get(&format!("{dir}agg.json")).expect("agg.json"))
                    .unwrap();
            assert_eq!(report["source_key"], format!("{dir}2.parquet"));
            let txt =
                String::from_utf8(store.get(&format!("{dir}agg.txt")).expect("agg.txt")).unwrap();
            assert!(txt.contains("50"), "{txt}");
            let fingerprint = |key: &str| {
                let head = store.block(
                    store
                        .client()
                        .head_object()
                        .bucket(store.bucket())
                        .key(key)
                        .send(),
                );
                head.unwrap()
                    .metadata()
                    .and_then(|m| m.get("etl-fingerprint").cloned())
            };
            assert_eq!(
                fingerprint(&format!("{dir}agg.txt")),
                fingerprint(&format!("{dir}agg.json")),
                "agg.txt and agg.json from one commit"
            );
        },
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("crash points: {points:?}");
    }
    assert!(points.iter().all(|(_, n)| *n >= 8), "{points:?}");
}
