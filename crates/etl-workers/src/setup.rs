//! `etl setup aws`: sets up, checks (`--check`) or removes (`--delete`) the AWS side of the
//! S3 flows; its own parser, dispatched from `etl` when the first argument is `setup`.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use etl_aws_setup::{Via, Wanted};
use etl_error::{Classify as _, ErrorClass, ExitStatus};

use crate::cli::LogArgs;
use crate::{exit, logging};

/// The AWS side of the S3 flows as code.
#[derive(Debug, Parser)]
#[command(
    name = "etl setup",
    bin_name = "etl setup",
    version,
    about = "Set up, check or remove the AWS side of the S3 flows",
    after_help = "Example:\n  etl setup aws --bucket etlproj --prefix input/ --suffix .csv --via sqs\n  etl setup aws --bucket etlproj --prefix input/ --suffix .csv --via sqs --check\n  etl setup aws --bucket etlproj --via sqs --delete"
)]
pub struct SetupArgs {
    #[command(subcommand)]
    pub command: SetupCommand,
    #[command(flatten)]
    pub log: LogArgs,
}

/// What to set up.
#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// S3 notifications → SQS (with a dead-letter queue) or SNS, their policies and the
    /// bucket's notification entry. Prints the ARNs/URLs and the IAM policies as JSON.
    #[command(
        after_help = "Exit codes: 0 done (or --check: nothing differs); 1 --check found a difference, or a transient failure; 2 bad arguments or a resource of that name not tagged managed-by=etl-setup.\nCredentials, region and endpoint come from the AWS SDK's chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, IRSA)."
    )]
    Aws(AwsArgs),
}

/// Arguments of `etl setup aws`.
#[derive(Debug, clap::Args)]
pub struct AwsArgs {
    /// The bucket whose uploads are announced.
    #[arg(long)]
    pub bucket: String,
    /// Only keys starting with this prefix.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Only keys ending with this suffix.
    #[arg(long, default_value = ".csv")]
    pub suffix: String,
    /// sqs: a queue (and dead-letter queue) read by Argo's SQS EventSource; sns: a topic
    /// the SNS EventSource subscribes to.
    #[arg(long, value_enum)]
    pub via: ViaArg,
    /// Name of the queue or topic [default: etl-<bucket>]; the DLQ is <name>-dlq.
    #[arg(long)]
    pub name: Option<String>,
    /// SNS: the public URL of the SNS EventSource (printed for the overlay's config).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Change nothing; report what differs from the wanted state (exit 1 if anything does).
    #[arg(long, conflicts_with = "delete")]
    pub check: bool,
    /// Remove what setup created (tagged managed-by=etl-setup) and our notification entry.
    #[arg(long)]
    pub delete: bool,
}

/// `--via`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViaArg {
    Sqs,
    Sns,
}

/// Entry point from `etl` when its first argument is `setup`.
pub fn main() -> ExitCode {
    let args = SetupArgs::parse_from(std::env::args_os().skip(1));
    logging::init(args.log.log_format);
    exit::run_main("etl setup", run(args))
}

/// Runs `etl setup …`; prints the report as JSON on stdout.
pub async fn run(args: SetupArgs) -> anyhow::Result<ExitStatus> {
    let SetupCommand::Aws(aws) = args.command;
    let via = match aws.via {
        ViaArg::Sqs => Via::Sqs,
        ViaArg::Sns => Via::Sns,
    };
    let wanted = Wanted::new(
        &aws.bucket,
        &aws.prefix,
        &aws.suffix,
        via,
        aws.name.as_deref(),
        aws.endpoint_url.as_deref(),
    )
    .map_err(|e| exit::UsageError(e.to_string()))?;
    let clients = etl_aws_setup::build_clients().await;
    let (mode, outcome) = if aws.delete {
        ("delete", etl_aws_setup::delete(&clients, &wanted).await)
    } else if aws.check {
        ("check", etl_aws_setup::check(&clients, &wanted).await)
    } else {
        ("setup", etl_aws_setup::setup(&clients, &wanted).await)
    };
    let context = format!("etl setup aws ({mode}) for bucket {}", wanted.bucket);
    // exit::class_of knows the workers' error types; a refusal becomes a UsageError (exit 2).
    let outcome = outcome.map_err(|e| match e.class() {
        ErrorClass::BadInput => anyhow::Error::new(exit::UsageError(format!("{context}: {e}"))),
        ErrorClass::Retryable => anyhow::Error::new(e).context(context),
    })?;
    for drift in &outcome.drift {
        match mode {
            "check" => tracing::warn!(%drift, "differs from the wanted state"),
            _ => tracing::info!(%drift, "changed"),
        }
    }
    let mut report = outcome.report(&wanted, mode);
    if let Some(region) = clients.sqs.config().region() {
        report["region"] = serde_json::json!(region.as_ref());
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if mode == "check" && !outcome.drift.is_empty() {
        ExitStatus::Retryable
    } else {
        ExitStatus::Success
    })
}
