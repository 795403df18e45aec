//! Building the S3 client: credentials, region and endpoint come from the SDK's chain
//! (env, profiles, IRSA web identity, instance metadata).

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;

/// Settings the binaries may override; everything else comes from the SDK's chain.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// Force path-style addressing (`http://host/bucket/key`). `None`: on for a custom
    /// endpoint (MinIO and other S3-compatible servers), off for AWS.
    pub force_path_style: Option<bool>,
    /// Attempts per request, first one included (SDK default 3).
    pub max_attempts: Option<u32>,
}

/// The region used when none is configured, as MinIO and most S3-compatible servers expect.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Builds a client from the SDK's configuration chain.
pub async fn build_client(settings: &ClientSettings) -> Client {
    let region = RegionProviderChain::default_provider().or_else(Region::new(DEFAULT_REGION));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(60))
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(settings.max_attempts.unwrap_or(4))
        .with_initial_backoff(Duration::from_millis(200));
    let sdk_config = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(timeouts)
        .retry_config(retries)
        .load()
        .await;
    let custom_endpoint = sdk_config.endpoint_url().is_some()
        || ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let path_style = settings.force_path_style.unwrap_or(custom_endpoint);
    let config = aws_sdk_s3::config::Builder::from(&sdk_config)
        .force_path_style(path_style)
        .build();
    Client::from_conf(config)
}
