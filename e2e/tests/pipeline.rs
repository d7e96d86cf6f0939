//! The production path end to end, with real parts: the AWS CLI uploads a Blender scene to S3
//! (moto), S3 notifies SQS, the trigger's handler gets the event, Batch (moto) holds the
//! submitted jobs, the real `renderer` binaries run every array child at once with exactly the
//! submitted environment, the real `zipper` runs after them, and the AWS CLI downloads
//! `frames.zip`, whose every frame is checked.

use std::collections::BTreeMap;

use aws_lambda_events::event::s3::S3Event;
use farm_core::receipt::{Prices, Receipt};
use farm_core::tasks::{TaskKind, TaskRecord};
use farm_core::{env, exit, JobKeys};
use farm_e2e::{assert_frames, bins, read_zip, receive_events, Farm, SceneOptions, SubmittedJob};
use trigger_lambda::{EventReport, RecordOutcome};

const BUCKET: &str = "farm-renders";

/// Outcomes of every record of every delivered event, by kind.
fn outcomes(delivered: &[(S3Event, EventReport)]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for (_, report) in delivered {
        for outcome in &report.records {
            let kind = match outcome {
                RecordOutcome::Ignored { .. } => "ignored",
                RecordOutcome::NoFrameTag { .. } => "no_frame_tag",
                RecordOutcome::Gone { .. } => "gone",
                RecordOutcome::Stale { .. } => "stale",
                RecordOutcome::Rejected { .. } => "rejected",
                RecordOutcome::Submitted { .. } => "submitted",
                RecordOutcome::Duplicate { .. } => "duplicate",
                RecordOutcome::Scouted { .. } => "scouted",
                RecordOutcome::Failed { .. } => "failed",
            };
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts
}

fn event_names(delivered: &[(S3Event, EventReport)]) -> Vec<String> {
    delivered
        .iter()
        .flat_map(|(event, _)| &event.records)
        .map(|r| r.event_name.clone().unwrap_or_default())
        .collect()
}

/// Runs the render job's children at once, then the zip job, as Batch would; downloads
/// `frames.zip` with the AWS CLI and checks it holds `frames` of the test scene.
async fn render_zip_download_check(
    farm: &Farm,
    key: &str,
    render: &SubmittedJob,
    zip: &SubmittedJob,
    frames: &[i32],
) {
    let env = farm.moto.env();
    let children = farm.run_render(render, &env, &[]).await;
    assert_eq!(children.len(), render.indexes().len());
    let mut uploaded = Vec::new();
    for child in &children {
        child.assert_code(exit::SUCCESS);
        uploaded.extend(child.uploaded_frames());
    }
    uploaded.sort_unstable();
    assert_eq!(uploaded, frames, "every frame uploaded exactly once");

    farm.run_zip(zip, &env).await.assert_code(exit::SUCCESS);

    let download = farm.path("download");
    std::fs::create_dir_all(&download).unwrap();
    let source = format!("s3://{BUCKET}/{}", JobKeys::new(key).zip());
    farm.aws()
        .run_in(&download, &["s3", "cp", &source, "./"])
        .await
        .unwrap();
    let entries = read_zip(&download.join("frames.zip")).await.unwrap();
    assert_frames(&entries, frames, (32, 24));

    // The archive holds exactly the frames in the bucket, byte for byte.
    let keys = JobKeys::new(key);
    for ((name, bytes), &frame) in entries.iter().zip(frames) {
        assert_eq!(
            &farm.get(&keys.frame(frame, "png")).await.unwrap(),
            bytes,
            "{name} differs from the frame in S3"
        );
    }
    assert!(farm.open_uploads().await.unwrap().is_empty());

    // The contact sheet: one tile per frame (fewer than 64), each in its frame's colour.
    let sheet = farm.get(&keys.preview()).await.unwrap();
    let mut decoder = jpeg_decoder::Decoder::new(&sheet[..]);
    let pixels = decoder.decode().expect("preview.jpg is a JPEG");
    let info = decoder.info().unwrap();
    let layout = farm_core::preview::Layout::for_tiles(frames.len());
    assert_eq!(
        (usize::from(info.width), usize::from(info.height)),
        (layout.width(), layout.height())
    );
    for (index, (name, bytes)) in entries.iter().enumerate() {
        let (x, y) = layout.origin(index);
        let (x, y) = (
            x + farm_core::preview::THUMB_WIDTH / 2,
            y + farm_core::preview::THUMB_HEIGHT / 2,
        );
        let at = (y * layout.width() + x) * 3;
        let tile = &pixels[at..at + 3];
        let frame = centre_pixel(bytes);
        assert!(
            tile.iter().zip(frame).all(|(t, f)| t.abs_diff(f) <= 8),
            "{name}: thumbnail {tile:?}, frame {frame:?}"
        );
    }

    // Every attempt left its task record, and the zip job summed them into the receipt.
    let mut records: Vec<TaskRecord> = Vec::new();
    for (object, _) in farm.objects(&keys.tasks_prefix()).await.unwrap() {
        records.push(serde_json::from_slice(&farm.get(&object).await.unwrap()).unwrap());
    }
    let renders: Vec<&TaskRecord> = records
        .iter()
        .filter(|r| r.task == TaskKind::Render)
        .collect();
    assert_eq!(renders.len(), children.len(), "{records:#?}");
    assert_eq!(
        records.len(),
        children.len() + 1,
        "and the zip's: {records:#?}"
    );
    let mut timed: Vec<i32> = renders
        .iter()
        .flat_map(|r| r.frames.iter().map(|t| t.frame))
        .collect();
    timed.sort_unstable();
    assert_eq!(timed, frames, "every frame timed once");
    assert!(records.iter().all(|r| r.exit_code == exit::SUCCESS));
    let receipt: Receipt =
        serde_json::from_slice(&farm.get(&keys.receipt()).await.unwrap()).unwrap();
    let region = env
        .iter()
        .find(|(name, _)| name == "AWS_REGION")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    assert_eq!(
        receipt,
        Receipt::compute(
            &records,
            frames.len(),
            Prices::for_region(region, None, None)
        )
    );
    assert_eq!(receipt.frames, frames.len());
    assert_eq!(receipt.tasks, children.len() + 1);
    assert!(receipt.frame_seconds.max > 0.0, "{receipt:?}");
    assert!(
        receipt.wall_seconds > 0.0 && receipt.task_seconds > 0.0,
        "{receipt:?}"
    );

    // Nothing the farm wrote (frames, frames.zip, job.json, markers) notified the trigger again.
    let more = receive_events(&farm.aws(), &farm.queue).await.unwrap();
    assert!(more.is_empty(), "the farm's own writes notified: {more:?}");
}

/// The RGB of a PNG frame's centre pixel.
fn centre_pixel(png_bytes: &[u8]) -> [u8; 3] {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let at =
        ((info.height as usize / 2) * info.width as usize + info.width as usize / 2) * channels;
    [pixels[at], pixels[at + 1], pixels[at + 2]]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tagged_upload_becomes_a_checked_frames_zip() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let scene = farm.scene(
        "scene",
        &SceneOptions {
            end: 8,
            ..SceneOptions::default()
        },
    );
    let key = "shots/my scene.blend";
    let put = farm
        .aws()
        .json(&[
            "s3api",
            "put-object",
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--body",
            scene.to_str().unwrap(),
            "--tagging",
            "frames=1-6&chunk=2",
        ])
        .await
        .unwrap();
    let etag = put["ETag"].as_str().unwrap().to_owned();

    // moto notifies twice for one tagged PutObject (ObjectCreated:Put, then an
    // ObjectTagging:Put real S3 does not send): the second is a duplicate of the first.
    let delivered = farm.deliver().await.unwrap();
    assert_eq!(
        event_names(&delivered),
        ["ObjectCreated:Put", "ObjectTagging:Put"]
    );
    assert_eq!(
        outcomes(&delivered),
        BTreeMap::from([("submitted", 1), ("duplicate", 1)])
    );

    let jobs = farm.jobs().await.unwrap();
    assert_eq!(jobs.len(), 2, "one render and one zip job: {jobs:#?}");
    let (render, zip) = farm.jobs_of(key).await.unwrap();
    assert_eq!(render.array_size, Some(3), "6 frames in chunks of 2");
    let expected_env = [
        (env::BUCKET, BUCKET),
        (env::KEY, key),
        (env::FRAMES, "1-6"),
        (env::CHUNK, "2"),
        (env::SOURCE_ETAG, etag.as_str()),
    ];
    for job in [&render, &zip] {
        for (name, value) in expected_env {
            assert_eq!(job.var(name), Some(value), "{name} of {}", job.name);
        }
        assert_eq!(job.var(env::FORMAT), None);
    }
    assert_eq!(zip.array_size, None);
    assert_eq!(zip.depends_on, std::slice::from_ref(&render.id));
    assert!(render.depends_on.is_empty());

    render_zip_download_check(&farm, key, &render, &zip, &[1, 2, 3, 4, 5, 6]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_step_upload_starts_its_job_when_tagged() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let scene = farm.scene("two-step", &SceneOptions::default());
    let key = "uploads/two step ü.blend";
    let target = format!("s3://{BUCKET}/{key}");
    farm.aws()
        .run(&["s3", "cp", scene.to_str().unwrap(), &target])
        .await
        .unwrap();
    // No frame tag yet: nothing is submitted.
    let delivered = farm.deliver().await.unwrap();
    assert!(!delivered.is_empty());
    assert_eq!(
        outcomes(&delivered),
        BTreeMap::from([("no_frame_tag", delivered.len())])
    );
    assert!(farm.jobs().await.unwrap().is_empty());

    farm.aws()
        .run(&[
            "s3api",
            "put-object-tagging",
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--tagging",
            "TagSet=[{Key=frame,Value=4}]",
        ])
        .await
        .unwrap();
    let delivered = farm.deliver().await.unwrap();
    assert_eq!(event_names(&delivered), ["ObjectTagging:Put"]);
    assert_eq!(outcomes(&delivered), BTreeMap::from([("submitted", 1)]));

    let jobs = farm.jobs().await.unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    let (render, zip) = farm.jobs_of(key).await.unwrap();
    assert_eq!(
        render.array_size,
        Some(4),
        "frame=4 is frames 1-4, one per child"
    );
    assert_eq!(render.var(env::FRAMES), Some("1-4"));
    assert_eq!(render.var(env::CHUNK), Some("1"));
    assert_eq!(zip.depends_on, std::slice::from_ref(&render.id));

    render_zip_download_check(&farm, key, &render, &zip, &[1, 2, 3, 4]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_events_are_completed_as_real_s3_sends_them() {
    let farm = Farm::start(BUCKET).await.unwrap();
    let body = farm.path("x.blend");
    std::fs::write(&body, b"BLENDER-v304 a stand-in").unwrap();
    farm.aws()
        .run(&[
            "s3api",
            "put-object",
            "--bucket",
            BUCKET,
            "--key",
            "a b.blend",
            "--body",
            body.to_str().unwrap(),
        ])
        .await
        .unwrap();
    let raw = receive_events(&farm.aws(), &farm.queue).await.unwrap();
    assert!(!raw.is_empty());
    for event in &raw {
        let record = &event["Records"][0];
        // What moto leaves out, and why the harness adds it rather than the handler relaxing.
        assert!(record.get("userIdentity").is_none(), "{record}");
        assert!(record.get("requestParameters").is_none(), "{record}");
        assert!(serde_json::from_value::<S3Event>(event.clone()).is_err());

        let completed = farm_e2e::as_delivered_by_s3(event).unwrap();
        let record = &completed.records[0];
        assert!(record.principal_id.principal_id.is_some());
        assert!(record.request_parameters.source_ip_address.is_some());
        assert_eq!(record.s3.object.key.as_deref(), Some("a+b.blend"));
        assert_eq!(record.s3.bucket.name.as_deref(), Some(BUCKET));
    }
}
