//! A `moto_server` per test: S3 and a docker-free AWS Batch on 127.0.0.1.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_batch::types::{
    AssignPublicIp, CeState, CeType, ComputeEnvironmentOrder, ComputeResource, ContainerProperties,
    CrType, JobDefinitionType, JqState, NetworkConfiguration, PlatformCapability,
    ResourceRequirement, ResourceType,
};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::http;

/// Region every client and environment points at.
const REGION: &str = "us-east-1";
/// Access key and secret moto is given (any value works; these are the usual ones).
const ACCESS_KEY: &str = "testing";
/// How long moto_server may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Starts tried before giving up (the free port may be taken before moto binds it).
const START_ATTEMPTS: usize = 3;

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    child: Child,
    log: tempfile::NamedTempFile,
}

/// A Batch setup on moto: ARNs of a job queue on a Fargate compute environment and of the
/// render (4 vCPU, 8 GiB) and zip (1 vCPU, 2 GiB) job definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEnv {
    /// Job queue ARN.
    pub queue: String,
    /// Render job definition ARN (4 vCPU, 8192 MiB, Fargate).
    pub render_definition: String,
    /// Zip job definition ARN (1 vCPU, 2048 MiB, Fargate).
    pub zip_definition: String,
}

impl Moto {
    /// Starts `moto_server -H 127.0.0.1 -p <free port>`, waits until it answers and switches its
    /// Batch to the docker-free mode (jobs succeed at once, nothing runs).
    ///
    /// Fails, saying how to install it, if `moto_server` is not on `PATH`.
    pub async fn start() -> anyhow::Result<Moto> {
        Self::start_with_env(&[]).await
    }

    /// [`Moto::start`] with extra environment variables for `moto_server` (e.g. `DOCKER_HOST`:
    /// the Docker API its docker mode runs Batch jobs with).
    pub async fn start_with_env(env: &[(&str, &str)]) -> anyhow::Result<Moto> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(env).await {
                Ok(moto) => return Ok(moto),
                Err(err) if err.to_string().contains("is not on PATH") => return Err(err),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("moto_server did not start")))
    }

    async fn start_once(env: &[(&str, &str)]) -> anyhow::Result<Moto> {
        let port = free_port()?;
        let log = tempfile::NamedTempFile::new().context("creating moto_server's log file")?;
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.reopen()?)
            .stderr(log.reopen()?)
            .spawn()
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => anyhow!(
                    "moto_server is not on PATH: run scripts/setup.sh, then `source scripts/env.sh`"
                ),
                _ => anyhow!("starting moto_server: {err}"),
            })?;
        let mut moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        moto.wait_until_configured().await?;
        Ok(moto)
    }

    /// Posts the Batch configuration until moto accepts it (which also means it is up).
    async fn wait_until_configured(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let config = br#"{"batch":{"use_docker":false}}"#;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("moto_server exited ({status}): {}", self.log_text());
            }
            let answer = http::send(
                &self.endpoint,
                "POST",
                "/moto-api/config",
                &[("Content-Type", "application/json")],
                config,
            )
            .await;
            match answer {
                Ok(response) if (200..300).contains(&response.status) => break,
                Ok(response) => bail!(
                    "moto_server refused its configuration ({}): {}",
                    response.status,
                    response.body
                ),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => bail!(
                    "moto_server did not answer within {START_TIMEOUT:?}: {err}; {}",
                    self.log_text()
                ),
            }
        }
        // Another server may have answered on the port this one failed to bind.
        if let Some(status) = self.child.try_wait()? {
            bail!("moto_server exited ({status}): {}", self.log_text());
        }
        Ok(())
    }

    /// moto_server's log so far: one line per request it answered (`"GET /bucket/key
    /// HTTP/1.1" 200 -`), for counting a command's calls.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = self.log.reopen() {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = self.log.reopen() {
            let _ = file.read_to_string(&mut text);
        }
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// SDK configuration for this server: us-east-1, credentials `testing`/`testing`.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY, ACCESS_KEY, None, None, "moto",
            )))
            .endpoint_url(&self.endpoint)
            .build()
    }

    /// An S3 client for this server (path-style addressing).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A Batch client for this server.
    pub fn batch(&self) -> aws_sdk_batch::Client {
        aws_sdk_batch::Client::new(&self.sdk_config())
    }

    /// A CloudFormation client for this server.
    pub fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.sdk_config())
    }

    /// Environment for a process (one of our binaries, the `aws` CLI) to use this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", ACCESS_KEY),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Creates a bucket.
    pub async fn bucket(&self, name: &str) -> anyhow::Result<()> {
        self.s3()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .with_context(|| format!("creating bucket {name}"))?;
        Ok(())
    }

    /// Creates a VPC, subnet, security group and IAM role, then a Fargate compute environment, a
    /// job queue and the render and zip job definitions. Names are unique per call.
    pub async fn batch_env(&self) -> anyhow::Result<BatchEnv> {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let network = self.network(suffix).await?;
        let role = self.service_role(suffix).await?;
        let batch = self.batch();
        let compute = batch
            .create_compute_environment()
            .compute_environment_name(format!("farm-ce-{suffix}"))
            .r#type(CeType::Managed)
            .state(CeState::Enabled)
            .service_role(&role)
            .compute_resources(
                ComputeResource::builder()
                    .r#type(CrType::Fargate)
                    .maxv_cpus(16)
                    .subnets(&network.subnet)
                    .security_group_ids(&network.security_group)
                    .build(),
            )
            .send()
            .await
            .context("creating the compute environment")?;
        let compute_arn = compute
            .compute_environment_arn()
            .ok_or_else(|| anyhow!("CreateComputeEnvironment returned no ARN"))?;
        let queue = batch
            .create_job_queue()
            .job_queue_name(format!("farm-queue-{suffix}"))
            .priority(1)
            .state(JqState::Enabled)
            .compute_environment_order(
                ComputeEnvironmentOrder::builder()
                    .order(1)
                    .compute_environment(compute_arn)
                    .build(),
            )
            .send()
            .await
            .context("creating the job queue")?;
        Ok(BatchEnv {
            queue: queue.job_queue_arn().unwrap_or_default().to_owned(),
            render_definition: self
                .job_definition(&format!("farm-render-{suffix}"), "4", "8192", &role)
                .await?,
            zip_definition: self
                .job_definition(&format!("farm-zip-{suffix}"), "1", "2048", &role)
                .await?,
        })
    }

    /// What a redeploy does to a job definition: registers a new revision like `arn`'s, then
    /// deregisters `arn` (CloudFormation replaces a changed definition so). Returns the new
    /// revision's ARN.
    pub async fn redeploy_job_definition(&self, arn: &str) -> anyhow::Result<String> {
        let described = self
            .batch()
            .describe_job_definitions()
            .job_definitions(arn)
            .send()
            .await
            .with_context(|| format!("describing {arn}"))?;
        let old = described
            .job_definitions()
            .first()
            .ok_or_else(|| anyhow!("no job definition {arn}"))?;
        let container = old
            .container_properties()
            .ok_or_else(|| anyhow!("{arn} has no container properties"))?;
        let requirement = |kind: ResourceType| {
            container
                .resource_requirements()
                .iter()
                .find(|r| r.r#type() == Some(&kind))
                .and_then(|r| r.value())
                .unwrap_or_default()
                .to_owned()
        };
        let new = self
            .job_definition(
                old.job_definition_name().unwrap_or_default(),
                &requirement(ResourceType::Vcpu),
                &requirement(ResourceType::Memory),
                container.execution_role_arn().unwrap_or_default(),
            )
            .await?;
        self.batch()
            .deregister_job_definition()
            .job_definition(arn)
            .send()
            .await
            .with_context(|| format!("deregistering {arn}"))?;
        Ok(new)
    }

    async fn job_definition(
        &self,
        name: &str,
        vcpus: &str,
        memory_mib: &str,
        role: &str,
    ) -> anyhow::Result<String> {
        let requirement = |kind, value: &str| {
            ResourceRequirement::builder()
                .r#type(kind)
                .value(value)
                .build()
        };
        let output = self
            .batch()
            .register_job_definition()
            .job_definition_name(name)
            .r#type(JobDefinitionType::Container)
            .platform_capabilities(PlatformCapability::Fargate)
            .container_properties(
                ContainerProperties::builder()
                    .image(format!("{name}:test"))
                    .resource_requirements(requirement(ResourceType::Vcpu, vcpus))
                    .resource_requirements(requirement(ResourceType::Memory, memory_mib))
                    .execution_role_arn(role)
                    .network_configuration(
                        NetworkConfiguration::builder()
                            .assign_public_ip(AssignPublicIp::Enabled)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("registering job definition {name}"))?;
        output
            .job_definition_arn()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("RegisterJobDefinition returned no ARN"))
    }

    async fn network(&self, suffix: &str) -> anyhow::Result<Network> {
        let vpc = self
            .query_value(
                "ec2",
                &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
                "vpcId",
            )
            .await?;
        let subnet = self
            .query_value(
                "ec2",
                &[
                    ("Action", "CreateSubnet"),
                    ("VpcId", &vpc),
                    ("CidrBlock", "10.0.1.0/24"),
                ],
                "subnetId",
            )
            .await?;
        let security_group = self
            .query_value(
                "ec2",
                &[
                    ("Action", "CreateSecurityGroup"),
                    ("GroupName", &format!("farm-{suffix}")),
                    ("GroupDescription", "render farm tests"),
                    ("VpcId", &vpc),
                ],
                "groupId",
            )
            .await?;
        Ok(Network {
            subnet,
            security_group,
        })
    }

    async fn service_role(&self, suffix: &str) -> anyhow::Result<String> {
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": ["batch.amazonaws.com", "ecs-tasks.amazonaws.com"]},
                "Action": "sts:AssumeRole"
            }]
        })
        .to_string();
        self.query_value(
            "iam",
            &[
                ("Action", "CreateRole"),
                ("RoleName", &format!("farm-batch-{suffix}")),
                ("AssumeRolePolicyDocument", &trust),
            ],
            "Arn",
        )
        .await
    }

    /// One call of an AWS Query-protocol API (EC2, IAM), returning one element of the answer.
    ///
    /// moto routes on the credential scope of the `Authorization` header and does not check
    /// signatures, so the request is not signed.
    async fn query_value(
        &self,
        service: &str,
        params: &[(&str, &str)],
        element: &str,
    ) -> anyhow::Result<String> {
        let version = match service {
            "iam" => "2010-05-08",
            _ => "2016-11-15",
        };
        let body = std::iter::once(("Version", version))
            .chain(params.iter().copied())
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20250101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let response = http::send(
            &self.endpoint,
            "POST",
            "/",
            &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                ("Authorization", &authorization),
            ],
            body.as_bytes(),
        )
        .await?;
        let action = params
            .iter()
            .find(|(k, _)| *k == "Action")
            .map_or("?", |(_, v)| *v);
        if !(200..300).contains(&response.status) {
            bail!(
                "{service} {action} failed ({}): {}",
                response.status,
                response.body
            );
        }
        response
            .xml_value(element)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{service} {action}: no <{element}> in {}", response.body))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Subnet and security group ids for the compute environment.
#[derive(Debug)]
struct Network {
    subnet: String,
    security_group: String,
}

/// A port nothing listens on right now (the OS picks it; it is free again once dropped).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Characters left as they are in form values: RFC 3986 unreserved.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(value: &str) -> String {
    utf8_percent_encode(value, FORM).to_string()
}
