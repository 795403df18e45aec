//! Large objects: ranged GETs pinned to the source's ETag, a bounded number of ranges and
//! of upload parts in flight, and outputs equal to a one-GET, one-part-at-a-time run.

mod support;

use std::time::{Duration, Instant};

use etl_convert::{ConvertOptions, OutputFormat};
use etl_protocol::Transfer;
use etl_protocol::convert::{ConditionalWrites, ObjectJob, Outcome, Protocol, convert_object};
use support::MemStore;

const SOURCE: (&str, &str) = ("in", "d/1.csv");
const OUTPUT: (&str, &str) = ("out", "d/1.jsonl");

fn csv(rows: usize) -> Vec<u8> {
    let mut text = String::from("id,name,score\n");
    for i in 0..rows {
        text.push_str(&format!("{i},name {i},{}\n", i * 7 % 13));
    }
    text.into_bytes()
}

async fn convert(store: &MemStore) -> anyhow::Result<Outcome> {
    let job = ObjectJob {
        bucket: SOURCE.0,
        key: SOURCE.1,
        known_etag: None,
        target_bucket: OUTPUT.0,
        target_key: OUTPUT.1,
    };
    let protocol = Protocol {
        force: false,
        conditional_writes: ConditionalWrites::On,
    };
    let options = ConvertOptions {
        format: OutputFormat::Jsonl,
        ..ConvertOptions::default()
    };
    convert_object(store, &job, &options, protocol).await
}

fn store_with(transfer: Transfer) -> MemStore {
    let store = MemStore::default();
    store.state().transfer = transfer;
    store
}

/// The output of `source` read with one GET and uploaded one part at a time.
async fn reference(source: &[u8]) -> Vec<u8> {
    let store = store_with(Transfer {
        part_size: 100,
        concurrency: 1,
        ranged_read_above: u64::MAX,
    });
    store.put(SOURCE.0, SOURCE.1, source.to_vec());
    convert(&store).await.expect("a clean conversion");
    assert!(store.state().ranges.is_empty());
    store
        .object(OUTPUT.0, OUTPUT.1)
        .expect("an output")
        .data
        .to_vec()
}

fn count(store: &MemStore, operation: &str) -> usize {
    store
        .state()
        .calls
        .iter()
        .filter(|c| **c == operation)
        .count()
}

/// Polls until `held` calls wait at the store's hold.
async fn until_held(store: &MemStore, held: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.state().held < held {
        assert!(Instant::now() < deadline, "{} held", store.state().held);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_above_the_threshold_is_read_in_ranges_each_pinned_to_its_etag() {
    let source = csv(20);
    assert!((201..300).contains(&source.len()), "{}", source.len());
    let store = store_with(Transfer {
        part_size: 100,
        concurrency: 3,
        ranged_read_above: 150,
    });
    let etag = store.put(SOURCE.0, SOURCE.1, source.clone());
    let outcome = convert(&store).await.expect("a conversion");
    assert!(
        matches!(outcome, Outcome::Converted { rows: 20, .. }),
        "{outcome:?}"
    );
    let len = source.len() as u64;
    let pinned = Some(etag);
    // Concurrent ranges reach the store in any order.
    let mut ranges = store.state().ranges.clone();
    ranges.sort_by_key(|(range, _)| range.start);
    assert_eq!(
        ranges,
        [
            (0..100, pinned.clone()),
            (100..200, pinned.clone()),
            (200..len, pinned)
        ]
    );
    // Three ranged GETs and no whole-object GET.
    assert_eq!(count(&store, "GetObject"), 3);
    let output = store.object(OUTPUT.0, OUTPUT.1).expect("an output");
    assert_eq!(output.data.as_ref(), reference(&source).await.as_slice());

    // At or below the threshold: one GET of the whole object.
    let small = store_with(Transfer {
        part_size: 100,
        concurrency: 3,
        ranged_read_above: len,
    });
    small.put(SOURCE.0, SOURCE.1, source.clone());
    convert(&small).await.expect("a conversion");
    assert!(small.state().ranges.is_empty());
    assert_eq!(count(&small, "GetObject"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_keep_concurrency_ranges_in_flight_and_no_more() {
    let source = csv(100);
    let parts = source.len().div_ceil(100);
    assert!(parts >= 10, "{parts}");
    let store = store_with(Transfer {
        part_size: 100,
        concurrency: 3,
        ranged_read_above: 0,
    });
    store.put(SOURCE.0, SOURCE.1, source.clone());
    store.hold("GetObject");
    let running = tokio::spawn({
        let store = store.clone();
        async move { convert(&store).await }
    });
    until_held(&store, 3).await;
    // Nothing completes while held: no fourth range may start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.state().held, 3);
    assert!(store.state().ranges.is_empty());
    store.release();
    let outcome = running
        .await
        .expect("the conversion task")
        .expect("a conversion");
    assert!(
        matches!(outcome, Outcome::Converted { rows: 100, .. }),
        "{outcome:?}"
    );
    assert_eq!(store.state().ranges.len(), parts);
    let output = store.object(OUTPUT.0, OUTPUT.1).expect("an output");
    assert_eq!(output.data.as_ref(), reference(&source).await.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_parts_go_out_concurrency_at_a_time_and_no_more() {
    let source = csv(200);
    let store = store_with(Transfer {
        part_size: 100,
        concurrency: 4,
        ranged_read_above: u64::MAX,
    });
    store.put(SOURCE.0, SOURCE.1, source.clone());
    store.hold("UploadPart");
    let running = tokio::spawn({
        let store = store.clone();
        async move { convert(&store).await }
    });
    until_held(&store, 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.state().held, 4);
    assert_eq!(count(&store, "UploadPart"), 0);
    store.release();
    let outcome = running
        .await
        .expect("the conversion task")
        .expect("a conversion");
    assert!(
        matches!(outcome, Outcome::Converted { rows: 200, .. }),
        "{outcome:?}"
    );
    let expected = reference(&source).await;
    assert_eq!(count(&store, "UploadPart"), expected.len().div_ceil(100));
    assert_eq!(count(&store, "CompleteMultipartUpload"), 1);
    let output = store.object(OUTPUT.0, OUTPUT.1).expect("an output");
    assert_eq!(output.data.as_ref(), expected.as_slice());
}
