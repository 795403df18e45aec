//! Environment variables read by the binaries, declared once.
//!
//! The AWS SDK reads its own `AWS_*` variables; the FTP flow keeps the seed's names.

/// Output format (`parquet`, `jsonl`, `csv`).
pub const ETL_FORMAT: &str = "ETL_FORMAT";
/// Bucket of the input object(s).
pub const ETL_BUCKET: &str = "ETL_BUCKET";
/// Prefix to sweep.
pub const ETL_PREFIX: &str = "ETL_PREFIX";
/// Bucket for outputs (default: the input's bucket).
pub const ETL_OUTPUT_BUCKET: &str = "ETL_OUTPUT_BUCKET";
/// Output key template.
pub const ETL_OUTPUT_KEY: &str = "ETL_OUTPUT_KEY";
/// Column names for a headerless file.
pub const ETL_COLUMNS: &str = "ETL_COLUMNS";
/// Field delimiter.
pub const ETL_DELIMITER: &str = "ETL_DELIMITER";
/// Null tokens, comma-separated (replaces the default set).
pub const ETL_NULL_VALUES: &str = "ETL_NULL_VALUES";
/// A schema file (or `s3://bucket/key`) pinning column names and types.
pub const ETL_SCHEMA: &str = "ETL_SCHEMA";
/// Bad records: `fail`, `skip`, `quarantine`.
pub const ETL_BAD_ROWS: &str = "ETL_BAD_ROWS";
/// Output compression (a Parquet codec, or gzip/zstd of a whole CSV or JSON Lines file).
pub const ETL_COMPRESSION: &str = "ETL_COMPRESSION";
/// Longest record (or field) in bytes; a longer one is a bad row.
pub const ETL_MAX_RECORD_BYTES: &str = "ETL_MAX_RECORD_BYTES";
/// Key encoding of notifications: `auto`, `raw`, `url`.
pub const ETL_KEY_ENCODING: &str = "ETL_KEY_ENCODING";
/// Log format: `text` or `json`.
pub const ETL_LOG_FORMAT: &str = "ETL_LOG_FORMAT";
/// Directory for Argo output parameter files.
pub const ETL_RESULT_DIR: &str = "ETL_RESULT_DIR";
/// Concurrent conversions in a sweep.
pub const ETL_JOBS: &str = "ETL_JOBS";
/// Objects a sweep holds in memory before it switches to two listing passes (tests).
pub const ETL_SWEEP_BATCH: &str = "ETL_SWEEP_BATCH";
/// Keys per listing page of a sweep (tests; S3 lists 1,000).
pub const ETL_LIST_PAGE_KEYS: &str = "ETL_LIST_PAGE_KEYS";
/// Convert even when the output is up to date.
pub const ETL_FORCE: &str = "ETL_FORCE";
/// Conditional writes on publishing: `on` or `off`.
pub const ETL_CONDITIONAL_WRITES: &str = "ETL_CONDITIONAL_WRITES";
/// Size of S3 upload parts and ranged GETs.
pub const ETL_S3_PART_SIZE: &str = "ETL_S3_PART_SIZE";
/// S3 parts in flight each way.
pub const ETL_S3_CONCURRENCY: &str = "ETL_S3_CONCURRENCY";
/// Objects larger than this are read with ranged GETs.
pub const ETL_S3_RANGED_READ_ABOVE: &str = "ETL_S3_RANGED_READ_ABOVE";
/// Column `agg` maximises.
pub const ETL_AGG_COLUMN: &str = "ETL_AGG_COLUMN";
/// Quiet time `agg` waits for before reading.
pub const ETL_SETTLE: &str = "ETL_SETTLE";
/// Address `ftp-watch` listens on.
pub const ETL_LISTEN: &str = "ETL_LISTEN";
/// Seed name: FTP server host.
pub const FTP_HOST: &str = "FTP_HOST";
/// Seed name: FTP server port.
pub const FTP_PORT: &str = "FTP_PORT";
/// Seed name: FTP user.
pub const FTP_USER: &str = "FTP_USER";
/// Seed name: FTP password (never logged).
pub const FTP_PASSWD: &str = "FTP_PASSWD";
/// Seed name: bucket for `ftp-etl` outputs.
pub const S3_BUCKET: &str = "S3_BUCKET";
/// Seed name: key prefix for `ftp-etl` outputs.
pub const S3_PREFIX: &str = "S3_PREFIX";
/// Folder `ftp-etl` resolves event names against.
pub const FTP_DIR: &str = "FTP_DIR";
/// Explicit FTPS.
pub const FTP_TLS: &str = "FTP_TLS";
/// PEM bundle of a private CA trusted for FTPS (besides the system's).
pub const FTP_CA_FILE: &str = "FTP_CA_FILE";
/// YAML file of the FTP servers `ftp-watch` may watch (besides `default` from `FTP_*`).
pub const FTP_WATCH_SERVERS: &str = "FTP_WATCH_SERVERS";
/// File holding the bearer token gRPC clients of `ftp-watch` must send.
pub const FTP_WATCH_AUTH_TOKEN_FILE: &str = "FTP_WATCH_AUTH_TOKEN_FILE";
/// PEM certificate (chain) `ftp-watch` serves gRPC with.
pub const FTP_WATCH_TLS_CERT: &str = "FTP_WATCH_TLS_CERT";
/// PEM private key of `FTP_WATCH_TLS_CERT`.
pub const FTP_WATCH_TLS_KEY: &str = "FTP_WATCH_TLS_KEY";
