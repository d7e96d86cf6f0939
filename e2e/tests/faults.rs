//! Fault injection on the production path: containers killed mid-work, S3 unreachable for a
//! few seconds, events delivered twice and in bursts, and a frame Blender cannot render. Each
//! test states what it asserts; what it cannot assert is said where it would be.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use farm_core::storage::{FORMAT_METADATA, SCENE_FORMAT, SOURCE_ETAG_METADATA};
use farm_core::{env, exit, JobKeys};
use farm_e2e::{
    as_delivered_by_s3, assert_frames, bins, is_whole_png, png_size, read_zip, receive_events,
    Farm, ObjectInfo, Proxy, Running, SceneOptions, SubmittedJob,
};
use futures::StreamExt;
use trigger_lambda::RecordOutcome;

const BUCKET: &str = "farm-renders";

/// Uploads, delivers the events to the trigger and returns the render and zip jobs it submitted.
async fn submit(
    farm: &Farm,
    key: &str,
    scene: &Path,
    tagging: &str,
) -> (SubmittedJob, SubmittedJob) {
    farm.upload_tagged(key, scene, tagging).await;
    let delivered = farm.deliver().await.unwrap();
    let submitted = delivered
        .iter()
        .flat_map(|(_, report)| &report.records)
        .filter(|o| matches!(o, RecordOutcome::Submitted { .. }))
        .count();
    assert_eq!(submitted, 1, "{delivered:#?}");
    farm.jobs_of(key).await.unwrap()
}

/// Frames under the job's `frames/` prefix, by frame number.
async fn frame_objects(farm: &Farm, key: &str) -> BTreeMap<i32, ObjectInfo> {
    let keys = JobKeys::new(key);
    farm.objects(&keys.frames_prefix())
        .await
        .unwrap()
        .into_iter()
        .map(|(k, info)| {
            let (frame, extension) = keys
                .parse_frame_key(&k)
                .unwrap_or_else(|| panic!("{k} is not a frame key"));
            assert_eq!(extension, "png");
            (frame, info)
        })
        .collect()
}

/// Every object the farm wrote under `key/`: frames whole PNGs of `size` showing their own
/// frame, nothing else but the manifest, the request markers, whole task records, receipt and
/// contact sheet, and `allowed` extras.
async fn assert_nothing_partial(farm: &Farm, key: &str, size: (u32, u32), allowed: &[&str]) {
    let keys = JobKeys::new(key);
    for (object, _) in farm.objects(&format!("{key}/")).await.unwrap() {
        if let Some((frame, _)) = keys.parse_frame_key(&object) {
            let bytes = farm.get(&object).await.unwrap();
            assert!(is_whole_png(&bytes), "{object} is not a whole PNG");
            assert_eq!(png_size(&bytes), Some(size), "{object}");
            assert_eq!(farm_e2e::frame_code(&bytes).unwrap(), frame, "{object}");
        } else {
            // Task records and the receipt are whole JSON documents of their kind.
            if object.starts_with(&keys.tasks_prefix()) {
                let bytes = farm.get(&object).await.unwrap();
                serde_json::from_slice::<farm_core::tasks::TaskRecord>(&bytes)
                    .unwrap_or_else(|e| panic!("{object} is not a task record: {e}"));
                continue;
            }
            if object == keys.receipt() {
                let bytes = farm.get(&object).await.unwrap();
                serde_json::from_slice::<farm_core::receipt::Receipt>(&bytes)
                    .unwrap_or_else(|e| panic!("{object} is not a receipt: {e}"));
                continue;
            }
            if object == keys.preview() {
                let bytes = farm.get(&object).await.unwrap();
                jpeg_decoder::Decoder::new(bytes.as_slice())
                    .decode()
                    .unwrap_or_else(|e| panic!("{object} is not a whole JPEG: {e}"));
                continue;
            }
            let ok = object == keys.manifest()
                || object.starts_with(&keys.requests_prefix())
                || allowed.contains(&object.as_str());
            assert!(ok, "unexpected object {object}");
        }
    }
    assert_eq!(
        farm.open_uploads().await.unwrap(),
        vec![],
        "open multipart uploads"
    );
}

/// Waits until `ready` gives a value, failing if one of `running` ends first or it takes too
/// long.
async fn wait_for<T, F, Fut>(running: &mut [&mut Running], what: &str, mut ready: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = ready().await {
            return value;
        }
        for run in running.iter_mut() {
            assert!(
                !run.has_exited(),
                "{} ended before {what}: the fault came too late to test anything",
                run.label
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Downloads `frames.zip` with the AWS CLI and returns its entries (tested by Python's zipfile).
async fn download_zip(farm: &Farm, key: &str, into: &str) -> Vec<(String, Vec<u8>)> {
    let dir = farm.path(into);
    std::fs::create_dir_all(&dir).unwrap();
    let source = format!("s3://{BUCKET}/{}", JobKeys::new(key).zip());
    farm.aws()
        .run_in(&dir, &["s3", "cp", &source, "./"])
        .await
        .unwrap();
    read_zip(&dir.join("frames.zip")).await.unwrap()
}

// ---------------------------------------------------------------------------------------------

/// A render container SIGKILLed (with its Blender) after some frames of its chunk were uploaded,
/// then started again with the same environment, as Batch's retry does.
///
/// Asserts: the retry exits 0; it renders and uploads exactly the frames missing after the kill
/// (its `chunk planned` line and its `frame uploaded` lines); the frames the killed run
/// uploaded keep their ETag and LastModified (not written again); every object is a whole PNG
/// showing its frame, no multipart upload is open, no Blender is left running, and the zip job
/// then archives all frames.
#[tokio::test(flavor = "multi_thread")]
async fn a_renderer_killed_mid_chunk_resumes_without_rendering_a_frame_twice() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let size = (96, 72);
    let scene = farm.scene(
        "killed",
        &SceneOptions {
            end: 12,
            width: size.0,
            height: size.1,
            samples: 24,
            ..SceneOptions::default()
        },
    );
    let key = "shots/killed.blend";
    let (render, zip) = submit(&farm, key, &scene, "frames=1-12&chunk=12").await;
    assert_eq!(render.array_size, None, "one chunk: a plain job");
    let env = farm.moto.env();

    let mut first = farm.spawn(&bins().renderer, &render, None, &env, &[]);
    wait_for(&mut [&mut first], "3 frames uploaded", || async {
        (frame_objects(&farm, key).await.len() >= 3).then_some(())
    })
    .await;
    let scratch = first.scratch.clone();
    assert!(
        !farm_e2e::processes_naming(&scratch).is_empty(),
        "Blender is not running"
    );
    first.kill_container();
    let killed = first.wait().await;
    assert_eq!(killed.code, None, "killed by a signal: {}", killed.log);
    assert_eq!(
        farm_e2e::wait_until_gone(&scratch).await,
        Vec::<String>::new(),
        "Blender outlived its container"
    );

    let kept = frame_objects(&farm, key).await;
    let done: BTreeSet<i32> = kept.keys().copied().collect();
    assert!(
        done.len() < 12,
        "the chunk finished before the kill: make the scene slower"
    );
    // Frames in S3 after the kill are whole; nothing half-written is visible.
    assert_nothing_partial(&farm, key, size, &[]).await;

    let retry = farm
        .spawn(&bins().renderer, &render, None, &env, &[])
        .wait()
        .await;
    retry.assert_code(exit::SUCCESS);
    let missing: Vec<i32> = (1..=12).filter(|f| !done.contains(f)).collect();
    let planned = retry.fields_of("chunk planned");
    assert_eq!(planned.len(), 1, "{}", retry.log);
    assert_eq!(
        planned[0]["pending"].as_u64(),
        Some(missing.len() as u64),
        "the retry renders only the missing frames"
    );
    assert_eq!(
        retry.uploaded_frames(),
        missing,
        "frames the retry uploaded"
    );
    let after = frame_objects(&farm, key).await;
    assert_eq!(after.len(), 12);
    for (frame, before) in &kept {
        assert_eq!(&after[frame], before, "frame {frame} was written again");
    }
    assert_nothing_partial(&farm, key, size, &[]).await;

    farm.run_zip(&zip, &env).await.assert_code(exit::SUCCESS);
    let entries = download_zip(&farm, key, "download").await;
    assert_frames(&entries, &(1..=12).collect::<Vec<_>>(), size);
}

/// S3 unreachable for 4 seconds in the middle of a render job: a proxy in front of moto stops
/// listening (connections are refused) and resets its open connections, then listens again.
///
/// Asserts: the cut was real (no frame reached S3 while it lasted) and came while both
/// containers ran with frames still to upload;
/// each child then either finished (exit 0, the SDK's retries rode it out) or exited with the
/// transient code 4, and a rerun of such a child exits 0; the zip job (through the proxy too)
/// exits 0; every frame is a whole PNG showing its frame, no log or missing.json was written,
/// no multipart upload is open, and frames.zip holds all 8 frames.
#[tokio::test(flavor = "multi_thread")]
async fn s3_unreachable_mid_render_is_retried_or_exits_transient_and_a_rerun_completes() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let size = (64, 48);
    let scene = farm.scene(
        "flaky",
        &SceneOptions {
            end: 8,
            width: size.0,
            height: size.1,
            samples: 16,
            ..SceneOptions::default()
        },
    );
    let key = "shots/flaky network.blend";
    let (render, zip) = submit(&farm, key, &scene, "frames=1-8&chunk=4").await;
    assert_eq!(render.array_size, Some(2));
    let proxy = Proxy::start(&farm.moto.endpoint).await.unwrap();
    let env = proxy.env(&farm.moto.env());

    let mut children: Vec<Running> = render
        .indexes()
        .into_iter()
        .map(|index| farm.spawn(&bins().renderer, &render, index, &env, &[]))
        .collect();
    {
        let mut refs: Vec<&mut Running> = children.iter_mut().collect();
        wait_for(&mut refs, "the first frame uploaded", || async {
            (!frame_objects(&farm, key).await.is_empty()).then_some(())
        })
        .await;
    }
    proxy.cut().await;
    let running_at_cut = children
        .iter_mut()
        .map(|c| !c.has_exited())
        .filter(|running| *running)
        .count();
    let at_cut = frame_objects(&farm, key).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before_restore = frame_objects(&farm, key).await;
    proxy.restore().await;
    assert_eq!(
        at_cut, before_restore,
        "a frame reached S3 through the cut proxy"
    );
    assert_eq!(
        running_at_cut, 2,
        "both containers were running when S3 went away"
    );
    assert!(at_cut.len() < 8, "every frame was in before the cut");

    let mut outcomes = Vec::new();
    for child in children {
        let index: Option<usize> = child
            .label
            .rsplit_once(':')
            .map(|(_, i)| i.parse().unwrap());
        let exited = child.wait().await;
        match exited.code {
            Some(exit::SUCCESS) => outcomes.push("done"),
            Some(exit::TRANSIENT) => {
                outcomes.push("transient, rerun");
                farm.spawn(&bins().renderer, &render, index, &env, &[])
                    .wait()
                    .await
                    .assert_code(exit::SUCCESS);
            }
            _ => exited.assert_code(exit::TRANSIENT),
        }
    }
    eprintln!("children after the cut: {outcomes:?}");
    assert_eq!(frame_objects(&farm, key).await.len(), 8);
    assert_nothing_partial(&farm, key, size, &[]).await;

    farm.run_zip(&zip, &env).await.assert_code(exit::SUCCESS);
    let entries = download_zip(&farm, key, "download").await;
    assert_frames(&entries, &(1..=8).collect::<Vec<_>>(), size);
    assert_nothing_partial(&farm, key, size, &[&JobKeys::new(key).zip()]).await;
}

/// 50 tagged uploads to 50 keys in quick succession, every event delivered (moto sends two per
/// tagged PutObject: ObjectCreated:Put and ObjectTagging:Put), handled 10 at a time as
/// concurrent Lambda invocations, and then every event delivered again, each twice at once.
///
/// Asserts: 50 records submitted, every other .blend record a duplicate, none failed; ListJobs
/// over every status finds exactly 100 jobs: one render and one zip job per key.
#[tokio::test(flavor = "multi_thread")]
async fn duplicate_events_and_fifty_quick_uploads_make_exactly_one_job_each() {
    let farm = Farm::start(BUCKET).await.unwrap();
    // Any .blend will do: nothing is rendered. A header is all the trigger reads.
    let blend =
        bytes::Bytes::from_static(b"BLENDER-v304REND\x00\x00\x00\x00 a stand-in scene body");
    let keys: Vec<String> = (0..50)
        .map(|n| format!("burst/shot {n:02}.blend"))
        .collect();
    let uploads = keys.iter().map(|key| {
        farm.s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(blend.clone()))
            .tagging("frames=1-4&chunk=2")
            .send()
    });
    for result in futures::future::join_all(uploads).await {
        result.unwrap();
    }

    let events = receive_events(&farm.aws(), &farm.queue).await.unwrap();
    assert_eq!(events.len(), 100, "two notifications per upload");
    let events: Vec<_> = events
        .iter()
        .map(|e| as_delivered_by_s3(e).unwrap())
        .collect();
    let farm = Arc::new(farm);
    // An invocation that meets a delivery of the same request still submitting fails, and
    // Lambda delivers the event again later (a minute or more): here, once the round is over.
    let invoke = |event: aws_lambda_events::event::s3::S3Event| {
        let farm = Arc::clone(&farm);
        async move {
            let mut in_flight = 0;
            loop {
                match farm.invoke(&event).await {
                    Ok(report) => return (report, in_flight),
                    Err(e) if e.to_string().contains("is pending") && in_flight < 3 => {
                        in_flight += 1;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Err(e) => panic!("{e:#}"),
                }
            }
        }
    };
    // First delivery: the uploads at the same time, but an upload's two events one after the
    // other. moto checks `If-None-Match: *` and then writes, without a lock, so two deliveries
    // of one request at the same instant can both create its marker there (S3 itself makes
    // the conditional write atomic); the farm's answer to that race in S3 (the second delivery
    // fails and is retried) is tested on the in-memory store in trigger-lambda's handler tests.
    // Then a second delivery of every event, each twice at the same time: the markers exist.
    let mut by_key: BTreeMap<String, Vec<aws_lambda_events::event::s3::S3Event>> = BTreeMap::new();
    for event in &events {
        let key = event.records[0].s3.object.key.clone().unwrap_or_default();
        by_key.entry(key).or_default().push(event.clone());
    }
    let first = futures::stream::iter(by_key.into_values().map(|group| {
        let invoke = &invoke;
        async move {
            let mut reports = Vec::new();
            for event in group {
                reports.push(invoke(event).await);
            }
            reports
        }
    }))
    .buffer_unordered(10)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let again = futures::stream::iter(events.iter().chain(events.iter()).cloned().map(invoke))
        .buffer_unordered(10)
        .collect::<Vec<_>>()
        .await;
    let retried: usize = first.iter().chain(&again).map(|(_, n)| n).sum();
    eprintln!("{retried} invocation(s) met a request still submitting and were delivered again");
    let (first, again): (Vec<_>, Vec<_>) = (
        first.into_iter().map(|(r, _)| r).collect(),
        again.into_iter().map(|(r, _)| r).collect(),
    );

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (round, reports) in [("first", &first), ("again", &again)] {
        for report in reports {
            for outcome in &report.records {
                let kind = match outcome {
                    RecordOutcome::Submitted { .. } => "submitted",
                    RecordOutcome::Duplicate { .. } => "duplicate",
                    other => panic!("{round}: unexpected outcome {other:?}"),
                };
                *counts.entry(kind).or_default() += 1;
            }
        }
    }
    assert_eq!(
        counts,
        BTreeMap::from([("submitted", 50), ("duplicate", 50 + 200)])
    );

    let jobs = farm.jobs().await.unwrap();
    assert_eq!(jobs.len(), 100, "one render and one zip job per upload");
    for key in &keys {
        let of_key: Vec<&SubmittedJob> = jobs
            .iter()
            .filter(|j| j.var(env::KEY) == Some(key.as_str()))
            .collect();
        let renders = of_key
            .iter()
            .filter(|j| j.definition == farm.batch_env.render_definition)
            .count();
        let zips = of_key
            .iter()
            .filter(|j| j.definition == farm.batch_env.zip_definition)
            .count();
        assert_eq!((renders, zips), (1, 1), "{key}");
    }
}

/// Writes `count` PNGs of `width`x`height` random (incompressible) pixels, stored uncompressed,
/// whose top-left red value encodes the frame number as the test scenes' do.
fn noise_frames(dir: &Path, count: i32, width: u32, height: u32) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let script = r#"
import os, struct, sys, zlib
out, count, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
for n in range(1, count + 1):
    rows = bytearray()
    for y in range(h):
        row = bytearray(os.urandom(w * 3))
        if y == 0:
            row[0] = n + 128
        rows += b"\0" + row
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(rows), 0)) + chunk(b"IEND", b"")
    with open(os.path.join(out, "%04d.png" % n), "wb") as f:
        f.write(png)
"#;
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .args([count.to_string(), width.to_string(), height.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    (1..=count)
        .map(|n| dir.join(format!("{n:04}.png")))
        .collect()
}

/// A job whose render output is `count` frames of about 3 MiB each (as a 4K render's would
/// be): the trigger submits it from a real upload, and the frames are put where the render job
/// would have put them. Returns the zip job and each frame's bytes.
async fn big_frames_job(farm: &Farm, key: &str, count: i32) -> (SubmittedJob, Vec<Vec<u8>>) {
    let scene = farm.scene("big", &SceneOptions::default());
    let (_, zip) = submit(farm, key, &scene, &format!("frames=1-{count}")).await;
    let keys = JobKeys::new(key);
    // Frames as the job's renderer uploads them: of this upload of the .blend, in the scene's
    // format (the zipper archives only those).
    let source = farm
        .s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let etag = source.e_tag().expect("S3 gives an ETag").to_owned();
    let mut frames = Vec::new();
    for (n, path) in noise_frames(&farm.path("noise"), count, 1024, 1024)
        .iter()
        .enumerate()
    {
        let bytes = std::fs::read(path).unwrap();
        farm.s3
            .put_object()
            .bucket(BUCKET)
            .key(keys.frame(n as i32 + 1, "png"))
            .metadata(SOURCE_ETAG_METADATA, &etag)
            .metadata(FORMAT_METADATA, SCENE_FORMAT)
            .content_type("image/png")
            .body(ByteStream::from(bytes.clone()))
            .send()
            .await
            .unwrap();
        frames.push(bytes);
    }
    (zip, frames)
}

/// Waits until the archive's multipart upload has started (the zipper starts it once the
/// first 8 MiB part is full) and returns its id. (moto's ListParts answer does not parse in the
/// SDK, so parts are not counted.)
async fn wait_for_upload(farm: &Farm, running: &mut Running, archive: &str) -> String {
    wait_for(
        &mut [running],
        "the multipart upload of frames.zip",
        || async {
            farm.open_uploads()
                .await
                .unwrap()
                .into_iter()
                .find(|(key, _)| key == archive)
                .map(|(_, id)| id)
        },
    )
    .await
}

fn assert_archive(entries: &[(String, Vec<u8>)], frames: &[Vec<u8>]) {
    let names: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
    let expected: Vec<String> = (1..=frames.len()).map(|n| format!("{n:04}.png")).collect();
    assert_eq!(names, expected);
    for ((name, bytes), source) in entries.iter().zip(frames) {
        assert!(bytes == source, "{name} differs from its frame");
    }
}

/// The zip container SIGKILLed while its multipart upload of a 48 MiB frames.zip is under way,
/// then run again.
///
/// Asserts: after the kill no frames.zip exists (the incomplete upload is invisible); the rerun
/// exits 0 and frames.zip passes `python3 -m zipfile -t` and holds the 16 frames byte for byte;
/// the only open multipart upload is the killed run's own (the rerun completed or aborted all of
/// its own). A SIGKILLed process cannot abort its upload: on AWS the bucket's lifecycle rule
/// (`AbortIncompleteMultipartUpload` in infra/farm.yaml, checked here) removes it; the test
/// aborts it as that rule would and then finds no open upload.
#[tokio::test(flavor = "multi_thread")]
async fn a_zipper_killed_mid_upload_leaves_no_archive_and_a_rerun_makes_one() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let key = "shots/big frames.blend";
    let archive = JobKeys::new(key).zip();
    let (zip, frames) = big_frames_job(&farm, key, 16).await;
    let env = farm.moto.env();

    let mut first = farm.spawn(&bins().zipper, &zip, None, &env, &[]);
    let killed_upload = wait_for_upload(&farm, &mut first, &archive).await;
    first.kill_container();
    let killed = first.wait().await;
    assert_eq!(killed.code, None, "{}", killed.log);
    assert!(
        farm.objects(&archive).await.unwrap().is_empty(),
        "a frames.zip is visible after the kill"
    );
    assert_eq!(
        farm.open_uploads().await.unwrap(),
        [(archive.clone(), killed_upload.clone())]
    );

    farm.run_zip(&zip, &env).await.assert_code(exit::SUCCESS);
    let entries = download_zip(&farm, key, "download").await;
    assert_archive(&entries, &frames);
    assert_eq!(
        farm.open_uploads().await.unwrap(),
        [(archive.clone(), killed_upload.clone())],
        "the rerun left an upload open"
    );

    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/farm.yaml"))
            .unwrap();
    assert!(
        template.contains("AbortIncompleteMultipartUpload"),
        "the bucket has no rule aborting incomplete uploads"
    );
    farm.s3
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(&archive)
        .upload_id(&killed_upload)
        .send()
        .await
        .unwrap();
    assert_eq!(farm.open_uploads().await.unwrap(), vec![]);
}

/// S3 unreachable for 3 seconds while the zipper's multipart upload is under way (through the
/// proxy), then run again if it gave up.
///
/// Asserts: the zipper exits 0 (its retries rode it out) or 4 (transient, Batch retries); with
/// 4 no frames.zip is visible; a rerun exits 0; in the end frames.zip passes `python3 -m
/// zipfile -t` and holds the 16 frames byte for byte, and no multipart upload is open (the
/// failed run aborted its own once S3 answered again).
#[tokio::test(flavor = "multi_thread")]
async fn s3_unreachable_mid_zip_upload_leaves_one_valid_archive_and_no_open_upload() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let key = "shots/big flaky.blend";
    let archive = JobKeys::new(key).zip();
    let (zip, frames) = big_frames_job(&farm, key, 16).await;
    let proxy = Proxy::start(&farm.moto.endpoint).await.unwrap();
    let env = proxy.env(&farm.moto.env());

    let mut first = farm.spawn(&bins().zipper, &zip, None, &env, &[]);
    wait_for_upload(&farm, &mut first, &archive).await;
    proxy.cut().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore().await;
    let exited = first.wait().await;
    match exited.code {
        Some(exit::SUCCESS) => {}
        Some(exit::TRANSIENT) => {
            assert!(farm.objects(&archive).await.unwrap().is_empty());
            farm.run_zip(&zip, &env).await.assert_code(exit::SUCCESS);
        }
        _ => exited.assert_code(exit::TRANSIENT),
    }
    eprintln!("zipper after the cut: exit {:?}", exited.code);
    let entries = download_zip(&farm, key, "download").await;
    assert_archive(&entries, &frames);
    assert_eq!(farm.open_uploads().await.unwrap(), vec![]);
}

/// A stand-in for Blender: runs the real one, and when the render script starts frame 3,
/// prints an `Error:` line, kills it and exits 1, as a scene that cannot render that frame
/// would.
fn failing_blender(dir: &Path) -> PathBuf {
    let real = farm_testkit::blender().unwrap();
    let script = dir.join("blender-failing-at-3");
    std::fs::write(
        &script,
        format!(
            r#"#!/usr/bin/env python3
import subprocess, sys
real = subprocess.Popen([{real:?}] + sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
for line in real.stdout:
    sys.stdout.write(line)
    sys.stdout.flush()
    if line.strip() == "FARM_FRAME 3":
        print("Error: Out of memory allocating the render result of frame 3 (stand-in failure)", flush=True)
        real.kill()
        real.wait()
        sys.exit(1)
sys.exit(real.wait())
"#,
            real = real.to_str().unwrap()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    script
}

/// Frame 3 cannot be rendered (a stand-in Blender fails there); then the cause is fixed (the
/// real Blender) and `farm retry` is run.
///
/// Asserts: the child rendering frames 1-3 exits 3 (bad input: no retry) with an error naming
/// frame 3 and its log key, the other child exits 0; `<key>/logs/0003.log` holds frame 3's
/// Blender lines and the error; `farm status` shows 5 done, 1 failed, frame 3 with the error
/// and the log; `farm retry` submits a render job for frame 3 only (FARM_FRAMES=3, a plain
/// job) and a zip job for all 6 frames depending on it; running both completes the set, and
/// `farm status` then says 6 of 6 done.
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_blender_cannot_render_is_named_logged_shown_and_retried_alone() {
    let bins = bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let scene = farm.scene(
        "broken",
        &SceneOptions {
            end: 6,
            ..SceneOptions::default()
        },
    );
    let key = "shots/broken frame.blend";
    let keys = JobKeys::new(key);
    let (render, _zip) = submit(&farm, key, &scene, "frames=1-6&chunk=3").await;
    assert_eq!(render.array_size, Some(2));
    let env = farm.moto.env();

    let blender = failing_blender(farm.dir.path());
    let children = farm
        .run_render(&render, &env, &[("BLENDER", blender.to_str().unwrap())])
        .await;
    children[0].assert_code(exit::BAD_INPUT);
    children[1].assert_code(exit::SUCCESS);
    let error = children[0]
        .events()
        .iter()
        .rev()
        .find(|e| e["level"] == "ERROR")
        .and_then(|e| e["fields"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no error line: {}", children[0].log));
    assert!(error.contains("frame 3 failed to render"), "{error}");
    assert!(error.contains(&keys.log(3)), "{error}");
    assert!(error.contains("Out of memory"), "{error}");

    let log = String::from_utf8(farm.get(&keys.log(3)).await.unwrap()).unwrap();
    assert!(log.contains("FARM_FRAME 3"), "{log}");
    assert!(log.contains("Error: Out of memory"), "{log}");
    let frames: Vec<i32> = frame_objects(&farm, key).await.into_keys().collect();
    assert_eq!(frames, [1, 2, 4, 5, 6]);

    let farm_cli = |args: &[&str]| {
        let mut command = std::process::Command::new(&bins.farm);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(farm.moto.env())
            .env(env::JOB_QUEUE, &farm.batch_env.queue)
            .env(env::JOB_DEFINITION, &farm.batch_env.render_definition)
            .env(env::ZIP_JOB_DEFINITION, &farm.batch_env.zip_definition)
            .args(args)
            .args(["--bucket", BUCKET]);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "farm {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let status = farm_cli(&["status", key]);
    assert!(status.contains("5/6 done, 1 failed, 0 pending"), "{status}");
    let failed_line = status
        .lines()
        .find(|l| l.starts_with("failed"))
        .unwrap_or_else(|| panic!("no failed frame shown: {status}"));
    assert!(failed_line.contains("frame 3"), "{failed_line}");
    assert!(failed_line.contains("Out of memory"), "{failed_line}");
    assert!(failed_line.contains(&keys.log(3)), "{failed_line}");
    let json: serde_json::Value =
        serde_json::from_str(&farm_cli(&["status", key, "--json"])).unwrap();
    assert_eq!(json["frames"]["failed"], 1);
    assert_eq!(json["failed_frames"][0]["frame"], 3);
    assert_eq!(json["failed_frames"][0]["log"], keys.log(3));

    // The cause fixed (the real Blender from here on), retry just that frame.
    let before: Vec<String> = farm
        .jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    let retried = farm_cli(&["retry", key]);
    assert!(retried.contains("1 missing frame"), "{retried}");
    let new: Vec<SubmittedJob> = farm
        .jobs()
        .await
        .unwrap()
        .into_iter()
        .filter(|j| !before.contains(&j.id))
        .collect();
    assert_eq!(new.len(), 2, "one render and one zip job: {new:#?}");
    let (retry_render, retry_zip) = farm.jobs_of(key).await.unwrap();
    assert!(new.contains(&retry_render) && new.contains(&retry_zip));
    assert_eq!(retry_render.var(env::FRAMES), Some("3"));
    assert_eq!(retry_render.array_size, None, "one frame: a plain job");
    assert_eq!(retry_zip.var(env::FRAMES), Some("1-6"));
    assert_eq!(retry_zip.depends_on, std::slice::from_ref(&retry_render.id));

    let rerun = farm.run_render(&retry_render, &env, &[]).await;
    rerun[0].assert_code(exit::SUCCESS);
    assert_eq!(rerun[0].uploaded_frames(), [3]);
    farm.run_zip(&retry_zip, &env)
        .await
        .assert_code(exit::SUCCESS);
    let entries = download_zip(&farm, key, "download").await;
    assert_frames(&entries, &[1, 2, 3, 4, 5, 6], (32, 24));
    let status = farm_cli(&["status", key]);
    assert!(status.contains("6/6 done, 0 failed, 0 pending"), "{status}");
}
