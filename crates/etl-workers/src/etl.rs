//! The `etl` command: CSV objects (by key, notification, prefix sweep) or a local file to
//! Parquet, JSON Lines or CSV.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use etl_convert::ConvertOptions;
use etl_error::{ErrorClass, ExitStatus};
use etl_event::KeyEncoding;
use etl_protocol::convert::{self, Outcome};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::json;

use crate::cli::{ConvertArgs, LogArgs, TransferArgs};
use crate::exit::{Reported, UsageError, class_of};
use crate::{env_vars, naming, payload, result_dir};

const EXAMPLES: &str = "\
Examples:
  # one object (the MinIO flow): writes output/20230414/1.parquet
  etl --bucket etlproj --key input/20230414/1.csv

  # every object-created record of a notification (MinIO, S3, SNS, SQS, EventBridge)
  etl --event @notification.json
  etl --event - < notification.json

  # what would happen, without any I/O
  etl --event @notification.json --dry-run

  # sweep: convert every CSV under a prefix whose output is missing or stale
  etl --bucket etlproj --prefix input/20230414/ --jobs 8

  # each object's state under a prefix (up-to-date, stale, missing, bad), HEADs only
  etl --bucket etlproj --prefix input/20230414/ --dry-run

  # a local file
  etl --input data.csv --output data.parquet

  # the AWS side of the S3 flows (queue or topic, bucket notification): see its --help
  etl setup aws --bucket etlproj --prefix input/ --suffix .csv --via sqs

S3 settings come from the AWS SDK's chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION (default us-east-1), AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 (a custom endpoint
such as MinIO implies path-style addressing), profiles, IRSA web identity.

Exit codes: 0 done, up to date, superseded (a newer source version owns the output) or
nothing to do; 1 transient failure (retrying may help; in a sweep, any transient failure);
2 invalid usage, payload or data (retrying will not help).";

/// Convert CSV objects or files to Parquet, JSON Lines or CSV.
#[derive(Debug, Parser)]
#[command(name = "etl", version, about = "Convert CSV objects or local files to Parquet, JSON Lines or CSV.", after_help = EXAMPLES)]
pub struct EtlArgs {
    /// Bucket of the input object (with --key) or objects (with --prefix).
    #[arg(long, env = env_vars::ETL_BUCKET)]
    pub bucket: Option<String>,
    /// Key of one input object (or `s3://bucket/key`, then without --bucket).
    #[arg(long, conflicts_with_all = ["prefix", "event", "input"])]
    pub key: Option<String>,
    /// Convert every CSV object under this prefix whose output is missing or stale (or
    /// `s3://bucket/prefix`).
    #[arg(long, env = env_vars::ETL_PREFIX, conflicts_with_all = ["event", "input"])]
    pub prefix: Option<String>,
    /// A notification payload: JSON text, @FILE, or - for stdin.
    #[arg(long, conflicts_with = "input")]
    pub event: Option<String>,
    /// A local CSV file, plain or gzip/zstd/bzip2-compressed, or - for stdin (use with --output).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Print the inferred schema (of --input, or of --bucket/--key) as a file for --schema,
    /// and convert nothing.
    #[arg(long, conflicts_with_all = ["prefix", "event", "dry_run", "plan"])]
    pub print_schema: bool,
    /// A local output file (`-` for stdout) [default with --input: the input with the format's extension].
    #[arg(long, requires = "input")]
    pub output: Option<PathBuf>,
    /// Bucket for outputs [default: the input's bucket].
    #[arg(long, env = env_vars::ETL_OUTPUT_BUCKET)]
    pub output_bucket: Option<String>,
    /// Output key template with {key} {dir} {parent} {name} {stem} {ext}
    /// [default: first segment input → output, extension → the format's].
    #[arg(long, env = env_vars::ETL_OUTPUT_KEY)]
    pub output_key: Option<String>,
    #[command(flatten)]
    pub convert: ConvertArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// How notification keys are encoded: auto (by source), raw or url.
    #[arg(long, env = env_vars::ETL_KEY_ENCODING, default_value = "auto")]
    pub key_encoding: KeyEncoding,
    /// Print one JSON line per object that would be converted; no I/O (with --prefix: the
    /// listing and HEADs, each line with its `state`: up-to-date, stale, missing or bad).
    #[arg(long, conflicts_with = "plan")]
    pub dry_run: bool,
    /// Like --dry-run after a HEAD of each object: adds its size and suggested pod resources.
    #[arg(long, conflicts_with = "input")]
    pub plan: bool,
    /// Convert even when the output already records the same input version.
    #[arg(long, env = env_vars::ETL_FORCE, value_parser = clap::builder::BoolishValueParser::new())]
    pub force: bool,
    /// Publish with If-None-Match / If-Match (on), or rely only on re-checking the source
    /// before and after publishing (off: for stores that refuse conditional writes); auto
    /// probes the output bucket once (a scratch key under .etl/probe/, deleted after).
    #[arg(long, env = env_vars::ETL_CONDITIONAL_WRITES, default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub conditional_writes: String,
    /// Concurrent conversions.
    #[arg(long, env = env_vars::ETL_JOBS, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Write Argo output parameters (rows, output_key, output_bucket, objects, status) here.
    #[arg(long, env = env_vars::ETL_RESULT_DIR)]
    pub result_dir: Option<PathBuf>,
    /// Objects a sweep holds in memory; a longer listing is checked in a first pass that
    /// keeps a hash per output key, then listed again as it converts (tests lower it).
    #[arg(long, env = env_vars::ETL_SWEEP_BATCH, default_value_t = 10_000, hide = true)]
    pub sweep_batch: usize,
    /// Keys per listing page [default: the store's, 1,000 on S3] (tests lower it).
    #[arg(long, env = env_vars::ETL_LIST_PAGE_KEYS, hide = true, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub list_page_keys: Option<i32>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// One object to convert.
#[derive(Debug, Clone)]
struct Job {
    bucket: String,
    key: String,
    etag: Option<String>,
    output_bucket: String,
    output_key: String,
}

impl Job {
    fn object(&self) -> convert::ObjectJob<'_> {
        convert::ObjectJob {
            bucket: &self.bucket,
            key: &self.key,
            known_etag: self.etag.as_deref(),
            target_bucket: &self.output_bucket,
            target_key: &self.output_key,
        }
    }
}

/// Runs `etl`.
pub async fn run(mut args: EtlArgs) -> anyhow::Result<ExitStatus> {
    result_dir::prepare(args.result_dir.as_deref())?;
    args.transfer.configure();
    crate::cli::split_s3_uri(&mut args.bucket, &mut args.key)?;
    crate::cli::split_s3_uri(&mut args.bucket, &mut args.prefix)?;
    if let Some((format, codec)) = args.output.as_deref().and_then(crate::cli::format_of_path) {
        let named = args.output.as_deref().unwrap_or(Path::new("")).display();
        match args.convert.format {
            None => args.convert.format = Some(format),
            Some(given) if given != format => {
                return Err(UsageError(format!(
                    "--output {named} names a {} file but --format is {}",
                    format.extension(),
                    given.extension()
                ))
                .into());
            }
            Some(_) => {}
        }
        match (args.convert.compression, codec) {
            (None, Some(codec)) => args.convert.compression = Some(codec),
            (Some(given), Some(codec)) if given.name() != codec.name() => {
                return Err(UsageError(format!(
                    "--output {named} names a {} file but --compression is {}",
                    codec.name(),
                    given.name()
                ))
                .into());
            }
            _ => {}
        }
    }
    let mut options = args.convert.options()?;
    args.convert.load_s3_schema(&mut options).await?;
    if args.print_schema {
        return print_schema(&args, &options).await;
    }
    if let Some(input) = &args.input {
        return convert_local(input, args.output.as_deref(), &options, args.dry_run);
    }

    let (client, jobs) = if let (Some(bucket), Some(prefix)) = (&args.bucket, &args.prefix) {
        let client = etl_s3::client_from_env().await?;
        let jobs = sweep_jobs(&client, &args, &options, bucket, prefix).await?;
        (Some(client), jobs)
    } else {
        let jobs = named_jobs(&args, &options)?;
        check_collisions(&jobs)?;
        (None, Jobs::Held(jobs))
    };
    if args.dry_run {
        if let Some(client) = &client {
            return print_states(client, jobs, &options, &args).await;
        }
        let mut lines = jobs.into_stream(&args, &options);
        while let Some(job) = lines.next().await {
            writeln!(std::io::stdout(), "{}", job_line(&job?)).context("writing to stdout")?;
        }
        return Ok(ExitStatus::Success);
    }
    let client = match client {
        Some(client) => client,
        None => etl_s3::client_from_env().await?,
    };
    if args.plan {
        return print_plan(&client, jobs, &options, &args).await;
    }
    convert_all(&client, jobs, &options, &args).await
}

/// The objects a notification or `--bucket/--key` names.
fn named_jobs(args: &EtlArgs, options: &ConvertOptions) -> anyhow::Result<Vec<Job>> {
    if let Some(event) = &args.event {
        let bytes = payload::read_payload(event)?;
        let notification = etl_event::parse_notification(&bytes, args.key_encoding)?;
        if let Some(reason) = &notification.nothing_to_do {
            tracing::info!(reason = %reason, "nothing to do");
        }
        for skipped in &notification.skipped {
            tracing::info!(
                bucket = skipped.bucket.as_deref().unwrap_or(""),
                key = skipped.key.as_deref().unwrap_or(""),
                reason = %skipped.reason,
                "record skipped"
            );
        }
        let jobs = notification
            .objects
            .into_iter()
            .map(|o| job_for(args, options, o.bucket, o.key, o.etag))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(jobs);
    }
    if let (Some(bucket), Some(key)) = (&args.bucket, &args.key) {
        return Ok(vec![job_for(
            args,
            options,
            bucket.clone(),
            key.clone(),
            None,
        )?]);
    }
    Err(UsageError(
        "nothing to convert: give --bucket with --key or --prefix, --event, or --input (see --help)".into(),
    )
    .into())
}

/// The objects of a run, in listing order.
enum Jobs {
    /// Named by a key or a notification, or a sweep of up to `--sweep-batch` objects.
    Held(Vec<Job>),
    /// A longer sweep, already checked for collisions: listed again as it runs.
    Listed {
        client: etl_s3::Client,
        bucket: String,
        prefix: String,
        /// Objects the checking pass listed.
        total: usize,
    },
}

impl Jobs {
    fn total(&self) -> usize {
        match self {
            Jobs::Held(jobs) => jobs.len(),
            Jobs::Listed { total, .. } => *total,
        }
    }

    fn into_stream<'a>(
        self,
        args: &'a EtlArgs,
        options: &'a ConvertOptions,
    ) -> BoxStream<'a, anyhow::Result<Job>> {
        match self {
            Jobs::Held(jobs) => futures_util::stream::iter(jobs.into_iter().map(Ok)).boxed(),
            Jobs::Listed {
                client,
                bucket,
                prefix,
                ..
            } => listing(&client, args, options, &bucket, &prefix).boxed(),
        }
    }
}

/// The CSV objects under a prefix as jobs, page after page in listing order. A task lists
/// ahead into a queue of one page, so a sweep holds at most three pages (the one being
/// handed out, the queued one, the one being fetched) whatever the number of objects.
fn listing<'a>(
    client: &etl_s3::Client,
    args: &'a EtlArgs,
    options: &'a ConvertOptions,
    bucket: &str,
    prefix: &str,
) -> impl futures_util::Stream<Item = anyhow::Result<Job>> + Send + 'a {
    let pages = etl_s3::list_pages(client, bucket, prefix, args.list_page_keys);
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut pages = std::pin::pin!(pages);
        while let Some(page) = pages.next().await {
            if sender.send(page).await.is_err() {
                break;
            }
        }
    });
    let bucket = bucket.to_owned();
    tokio_stream::wrappers::ReceiverStream::new(receiver).flat_map(move |page| {
        let jobs: Vec<anyhow::Result<Job>> = match page {
            Err(error) => vec![Err(error.into())],
            Ok(objects) => objects
                .into_iter()
                .filter(|o| is_csv_input(&o.key, args.output_key.is_some()))
                .map(|o| {
                    // Some servers (s3s-fs) list without ETags: then the source is HEADed.
                    let etag = Some(o.etag).filter(|e| !e.is_empty());
                    Ok(job_for(args, options, bucket.clone(), o.key, etag)?)
                })
                .collect(),
        };
        futures_util::stream::iter(jobs)
    })
}

/// Every CSV object under a prefix (a sweep), with two sources for one output refused
/// before anything is written. Up to `--sweep-batch` objects are held after one LIST pass
/// and checked exactly. Beyond, the checking pass keeps an 8-byte hash per output key and
/// the sweep lists again as it converts; a hash seen twice sends a look for the sources
/// behind it, so the refusal names both.
async fn sweep_jobs(
    client: &etl_s3::Client,
    args: &EtlArgs,
    options: &ConvertOptions,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<Jobs> {
    use std::hash::BuildHasher as _;
    let hasher = std::hash::RandomState::new();
    let hash = |job: &Job| hasher.hash_one((&job.output_bucket, &job.output_key));
    let mut held = Vec::new();
    let mut hashes: Option<HashSet<u64>> = None;
    let mut shared = HashSet::new();
    let mut total = 0usize;
    let mut jobs = std::pin::pin!(listing(client, args, options, bucket, prefix));
    while let Some(job) = jobs.next().await {
        let job = job?;
        total += 1;
        if let Some(hashes) = &mut hashes {
            let hash = hash(&job);
            if !hashes.insert(hash) {
                shared.insert(hash);
            }
            continue;
        }
        held.push(job);
        if held.len() > args.sweep_batch {
            let mut set = HashSet::new();
            for job in std::mem::take(&mut held) {
                let hash = hash(&job);
                if !set.insert(hash) {
                    shared.insert(hash);
                }
            }
            hashes = Some(set);
        }
    }
    tracing::info!(bucket, prefix, objects = total, "listed CSV inputs");
    if hashes.is_none() {
        check_collisions(&held)?;
        return Ok(Jobs::Held(held));
    }
    drop(hashes);
    if !shared.is_empty() {
        let candidates: Vec<Job> = listing(client, args, options, bucket, prefix)
            .try_filter(|job| std::future::ready(shared.contains(&hash(job))))
            .try_collect()
            .await?;
        // Distinct keys sharing a hash (about one sweep in 10^9 at 100,000 objects) pass.
        check_collisions(&candidates)?;
    }
    tracing::info!(
        bucket,
        prefix,
        objects = total,
        batch = args.sweep_batch,
        "more objects than one batch: listing again as the sweep runs"
    );
    Ok(Jobs::Listed {
        client: client.clone(),
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        total,
    })
}

fn job_for(
    args: &EtlArgs,
    options: &ConvertOptions,
    bucket: String,
    key: String,
    etag: Option<String>,
) -> Result<Job, UsageError> {
    let extension = options.extension();
    let output_key = match &args.output_key {
        Some(template) => naming::expand_template(template, &key, &extension)?,
        None => naming::default_output_key(&key, &extension),
    };
    let output_bucket = args.output_bucket.clone().unwrap_or_else(|| bucket.clone());
    if output_bucket == bucket && output_key == key {
        return Err(UsageError(format!(
            "the output key for {} is the input itself; choose --output-key or --output-bucket",
            convert::s3_uri(&bucket, &key)
        )));
    }
    Ok(Job {
        bucket,
        key,
        etag,
        output_bucket,
        output_key,
    })
}

/// CSV objects of a sweep; with the default naming, outputs under `output/` are not inputs.
fn is_csv_input(key: &str, custom_output: bool) -> bool {
    let lower = key.to_ascii_lowercase();
    let csv = [".csv", ".tsv"].iter().any(|ext| {
        ["", ".gz", ".zst", ".bz2"]
            .iter()
            .any(|codec| lower.ends_with(&format!("{ext}{codec}")))
    });
    csv && (custom_output || !key.starts_with("output/"))
}

/// The line of a job: source and output.
fn job_line(job: &Job) -> serde_json::Value {
    json!({
        "bucket": job.bucket,
        "key": job.key,
        "output_bucket": job.output_bucket,
        "output_key": job.output_key,
    })
}

/// Two sources mapped to one output (`x.csv` and `x.CSV`, say) would overwrite each other
/// on every run: refused before anything is written.
fn check_collisions(jobs: &[Job]) -> Result<(), UsageError> {
    let mut seen: std::collections::HashMap<(&str, &str), &Job> = std::collections::HashMap::new();
    for job in jobs {
        if let Some(first) = seen.insert((&job.output_bucket, &job.output_key), job)
            && (first.bucket != job.bucket || first.key != job.key)
        {
            return Err(UsageError(format!(
                "{} and {} map to the same output {}; choose an --output-key template that keeps them apart",
                convert::s3_uri(&first.bucket, &first.key),
                convert::s3_uri(&job.bucket, &job.key),
                convert::s3_uri(&job.output_bucket, &job.output_key)
            )));
        }
    }
    Ok(())
}

/// `--prefix … --dry-run`: each object's state (HEADs only, nothing written), a line per
/// object in listing order as it is known, up to `--jobs` objects looked at at once.
async fn print_states(
    client: &etl_s3::Client,
    jobs: Jobs,
    options: &ConvertOptions,
    args: &EtlArgs,
) -> anyhow::Result<ExitStatus> {
    let lines = jobs.into_stream(args, options).map(|job| async move {
        let job = job?;
        let (state, reason) = convert::object_state(client, &job.object(), options).await?;
        let mut line = job_line(&job);
        line["state"] = json!(state);
        if let Some(reason) = reason {
            line["reason"] = json!(reason);
        }
        anyhow::Ok(line)
    });
    print_lines(lines, args.jobs).await
}

/// `--plan`: each job's line after a HEAD of its object, with its size and suggested pod
/// resources, in listing order as it is known.
async fn print_plan(
    client: &etl_s3::Client,
    jobs: Jobs,
    options: &ConvertOptions,
    args: &EtlArgs,
) -> anyhow::Result<ExitStatus> {
    let lines = jobs.into_stream(args, options).map(|job| async move {
        let job = job?;
        let info = etl_s3::head_object(client, &job.bucket, &job.key)
            .await?
            .ok_or_else(|| {
                UsageError(format!(
                    "{}: no such object",
                    convert::s3_uri(&job.bucket, &job.key)
                ))
            })?;
        let mut line = job_line(&job);
        line["size"] = json!(info.size);
        line["resources"] = suggested_resources(info.size);
        anyhow::Ok(line)
    });
    print_lines(lines, args.jobs).await
}

/// Prints each line as soon as it and those before it are known, up to `jobs` at once.
async fn print_lines(
    lines: impl futures_util::Stream<Item = impl Future<Output = anyhow::Result<serde_json::Value>>>,
    jobs: u16,
) -> anyhow::Result<ExitStatus> {
    let mut lines = std::pin::pin!(lines.buffered(usize::from(jobs)));
    while let Some(line) = lines.next().await {
        writeln!(std::io::stdout(), "{}", line?).context("writing to stdout")?;
    }
    Ok(ExitStatus::Success)
}

/// Pod resources for a conversion: memory stays flat whatever the size (streaming), so
/// only CPU grows with the file. Both requests and limits of both cpu and memory are
/// given: Argo merges this (`podSpecPatch`, a strategic merge) key by key onto the
/// template's container, so a key left out keeps the template's value and could end
/// below the request (the API server refuses such a pod).
pub fn suggested_resources(size: u64) -> serde_json::Value {
    const MIB: u64 = 1024 * 1024;
    let (cpu, cpu_limit, memory, memory_limit) = match size {
        // Limits measured by `make plan-memory`: a 120-column file of 60 MiB peaks at
        // ~220 MiB (measured with row groups of 128 MiB of Arrow data, now 32), narrower
        // files far lower.
        s if s < 64 * MIB => ("250m", "1", "64Mi", "384Mi"),
        s if s < 1024 * MIB => ("1", "2", "128Mi", "512Mi"),
        _ => ("2", "4", "256Mi", "1Gi"),
    };
    json!({
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    })
}

async fn convert_all(
    client: &etl_s3::Client,
    jobs: Jobs,
    options: &ConvertOptions,
    args: &EtlArgs,
) -> anyhow::Result<ExitStatus> {
    let total = jobs.total();
    let single = total == 1 && args.prefix.is_none();
    // The first job in listing order (for --result-dir), and a listing that failed midway.
    let first: RefCell<Option<(String, String)>> = RefCell::default();
    let listing_error: RefCell<Option<anyhow::Error>> = RefCell::default();
    let progress = Progress::new(total);
    crate::shutdown::listen();
    let conditional_writes = match args.conditional_writes.as_str() {
        "on" => convert::ConditionalWrites::On,
        "off" => convert::ConditionalWrites::Off,
        _ => convert::ConditionalWrites::Auto,
    };
    let protocol = convert::Protocol {
        force: args.force,
        conditional_writes,
    };
    // Results stream in completion order; only counters and the first failures are kept.
    // Jobs are pulled as workers free up: a listed sweep reads its listing as it goes.
    let mut finished = jobs
        .into_stream(args, options)
        // After a stop request, no new object is started.
        .take_while(|_| std::future::ready(!crate::shutdown::requested()))
        .filter_map(|job| {
            std::future::ready(match job {
                Ok(job) => {
                    first
                        .borrow_mut()
                        .get_or_insert_with(|| (job.output_key.clone(), job.output_bucket.clone()));
                    Some(job)
                }
                Err(error) => {
                    listing_error.borrow_mut().get_or_insert(error);
                    None
                }
            })
        })
        .map(|job| async move {
            let outcome = convert::convert_object(client, &job.object(), options, protocol).await;
            (job, outcome)
        })
        .buffer_unordered(usize::from(args.jobs));

    let mut done = 0usize;
    let mut rows = 0u64;
    let mut bad_rows = 0u64;
    let mut converted = 0usize;
    let mut up_to_date = 0usize;
    let mut superseded = 0usize;
    let mut failures = Failures::default();
    let mut single_error = None;
    while let Some((job, outcome)) = finished.next().await {
        done += 1;
        progress.done(&job, &outcome);
        let status = match &outcome {
            Ok(Outcome::Converted {
                rows: r, rejected, ..
            }) => {
                rows += r;
                bad_rows += rejected;
                converted += 1;
                json!({"status": "converted", "rows": r, "bad_rows": rejected})
            }
            Ok(Outcome::UpToDate) => {
                up_to_date += 1;
                json!({"status": "up-to-date"})
            }
            Ok(Outcome::Superseded { reason }) => {
                superseded += 1;
                json!({"status": "superseded", "reason": reason})
            }
            Ok(Outcome::KnownBad { reason }) => {
                failures.push(
                    format!(
                        "{} (unchanged since found bad): {reason}",
                        convert::s3_uri(&job.bucket, &job.key)
                    ),
                    ErrorClass::BadInput,
                );
                json!({"status": "bad", "error": reason})
            }
            Err(error) => {
                let message = format!("{error:#}");
                failures.push(message.clone(), class_of(error));
                json!({"status": "failed", "error": message})
            }
        };
        let mut line = json!({
            "bucket": job.bucket, "key": job.key,
            "output_bucket": job.output_bucket, "output_key": job.output_key,
        });
        if let (Some(line), Some(status)) = (line.as_object_mut(), status.as_object()) {
            line.extend(status.clone());
        }
        progress.clear();
        writeln!(std::io::stdout().lock(), "{line}").context("writing to stdout")?;
        if single && let Err(error) = outcome {
            single_error = Some(error);
        }
    }
    drop(finished);
    progress.finish();
    if let Some(error) = listing_error.into_inner() {
        let message = format!(
            "the listing of {} failed after {done} objects: {error:#}",
            convert::s3_uri(
                args.bucket.as_deref().unwrap_or_default(),
                args.prefix.as_deref().unwrap_or_default()
            )
        );
        tracing::warn!(error = %message, "no further object was started");
        failures.push(message, class_of(&error));
    }
    let first = first.into_inner();

    let interrupted = crate::shutdown::requested();
    let not_started = total.saturating_sub(done);
    if total != 1 || args.prefix.is_some() || interrupted {
        tracing::info!(
            objects = total,
            not_started,
            converted,
            up_to_date,
            superseded,
            failed = failures.count,
            rows,
            bad_rows,
            "summary"
        );
    }
    if let Some(dir) = &args.result_dir {
        let status = if failures.count > 0 || interrupted {
            "failed"
        } else if total == 0 {
            "nothing-to-do"
        } else if converted == 0 && superseded > 0 {
            "superseded"
        } else if converted == 0 {
            "up-to-date"
        } else {
            "converted"
        };
        result_dir::write(
            dir,
            &[
                ("rows", rows.to_string()),
                ("bad_rows", bad_rows.to_string()),
                ("objects", total.to_string()),
                ("status", status.to_owned()),
                (
                    "output_key",
                    first.as_ref().map(|f| f.0.clone()).unwrap_or_default(),
                ),
                (
                    "output_bucket",
                    first.as_ref().map(|f| f.1.clone()).unwrap_or_default(),
                ),
                (
                    "error",
                    failures.messages.first().cloned().unwrap_or_default(),
                ),
            ],
        )?;
    }

    if failures.count == 0 && !interrupted {
        return Ok(ExitStatus::Success);
    }
    if failures.count == 0 {
        // Stopped by a signal: what finished is reported, the rest is for a rerun.
        return Ok(ExitStatus::Retryable);
    }
    if let Some(error) = single_error {
        return Err(error);
    }
    // A retry helps if any failure was transient: the bad files fail again, harmlessly.
    let class = if failures.retryable {
        ErrorClass::Retryable
    } else {
        ErrorClass::BadInput
    };
    let mut names = failures.messages.join("; ");
    if failures.count > failures.messages.len() {
        names.push_str(&format!(
            "; and {} more (see the lines above)",
            failures.count - failures.messages.len()
        ));
    }
    Err(Reported {
        message: format!("{} of {total} objects failed: {names}", failures.count),
        class,
    }
    .into())
}

/// Failures of a sweep: counted, with the first few messages kept for the summary.
#[derive(Default)]
struct Failures {
    count: usize,
    retryable: bool,
    messages: Vec<String>,
}

impl Failures {
    /// Messages kept for the final summary; every failure has its own line on stdout.
    const KEPT: usize = 20;

    fn push(&mut self, message: String, class: ErrorClass) {
        self.count += 1;
        self.retryable |= class == ErrorClass::Retryable;
        if self.messages.len() < Self::KEPT {
            self.messages.push(message);
        }
    }
}

/// A progress line for sweeps on a terminal; plain log lines otherwise.
struct Progress {
    total: usize,
    done: std::cell::Cell<usize>,
    /// Characters of the line drawn last (0: none on screen).
    drawn: std::cell::Cell<usize>,
    bar: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal as _;
        Progress {
            total,
            done: std::cell::Cell::new(0),
            drawn: std::cell::Cell::new(0),
            bar: total > 1 && std::io::stderr().is_terminal(),
        }
    }

    fn done(&self, job: &Job, outcome: &anyhow::Result<Outcome>) {
        let done = self.done.get() + 1;
        self.done.set(done);
        // Failures are always logged; successes only without a bar.
        if !self.bar || outcome.is_err() {
            self.clear();
            log_outcome(job, outcome);
        }
        if self.bar {
            let line = progress_line(done, self.total, &job.key);
            eprint!("{}", redraw(&line, self.drawn.get()));
            self.drawn.set(line.chars().count());
        }
    }

    /// Removes the line from the terminal before other output.
    fn clear(&self) {
        if self.bar && self.drawn.get() > 0 {
            eprint!("{}", redraw("", self.drawn.get()));
            self.drawn.set(0);
        }
    }

    fn finish(&self) {
        if self.bar && self.drawn.get() > 0 {
            eprintln!();
        }
    }
}

/// `[#####     ] 12/40 key`.
fn progress_line(done: usize, total: usize, key: &str) -> String {
    let width = 30;
    let filled = (done * width / total.max(1)).min(width);
    format!(
        "[{}{}] {done}/{total} {key}",
        "#".repeat(filled),
        " ".repeat(width - filled)
    )
}

/// What redraws `line` over a line of `previous` characters: back to the start, the new
/// text, blanks over what the longer old line had beyond it, back again.
fn redraw(line: &str, previous: usize) -> String {
    let len = line.chars().count();
    let mut out = format!("\r{line}");
    if previous > len {
        out.push_str(&" ".repeat(previous - len));
        out.push('\r');
        out.push_str(line);
    }
    out
}

fn log_outcome(job: &Job, outcome: &anyhow::Result<Outcome>) {
    let source = convert::s3_uri(&job.bucket, &job.key);
    let output = convert::s3_uri(&job.output_bucket, &job.output_key);
    match outcome {
        Ok(Outcome::Converted {
            rows,
            rejected,
            bytes,
        }) => {
            tracing::info!(%source, %output, rows, bad_rows = rejected, bytes, "converted");
        }
        Ok(Outcome::UpToDate) => {
            tracing::info!(%source, %output, "up to date: the output already records this input version");
        }
        Ok(Outcome::Superseded { reason }) => {
            tracing::info!(%source, %output, %reason, "superseded: a newer version of the source owns the output; nothing written");
        }
        Ok(Outcome::KnownBad { reason }) => {
            tracing::warn!(%source, %reason, "skipped: this source version was found bad before (it is read again once it changes, or with --force)");
        }
        Err(error) => tracing::warn!(%source, error = %format!("{error:#}"), "failed"),
    }
}

pub use etl_protocol::convert::{MAX_WIDENINGS, widened, widening_of};

/// Options for a local file: types also inferred from chunks further into the file
/// (plain files only: a compressed one is sampled from its start).
fn with_file_sample(file: &mut std::fs::File, options: &ConvertOptions) -> ConvertOptions {
    let mut head = [0u8; 4];
    let plain = std::io::Read::read(file, &mut head)
        .map(|n| etl_convert::Codec::detect(&head[..n]) == etl_convert::Codec::None)
        .unwrap_or(false);
    let extra = if plain && options.schema.is_none() {
        etl_convert::sample_offsets(file, options.sample_bytes as u64, 8, 128 * 1024).ok()
    } else {
        None
    };
    let _ = std::io::Seek::rewind(file);
    ConvertOptions {
        extra_sample: extra
            .filter(|e| !e.is_empty())
            .map(|e| etl_convert::ExtraSample(std::sync::Arc::new(e))),
        ..options.clone()
    }
}

/// `--print-schema`: the inferred schema of `--input` or `--bucket/--key`, as a schema file.
async fn print_schema(args: &EtlArgs, options: &ConvertOptions) -> anyhow::Result<ExitStatus> {
    let summary = if let Some(input) = &args.input {
        if input == Path::new("-") {
            etl_convert::infer_schema(std::io::stdin().lock(), options)
                .context("inferring the schema of stdin")?
        } else {
            let mut file = std::fs::File::open(input)
                .map_err(|e| UsageError(format!("cannot open {}: {e}", input.display())))?;
            let options = with_file_sample(&mut file, options);
            etl_convert::infer_schema(file, &options)
                .with_context(|| format!("inferring the schema of {}", input.display()))?
        }
    } else if let (Some(bucket), Some(key)) = (&args.bucket, &args.key) {
        let client = etl_s3::client_from_env().await?;
        let (_, body) = etl_s3::get_object(&client, bucket, key).await?;
        let mut reader = tokio_util::io::SyncIoBridge::new(body.into_async_read());
        let options = options.clone();
        let uri = convert::s3_uri(bucket, key);
        tokio::task::spawn_blocking(move || etl_convert::infer_schema(&mut reader, &options))
            .await
            .context("the schema inference stopped unexpectedly")?
            .with_context(|| format!("inferring the schema of {uri}"))?
    } else {
        return Err(
            UsageError("--print-schema needs --input, or --bucket with --key".into()).into(),
        );
    };
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", summary.schema).context("writing to stdout")?;
    Ok(ExitStatus::Success)
}

/// `--input PATH`: a local file (or stdin), written next to its final name and renamed
/// when complete; converted again, with the column widened, when a value after the
/// sample does not fit.
fn convert_local(
    input: &Path,
    output: Option<&Path>,
    options: &ConvertOptions,
    dry_run: bool,
) -> anyhow::Result<ExitStatus> {
    let stdin = input == Path::new("-");
    let output = match output {
        Some(output) => output.to_path_buf(),
        None if stdin => PathBuf::from("-"),
        None => {
            let name = input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            input.with_file_name(format!(
                "{}.{}",
                naming::stem_of(&name),
                options.extension()
            ))
        }
    };
    if dry_run {
        println!("{}", json!({"input": input, "output": output}));
        return Ok(ExitStatus::Success);
    }
    if !stdin && !input.is_file() {
        let what = if input.is_dir() {
            "a folder"
        } else {
            "not a readable file"
        };
        return Err(UsageError(format!("--input {}: {what}", input.display())).into());
    }
    if output != Path::new("-")
        && let Some(folder) = output.parent().filter(|f| !f.as_os_str().is_empty())
        && !folder.is_dir()
    {
        return Err(UsageError(format!(
            "--output {}: the folder {} does not exist",
            output.display(),
            folder.display()
        ))
        .into());
    }
    if output == input && !stdin {
        return Err(
            UsageError(format!("--output is the input itself: {}", input.display())).into(),
        );
    }
    let name = if stdin {
        "stdin".to_owned()
    } else {
        input.display().to_string()
    };
    let footer = vec![("etl.source".to_owned(), name.clone())];
    let keep = options.bad_rows == etl_convert::BadRows::Quarantine;
    let to_stdout = output == Path::new("-");
    let mut options = options.clone();
    let mut attempt = 0;
    loop {
        let mut quarantined = Vec::new();
        let mut rejects = |row| convert::record_rejected(&name, row, keep, &mut quarantined);
        let mut file = if stdin {
            None
        } else {
            let mut file = std::fs::File::open(input)
                .map_err(|e| UsageError(format!("cannot open {}: {e}", input.display())))?;
            if attempt == 0 {
                options = with_file_sample(&mut file, &options);
            }
            Some(file)
        };
        let source: Box<dyn std::io::Read + Send> = match file.take() {
            Some(file) => Box::new(file),
            None => Box::new(std::io::stdin()),
        };
        let (staging, outcome) = if to_stdout {
            let stdout = PipeWatch::new(std::io::stdout());
            let closed = stdout.closed.clone();
            let outcome = etl_convert::convert_with_rejects(
                source,
                std::io::BufWriter::new(stdout),
                &options,
                &footer,
                &mut rejects,
            );
            // A reader that stopped early (`| head`) is not a failure.
            if outcome.is_err() && closed.load(std::sync::atomic::Ordering::Relaxed) {
                tracing::debug!(input = %name, "stdout closed by its reader");
                return Ok(ExitStatus::Success);
            }
            (None, outcome)
        } else {
            let directory = match output.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let staging = tempfile::Builder::new()
                .prefix(".etl-")
                .tempfile_in(&directory)
                .with_context(|| format!("creating a file in {}", directory.display()))?;
            let outcome = etl_convert::convert_with_rejects(
                source,
                std::io::BufWriter::new(staging.as_file()),
                &options,
                &footer,
                &mut rejects,
            );
            (Some(staging), outcome)
        };
        let summary = match outcome.map_err(anyhow::Error::from) {
            Ok(summary) => summary,
            // Stdin cannot be read twice, and stdout already holds a part: the message
            // names the column and line and suggests --schema.
            Err(error) if !stdin && !to_stdout && attempt < MAX_WIDENINGS => {
                match widening_of(&error) {
                    Some(widening) => {
                        options = widened(&name, &options, widening);
                        attempt += 1;
                        continue;
                    }
                    None => return Err(error.context(format!("converting {name}"))),
                }
            }
            Err(error) => return Err(error.context(format!("converting {name}"))),
        };
        let Some(staging) = staging else {
            let beside = if stdin { Path::new("stdin.csv") } else { input };
            write_quarantine(beside, &quarantined)?;
            tracing::info!(input = %name, rows = summary.rows, bad_rows = summary.rejected, "converted");
            return Ok(ExitStatus::Success);
        };
        write_quarantine(&output, &quarantined)?;
        // A staging file is private (0600); the output gets the usual permissions.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = staging
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        staging
            .persist(&output)
            .with_context(|| format!("writing {}", output.display()))?;
        tracing::info!(input = %name, output = %output.display(), rows = summary.rows, bad_rows = summary.rejected, "converted");
        return Ok(ExitStatus::Success);
    }
}

/// The quarantined rows of a local conversion, next to `beside` (`x.parquet` → `x.rejected.jsonl`).
fn write_quarantine(beside: &Path, rows: &[u8]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let name = convert::quarantine_key(&beside.to_string_lossy());
    std::fs::write(&name, rows).with_context(|| format!("writing {name}"))
}

/// A writer that remembers whether its reader went away (a broken pipe).
struct PipeWatch<W> {
    inner: W,
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<W> PipeWatch<W> {
    fn new(inner: W) -> Self {
        PipeWatch {
            inner,
            closed: std::sync::Arc::default(),
        }
    }

    fn watch<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(error) = &result
            && error.kind() == std::io::ErrorKind::BrokenPipe
        {
            self.closed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }
}

impl<W: std::io::Write> std::io::Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

#[cfg(test)]
mod suggested_resources_tests {
    use super::{progress_line, redraw, suggested_resources};

    /// Millicores or bytes of the quantities the tiers use ("250m", "2", "64Mi", "1Gi").
    fn quantity(text: &str) -> u64 {
        let (number, scale) = if let Some(n) = text.strip_suffix('m') {
            (n, 1)
        } else if let Some(n) = text.strip_suffix("Mi") {
            (n, 1 << 20)
        } else if let Some(n) = text.strip_suffix("Gi") {
            (n, 1 << 30)
        } else {
            (text, 1000)
        };
        number.parse::<u64>().expect("a quantity") * scale
    }

    #[test]
    fn every_tier_sets_requests_at_most_limits_for_cpu_and_memory() {
        const MIB: u64 = 1024 * 1024;
        for size in [
            0,
            64 * MIB - 1,
            64 * MIB,
            1024 * MIB - 1,
            1024 * MIB,
            1 << 40,
        ] {
            let r = suggested_resources(size);
            for key in ["cpu", "memory"] {
                let request = r["requests"][key].as_str().expect("a request");
                let limit = r["limits"][key].as_str().expect("a limit");
                assert!(
                    quantity(request) <= quantity(limit),
                    "size {size}: {key} request {request} above limit {limit}"
                );
            }
        }
        assert_eq!(suggested_resources(2 << 30)["requests"]["cpu"], "2");
        assert_eq!(suggested_resources(0)["requests"]["cpu"], "250m");
    }

    /// The visible text of a terminal line after `output` (`\r` returns to the start).
    fn screen(output: &str) -> String {
        let mut line: Vec<char> = Vec::new();
        let mut cursor = 0;
        for c in output.chars() {
            if c == '\r' {
                cursor = 0;
            } else {
                if cursor < line.len() {
                    line[cursor] = c;
                } else {
                    line.push(c);
                }
                cursor += 1;
            }
        }
        line.into_iter().collect::<String>().trim_end().to_owned()
    }

    #[test]
    fn the_progress_line_leaves_nothing_of_a_longer_earlier_key() {
        let long = progress_line(1, 3, "input/20230414/a-very-long-file-name.csv");
        let short = progress_line(2, 3, "b.csv");
        let drawn = format!(
            "{}{}",
            redraw(&long, 0),
            redraw(&short, long.chars().count())
        );
        assert_eq!(screen(&drawn), short);
        assert!(!screen(&drawn).contains("long"));
        // Cleared before a log line: nothing of the bar is left.
        let cleared = format!("{drawn}{}", redraw("", short.chars().count()));
        assert_eq!(screen(&cleared), "");
        // A longer line over a shorter one needs no blanks.
        assert_eq!(redraw(&long, short.chars().count()), format!("\r{long}"));
        assert_eq!(
            progress_line(3, 3, "c.csv"),
            format!("[{}] 3/3 c.csv", "#".repeat(30))
        );
    }
}
