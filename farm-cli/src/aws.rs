//! AWS clients from the standard configuration: `AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`,
//! `~/.aws/config` and the rest of the SDK's chain, so the same commands work against AWS and
//! against moto or MinIO.

use farm_core::manifest::JobManifest;
use farm_core::storage::{get_json, StorageError};
use farm_core::{JobKeys, Storage};
use farm_io::{AwsClients, BatchScheduler, BatchTargets, S3Storage};

/// The loaded AWS configuration: the farm's one client builder ([`AwsClients`]), whose timeouts
/// and retry policy every binary shares.
#[derive(Debug, Clone)]
pub struct Aws {
    clients: AwsClients,
}

impl Aws {
    /// Loads the configuration from the environment and the AWS config files.
    pub async fn load() -> Self {
        Self {
            clients: AwsClients::load().await,
        }
    }

    /// Where this configuration's requests go, for the commands' messages and prices.
    pub fn site(&self) -> Site {
        let config = self.clients.sdk_config();
        let region = config.region().map(|r| r.as_ref().to_owned());
        let endpoint = config
            .endpoint_url()
            .map(str::to_owned)
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .unwrap_or_else(|| {
                format!("AWS region {}", region.as_deref().unwrap_or("(no region)"))
            });
        Site {
            endpoint,
            region: region.unwrap_or_default(),
        }
    }

    /// The farm's storage port on `bucket` (path-style addressing when a custom endpoint is
    /// configured: moto, MinIO).
    pub fn storage(&self, bucket: &str) -> S3Storage {
        S3Storage::new(self.clients.s3(), bucket)
    }

    /// A Batch scheduler. `targets` matter only for submitting; describing and terminating jobs
    /// need none.
    pub fn scheduler(&self, targets: Option<BatchTargets>) -> BatchScheduler {
        let targets = targets.unwrap_or(BatchTargets {
            queue: String::new(),
            render_definition: String::new(),
            zip_definition: String::new(),
        });
        BatchScheduler::new(self.clients.batch(), targets)
    }
}

/// Where a cloud command's requests go (the endpoint, the region), for its messages and prices.
/// The commands' functions take it beside the ports (storage, scheduler), never the AWS
/// configuration, which only the commands' entry points load ([`Aws`]).
#[derive(Debug, Clone)]
pub struct Site {
    endpoint: String,
    region: String,
}

impl Site {
    /// The endpoint requests go to, for error messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The configured AWS region (empty when none is).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Reads `<key>/job.json` from `storage` (bucket `bucket`), with errors that say what to do.
    pub async fn manifest<S: Storage>(
        &self,
        storage: &S,
        bucket: &str,
        key: &str,
    ) -> anyhow::Result<JobManifest> {
        let manifest_key = JobKeys::new(key).manifest();
        match get_json::<JobManifest>(storage, &manifest_key).await {
            Ok(manifest) => Ok(manifest),
            Err(StorageError::NotFound { .. }) => Err(anyhow::anyhow!(
                "no job for `{key}` in bucket {bucket}: `{manifest_key}` does not exist; check the key, or if it was just uploaded wait a few seconds for the trigger (an upload without a frame tag starts no job)"
            )),
            Err(err) => Err(self.storage_error(&err, &format!("reading `{manifest_key}`"))),
        }
    }

    /// Wraps a storage failure with what was being done and what to do about it: the bucket,
    /// the credentials, a permission, or the network. (The farm's errors come classified from
    /// `farm-io`, which reads the SDK's; AWS's own words are logged under `-v`.)
    pub fn storage_error(&self, err: &StorageError, doing: &str) -> anyhow::Error {
        match err {
            StorageError::NoSuchBucket { message } => {
                tracing::info!(%message, "AWS's answer");
                return anyhow::anyhow!(
                    "{doing}: the bucket does not exist ({}). Check --bucket (the stack's BucketName output), or name the stack with --stack",
                    self.endpoint
                );
            }
            StorageError::Credentials { message } => {
                tracing::info!(%message, "AWS's answer");
                return anyhow::anyhow!(
                    "{doing}: AWS has no usable credentials from you (none found, or expired or unknown). Sign in again (aws sso login, or aws configure for access keys), or pick a profile with AWS_PROFILE; -v shows AWS's answer"
                );
            }
            StorageError::ExpiredCredentials { message } => {
                tracing::info!(%message, "AWS's answer");
                return anyhow::anyhow!(
                    "{doing}: your AWS credentials have expired. Sign in again (aws sso login, or new access keys with aws configure) and run the command again; -v shows AWS's answer"
                );
            }
            StorageError::WrongRegion { region, message } => {
                tracing::info!(%message, "AWS's answer");
                let asked = self.region();
                let asked = if asked.is_empty() { "no region" } else { asked };
                return match region {
                    Some(region) => anyhow::anyhow!(
                        "{doing}: the bucket is in {region}, and requests went to {asked}. Set AWS_REGION={region} (or region = {region} in your AWS profile) and run the command again; -v shows AWS's answer"
                    ),
                    None => anyhow::anyhow!(
                        "{doing}: the bucket is in another region than {asked}. Set AWS_REGION to the bucket's region (aws s3api get-bucket-location --bucket NAME says it) and run the command again; -v shows AWS's answer"
                    ),
                };
            }
            StorageError::AccessDenied { key, message } => {
                tracing::info!(%message, "AWS's answer");
                return anyhow::anyhow!(
                    "{doing}: AWS denied your identity access to `{key}`. Ask for the farm user's policy (infra/README.md, \"The farm user's policy\"), or check --bucket; -v shows AWS's answer"
                );
            }
            _ => {}
        }
        if err.is_transient() {
            anyhow::anyhow!(
                "{doing}: {err}; check the endpoint ({}), the network and your AWS configuration, then retry",
                self.endpoint
            )
        } else {
            anyhow::anyhow!("{doing}: {err}")
        }
    }
}
