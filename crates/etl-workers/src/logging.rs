//! Tracing setup: text on a terminal, JSON otherwise, `RUST_LOG` honoured, stderr only.

use std::io::IsTerminal;
use std::sync::OnceLock;

use clap::ValueEnum;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

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
    let _ = CHOSEN.set(format);
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let filter = caps
        .iter()
        .filter_map(|cap| cap.parse().ok())
        .fold(filter, EnvFilter::add_directive);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.finish().with(no_ftp_trace()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(no_ftp_trace())
            .try_init(),
    };
}

/// Colour only on a terminal, and never with `NO_COLOR` set (<https://no-color.org>).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Without `RUST_LOG`: our crates at info, the dependencies (SDK, HTTP, gRPC, FTP) at warn.
/// A directive's target covers every target it prefixes (`aws` covers `aws_config`, …).
const DEFAULT_FILTER: &str =
    "info,aws=warn,hyper=warn,h2=warn,tonic=warn,tower=warn,rustls=warn,reqwest=warn,suppaftp=warn";

/// suppaftp traces every control command, `PASS <password>` included: its trace lines are
/// dropped whatever `RUST_LOG` says.
fn no_ftp_trace() -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    filter_fn(|meta| !(meta.target().starts_with("suppaftp") && *meta.level() == Level::TRACE))
}

#[cfg(test)]
mod tests {
    use super::DEFAULT_FILTER;
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::EnvFilter;

    #[test]
    fn default_filter_parses_and_stops_at_info() {
        let filter = EnvFilter::try_new(DEFAULT_FILTER).expect("every directive parses");
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::INFO));
        for dependency in ["aws", "hyper", "h2", "tonic", "suppaftp"] {
            assert!(DEFAULT_FILTER.contains(&format!(",{dependency}=warn")));
        }
    }
}
