//! Every store call of a clean run, failed, crashed or raced in turn, then a plain rerun:
//! the invariants of the object protocol hold after each (issue 14).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use etl_convert::{BadRows, ConvertOptions, OutputFormat};
use etl_error::{Classify, ErrorClass};
use etl_protocol::agg::{AggOptions, FolderOutcome, aggregate_folder};
use etl_protocol::convert::{
    ConditionalWrites, ObjectJob, Outcome, Protocol, bad_marker_key, convert_object,
    quarantine_key, source_keys,
};
use support::{Fault, MemStore};

const SOURCE: (&str, &str) = ("in", "d/1.csv");
const OUTPUT: (&str, &str) = ("out", "d/1.jsonl");

/// What the runs did, for the closing note.
#[derive(Debug, Default)]
struct Tally {
    fault_points: usize,
    /// Outcome of the faulted (or raced) run → count.
    outcomes: BTreeMap<String, usize>,
    wrong_or_stale: usize,
    /// Multipart uploads left by crashed runs or lost CreateMultipartUpload replies.
    orphaned_uploads: usize,
}

impl Tally {
    /// Counts (and prints) a fault point whose checks found `problems`.
    fn finish(&mut self, clean: &MemStore, at: usize, fault: Option<Fault>, problems: &[String]) {
        if !problems.is_empty() {
            self.wrong_or_stale += 1;
            let op = clean.state().calls[at];
            eprintln!("call {at} ({op}), {}: {problems:?}", fault_name(fault));
        }
    }

    fn note(&mut self, outcome: String) {
        self.fault_points += 1;
        *self.outcomes.entry(outcome).or_default() += 1;
    }
}

/// The class the binaries' exit code would take: the first error that knows its class.
fn class_of(error: &anyhow::Error) -> ErrorClass {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<etl_s3::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_convert::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_agg::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_protocol::OutputTaken>() {
            return e.class();
        }
    }
    ErrorClass::Retryable
}

fn options() -> ConvertOptions {
    ConvertOptions {
        format: OutputFormat::Jsonl,
        bad_rows: BadRows::Quarantine,
        ..ConvertOptions::default()
    }
}

fn csv(version: u32, bad_row: bool) -> Vec<u8> {
    let mut text = String::from("id,name,score\n");
    for i in 0..24 {
        text.push_str(&format!(
            "{i},name {version}-{i},{}\n",
            i * 7 % 13 + version
        ));
    }
    if bad_row {
        text.push_str("25,too,many,fields\n");
    }
    text.into_bytes()
}

async fn convert(store: &MemStore, conditional_writes: bool) -> anyhow::Result<Outcome> {
    let job = ObjectJob {
        bucket: SOURCE.0,
        key: SOURCE.1,
        known_etag: None,
        target_bucket: OUTPUT.0,
        target_key: OUTPUT.1,
    };
    let protocol = Protocol {
        force: false,
        conditional_writes: if conditional_writes {
            ConditionalWrites::On
        } else {
            ConditionalWrites::Off
        },
    };
    convert_object(store, &job, &options(), protocol).await
}

/// The output and sidecar a clean run makes of `source` on an empty store.
async fn reference(source: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let store = MemStore::default();
    store.put(SOURCE.0, SOURCE.1, source.to_vec());
    convert(&store, true).await.expect("a clean conversion");
    let output = store.object(OUTPUT.0, OUTPUT.1).expect("an output");
    let sidecar = store.object(OUTPUT.0, &quarantine_key(OUTPUT.1));
    (output.data.to_vec(), sidecar.map(|s| s.data.to_vec()))
}

/// A store holding source version 1 (with one bad row) and the output of version 0;
/// `ranged`: sources are read in ranges of 64 bytes, 4 in flight.
async fn convert_base(enforce: bool, ranged: bool) -> MemStore {
    let store = MemStore::new(enforce);
    if ranged {
        store.state().transfer.ranged_read_above = 0;
    }
    store.put(SOURCE.0, SOURCE.1, csv(0, true));
    convert(&store, enforce)
        .await
        .expect("converting version 0");
    store.put(SOURCE.0, SOURCE.1, csv(1, true));
    store
}

fn outcome_name(result: &anyhow::Result<Outcome>) -> String {
    match result {
        Ok(Outcome::Converted { .. }) => "converted".into(),
        Ok(Outcome::UpToDate) => "up-to-date".into(),
        Ok(Outcome::Superseded { .. }) => "superseded".into(),
        Ok(Outcome::KnownBad { .. }) => "known-bad".into(),
        Err(error) => match class_of(error) {
            ErrorClass::Retryable => "failed (retryable)".into(),
            ErrorClass::BadInput => "failed (bad input)".into(),
        },
    }
}

/// Checks the store after the rerun; returns the problems found.
async fn convert_invariants(store: &MemStore) -> Vec<String> {
    let mut problems = Vec::new();
    let source = store.object(SOURCE.0, SOURCE.1).expect("the source");
    let (expected, expected_sidecar) = reference(&source.data).await;
    match store.object(OUTPUT.0, OUTPUT.1) {
        None => problems.push("no output".into()),
        Some(output) => {
            if output.metadata.get(source_keys::VERSION) != Some(&source.etag) {
                problems.push(format!(
                    "the output records {:?}, the source is {}",
                    output.metadata.get(source_keys::VERSION),
                    source.etag
                ));
            }
            if output.data.as_ref() != expected.as_slice() {
                problems.push("the output's bytes are not the newest version's".into());
            }
        }
    }
    let sidecar = store.object(OUTPUT.0, &quarantine_key(OUTPUT.1));
    match (&sidecar, &expected_sidecar) {
        (None, None) => {}
        (Some(got), Some(want)) if got.data.as_ref() == want.as_slice() => {
            if got.metadata.get(source_keys::VERSION) != Some(&source.etag) {
                problems.push("the sidecar records another version".into());
            }
        }
        (Some(_), None) => problems.push("a sidecar of another version is left".into()),
        (None, Some(_)) => problems.push("the sidecar is missing".into()),
        (Some(_), Some(_)) => problems.push("the sidecar's rows are another version's".into()),
    }
    if store.object(OUTPUT.0, &bad_marker_key(OUTPUT.1)).is_some() {
        problems.push("a bad-input marker for a good source".into());
    }
    problems
}

/// Checks what the faulted run itself returned and left.
fn faulted_run_checks(
    fault: Option<(usize, Fault)>,
    result: &anyhow::Result<Outcome>,
    store: &MemStore,
    uploads_before: usize,
) -> Vec<String> {
    let mut problems = Vec::new();
    let (at, fault) = (fault.map(|f| f.0), fault.map(|f| f.1));
    if let Err(error) = result
        && matches!(
            fault,
            Some(Fault::Transient | Fault::TransientAfter | Fault::Crash | Fault::CrashAfter)
        )
        && class_of(error) == ErrorClass::BadInput
    {
        problems.push(format!(
            "a transient fault classified as bad input: {error:#}"
        ));
    }
    // A refusal (403) is refused again on a retry, wherever it happens (a later range too).
    if let Err(error) = result
        && fault == Some(Fault::Permanent)
        && class_of(error) == ErrorClass::Retryable
    {
        problems.push(format!("a refusal classified as retryable: {error:#}"));
    }
    if matches!(result, Ok(Outcome::KnownBad { .. })) {
        problems.push("a good source reported as known bad".into());
    }
    let uploads = store.state().uploads.len();
    // A crash, or a lost reply to CreateMultipartUpload (the id never reached the client),
    // leaves an upload that only the bucket's lifecycle rule can remove.
    let orphaned = fault.is_some_and(Fault::is_crash)
        || (fault == Some(Fault::TransientAfter)
            && at.and_then(|at| store.state().calls.get(at).copied())
                == Some("CreateMultipartUpload"));
    if !orphaned && uploads > uploads_before {
        problems.push(format!(
            "{} multipart uploads left by a finished run",
            uploads - uploads_before
        ));
    }
    problems
}

/// A fault (or, with `race`, a new source version written by another writer) at every
/// store call of a clean run, each followed by a plain rerun; `ranged` reads the source in
/// ranged GETs.
async fn convert_sweep(enforce: bool, race: bool, ranged: bool) -> Tally {
    let base = convert_base(enforce, ranged).await;
    let clean = base.fork();
    let outcome = convert(&clean, enforce).await.expect("a clean run");
    assert!(
        matches!(outcome, Outcome::Converted { rejected: 1, .. }),
        "{outcome:?}"
    );
    assert!(
        clean.state().calls.contains(&"UploadPart"),
        "the output is large enough for a multipart upload"
    );
    assert_eq!(
        clean.state().ranges.len() > 1,
        ranged,
        "ranged reads in a ranged sweep only"
    );
    let calls = clean.calls();
    let faults = sweep_faults(race);
    let mut tally = Tally::default();
    for at in 0..calls {
        for &fault in &faults {
            let store = base.fork();
            store.fault_or_race(
                at,
                fault,
                Box::new(|state| {
                    state.put_object(SOURCE.0, SOURCE.1, csv(2, false).into(), Default::default());
                }),
            );
            let result = convert(&store, enforce).await;
            let mut problems = faulted_run_checks(fault.map(|f| (at, f)), &result, &store, 0);
            if matches!(result, Ok(Outcome::Converted { .. } | Outcome::UpToDate)) {
                problems.extend(convert_invariants(&store.fork()).await);
            }
            let left = store.state().uploads.len();
            tally.orphaned_uploads += left;
            store.heal();
            let rerun = convert(&store, enforce).await;
            if !matches!(rerun, Ok(Outcome::Converted { .. } | Outcome::UpToDate)) {
                problems.push(format!("the rerun: {}", outcome_name(&rerun)));
            }
            problems.extend(faulted_run_checks(None, &rerun, &store, left));
            problems.extend(convert_invariants(&store).await);
            tally.finish(&clean, at, fault, &problems);
            tally.note(format!("{}: {}", fault_name(fault), outcome_name(&result)));
        }
    }
    tally
}

/// Every fault, or the single race (`None`).
fn sweep_faults(race: bool) -> Vec<Option<Fault>> {
    if race {
        vec![None]
    } else {
        Fault::ALL.into_iter().map(Some).collect()
    }
}

fn fault_name(fault: Option<Fault>) -> String {
    fault.map_or("race".to_owned(), |f| format!("{f:?}"))
}

fn report(name: &str, tally: &Tally) {
    println!(
        "{name}: {} fault points injected, wrong or stale outputs: {}, multipart uploads orphaned by crashes or lost replies: {}",
        tally.fault_points, tally.wrong_or_stale, tally.orphaned_uploads
    );
    for (outcome, count) in &tally.outcomes {
        println!("  {outcome}: {count}");
    }
}

/// Prints each sweep's tally; fails on a wrong or stale output or too few fault points.
fn check(name: &str, enforce: bool, tally: &Tally, min_points: usize) {
    report(
        &format!("{name}, conditional writes enforced: {enforce}"),
        tally,
    );
    assert!(tally.fault_points >= min_points, "{tally:?}");
    assert_eq!(tally.wrong_or_stale, 0, "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_survives_a_fault_at_every_store_call() {
    for enforce in [true, false] {
        let tally = convert_sweep(enforce, false, false).await;
        check("etl convert", enforce, &tally, 5 * 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_keeps_the_newest_version_when_the_source_changes_at_every_store_call() {
    for enforce in [true, false] {
        let tally = convert_sweep(enforce, true, false).await;
        check("etl convert race", enforce, &tally, 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_reading_in_ranges_survives_a_fault_at_every_store_call() {
    for enforce in [true, false] {
        let tally = convert_sweep(enforce, false, true).await;
        check("etl convert, ranged reads", enforce, &tally, 5 * 15);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_reading_in_ranges_never_mixes_versions_when_the_source_changes() {
    for enforce in [true, false] {
        let tally = convert_sweep(enforce, true, true).await;
        check("etl convert race, ranged reads", enforce, &tally, 15);
    }
}

// --- agg ---

const BUCKET: &str = "out";
const FOLDER: &str = "output/d/";

fn parquet(rows: &[(u32, f64)]) -> Vec<u8> {
    let mut text = String::from("id,score\n");
    for (id, score) in rows {
        text.push_str(&format!("{id},{score}\n"));
    }
    let mut out = Vec::new();
    etl_convert::convert(text.as_bytes(), &mut out, &ConvertOptions::default(), &[])
        .expect("a Parquet file");
    out
}

fn agg_options() -> AggOptions {
    AggOptions {
        column: "score".into(),
        settle: Duration::ZERO,
        settle_timeout: Duration::from_secs(1),
        force: false,
        jobs: 1,
    }
}

async fn aggregate(store: &MemStore) -> anyhow::Result<FolderOutcome> {
    aggregate_folder(store, BUCKET, FOLDER, &agg_options()).await
}

/// Two files aggregated, then a third added.
async fn agg_base(enforce: bool) -> MemStore {
    let store = MemStore::new(enforce);
    store.put(
        BUCKET,
        &format!("{FOLDER}1.parquet"),
        parquet(&[(1, 3.5), (2, 9.0), (3, 1.0)]),
    );
    store.put(
        BUCKET,
        &format!("{FOLDER}2.parquet"),
        parquet(&[(4, 2.0), (5, 9.5)]),
    );
    aggregate(&store).await.expect("the first aggregate");
    store.put(
        BUCKET,
        &format!("{FOLDER}3.parquet"),
        parquet(&[(6, 12.0), (7, 0.5)]),
    );
    store
}

/// agg.txt and agg.json a clean run makes of the store's inputs.
async fn agg_reference(store: &MemStore) -> (Vec<u8>, Vec<u8>) {
    let clean = store.fork();
    clean
        .state()
        .objects
        .retain(|(_, key), _| key.ends_with(".parquet"));
    clean.state().uploads.clear();
    aggregate(&clean).await.expect("a clean aggregate");
    let txt = clean
        .object(BUCKET, &format!("{FOLDER}agg.txt"))
        .expect("agg.txt");
    let json = clean
        .object(BUCKET, &format!("{FOLDER}agg.json"))
        .expect("agg.json");
    (txt.data.to_vec(), json.data.to_vec())
}

async fn agg_invariants(store: &MemStore) -> Vec<String> {
    let (txt, json) = agg_reference(store).await;
    let mut problems = Vec::new();
    match store.object(BUCKET, &format!("{FOLDER}agg.txt")) {
        Some(got) if got.data.as_ref() == txt.as_slice() => {}
        Some(_) => problems.push("agg.txt is not the newest inputs' result".to_owned()),
        None => problems.push("no agg.txt".to_owned()),
    }
    match store.object(BUCKET, &format!("{FOLDER}agg.json")) {
        Some(got) if got.data.as_ref() == json.as_slice() => {}
        Some(_) => problems.push("agg.json is not the newest inputs' result".to_owned()),
        None => problems.push("no agg.json".to_owned()),
    }
    problems
}

fn agg_outcome_name(result: &anyhow::Result<FolderOutcome>) -> String {
    match result {
        Ok(FolderOutcome::Written { .. }) => "written".into(),
        Ok(FolderOutcome::UpToDate) => "up-to-date".into(),
        Ok(FolderOutcome::Empty) => "empty".into(),
        Ok(FolderOutcome::Superseded) => "superseded".into(),
        Err(error) => match class_of(error) {
            ErrorClass::Retryable => "failed (retryable)".into(),
            ErrorClass::BadInput => "failed (bad input)".into(),
        },
    }
}

async fn agg_sweep(enforce: bool, race: bool) -> Tally {
    let base = agg_base(enforce).await;
    let clean = base.fork();
    let outcome = aggregate(&clean).await.expect("a clean run");
    assert!(
        matches!(outcome, FolderOutcome::Written { files: 3, .. }),
        "{outcome:?}"
    );
    let calls = clean.calls();
    let faults = sweep_faults(race);
    let mut tally = Tally::default();
    for at in 0..calls {
        for &fault in &faults {
            let store = base.fork();
            store.fault_or_race(
                at,
                fault,
                Box::new(|state| {
                    let file = parquet(&[(4, 2.0), (5, 30.0)]);
                    let key = format!("{FOLDER}2.parquet");
                    state.put_object(BUCKET, &key, file.into(), Default::default());
                }),
            );
            let result = aggregate(&store).await;
            let mut problems = Vec::new();
            if let Err(error) = &result
                && fault.is_some_and(|f| f != Fault::Permanent)
                && class_of(error) == ErrorClass::BadInput
            {
                problems.push(format!(
                    "a transient fault classified as bad input: {error:#}"
                ));
            }
            if matches!(
                result,
                Ok(FolderOutcome::Written { .. } | FolderOutcome::UpToDate)
            ) {
                problems.extend(agg_invariants(&store.fork()).await);
            }
            store.heal();
            let rerun = aggregate(&store).await;
            if !matches!(
                rerun,
                Ok(FolderOutcome::Written { .. } | FolderOutcome::UpToDate)
            ) {
                problems.push(format!("the rerun: {}", agg_outcome_name(&rerun)));
            }
            problems.extend(agg_invariants(&store).await);
            tally.finish(&clean, at, fault, &problems);
            tally.note(format!(
                "{}: {}",
                fault_name(fault),
                agg_outcome_name(&result)
            ));
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agg_survives_a_fault_at_every_store_call() {
    for enforce in [true, false] {
        check("agg", enforce, &agg_sweep(enforce, false).await, 5 * 8);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agg_reflects_the_newest_inputs_when_one_changes_at_every_store_call() {
    for enforce in [true, false] {
        check("agg race", enforce, &agg_sweep(enforce, true).await, 8);
    }
}
