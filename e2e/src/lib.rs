//! Harness of the end-to-end and fault-injection tests in `tests/`.
//!
//! Everything runs for real except what cannot run here, and each stand-in is as thin as it can
//! be:
//! - AWS Batch starting containers: [`Farm::spawn`] runs the real `renderer` / `zipper` binary
//!   with exactly the environment a job was submitted with (read back from moto with
//!   ListJobs/DescribeJobs, [`Farm::jobs`]), plus what Batch itself adds (the array index and job
//!   id) and the job definition's own variables (as `infra/farm.yaml` sets them).
//! - S3 -> Lambda delivery: S3 (moto) notifies an SQS queue; [`Farm::deliver`] receives the
//!   messages, completes each event with the fields real S3 sends and moto leaves out
//!   ([`as_delivered_by_s3`]) and calls the trigger's handler with it.
//! - A flaky network: [`Proxy`], a TCP proxy in front of moto that can refuse and reset
//!   connections.
//!
//! The binaries of other packages cannot be named with `env!("CARGO_BIN_EXE_..")`, so [`bins`]
//! builds them once per test process with `cargo build` and finds them next to the test.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_batch::types::JobStatus;
use farm_io::{BatchScheduler, BatchTargets, S3Storage};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use trigger_lambda::{handle_event, Buckets, Deps, EventReport};

pub use farm_testkit::{frame_code, make_scene, BatchEnv, Moto, SceneOptions};

// ---------------------------------------------------------------------------------------------
// The binaries

/// Paths of the farm's binaries, built for the profile this test was built with.
#[derive(Debug)]
pub struct Bins {
    pub renderer: PathBuf,
    pub zipper: PathBuf,
    pub farm: PathBuf,
}

/// Builds `renderer`, `zipper` and `farm` once per test process and returns their paths.
///
/// A test executable lives in `<target dir>/<profile>/deps/`, so the binaries are built into
/// that same target dir and profile (which is how `CARGO_TARGET_DIR` and `--release` are
/// respected) and found in `<target dir>/<profile>/`. After `cargo test --workspace` has built
/// everything this is a no-op. Cargo waits for its lock if another build holds it.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let started = std::time::Instant::now();
        let bins = build_bins().unwrap_or_else(|e| panic!("{e:#}"));
        eprintln!("e2e: built the farm's binaries in {:?}", started.elapsed());
        bins
    })
}

fn build_bins() -> anyhow::Result<Bins> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("{} is not in <target>/<profile>/deps", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| anyhow!("no target dir above {}", profile_dir.display()))?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => bail!("unreadable profile folder {}", profile_dir.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let output = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--bins"])
        .args(["-p", "renderer", "-p", "zipper", "-p", "farm-cli"])
        // farm-testkit brings the features the test build has (png's), so these binaries share
        // every library with `cargo test` and nothing is compiled twice.
        .args(["-p", "farm-testkit"])
        .args(["--profile", profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!(
            "cargo build of the farm's binaries failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let bin = |name: &str| -> anyhow::Result<PathBuf> {
        let path = profile_dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(anyhow!("cargo build did not produce {}", path.display()))
        }
    };
    Ok(Bins {
        renderer: bin("renderer")?,
        zipper: bin("zipper")?,
        farm: bin("farm")?,
    })
}

// ---------------------------------------------------------------------------------------------
// The AWS CLI

/// The real `aws` CLI pointed at moto (or at a [`Proxy`] in front of it).
#[derive(Debug, Clone)]
pub struct Aws {
    env: Vec<(String, String)>,
}

impl Aws {
    /// A CLI using `env` (from [`Moto::env`]); no user configuration file is read.
    pub fn new(env: Vec<(String, String)>) -> Self {
        Self { env }
    }

    /// Runs `aws --endpoint-url <endpoint> <args> --output json` and returns its stdout; fails
    /// with its stderr. The endpoint is passed as a flag because AWS CLI v1 ignores
    /// `AWS_ENDPOINT_URL` for SQS in us-east-1.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        self.run_in(Path::new("."), args).await
    }

    /// [`Aws::run`] in the folder `dir`.
    pub async fn run_in(&self, dir: &Path, args: &[&str]) -> anyhow::Result<String> {
        let endpoint = env_value(&self.env, "AWS_ENDPOINT_URL")
            .ok_or_else(|| anyhow!("no AWS_ENDPOINT_URL in the environment"))?;
        let output = tokio::process::Command::new("aws")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--endpoint-url")
            .arg(endpoint)
            .args(args)
            .args(["--output", "json"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running the aws CLI (run scripts/setup.sh, then `source scripts/env.sh`)")?;
        if !output.status.success() {
            bail!(
                "aws {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// [`Aws::run`], its stdout read as JSON (`null` when empty).
    pub async fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let out = self.run(args).await?;
        if out.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&out).with_context(|| format!("aws {}: not JSON: {out}", args[0]))
    }
}

/// The value of `name` in a list of environment variables.
pub fn env_value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// S3 events

/// Completes a notification as moto delivers it into what real S3 sends.
///
/// moto leaves out `userIdentity`, `requestParameters`, `responseElements`, the bucket's
/// `ownerIdentity` and the object's `sequencer`, and writes `eventTime` without a time zone
/// (`2026-01-01T12:00:00.123456`); real S3 sends all of them, the time as
/// `2026-01-01T12:00:00.123Z`. `aws_lambda_events`' `S3Event` requires the first two and a zoned
/// time. Fields moto did send are kept as they are.
pub fn as_delivered_by_s3(moto_event: &Value) -> anyhow::Result<S3Event> {
    let mut event = moto_event.clone();
    let records = event
        .get_mut("Records")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| anyhow!("not an S3 event notification: {moto_event}"))?;
    for (n, record) in records.iter_mut().enumerate() {
        let record = record
            .as_object_mut()
            .ok_or_else(|| anyhow!("a record is not an object: {moto_event}"))?;
        record
            .entry("userIdentity")
            .or_insert_with(|| json!({"principalId": "AWS:AIDAE2EFARMUPLOADER"}));
        record
            .entry("requestParameters")
            .or_insert_with(|| json!({"sourceIPAddress": "203.0.113.7"}));
        record.entry("responseElements").or_insert_with(|| {
            json!({
                "x-amz-request-id": format!("E2E{n:013X}"),
                "x-amz-id-2": "e2eRequestId2/harnessCompletedThisEventAsRealS3SendsIt=",
            })
        });
        if let Some(time) = record.get_mut("eventTime") {
            if let Some(text) = time.as_str() {
                *time = Value::from(zoned_event_time(text));
            }
        }
        if let Some(s3) = record.get_mut("s3").and_then(Value::as_object_mut) {
            if let Some(bucket) = s3.get_mut("bucket").and_then(Value::as_object_mut) {
                bucket
                    .entry("ownerIdentity")
                    .or_insert_with(|| json!({"principalId": "A2E2EBUCKETOWNER"}));
            }
            if let Some(object) = s3.get_mut("object").and_then(Value::as_object_mut) {
                object
                    .entry("sequencer")
                    .or_insert_with(|| Value::from(format!("00{:014X}", n + 1)));
            }
        }
    }
    serde_json::from_value(event).context("the completed event does not read as an S3Event")
}

/// `2026-01-01T12:00:00.123456` -> `2026-01-01T12:00:00.123Z`; a zoned time is kept.
fn zoned_event_time(text: &str) -> String {
    let date_time = text.split('T').nth(1).unwrap_or("");
    if text.ends_with('Z') || date_time.contains(['+', '-']) {
        return text.to_owned();
    }
    match text.split_once('.') {
        Some((seconds, fraction)) => {
            let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
            format!("{seconds}.{millis}Z")
        }
        None => format!("{text}.000Z"),
    }
}

/// An SQS queue S3 notifies of `.blend` uploads and taggings.
#[derive(Debug, Clone)]
pub struct EventQueue {
    pub url: String,
    pub arn: String,
}

/// The bucket notification the farm's template sets up, sent to SQS instead of the Lambda:
/// `s3:ObjectCreated:*` and `s3:ObjectTagging:Put` on keys ending in `.blend`.
pub fn notification_configuration(queue_arn: &str) -> Value {
    json!({
        "QueueConfigurations": [{
            "Id": "farm-trigger",
            "QueueArn": queue_arn,
            "Events": ["s3:ObjectCreated:*", "s3:ObjectTagging:Put"],
            "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".blend"}]}},
        }]
    })
}

/// Creates an SQS queue and points the bucket's notification at it (both with the AWS CLI).
pub async fn notify_queue(aws: &Aws, bucket: &str, queue: &str) -> anyhow::Result<EventQueue> {
    let created = aws
        .json(&["sqs", "create-queue", "--queue-name", queue])
        .await?;
    let url = created["QueueUrl"]
        .as_str()
        .ok_or_else(|| anyhow!("CreateQueue returned no QueueUrl: {created}"))?
        .to_owned();
    let attributes = aws
        .json(&[
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            &url,
            "--attribute-names",
            "QueueArn",
        ])
        .await?;
    let arn = attributes["Attributes"]["QueueArn"]
        .as_str()
        .ok_or_else(|| anyhow!("no QueueArn: {attributes}"))?
        .to_owned();
    aws.run(&[
        "s3api",
        "put-bucket-notification-configuration",
        "--bucket",
        bucket,
        "--notification-configuration",
        &notification_configuration(&arn).to_string(),
    ])
    .await?;
    Ok(EventQueue { url, arn })
}

/// Receives every message waiting in the queue and returns the bodies that are S3 event
/// notifications, oldest event first. S3's `s3:TestEvent` (sent when the notification is
/// configured) is left out.
///
/// moto queues a notification before it answers the request that caused it, so what is not in
/// the queue now never will be. Two ReceiveMessage calls run at once (10 messages each at most)
/// until a round finds nothing. Received messages stay in flight for 10 minutes (their
/// visibility timeout), longer than any test, so none is received twice; they are not deleted,
/// which saves an AWS CLI start per 10 messages.
pub async fn receive_events(aws: &Aws, queue: &EventQueue) -> anyhow::Result<Vec<Value>> {
    const RECEIVERS: usize = 2;
    let mut events = Vec::new();
    loop {
        let mut receivers = JoinSet::new();
        for _ in 0..RECEIVERS {
            let (aws, url) = (aws.clone(), queue.url.clone());
            receivers.spawn(async move {
                let received = aws
                    .json(&[
                        "sqs",
                        "receive-message",
                        "--queue-url",
                        &url,
                        "--max-number-of-messages",
                        "10",
                        "--wait-time-seconds",
                        "0",
                        "--visibility-timeout",
                        "600",
                    ])
                    .await?;
                let messages = received["Messages"].as_array().cloned().unwrap_or_default();
                anyhow::Ok(messages)
            });
        }
        let mut round = 0;
        while let Some(received) = receivers.join_next().await {
            for message in received.context("a receiver panicked")?? {
                round += 1;
                let body = message["Body"]
                    .as_str()
                    .ok_or_else(|| anyhow!("a message without a body: {message}"))?;
                let body: Value =
                    serde_json::from_str(body).context("a message body is not JSON")?;
                if body.get("Records").is_some() {
                    events.push(body);
                }
            }
        }
        if round == 0 {
            break;
        }
    }
    events.sort_by_key(|e| {
        e["Records"][0]["eventTime"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    });
    Ok(events)
}

// ---------------------------------------------------------------------------------------------
// The farm on moto

/// Opens an [`S3Storage`] per bucket named in an event, as the Lambda binary does.
#[derive(Debug, Clone)]
pub struct S3Buckets(pub aws_sdk_s3::Client);

impl Buckets for S3Buckets {
    type Storage = S3Storage;
    fn open(&self, bucket: &str) -> S3Storage {
        S3Storage::new(self.0.clone(), bucket)
    }
}

/// The trigger's dependencies as its binary builds them, on moto.
pub type TriggerDeps = Deps<S3Buckets, BatchScheduler>;

/// A job as AWS Batch holds it, read back from moto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedJob {
    pub id: String,
    pub name: String,
    pub status: String,
    pub definition: String,
    /// Children of an array job; `None` for a plain job.
    pub array_size: Option<usize>,
    /// The container's environment as DescribeJobs reports it: the submitted overrides (and the
    /// job definition's variables, none in the tests' definitions). The `AWS_BATCH_*` variables
    /// Batch adds are left out: [`Farm::spawn`] sets them per child as Batch does.
    pub env: Vec<(String, String)>,
    pub depends_on: Vec<String>,
}

impl SubmittedJob {
    /// The value of one of the job's environment variables.
    pub fn var(&self, name: &str) -> Option<&str> {
        env_value(&self.env, name)
    }

    /// The array indexes Batch would start: `[None]` for a plain job.
    pub fn indexes(&self) -> Vec<Option<usize>> {
        match self.array_size {
            Some(size) => (0..size).map(Some).collect(),
            None => vec![None],
        }
    }
}

/// A moto server with the farm's bucket, notification queue and Batch resources.
#[derive(Debug)]
pub struct Farm {
    pub moto: Moto,
    pub bucket: String,
    pub batch_env: BatchEnv,
    pub queue: EventQueue,
    pub s3: aws_sdk_s3::Client,
    pub batch: aws_sdk_batch::Client,
    pub trigger: TriggerDeps,
    /// Scratch space of the test: scenes, downloads, the containers' work folders.
    pub dir: tempfile::TempDir,
}

impl Farm {
    /// Uploads `scene` to `key` with the AWS CLI and its tags in the same request, as `farm
    /// submit` does.
    pub async fn upload_tagged(&self, key: &str, scene: &Path, tagging: &str) {
        self.aws()
            .run(&[
                "s3api",
                "put-object",
                "--bucket",
                &self.bucket,
                "--key",
                key,
                "--body",
                scene.to_str().unwrap(),
                "--tagging",
                tagging,
            ])
            .await
            .unwrap();
    }

    /// Starts moto and creates the bucket (with the AWS CLI), its notification to a new SQS
    /// queue, and the Batch compute environment, queue and job definitions.
    pub async fn start(bucket: &str) -> anyhow::Result<Farm> {
        let moto = Moto::start().await?;
        let aws = Aws::new(moto.env());
        aws.run(&["s3api", "create-bucket", "--bucket", bucket])
            .await?;
        let queue = notify_queue(&aws, bucket, "farm-trigger-events").await?;
        let batch_env = moto.batch_env().await?;
        let s3 = moto.s3();
        let batch = moto.batch();
        let trigger = Deps {
            buckets: S3Buckets(s3.clone()),
            scheduler: BatchScheduler::new(
                batch.clone(),
                BatchTargets {
                    queue: batch_env.queue.clone(),
                    render_definition: batch_env.render_definition.clone(),
                    zip_definition: batch_env.zip_definition.clone(),
                },
            ),
            max_frames: trigger_lambda::handler::DEFAULT_MAX_FRAMES,
            task_slots: None,
            read_budget: trigger_lambda::READ_BUDGET,
            shared_prefixes: Default::default(),
        };
        Ok(Farm {
            moto,
            bucket: bucket.to_owned(),
            batch_env,
            queue,
            s3,
            batch,
            trigger,
            dir: tempfile::tempdir()?,
        })
    }

    /// The AWS CLI on this moto.
    pub fn aws(&self) -> Aws {
        Aws::new(self.moto.env())
    }

    /// A folder of its own under the test's scratch space.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes a test scene `<name>.blend` with Blender.
    pub fn scene(&self, name: &str, options: &SceneOptions) -> PathBuf {
        make_scene(self.dir.path(), name, options).expect("blender makes the test scene")
    }

    /// Takes every S3 event waiting in the queue and hands each, completed as real S3 sends it,
    /// to the trigger's handler, one invocation per message as Lambda does. Returns each event
    /// with what the handler made of it.
    pub async fn deliver(&self) -> anyhow::Result<Vec<(S3Event, EventReport)>> {
        let mut delivered = Vec::new();
        for body in receive_events(&self.aws(), &self.queue).await? {
            let event = as_delivered_by_s3(&body)?;
            let report = self.invoke(&event).await?;
            delivered.push((event, report));
        }
        Ok(delivered)
    }

    /// One invocation of the trigger's handler.
    pub async fn invoke(&self, event: &S3Event) -> anyhow::Result<EventReport> {
        handle_event(&self.trigger, event.clone())
            .await
            .map_err(|e| anyhow!("the trigger failed: {e}"))
    }

    /// Every job on the farm's queue, in every status, oldest first. Array children are left
    /// out (moto lists them on the queue; Batch lists them only under their parent).
    pub async fn jobs(&self) -> anyhow::Result<Vec<SubmittedJob>> {
        let mut ids = Vec::new();
        for status in JobStatus::values() {
            let mut token = None;
            loop {
                let page = self
                    .batch
                    .list_jobs()
                    .job_queue(&self.batch_env.queue)
                    .job_status(JobStatus::from(*status))
                    .set_next_token(token)
                    .send()
                    .await
                    .context("ListJobs")?;
                for summary in page.job_summary_list() {
                    let id = summary.job_id().unwrap_or_default().to_owned();
                    if !id.contains(':') && !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        let mut jobs = Vec::new();
        for batch in ids.chunks(100) {
            let described = self
                .batch
                .describe_jobs()
                .set_jobs(Some(batch.to_vec()))
                .send()
                .await
                .context("DescribeJobs")?;
            for job in described.jobs() {
                let mut env: Vec<(String, String)> = Vec::new();
                for pair in job.container().map(|c| c.environment()).unwrap_or_default() {
                    let (Some(name), Some(value)) = (pair.name(), pair.value()) else {
                        continue;
                    };
                    if !name.starts_with("AWS_BATCH_") && env_value(&env, name).is_none() {
                        env.push((name.to_owned(), value.to_owned()));
                    }
                }
                jobs.push((
                    job.created_at().unwrap_or_default(),
                    SubmittedJob {
                        id: job.job_id().unwrap_or_default().to_owned(),
                        name: job.job_name().unwrap_or_default().to_owned(),
                        status: job
                            .status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        definition: job.job_definition().unwrap_or_default().to_owned(),
                        array_size: job
                            .array_properties()
                            .and_then(|a| a.size())
                            .and_then(|s| usize::try_from(s).ok()),
                        env,
                        depends_on: job
                            .depends_on()
                            .iter()
                            .filter_map(|d| d.job_id().map(str::to_owned))
                            .collect(),
                    },
                ));
            }
        }
        jobs.sort_by_key(|(created, _)| *created);
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }

    /// The render job and the zip job of `key` submitted most recently.
    pub async fn jobs_of(&self, key: &str) -> anyhow::Result<(SubmittedJob, SubmittedJob)> {
        let jobs: Vec<SubmittedJob> = self
            .jobs()
            .await?
            .into_iter()
            .filter(|j| j.var(farm_core::env::KEY) == Some(key))
            .collect();
        // The movie job runs on the render job definition too; only it is told the movie.
        let render = jobs
            .iter()
            .rev()
            .find(|j| {
                j.definition == self.batch_env.render_definition
                    && j.var(farm_core::env::MOVIE).is_none()
            })
            .ok_or_else(|| anyhow!("no render job for {key}: {jobs:?}"))?;
        let zip = jobs
            .iter()
            .rev()
            .find(|j| j.definition == self.batch_env.zip_definition)
            .ok_or_else(|| anyhow!("no zip job for {key}: {jobs:?}"))?;
        Ok((render.clone(), zip.clone()))
    }

    /// The movie job of `key` submitted most recently (a movie scene's), if any.
    pub async fn movie_job_of(&self, key: &str) -> anyhow::Result<Option<SubmittedJob>> {
        Ok(self.jobs().await?.into_iter().rev().find(|j| {
            j.var(farm_core::env::KEY) == Some(key) && j.var(farm_core::env::MOVIE).is_some()
        }))
    }

    /// Starts `program` as Batch would start the job's container (or the array child `index`):
    /// a clean environment with the job's variables, the job definition's own
    /// (`FARM_WORK_DIR`, `FARM_LOG_FORMAT=json`), Batch's (`AWS_BATCH_JOB_ID`,
    /// `AWS_BATCH_JOB_ARRAY_INDEX` on a child) and the credentials and endpoint in `aws_env`
    /// (the task role's, here moto's or a [`Proxy`]'s). `extra` comes last (e.g. `BLENDER`).
    ///
    /// The process leads its own process group, so [`Running::kill_container`] takes Blender
    /// down with it, as stopping a container does.
    pub fn spawn(
        &self,
        program: &Path,
        job: &SubmittedJob,
        index: Option<usize>,
        aws_env: &[(String, String)],
        extra: &[(&str, &str)],
    ) -> Running {
        let label = match index {
            Some(i) => format!("{}:{i}", job.id),
            None => job.id.clone(),
        };
        let scratch = self.path(&format!(
            "scratch-{}-{}",
            label.replace(':', "-"),
            uuid_like()
        ));
        let mut command = tokio::process::Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(aws_env.iter().map(|(k, v)| (k, v)))
            .env(farm_core::env::WORK_DIR, &scratch)
            .env(farm_core::env::LOG_FORMAT, "json")
            // Several containers share this machine's cores; Fargate's cgroup would cap them.
            .env(farm_core::env::THREADS, "1")
            .envs(job.env.iter().map(|(k, v)| (k, v)))
            .env(farm_core::env::BATCH_JOB_ID, &label);
        if let Some(index) = index {
            command.env(farm_core::env::ARRAY_INDEX, index.to_string());
        }
        if let Some(blender) = std::env::var_os("BLENDER") {
            command.env("BLENDER", blender);
        }
        command
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Running {
            child,
            label,
            scratch,
        }
    }

    /// Runs every child of a render job at once, as Batch would, and waits for all of them.
    pub async fn run_render(
        &self,
        job: &SubmittedJob,
        aws_env: &[(String, String)],
        extra: &[(&str, &str)],
    ) -> Vec<Exited> {
        let running: Vec<Running> = job
            .indexes()
            .into_iter()
            .map(|index| self.spawn(&bins().renderer, job, index, aws_env, extra))
            .collect();
        let mut exited = Vec::new();
        for run in running {
            exited.push(run.wait().await);
        }
        exited
    }

    /// Runs the zip job's container and waits for it.
    pub async fn run_zip(&self, job: &SubmittedJob, aws_env: &[(String, String)]) -> Exited {
        self.spawn(&bins().zipper, job, None, aws_env, &[])
            .wait()
            .await
    }

    /// Every object under `prefix`, with its ETag, size and modification time.
    pub async fn objects(&self, prefix: &str) -> anyhow::Result<BTreeMap<String, ObjectInfo>> {
        let mut objects = BTreeMap::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .context("ListObjectsV2")?;
            for object in page.contents() {
                objects.insert(
                    object.key().unwrap_or_default().to_owned(),
                    ObjectInfo {
                        etag: object.e_tag().unwrap_or_default().to_owned(),
                        size: object.size().unwrap_or_default(),
                        last_modified: object
                            .last_modified()
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                    },
                );
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(objects)
    }

    /// The body of an object.
    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("GetObject {key}"))?;
        Ok(object.body.collect().await?.to_vec())
    }

    /// Multipart uploads started and neither completed nor aborted: `(key, upload id)`.
    pub async fn open_uploads(&self) -> anyhow::Result<Vec<(String, String)>> {
        let listed = self
            .s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .context("ListMultipartUploads")?;
        Ok(listed
            .uploads()
            .iter()
            .map(|u| {
                (
                    u.key().unwrap_or_default().to_owned(),
                    u.upload_id().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }
}

/// What a listing says of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub etag: String,
    pub size: i64,
    pub last_modified: String,
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------------
// Containers

/// A running container: the binary, in its own process group.
#[derive(Debug)]
pub struct Running {
    child: tokio::process::Child,
    /// The Batch job id it runs as (`<id>:<index>` for an array child).
    pub label: String,
    /// Its work folder (`FARM_WORK_DIR`), which Blender's command line names.
    pub scratch: PathBuf,
}

impl Running {
    /// Whether the process has ended.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The container is stopped hard (SIGKILL to the whole process group, Blender included),
    /// as when a Spot instance disappears or the task runs out of memory.
    pub fn kill_container(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }

    /// Waits for the process and collects its output.
    pub async fn wait(self) -> Exited {
        let label = self.label;
        let output = self
            .child
            .wait_with_output()
            .await
            .unwrap_or_else(|e| panic!("waiting for {label}: {e}"));
        Exited {
            label,
            code: output.status.code(),
            log: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// How a container ended.
#[derive(Debug, Clone)]
pub struct Exited {
    pub label: String,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    /// Its stderr: JSON log lines.
    pub log: String,
}

impl Exited {
    /// The log lines that are JSON objects (tracing's JSON format).
    pub fn events(&self) -> Vec<Value> {
        self.log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The fields of every log line whose message is `message`.
    pub fn fields_of(&self, message: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["fields"]["message"] == message)
            .map(|e| e["fields"].clone())
            .collect()
    }

    /// The frames this run uploaded (from its `frame uploaded` lines).
    pub fn uploaded_frames(&self) -> Vec<i32> {
        let mut frames: Vec<i32> = self
            .fields_of("frame uploaded")
            .iter()
            .filter_map(|f| f["frame"].as_i64())
            .filter_map(|f| i32::try_from(f).ok())
            .collect();
        frames.sort_unstable();
        frames
    }

    /// Panics with the log unless the process exited with `code`.
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "{} exited {:?}, expected {code}; its log:\n{}",
            self.label,
            self.code,
            self.log
        );
    }
}

/// Processes whose command line names `path` (Blender names the scene in the work folder).
pub fn processes_naming(path: &Path) -> Vec<String> {
    let found = std::process::Command::new("pgrep")
        .arg("-f")
        .arg(path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    found.split_whitespace().map(str::to_owned).collect()
}

/// Waits up to 5 seconds for every process naming `path` to be gone; returns those left.
pub async fn wait_until_gone(path: &Path) -> Vec<String> {
    for _ in 0..50 {
        if processes_naming(path).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    processes_naming(path)
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy that can be cut

/// A TCP proxy on 127.0.0.1 in front of moto. [`Proxy::cut`] closes its listening socket (new
/// connections are refused) and resets every open connection; [`Proxy::restore`] listens again
/// on the same port.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    commands: mpsc::Sender<(bool, oneshot::Sender<()>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding a free port to `upstream` (`http://127.0.0.1:<port>`).
    pub async fn start(upstream: &str) -> anyhow::Result<Proxy> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("{upstream} is not http://<ip>:<port>"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (commands, receiver) = mpsc::channel(4);
        let task = tokio::spawn(supervise(Some(listener), addr, upstream, receiver));
        Ok(Proxy {
            addr,
            commands,
            task,
        })
    }

    /// `http://127.0.0.1:<port>` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `env` (from [`Moto::env`]) with the endpoint replaced by the proxy's.
    pub fn env(&self, env: &[(String, String)]) -> Vec<(String, String)> {
        env.iter()
            .map(|(k, v)| {
                if k == "AWS_ENDPOINT_URL" {
                    (k.clone(), self.endpoint())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect()
    }

    /// Refuses new connections and resets the open ones; returns once that is so.
    pub async fn cut(&self) {
        self.command(false).await;
    }

    /// Accepts connections again; returns once it listens.
    pub async fn restore(&self) {
        self.command(true).await;
    }

    async fn command(&self, up: bool) {
        let (done, wait) = oneshot::channel();
        self.commands
            .send((up, done))
            .await
            .expect("the proxy task is running");
        wait.await.expect("the proxy task answers");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn supervise(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut commands: mpsc::Receiver<(bool, oneshot::Sender<()>)>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = accept(listener.as_ref()) => {
                if let Ok((client, _)) = accepted {
                    // Dropping the socket then sends a reset, not an orderly close.
                    let _ = client.set_zero_linger();
                    connections.spawn(forward(client, upstream));
                }
            }
            command = commands.recv() => {
                let Some((up, done)) = command else { return };
                if up && listener.is_none() {
                    listener = Some(bind_again(addr).await);
                } else if !up {
                    listener = None;
                    connections.abort_all();
                    while connections.join_next().await.is_some() {}
                }
                let _ = done.send(());
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn bind_again(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the proxy could not listen on {addr} again");
}

async fn forward(mut client: TcpStream, upstream: SocketAddr) {
    if let Ok(mut server) = TcpStream::connect(upstream).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Width and height from a PNG's IHDR chunk, if `bytes` starts like a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some((word(16), word(20)))
}

/// Whether `bytes` is a whole PNG: the signature, an IHDR first and an IEND chunk last, every
/// chunk's length inside the file.
pub fn is_whole_png(bytes: &[u8]) -> bool {
    if png_size(bytes).is_none() {
        return false;
    }
    let mut at = 8;
    while at + 12 <= bytes.len() {
        let length =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let kind = &bytes[at + 4..at + 8];
        let end = at + 12 + length;
        if end > bytes.len() {
            return false;
        }
        if kind == b"IEND" {
            return end == bytes.len();
        }
        at = end;
    }
    false
}

/// Tests a zip with `python3 -m zipfile -t` and returns its entries in archive order, each with
/// its bytes (extracted with Python's `zipfile`).
pub async fn read_zip(zip: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let tested = tokio::process::Command::new("python3")
        .args(["-m", "zipfile", "-t"])
        .arg(zip)
        .output()
        .await
        .context("running python3 -m zipfile -t")?;
    if !tested.status.success() {
        bail!(
            "python3 -m zipfile -t {} failed: {}{}",
            zip.display(),
            String::from_utf8_lossy(&tested.stdout),
            String::from_utf8_lossy(&tested.stderr)
        );
    }
    let out = zip.with_extension("unpacked");
    let listed = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             z.extractall(sys.argv[2])\n\
             print(json.dumps(z.namelist()))",
        )
        .arg(zip)
        .arg(&out)
        .output()
        .await
        .context("running python3 zipfile")?;
    if !listed.status.success() {
        bail!(
            "reading {} with python failed: {}",
            zip.display(),
            String::from_utf8_lossy(&listed.stderr)
        );
    }
    let names: Vec<String> = serde_json::from_slice(&listed.stdout)?;
    let mut entries = Vec::new();
    for name in names {
        let bytes = std::fs::read(out.join(&name))
            .with_context(|| format!("reading the extracted {name}"))?;
        entries.push((name, bytes));
    }
    Ok(entries)
}

/// Checks an archive's entries against the frames it must hold, in order: named `0001.png`...,
/// whole PNGs of `size`, each showing its own frame number ([`frame_code`]).
pub fn assert_frames(entries: &[(String, Vec<u8>)], frames: &[i32], size: (u32, u32)) {
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    let expected: Vec<String> = frames
        .iter()
        .map(|&f| farm_core::layout::frame_file_name(f, "png"))
        .collect();
    assert_eq!(names, expected, "the archive's entries");
    for ((name, bytes), &frame) in entries.iter().zip(frames) {
        assert!(is_whole_png(bytes), "{name} is not a whole PNG");
        assert_eq!(png_size(bytes), Some(size), "{name}: image size");
        assert_eq!(
            frame_code(bytes).unwrap_or_else(|e| panic!("{name}: {e:#}")),
            frame,
            "{name} shows another frame of the scene"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_gain_a_zone() {
        assert_eq!(
            zoned_event_time("2026-11-24T02:17:31.503941"),
            "2026-11-24T02:17:31.503Z"
        );
        assert_eq!(
            zoned_event_time("2026-11-24T02:17:31"),
            "2026-11-24T02:17:31.000Z"
        );
        assert_eq!(
            zoned_event_time("2026-11-24T02:17:31.5Z"),
            "2026-11-24T02:17:31.5Z"
        );
        assert_eq!(
            zoned_event_time("2026-11-24T02:17:31+01:00"),
            "2026-11-24T02:17:31+01:00"
        );
    }

    #[test]
    fn png_checks() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let chunk = |png: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(kind);
            png.extend_from_slice(data);
            png.extend_from_slice(&[0; 4]);
        };
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&32u32.to_be_bytes());
        ihdr.extend_from_slice(&24u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &[1, 2, 3]);
        let truncated = png.clone();
        chunk(&mut png, b"IEND", &[]);
        assert_eq!(png_size(&png), Some((32, 24)));
        assert!(is_whole_png(&png));
        assert!(!is_whole_png(&truncated));
        assert!(!is_whole_png(&png[..png.len() - 1]));
        assert_eq!(png_size(b"not a png at all, no"), None);
    }
}
