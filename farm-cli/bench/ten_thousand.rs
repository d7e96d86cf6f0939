//! A job of 10,000 array children against moto_server (issue 27, item 4), end to end through
//! the real code: the trigger's handler submits it (frame list by reference), 10,000 frames and
//! 10,000 task records are put as the renderer would (the records naming the frames' objects
//! with the ETags moto returned), then the real `farm status --json` and
//! the real `zipper` binary (the zip job's own environment, read back from Batch) run under
//! `/usr/bin/time`; moto's request log counts their calls. Run it with `scripts/bench-10k.sh`
//! (numbers in BENCHMARKS.md, "10,000 children").

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use farm_core::storage::{get_json, PutOptions, Storage};
use farm_core::tasks::UploadedFrame;
use farm_core::JobKeys;
use farm_io::{BatchScheduler, BatchTargets, S3Storage};
use farm_testkit::Moto;
use futures::stream::{self, StreamExt, TryStreamExt};
use trigger_lambda::{handle_event, parse_event, Deps, RecordOutcome};

const BUCKET: &str = "farm-bench";
const KEY: &str = "bench/ten-thousand.blend";
const CHILDREN: usize = 10_000;
/// Objects put into moto at once.
const PUTS_AT_ONCE: usize = 32;
/// A 1x1 PNG: every frame of the job (the contact sheet decodes the sampled ones).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "load average at the start: {}",
        std::fs::read_to_string("/proc/loadavg")?.trim()
    );
    let moto = Moto::start().await?;
    moto.bucket(BUCKET).await?;
    let batch = moto.batch_env().await?;
    let s3 = moto.s3();
    let storage = S3Storage::new(s3.clone(), BUCKET);
    let keys = JobKeys::new(KEY);
    let zip_job = submit(&moto, &batch).await?;
    let manifest = seed(&storage, &keys).await?;
    let farm = Path::new(env!("CARGO_BIN_EXE_farm"));
    time_status(&moto, farm, &storage, &keys, &manifest).await?;
    time_zipper(&moto, farm, &keys, &zip_job).await?;
    let started = Instant::now();
    let sampled = farm_core::preview::sample(CHILDREN, farm_core::preview::MAX_TILES);
    println!(
        "contact sheet: {} of {CHILDREN} frames sampled ({:?} ... {:?}) in {:.1?}",
        sampled.len(),
        sampled.first(),
        sampled.last(),
        started.elapsed()
    );
    println!(
        "load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")?.trim()
    );
    Ok(())
}

/// Uploads the stand-in .blend tagged for 10,000 children and runs the trigger's handler on
/// its event; the zip job's id.
async fn submit(moto: &Moto, batch: &farm_testkit::BatchEnv) -> anyhow::Result<String> {
    let s3 = moto.s3();
    s3.put_object()
        .bucket(BUCKET)
        .key(KEY)
        .tagging(format!("frames=1-{CHILDREN}&chunk=1"))
        .body(ByteStream::from_static(
            b"BLENDER-v304RENDH\x00\x00\x00 stand-in scene body",
        ))
        .send()
        .await?;
    let etag = s3.head_object().bucket(BUCKET).key(KEY).send().await?;
    let event = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-06T21:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUSER"},
        "requestParameters": {"sourceIPAddress": "192.0.2.10"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {
            "s3SchemaVersion": "1.0", "configurationId": "farm-trigger",
            "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
            "object": {
                "key": KEY, "size": etag.content_length().unwrap_or(0),
                "eTag": etag.e_tag().unwrap_or_default().trim_matches('"'),
                "sequencer": "0062E99A88DC407460",
            },
        },
    }]});
    let for_buckets = s3.clone();
    let targets = BatchTargets {
        queue: batch.queue.clone(),
        render_definition: batch.render_definition.clone(),
        zip_definition: batch.zip_definition.clone(),
    };
    let deps = Deps {
        buckets: move |bucket: &str| S3Storage::new(for_buckets.clone(), bucket),
        scheduler: BatchScheduler::new(moto.batch(), targets),
        max_frames: CHILDREN,
        task_slots: None,
        read_budget: trigger_lambda::READ_BUDGET,
        shared_prefixes: Default::default(),
    };
    let started = Instant::now();
    let report = handle_event(&deps, parse_event(event)?).await?;
    let trigger = started.elapsed();
    let zip_job = match &report.records[0] {
        RecordOutcome::Submitted { zip_job_id, .. } => zip_job_id.clone(),
        other => anyhow::bail!("the trigger did not submit: {other:?}"),
    };
    println!("trigger: submitted the {CHILDREN}-child job in {trigger:.1?}");
    Ok(zip_job)
}

/// Puts the job's 10,000 frames and task records as the renderer leaves them: each frame by
/// the renderer's call (`Storage::upload_file` with the version's metadata), each record naming
/// the frame's object with the ETag moto returned and the version; the manifest.
async fn seed(
    storage: &S3Storage,
    keys: &JobKeys,
) -> anyhow::Result<farm_core::manifest::JobManifest> {
    let manifest: farm_core::manifest::JobManifest = get_json(storage, &keys.manifest()).await?;
    let version = farm_jobs::JobTicket::from_manifest(&manifest)?.version();
    let dir = tempfile::tempdir()?;
    let png = dir.path().join("frame.png");
    std::fs::write(&png, PNG)?;
    let options = PutOptions {
        content_type: Some("image/png".to_owned()),
        metadata: version.metadata(),
        ..PutOptions::default()
    };
    let started = Instant::now();
    let uploaded: Vec<UploadedFrame> = stream::iter(1..=CHILDREN)
        .map(|frame| {
            let key = keys.frame(i32::try_from(frame).unwrap_or(i32::MAX), "png");
            let (png, options) = (&png, &options);
            async move {
                let etag = storage.upload_file(&key, png, options).await?;
                let etag = etag.ok_or_else(|| anyhow::anyhow!("no ETag returned for {key}"))?;
                anyhow::Ok(UploadedFrame {
                    key,
                    etag,
                    size: PNG.len() as u64,
                })
            }
        })
        .buffered(PUTS_AT_ONCE)
        .try_collect()
        .await?;
    println!("put {CHILDREN} frames in {:.1?}", started.elapsed());
    let started = Instant::now();
    stream::iter(uploaded.into_iter().enumerate())
        .map(|(index, object)| {
            let mut record = farm_testkit::render_record(index, manifest.etag.as_deref(), 80.0);
            record.frames[0].object = Some(object);
            record.frame_metadata = Some(version.metadata());
            let key = keys.task_record(index, 1);
            async move { farm_core::storage::put_json(storage, &key, &record).await }
        })
        .buffer_unordered(PUTS_AT_ONCE)
        .try_collect::<Vec<_>>()
        .await?;
    println!("put {CHILDREN} task records in {:.1?}", started.elapsed());
    Ok(manifest)
}

/// `farm status --json` under `/usr/bin/time`, and the task records read twice with a
/// [`farm_jobs::tasks::RecordCache`] as `--watch` reads them.
async fn time_status(
    moto: &Moto,
    farm: &Path,
    storage: &S3Storage,
    keys: &JobKeys,
    manifest: &farm_core::manifest::JobManifest,
) -> anyhow::Result<()> {
    let mut status = timed(farm, moto);
    status.args(["status", KEY, "--bucket", BUCKET, "--json"]);
    let (output, calls) = run(moto, &mut status)?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    println!(
        "farm status --json: {} {calls}; frames done {}, spend attempts {}",
        time_line(&output),
        report["frames"]["done"],
        report["spend"]["attempts_ended"]
    );

    // What `farm status --watch` reads of the records and the frames at each reading after the
    // first: the listings only (moto's jobs end at once here, so the watch itself ends at its
    // first one).
    let ticket = farm_jobs::JobTicket::from_manifest(manifest)?;
    let mut cache = farm_jobs::tasks::RecordCache::default();
    for reading in ["first", "second"] {
        let before = moto.log().len();
        let started = Instant::now();
        let records = farm_jobs::tasks::job_records_cached(storage, keys, None, &mut cache).await?;
        let gets = moto.log()[before..]
            .lines()
            .filter(|l| l.contains("\"GET ") && !l.contains("list-type=2"))
            .count();
        println!(
            "task records, {reading} reading with a RecordCache (status --watch): {} records, {gets} GETs, {:.1?}",
            records.len(),
            started.elapsed()
        );
        let (before, started) = (moto.log().len(), Instant::now());
        let frames = ticket.plan.frames();
        let scan = farm_jobs::scan_frames(
            storage,
            keys,
            frames.as_slice(),
            &ticket.version(),
            &records,
        )
        .await?;
        let heads = moto.log()[before..]
            .lines()
            .filter(|l| l.contains("\"HEAD "))
            .count();
        println!(
            "frame scan with those records: {} current, {heads} HEADs, {:.1?}",
            scan.current.len(),
            started.elapsed()
        );
    }

    Ok(())
}

/// The real zipper with the zip job's own environment, with and without the contact sheet.
async fn time_zipper(
    moto: &Moto,
    farm: &Path,
    keys: &JobKeys,
    zip_job: &str,
) -> anyhow::Result<()> {
    let s3 = moto.s3();
    let zipper = farm.with_file_name("zipper");
    anyhow::ensure!(
        zipper.is_file(),
        "{} is missing: cargo build -p zipper first (scripts/bench-10k.sh does)",
        zipper.display()
    );
    let described = moto.batch().describe_jobs().jobs(zip_job).send().await?;
    let environment: Vec<(String, String)> = described.jobs()[0]
        .container()
        .map(|c| c.environment())
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| Some((kv.name()?.to_owned(), kv.value()?.to_owned())))
        .collect();
    for preview in ["true", "false"] {
        let mut zip = timed(&zipper, moto);
        zip.envs(environment.iter().cloned())
            .env(farm_core::env::BATCH_JOB_ID, zip_job)
            .env(farm_core::env::BATCH_JOB_ATTEMPT, "1")
            .env(farm_core::env::PREVIEW, preview);
        let (output, calls) = run(moto, &mut zip)?;
        anyhow::ensure!(
            output.status.success(),
            "the zipper failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let size = |key: String| {
            let s3 = s3.clone();
            async move {
                // 0: not there (the zipper without a contact sheet leaves none).
                s3.head_object()
                    .bucket(BUCKET)
                    .key(key)
                    .send()
                    .await
                    .ok()
                    .and_then(|h| h.content_length())
                    .unwrap_or(0)
            }
        };
        println!(
            "zipper (FARM_PREVIEW={preview}): {} {calls}; frames.zip {} bytes, receipt.json {} bytes, preview.jpg {} bytes",
            time_line(&output),
            size(keys.zip()).await,
            size(format!("{KEY}/receipt.json")).await,
            size(format!("{KEY}/preview.jpg")).await,
        );
    }
    Ok(())
}

/// `program` under `/usr/bin/time`, against moto, with no AWS settings of this machine.
fn timed(program: &Path, moto: &Moto) -> Command {
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "TIME %e s wall, %M KiB peak RSS"])
        .arg(program)
        .env("AWS_CONFIG_FILE", "/nonexistent/farm-bench-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/farm-bench-credentials",
        )
        .env(farm_core::env::PROGRESS, "off")
        .envs(moto.env());
    command
}

/// Runs `command`; its output and the calls moto answered meanwhile, by kind.
fn run(moto: &Moto, command: &mut Command) -> anyhow::Result<(std::process::Output, String)> {
    let before = moto.log().len();
    let output = command.output()?;
    let log = moto.log();
    let lines: Vec<&str> = log.get(before..).unwrap_or_default().lines().collect();
    let count = |pred: &dyn Fn(&str) -> bool| lines.iter().filter(|l| pred(l)).count();
    let calls = format!(
        "(calls: {} DescribeJobs, {} S3 lists, {} S3 GETs, {} S3 HEADs, {} S3 PUTs/POSTs, {} in all)",
        count(&|l| l.contains("POST /v1/describejobs")),
        count(&|l| l.contains("\"GET ") && l.contains("list-type=2")),
        count(&|l| l.contains("\"GET ") && !l.contains("list-type=2")),
        count(&|l| l.contains("\"HEAD ")),
        count(&|l| {
            (l.contains("\"PUT ") || l.contains("\"POST ")) && !l.contains("/v1/describejobs")
        }),
        count(&|l| l.contains(" HTTP/1.1\"")),
    );
    Ok((output, calls))
}

/// The `TIME ...` line `/usr/bin/time` wrote.
fn time_line(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("TIME "))
        .unwrap_or("(no time)")
        .to_owned()
}
