//! `submit`, `status`, `download`, `cancel` and `retry` against moto_server, with the trigger's
//! own handler (`trigger_lambda::handle_event`) turning the upload into jobs, as the Lambda does.
//!
//! moto runs no containers. In its docker-free mode (the test kit's default) every job is
//! SUCCEEDED as soon as it is submitted. In its docker mode with a timed state transition, jobs
//! walk through SUBMITTED, PENDING, RUNNABLE, STARTING and RUNNING, one state per interval; then
//! a plain job (and each array child) FAILS because there is no Docker to run it, while the
//! array parent stays RUNNING. The tests use both to see every state `farm status` can meet.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::{
    assert_frames_show_their_number, assert_zip_holds, farm, frame_files, names, run, scene, Run,
};
use farm_core::{FrameList, JobKeys};
use farm_io::{BatchScheduler, BatchTargets, S3Storage};
use farm_testkit::{unique_prefix, BatchEnv, FakeDocker, Moto};
use serde_json::Value;
use trigger_lambda::{handle_event, parse_event, Deps, RecordOutcome};

const BUCKET: &str = "farm-cli-test";

struct Fixture {
    moto: Moto,
    batch: BatchEnv,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Self {
        Self::with(Moto::start().await.expect("moto_server starts")).await
    }

    /// A fixture whose moto runs Batch jobs in its docker mode through the stand-in Docker
    /// API: each job walks SUBMITTED .. RUNNING, one state a second, and stays RUNNING until
    /// `docker.release()`, then ends SUCCEEDED (or FAILED, with `docker.set_exit_code`).
    async fn with_docker(docker: &FakeDocker) -> Self {
        let moto = Moto::start_with_env(&[("DOCKER_HOST", docker.host())])
            .await
            .expect("moto_server starts");
        let fixture = Self::with(moto).await;
        fixture.moto_api("/moto-api/config", r#"{"batch":{"use_docker":true}}"#);
        fixture.moto_api(
            "/moto-api/state-manager/set-transition",
            r#"{"model_name":"batch::job","transition":{"progression":"time","seconds":1}}"#,
        );
        fixture
    }

    async fn with(moto: Moto) -> Self {
        moto.bucket(BUCKET).await.expect("bucket");
        let batch = moto.batch_env().await.expect("batch setup");
        Self {
            moto,
            batch,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `farm` pointed at moto, with the Batch targets `farm retry` reads from the environment.
    fn farm(&self) -> Command {
        let mut command = farm();
        command.envs(self.moto.env());
        command
            .env("JOB_QUEUE_ARN", &self.batch.queue)
            .env("JOB_DEFINITION_ARN", &self.batch.render_definition)
            .env("ZIP_JOB_DEFINITION_ARN", &self.batch.zip_definition);
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.farm().args(args))
    }

    fn status_json(&self, key: &str) -> Value {
        let result = self.run(&["status", key, "--bucket", BUCKET, "--json"]);
        serde_json::from_str(result.ok()).unwrap_or_else(|e| panic!("{e}: {result:#?}"))
    }

    fn status_text(&self, key: &str) -> String {
        self.run(&["status", key, "--bucket", BUCKET])
            .ok()
            .to_owned()
    }

    /// What the trigger Lambda does on the upload's ObjectCreated event.
    async fn trigger(&self, key: &str) -> RecordOutcome {
        let s3 = self.moto.s3();
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        let event = serde_json::json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-24T10:15:30.123Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUSER"},
            "requestParameters": {"sourceIPAddress": "192.0.2.10"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "farm-trigger",
                "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
                "object": {
                    "key": key,
                    "size": head.content_length().unwrap_or(0),
                    "eTag": head.e_tag().unwrap_or_default().trim_matches('"'),
                    "sequencer": "0062E99A88DC407460"
                }
            }
        }]});
        let for_buckets = s3.clone();
        let deps = Deps {
            buckets: move |bucket: &str| S3Storage::new(for_buckets.clone(), bucket),
            scheduler: self.scheduler(),
            max_frames: 10_000,
            task_slots: None,
            read_budget: trigger_lambda::READ_BUDGET,
            shared_prefixes: Default::default(),
        };
        let report = handle_event(&deps, parse_event(event).unwrap())
            .await
            .expect("the trigger handles the event");
        assert_eq!(report.records.len(), 1, "{report:?}");
        report.records[0].clone()
    }

    fn scheduler(&self) -> BatchScheduler {
        BatchScheduler::new(
            self.moto.batch(),
            BatchTargets {
                queue: self.batch.queue.clone(),
                render_definition: self.batch.render_definition.clone(),
                zip_definition: self.batch.zip_definition.clone(),
            },
        )
    }

    fn storage(&self) -> S3Storage {
        S3Storage::new(self.moto.s3(), BUCKET)
    }

    /// Creates a CloudFormation stack from `template` (moto has it complete on return).
    async fn create_stack(&self, name: &str, template: Value) {
        self.moto
            .cloudformation()
            .create_stack()
            .stack_name(name)
            .template_body(template.to_string())
            .send()
            .await
            .unwrap();
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.moto
            .s3()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }

    /// A frame as the renderer uploads it for the current upload of `source`: with the source's
    /// ETag and the scene's format recorded (the frame scan counts only such frames).
    /// moto's docker mode with timed transitions: each job moves one state every 5 seconds
    /// (SUBMITTED .. RUNNING), then fails for want of Docker (an array parent stays RUNNING).
    fn jobs_walk_their_states(&self) {
        self.moto_api("/moto-api/config", r#"{"batch":{"use_docker":true}}"#);
        self.moto_api(
            "/moto-api/state-manager/set-transition",
            r#"{"model_name":"batch::job","transition":{"progression":"time","seconds":5}}"#,
        );
    }

    /// A stand-in .blend uploaded at a fresh key tagged `frames=1-4&chunk=2` and turned into a
    /// job by the trigger: the key and the job's source ETag.
    async fn stand_in_job(&self, name: &str) -> (String, String) {
        let key = format!("{}{name}.blend", unique_prefix(name));
        self.moto
            .s3()
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .tagging("frames=1-4&chunk=2")
            .body(ByteStream::from_static(
                b"BLENDER-v304RENDH\x00\x00\x00 stand-in scene body",
            ))
            .send()
            .await
            .unwrap();
        submitted(&self.trigger(&key).await);
        let etag = self.manifest(&key).await["etag"]
            .as_str()
            .unwrap()
            .to_owned();
        (key, etag)
    }

    /// The version of the job of `source` (its source ETag, format, engine and dependency
    /// list, from `job.json`), which the renderer stamps on frames and the zipper checks.
    async fn job_version(&self, source: &str) -> farm_jobs::OutputVersion {
        let manifest: farm_core::manifest::JobManifest =
            farm_core::storage::get_json(&self.storage(), &JobKeys::new(source).manifest())
                .await
                .unwrap();
        farm_jobs::JobTicket::from_manifest(&manifest)
            .unwrap()
            .version()
    }

    /// Puts a frame as the renderer does for the job of `source`.
    async fn put_frame(&self, source: &str, key: &str, body: Vec<u8>) {
        let version = self.job_version(source).await;
        let mut request = self
            .moto
            .s3()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body));
        for (name, value) in version.metadata() {
            request = request.metadata(name, value);
        }
        request.send().await.unwrap();
    }

    async fn tags(&self, key: &str) -> BTreeMap<String, String> {
        let output = self
            .moto
            .s3()
            .get_object_tagging()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        output
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }

    async fn manifest(&self, key: &str) -> Value {
        let object = self
            .moto
            .s3()
            .get_object()
            .bucket(BUCKET)
            .key(JobKeys::new(key).manifest())
            .send()
            .await
            .unwrap();
        let body = object.body.collect().await.unwrap().into_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    /// The `FARM_FRAMES` a Batch job was submitted with.
    async fn job_frames(&self, id: &str) -> String {
        let jobs = self
            .moto
            .batch()
            .describe_jobs()
            .jobs(id)
            .send()
            .await
            .unwrap();
        let job = &jobs.jobs()[0];
        job.container()
            .unwrap()
            .environment()
            .iter()
            .find(|kv| kv.name() == Some(farm_core::env::FRAMES))
            .and_then(|kv| kv.value())
            .unwrap()
            .to_owned()
    }

    /// Posts JSON to moto's own API (configuration, state transitions).
    fn moto_api(&self, path: &str, body: &str) {
        let address = self.moto.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 20"), "{answer}");
    }
}

fn submitted(outcome: &RecordOutcome) -> (String, String) {
    match outcome {
        RecordOutcome::Submitted {
            render_job_id,
            zip_job_id,
            ..
        } => (render_job_id.clone(), zip_job_id.clone()),
        other => panic!("expected a submission: {other:?}"),
    }
}

/// Renders frames of the scene locally, to upload as if the farm had rendered them.
fn local_frames(blend: &Path, out: &Path, frames: &str) -> Vec<(i32, PathBuf)> {
    run(farm()
        .args(["render", "--frames", frames, "--out"])
        .arg(out)
        .arg(blend))
    .ok();
    frame_files(&out.join("frames"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_status_download_retry_and_cancel_a_job_that_succeeds() {
    let farm = Fixture::start().await;
    let blend = scene(farm.dir.path(), "shot", 1, 6, 1);
    let key = format!("{}shot.blend", unique_prefix("cli"));
    let blend_arg = blend.to_str().unwrap();

    // Submit: validated, uploaded with its tags in the same request.
    let submit = farm.run(&[
        "submit", blend_arg, "--bucket", BUCKET, "--key", &key, "--frames", "1-6", "--chunk", "2",
    ]);
    let stdout = submit.ok();
    assert!(stdout.contains(&format!("key: {key}")), "{stdout}");
    assert!(
        stdout.contains(&format!("farm status {key} --bucket {BUCKET}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("farm download {key} --bucket {BUCKET}")),
        "{stdout}"
    );
    assert!(stdout.contains("6 frame(s) in 3 task(s)"), "{stdout}");
    let tags = farm.tags(&key).await;
    assert_eq!(tags.get("frames").map(String::as_str), Some("1-6"));
    assert_eq!(tags.get("chunk").map(String::as_str), Some("2"));

    // Before the trigger ran there is no job yet.
    let early = farm.run(&["status", &key, "--bucket", BUCKET]);
    assert!(early.one_line_error().contains("no job for"));

    // The trigger reads the tags farm wrote and submits the render and zip jobs.
    let (render_id, zip_id) = submitted(&farm.trigger(&key).await);
    let status = farm.status_json(&key);
    assert_eq!(status["status"], "submitted");
    assert_eq!(status["render_job"]["id"], render_id.as_str());
    assert_eq!(status["render_job"]["state"], "SUCCEEDED");
    assert_eq!(status["render_job"]["array"]["size"], 3);
    assert_eq!(status["render_job"]["array"]["succeeded"], 3);
    assert_eq!(status["zip_job"]["id"], zip_id.as_str());
    assert_eq!(status["zip_job"]["state"], "SUCCEEDED");
    assert_eq!(status["frames"]["total"], 6);
    assert_eq!(status["frames"]["pending"], 6);
    assert!(status["archive"].is_null());
    assert_eq!(status["complete"], false);
    let text = farm.status_text(&key);
    assert!(
        text.contains(&format!(
            "render    SUCCEEDED  job {render_id}, 3 tasks: 3 succeeded"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("zip       SUCCEEDED  job {zip_id}")),
        "{text}"
    );
    assert!(text.contains("0/6 done, 0 failed, 6 pending"), "{text}");
    assert!(text.contains("archive   not yet"), "{text}");

    // Frames 1-3 rendered, frame 4 failed with a log, 5 and 6 pending.
    let keys = JobKeys::new(key.as_str());
    let local = local_frames(&blend, &farm.dir.path().join("local"), "1-6");
    for (frame, path) in &local[..3] {
        farm.put_frame(
            &key,
            &keys.frame(*frame, "png"),
            std::fs::read(path).unwrap(),
        )
        .await;
    }
    farm.put(&keys.frame(42, "png"), b"not in the job".to_vec())
        .await;
    farm.put(
        &keys.log(4),
        b"Read blend\nFARM_FRAME 4\nFra:4 Mem:10M\nError: Out of memory in CUDA\nBlender quit\n"
            .to_vec(),
    )
    .await;
    farm.put(&keys.log(2), b"an old failure, rendered since\n".to_vec())
        .await;
    let status = farm.status_json(&key);
    assert_eq!(status["frames"]["done"], 3);
    assert_eq!(status["frames"]["failed"], 1);
    assert_eq!(status["frames"]["pending"], 2);
    assert_eq!(status["failed_frames"][0]["frame"], 4);
    assert_eq!(status["failed_frames"][0]["log"], keys.log(4).as_str());
    assert_eq!(
        status["failed_frames"][0]["reason"],
        "Error: Out of memory in CUDA"
    );
    let text = farm.status_text(&key);
    assert!(text.contains("3/6 done, 1 failed, 2 pending"), "{text}");
    assert!(
        text.contains(&format!(
            "failed    frame 4: Error: Out of memory in CUDA (log s3://{BUCKET}/{})",
            keys.log(4)
        )),
        "{text}"
    );

    // No archive yet: download says so.
    let out = farm.dir.path().join("download");
    let early = farm.run(&[
        "download",
        &key,
        "--bucket",
        BUCKET,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(early.one_line_error().contains("there is no archive"));

    // Retry: a render job for the missing frames only, a zip job for all of them.
    let retry = farm.run(&["retry", &key, "--bucket", BUCKET]);
    let stdout = retry.ok();
    assert!(
        stdout.contains("retry of 3 missing frame(s) of 6 (4-6)"),
        "{stdout}"
    );
    let manifest = farm.manifest(&key).await;
    assert_eq!(manifest["frames"], "1-6");
    let new_render = manifest["render_job_id"].as_str().unwrap().to_owned();
    let new_zip = manifest["zip_job_id"].as_str().unwrap().to_owned();
    assert_ne!(new_render, render_id);
    assert_eq!(farm.job_frames(&new_render).await, "4-6");
    assert_eq!(farm.job_frames(&new_zip).await, "1-6");

    // The retried frames arrive and the zipper makes the archive.
    for (frame, path) in &local[3..] {
        farm.put_frame(
            &key,
            &keys.frame(*frame, "png"),
            std::fs::read(path).unwrap(),
        )
        .await;
    }
    let frames = FrameList::parse("1-6", 100).unwrap();
    zipper::zip_frames(
        &farm.storage(),
        &keys,
        &frames,
        &farm.job_version(&key).await,
        &zipper::ZipOptions::default(),
        &|_| {},
    )
    .await
    .expect("the zipper makes the archive");
    let status = farm.status_json(&key);
    assert_eq!(status["frames"]["done"], 6);
    assert_eq!(status["frames"]["failed"], 0);
    assert!(status["failed_frames"].is_null());
    assert_eq!(status["archive"]["key"], keys.zip().as_str());
    assert_eq!(status["complete"], true);
    let text = farm.status_text(&key);
    assert!(
        text.contains(&format!("archive   s3://{BUCKET}/{}", keys.zip())),
        "{text}"
    );
    let nothing = farm.run(&["retry", &key, "--bucket", BUCKET]);
    assert!(nothing.ok().contains("nothing is missing"), "{nothing:#?}");

    // Download and unpack.
    let download = farm.run(&[
        "download",
        &key,
        "--bucket",
        BUCKET,
        "--out",
        out.to_str().unwrap(),
        "--unpack",
    ]);
    let stdout = download.ok();
    assert!(stdout.contains("frames.zip"), "{stdout}");
    assert_zip_holds(&out.join("frames.zip"), &names(&[1, 2, 3, 4, 5, 6]));
    let unpacked = frame_files(&out.join("frames"));
    assert_eq!(unpacked.len(), 6);
    assert_frames_show_their_number(&unpacked);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(leftovers, [".farm-download", "frames", "frames.zip"]);

    // The same job downloads again over its own files; a local render's are kept unless
    // --force, and the default folder is `<name>.cloud/`, beside the local `<name>.farm/`.
    let again = ["download", &key, "--bucket", BUCKET, "--unpack"];
    farm.run(&[&again[..], &["--out", out.to_str().unwrap()]].concat())
        .ok();
    let local = farm.dir.path().join("local.farm");
    std::fs::create_dir_all(local.join("frames")).unwrap();
    std::fs::write(local.join("frames.zip"), b"a local render's archive").unwrap();
    std::fs::write(local.join("frames/0001.png"), b"a local frame").unwrap();
    let refused = farm.run(&[&again[..], &["--out", local.to_str().unwrap()]].concat());
    let message = refused.one_line_error();
    assert!(
        message.contains(&format!("{} already holds", local.display()))
            && message.contains("frames.zip")
            && message.contains("--force"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(local.join("frames.zip")).unwrap(),
        b"a local render's archive"
    );
    assert_eq!(
        std::fs::read(local.join("frames/0001.png")).unwrap(),
        b"a local frame"
    );
    farm.run(&[&again[..], &["--out", local.to_str().unwrap(), "--force"]].concat())
        .ok();
    assert_zip_holds(&local.join("frames.zip"), &names(&[1, 2, 3, 4, 5, 6]));
    let fresh = run(farm.farm().current_dir(farm.dir.path()).args(again));
    assert!(
        fresh.ok().contains("archive: shot.cloud/frames.zip"),
        "{fresh:?}"
    );
    assert_zip_holds(
        &farm.dir.path().join("shot.cloud/frames.zip"),
        &names(&[1, 2, 3, 4, 5, 6]),
    );

    // Cancel: both jobs already ended.
    let cancel = farm.run(&["cancel", &key, "--bucket", BUCKET]);
    let stdout = cancel.ok();
    assert!(
        stdout.contains(&format!("render job {new_render}: already SUCCEEDED")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("zip job {new_zip}: already SUCCEEDED")),
        "{stdout}"
    );
}

/// A redeploy between submit and retry: CloudFormation registers new revisions of the job
/// definitions (new image tags) and deregisters the revisions `job.json` recorded. `farm retry`
/// submits by definition name, so its jobs run on the current revisions, not on INACTIVE ones
/// (which AWS refuses; moto would accept them, hence the check of the revision the jobs got).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_a_redeploy_runs_on_the_current_job_definition_revisions() {
    let farm = Fixture::start().await;
    let key = format!("{}redeployed.blend", unique_prefix("cli"));
    farm.moto
        .s3()
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from(
            b"BLENDER-v304RENDH\x00\x00\x00 rest of a scene".to_vec(),
        ))
        .tagging("frames=1-2")
        .send()
        .await
        .unwrap();
    submitted(&farm.trigger(&key).await);
    let recorded = farm.manifest(&key).await["targets"].clone();
    assert_eq!(
        recorded["render_definition"],
        farm.batch.render_definition.as_str()
    );

    let render = farm
        .moto
        .redeploy_job_definition(&farm.batch.render_definition)
        .await
        .unwrap();
    let zip = farm
        .moto
        .redeploy_job_definition(&farm.batch.zip_definition)
        .await
        .unwrap();
    assert_ne!(render, farm.batch.render_definition);

    // job.json's targets only: no definition from the environment.
    let mut command = farm.farm();
    command
        .env_remove(farm_core::env::JOB_DEFINITION)
        .env_remove(farm_core::env::ZIP_JOB_DEFINITION)
        .args(["retry", &key, "--bucket", BUCKET]);
    let retry = run(&mut command);
    assert!(
        retry.ok().contains("retry of 2 missing frame(s) of 2"),
        "{retry:#?}"
    );
    let manifest = farm.manifest(&key).await;
    for (id, want) in [
        (&manifest["render_job_id"], &render),
        (&manifest["zip_job_id"], &zip),
    ] {
        let jobs = farm
            .moto
            .batch()
            .describe_jobs()
            .jobs(id.as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            jobs.jobs()[0].job_definition(),
            Some(want.as_str()),
            "the retry's job {id} runs on the current revision"
        );
    }
}

/// `farm report` prints the receipt the zip job wrote, as text or as the document itself, and
/// says what to do before there is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_prints_the_receipt_or_says_when_there_is_none_yet() {
    let fx = Fixture::start().await;
    let key = "shots/report me.blend";
    let missing = fx.run(&["report", key, "--bucket", BUCKET]);
    let line = missing.one_line_error();
    assert!(
        line.contains("no receipt for `shots/report me.blend`"),
        "{line}"
    );
    assert!(
        line.contains("farm status 'shots/report me.blend'"),
        "{line}"
    );

    let receipt = farm_core::receipt::Receipt {
        frames: 100,
        tasks: 16,
        attempts: 17,
        wall_seconds: 620.0,
        task_seconds: 8_000.0,
        vcpu_hours: 8.9,
        gb_hours: 17.8,
        cost_usd: Some(0.4394),
        frame_seconds: farm_core::receipt::FrameSeconds {
            min: 30.0,
            median: 70.0,
            max: 95.5,
        },
        slowest: vec![farm_core::receipt::SlowFrame {
            frame: 42,
            seconds: 95.5,
        }],
        movie: None,
        estimate: None,
    };
    farm_core::storage::put_json(
        &fx.storage(),
        &farm_core::JobKeys::new(key).receipt(),
        &receipt,
    )
    .await
    .unwrap();
    let text = fx.run(&["report", key, "--bucket", BUCKET]);
    let text = text.ok();
    assert!(
        text.contains("100 in 16 task(s), 17 attempt(s) (1 retried)"),
        "{text}"
    );
    assert!(text.contains("about $0.4394"), "{text}");
    assert!(text.contains("slowest   42 (1 min 35 s)"), "{text}");
    let json = fx.run(&["report", key, "--bucket", BUCKET, "--json"]);
    let back: farm_core::receipt::Receipt = serde_json::from_str(json.ok()).unwrap();
    assert_eq!(back, receipt);

    // `--preview PATH` downloads the contact sheet, or says why there is none.
    use farm_core::Storage as _;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sheets");
    let sheet = dest.join("shot.jpg");
    let sheet_arg = sheet.to_str().unwrap();
    let none = fx.run(&["report", key, "--bucket", BUCKET, "--preview", sheet_arg]);
    let line = none.one_line_error();
    assert!(
        line.contains("no contact sheet for `shots/report me.blend`"),
        "{line}"
    );
    assert!(!sheet.exists());
    let jpeg = bytes::Bytes::from_static(b"\xff\xd8\xff\xe0 stand-in sheet");
    fx.storage()
        .put(
            &farm_core::JobKeys::new(key).preview(),
            jpeg.clone(),
            &farm_core::storage::PutOptions::content_type("image/jpeg"),
        )
        .await
        .unwrap();
    let text = fx.run(&["report", key, "--bucket", BUCKET, "--preview", sheet_arg]);
    let text = text.ok();
    assert!(text.contains(&format!("preview   {sheet_arg} (")), "{text}");
    assert_eq!(std::fs::read(&sheet).unwrap(), jpeg);
    // A folder gets `preview.jpg` in it.
    let folder = dest.to_str().unwrap();
    fx.run(&["report", key, "--bucket", BUCKET, "--preview", folder])
        .ok();
    assert_eq!(std::fs::read(dest.join("preview.jpg")).unwrap(), jpeg);
    // Without a PATH: where `farm download` puts the archive, `<name>.cloud/`.
    let bare = run(fx.farm().current_dir(dir.path()).args([
        "report",
        key,
        "--bucket",
        BUCKET,
        "--preview",
    ]));
    let default = dir.path().join("report me.cloud").join("preview.jpg");
    assert!(
        bare.ok()
            .contains("preview   report me.cloud/preview.jpg ("),
        "{bare:?}"
    );
    assert_eq!(std::fs::read(default).unwrap(), jpeg);
}

/// `farm status` sums the job's ended attempts (the task records of its own upload only) into
/// the cost so far.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_cost_so_far_of_the_jobs_own_task_records() {
    let fx = Fixture::start().await;
    let (key, etag) = fx.stand_in_job("spend").await;
    let at = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
    let record = |index: usize, etag: &str, seconds: i64| farm_core::tasks::TaskRecord {
        task: farm_core::tasks::TaskKind::Render,
        index,
        attempt: 1,
        source_etag: Some(etag.to_owned()),
        started: at(0),
        ended: at(seconds),
        exit_code: 0,
        error: None,
        cpus: 4,
        download_seconds: None,
        blender_startup_seconds: None,
        frames: Vec::new(),
        frame_metadata: None,
    };
    let keys = JobKeys::new(&key);
    let storage = fx.storage();
    farm_core::storage::put_json(&storage, &keys.task_record(0, 1), &record(0, &etag, 100))
        .await
        .unwrap();
    farm_core::storage::put_json(&storage, &keys.task_record(1, 1), &record(1, &etag, 50))
        .await
        .unwrap();
    // Another upload's record of the key: not this job's.
    farm_core::storage::put_json(
        &storage,
        &keys.task_record(2, 1),
        &record(2, "\"older\"", 5000),
    )
    .await
    .unwrap();

    let status = fx.status_json(&key);
    assert_eq!(status["spend"]["attempts_ended"], 2, "{status}");
    assert_eq!(status["spend"]["task_seconds"], 150.0, "{status}");
    // moto's region, us-east-1: two render attempts of 100 s and 60 s (the minimum) billed.
    let hours = 160.0 / 3600.0;
    let cost = status["spend"]["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - (4.0 * hours * 0.04048 + 8.0 * hours * 0.004445)).abs() < 1e-4,
        "{status}"
    );
    let text = fx.status_text(&key);
    assert!(text.contains("spent     about $"), "{text}");
    assert!(text.contains("in 2 ended attempt(s)"), "{text}");
}

/// `farm submit` prints its plan before anything goes up (files, tags with `chunk=auto` by
/// default, frames, series, engine); a running job of the key is replaced only with
/// `--replace`; a .blend the farm cannot read goes up only with `--force`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_plans_first_and_replaces_a_running_job_only_when_asked() {
    let farm = Fixture::start().await;
    // Docker mode: jobs move one state every 5 seconds, so the first job is still running when
    // the same key is submitted again.
    farm.jobs_walk_their_states();
    let blend = scene(farm.dir.path(), "again", 1, 2, 1);
    let key = format!("{}again.blend", unique_prefix("again"));
    let submit = |extra: &[&str]| {
        let mut args = vec![
            "submit",
            blend.to_str().unwrap(),
            "--bucket",
            BUCKET,
            "--key",
            &key,
        ];
        args.extend_from_slice(extra);
        farm.run(&args)
    };

    let first = submit(&["--frames", "1-2"]);
    let stdout = first.ok();
    let plan = stdout
        .find("plan (nothing is uploaded yet):")
        .expect(stdout);
    assert!(plan < stdout.find("uploaded ").expect(stdout), "{stdout}");
    for line in [
        "tags:      frames=1-2, chunk=auto",
        "frames:    2 (1-2)",
        "engine:    Cycles",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(stdout.contains("blender:   4.2 ("), "{stdout}");
    let (render_id, _) = submitted(&farm.trigger(&key).await);

    // Again while that job runs: refused (no terminal to ask), nothing changed in the bucket.
    let refused = submit(&["--frames", "1"]);
    let line = refused.one_line_error();
    assert!(
        line.contains("has a job still running") && line.contains(&render_id),
        "{line}"
    );
    assert!(line.contains("--replace"), "{line}");
    assert_eq!(farm.tags(&key).await["frames"], "1-2");
    let dry = submit(&["--frames", "1", "--dry-run"]);
    assert!(
        dry.ok()
            .contains(&format!("replaces:  render job {render_id}")),
        "{dry:?}"
    );

    // With --replace it goes.
    submit(&["--frames", "1", "--replace"]).ok();
    assert_eq!(farm.tags(&key).await["frames"], "1");

    // A .blend the farm cannot read is refused unless --force.
    let broken = farm.dir.path().join("broken.blend");
    std::fs::write(&broken, b"BLENDER-v304RENDH\x00\x00\x00 cut short").unwrap();
    let broken_key = format!("{}broken.blend", unique_prefix("broken"));
    let args = [
        "submit",
        broken.to_str().unwrap(),
        "--bucket",
        BUCKET,
        "--key",
        &broken_key,
        "--frame",
        "1",
    ];
    let line = farm.run(&args).one_line_error().to_owned();
    assert!(
        line.contains("the farm cannot read") && line.contains("--force"),
        "{line}"
    );
    assert!(keys_under(&farm, &broken_key).await.is_empty());
    farm.run(&[&args[..], &["--force"]].concat()).ok();
    assert_eq!(keys_under(&farm, &broken_key).await, [broken_key.as_str()]);
}

/// `farm submit --estimate 2`: the upload goes up tagged `estimate=2`, the trigger submits the
/// scout job alone, and farm waits for the scout's `estimate.json` (naming the scout job's
/// state) and prints it while no job of the key exists; without `--yes` and with no terminal to
/// ask, it submits nothing. Again with `--yes`: the same upload's estimate is printed at once
/// and the `.blend` tagged without `estimate=`, at the chunk size the estimate chose; the trigger
/// then submits the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_estimate_prints_the_estimate_before_the_job_exists() {
    use farm_core::estimate::{Estimate, EstimateFile, EstimateStatus, SampledFrame};
    let farm = Fixture::start().await;
    // Docker mode: the scout job stays SUBMITTED..RUNNING long enough for the test to write its
    // estimate, as the scout would.
    farm.jobs_walk_their_states();
    let blend = scene(farm.dir.path(), "scouted", 1, 6, 1);
    let key = format!("{}scouted.blend", unique_prefix("scouted"));
    let args = [
        "submit",
        blend.to_str().unwrap(),
        "--bucket",
        BUCKET,
        "--key",
        &key,
        "--frames",
        "1-6",
        "--estimate",
        "2",
    ];
    let mut child = farm
        .farm()
        .args(args)
        .env("FARM_PROGRESS", "lines")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("farm runs");
    // farm's progress lines, as they come.
    let (lines, said) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            all.push_str(&line);
            all.push('\n');
            let _ = lines.send(line);
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while !keys_under(&farm, &key).await.contains(&key) {
        assert!(Instant::now() < deadline, "farm never uploaded {key}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(farm.tags(&key).await["estimate"], "2");
    let RecordOutcome::Scouted {
        scout_job_id,
        samples,
        ..
    } = farm.trigger(&key).await
    else {
        panic!("expected a scout job")
    };
    assert_eq!(samples, "1 6");
    let keys = JobKeys::new(key.as_str());
    let storage = farm.storage();
    let mut file: EstimateFile = farm_core::storage::get_json(&storage, &keys.estimate())
        .await
        .unwrap();
    assert_eq!(file.status, EstimateStatus::Submitted);
    assert_eq!(file.job_id.as_deref(), Some(scout_job_id.as_str()));
    // The scout's estimate, as it writes it: 6 frames of 30 s on a farm of 64 vCPUs.
    let prices = farm_core::receipt::Prices::for_region("us-east-1", None, None).unwrap();
    let model = farm_core::timeline::CloudModel::new(64, 4.0, prices);
    file.status = EstimateStatus::Estimated;
    file.estimate = Some(Estimate {
        measured_on: "a scout task (4 threads)".into(),
        threads: 4,
        sampled: vec![
            SampledFrame {
                frame: 1,
                seconds: 30.0,
                placed_by_profile: false,
            },
            SampledFrame {
                frame: 6,
                seconds: 30.0,
                placed_by_profile: false,
            },
        ],
        profile: None,
        blender_startup_seconds: 4.0,
        first_frame_extra_seconds: 0.0,
        frames: 6,
        frame_seconds_total: 180.0,
        projection: model.best_chunk(&[30.0; 6]),
    });
    let chunk = file.estimate.as_ref().unwrap().projection.chunk_size;
    // farm names the scout job and its state while it waits.
    let waiting = format!("scout job {scout_job_id}: ");
    let seen =
        tokio::task::spawn_blocking(move || said.iter().find(|line| line.starts_with(&waiting)))
            .await
            .unwrap();
    assert!(seen.is_some(), "farm never named the scout job");
    farm_core::storage::put_json(&storage, &keys.estimate(), &file)
        .await
        .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .expect("farm ends");
    let mut done = common::Run::of(&output);
    done.stderr = reader.join().unwrap();
    let stdout = done.ok();
    for line in [
        "the trigger starts a scout job now: 2 sample frame(s) of the 6",
        "estimate of s3://",
        "frame      1  30.0 s",
        "frame      6  30.0 s",
        "on demand:",
        "not submitted.",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    // Printed, and no job of the key exists: no job.json, the tags still the scout's.
    assert!(!keys_under(&farm, &key).await.contains(&keys.manifest()));
    assert_eq!(farm.tags(&key).await["estimate"], "2");

    let yes = farm.run(&[&args[..], &["--yes"]].concat());
    let stdout = yes.ok();
    assert!(stdout.contains("on demand:"), "{stdout}");
    assert!(
        stdout.contains(&format!("tagged frames=1-6, chunk={chunk} for the job")),
        "{stdout}"
    );
    let tags = farm.tags(&key).await;
    assert!(!tags.contains_key("estimate"), "{tags:?}");
    assert_eq!(tags["chunk"], chunk.to_string());
    let (render_id, _) = submitted(&farm.trigger(&key).await);
    assert_ne!(render_id, scout_job_id);
    assert_eq!(farm.manifest(&key).await["chunk_size"], chunk);
}

/// A bucket that does not exist: one line naming the problem and the flags to check, without
/// AWS's raw answer (under -v).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_bucket_is_one_line_saying_what_to_check() {
    let farm = Fixture::start().await;
    for args in [
        vec!["status", "k.blend", "--bucket", "no-such-farm-bucket"],
        vec!["download", "k.blend", "--bucket", "no-such-farm-bucket"],
    ] {
        let mut command = farm.farm();
        command.current_dir(farm.dir.path()).args(&args);
        let result = run(&mut command);
        let line = result.one_line_error();
        assert!(
            line.contains("the bucket does not exist"),
            "{args:?}: {line}"
        );
        assert!(
            line.contains("--bucket") && line.contains("--stack"),
            "{line}"
        );
        assert!(!line.contains("NoSuchBucket"), "{line}");
    }
}

/// A render task that failed before its first frame (Blender could not open the file) leaves
/// no frame log, only its task record: `farm status` counts its frames as failed, with the
/// record's reason, and flags a render job that succeeded with frames missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_a_task_that_failed_before_its_first_frame() {
    let fx = Fixture::start().await;
    let (key, etag) = fx.stand_in_job("early").await;
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let reason = "blender could not open /work/early.blend: file is not a Blender file";
    let record = farm_core::tasks::TaskRecord {
        task: farm_core::tasks::TaskKind::Render,
        index: 1,
        attempt: 1,
        source_etag: Some(etag),
        started: at,
        ended: at,
        exit_code: farm_core::exit::BAD_INPUT,
        error: Some(reason.to_owned()),
        cpus: 4,
        download_seconds: None,
        blender_startup_seconds: None,
        frames: Vec::new(),
        frame_metadata: None,
    };
    let keys = JobKeys::new(&key);
    farm_core::storage::put_json(&fx.storage(), &keys.task_record(1, 1), &record)
        .await
        .unwrap();

    let status = fx.status_json(&key);
    assert_eq!(status["frames"]["failed"], 2, "{status}");
    assert_eq!(status["frames"]["pending"], 2, "{status}");
    let failed = status["failed_frames"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{status}");
    assert_eq!(failed[0]["frame"], 3);
    assert_eq!(failed[0]["reason"], reason);
    assert_eq!(failed[0]["log"], keys.task_record(1, 1).as_str());
    let text = fx.status_text(&key);
    assert!(
        text.contains(&format!("failed    frame 3: {reason}")),
        "{text}"
    );
    // moto ends the jobs at once: a render job that succeeded with no frame is flagged.
    assert_eq!(status["render_job"]["state"], "SUCCEEDED", "{status}");
    assert_eq!(status["complete"], false, "{status}");
    let problem = status["problems"][0].as_str().unwrap_or_default();
    assert!(problem.contains("only 0 of 4 frames"), "{status}");
    assert!(
        text.contains("problem   the render job succeeded, yet only 0 of 4 frames"),
        "{text}"
    );
}

/// `--stack NAME` reads the bucket from the stack's `BucketName` output (the output
/// `infra/farm.yaml` declares), through CloudFormation on moto; a missing stack or output is
/// refused with what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_names_the_bucket_through_its_outputs() {
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/farm.yaml"))
            .unwrap();
    let outputs = template.split("\nOutputs:\n").nth(1).expect("Outputs");
    let output = farm_io::stack::BUCKET_OUTPUT;
    assert!(outputs.lines().any(|line| line == format!("  {output}:")));

    let farm = Fixture::start().await;
    let bucket = "farm-cli-stack-test";
    let resources = serde_json::json!({
        "FarmBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}
    });
    farm.create_stack(
        "farm-a",
        serde_json::json!({
            "Resources": resources,
            "Outputs": {output: {"Value": {"Ref": "FarmBucket"}}}
        }),
    )
    .await;
    let other = serde_json::json!({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}}
    });
    farm.create_stack("not-a-farm", other).await;

    // A submit with --stack uploads to the stack's bucket; status names it.
    let blend = scene(farm.dir.path(), "stacked", 1, 2, 1);
    let key = format!("{}stacked.blend", unique_prefix("stack"));
    farm.run(&[
        "submit",
        blend.to_str().unwrap(),
        "--stack",
        "farm-a",
        "--key",
        &key,
        "--frame",
        "2",
    ])
    .ok();
    let head = farm
        .moto
        .s3()
        .head_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await;
    assert!(head.is_ok(), "{head:?}");
    let early = farm.run(&["status", &key, "--stack", "farm-a"]);
    assert!(
        early
            .one_line_error()
            .contains(&format!("in bucket {bucket}")),
        "{early:#?}"
    );
    // FARM_STACK works as --stack does.
    let mut command = farm.farm();
    command.env("FARM_STACK", "farm-a").args(["status", &key]);
    assert!(run(&mut command)
        .one_line_error()
        .contains(&format!("in bucket {bucket}")));

    let missing = farm.run(&["status", &key, "--stack", "no-such-stack"]);
    let error = missing.one_line_error();
    assert!(
        error.contains("no CloudFormation stack `no-such-stack` in us-east-1"),
        "{error}"
    );
    let wrong = farm.run(&["download", &key, "--stack", "not-a-farm"]);
    let error = wrong.one_line_error();
    assert!(
        error.contains(
            "stack `not-a-farm` (CREATE_COMPLETE) has no `BucketName` output (it has: TopicArn)"
        ),
        "{error}"
    );
    let both = farm.run(&["cancel", &key, "--stack", "farm-a", "--bucket", BUCKET]);
    assert!(
        both.one_line_error().contains("cannot be used with"),
        "{both:#?}"
    );
}

/// `farm submit` refuses, before uploading anything, a file outside the upload's own top-level
/// folder and the stack's shared prefixes, by the trigger's rule (ADR 0013), naming the key and
/// the rule: with `--stack`, the prefixes are the stack's `SharedPrefixes` parameter (read from
/// CloudFormation on moto); with `--bucket`, `--shared-prefixes` / `FARM_SHARED_PREFIXES`, none
/// unless given. Project files inside both are uploaded. A scene saved by Debian's Blender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_refuses_files_outside_the_uploads_folder_and_the_shared_prefixes() {
    let farm = Fixture::start().await;
    let stack_bucket = "farm-cli-scope-test";
    // The parameter as the stack was created with it (its default here: moto's CreateStack
    // takes parameters the same way).
    let shared = farm_io::stack::SHARED_PREFIXES_PARAMETER;
    farm.create_stack(
        "farm-shared",
        serde_json::json!({
            "Parameters": {shared: {"Type": "String", "Default": "library/"}},
            "Resources": {"FarmBucket": {"Type": "AWS::S3::Bucket",
                                         "Properties": {"BucketName": stack_bucket}}},
            "Outputs": {"BucketName": {"Value": {"Ref": "FarmBucket"}}}
        }),
    )
    .await;
    let project = farm.dir.path().join("scope");
    for file in ["alice/tex/a.png", "library/wood.png", "bob/secret.png"] {
        let path = project.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"not really a png").unwrap();
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../e2e/tests/hostile/image_paths.py"
    );
    let scene = |name: &str, paths: &[&str]| {
        let scene = project.join("alice").join(name);
        let json = serde_json::json!({ "output": scene, "paths": paths }).to_string();
        let made = farm_testkit::TestBlender::executable()
            .unwrap()
            .script(Path::new(script), &[&json])
            .output()
            .unwrap();
        assert!(scene.is_file(), "{made:?}");
        scene
    };
    let greedy = scene(
        "greedy.blend",
        &[
            "//tex/a.png",
            "//../library/wood.png",
            "//../bob/secret.png",
        ],
    );
    let fair = scene("fair.blend", &["//tex/a.png", "//../library/wood.png"]);
    let submit = |blend: &Path, target: &[&str], extra: &[(&str, &str)]| {
        let key = format!("alice/{}", blend.file_name().unwrap().to_str().unwrap());
        let mut command = farm.farm();
        command.envs(extra.iter().copied()).args([
            "submit",
            blend.to_str().unwrap(),
            "--key",
            &key,
            "--frame",
            "1",
            "--project",
            project.to_str().unwrap(),
        ]);
        run(command.args(target))
    };
    let keys = |bucket: &str| {
        let s3 = farm.moto.s3();
        let bucket = bucket.to_owned();
        async move {
            let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
            listed
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect::<BTreeSet<String>>()
        }
    };

    // The stack shares `library/`: bob's file alone is refused, nothing is uploaded.
    let refused = submit(&greedy, &["--stack", "farm-shared"], &[]);
    let error = refused.one_line_error();
    assert!(
        error.contains("`bob/secret.png` is outside what this upload may use")
            && error
                .contains("may use only files under `alice/` and the shared prefixes (library/)")
            && !error.contains("wood.png")
            && !error.contains("tex/a.png"),
        "{error}"
    );
    assert!(keys(stack_bucket).await.is_empty());

    // With --bucket and no prefixes given, `library/` is shared by nobody.
    let refused = submit(&fair, &["--bucket", BUCKET], &[]);
    let error = refused.one_line_error();
    assert!(
        error.contains("`library/wood.png` is outside what this upload may use")
            && error.contains("the shared prefixes (none)")
            && error.contains("--shared-prefixes"),
        "{error}"
    );
    assert!(keys(BUCKET).await.is_empty());
    let both = submit(
        &fair,
        &["--stack", "farm-shared", "--shared-prefixes", "library/"],
        &[],
    );
    assert!(
        both.one_line_error().contains("cannot be used with"),
        "{both:#?}"
    );

    // Told the prefixes (the variable the trigger reads) or reading them from the stack, the
    // fair scene goes up with its files.
    let uploaded = BTreeSet::from(
        ["alice/fair.blend", "alice/tex/a.png", "library/wood.png"].map(String::from),
    );
    submit(
        &fair,
        &["--bucket", BUCKET],
        &[("FARM_SHARED_PREFIXES", "library/")],
    )
    .ok();
    assert_eq!(keys(BUCKET).await, uploaded);
    submit(&fair, &["--stack", "farm-shared"], &[]).ok();
    assert_eq!(keys(stack_bucket).await, uploaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_requests_unknown_jobs_and_large_uploads() {
    let farm = Fixture::start().await;
    let prefix = unique_prefix("cli");

    // A body that is not a .blend, uploaded with valid tags past farm's own checks: the
    // trigger rejects it, and every command says why.
    let bad = format!("{prefix}bad.blend");
    farm.moto
        .s3()
        .put_object()
        .bucket(BUCKET)
        .key(&bad)
        .tagging("frames=1-3")
        .body(ByteStream::from_static(b"not a blend at all"))
        .send()
        .await
        .unwrap();
    let outcome = farm.trigger(&bad).await;
    assert!(
        matches!(outcome, RecordOutcome::Rejected { .. }),
        "{outcome:?}"
    );
    let status = farm.status_json(&bad);
    assert_eq!(status["status"], "rejected");
    assert!(
        status["message"].as_str().unwrap().contains("not a .blend"),
        "{status}"
    );
    let text = farm.status_text(&bad);
    assert!(text.contains("rejected  "), "{text}");
    for command in ["cancel", "retry"] {
        let result = farm.run(&[command, &bad, "--bucket", BUCKET]);
        assert!(result.one_line_error().contains("rejected"), "{result:#?}");
    }

    // A manifest naming jobs Batch does not know.
    let ghost = format!("{prefix}ghost.blend");
    let manifest = serde_json::json!({
        "schema": 1, "status": "submitted", "bucket": BUCKET, "key": ghost,
        "frames": "1-4", "frame_count": 4, "chunk_size": 1, "chunk_count": 4,
        "render_job_id": "no-such-render-job", "zip_job_id": "no-such-zip-job",
        "created": "2026-11-24T10:00:00Z"
    });
    farm.put(
        &JobKeys::new(ghost.as_str()).manifest(),
        manifest.to_string().into_bytes(),
    )
    .await;
    let status = farm.status_json(&ghost);
    assert_eq!(status["render_job"]["state"], "UNKNOWN");
    assert_eq!(status["zip_job"]["state"], "UNKNOWN");
    let text = farm.status_text(&ghost);
    assert!(text.contains("render    UNKNOWN"), "{text}");
    assert!(text.contains("does not know this job"), "{text}");

    // A file larger than one part goes up in parts, tags on CreateMultipartUpload.
    let blend = scene(farm.dir.path(), "big", 1, 4, 1);
    let mut bytes = std::fs::read(&blend).unwrap();
    let original_len = bytes.len();
    bytes.resize(11 * 1024 * 1024, 0);
    std::fs::write(&blend, &bytes).unwrap();
    let big = format!("{prefix}big.blend");
    let submit = farm.run(&[
        "submit",
        blend.to_str().unwrap(),
        "--bucket",
        BUCKET,
        "--key",
        &big,
        "--frame",
        "4",
        "--format",
        "png",
        "--part-size-mib",
        "5",
    ]);
    assert!(submit.ok().contains(&format!("key: {big}")));
    let tags = farm.tags(&big).await;
    assert_eq!(tags.get("frame").map(String::as_str), Some("4"));
    assert_eq!(tags.get("format").map(String::as_str), Some("PNG"));
    let object = farm
        .moto
        .s3()
        .get_object()
        .bucket(BUCKET)
        .key(&big)
        .send()
        .await
        .unwrap();
    assert!(
        object.e_tag().unwrap().contains("-3"),
        "three parts: {:?}",
        object.e_tag()
    );
    let body = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.len(), bytes.len());
    assert_eq!(&body[..original_len], &bytes[..original_len]);
    let (_, _) = submitted(&farm.trigger(&big).await);
    let status = farm.status_json(&big);
    assert_eq!(status["frames"]["list"], "1-4");
    assert!(status["render_job"]["array"]["size"] == 4);
}

/// The render and zip job states a text status shows.
fn text_states(text: &str) -> (String, String) {
    let state = |label: &str| {
        text.lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no {label} line: {text}"))
            .to_owned()
    };
    (state("render "), state("zip "))
}

/// Polls `farm status` until `done` says so (on `--json`), recording the text output for each
/// new pair of render/zip states it shows.
fn follow(
    farm: &Fixture,
    key: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> BTreeMap<(String, String), String> {
    let mut seen = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    loop {
        let text = farm.status_text(key);
        seen.entry(text_states(&text)).or_insert(text);
        if done(&farm.status_json(key)) {
            // The states are final now: the text shows them too.
            let text = farm.status_text(key);
            seen.entry(text_states(&text)).or_insert(text);
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out; states seen: {:?}",
            seen.keys()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_every_state_moto_gives_and_cancel_and_retry_respect_them() {
    let farm = Fixture::start().await;
    // Docker mode: jobs move one state every 5 seconds, then fail for want of Docker. Each
    // poll runs `farm status` twice; on a loaded 2-core machine that took over 3 s, and a
    // state that lasted 3 s was missed.
    farm.jobs_walk_their_states();
    let blend = scene(farm.dir.path(), "walk", 1, 2, 1);
    let prefix = unique_prefix("cli");

    // One chunk: a plain render job, which walks every state up to RUNNING, then fails.
    let key = format!("{prefix}walk.blend");
    let blend_arg = blend.to_str().unwrap();
    farm.run(&[
        "submit", blend_arg, "--bucket", BUCKET, "--key", &key, "--frames", "1-2", "--chunk", "2",
    ])
    .ok();
    let (render_id, _) = submitted(&farm.trigger(&key).await);

    // While it is queued, retry refuses.
    let retry = farm.run(&["retry", &key, "--bucket", BUCKET]);
    let line = retry.one_line_error();
    assert!(
        line.contains(&format!("the render job {render_id} is still")),
        "{line}"
    );
    assert!(line.contains("farm cancel"), "{line}");

    let seen = follow(&farm, &key, Duration::from_secs(60), |s| {
        s["render_job"]["state"] == "FAILED" && s["zip_job"]["state"] == "FAILED"
    });
    let render_states: BTreeSet<&str> = seen.keys().map(|(r, _)| r.as_str()).collect();
    for state in ["PENDING", "RUNNABLE", "STARTING", "FAILED"] {
        assert!(
            render_states.contains(state),
            "{state} not seen: {render_states:?}"
        );
    }
    let mut all_states: BTreeSet<String> = seen
        .keys()
        .flat_map(|(r, z)| [r.clone(), z.clone()])
        .collect();
    for ((render, zip), text) in &seen {
        assert!(
            text.contains(&format!("render    {render:<10} job {render_id}")),
            "{text}"
        );
        assert!(text.contains(&format!("zip       {zip:<10} job")), "{text}");
        assert!(text.contains("0/2 done, 0 failed, 2 pending"), "{text}");
        if !matches!(zip.as_str(), "SUCCEEDED" | "FAILED" | "RUNNING") {
            let why = if render == "FAILED" {
                "will not run: the render job failed"
            } else {
                "starts when the render job has succeeded"
            };
            assert!(text.contains(why), "{text}");
        }
    }
    let failed = &seen[&("FAILED".to_owned(), "FAILED".to_owned())];
    assert!(
        failed.contains(&format!(
            "next      render the missing frames again: farm retry {key}"
        )),
        "{failed}"
    );
    // Now retry may go, and resubmits both frames.
    let retry = farm.run(&["retry", &key, "--bucket", BUCKET]);
    assert!(
        retry
            .ok()
            .contains("retry of 2 missing frame(s) of 2 (1-2)"),
        "{retry:#?}"
    );

    // Two chunks: an array job; cancel it while it is queued.
    let array_key = format!("{prefix}array.blend");
    farm.run(&[
        "submit", blend_arg, "--bucket", BUCKET, "--key", &array_key, "--frames", "1-2",
    ])
    .ok();
    let (array_id, zip_id) = submitted(&farm.trigger(&array_key).await);
    let submitted_state = farm.status_json(&array_key);
    let first = submitted_state["render_job"]["state"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ["SUBMITTED", "PENDING", "RUNNABLE"].contains(&first.as_str()),
        "{submitted_state}"
    );
    assert_eq!(submitted_state["render_job"]["array"]["size"], 2);
    let text = farm.status_text(&array_key);
    assert!(
        text.contains(&format!("render    {first:<10} job {array_id}, 2 tasks:")),
        "{text}"
    );

    let cancel = farm.run(&["cancel", &array_key, "--bucket", BUCKET]);
    let stdout = cancel.ok();
    assert!(
        stdout.contains(&format!("zip job {zip_id}: terminated (was")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("render job {array_id}: terminated (was")),
        "{stdout}"
    );
    // moto records the reason and fails the children once they would start.
    let seen = follow(&farm, &array_key, Duration::from_secs(60), |s| {
        s["render_job"]["array"]["failed"] == 2
    });
    let last = farm.status_text(&array_key);
    assert!(last.contains("2 tasks: 0 succeeded, 2 failed"), "{last}");
    all_states.insert(first);
    all_states.extend(seen.keys().flat_map(|(r, z)| [r.clone(), z.clone()]));
    // Every state moto gives, on a render or a zip job (SUCCEEDED: the first test). A plain job
    // goes from STARTING to FAILED at once; the array parent stays RUNNING as its children fail.
    for state in [
        "SUBMITTED",
        "PENDING",
        "RUNNABLE",
        "STARTING",
        "RUNNING",
        "FAILED",
    ] {
        assert!(
            all_states.contains(state),
            "{state} not seen: {all_states:?}"
        );
    }
    for text in seen.values() {
        assert!(
            text.contains(&format!("job {array_id}, 2 tasks:")),
            "{text}"
        );
    }
    let status = farm.status_json(&array_key);
    assert_eq!(
        status["render_job"]["reason"],
        farm_cli::jobs::CANCEL_REASON
    );
}

/// All keys under `prefix` in the test bucket.
/// The render and zip job ids `<key>/job.json` names.
async fn farm_job_ids(farm: &Fixture, key: &str) -> (String, String) {
    let manifest = farm.manifest(key).await;
    let id = |field: &str| manifest[field].as_str().unwrap_or_default().to_owned();
    (id("render_job_id"), id("zip_job_id"))
}

async fn keys_under(farm: &Fixture, prefix: &str) -> Vec<String> {
    let listed = farm
        .moto
        .s3()
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// `farm submit --dry-run` checks as a submit does and prints the plan, reading the bucket
/// only: nothing is uploaded. After the real submit, the same plan says every file is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_plan_and_uploads_nothing() {
    let farm = Fixture::start().await;
    let project = common::make_project(farm.dir.path());
    let shot = project.join("shots/shot.blend");
    let shot_arg = shot.to_str().unwrap();
    let project_arg = project.to_str().unwrap();
    let prefix = unique_prefix("dry");
    let key = format!("{prefix}proj/shots/shot.blend");
    let submit = |extra: &[&str]| {
        let mut args = vec![
            "submit",
            shot_arg,
            "--bucket",
            BUCKET,
            "--key",
            &key,
            "--frames",
            "1-3",
            "--chunk",
            "auto",
            "--project",
            project_arg,
        ];
        args.extend_from_slice(extra);
        farm.run(&args)
    };

    let plan: Value = serde_json::from_str(submit(&["--dry-run", "--json"]).ok()).unwrap();
    assert!(
        keys_under(&farm, &prefix).await.is_empty(),
        "uploaded nothing"
    );
    assert_eq!(plan["key"], key.as_str());
    assert_eq!(plan["frames"], "1-3");
    assert_eq!(plan["frame_count"], 3);
    assert_eq!(plan["chunk"], "auto");
    assert_eq!(plan["tasks"], Value::Null);
    assert_eq!(plan["scene"]["in_bucket"], false);
    let project_keys: BTreeSet<&str> = plan["project"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    for wanted in ["shots/tex/red.png", "lib/props.blend", "shared/green.png"] {
        assert!(
            project_keys.contains(format!("{prefix}proj/{wanted}").as_str()),
            "{wanted}: {project_keys:?}"
        );
    }
    let files = project_keys.len() + 1;
    assert_eq!(plan["upload"]["files"], files);
    assert_eq!(plan["in_bucket"]["files"], 0);
    let tags: Vec<(&str, &str)> = plan["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t["value"].as_str().unwrap()))
        .collect();
    assert_eq!(tags, [("frames", "1-3"), ("chunk", "auto")]);

    // The text plan, and a refusal, upload nothing either.
    let text = submit(&["--dry-run"]);
    let stdout = text.ok();
    assert!(stdout.starts_with("dry run: nothing uploaded"), "{stdout}");
    assert!(
        stdout.contains(&format!("upload:    {files} file(s)")),
        "{stdout}"
    );
    assert!(
        stdout.contains("tags:      frames=1-3, chunk=auto"),
        "{stdout}"
    );
    std::fs::rename(
        project.join("shots/tex/red.png"),
        farm.dir.path().join("red.png"),
    )
    .unwrap();
    let refused = submit(&["--dry-run", "--json"]);
    assert!(
        refused.one_line_error().contains("tex/red.png"),
        "{refused:?}"
    );
    std::fs::rename(
        farm.dir.path().join("red.png"),
        project.join("shots/tex/red.png"),
    )
    .unwrap();
    assert!(
        keys_under(&farm, &prefix).await.is_empty(),
        "uploaded nothing"
    );

    // Once submitted, the plan says everything is in the bucket: the .blend would be tagged.
    submit(&[]).ok();
    assert_eq!(keys_under(&farm, &prefix).await.len(), files);
    let plan: Value = serde_json::from_str(submit(&["--dry-run", "--json"]).ok()).unwrap();
    assert_eq!(plan["upload"]["files"], 0);
    assert_eq!(plan["in_bucket"]["files"], files);
    assert_eq!(plan["scene"]["in_bucket"], true);
}

/// The `bpy` version of each Blender series the farm runs (`infra/bpy/<series>.txt`'s pin) whose
/// CPython this machine has (`scripts/bpy-venv.sh`: 3.11 up to bpy 5.0, 3.13 from 5.1; Debian 12
/// has only 3.11, so 5.1+ is left to `scripts/test-series.sh`).
fn farm_series_bpy() -> Vec<String> {
    let has = |python: &str| {
        Command::new(python)
            .args(["-c", "import venv"])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    let locks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/bpy");
    let mut versions: Vec<String> = std::fs::read_dir(&locks)
        .unwrap()
        .filter_map(|entry| {
            let text = std::fs::read_to_string(entry.ok()?.path()).ok()?;
            let pin = text.lines().find_map(|l| l.strip_prefix("bpy=="))?;
            let version = pin.split_whitespace().next()?.to_owned();
            let python = if version.starts_with("4.") || version.starts_with("5.0.") {
                "python3.11"
            } else {
                "python3.13"
            };
            has(python).then_some(version)
        })
        .collect();
    versions.sort();
    assert!(
        versions.len() >= 2,
        "bpy pins in {}: {versions:?}",
        locks.display()
    );
    versions
}

/// The Blender add-on (`blender-addon/`) inside the official `bpy` module of every series the
/// farm runs that this machine's Python can load (4.2, 4.5, 5.0; pinned in `infra/bpy/`), with
/// this `farm` on PATH and moto as AWS (`blender-addon/tests/drive.py` runs each phase in
/// Blender): the extension zip installs, enables, registers and unregisters cleanly; Plan and
/// Submit save the file's unsaved changes before farm reads it, and a file never saved is
/// refused; Plan shows `farm submit --dry-run`'s plan; Submit uploads the project and tags the
/// .blend, and the trigger starts the job; a missing texture comes back as an error report
/// naming it; Render Here runs `farm render` with its progress lines; then, with the farm named
/// by its stack (`--stack`): Refresh reads the job from `farm status --json`, Cancel and Retry
/// run `farm cancel` and `farm retry` (moto has finished the jobs: cancel says so, retry submits
/// the missing frames), and once the zipper made the archive Download unpacks it into the
/// scene's output folder and Contact Sheet loads `preview.jpg` into Blender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blender_addon_installs_submits_and_watches_a_job() {
    let farm = Fixture::start().await;
    let addon = Path::new(env!("CARGO_MANIFEST_DIR")).join("../blender-addon");
    let zip = farm.dir.path().join("render_farm.zip");
    let built = Command::new("python3")
        .arg(addon.join("build.py"))
        .arg(&zip)
        .output()
        .expect("python3 runs");
    assert!(built.status.success(), "{built:?}");
    let stack = addon_stack(&farm).await;
    let bin = Path::new(env!("CARGO_BIN_EXE_farm")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    for version in farm_series_bpy() {
        let version = version.as_str();
        let bpy = farm_testkit::TestBlender::bpy(version).expect("bpy venv");
        let resources = tempfile::tempdir().unwrap();
        let project = common::make_project(&farm.dir.path().join(format!("bpy-{version}")));
        let blend = project.join("shots/shot.blend");
        let drive = |phase: &str, config: Value| -> Value {
            let mut command = Command::new(bpy.blender.program());
            common::farm_env(&mut command);
            let output = command
                .arg(addon.join("tests/drive.py"))
                .args([phase, &config.to_string()])
                .env("BLENDER_USER_RESOURCES", resources.path())
                .env("PATH", &path)
                .envs(farm.moto.env())
                .output()
                .expect("bpy's python runs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "{version} {phase}: {stdout}\n{stderr}"
            );
            let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT "));
            serde_json::from_str(line.expect("a RESULT line")).unwrap()
        };

        let installed = drive("install", serde_json::json!({ "zip": zip }));
        check_installed(&installed, version);

        let config = serde_json::json!({
            "blend": blend, "bucket": BUCKET, "root": farm.dir.path(),
        });
        let sent = drive("submit", config);
        let key = format!("bpy-{version}/proj/shots/shot.blend");
        check_submitted(&farm, &sent, &blend, &key).await;
        submitted(&farm.trigger(&key).await);

        let out = farm.dir.path().join(format!("renders-{version}"));
        let config = serde_json::json!({
            "blend": blend, "stack": stack, "root": farm.dir.path(), "key": key, "out": out,
        });
        let (old_render, _) = farm_job_ids(&farm, &key).await;
        let watched = drive("watch", config.clone());
        check_watched(&watched, &key, &old_render);
        let (new_render, _) = farm_job_ids(&farm, &key).await;
        assert_ne!(new_render, old_render, "job.json names the retry's jobs");

        let here = blend.with_extension("farm").join("frames");
        zip_job_outputs(&farm, &key, &here).await;
        let fetched = drive("fetch", config);
        check_fetched(&fetched, &out, &here);
    }
}

/// A stack whose `BucketName` output names the test's bucket, for `--stack`.
async fn addon_stack(farm: &Fixture) -> &'static str {
    let stack = "farm-addon";
    let template = serde_json::json!({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"BucketName": {"Value": BUCKET}}
    });
    farm.create_stack(stack, template).await;
    stack
}

/// drive.py's install phase: the extension registered all it has, and unregistered it all.
fn check_installed(installed: &Value, version: &str) {
    assert!(
        installed["version"]
            .as_str()
            .unwrap()
            .starts_with(&version[..3]),
        "{installed}"
    );
    assert_eq!(
        installed["registered"]["operators"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        installed["unregistered"]["operators"],
        serde_json::json!([])
    );
}

/// drive.py's submit phase: Plan and Submit saved first, the upload, the refusal, Render Here.
async fn check_submitted(farm: &Fixture, sent: &Value, blend: &Path, key: &str) {
    assert_eq!(sent["key"], key, "{sent}");
    // "Replace running job" passes --replace to the same farm submit.
    let argv: Vec<&str> = sent["replace_argv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        argv.contains(&"submit") && argv.contains(&"--replace"),
        "{sent}"
    );
    let plan = &sent["plan"];
    assert_eq!(plan["key"], key);
    // Plan ran on the scene's range as changed in Blender and not saved: it was saved first.
    assert_eq!(plan["frames"], "2-7", "{plan}");
    assert_eq!(
        plan["in_bucket"]["files"], 0,
        "nothing uploaded before: {plan}"
    );
    let files = plan["upload"]["files"].as_u64().unwrap();
    assert!(files >= 5, "the .blend, textures and library: {plan}");
    // Submit saved the change made after the plan.
    let inspect = farm.run(&["inspect", "--json", blend.to_str().unwrap()]);
    let saved: Value = serde_json::from_str(inspect.ok()).unwrap();
    let ranges: Vec<(i64, i64)> = saved["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["frame_start"].as_i64().unwrap(),
                s["frame_end"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, [(2, 9)], "{saved}");
    let unsaved = sent["unsaved"].as_str().unwrap();
    assert!(unsaved.contains("Save the .blend first"), "{sent}");
    let refusal = sent["refusal"].as_str().unwrap();
    assert!(
        refusal.contains("//tex/red.png") && refusal.contains("nothing was uploaded"),
        "{refusal}"
    );
    assert!(
        sent["report_raised"].as_str().unwrap().contains(refusal),
        "{sent}"
    );
    // Render Here rendered frames 1 and 2 beside the .blend, its progress read from farm.
    assert_eq!(
        sent["frames_here"],
        serde_json::json!(["0001.png", "0002.png"])
    );
    let shown = sent["render_progress"].as_array().unwrap();
    assert!(
        shown.iter().any(|d| {
            let d = d.as_str().unwrap();
            d.starts_with("rendering ") && d.contains("/2 frames")
        }),
        "{shown:?}"
    );
    // What the Submit operator's farm uploaded: every file, the .blend with its tags.
    let prefix = format!("{}/", key.split('/').next().unwrap());
    assert_eq!(keys_under(farm, &prefix).await.len() as u64, files);
    let tags = farm.tags(key).await;
    assert_eq!(tags.get("frames").map(String::as_str), Some("1-2"));
    assert_eq!(tags.get("chunk").map(String::as_str), Some("auto"));
}

/// drive.py's watch phase: Refresh, Cancel and Retry with farm's words.
fn check_watched(watched: &Value, key: &str, old_render: &str) {
    let status = &watched["status"];
    assert_eq!(status["key"], key, "{status}");
    assert_eq!(status["state"], "submitted", "{status}");
    assert_eq!(status["job_state"], "SUCCEEDED", "{status}");
    assert_eq!(
        (&status["done"], &status["total"]),
        (&Value::from(0), &Value::from(2))
    );
    assert!(
        status["summary"].as_str().unwrap().contains("0/2 frames"),
        "{status}"
    );
    // moto ran the jobs at once: farm cancel says they ended; retry submits both frames.
    let cancelled = format!("render job {old_render}: already SUCCEEDED");
    assert_info(&watched["cancelled"], &cancelled);
    assert_info(
        &watched["retried"],
        "submitted a retry of 2 missing frame(s)",
    );
}

/// A report drive.py kept, `[level, text]`: an INFO report whose text contains `says`.
fn assert_info(report: &Value, says: &str) {
    assert_eq!(report[0], "INFO", "{report}");
    let text = report[1].as_str().unwrap();
    assert!(text.contains(says), "{says:?} not in {text:?}");
}

/// The bytes the fetch phase's movie job leaves (`farm download` copies them, whatever they are).
const MOVIE_BYTES: &[u8] = b"a movie scene's movie, as the movie job uploads it";

/// What the job's tasks, zip job and movie job leave: the frames (Render Here's, as the
/// renderer uploads them), `frames.zip` and the contact sheet (the zipper's code), the receipt,
/// and the movie `job.json` names (a movie scene's job).
async fn zip_job_outputs(farm: &Fixture, key: &str, here: &Path) {
    let keys = JobKeys::new(key);
    let storage = farm.storage();
    let mut manifest: farm_core::manifest::JobManifest =
        farm_core::storage::get_json(&storage, &keys.manifest())
            .await
            .unwrap();
    manifest.movie = Some("mkv".to_owned());
    farm_core::storage::put_json(&storage, &keys.manifest(), &manifest)
        .await
        .unwrap();
    farm_core::Storage::put(
        &storage,
        &keys.movie("mkv"),
        bytes::Bytes::from_static(MOVIE_BYTES),
        &farm_core::storage::PutOptions::default(),
    )
    .await
    .unwrap();
    for frame in [1, 2] {
        let body = std::fs::read(here.join(format!("{frame:04}.png"))).unwrap();
        farm.put_frame(key, &keys.frame(frame, "png"), body).await;
    }
    zipper::zip_frames(
        &farm.storage(),
        &keys,
        &FrameList::parse("1-2", 100).unwrap(),
        &farm.job_version(key).await,
        &zipper::ZipOptions::default(),
        &|_| {},
    )
    .await
    .expect("the zipper makes the archive");
    let receipt = farm_core::receipt::Receipt {
        frames: 2,
        tasks: 1,
        attempts: 1,
        wall_seconds: 60.0,
        task_seconds: 60.0,
        vcpu_hours: 0.07,
        gb_hours: 0.13,
        cost_usd: Some(0.0035),
        frame_seconds: farm_core::receipt::FrameSeconds {
            min: 20.0,
            median: 25.0,
            max: 30.0,
        },
        slowest: vec![],
        movie: Some(farm_core::receipt::MovieObject {
            key: keys.movie("mkv"),
            size: MOVIE_BYTES.len() as u64,
        }),
        estimate: None,
    };
    farm_core::storage::put_json(&farm.storage(), &keys.receipt(), &receipt)
        .await
        .unwrap();
}

/// drive.py's fetch phase: the archive unpacked and the movie into the scene's output folder
/// `out`, the contact sheet loaded in Blender.
fn check_fetched(fetched: &Value, out: &Path, here: &Path) {
    assert_info(&fetched["downloaded"], "(2 files)");
    let movie = out.join("shot.mkv");
    assert_info(
        &fetched["downloaded"],
        &format!("movie:   {}", movie.display()),
    );
    assert_eq!(std::fs::read(&movie).unwrap(), MOVIE_BYTES);
    assert_zip_holds(&out.join("frames.zip"), &names(&[1, 2]));
    for name in names(&[1, 2]) {
        assert_eq!(
            std::fs::read(out.join("frames").join(&name)).unwrap(),
            std::fs::read(here.join(&name)).unwrap(),
            "{name}: the archive unpacked into the scene's output folder"
        );
    }
    let sheet = out.join("preview.jpg");
    assert_info(&fetched["sheet"], sheet.to_str().unwrap());
    let images = fetched["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{fetched}");
    assert_eq!(images[0]["path"], sheet.to_str().unwrap(), "{fetched}");
    let size: Vec<u64> = serde_json::from_value(images[0]["size"].clone()).unwrap();
    assert!(
        size.iter().all(|&side| side > 0),
        "Blender read the sheet: {fetched}"
    );
    let summary = fetched["status"]["summary"].as_str().unwrap();
    assert!(summary.contains(", 2/2 frames"), "{fetched}");
    assert!(summary.ends_with(", complete"), "{fetched}");
}

/// `farm status --watch`, piped, through the real binary: moto walks the job's render and zip
/// jobs through their states (docker mode, the stand-in Docker API) while frames appear; the
/// watch prints one line per change and ends with the job: exit 0 once it ended complete. A
/// job whose task fails ends the watch (`--json`: one object per change) with exit code 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_follows_a_job_until_it_ends() {
    let docker = FakeDocker::start().unwrap();
    let fx = Fixture::with_docker(&docker).await;
    let (key, _) = fx.stand_in_job("watch").await;
    let mut watch = fx
        .farm()
        .args([
            "status",
            &key,
            "--bucket",
            BUCKET,
            "--watch",
            "--interval",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_lines(watch.stdout.take().unwrap());
    // The render job's tasks run (held by the stand-in Docker) while the frames arrive.
    let running = wait_for_line(&lines, |l| l.contains("render RUNNING"));
    assert!(running.contains("frames 0/4 done"), "{running}");
    for frame in 1..=4 {
        fx.put_frame(
            &key,
            &JobKeys::new(&key).frame(frame, "png"),
            b"png".to_vec(),
        )
        .await;
        let done = format!("frames {frame}/4 done");
        wait_for_line(&lines, |l| l.contains(&done));
    }
    fx.put(&JobKeys::new(&key).zip(), b"zip".to_vec()).await;
    docker.release();
    let status = wait_with_timeout(&mut watch, Duration::from_secs(120));
    let seen = rest(&lines);
    let last = seen.last().cloned().unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{seen:#?}");
    assert_eq!(
        last,
        "farm-status: render SUCCEEDED (0 task(s) running), zip SUCCEEDED; frames 4/4 done, 0 failed; ended, complete",
        "{seen:#?}"
    );
    // One line per change: never the same line twice in a row.
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:#?}");
    assert!(
        docker.created() >= 3,
        "two render tasks and the zip task ran"
    );

    // A plain render job whose task exits 3: the watch ends on FAILED, exit code 1.
    docker.hold();
    docker.set_exit_code(3);
    let failing = format!("{}failing.blend", unique_prefix("failing"));
    fx.moto
        .s3()
        .put_object()
        .bucket(BUCKET)
        .key(&failing)
        .tagging("frames=1-2&chunk=2")
        .body(ByteStream::from_static(
            b"BLENDER-v304RENDH\x00\x00\x00 stand-in scene body",
        ))
        .send()
        .await
        .unwrap();
    submitted(&fx.trigger(&failing).await);
    let mut watch = fx
        .farm()
        .args(["status", &failing, "--bucket", BUCKET, "--watch", "--json"])
        .args(["--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_lines(watch.stdout.take().unwrap());
    wait_for_line(&lines, |l| l.contains(r#""render":"RUNNING""#));
    docker.release();
    let status = wait_with_timeout(&mut watch, Duration::from_secs(120));
    let events: Vec<Value> = rest(&lines)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(status.code(), Some(1), "{events:#?}");
    let last = events.last().unwrap();
    assert_eq!(last["render"], "FAILED", "{events:#?}");
    assert_eq!(last["ended"], true, "{events:#?}");
    assert_eq!(last["complete"], false, "{events:#?}");
    let mut stderr = String::new();
    watch
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.starts_with("farm: error: the job ended without all its frames")
            && stderr.contains("farm retry"),
        "{stderr}"
    );
}

/// The lines of a child's stdout as they come.
fn read_lines(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// The lines left, up to the end of the output.
fn rest(lines: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        rest.push(line);
    }
    rest
}

/// The first line that matches, within a minute.
fn wait_for_line(
    lines: &std::sync::mpsc::Receiver<String>,
    matches: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if matches(&line) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no such line ({e}); seen: {seen:#?}"),
        }
    }
}

/// The child's exit status, killing it after `limit`.
fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the watch did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
