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
    let sdk_config = sdk_config(settings).await;
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

/// The SDK's shared configuration with our region default, timeouts and retries: the base
/// of the S3 client and of any other AWS client the binaries build (SQS, SNS).
pub async fn sdk_config(settings: &ClientSettings) -> aws_config::SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(Region::new(DEFAULT_REGION));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(60))
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(settings.max_attempts.unwrap_or(4))
        .with_initial_backoff(Duration::from_millis(200));
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(timeouts)
        .retry_config(retries)
        .load()
        .await
}

/// [`build_client`] with the defaults, after checking the endpoint variables: a malformed
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` is a configuration error, not a fault.
pub async fn client_from_env() -> crate::Result<Client> {
    for name in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] {
        if let Some(value) = std::env::var_os(name).filter(|v| !v.is_empty()) {
            let value = value.to_string_lossy();
            if !is_endpoint_url(&value) {
                return Err(crate::Error::Config(format!(
                    "{name}={value} is not an endpoint URL (expected http://host[:port] or https://host[:port])"
                )));
            }
        }
    }
    Ok(build_client(&ClientSettings::default()).await)
}

fn is_endpoint_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.and_then(|r| r.split('/').next())
        .is_some_and(|host| !host.is_empty() && !host.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::is_endpoint_url;

    #[test]
    fn endpoint_urls() {
        for good in [
            "http://127.0.0.1:9000",
            "https://s3.example.com",
            "http://minio/",
        ] {
            assert!(is_endpoint_url(good), "{good}");
        }
        for bad in [
            "not-a-url",
            "127.0.0.1:9000",
            "http://",
            "ftp://host",
            "https:// x",
        ] {
            assert!(!is_endpoint_url(bad), "{bad}");
        }
    }
}
