//! The `ftp-etl` command: a file announced by `ftp-watch` (or named by path) is
//! downloaded over FTP, converted while it streams, and uploaded to S3 whole or not at all.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use etl_error::{ErrorClass, ExitStatus};
use etl_protocol::convert::{self, SourceRecord};
use etl_s3::PutRequest;
use serde_json::json;

use crate::cli::{ConvertArgs, LogArgs, TransferArgs};
use crate::exit::{Reported, UsageError};
use crate::{env_vars, payload, result_dir};

const EXAMPLES: &str = "\
Examples:
  # the event body ftp-watch emits (base64 JSON, JSON, or Argo's {\"body\": ...})
  FTP_HOST=ftp.example.com FTP_USER=etl FTP_PASSWD=... S3_BUCKET=etlproj \\
    ftp-etl --event eyJuYW1lIjoidGVzdC5jc3YiLCJzeiI6MzAsImR0IjoiMjAyMy0wNC0xNFQwMTowMjowM1oifQ==

  # a remote path (FTP_* and S3_BUCKET as above)
  ftp-etl --path /upload/test.csv

  # what would happen, without I/O
  S3_BUCKET=etlproj ftp-etl --event '{\"name\":\"test.csv\"}' --dry-run

The output key is S3_PREFIX + the file's name relative to the watched folder, with the
format's extension: test.csv -> output/test.parquet. S3 settings come from the AWS SDK's
chain (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...), as for etl.

Exit codes: 0 done or up to date; 1 transient failure (FTP or S3 unreachable, transfer
cut); 2 invalid usage, payload or data, or a file the server does not have.";

/// Download a CSV from FTP, convert it, upload it to S3.
#[derive(Debug, Parser)]
#[command(name = "ftp-etl", version, about = "Download the CSV file an FTP event names, convert it and upload the result to S3.", after_help = EXAMPLES)]
pub struct FtpEtlArgs {
    /// The event payload: base64 of {name,sz,dt}, that JSON, or Argo's event data; @FILE or - too.
    #[arg(long, conflicts_with = "path")]
    pub event: Option<String>,
    /// A remote file path instead of an event.
    #[arg(long)]
    pub path: Option<String>,
    /// Folder the event's names are relative to (when the event carries no full path).
    #[arg(long, env = env_vars::FTP_DIR, default_value = "/")]
    pub ftp_dir: String,
    /// FTP server.
    #[arg(long, env = env_vars::FTP_HOST)]
    pub host: Option<String>,
    /// FTP control port.
    #[arg(long, env = env_vars::FTP_PORT, default_value_t = 21)]
    pub port: u16,
    /// FTP user.
    #[arg(long, env = env_vars::FTP_USER, default_value = "anonymous")]
    pub user: String,
    /// FTP password (prefer the env var; it is never logged).
    #[arg(long, env = env_vars::FTP_PASSWD, hide_env_values = true, default_value = "")]
    pub password: String,
    /// Active mode instead of passive.
    #[arg(long)]
    pub active: bool,
    /// Explicit FTPS (AUTH TLS), certificates verified.
    #[arg(long, env = env_vars::FTP_TLS, value_parser = clap::builder::BoolishValueParser::new())]
    pub ftps: bool,
    /// PEM bundle of a private CA to trust for FTPS (besides the system's).
    #[arg(long, env = env_vars::FTP_CA_FILE)]
    pub ca_file: Option<PathBuf>,
    /// Bucket for the output.
    #[arg(long, env = env_vars::S3_BUCKET)]
    pub bucket: Option<String>,
    /// Key prefix for the output.
    #[arg(long, env = env_vars::S3_PREFIX, default_value = "output/")]
    pub prefix: String,
    #[command(flatten)]
    pub convert: ConvertArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Print the plan as one JSON line; no I/O.
    #[arg(long)]
    pub dry_run: bool,
    /// Convert even when the output already records this file version.
    #[arg(long, env = env_vars::ETL_FORCE, value_parser = clap::builder::BoolishValueParser::new())]
    pub force: bool,
    /// Write Argo output parameters (rows, output_key, output_bucket, status) here.
    #[arg(long, env = env_vars::ETL_RESULT_DIR)]
    pub result_dir: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The remote file and what the event says about it.
struct RemoteFile {
    path: String,
    relative: String,
    size: Option<u64>,
    modified: Option<String>,
}

/// Runs `ftp-etl`.
pub async fn run(args: FtpEtlArgs) -> anyhow::Result<ExitStatus> {
    result_dir::prepare(args.result_dir.as_deref())?;
    args.transfer.configure();
    let mut options = args.convert.options()?;
    let file = remote_file(&args)?;
    let bucket = args
        .bucket
        .clone()
        .ok_or_else(|| UsageError("no output bucket: set S3_BUCKET or --bucket".into()))?;
    let output_key = output_key(&args.prefix, &file.relative, &options.extension());
    if args.dry_run {
        let line =
            json!({"ftp_path": file.path, "output_bucket": bucket, "output_key": output_key});
        writeln!(std::io::stdout(), "{line}").context("writing to stdout")?;
        return Ok(ExitStatus::Success);
    }
    crate::shutdown::listen();
    let host = args
        .host
        .clone()
        .ok_or_else(|| UsageError("no FTP server: set FTP_HOST or --host".into()))?;
    let settings = etl_ftp::FtpSettings {
        host: host.clone(),
        port: args.port,
        user: args.user.clone(),
        password: args.password.clone(),
        passive: !args.active,
        tls: args.ftps,
        ca_file: args.ca_file.clone(),
        connect_timeout: Duration::from_secs(20),
    };
    let client = etl_s3::client_from_env().await?;
    args.convert.load_s3_schema(&mut options).await?;
    let uri = format!("ftp://{host}{}", file.path);

    // The version recorded with the output: size and time, from the event or the server.
    // An event that carries both needs no FTP session to find the output up to date.
    let mut session = None;
    let (size, modified) = match (file.size, file.modified.clone()) {
        (Some(size), Some(modified)) => (size, modified),
        (size, modified) => {
            let connection = session.insert(etl_ftp::connect(&settings).await?);
            let size = match size {
                Some(size) => size,
                None => connection.size(&file.path).await?,
            };
            let modified = match modified {
                Some(time) => time,
                None => connection
                    .modified(&file.path)
                    .await?
                    .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                    .unwrap_or_default(),
            };
            (size, modified)
        }
    };
    let record = SourceRecord {
        uri: uri.clone(),
        version: format!("{size}@{modified}"),
        size: Some(size),
    };
    if !args.force
        && let Some(existing) = etl_s3::head_object(&client, &bucket, &output_key).await?
        && record.is_recorded_in(&existing, &options)
    {
        tracing::info!(source = %uri, output = %convert::s3_uri(&bucket, &output_key), "up to date: the output already records this file version");
        if let Some(connection) = session {
            let _ = connection.quit().await;
        }
        finish(&args, &bucket, &output_key, (0, 0), "up-to-date")?;
        return Ok(ExitStatus::Success);
    }
    if crate::shutdown::requested() {
        return Err(stopped(&uri, &bucket, &output_key));
    }
    let mut connection = match session {
        Some(connection) => connection,
        None => etl_ftp::connect(&settings).await?,
    };

    let mut widenings = 0;
    let (summary, stored) = loop {
        let download = connection.retr_stream(&file.path).await?;
        let target = PutRequest {
            bucket: bucket.clone(),
            key: output_key.clone(),
            content_type: options.content_type().to_owned(),
            metadata: record.user_metadata(&options),
        };
        let footer = record.footer_metadata(&options);
        let runtime = tokio::runtime::Handle::current();
        let converted = convert::convert_to_s3(
            &client,
            download,
            target,
            &options,
            footer,
            move |download| {
                // Publish only if the server confirms the whole file was sent.
                runtime
                    .block_on(download.finish())
                    .map_err(anyhow::Error::from)
            },
        )
        .await;
        match converted {
            Ok(done) => break done,
            // The upload was aborted (or withheld before publishing); the file stays as
            // it is on the server for the retry.
            Err(_) if crate::shutdown::requested() => {
                return Err(stopped(&uri, &bucket, &output_key));
            }
            Err(error) if widenings < crate::etl::MAX_WIDENINGS => {
                let Some(widening) = crate::etl::widening_of(&error) else {
                    return Err(error.context(format!("converting {uri}")));
                };
                // The partial upload was aborted; the file is downloaded again on a fresh
                // connection (the old one still owes the reply to the cut transfer).
                options = crate::etl::widened(&uri, &options, widening);
                widenings += 1;
                let _ = connection.quit().await;
                connection = etl_ftp::connect(&settings).await?;
            }
            Err(error) => return Err(error.context(format!("converting {uri}"))),
        }
    };
    let _ = connection.quit().await;
    tracing::info!(source = %uri, output = %convert::s3_uri(&bucket, &output_key), rows = summary.rows, bad_rows = summary.rejected, bytes = stored.size, "converted");
    let line = json!({"ftp_path": file.path, "output_bucket": bucket, "output_key": output_key, "rows": summary.rows, "bad_rows": summary.rejected, "status": "converted"});
    writeln!(std::io::stdout(), "{line}").context("writing to stdout")?;
    finish(
        &args,
        &bucket,
        &output_key,
        (summary.rows, summary.rejected),
        "converted",
    )?;
    Ok(ExitStatus::Success)
}

/// The error of a run stopped by a signal before publishing (exit 1: a retry converts it).
fn stopped(uri: &str, bucket: &str, key: &str) -> anyhow::Error {
    Reported {
        message: format!(
            "stopped by a signal before {} was published: nothing was written, {uri} is left as it is",
            convert::s3_uri(bucket, key)
        ),
        class: ErrorClass::Retryable,
    }
    .into()
}

fn finish(
    args: &FtpEtlArgs,
    bucket: &str,
    key: &str,
    (rows, bad_rows): (u64, u64),
    status: &str,
) -> anyhow::Result<()> {
    if let Some(dir) = &args.result_dir {
        result_dir::write(
            dir,
            &[
                ("rows", rows.to_string()),
                ("bad_rows", bad_rows.to_string()),
                ("output_key", key.to_owned()),
                ("output_bucket", bucket.to_owned()),
                ("objects", "1".to_owned()),
                ("status", status.to_owned()),
            ],
        )?;
    }
    Ok(())
}

/// The segments of a remote name, `.` and empty ones dropped. Pure.
///
/// # Errors
///
/// A `..` segment, or a control character (CR/LF would end the FTP command).
fn segments<'a>(what: &str, name: &'a str) -> Result<Vec<&'a str>, UsageError> {
    if name.chars().any(char::is_control) {
        return Err(UsageError(format!(
            "{what} {name:?} holds a control character; refused"
        )));
    }
    let parts: Vec<&str> = name
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(UsageError(format!(
            "{what} {name:?} has a `..` segment; names must stay inside the folder"
        )));
    }
    if parts.is_empty() {
        return Err(UsageError(format!("{what} {name:?} names no file")));
    }
    Ok(parts)
}

/// The remote path and the name relative to `dir` (`FTP_DIR`) of a file given by `name`:
/// a relative name is taken inside `dir`; an absolute one is used as it is and must lie
/// inside `dir`. Pure.
///
/// # Errors
///
/// `..` segments, control characters, or an absolute name outside `dir`.
fn locate(dir: &str, what: &str, name: &str) -> Result<(String, String), UsageError> {
    let parts = segments(what, name)?;
    let dir_parts = segments("FTP_DIR", dir).unwrap_or_default();
    let dir_text = if dir_parts.is_empty() {
        String::new()
    } else {
        format!(
            "{}{}",
            if dir.starts_with('/') { "/" } else { "" },
            dir_parts.join("/")
        )
    };
    if name.starts_with('/') {
        let inside = dir_text.is_empty()
            || (dir.starts_with('/')
                && parts.len() > dir_parts.len()
                && parts[..dir_parts.len()] == dir_parts[..]);
        if !inside {
            return Err(UsageError(format!(
                "{what} {name:?} is outside FTP_DIR {dir:?}; refused"
            )));
        }
        let relative = parts[dir_parts.len()..].join("/");
        return Ok((format!("/{}", parts.join("/")), relative));
    }
    let relative = parts.join("/");
    let path = if dir_text.is_empty() {
        if dir.starts_with('/') {
            format!("/{relative}")
        } else {
            relative.clone()
        }
    } else {
        format!("{dir_text}/{relative}")
    };
    Ok((path, relative))
}

fn remote_file(args: &FtpEtlArgs) -> anyhow::Result<RemoteFile> {
    let dir = args.ftp_dir.as_str();
    if let Some(name) = &args.path {
        let (path, relative) = locate(dir, "--path", name)?;
        return Ok(RemoteFile {
            path,
            relative,
            size: None,
            modified: None,
        });
    }
    let Some(event) = &args.event else {
        return Err(UsageError("nothing to do: give --event or --path (see --help)".into()).into());
    };
    let bytes = payload::read_payload(event)?;
    let announced = etl_event::parse_ftp_event(&bytes)?;
    let (mut path, relative) = locate(dir, "the event's name", &announced.name)?;
    if let Some(full) = &announced.path {
        // ftp-watch's full path: it must name a file inside FTP_DIR too.
        path = locate(dir, "the event's path", full)?.0;
    }
    Ok(RemoteFile {
        path,
        relative,
        size: announced.sz,
        modified: announced.dt,
    })
}

/// `S3_PREFIX` + the relative name with the format's extension.
fn output_key(prefix: &str, relative: &str, extension: &str) -> String {
    let (dir, name) = relative.rsplit_once('/').unwrap_or(("", relative));
    let stem = match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    };
    let mut key = prefix.to_owned();
    if !key.is_empty() && !key.ends_with('/') {
        key.push('/');
    }
    if !dir.is_empty() {
        key.push_str(dir);
        key.push('/');
    }
    key.push_str(stem);
    key.push('.');
    key.push_str(extension);
    key
}

#[cfg(test)]
mod tests {
    use super::{locate, output_key};

    #[test]
    fn names_are_located_inside_ftp_dir() {
        let ok = |dir, name| locate(dir, "name", name).unwrap();
        assert_eq!(ok("/", "test.csv"), ("/test.csv".into(), "test.csv".into()));
        assert_eq!(
            ok("/upload", "a/b.csv"),
            ("/upload/a/b.csv".into(), "a/b.csv".into())
        );
        assert_eq!(
            ok("/upload/", "./b.csv"),
            ("/upload/b.csv".into(), "b.csv".into())
        );
        // An absolute name is not prefixed again.
        assert_eq!(
            ok("/upload", "/upload/x.csv"),
            ("/upload/x.csv".into(), "x.csv".into())
        );
        assert_eq!(
            ok("/", "/upload/x.csv"),
            ("/upload/x.csv".into(), "upload/x.csv".into())
        );
        assert_eq!(ok("in", "x.csv"), ("in/x.csv".into(), "x.csv".into()));
        for (dir, name) in [
            ("/", "../secret/x.csv"),
            ("/upload", "a/../../x.csv"),
            ("/upload", "/etc/passwd"),
            ("/upload", "/uploads/x.csv"),
            ("/upload", "/upload"),
            ("/", "x.csv\r\nDELE y.csv"),
            ("/", "/"),
        ] {
            assert!(locate(dir, "name", name).is_err(), "{dir} {name}");
        }
    }

    #[test]
    fn output_keys_follow_the_seed() {
        assert_eq!(
            output_key("output/", "test.csv", "parquet"),
            "output/test.parquet"
        );
        assert_eq!(output_key("output", "a/b.csv", "jsonl"), "output/a/b.jsonl");
        assert_eq!(output_key("", "x.csv", "parquet"), "x.parquet");
    }
}
