//! Tracing setup: text on a terminal, JSON otherwise, `RUST_LOG` honoured, stderr only.

use std::io::IsTerminal;
use std::sync::OnceLock;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

static CHOSEN: OnceLock<LogFormat> = OnceLock::new();

/// The format [`init`] chose (text before `init`).
pub fn chosen() -> LogFormat {
    CHOSEN.get().copied().unwrap_or(LogFormat::Text)
}

/// Installs the global subscriber. `format` `None` picks text on a terminal, JSON otherwise.
pub fn init(format: Option<LogFormat>) {
    init_capped(format, &[]);
}

/// [`init`], with extra filter directives (`target=level`) that `RUST_LOG` cannot lower.
pub fn init_capped(format: Option<LogFormat>, caps: &[&str]) {
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    // The SDK's own crates are chatty at info; our crates speak at info by default.
    let _ = CHOSEN.set(format);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_s3=warn")
    });
    // suppaftp traces every control command, `PASS <password>` included: never below debug.
    let filter = ["suppaftp=debug"]
        .iter()
        .chain(caps)
        .filter_map(|cap| cap.parse().ok())
        .fold(filter, EnvFilter::add_directive);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
