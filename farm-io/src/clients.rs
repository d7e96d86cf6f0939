//! The one place AWS clients are built. Every binary (trigger, renderer, zipper, `farm`) gets
//! its S3, Batch and CloudFormation clients from [`AwsClients::load`], so every request is bounded the same way:
//!
//! | bound | default | what it stops |
//! |---|---|---|
//! | connect timeout | 5 s | an endpoint that does not accept the connection |
//! | read timeout | 30 s | a server that accepted and sends nothing (a black hole) |
//! | attempt timeout | 60 s | one attempt, from sending to the response headers |
//! | operation timeout | 5 min | all attempts and the backoff between them |
//! | attempts | 5, standard mode | throttling, 5xx and transport errors, with backoff |
//!
//! A timeout is a transport failure: the ports report it as transient, so the binaries exit
//! `TRANSIENT` (Batch retries) instead of holding a task until its attempt timeout.
//! The configuration otherwise comes from the standard chain (`AWS_REGION`, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`, `~/.aws/config`), so the same binaries work against AWS and moto.
//! `AWS_MAX_ATTEMPTS` overrides the attempts and `FARM_AWS_ATTEMPT_TIMEOUT_SECS` the attempt
//! timeout (the read timeout follows it, at most 30 s), for operators and tests.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Environment variable overriding [`ClientSettings::attempt_timeout`], in (fractional) seconds.
pub const ATTEMPT_TIMEOUT_ENV: &str = farm_core::env::AWS_ATTEMPT_TIMEOUT;

/// The bounds every AWS client of the farm gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    pub max_attempts: u32,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(60),
            operation_timeout: Duration::from_secs(300),
            max_attempts: 5,
        }
    }
}

impl ClientSettings {
    /// The defaults, with `AWS_MAX_ATTEMPTS` and [`ATTEMPT_TIMEOUT_ENV`] applied when set to a
    /// usable value (anything else is ignored with a warning).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ClientSettings::from_env`] over any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut settings = Self::default();
        if let Some(value) = lookup("AWS_MAX_ATTEMPTS") {
            match value.trim().parse::<u32>() {
                Ok(n) if n >= 1 => settings.max_attempts = n,
                _ => {
                    tracing::warn!(%value, "AWS_MAX_ATTEMPTS is not a whole number of attempts from 1; using {}", settings.max_attempts)
                }
            }
        }
        if let Some(value) = lookup(ATTEMPT_TIMEOUT_ENV) {
            match value.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() && secs > 0.0 => {
                    settings.attempt_timeout = Duration::from_secs_f64(secs);
                    settings.read_timeout = settings.read_timeout.min(settings.attempt_timeout);
                }
                _ => {
                    tracing::warn!(%value, "{ATTEMPT_TIMEOUT_ENV} is not a positive number of seconds; using the default")
                }
            }
        }
        settings
    }

    fn timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }

    fn retries(&self) -> RetryConfig {
        RetryConfig::standard().with_max_attempts(self.max_attempts)
    }
}

/// The loaded AWS configuration, and the clients built from it.
#[derive(Debug, Clone)]
pub struct AwsClients {
    config: SdkConfig,
}

impl AwsClients {
    /// Loads the configuration from the environment with [`ClientSettings::from_env`].
    pub async fn load() -> Self {
        Self::load_with(ClientSettings::from_env()).await
    }

    /// Loads the configuration from the environment with these bounds.
    pub async fn load_with(settings: ClientSettings) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(settings.retries())
            .timeout_config(settings.timeouts())
            .load()
            .await;
        Self { config }
    }

    /// The loaded configuration (region, endpoint, credentials, bounds).
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// Whether requests go to a custom endpoint (moto, MinIO) rather than AWS.
    pub fn custom_endpoint(&self) -> bool {
        self.config.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty())
    }

    /// An S3 client: path-style addressing for a custom endpoint, virtual hosts on AWS.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(self.custom_endpoint())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A Batch client.
    pub fn batch(&self) -> aws_sdk_batch::Client {
        aws_sdk_batch::Client::new(&self.config)
    }

    /// A CloudFormation client (`farm --stack` reads the farm stack's outputs).
    pub fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bound_is_set_and_the_environment_can_tighten_them() {
        let defaults = ClientSettings::default();
        let timeouts = defaults.timeouts();
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(timeouts.read_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(300)));

        let vars = [("AWS_MAX_ATTEMPTS", "2"), (ATTEMPT_TIMEOUT_ENV, "0.5")];
        let tight = ClientSettings::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(tight.max_attempts, 2);
        assert_eq!(tight.attempt_timeout, Duration::from_millis(500));
        assert_eq!(tight.read_timeout, Duration::from_millis(500));

        let junk = ClientSettings::from_lookup(|_| Some("zero".to_owned()));
        assert_eq!(junk, ClientSettings::default());
    }
}
