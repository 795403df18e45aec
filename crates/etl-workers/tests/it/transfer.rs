//! Large and compressed objects: ranged GETs pinned to the source's ETag, counted; a cut or
//! a corrupt compressed body keeps its class (transient: exit 1, bad data: exit 2).

use etl_test_support::proxy::{Fault, FaultProxy};

use crate::csv_inputs::flate2_free_gzip;
use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");
const PART: u64 = 5 << 20;

fn etl(t: &TestContext, endpoint: Option<&str>, key: &str, extra: &[&str]) -> std::process::Output {
    let mut command = t.command(ETL);
    if let Some(endpoint) = endpoint {
        command.env("AWS_ENDPOINT_URL", endpoint);
    }
    command
        .args(["--bucket", BUCKET, "--key", key])
        .args(extra)
        .output()
        .unwrap()
}

const RANGED: [&str; 4] = ["--s3-part-size", "5MiB", "--s3-ranged-read-above", "0"];

#[test]
fn a_large_object_is_read_in_ranged_gets_each_pinned_to_its_etag() {
    let t = TestContext::new();
    let body = csv_rows(400_000);
    let len = body.len() as u64;
    assert!((2 * PART + 1..3 * PART).contains(&len), "{len}");
    t.put("input/big.csv", body);
    let etag = t.head_etag("input/big.csv");
    t.s3.clear_requests();
    let out = etl(&t, None, "input/big.csv", &RANGED);
    assert_exit(&out, 0);
    let mut gets: Vec<_> =
        t.s3.requests()
            .into_iter()
            .filter(|r| r.is_object_get() && r.path.ends_with("/input/big.csv"))
            .collect();
    gets.sort_by_key(|r| {
        r.range.as_deref().and_then(|r| {
            r.strip_prefix("bytes=")?
                .split('-')
                .next()?
                .parse::<u64>()
                .ok()
        })
    });
    let ranges: Vec<_> = gets.iter().map(|r| r.range.clone()).collect();
    assert_eq!(
        ranges,
        [
            Some(format!("bytes=0-{}", PART - 1)),
            Some(format!("bytes={}-{}", PART, 2 * PART - 1)),
            Some(format!("bytes={}-{}", 2 * PART, len - 1)),
        ]
    );
    let pinned = format!("\"{}\"", etag.trim_matches('"'));
    assert!(
        gets.iter()
            .all(|r| r.if_match.as_deref() == Some(pinned.as_str())),
        "{gets:?}"
    );
    let batches = read_parquet(t.get("output/big.parquet").unwrap());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 400_000);

    // Below the threshold (the default, 64 MiB): one GET of the whole object.
    t.s3.clear_requests();
    let out = etl(&t, None, "input/big.csv", &["--force"]);
    assert_exit(&out, 0);
    let gets: Vec<_> =
        t.s3.requests()
            .into_iter()
            .filter(|r| r.is_object_get() && r.path.ends_with("/input/big.csv"))
            .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].range, None);
}

#[test]
fn a_cut_in_a_ranged_read_is_transient_and_publishes_nothing() {
    let t = TestContext::new();
    t.put("input/big.csv", csv_rows(400_000));
    let proxy = FaultProxy::start(t.s3.address()).unwrap();
    proxy.set(Fault::CutDownstreamAfter(1 << 20));
    let out = etl(&t, Some(&proxy.endpoint()), "input/big.csv", &RANGED);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("s3://etlproj/input/big.csv"),
        "{}",
        stderr(&out)
    );
    assert!(t.keys("output/").is_empty(), "{:?}", t.keys("output/"));

    proxy.set(Fault::None);
    let out = etl(&t, Some(&proxy.endpoint()), "input/big.csv", &RANGED);
    assert_exit(&out, 0);
    let batches = read_parquet(t.get("output/big.parquet").unwrap());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 400_000);
}

#[test]
fn a_gzip_object_cut_mid_body_is_transient_and_a_corrupt_one_is_bad_input() {
    let t = TestContext::new();
    let gzip = flate2_free_gzip(csv_rows(200_000).as_bytes());
    assert!(gzip.len() > 4 << 20, "{}", gzip.len());
    t.put("input/cut.csv.gz", gzip.clone());
    let proxy = FaultProxy::start(t.s3.address()).unwrap();
    proxy.set(Fault::CutDownstreamAfter(2 << 20));
    let out = etl(&t, Some(&proxy.endpoint()), "input/cut.csv.gz", &[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("s3://etlproj/input/cut.csv.gz"),
        "{}",
        stderr(&out)
    );
    assert!(t.keys("output/").is_empty(), "{:?}", t.keys("output/"));

    // A stored block's length check broken halfway: the bytes before it parse, then the
    // stream is corrupt.
    let mut corrupt = gzip;
    let block = 10 + 30 * (65_535 + 5);
    assert_eq!(corrupt[block], 0, "a block header");
    corrupt[block + 3] ^= 0xFF;
    t.put("input/corrupt.csv.gz", corrupt);
    let out = etl(&t, None, "input/corrupt.csv.gz", &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("s3://etlproj/input/corrupt.csv.gz"), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert!(t.keys("output/").is_empty(), "{:?}", t.keys("output/"));
}
