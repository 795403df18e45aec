//! Turns a command's outcome into an exit code and one clear message on stderr.

use std::process::ExitCode;

use etl_error::{Classify, ErrorClass, ExitStatus};

/// A usage or configuration problem found by the binary itself (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Classify for UsageError {
    fn class(&self) -> ErrorClass {
        ErrorClass::BadInput
    }
}

/// An error already reported per object (sweeps): carries the class of the worst failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Reported {
    /// Summary shown once at the end.
    pub message: String,
    /// Worst class among the failures.
    pub class: ErrorClass,
}

/// The class of an error: the first error in its chain that knows its class decides;
/// unknown errors count as retryable (a redrive limit catches poison events).
pub fn class_of(error: &anyhow::Error) -> ErrorClass {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<UsageError>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_protocol::OutputTaken>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_protocol::agg::NoValues>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<Reported>() {
            return e.class;
        }
        if let Some(e) = cause.downcast_ref::<etl_convert::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_s3::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_event::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_agg::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<etl_ftp::Error>() {
            return e.class();
        }
    }
    ErrorClass::Retryable
}

/// Runs `work` on a multi-thread runtime and maps its outcome to the exit code contract.
pub fn run_main<F>(binary: &str, work: F) -> ExitCode
where
    F: std::future::Future<Output = anyhow::Result<ExitStatus>>,
{
    crate::malloc::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report(binary, &anyhow::Error::new(error), ErrorClass::Retryable);
            return ExitStatus::Retryable.into();
        }
    };
    match runtime.block_on(work) {
        Ok(status) => status.into(),
        Err(error) => {
            let class = class_of(&error);
            report(binary, &error, class);
            class.exit_status().into()
        }
    }
}

/// One line on stderr with the whole chain, plus a structured log event.
fn report(binary: &str, error: &anyhow::Error, class: ErrorClass) {
    let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
    let message = dedup_chain(&chain).join(": ");
    let error_code = match class {
        ErrorClass::Retryable => "retryable",
        ErrorClass::BadInput => "bad_input",
    };
    match crate::logging::chosen() {
        crate::logging::LogFormat::Json => {
            tracing::error!(
                error_code,
                exit_code = class.exit_status().code(),
                "{message}"
            );
        }
        crate::logging::LogFormat::Text => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{binary}: error: {message}");
            }
        }
    }
}

/// Drops chain entries already contained in the previous one (thiserror messages that
/// embed their source).
fn dedup_chain(chain: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in chain {
        if out.last().is_some_and(|last| last.contains(item.as_str())) {
            continue;
        }
        out.push(item.clone());
    }
    out
}
