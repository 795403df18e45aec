//! The `etl-notify` command: a workflow's outcome posted as one serde-built JSON object
//! to a Slack-compatible webhook; never fails the workflow, never logs the URL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use etl_error::ExitStatus;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use crate::cli::LogArgs;

const EXAMPLES: &str = "\
Examples:
  # What the Argo exit handler runs (every value from the environment):
  WEBHOOK_URL=https://hooks.slack.com/services/... WORKFLOW=etl-abc12 STATUS=Failed \\
    FAILURES='[{\"displayName\":\"convert\",\"message\":\"bad row 3\"}]' OBJECT=input/test.csv etl-notify

  # The same with flags:
  etl-notify --workflow etl-abc12 --status Succeeded --object input/test.csv --rows 3 \\
    --output-bucket etlproj --output-key output/test.parquet

Posts {\"text\",\"workflow\",\"status\",\"object\",\"rows\",\"output_key\",\"error\"}. A value still
holding an unresolved Argo reference ({{...}}) reads as empty. No webhook URL: nothing is sent.
Always exits 0 (a notification never fails a workflow); the URL is a secret and is never logged.";

/// Environment variable names (those the old curl exit handler used).
pub mod env {
    /// The webhook URL (a secret).
    pub const WEBHOOK_URL: &str = "WEBHOOK_URL";
    /// `{{workflow.name}}`.
    pub const WORKFLOW: &str = "WORKFLOW";
    /// `{{workflow.status}}`.
    pub const STATUS: &str = "STATUS";
    /// `{{workflow.failures}}`.
    pub const FAILURES: &str = "FAILURES";
    /// `{{workflow.parameters.object}}`.
    pub const OBJECT: &str = "OBJECT";
    /// `{{workflow.outputs.parameters.objects}}`.
    pub const OBJECTS: &str = "OBJECTS";
    /// `{{workflow.outputs.parameters.rows}}`.
    pub const ROWS: &str = "ROWS";
    /// `{{workflow.outputs.parameters.output_bucket}}`.
    pub const OUTPUT_BUCKET: &str = "OUTPUT_BUCKET";
    /// `{{workflow.outputs.parameters.output_key}}`.
    pub const OUTPUT_KEY: &str = "OUTPUT_KEY";
}

/// Tries per notification.
pub const TRIES: u32 = 3;
/// Time limit of one try.
pub const TRY_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest `error` kept in the message.
const MAX_ERROR_CHARS: usize = 2000;

/// A value that must never be printed (the webhook URL).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn secret(text: &str) -> Result<Secret, String> {
    Ok(Secret(text.to_owned()))
}

/// Post a workflow's outcome to a Slack-compatible webhook.
#[derive(Debug, Parser)]
#[command(
    name = "etl-notify",
    version,
    about = "Posts a workflow's outcome as one JSON object to a Slack-compatible webhook (the Argo exit handler).",
    after_help = EXAMPLES
)]
pub struct NotifyArgs {
    /// Webhook URL (a secret: never logged). None: nothing is sent.
    #[arg(long, env = env::WEBHOOK_URL, hide_env_values = true, value_parser = secret)]
    pub webhook_url: Option<Secret>,
    /// Workflow name.
    #[arg(long, env = env::WORKFLOW, default_value = "")]
    pub workflow: String,
    /// Workflow status (`Succeeded`, `Failed`, `Error`).
    #[arg(long, env = env::STATUS, default_value = "")]
    pub status: String,
    /// Argo's `workflow.failures` (a JSON list of failed nodes) or any text.
    #[arg(long, env = env::FAILURES, default_value = "")]
    pub failures: String,
    /// The object the workflow converted.
    #[arg(long, env = env::OBJECT, default_value = "")]
    pub object: String,
    /// The objects a sweep converted (used when `--object` is empty).
    #[arg(long, env = env::OBJECTS, default_value = "")]
    pub objects: String,
    /// Rows written.
    #[arg(long, env = env::ROWS, default_value = "")]
    pub rows: String,
    /// Output bucket.
    #[arg(long, env = env::OUTPUT_BUCKET, default_value = "")]
    pub output_bucket: String,
    /// Output key.
    #[arg(long, env = env::OUTPUT_KEY, default_value = "")]
    pub output_key: String,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The JSON object posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// One line for humans (what Slack shows).
    pub text: String,
    /// Workflow name.
    pub workflow: String,
    /// Workflow status.
    pub status: String,
    /// Object (or objects).
    pub object: String,
    /// Rows written.
    pub rows: String,
    /// Output key.
    pub output_key: String,
    /// What failed (empty on success).
    pub error: String,
}

/// A value as Argo left it: an unresolved `{{...}}` reference (the step never ran) is empty.
fn resolved(value: &str) -> &str {
    if value.contains("{{") { "" } else { value }
}

/// Argo's `workflow.failures` (`[{"displayName","message",...}]`) as `name: message; ...`;
/// any other text as it is.
fn failures_text(failures: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Node {
        #[serde(rename = "displayName", default)]
        display_name: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Vec<Node>>(failures) {
        Ok(nodes) if !nodes.is_empty() => nodes
            .iter()
            .map(
                |n| match (n.display_name.is_empty(), n.message.is_empty()) {
                    (false, false) => format!("{}: {}", n.display_name, n.message),
                    (true, _) => n.message.clone(),
                    (false, true) => n.display_name.clone(),
                },
            )
            .collect::<Vec<_>>()
            .join("; "),
        _ => failures.to_owned(),
    }
}

impl Notification {
    /// The notification of `args`. Pure.
    pub fn from_args(args: &NotifyArgs) -> Self {
        let workflow = resolved(&args.workflow).to_owned();
        let status = resolved(&args.status).to_owned();
        let object = match resolved(&args.object) {
            "" => resolved(&args.objects),
            one => one,
        }
        .to_owned();
        let rows = resolved(&args.rows).to_owned();
        let output_key = resolved(&args.output_key).to_owned();
        let output_bucket = resolved(&args.output_bucket);
        let succeeded = status == "Succeeded";
        let error = if succeeded {
            String::new()
        } else {
            failures_text(resolved(&args.failures))
                .chars()
                .take(MAX_ERROR_CHARS)
                .collect()
        };
        let icon = if succeeded {
            ":white_check_mark:"
        } else {
            ":x:"
        };
        let mut text = format!(
            "{icon} {workflow} {status}: object={object} rows={rows} output={output_bucket}/{output_key}"
        );
        if !error.is_empty() {
            text.push_str(" error=");
            text.push_str(&error);
        }
        Notification {
            text,
            workflow,
            status,
            object,
            rows,
            output_key,
            error,
        }
    }
}

/// Why one try failed (never holds the URL).
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error("the webhook URL is not a valid http(s) URL")]
    BadUrl,
    #[error("the webhook URL is not https (plain http only to this machine); refused")]
    NotHttps,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("the webhook answered HTTP {0}")]
    Status(u16),
    #[error("TLS setup: {0}")]
    Tls(String),
}

impl PostError {
    fn retryable(&self) -> bool {
        match self {
            PostError::Timeout(_) | PostError::Transport(_) => true,
            PostError::Status(code) => *code == 429 || *code >= 500,
            PostError::BadUrl | PostError::NotHttps | PostError::Tls(_) => false,
        }
    }
}

/// The error chain of `error` with every occurrence of the URL (and its host) removed.
fn redacted(error: &dyn std::error::Error, url: &str, host: &str) -> String {
    let chain = std::iter::successors(Some(error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    let mut text = chain.replace(url, "<webhook>");
    if !host.is_empty() {
        text = text.replace(host, "<webhook host>");
    }
    text
}

/// `localhost` or a loopback address (plain http stays on the machine).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn client() -> Result<HttpsClient, PostError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| PostError::Tls(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

async fn post_once(client: &HttpsClient, uri: &http::Uri, body: &Bytes) -> Result<(), PostError> {
    let host = uri.host().unwrap_or_default();
    let url = uri.to_string();
    let request = http::Request::post(uri.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.clone()))
        .map_err(|_| PostError::BadUrl)?;
    let response = tokio::time::timeout(TRY_TIMEOUT, client.request(request))
        .await
        .map_err(|_| PostError::Timeout(TRY_TIMEOUT))?
        .map_err(|e| PostError::Transport(redacted(&e, &url, host)))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(PostError::Status(status.as_u16()))
    }
}

/// Posts `notification` to `url`: up to [`TRIES`] tries for transient failures.
async fn post(url: &str, notification: &Notification) -> Result<(), PostError> {
    let uri: http::Uri = url.trim().parse().map_err(|_| PostError::BadUrl)?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(PostError::BadUrl);
    }
    if uri.scheme_str() == Some("http") && !is_loopback(uri.host().unwrap_or_default()) {
        return Err(PostError::NotHttps);
    }
    let body = Bytes::from(
        serde_json::to_vec(notification).map_err(|e| PostError::Transport(e.to_string()))?,
    );
    let client = client()?;
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match post_once(&client, &uri, &body).await {
            Ok(()) => return Ok(()),
            Err(error) if error.retryable() && attempt < TRIES => {
                tracing::debug!(attempt, "webhook post failed, retrying: {error}");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Runs `etl-notify`: always [`ExitStatus::Success`].
///
/// # Errors
///
/// None in practice: every failure is one warning.
pub async fn run(args: NotifyArgs) -> anyhow::Result<ExitStatus> {
    let notification = Notification::from_args(&args);
    let url = args
        .webhook_url
        .as_ref()
        .map(|s| resolved(s.0.trim()))
        .filter(|u| !u.is_empty());
    let Some(url) = url else {
        tracing::info!(workflow = %notification.workflow, "no webhook URL (WEBHOOK_URL); nothing sent");
        return Ok(ExitStatus::Success);
    };
    match post(url, &notification).await {
        Ok(()) => {
            tracing::info!(workflow = %notification.workflow, status = %notification.status, "notification sent");
        }
        Err(error) => {
            tracing::warn!(workflow = %notification.workflow, "notification not sent: {error}");
        }
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> NotifyArgs {
        let mut argv = vec!["etl-notify"];
        argv.extend_from_slice(list);
        NotifyArgs::try_parse_from(argv).unwrap()
    }

    #[test]
    fn failed_run_carries_the_failures() {
        let n = Notification::from_args(&args(&[
            "--workflow",
            "etl-x",
            "--status",
            "Failed",
            "--failures",
            r#"[{"displayName":"convert","message":"bad row 3","phase":"Failed"},{"message":"m2"}]"#,
            "--objects",
            "input/a.csv",
            "--rows",
            "{{workflow.outputs.parameters.rows}}",
        ]));
        assert_eq!(n.error, "convert: bad row 3; m2");
        assert_eq!(n.object, "input/a.csv");
        assert_eq!(n.rows, "");
        assert!(
            n.text
                .starts_with(":x: etl-x Failed: object=input/a.csv rows= output=/")
        );
        assert!(n.text.ends_with("error=convert: bad row 3; m2"));
    }

    #[test]
    fn success_has_no_error() {
        let n = Notification::from_args(&args(&[
            "--status",
            "Succeeded",
            "--failures",
            "ignored",
            "--object",
            "input/t.csv",
            "--output-bucket",
            "b",
            "--output-key",
            "output/t.parquet",
        ]));
        assert_eq!(n.error, "");
        assert!(n.text.contains("output=b/output/t.parquet"), "{}", n.text);
        assert!(n.text.starts_with(":white_check_mark:"));
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        assert!(is_loopback("127.0.0.1") && is_loopback("[::1]") && is_loopback("LocalHost"));
        assert!(!is_loopback("hooks.slack.com") && !is_loopback("10.0.0.1"));
    }

    #[test]
    fn url_never_printed_by_debug() {
        let a = args(&["--webhook-url", "https://hooks.example/services/SECRET"]);
        assert!(!format!("{a:?}").contains("SECRET"));
    }
}
