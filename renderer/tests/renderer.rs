//! The renderer binary and library against moto_server and Debian's Blender.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use farm_core::storage::{PutOptions, SOURCE_ETAG_METADATA};
use farm_core::tasks::{TaskKind, TaskRecord};
use farm_core::{env, exit, JobKeys, Storage};
use farm_io::S3Storage;
use farm_testkit::{make_scene, make_scene_with, Moto, SceneOptions, TestBlender, BPY_VERSION};
use renderer::{Args, ChunkReport};

const BUCKET: &str = "renders";

struct Fixture {
    moto: Moto,
    storage: S3Storage,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let moto = Moto::start().await.expect("moto_server");
    moto.bucket(BUCKET).await.unwrap();
    let storage = S3Storage::new(moto.s3(), BUCKET);
    Fixture {
        moto,
        storage,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Fixture {
    fn scene(&self, name: &str, options: &SceneOptions) -> PathBuf {
        make_scene(self.dir.path(), name, options).expect("blender makes the test scene")
    }

    async fn upload(&self, key: &str, path: &Path) {
        self.storage
            .upload_file(key, path, &PutOptions::default())
            .await
            .unwrap();
    }

    /// Runs the real binary as Batch would, with the job's environment.
    fn renderer(&self, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_renderer"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.moto.env())
            .env("FARM_BUCKET", BUCKET)
            .env("FARM_WORK_DIR", self.dir.path().join("work"))
            .env("FARM_THREADS", "2")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Ok(blender) = std::env::var("BLENDER") {
            command.env("BLENDER", blender);
        }
        command
    }

    async fn keys_under(&self, prefix: &str) -> Vec<String> {
        self.storage
            .list(prefix)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    async fn library_run(
        &self,
        key: &str,
        frames: &str,
        chunk: &str,
        index: &str,
    ) -> Result<ChunkReport, renderer::RenderError> {
        self.library_run_with(key, frames, chunk, index, &[]).await
    }

    async fn library_run_with(
        &self,
        key: &str,
        frames: &str,
        chunk: &str,
        index: &str,
        extra: &[&str],
    ) -> Result<ChunkReport, renderer::RenderError> {
        let work = self.dir.path().join("lib-work");
        let mut args = vec![
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--frames",
            frames,
            "--chunk",
            chunk,
            "--array-index",
            index,
            "--threads",
            "2",
            "--work-dir",
            work.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let config = parse_args(&args).validate().unwrap();
        match renderer::run(&self.storage, &config, std::future::pending()).await? {
            renderer::Done::Chunk(report) => Ok(report),
            other => panic!("a render chunk's ticket ran {other:?}"),
        }
    }
}

fn parse_args(args: &[&str]) -> Args {
    use clap::Parser;
    Args::try_parse_from(std::iter::once("renderer").chain(args.iter().copied())).unwrap()
}

fn assert_exit(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_lands_at_the_right_keys_with_the_scenes_own_frames() {
    let f = fixture().await;
    let scene = f.scene("frames", &SceneOptions::default());
    let key = "shots/my scene ü.blend";
    f.upload(key, &scene).await;

    // Frames 3-6 in one chunk: a plain job, so no array index is set.
    let output = f
        .renderer(&[
            ("FARM_KEY", key),
            ("FARM_FRAMES", "3-6"),
            ("FARM_CHUNK", "4"),
            ("FARM_LOG_FORMAT", "json"),
            ("AWS_BATCH_JOB_ID", "job-123"),
            ("AWS_BATCH_JOB_ATTEMPT", "2"),
        ])
        .output()
        .unwrap();
    let stderr = assert_exit(&output, exit::SUCCESS);

    // One JSON object per line, each uploaded frame with its timings and the job's identity.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let uploaded: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "frame uploaded")
        .collect();
    assert_eq!(uploaded.len(), 4, "{stderr}");
    for line in uploaded {
        assert!(line["fields"]["frame"].is_i64(), "{line}");
        assert!(line["fields"]["render_seconds"].is_f64(), "{line}");
        assert!(line["fields"]["upload_seconds"].is_f64(), "{line}");
        assert_eq!(line["span"]["job_id"], "job-123", "{line}");
        assert_eq!(line["span"]["array_index"], 0, "{line}");
    }

    let keys = JobKeys::new(key);
    let frames = f.keys_under(&keys.frames_prefix()).await;
    assert_eq!(
        frames,
        [3, 4, 5, 6].map(|n| keys.frame(n, "png")).to_vec(),
        "exactly the chunk's frames, zero-padded, absolute"
    );
    let source_etag = f.storage.head(key).await.unwrap().unwrap().etag.unwrap();
    for n in [3, 4, 5, 6] {
        let png = f.storage.get(&keys.frame(n, "png")).await.unwrap();
        assert_eq!(
            farm_testkit::frame_code(&png).unwrap(),
            n,
            "frame {n} shows the scene's frame {n}"
        );
        let meta = f
            .storage
            .head(&keys.frame(n, "png"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(meta.metadata.get(SOURCE_ETAG_METADATA), Some(&source_etag));
    }
    assert!(f.keys_under(&keys.logs_prefix()).await.is_empty());

    // The attempt's task record: attempt 2 of child 0, every frame timed.
    assert_eq!(
        f.keys_under(&keys.tasks_prefix()).await,
        [keys.task_record(0, 2)]
    );
    let record: TaskRecord =
        serde_json::from_slice(&f.storage.get(&keys.task_record(0, 2)).await.unwrap()).unwrap();
    assert_eq!(
        (record.task, record.index, record.attempt),
        (TaskKind::Render, 0, 2)
    );
    assert_eq!(record.exit_code, exit::SUCCESS);
    assert_eq!(record.error, None);
    assert!(record.cpus >= 1);
    assert!(record.started < record.ended, "{record:?}");
    assert!(
        record.download_seconds.is_some_and(|s| s >= 0.0),
        "{record:?}"
    );
    assert!(
        record.blender_startup_seconds.is_some_and(|s| s > 0.0),
        "{record:?}"
    );
    let mut timed: Vec<i32> = record.frames.iter().map(|t| t.frame).collect();
    timed.sort_unstable();
    assert_eq!(timed, [3, 4, 5, 6]);
    for timing in &record.frames {
        // Blender prints its render time in hundredths: a tiny frame on a fast machine is 0.00.
        assert!(
            timing.render_seconds.is_some_and(|s| s >= 0.0),
            "{timing:?}"
        );
        assert!(timing.upload_seconds >= 0.0, "{timing:?}");
        // Each frame object as S3 returned it from the upload, and the version stored on it:
        // what the frame scan takes a frame as current by without a HEAD.
        let object = timing.object.as_ref().expect("the uploaded object");
        let head = f.storage.head(&object.key).await.unwrap().unwrap();
        assert_eq!(object.key, keys.frame(timing.frame, "png"));
        assert_eq!(
            (Some(&object.etag), object.size),
            (head.etag.as_ref(), head.size)
        );
        assert_eq!(record.frame_metadata.as_ref(), Some(&head.metadata));
    }
    assert!(record.seconds() >= record.blender_startup_seconds.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn array_children_split_the_job_and_negative_frames_render() {
    let f = fixture().await;
    let scene = f.scene(
        "negative",
        &SceneOptions {
            start: -4,
            end: 4,
            ..SceneOptions::default()
        },
    );
    let key = "neg.blend";
    f.upload(key, &scene).await;
    for index in ["0", "1"] {
        let output = f
            .renderer(&[
                ("FARM_KEY", key),
                ("FARM_FRAMES", "-3--1 2"),
                ("FARM_CHUNK", "2"),
                ("AWS_BATCH_JOB_ARRAY_INDEX", index),
            ])
            .output()
            .unwrap();
        assert_exit(&output, exit::SUCCESS);
    }
    let keys = JobKeys::new(key);
    assert_eq!(
        f.keys_under(&keys.frames_prefix()).await,
        vec![
            "neg.blend/frames/-0001.png",
            "neg.blend/frames/-0002.png",
            "neg.blend/frames/-0003.png",
            "neg.blend/frames/0002.png"
        ]
    );
    for n in [-3, -2, -1, 2] {
        let png = f.storage.get(&keys.frame(n, "png")).await.unwrap();
        assert_eq!(farm_testkit::frame_code(&png).unwrap(), n);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn frames_rendered_with_other_dependencies_are_rendered_again() {
    use farm_core::deps::{list_version, Dependency, DependencyList};
    use farm_core::storage::{put_json, DEPENDENCIES_METADATA};

    let f = fixture().await;
    let scene = f.scene("deps", &SceneOptions::default());
    let key = "proj/deps.blend";
    f.upload(key, &scene).await;
    let keys = JobKeys::new(key);
    let texture = "proj/tex/wood.png";
    // The job's list binds the texture at its current ETag, as the trigger's check does.
    let bind = |list_key: &'static str, body: &'static [u8]| {
        let storage = f.storage.clone();
        async move {
            storage
                .put(texture, Bytes::from_static(body), &PutOptions::default())
                .await
                .unwrap();
            let meta = storage.head(texture).await.unwrap().unwrap();
            let list = DependencyList {
                files: vec![Dependency {
                    key: texture.to_owned(),
                    kind: "image".to_owned(),
                    path: "//tex/wood.png".to_owned(),
                    from: key.to_owned(),
                    etag: meta.etag.unwrap(),
                    size: meta.size,
                }],
            };
            put_json(&storage, list_key, &list).await.unwrap();
        }
    };
    let fixture = &f;
    let run = |list_key: &'static str| async move {
        fixture
            .library_run_with(key, "1-3", "3", "0", &["--dependencies", list_key])
            .await
    };

    bind("proj/deps.blend/deps/00000000000000aa.json", b"wood v1").await;
    let first = run("proj/deps.blend/deps/00000000000000aa.json")
        .await
        .unwrap();
    assert_eq!(first.rendered, vec![1, 2, 3]);
    let again = run("proj/deps.blend/deps/00000000000000aa.json")
        .await
        .unwrap();
    assert_eq!(
        again.skipped,
        vec![1, 2, 3],
        "same files: nothing to render"
    );

    // The texture changed and the .blend was tagged again: a new list, every frame again.
    bind("proj/deps.blend/deps/00000000000000bb.json", b"wood v2").await;
    let changed = run("proj/deps.blend/deps/00000000000000bb.json")
        .await
        .unwrap();
    assert_eq!(changed.rendered, vec![1, 2, 3]);
    let meta = f
        .storage
        .head(&keys.frame(2, "png"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        meta.metadata.get(DEPENDENCIES_METADATA).map(String::as_str),
        Some(list_version("proj/deps.blend/deps/00000000000000bb.json"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_renders_only_the_missing_frames() {
    let f = fixture().await;
    let scene = f.scene("retry", &SceneOptions::default());
    let key = "retry.blend";
    f.upload(key, &scene).await;
    let keys = JobKeys::new(key);

    let first = f.library_run(key, "1-4", "4", "0").await.unwrap();
    assert_eq!(first.rendered, vec![1, 2, 3, 4]);
    let kept = f
        .storage
        .head(&keys.frame(1, "png"))
        .await
        .unwrap()
        .unwrap();

    // A partial earlier attempt: frames 2 and 4 never made it.
    f.storage.delete(&keys.frame(2, "png")).await.unwrap();
    f.storage.delete(&keys.frame(4, "png")).await.unwrap();
    let retry = f.library_run(key, "1-4", "4", "0").await.unwrap();
    assert_eq!(retry.rendered, vec![2, 4]);
    assert_eq!(retry.skipped, vec![1, 3]);
    assert_eq!(
        f.storage
            .head(&keys.frame(1, "png"))
            .await
            .unwrap()
            .unwrap(),
        kept,
        "frame 1 untouched"
    );

    // Everything there: nothing to render, the .blend is not even downloaded again.
    let done = f.library_run(key, "1-4", "4", "0").await.unwrap();
    assert!(done.rendered.is_empty());
    assert_eq!(done.skipped, vec![1, 2, 3, 4]);

    // A frame from another version of the .blend is rendered again.
    let mut stale = PutOptions::content_type("image/png");
    stale
        .metadata
        .insert(SOURCE_ETAG_METADATA.to_owned(), "\"old\"".to_owned());
    let bytes = f.storage.get(&keys.frame(3, "png")).await.unwrap();
    f.storage
        .put(&keys.frame(3, "png"), bytes, &stale)
        .await
        .unwrap();
    let again = f.library_run(key, "1-4", "4", "0").await.unwrap();
    assert_eq!(again.rendered, vec![3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_with_the_bad_input_code_and_uploads_nothing() {
    let f = fixture().await;
    let scene = f.scene("good", &SceneOptions::default());
    let bytes = std::fs::read(&scene).unwrap();
    f.storage
        .put(
            "text.blend",
            Bytes::from_static(b"hello, not a blend"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    f.storage
        .put(
            "truncated.blend",
            Bytes::copy_from_slice(&bytes[..bytes.len() / 3]),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    f.upload("good.blend", &scene).await;

    let cases: [(&str, &str, &str, &str); 4] = [
        ("text.blend", "1-2", "0", "not a .blend file"),
        (
            "truncated.blend",
            "1-2",
            "0",
            "blender could not open `truncated.blend`",
        ),
        ("missing.blend", "1-2", "0", "does not exist"),
        (
            "good.blend",
            "1-2",
            "2",
            "array index 2 is outside the plan",
        ),
    ];
    for (key, frames, index, needle) in cases {
        let output = f
            .renderer(&[
                ("FARM_KEY", key),
                ("FARM_FRAMES", frames),
                ("AWS_BATCH_JOB_ARRAY_INDEX", index),
            ])
            .output()
            .unwrap();
        let stderr = assert_exit(&output, exit::BAD_INPUT);
        assert!(stderr.contains(needle), "{key}: {stderr}");
        // Nothing but the failed attempt's record (attempt 1: no AWS_BATCH_JOB_ATTEMPT).
        let keys = JobKeys::new(key);
        let record_key = keys.task_record(index.parse().unwrap(), 1);
        assert_eq!(
            f.keys_under(&format!("{key}/")).await,
            std::slice::from_ref(&record_key),
            "{key}: nothing uploaded but the task record"
        );
        let record: TaskRecord =
            serde_json::from_slice(&f.storage.get(&record_key).await.unwrap()).unwrap();
        assert_eq!(record.exit_code, exit::BAD_INPUT, "{key}");
        assert!(
            record.error.as_deref().unwrap().contains(needle),
            "{record:?}"
        );
        assert!(record.frames.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_blend_is_refused() {
    let f = fixture().await;
    let scene = f.scene("changed", &SceneOptions::default());
    f.upload("changed.blend", &scene).await;
    let output = f
        .renderer(&[
            ("FARM_KEY", "changed.blend"),
            ("FARM_FRAMES", "1"),
            ("FARM_SOURCE_ETAG", "\"an-older-upload\""),
        ])
        .output()
        .unwrap();
    let stderr = assert_exit(&output, exit::SUPERSEDED);
    assert!(
        stderr.contains("was replaced after the job was submitted"),
        "{stderr}"
    );
    // Nothing but the attempt's record, of the older upload (no receipt of the new job counts it).
    let keys = JobKeys::new("changed.blend");
    assert_eq!(
        f.keys_under("changed.blend/").await,
        [keys.task_record(0, 1)]
    );
    let record: TaskRecord =
        serde_json::from_slice(&f.storage.get(&keys.task_record(0, 1)).await.unwrap()).unwrap();
    assert_eq!(record.exit_code, exit::SUPERSEDED);
    assert_eq!(record.source_etag.as_deref(), Some("\"an-older-upload\""));
}

/// An old job's late child: the key is re-uploaded while the child renders. Before, it went on
/// and overwrote the new job's frame with the old image (and exited 0).
#[tokio::test(flavor = "multi_thread")]
async fn a_blend_replaced_during_the_render_stops_the_chunk_before_any_upload() {
    let f = fixture().await;
    let scene = f.scene("late", &SceneOptions::default());
    let key = "late.blend";
    f.upload(key, &scene).await;
    let etag = f.storage.head(key).await.unwrap().unwrap().etag.unwrap();
    let storage = farm_testkit::Intercept::new(S3Storage::new(f.moto.s3(), BUCKET));
    // The re-upload lands after the child downloaded the .blend, while Blender renders.
    let mut newer = std::fs::read(&scene).unwrap();
    newer.extend_from_slice(b"another version");
    storage.put_after_download(key, newer);

    let work = f.dir.path().join("late-work");
    let config = parse_args(&[
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--frames",
        "1-2",
        "--chunk",
        "2",
        "--source-etag",
        &etag,
        "--threads",
        "2",
        "--work-dir",
        work.to_str().unwrap(),
    ])
    .validate()
    .unwrap();
    let error = renderer::run(&storage, &config, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(error, renderer::RenderError::Superseded { .. }),
        "{error}"
    );
    assert_eq!(error.class().exit_code(), exit::SUPERSEDED);
    assert!(
        f.keys_under("late.blend/frames/").await.is_empty(),
        "no frame of the old version was uploaded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_configuration_is_a_usage_error() {
    let f = fixture().await;
    let output = f.renderer(&[("FARM_KEY", "k.blend")]).output().unwrap();
    let stderr = assert_exit(&output, exit::USAGE);
    assert!(stderr.contains("--frames"), "{stderr}");
    let output = f
        .renderer(&[("FARM_KEY", "k.blend"), ("FARM_FRAMES", "9-1")])
        .output()
        .unwrap();
    let stderr = assert_exit(&output, exit::USAGE);
    assert!(stderr.contains("FARM_FRAMES"), "{stderr}");
}

/// A job definition whose image runs another Blender series than the job was submitted for (a
/// stack deployed with a 4.2 image as `Renderer45ImageTag`): refused before anything is
/// downloaded or rendered, with the usage code Batch does not retry.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_of_another_blender_series_refuses_the_job() {
    let f = fixture().await;
    let scene = f.scene("series", &SceneOptions::default());
    f.upload("series.blend", &scene).await;
    let output = f
        .renderer(&[
            ("FARM_KEY", "series.blend"),
            ("FARM_FRAMES", "1"),
            (env::BLENDER_SERIES, "4.2"),
            (env::JOB_BLENDER_SERIES, "4.5"),
        ])
        .output()
        .unwrap();
    let stderr = assert_exit(&output, exit::USAGE);
    assert!(
        stderr.contains("runs Blender 4.2") && stderr.contains("submitted for Blender 4.5"),
        "{stderr}"
    );
    assert_eq!(f.keys_under("series.blend/").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn python_stored_in_the_blend_never_runs() {
    let f = fixture().await;
    let marker = f.dir.path().join("autorun-ran");
    let scene = f.scene(
        "autorun",
        &SceneOptions {
            autorun_marker: Some(marker.clone()),
            ..SceneOptions::default()
        },
    );
    f.upload("autorun.blend", &scene).await;
    let output = f
        .renderer(&[("FARM_KEY", "autorun.blend"), ("FARM_FRAMES", "1")])
        .output()
        .unwrap();
    assert_exit(&output, exit::SUCCESS);
    assert!(f
        .storage
        .head("autorun.blend/frames/0001.png")
        .await
        .unwrap()
        .is_some());
    assert!(!marker.exists(), "the scene's script ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compressed_blend_renders() {
    let f = fixture().await;
    let scene = f.scene(
        "zstd",
        &SceneOptions {
            compress: true,
            ..SceneOptions::default()
        },
    );
    f.upload("zstd.blend", &scene).await;
    let output = f
        .renderer(&[("FARM_KEY", "zstd.blend"), ("FARM_FRAMES", "2")])
        .output()
        .unwrap();
    assert_exit(&output, exit::SUCCESS);
    let png = f.storage.get("zstd.blend/frames/0002.png").await.unwrap();
    assert_eq!(farm_testkit::frame_code(&png).unwrap(), 2);
}

/// `FARM_ENGINE` reaches Blender: the same Cycles scene rendered with Workbench shows
/// Workbench's picture (its background is the world's viewport colour, not the node tree whose
/// red channel codes the frame), and the frame records the engine.
#[tokio::test(flavor = "multi_thread")]
async fn the_jobs_engine_renders_and_is_recorded_on_the_frame() {
    let f = fixture().await;
    let scene = f.scene("engines", &SceneOptions::default());
    f.upload("engines.blend", &scene).await;
    for (engine, frame) in [("cycles", "2"), ("workbench", "3")] {
        let output = f
            .renderer(&[
                ("FARM_KEY", "engines.blend"),
                ("FARM_FRAMES", frame),
                ("FARM_ENGINE", engine),
            ])
            .output()
            .unwrap();
        assert_exit(&output, exit::SUCCESS);
    }
    let cycles = f
        .storage
        .get("engines.blend/frames/0002.png")
        .await
        .unwrap();
    assert_eq!(farm_testkit::frame_code(&cycles).unwrap(), 2);
    let workbench = f
        .storage
        .get("engines.blend/frames/0003.png")
        .await
        .unwrap();
    assert_ne!(farm_testkit::frame_code(&workbench).unwrap(), 3);
    let mut metadata = Vec::new();
    for key in [
        "engines.blend/frames/0002.png",
        "engines.blend/frames/0003.png",
    ] {
        metadata.push(f.storage.head(key).await.unwrap().unwrap().metadata);
    }
    let (c, w) = (&metadata[0], &metadata[1]);
    assert_eq!(c.get(farm_core::storage::ENGINE_METADATA), None);
    assert_eq!(
        w.get(farm_core::storage::ENGINE_METADATA)
            .map(String::as_str),
        Some("workbench")
    );
}

/// A stand-in for Blender that "renders" frame 1, then reports an error for frame 2 and exits 0
/// without writing it: Blender does exit 0 after some failures.
fn lying_blender(dir: &Path) -> PathBuf {
    let script = dir.join("lying-blender");
    std::fs::write(
        &script,
        r#"#!/usr/bin/env python3
import json, sys, os
out = json.loads(sys.argv[sys.argv.index("--") + 1])["out"]
print("Blender 9.9 (stand-in)")
print("FARM_FRAME 1", flush=True)
path = os.path.join(out, "frame_1.png")
with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
print("Saved: '%s'" % path, flush=True)
print("FARM_FRAME 2", flush=True)
print("Error: Out of GPU memory while rendering", file=sys.stderr, flush=True)
sys.exit(0)
"#,
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    script
}

#[tokio::test(flavor = "multi_thread")]
async fn blender_exiting_0_without_a_frame_fails_naming_the_frame_and_keeps_its_log() {
    let f = fixture().await;
    let scene = f.scene("lying", &SceneOptions::default());
    f.upload("lying.blend", &scene).await;
    let blender = lying_blender(f.dir.path());
    let output = f
        .renderer(&[
            ("FARM_KEY", "lying.blend"),
            ("FARM_FRAMES", "1-2"),
            ("FARM_CHUNK", "2"),
            ("BLENDER", blender.to_str().unwrap()),
        ])
        .output()
        .unwrap();
    let stderr = assert_exit(&output, exit::BAD_INPUT);
    assert!(stderr.contains("frame 2 failed to render"), "{stderr}");
    assert!(stderr.contains("Out of GPU memory"), "{stderr}");
    assert!(stderr.contains("lying.blend/logs/0002.log"), "{stderr}");
    let log = f.storage.get("lying.blend/logs/0002.log").await.unwrap();
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.contains("FARM_FRAME 2") && log.contains("Out of GPU memory"),
        "{log}"
    );
    assert!(
        f.storage
            .head("lying.blend/frames/0001.png")
            .await
            .unwrap()
            .is_some(),
        "frame 1 was fine"
    );
    assert!(f
        .storage
        .head("lying.blend/frames/0002.png")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_blender_and_exits_with_the_interrupted_code() {
    let f = fixture().await;
    // Slow enough that the render is still going when the signal arrives.
    let scene = f.scene(
        "slow",
        &SceneOptions {
            width: 320,
            height: 240,
            samples: 64,
            end: 200,
            ..SceneOptions::default()
        },
    );
    f.upload("slow.blend", &scene).await;
    let child = f
        .renderer(&[
            ("FARM_KEY", "slow.blend"),
            ("FARM_FRAMES", "1-200"),
            ("FARM_CHUNK", "200"),
        ])
        .spawn()
        .unwrap();
    let work_blend = f.dir.path().join("work/scene.blend");
    // Wait for Blender to be rendering: a process with the downloaded scene on its command line.
    let started = Instant::now();
    while blender_pids(&work_blend).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "blender never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    assert_exit(&output, exit::INTERRUPTED);
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
    assert!(
        blender_pids(&work_blend).is_empty(),
        "blender still running"
    );
    // Whatever frames made it are whole PNGs.
    for key in f.keys_under("slow.blend/frames/").await {
        let png = f.storage.get(&key).await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{key}");
    }
}

fn blender_pids(blend: &Path) -> Vec<String> {
    let output = Command::new("pgrep")
        .arg("-f")
        .arg(blend.to_str().unwrap())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The official bpy module (the Blender production runs) renders, through the binary, a scene
/// it saved itself and one Debian's Blender 3.4 saved, and SIGTERM stops it like the executable.
#[tokio::test(flavor = "multi_thread")]
async fn the_bpy_module_renders_scenes_saved_by_4_2_and_3_4_and_stops_on_sigterm() {
    let f = fixture().await;
    let bpy = TestBlender::bpy(BPY_VERSION).unwrap();
    let (var, python) = bpy.env();
    let python = python.to_str().unwrap().to_owned();
    let saved_by_4_2 =
        make_scene_with(&bpy, f.dir.path(), "by-4.2", &SceneOptions::default()).unwrap();
    let saved_by_3_4 = f.scene("by-3.4", &SceneOptions::default());
    for (key, scene) in [
        ("by-4.2.blend", &saved_by_4_2),
        ("by-3.4.blend", &saved_by_3_4),
    ] {
        f.upload(key, scene).await;
        let output = f
            .renderer(&[
                ("FARM_KEY", key),
                ("FARM_FRAMES", "1-3"),
                ("FARM_CHUNK", "3"),
                (var, &python),
            ])
            .output()
            .unwrap();
        assert_exit(&output, exit::SUCCESS);
        let keys = JobKeys::new(key);
        for n in 1..=3 {
            let png = f.storage.get(&keys.frame(n, "png")).await.unwrap();
            assert_eq!(
                farm_testkit::frame_code(&png).unwrap(),
                n,
                "{key} frame {n}"
            );
        }
    }

    let slow = make_scene_with(
        &bpy,
        f.dir.path(),
        "slow-4.2",
        &SceneOptions {
            width: 320,
            height: 240,
            samples: 64,
            end: 200,
            ..SceneOptions::default()
        },
    )
    .unwrap();
    f.upload("slow-4.2.blend", &slow).await;
    let child = f
        .renderer(&[
            ("FARM_KEY", "slow-4.2.blend"),
            ("FARM_FRAMES", "1-200"),
            ("FARM_CHUNK", "200"),
            (var, &python),
        ])
        .spawn()
        .unwrap();
    let work_blend = f.dir.path().join("work/scene.blend");
    let started = Instant::now();
    while blender_pids(&work_blend).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "bpy never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, exit::INTERRUPTED);
    assert!(blender_pids(&work_blend).is_empty(), "bpy still running");
}

/// A frame list too long for the job's environment comes by reference: `FARM_FRAMES=@<key>`
/// names the plan object the trigger wrote. The child reads it and renders its own chunk of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_list_passed_by_reference_is_read_from_the_bucket() {
    let f = fixture().await;
    let scene = f.scene("by-ref", &SceneOptions::default());
    let key = "by-ref.blend";
    f.upload(key, &scene).await;
    let keys = JobKeys::new(key);
    let plan = keys.frame_list("1 3 5 7");
    f.storage
        .put(
            &plan,
            Bytes::from_static(b"1 3 5 7"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let reference = format!("@{plan}");
    let output = f
        .renderer(&[
            ("FARM_KEY", key),
            ("FARM_FRAMES", &reference),
            ("FARM_CHUNK", "2"),
            ("AWS_BATCH_JOB_ARRAY_INDEX", "1"),
        ])
        .output()
        .unwrap();
    assert_exit(&output, exit::SUCCESS);
    assert_eq!(
        f.keys_under(&keys.frames_prefix()).await,
        vec![keys.frame(5, "png"), keys.frame(7, "png")]
    );

    // A reference to a plan that is not there fails the child, naming the key.
    let output = f
        .renderer(&[
            ("FARM_KEY", key),
            ("FARM_FRAMES", "@by-ref.blend/plans/gone.txt"),
            ("FARM_CHUNK", "2"),
        ])
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(exit::SUCCESS));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("by-ref.blend/plans/gone.txt"), "{stderr}");
}
