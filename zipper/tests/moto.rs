//! The zipper against S3 on moto_server: the library with `S3Storage`, and the binary.

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use farm_core::frames::DEFAULT_MAX_FRAMES;
use farm_core::receipt::{Prices, Receipt};
use farm_core::storage::{put_json, PutOptions, Storage};
use farm_core::tasks::{FrameTiming, TaskKind, TaskRecord};
use farm_core::{env, FrameList, JobKeys};
use farm_io::{S3Storage, UploadTuning};
use farm_jobs::OutputVersion;
use farm_testkit::{unique_prefix, Failure, Fault, Faulty, Moto, Op};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Notify;
use zipper::{zip_frames, zip_frames_until, ZipError, ZipOptions, ZipProgress};

use common::{check_archive, check_extracted, expected_entries, frame_bytes};

const BUCKET: &str = "zipper-tests";
const ZIPPER: &str = env!("CARGO_BIN_EXE_zipper");

/// A moto server with a bucket, and the keys of one job in it.
struct Farm {
    moto: Moto,
    storage: S3Storage,
    keys: JobKeys,
}

impl Farm {
    async fn start(name: &str) -> Farm {
        let moto = Moto::start().await.expect("moto_server starts");
        moto.bucket(BUCKET).await.expect("bucket");
        let storage = S3Storage::new(moto.s3(), BUCKET);
        let keys = JobKeys::new(format!("{}shots/scene 1.blend", unique_prefix(name)));
        Farm {
            moto,
            storage,
            keys,
        }
    }

    /// Uploads `len` bytes for each frame as `<NNNN>.png`; returns the frames and contents.
    async fn put_frames(
        &self,
        frames: impl IntoIterator<Item = i32>,
        len: usize,
    ) -> Vec<(i32, Bytes)> {
        let frames: Vec<(i32, Bytes)> = frames
            .into_iter()
            .map(|f| (f, frame_bytes(f, len)))
            .collect();
        futures::stream::iter(&frames)
            .map(|(frame, body)| self.put(self.keys.frame(*frame, "png"), body.clone()))
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await
            .expect("frames uploaded");
        frames
    }

    async fn put(&self, key: String, body: Bytes) -> Result<(), farm_core::storage::StorageError> {
        self.storage
            .put(&key, body, &PutOptions::content_type("image/png"))
            .await
    }

    async fn exists(&self, key: &str) -> bool {
        self.storage.head(key).await.expect("head").is_some()
    }

    /// Downloads `frames.zip` with the SDK into a temporary file.
    async fn fetch_zip(&self) -> tempfile::NamedTempFile {
        let body = self
            .storage
            .get(&self.keys.zip())
            .await
            .expect("frames.zip");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), &body).expect("write zip");
        file
    }

    async fn open_uploads(&self) -> Vec<String> {
        self.storage
            .open_uploads(self.keys.source())
            .await
            .expect("open uploads")
    }

    async fn zip(&self, spec: &str) -> Result<zipper::ZipSummary, ZipError> {
        zip_frames(
            &self.storage,
            &self.keys,
            &frames(spec),
            &OutputVersion::default(),
            &ZipOptions::default(),
            &|_| {},
        )
        .await
    }

    /// The zipper binary with moto's environment and `FARM_*` for this job.
    fn binary(&self, spec: &str) -> Command {
        let mut command = Command::new(ZIPPER);
        command
            .envs(self.moto.env())
            .env(env::BUCKET, BUCKET)
            .env(env::KEY, self.keys.source())
            .env(env::FRAMES, spec)
            .env(env::LOG_FORMAT, "json")
            .env_remove(env::BATCH_JOB_ID);
        command
    }
}

fn frames(spec: &str) -> FrameList {
    FrameList::parse(spec, DEFAULT_MAX_FRAMES).expect("frame list")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn binary_zips_three_frames_into_a_valid_archive() {
    let farm = Farm::start("three").await;
    let frames = farm.put_frames(1..=3, 200_000).await;
    let output = farm
        .binary("1-3")
        .env(env::BATCH_JOB_ID, "job-42")
        .output()
        .expect("zipper runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let last: serde_json::Value =
        serde_json::from_str(stderr(&output).lines().last().expect("a log line")).expect("json");
    assert_eq!(last["fields"]["frames"], 3);
    assert_eq!(last["span"]["job_id"], "job-42");
    assert_eq!(last["span"]["key"], farm.keys.source());

    let archive = farm.fetch_zip().await;
    let expected = expected_entries(&frames);
    check_archive(archive.path(), &expected);
    check_extracted(archive.path(), &expected);
    let head = farm.storage.head(&farm.keys.zip()).await.expect("head");
    assert!(head
        .is_some_and(|meta| meta.size == std::fs::metadata(archive.path()).map_or(0, |m| m.len())));
}

fn task(
    index: usize,
    attempt: u32,
    etag: &str,
    from: i64,
    to: i64,
    exit_code: i32,
    frames: &[(i32, f64)],
) -> TaskRecord {
    let at = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
    TaskRecord {
        task: TaskKind::Render,
        index,
        attempt,
        source_etag: Some(etag.to_owned()),
        started: at(from),
        ended: at(to),
        exit_code,
        error: None,
        cpus: 4,
        download_seconds: Some(1.0),
        blender_startup_seconds: Some(2.0),
        frames: frames
            .iter()
            .map(|&(frame, seconds)| FrameTiming {
                frame,
                render_seconds: Some(seconds),
                upload_seconds: 0.5,
                object: None,
            })
            .collect(),
        frame_metadata: None,
    }
}

/// A scout's finished `estimate.json` of the upload at `etag`: 3 frames of 40 s.
fn estimate_file(etag: &str) -> farm_core::estimate::EstimateFile {
    use farm_core::estimate::{Estimate, EstimateFile, EstimateStatus, SampledFrame};
    let model = farm_core::timeline::CloudModel::new(
        64,
        5.0,
        Prices::for_region("us-east-1", None, None).unwrap(),
    );
    EstimateFile {
        schema: farm_core::estimate::ESTIMATE_SCHEMA,
        status: EstimateStatus::Estimated,
        key: "k".into(),
        etag: Some(etag.to_owned()),
        frames: "1-3".into(),
        samples: vec![1, 3],
        max_vcpus: 64,
        job_id: None,
        written: jiff::Timestamp::UNIX_EPOCH,
        estimate: Some(Estimate {
            measured_on: "a scout task (4 threads)".into(),
            threads: 4,
            sampled: vec![SampledFrame {
                frame: 1,
                seconds: 40.0,
                placed_by_profile: false,
            }],
            profile: None,
            blender_startup_seconds: 5.0,
            first_frame_extra_seconds: 0.0,
            frames: 3,
            frame_seconds_total: 120.0,
            projection: model.best_chunk(&[40.0; 3]),
        }),
    }
}

/// The zip job writes its own task record and the receipt, summed from this job's task records
/// (a record of another upload of the key is left out), priced at the region's table.
#[tokio::test]
async fn binary_writes_its_task_record_and_the_receipt_of_the_jobs_records() {
    let farm = Farm::start("receipt").await;
    let etag = "\"job-etag\"";
    let version = OutputVersion::new(Some(etag), None);
    for frame in 1..=3 {
        let options = PutOptions {
            metadata: version.metadata(),
            ..PutOptions::content_type("image/png")
        };
        farm.storage
            .put(
                &farm.keys.frame(frame, "png"),
                frame_bytes(frame, 1_000),
                &options,
            )
            .await
            .unwrap();
    }
    let records = [
        task(0, 1, etag, 0, 200, 0, &[(1, 50.0), (2, 70.0)]),
        task(1, 1, etag, 5, 25, 4, &[(3, 900.0)]),
        task(1, 2, etag, 30, 230, 0, &[(3, 60.0)]),
        // An older upload's job: not this job's.
        task(0, 1, "\"old\"", 0, 5000, 0, &[(1, 999.0)]),
    ];
    for (n, record) in records.iter().enumerate() {
        let key = match n {
            3 => format!("{}0-1-old.json", farm.keys.tasks_prefix()),
            _ => farm.keys.task_record(record.index, record.attempt),
        };
        put_json(&farm.storage, &key, record).await.unwrap();
    }
    // A scout's estimate of another upload of the key: no comparison in this job's receipt.
    put_json(
        &farm.storage,
        &farm.keys.estimate(),
        &estimate_file("\"old\""),
    )
    .await
    .unwrap();
    let zip = || {
        farm.binary("1-3")
            .env(env::SOURCE_ETAG, etag)
            .env(env::BATCH_JOB_ATTEMPT, "2")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("zipper runs")
    };
    let output = zip();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let own: TaskRecord = serde_json::from_slice(
        &farm
            .storage
            .get(&farm.keys.zip_task_record(2))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (own.task, own.attempt, own.exit_code),
        (TaskKind::Zip, 2, 0)
    );
    assert_eq!(own.source_etag.as_deref(), Some(etag));
    let receipt: Receipt =
        serde_json::from_slice(&farm.storage.get(&farm.keys.receipt()).await.unwrap()).unwrap();
    let expected = Receipt::compute(
        &[
            records[0].clone(),
            records[1].clone(),
            records[2].clone(),
            own.clone(),
        ],
        3,
        Prices::for_region("us-east-1", None, None),
    );
    assert_eq!(receipt, expected);
    assert_eq!((receipt.frames, receipt.tasks, receipt.attempts), (3, 3, 4));
    assert_eq!(receipt.frame_seconds.max, 70.0);
    assert_eq!(receipt.slowest[0].frame, 2);
    assert!(receipt.cost_usd.is_some_and(|c| c > 0.0));
    assert!(receipt.wall_seconds >= 230.0);

    // The estimate of this upload: the receipt holds it against the render tasks' hours.
    let scouted = estimate_file(etag);
    put_json(&farm.storage, &farm.keys.estimate(), &scouted)
        .await
        .unwrap();
    let output = zip();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let receipt: Receipt =
        serde_json::from_slice(&farm.storage.get(&farm.keys.receipt()).await.unwrap()).unwrap();
    let check = receipt.estimate.expect("the estimate against the actual");
    let expected = farm_core::estimate::EstimateCheck::new(
        scouted.estimate.as_ref().unwrap(),
        &records[..3],
        Prices::for_region("us-east-1", None, None),
    );
    assert_eq!(check, expected);
    // Three render attempts of 200, 20 (billed 60) and 200 seconds.
    assert_eq!(check.actual_task_hours, 0.1278);

    // A failed zip writes its record, and no receipt.
    farm.storage.delete(&farm.keys.receipt()).await.unwrap();
    let output = farm
        .binary("1-4")
        .env(env::SOURCE_ETAG, etag)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let failed: TaskRecord = serde_json::from_slice(
        &farm
            .storage
            .get(&farm.keys.zip_task_record(1))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(failed.exit_code, 3);
    assert!(failed.error.unwrap().contains("missing"));
    assert!(!farm.exists(&farm.keys.receipt()).await);
}

#[tokio::test]
async fn fifteen_hundred_frames_span_several_listing_pages() {
    let farm = Farm::start("many").await;
    // S3 lists at most 1,000 keys a page.
    let frames = farm.put_frames(1..=1500, 2_000).await;
    let summary = farm.zip("1-1500").await.expect("zipped");
    assert_eq!(summary.frames, 1500);
    let archive = farm.fetch_zip().await;
    check_archive(archive.path(), &expected_entries(&frames));
}

#[tokio::test]
async fn a_missing_frame_fails_with_the_list_and_writes_missing_json() {
    let farm = Farm::start("missing").await;
    farm.put_frames([1, 2, 4, 8, 9], 1_000).await;
    let error = farm.zip("1-10").await.expect_err("frames are missing");
    assert!(matches!(error, ZipError::Missing { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("5 of 10 expected frames are missing: 3, 5-7, 10;"),
        "{error}"
    );
    assert!(!farm.exists(&farm.keys.zip()).await, "no frames.zip");
    assert!(farm.open_uploads().await.is_empty());
    let report: serde_json::Value = serde_json::from_slice(
        &farm
            .storage
            .get(&farm.keys.missing())
            .await
            .expect("missing.json"),
    )
    .expect("json");
    assert_eq!(
        report,
        serde_json::json!({"missing": [3, 5, 6, 7, 10], "ranges": "3, 5-7, 10", "expected": 10, "stale": []})
    );
}

#[tokio::test]
async fn a_stale_extra_frame_is_not_included() {
    let farm = Farm::start("stale").await;
    let frames = farm.put_frames(1..=4, 5_000).await;
    farm.put(farm.keys.frame(5, "png"), Bytes::from_static(b"stale"))
        .await
        .expect("put");
    farm.put(farm.keys.frame(0, "exr"), Bytes::from_static(b"stale"))
        .await
        .expect("put");
    let summary = farm.zip("1-4").await.expect("zipped");
    assert_eq!((summary.frames, summary.ignored), (4, 2));
    check_archive(farm.fetch_zip().await.path(), &expected_entries(&frames));
}

#[tokio::test]
async fn a_rerun_replaces_the_archive_and_removes_missing_json() {
    let farm = Farm::start("rerun").await;
    let mut frames = farm.put_frames(1..=2, 5_000).await;
    assert!(farm.zip("1-3").await.is_err());
    assert!(farm.exists(&farm.keys.missing()).await);

    frames.extend(farm.put_frames([3], 5_000).await);
    farm.zip("1-3").await.expect("zipped");
    check_archive(farm.fetch_zip().await.path(), &expected_entries(&frames));
    assert!(
        !farm.exists(&farm.keys.missing()).await,
        "missing.json removed"
    );

    let rerendered = Bytes::from(vec![7u8; 9_000]);
    farm.put(farm.keys.frame(2, "png"), rerendered.clone())
        .await
        .expect("put");
    frames[1].1 = rerendered;
    farm.zip("1-3").await.expect("zipped again");
    check_archive(farm.fetch_zip().await.path(), &expected_entries(&frames));
}

#[tokio::test]
async fn an_interrupted_multipart_upload_leaves_no_archive_and_no_open_upload() {
    let farm = Farm::start("interrupt").await;
    let storage = S3Storage::new(farm.moto.s3(), BUCKET).with_upload_tuning(UploadTuning {
        part_size: 5 << 20,
        parts_in_flight: 2,
        ..UploadTuning::default()
    });
    farm.put_frames(1..=12, 2 << 20).await;
    let stop = Notify::new();
    let written = AtomicUsize::new(0);
    // By frame 10, 20 MiB went into the pipe: the multipart upload has parts.
    let progress = |p: ZipProgress| {
        written.store(p.frames_done, Ordering::SeqCst);
        if p.frames_done == 10 {
            stop.notify_one();
        }
    };
    let error = zip_frames_until(
        &storage,
        &farm.keys,
        &frames("1-12"),
        &OutputVersion::default(),
        &ZipOptions::default(),
        &progress,
        stop.notified(),
    )
    .await
    .expect_err("interrupted");
    assert!(matches!(error, ZipError::Interrupted), "{error}");
    assert_eq!(error.exit_code(), 143);
    assert!(written.load(Ordering::SeqCst) >= 10);
    assert!(!farm.exists(&farm.keys.zip()).await, "no frames.zip");
    assert!(
        farm.open_uploads().await.is_empty(),
        "no open multipart upload"
    );
}

#[tokio::test]
async fn binary_exits_143_on_sigterm_and_aborts_the_upload() {
    let farm = Farm::start("sigterm").await;
    farm.put_frames(1..=120, 1 << 20).await;
    let mut child = farm
        .binary("1-120")
        .stderr(Stdio::piped())
        .spawn()
        .expect("zipper starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while farm.open_uploads().await.is_empty() {
        assert!(Instant::now() < deadline, "no multipart upload started");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the zipper ended early"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted"),
        "{}",
        stderr(&output)
    );
    assert!(!farm.exists(&farm.keys.zip()).await, "no frames.zip");
    assert!(
        farm.open_uploads().await.is_empty(),
        "no open multipart upload"
    );
}

#[tokio::test]
async fn binary_exits_3_on_missing_frames() {
    let farm = Farm::start("binmissing").await;
    farm.put_frames([1, 3], 1_000).await;
    let output = farm.binary("1-4").output().expect("zipper runs");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("2 of 4 expected frames are missing: 2, 4"),
        "{text}"
    );
    assert!(farm.exists(&farm.keys.missing()).await);
    assert!(!farm.exists(&farm.keys.zip()).await);
}

/// A frame list too long for the job's environment comes by reference (`FARM_FRAMES=@<key>`,
/// the plan object the trigger wrote): the zipper reads it and zips exactly those frames.
#[tokio::test]
async fn binary_reads_a_frame_list_passed_by_reference() {
    let farm = Farm::start("byref").await;
    let frames = farm.put_frames([1, 3, 5], 1_000).await;
    farm.put_frames([2], 1_000).await;
    let plan = farm.keys.frame_list("1 3 5");
    farm.put(plan.clone(), Bytes::from_static(b"1 3 5"))
        .await
        .expect("plan");
    let output = farm
        .binary(&format!("@{plan}"))
        .output()
        .expect("zipper runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    check_archive(farm.fetch_zip().await.path(), &expected_entries(&frames));

    let output = farm
        .binary(&format!("@{}", farm.keys.frame_list("gone")))
        .output()
        .expect("zipper runs");
    assert_ne!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("plans/"), "{}", stderr(&output));
}

/// Against an endpoint that accepts connections and never answers, the zipper gives up after its
/// timeouts and exits TRANSIENT (Batch retries it) instead of holding its task until the
/// attempt timeout.
#[test]
fn binary_gives_up_on_a_black_hole_and_exits_transient() {
    let hole = farm_testkit::BlackHole::start().expect("listener");
    let mut command = Command::new(ZIPPER);
    hole.aws_env(&mut command)
        .env(env::BUCKET, BUCKET)
        .env(env::KEY, "scene.blend")
        .env(env::FRAMES, "1-3");
    let run = farm_testkit::run_bounded(command, Duration::from_secs(60)).expect("zipper runs");
    assert_eq!(
        run.code,
        Some(farm_core::exit::TRANSIENT),
        "after {:?}: {}",
        run.took,
        run.stderr
    );
    assert!(run.took < Duration::from_secs(30), "took {:?}", run.took);
}

#[test]
fn binary_exits_2_on_missing_or_malformed_config() {
    let bare = || {
        let mut command = Command::new(ZIPPER);
        for variable in [env::BUCKET, env::KEY, env::FRAMES] {
            command.env_remove(variable);
        }
        command
    };
    let output = bare().env(env::BUCKET, "b").output().expect("zipper runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--key"), "{}", stderr(&output));

    let output = bare()
        .env(env::BUCKET, "b")
        .env(env::KEY, "k.blend")
        .env(env::FRAMES, "10-1")
        .output()
        .expect("zipper runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("FARM_FRAMES"),
        "{}",
        stderr(&output)
    );

    let help = bare().arg("--help").output().expect("zipper runs");
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for variable in [env::BUCKET, env::KEY, env::FRAMES] {
        assert!(text.contains(variable), "{variable}: {text}");
    }
}

/// Frames larger than the prefetch window (a multilayer EXR of hundreds of MiB) are streamed
/// from storage into their entries; before, each was read whole into memory, several times.
#[tokio::test]
async fn frames_larger_than_the_window_are_streamed_into_their_entries() {
    let farm = Farm::start("large").await;
    let options = ZipOptions {
        prefetch_bytes: 256 * 1024,
        ..ZipOptions::default()
    };
    let mut bodies = farm.put_frames([1, 3], 100_000).await;
    bodies.extend(farm.put_frames([2, 4], 3 * 1024 * 1024 + 5).await);
    bodies.sort_by_key(|(frame, _)| *frame);
    // A whole read of a frame larger than the window fails: the zipper must stream those.
    let storage = Faulty::new(S3Storage::new(farm.moto.s3(), BUCKET));
    for (frame, _) in bodies
        .iter()
        .filter(|(_, body)| body.len() as u64 > options.prefetch_bytes)
    {
        storage.inject(
            Fault::on(Op::Get)
                .key(&farm.keys.frame(*frame, "png"))
                .error(Failure::Permanent),
        );
    }
    let summary = zip_frames(
        &storage,
        &farm.keys,
        &frames("1-4"),
        &OutputVersion::default(),
        &options,
        &|_| {},
    )
    .await
    .expect("zipped");
    assert_eq!(summary.frames, 4);
    assert_eq!(
        summary.frame_bytes,
        bodies
            .iter()
            .map(|(_, body)| body.len() as u64)
            .sum::<u64>()
    );
    let archive = farm.fetch_zip().await;
    let expected = expected_entries(&bodies);
    check_archive(archive.path(), &expected);
    check_extracted(archive.path(), &expected);
}

/// A solid `colour` PNG of `width` x `height` (8-bit RGB).
fn png_frame(colour: [u8; 3], width: u32, height: u32) -> Bytes {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer
        .write_image_data(&colour.repeat((width * height) as usize))
        .expect("png data");
    writer.finish().expect("png end");
    Bytes::from(out)
}

/// A solid RGBA OpenEXR (half floats, as Blender writes by default) of scene-linear `colour`.
fn exr_frame(colour: [f32; 3], width: usize, height: usize) -> Bytes {
    use exr::prelude::f16;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("frame.exr");
    let [r, g, b] = colour.map(f16::from_f32);
    exr::prelude::write_rgba_file(&path, width, height, |_, _| (r, g, b, f16::ONE))
        .expect("exr written");
    Bytes::from(std::fs::read(&path).expect("exr read"))
}

/// A colour per frame, far apart for neighbouring frames.
fn frame_colour(frame: i32) -> [u8; 3] {
    let f = frame.unsigned_abs();
    [
        (f * 47 % 256) as u8,
        (f * 101 % 256) as u8,
        (255 - f * 29 % 256) as u8,
    ]
}

/// `preview.jpg` of `keys`, decoded: size and RGB pixels.
async fn fetch_preview(storage: &S3Storage, keys: &JobKeys) -> ((usize, usize), Vec<u8>) {
    let body = storage.get(&keys.preview()).await.expect("preview.jpg");
    let mut decoder = jpeg_decoder::Decoder::new(&body[..]);
    let pixels = decoder.decode().expect("preview.jpg is a JPEG");
    let info = decoder.info().expect("info");
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    ((info.width.into(), info.height.into()), pixels)
}

/// The colour at the centre of tile `index`'s picture, and the brightest value in its label
/// strip.
fn tile(
    layout: &farm_core::preview::Layout,
    pixels: &[u8],
    index: usize,
    dy: usize,
) -> ([u8; 3], u8) {
    use farm_core::preview::{LABEL_HEIGHT, THUMB_HEIGHT, THUMB_WIDTH};
    let (x0, y0) = layout.origin(index);
    let at = |x: usize, y: usize| (y * layout.width() + x) * 3;
    let centre = at(x0 + THUMB_WIDTH / 2, y0 + dy);
    let label = (y0 + THUMB_HEIGHT..y0 + THUMB_HEIGHT + LABEL_HEIGHT)
        .flat_map(|y| (x0..x0 + 40).map(move |x| (x, y)))
        .map(|(x, y)| pixels[at(x, y) + 1])
        .max()
        .unwrap_or(0);
    (
        [pixels[centre], pixels[centre + 1], pixels[centre + 2]],
        label,
    )
}

fn assert_close(got: [u8; 3], want: [u8; 3], what: &str) {
    let off = got
        .iter()
        .zip(want)
        .map(|(g, w)| g.abs_diff(w))
        .max()
        .unwrap_or(0);
    assert!(off <= 8, "{what}: got {got:?}, want {want:?}");
}

/// 100 PNG frames: the sheet shows 64 of them, evenly sampled in frame order, each thumbnail in
/// its frame's colour and labelled; a frame that does not decode is a grey tile and the archive
/// is still written, whole.
#[tokio::test]
async fn preview_jpg_shows_sampled_frames_in_order_in_their_colours() {
    use farm_core::preview::{sample, Layout, PLACEHOLDER, THUMB_HEIGHT};
    let farm = Farm::start("preview").await;
    let picked = sample(100, 64);
    let broken = i32::try_from(picked[10]).unwrap() + 1;
    let bodies: Vec<(i32, Bytes)> = (1..=100)
        .map(|f| {
            let body = if f == broken {
                Bytes::from_static(b"\x89PNG\r\n\x1a\nnot really a png")
            } else {
                png_frame(frame_colour(f), 64, 36)
            };
            (f, body)
        })
        .collect();
    futures::stream::iter(&bodies)
        .map(|(frame, body)| farm.put(farm.keys.frame(*frame, "png"), body.clone()))
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("frames uploaded");

    let summary = farm
        .zip("1-100")
        .await
        .expect("zipped despite a broken frame");
    assert_eq!(
        summary.preview.as_deref(),
        Some(farm.keys.preview().as_str())
    );
    let archive = farm.fetch_zip().await;
    check_archive(archive.path(), &expected_entries(&bodies));

    let layout = Layout::for_tiles(64);
    let (size, pixels) = fetch_preview(&farm.storage, &farm.keys).await;
    assert_eq!(size, (layout.width(), layout.height()), "an 8 x 8 grid");
    for (index, &position) in picked.iter().enumerate() {
        let frame = i32::try_from(position).unwrap() + 1;
        let (colour, label) = tile(&layout, &pixels, index, THUMB_HEIGHT / 2);
        assert!(label > 150, "tile {index} (frame {frame}) has a label");
        if frame == broken {
            // Off the placeholder's cross.
            let (grey, _) = tile(&layout, &pixels, index, 20);
            assert_close(grey, PLACEHOLDER, "placeholder of the broken frame");
        } else {
            assert_close(
                colour,
                frame_colour(frame),
                &format!("tile {index}, frame {frame}"),
            );
        }
    }
}

/// OpenEXR frames streamed into their entries (larger than the window) are tone-mapped into
/// their tiles (scene-linear, clipped, sRGB); a rerun with the preview off removes the sheet.
#[tokio::test]
async fn preview_jpg_tone_maps_streamed_exr_frames_and_can_be_turned_off() {
    use farm_core::preview::{display_from_linear, Layout, THUMB_HEIGHT};
    let farm = Farm::start("preview-exr").await;
    let colours = [[0.2, 0.5, 1.0], [1.0, 0.05, 0.0], [4.0, 4.0, 0.5]];
    let mut bodies = Vec::new();
    for (frame, colour) in (1..).zip(colours) {
        let body = exr_frame(colour, 320, 180);
        farm.put(farm.keys.frame(frame, "exr"), body.clone())
            .await
            .expect("frame uploaded");
        bodies.push((frame, body));
    }
    let options = ZipOptions {
        prefetch_bytes: 1,
        ..ZipOptions::default()
    };
    let zip = |options: ZipOptions| {
        let farm = &farm;
        async move {
            zip_frames(
                &farm.storage,
                &farm.keys,
                &frames("1-3"),
                &OutputVersion::default(),
                &options,
                &|_| {},
            )
            .await
            .expect("zipped")
        }
    };
    let summary = zip(options).await;
    assert!(summary.preview.is_some());
    let layout = Layout::for_tiles(3);
    let (size, pixels) = fetch_preview(&farm.storage, &farm.keys).await;
    assert_eq!(size, (layout.width(), layout.height()), "a 2 x 2 grid");
    for (index, colour) in colours.iter().enumerate() {
        let (got, _) = tile(&layout, &pixels, index, THUMB_HEIGHT / 2);
        assert_close(
            got,
            colour.map(display_from_linear),
            &format!("EXR frame {}", index + 1),
        );
    }

    let summary = zip(ZipOptions {
        preview: false,
        ..options
    })
    .await;
    assert_eq!(summary.preview, None);
    assert!(
        !farm.exists(&farm.keys.preview()).await,
        "an older sheet is removed"
    );
    assert!(farm.exists(&farm.keys.zip()).await);
}
