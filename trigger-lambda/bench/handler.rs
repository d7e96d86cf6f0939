//! Handler time for a 10,000-frame request (`frame=10000`, chunk 1: a 10,000-child array job)
//! against moto_server, through the real adapters. Run with `trigger-lambda/bench/run.sh`, or
//! `cargo bench -p trigger-lambda --bench handler`.
//!
//! Each run uploads a fresh stand-in .blend (new key) and times one `handle_event` call: HEAD,
//! GetObjectTagging, the ranged GET, the marker, two SubmitJob calls, the marker update and
//! `job.json`. A duplicate delivery of the same event is timed too.

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_s3::primitives::ByteStream;
use farm_io::{BatchScheduler, BatchTargets, S3Storage};
use farm_testkit::{unique_prefix, Moto};
use trigger_lambda::{handle_event, Deps, RecordOutcome};

const BUCKET: &str = "farm-bench";
const RUNS: usize = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    moto.bucket(BUCKET).await?;
    let batch = moto.batch_env().await?;
    let s3 = moto.s3();
    let for_buckets = s3.clone();
    let deps = Deps {
        buckets: move |bucket: &str| S3Storage::new(for_buckets.clone(), bucket),
        scheduler: BatchScheduler::new(
            moto.batch(),
            BatchTargets {
                queue: batch.queue.clone(),
                render_definition: batch.render_definition.clone(),
                zip_definition: batch.zip_definition.clone(),
            },
        ),
        max_frames: 10_000,
        task_slots: None,
        read_budget: trigger_lambda::READ_BUDGET,
        shared_prefixes: Default::default(),
    };

    let mut rows = Vec::new();
    for (label, tags) in [
        ("frame=10000 (10,000-child array)", "frame=10000"),
        ("frame=120 (120-child array)", "frame=120"),
        (
            "frame=10000&chunk=10000 (plain job)",
            "frame=10000&chunk=10000",
        ),
    ] {
        let mut first = Vec::new();
        let mut duplicate = Vec::new();
        for run in 0..RUNS {
            let key = format!("{}scene-{run}.blend", unique_prefix("bench"));
            let put = s3
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(ByteStream::from_static(b"BLENDER-v304RENDH\0\0\0 bench"))
                .tagging(tags)
                .send()
                .await
                .context("uploading the stand-in scene")?;
            let etag = put.e_tag().unwrap_or_default().trim_matches('"').to_owned();

            let started = Instant::now();
            let report = handle_event(&deps, event(&key, &etag)?).await?;
            first.push(started.elapsed());
            anyhow::ensure!(report.submitted() == 1, "not submitted: {report:?}");

            let started = Instant::now();
            let report = handle_event(&deps, event(&key, &etag)?).await?;
            duplicate.push(started.elapsed());
            anyhow::ensure!(
                matches!(report.records[..], [RecordOutcome::Duplicate { .. }]),
                "not a duplicate: {report:?}"
            );
        }
        rows.push((label, first, duplicate));
    }

    println!(
        "| request | first delivery: median (min-max) | duplicate delivery: median (min-max) |"
    );
    println!("|---|---|---|");
    for (label, first, duplicate) in rows {
        println!("| {label} | {} | {} |", summary(first), summary(duplicate));
    }
    Ok(())
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.0} ms ({:.0}-{:.0}) over {} runs",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    )
}

fn event(key: &str, etag: &str) -> anyhow::Result<S3Event> {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/object_created_put.json"
    );
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture)?)?;
    let record = &mut value["Records"][0];
    record["s3"]["bucket"]["name"] = BUCKET.into();
    // The bench keys need no escaping: letters, digits, `-`, `/` and `.` only.
    record["s3"]["object"]["key"] = key.into();
    record["s3"]["object"]["eTag"] = etag.into();
    Ok(serde_json::from_value(value)?)
}
