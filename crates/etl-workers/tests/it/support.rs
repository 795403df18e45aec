//! Test context: a real S3-compatible server, an S3 client for seeding and checking, and
//! commands for the real binaries with a clean environment pointed at the server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::RecordBatch;
use aws_sdk_s3::primitives::ByteStream;
use etl_test_support::s3::S3Server;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub mod ftp;

/// The seed's bucket.
pub const BUCKET: &str = "etlproj";

/// One test's world: its own S3 server and temp dir.
pub struct TestContext {
    pub s3: S3Server,
    pub dir: tempfile::TempDir,
    pub client: aws_sdk_s3::Client,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TestContext {
    fn drop(&mut self) {
        // Tests may drop the context inside their own runtime, where blocking is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl TestContext {
    /// Runs an S3 call to completion, also from inside an async test.
    fn block<F>(&self, future: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        let runtime = self.runtime.as_ref().expect("runtime");
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| runtime.block_on(future))
                    .join()
                    .expect("S3 call thread")
            })
        } else {
            runtime.block_on(future)
        }
    }

    pub fn new() -> TestContext {
        let s3 = S3Server::start().expect("S3 test server");
        s3.create_bucket(BUCKET).expect("bucket");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let credentials = aws_sdk_s3::config::Credentials::new(
            etl_test_support::s3::ACCESS_KEY,
            etl_test_support::s3::SECRET_KEY,
            None,
            None,
            "test",
        );
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(s3.endpoint())
            .credentials_provider(credentials)
            .force_path_style(true)
            .build();
        TestContext {
            client: aws_sdk_s3::Client::from_conf(config),
            s3,
            dir: tempfile::tempdir().expect("temp dir"),
            runtime: Some(runtime),
        }
    }

    /// A command for a binary, with only the variables a test sets (plus PATH/HOME).
    pub fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(binary);
        command.env_clear();
        for name in ["PATH", "HOME", "TMPDIR"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(self.s3.env());
        command.env("ETL_LOG_FORMAT", "text");
        // Request counts below assume no probe; the probe has its own tests (auto).
        command.env("ETL_CONDITIONAL_WRITES", "on");
        command.current_dir(self.dir.path());
        command
    }

    pub fn put(&self, key: &str, body: impl Into<Vec<u8>>) {
        let body: Vec<u8> = body.into();
        self.block(
            self.client
                .put_object()
                .bucket(BUCKET)
                .key(key)
                .body(ByteStream::from(body))
                .send(),
        )
        .expect("put object");
    }

    /// A PUT with user metadata (as an earlier version of a tool would have written).
    pub fn put_with_metadata(&self, key: &str, body: Vec<u8>, metadata: &[(&str, &str)]) {
        let mut put = self
            .client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body));
        for (name, value) in metadata {
            put = put.metadata(*name, *value);
        }
        self.block(put.send()).expect("put object");
    }

    pub fn delete(&self, key: &str) {
        self.block(self.client.delete_object().bucket(BUCKET).key(key).send())
            .expect("delete object");
    }

    pub fn put_file(&self, key: &str, path: &Path) {
        self.put(key, std::fs::read(path).expect("test data"));
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let out = self
            .block(self.client.get_object().bucket(BUCKET).key(key).send())
            .ok()?;
        Some(
            self.block(out.body.collect())
                .expect("body")
                .into_bytes()
                .to_vec(),
        )
    }

    /// [`TestContext::get`] that reads a body cut by a concurrent overwrite (s3s-fs
    /// rewrites objects in place) as absent.
    pub fn get_consistent(&self, key: &str) -> Option<Vec<u8>> {
        let out = self
            .block(self.client.get_object().bucket(BUCKET).key(key).send())
            .ok()?;
        Some(self.block(out.body.collect()).ok()?.into_bytes().to_vec())
    }

    pub fn head_metadata(&self, key: &str) -> std::collections::HashMap<String, String> {
        self.block(self.client.head_object().bucket(BUCKET).key(key).send())
            .expect("head")
            .metadata()
            .cloned()
            .unwrap_or_default()
    }

    pub fn head_etag(&self, key: &str) -> String {
        self.block(self.client.head_object().bucket(BUCKET).key(key).send())
            .expect("head")
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned()
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .block(
                self.client
                    .list_objects_v2()
                    .bucket(BUCKET)
                    .prefix(prefix)
                    .send(),
            )
            .expect("list");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    pub fn write_file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write file");
        path
    }
}

/// Multipart uploads the S3 server holds in progress (neither completed nor aborted).
pub fn uploads_in_flight(t: &TestContext) -> usize {
    std::fs::read_dir(t.s3.root())
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".upload_id-"))
                .count()
        })
        .unwrap_or(0)
}

/// `rows` headerless `no,name,score` rows with distinct names (1-based `no`).
pub fn csv_rows(rows: u64) -> String {
    let mut body = String::with_capacity(rows as usize * 32);
    for i in 1..=rows {
        body.push_str(&format!(
            "{i},{:016x},{}\n",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            i % 1000
        ));
    }
    body
}

pub fn testdata(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(relative)
}

pub fn read_parquet(bytes: Vec<u8>) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .expect("a parquet file")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// A MinIO listen notification (Argo's MinIO event source) for these keys.
pub fn minio_notification(bucket: &str, keys: &[&str]) -> String {
    let records: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| {
            serde_json::json!({
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventName": "s3:ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": {"key": key, "size": 30}
                }
            })
        })
        .collect();
    serde_json::json!({ "notification": records }).to_string()
}

/// An S3 notification (as SNS/SQS carry it) for one key with its eTag.
pub fn s3_notification(bucket: &str, key: &str, etag: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "eTag": etag}}
    }]})
    .to_string()
}
