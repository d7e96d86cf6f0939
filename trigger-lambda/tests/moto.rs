//! The handler against moto_server (S3 and a docker-free Batch), through the real adapters:
//! `farm_io::S3Storage`, `farm_io::BatchScheduler` and the S3 client as the tag reader. Events
//! are built from the real S3 event fixture, so they carry the fields real S3 sends.

use std::collections::HashMap;
use std::path::Path;

use aws_lambda_events::event::s3::S3Event;
use aws_sdk_batch::types::{JobDetail, KeyValuesPair};
use aws_sdk_s3::primitives::ByteStream;
use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::scheduler::RenderDefinitions;
use farm_core::series::BlenderPick;
use farm_core::BlenderSeries;
use farm_io::{BatchScheduler, BatchTargets, S3Storage};
use farm_testkit::{make_scene, unique_prefix, BatchEnv, Moto, SceneOptions};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use trigger_lambda::{handle_event, Deps, EventReport, RecordOutcome};

const BUCKET: &str = "farm-trigger-tests";
const BLEND_HEADER: &[u8] = b"BLENDER-v304RENDH\x00\x00\x00 stand-in scene body";

type MotoDeps = Deps<Box<dyn Fn(&str) -> S3Storage + Send + Sync>, BatchScheduler>;

struct Farm {
    moto: Moto,
    batch: BatchEnv,
    /// The render job definition of Blender 4.5; 4.2's is `batch.render_definition`.
    render_45: String,
    /// The render job definition of every series, as the trigger was configured.
    definitions: std::collections::BTreeMap<BlenderSeries, String>,
    deps: MotoDeps,
}

const V42: BlenderSeries = BlenderSeries::new(4, 2);
const V45: BlenderSeries = BlenderSeries::new(4, 5);

impl Farm {
    /// A farm running 4.2 and 4.5 whose default is 4.2 (`DefaultBlender=4.2`).
    async fn start() -> Farm {
        Self::start_with(BlenderPick::Series(V42), &[]).await
    }

    /// A farm running 4.2, 4.5 and `more`, whose default is `default`.
    async fn start_with(default: BlenderPick, more: &[BlenderSeries]) -> Farm {
        let moto = Moto::start().await.expect("moto_server starts");
        moto.bucket(BUCKET).await.unwrap();
        let batch = moto.batch_env().await.unwrap();
        let render_45 = register_copy(&moto, &batch.render_definition, "farm-render-4-5").await;
        // As the template configures the trigger: a render job definition per Blender series.
        let mut definitions = std::collections::BTreeMap::from([
            (V42, batch.render_definition.clone()),
            (V45, render_45.clone()),
        ]);
        for series in more {
            let name = format!("farm-render-{}-{}", series.major(), series.minor());
            let arn = register_copy(&moto, &batch.render_definition, &name).await;
            definitions.insert(*series, arn);
        }
        let render = RenderDefinitions::new(default, definitions.clone()).unwrap();
        let for_buckets = moto.s3();
        let deps = Deps {
            buckets: Box::new(move |bucket: &str| S3Storage::new(for_buckets.clone(), bucket))
                as Box<dyn Fn(&str) -> S3Storage + Send + Sync>,
            scheduler: BatchScheduler::new(
                moto.batch(),
                BatchTargets {
                    queue: batch.queue.clone(),
                    render_definition: batch.render_definition.clone(),
                    zip_definition: batch.zip_definition.clone(),
                },
            )
            .with_render_definitions(render),
            max_frames: 10_000,
            task_slots: None,
            read_budget: trigger_lambda::READ_BUDGET,
            shared_prefixes: Default::default(),
        };
        Farm {
            moto,
            batch,
            render_45,
            definitions,
            deps,
        }
    }

    /// Uploads `body` at `key` with `tags` (`frame=10&chunk=2`, or empty) and returns its ETag
    /// as an S3 event carries it (no quotes).
    async fn upload(&self, key: &str, body: Vec<u8>, tags: &str) -> String {
        let put = self
            .moto
            .s3()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body))
            .set_tagging((!tags.is_empty()).then(|| tags.to_owned()))
            .send()
            .await
            .unwrap();
        put.e_tag().unwrap().trim_matches('"').to_owned()
    }

    async fn tag(&self, key: &str, tags: &[(&str, &str)]) {
        let mut tagging = aws_sdk_s3::types::Tagging::builder();
        for (k, v) in tags {
            tagging = tagging.tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
                    .unwrap(),
            );
        }
        self.moto
            .s3()
            .put_object_tagging()
            .bucket(BUCKET)
            .key(key)
            .tagging(tagging.build().unwrap())
            .send()
            .await
            .unwrap();
    }

    async fn handle(&self, event_name: &str, key: &str, etag: &str) -> EventReport {
        handle_event(&self.deps, event(event_name, key, etag))
            .await
            .unwrap()
    }

    async fn manifest(&self, key: &str) -> Option<JobManifest> {
        self.json(&format!("{key}/job.json")).await
    }

    /// The JSON object at `key`, if there is one.
    async fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let got = self
            .moto
            .s3()
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .ok()?;
        let body = got.body.collect().await.unwrap().into_bytes();
        Some(serde_json::from_slice(&body).unwrap())
    }

    /// Jobs on the queue, parents only (moto also lists array children; AWS does not).
    async fn job_count(&self) -> usize {
        let listed = self
            .moto
            .batch()
            .list_jobs()
            .job_queue(&self.batch.queue)
            .filters(
                KeyValuesPair::builder()
                    .name("JOB_NAME")
                    .values("*")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        listed
            .job_summary_list()
            .iter()
            .filter(|j| j.job_id().is_some_and(|id| !id.contains(':')))
            .count()
    }

    async fn describe(&self, ids: &[&str]) -> Vec<JobDetail> {
        let described = self
            .moto
            .batch()
            .describe_jobs()
            .set_jobs(Some(ids.iter().map(|s| s.to_string()).collect()))
            .send()
            .await
            .unwrap();
        ids.iter()
            .map(|id| {
                described
                    .jobs()
                    .iter()
                    .find(|j| j.job_id() == Some(*id))
                    .unwrap_or_else(|| panic!("job {id} not described"))
                    .clone()
            })
            .collect()
    }
}

/// Registers a job definition named `name` with the container properties of `from` (another
/// Blender's render image, as far as moto can tell); returns its ARN.
async fn register_copy(moto: &Moto, from: &str, name: &str) -> String {
    let described = moto
        .batch()
        .describe_job_definitions()
        .job_definitions(from)
        .send()
        .await
        .unwrap();
    let original = &described.job_definitions()[0];
    moto.batch()
        .register_job_definition()
        .job_definition_name(name)
        .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
        .set_platform_capabilities(Some(original.platform_capabilities().to_vec()))
        .set_container_properties(original.container_properties().cloned())
        .send()
        .await
        .unwrap()
        .job_definition_arn()
        .unwrap()
        .to_owned()
}

/// Characters S3 leaves as they are in event keys; a space becomes `+`.
const EVENT_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b' ');

/// A real-shaped S3 event (from the fixture) for `key` in the test bucket.
fn event(event_name: &str, key: &str, etag: &str) -> S3Event {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/object_created_put.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let record = &mut value["Records"][0];
    record["eventName"] = event_name.into();
    record["s3"]["bucket"]["name"] = BUCKET.into();
    record["s3"]["bucket"]["arn"] = format!("arn:aws:s3:::{BUCKET}").into();
    let encoded = utf8_percent_encode(key, EVENT_KEY)
        .to_string()
        .replace(' ', "+");
    record["s3"]["object"]["key"] = encoded.into();
    record["s3"]["object"]["eTag"] = etag.into();
    serde_json::from_value(value).unwrap()
}

fn env_of(job: &JobDetail) -> HashMap<String, String> {
    job.container()
        .map(|c| {
            c.environment()
                .iter()
                .map(|kv| {
                    (
                        kv.name().unwrap_or_default().to_owned(),
                        kv.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn submitted(report: &EventReport) -> (String, String) {
    match &report.records[..] {
        [RecordOutcome::Submitted {
            render_job_id,
            zip_job_id,
            ..
        }] => (render_job_id.clone(), zip_job_id.clone()),
        other => panic!("expected one submission: {other:?}"),
    }
}

#[tokio::test]
async fn a_tagged_blend_gives_an_array_render_job_and_a_dependent_zip_job() {
    let farm = Farm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let scene = make_scene(
        dir.path(),
        "scene",
        &SceneOptions {
            compress: true,
            ..SceneOptions::default()
        },
    )
    .unwrap();
    let key = format!("{}shots/scene.blend", unique_prefix("array"));
    let etag = farm
        .upload(
            &key,
            std::fs::read(scene).unwrap(),
            "frame=12&chunk=5&format=PNG",
        )
        .await;
    let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
    let (render_id, zip_id) = submitted(&report);

    let jobs = farm.describe(&[&render_id, &zip_id]).await;
    let (render, zip) = (&jobs[0], &jobs[1]);
    assert_eq!(render.array_properties().and_then(|a| a.size()), Some(3));
    assert!(render.job_definition().unwrap().contains("farm-render"));
    let name = render.job_name().unwrap();
    assert!(
        name.contains("-shots-scene-blend-") && name.ends_with("-render"),
        "{name}"
    );
    let vars = env_of(render);
    assert_eq!(vars["FARM_BUCKET"], BUCKET);
    assert_eq!(vars["FARM_KEY"], key);
    assert_eq!(vars["FARM_FRAMES"], "1-12");
    assert_eq!(vars["FARM_CHUNK"], "5");
    assert_eq!(vars["FARM_FORMAT"], "PNG");
    assert_eq!(vars["FARM_SOURCE_ETAG"], format!("\"{etag}\""));
    assert_eq!(render.tags().unwrap()["farm:key"], key);
    assert_eq!(render.tags().unwrap()["farm:frames"], "1-12");

    assert!(zip.array_properties().and_then(|a| a.size()).is_none());
    assert!(zip.job_definition().unwrap().contains("farm-zip"));
    let depends: Vec<&str> = zip.depends_on().iter().filter_map(|d| d.job_id()).collect();
    assert_eq!(depends, [render_id.as_str()]);
    assert_eq!(env_of(zip)["FARM_KEY"], key);

    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.status, ManifestStatus::Submitted);
    assert_eq!(manifest.render_job_id.as_deref(), Some(render_id.as_str()));
    assert_eq!(manifest.zip_job_id.as_deref(), Some(zip_id.as_str()));
    assert_eq!(manifest.chunk_count, 3);
    assert_eq!(farm.job_count().await, 2);
}

#[tokio::test]
async fn one_chunk_gives_a_plain_job() {
    let farm = Farm::start().await;
    let key = format!("{}one.blend", unique_prefix("plain"));
    let etag = farm
        .upload(&key, BLEND_HEADER.to_vec(), "frames=1-10&chunk=10")
        .await;
    let (render_id, _) = submitted(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    let render = &farm.describe(&[&render_id]).await[0];
    assert!(render.array_properties().and_then(|a| a.size()).is_none());
    assert_eq!(env_of(render)["FARM_CHUNK"], "10");
    // A single frame too.
    let key = format!("{}single.blend", unique_prefix("plain"));
    let etag = farm.upload(&key, BLEND_HEADER.to_vec(), "frame=1").await;
    let (render_id, _) = submitted(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    let render = &farm.describe(&[&render_id]).await[0];
    assert!(render.array_properties().and_then(|a| a.size()).is_none());
}

/// `chunk=auto` on a farm of `MaxvCpus` 64 (the template passes it as `FARM_MAX_VCPUS`): 16
/// four-vCPU slots, so 100 frames go in 15 children of 7 frames (the last has 2).
#[tokio::test]
async fn chunk_auto_fills_the_farms_task_slots() {
    let mut farm = Farm::start().await;
    let config = trigger_lambda::Config::from_lookup(|name| {
        [
            ("JOB_QUEUE_ARN", "q"),
            ("JOB_DEFINITION_ARN", "render"),
            ("ZIP_JOB_DEFINITION_ARN", "zip"),
            ("FARM_MAX_VCPUS", "64"),
        ]
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
    })
    .unwrap();
    farm.deps.task_slots = config.task_slots();
    let key = format!("{}auto.blend", unique_prefix("auto"));
    let etag = farm
        .upload(&key, BLEND_HEADER.to_vec(), "frame=100&chunk=auto")
        .await;
    let (render_id, _) = submitted(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    let render = &farm.describe(&[&render_id]).await[0];
    assert_eq!(render.array_properties().and_then(|a| a.size()), Some(15));
    assert_eq!(env_of(render)["FARM_CHUNK"], "7");
    assert_eq!(env_of(render)["FARM_FRAMES"], "1-100");
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.chunk_size, 7);
    assert_eq!(manifest.chunk_count, 15);

    // The same tags on a farm whose slots are unknown: one frame per child.
    farm.deps.task_slots = None;
    let key = format!("{}auto.blend", unique_prefix("auto-unknown"));
    let etag = farm
        .upload(&key, BLEND_HEADER.to_vec(), "frame=100&chunk=auto")
        .await;
    let (render_id, _) = submitted(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    let render = &farm.describe(&[&render_id]).await[0];
    assert_eq!(render.array_properties().and_then(|a| a.size()), Some(100));
}

/// `estimate=2` on moto's S3 and Batch: exactly one job, the scout (a plain job on the render
/// job definition, its samples and the farm's MaxVcpus in its environment), no render or zip
/// job, no `job.json`; `estimate.json` names it.
#[tokio::test]
async fn an_estimate_upload_submits_one_scout_job_and_no_render_or_zip_job() {
    let mut farm = Farm::start().await;
    farm.deps.task_slots = std::num::NonZeroUsize::new(32);
    let key = format!("{}scout.blend", unique_prefix("scout"));
    let before = farm.job_count().await;
    let etag = farm
        .upload(
            &key,
            BLEND_HEADER.to_vec(),
            "frame=30&chunk=auto&estimate=2",
        )
        .await;
    let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
    let [RecordOutcome::Scouted { scout_job_id, .. }] = &report.records[..] else {
        panic!("{report:?}")
    };
    assert_eq!(farm.job_count().await, before + 1, "the scout alone");
    let scout = &farm.describe(&[scout_job_id]).await[0];
    assert!(scout.array_properties().is_none(), "one task");
    assert!(scout.depends_on().is_empty());
    assert_eq!(
        scout.job_definition(),
        Some(farm.batch.render_definition.as_str())
    );
    let vars = env_of(scout);
    assert_eq!(vars["FARM_ESTIMATE"], "2");
    assert_eq!(vars["FARM_MAX_VCPUS"], "128");
    assert_eq!(vars["FARM_FRAMES"], "1-30");
    assert!(farm.manifest(&key).await.is_none(), "no job.json");
    let estimate: farm_core::estimate::EstimateFile =
        farm.json(&format!("{key}/estimate.json")).await.unwrap();
    assert_eq!(estimate.job_id.as_deref(), Some(scout_job_id.as_str()));
    assert_eq!(estimate.samples, [1, 30]);
    assert_eq!(estimate.max_vcpus, 128);
}

/// Duplicate deliveries, one after the other. Racing deliveries are a handler test on the
/// in-memory store (`racing_deliveries_submit_once` in tests/handler.rs): moto checks
/// `If-None-Match: *` and then writes without a lock, so two racing creates of the request
/// marker can both succeed on moto, where S3's conditional write is atomic.
#[tokio::test]
async fn a_duplicate_event_submits_nothing() {
    let farm = Farm::start().await;
    let key = format!("{}dup.blend", unique_prefix("dup"));
    let etag = farm.upload(&key, BLEND_HEADER.to_vec(), "frame=4").await;
    submitted(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    let again = farm.handle("ObjectCreated:Put", &key, &etag).await;
    assert!(
        matches!(again.records[..], [RecordOutcome::Duplicate { .. }]),
        "{again:?}"
    );
    assert_eq!(farm.job_count().await, 2);

    // A new request delivered four times: the first submits, the others find its marker.
    farm.tag(&key, &[("frame", "6")]).await;
    submitted(&farm.handle("ObjectTagging:Put", &key, &etag).await);
    for _ in 0..3 {
        let again = farm.handle("ObjectTagging:Put", &key, &etag).await;
        assert!(
            matches!(again.records[..], [RecordOutcome::Duplicate { .. }]),
            "{again:?}"
        );
    }
    assert_eq!(farm.job_count().await, 4);
}

#[tokio::test]
async fn an_untagged_upload_waits_for_its_tagging_event() {
    let farm = Farm::start().await;
    let key = format!("{}two step.blend", unique_prefix("tagging"));
    let etag = farm.upload(&key, BLEND_HEADER.to_vec(), "").await;
    let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
    assert!(
        matches!(report.records[..], [RecordOutcome::NoFrameTag { .. }]),
        "{report:?}"
    );
    assert_eq!(farm.job_count().await, 0);
    assert!(farm.manifest(&key).await.is_none());

    farm.tag(&key, &[("frame", "8"), ("chunk", "2")]).await;
    let (render_id, _) = submitted(&farm.handle("ObjectTagging:Put", &key, &etag).await);
    let render = &farm.describe(&[&render_id]).await[0];
    assert_eq!(render.array_properties().and_then(|a| a.size()), Some(4));
    assert_eq!(farm.job_count().await, 2);
}

#[tokio::test]
async fn invalid_tags_and_non_blend_bodies_submit_nothing_and_write_a_rejected_manifest() {
    let farm = Farm::start().await;
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "frame=10&frames=1-5",
            BLEND_HEADER,
            "both `frame=10` and `frames=1-5`",
        ),
        ("frames=5-1", BLEND_HEADER, "tag `frames=5-1` is invalid"),
        ("frame=10&chunk=0", BLEND_HEADER, "tag `chunk=0` is invalid"),
        ("frame=abc", BLEND_HEADER, "tag `frame=abc` is invalid"),
        ("frame=10001", BLEND_HEADER, "10000"),
        ("frames=1-20000", BLEND_HEADER, "10000"),
        ("frame=10", b"PK\x03\x04 a zip archive", "not a .blend"),
        ("frame=10", b"", "empty"),
    ];
    let prefix = unique_prefix("rejected");
    for (i, (tags, body, needle)) in cases.iter().enumerate() {
        let key = format!("{prefix}case {i}.blend");
        let etag = farm.upload(&key, body.to_vec(), tags).await;
        let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
        assert!(
            matches!(&report.records[..], [RecordOutcome::Rejected { message, .. }] if message.contains(needle)),
            "{tags}: {report:?}"
        );
        let manifest = farm.manifest(&key).await.unwrap();
        assert_eq!(manifest.status, ManifestStatus::Rejected, "{tags}");
        assert!(manifest.message.unwrap().contains(needle), "{tags}");
        assert!(manifest.render_job_id.is_none());
    }
    assert_eq!(farm.job_count().await, 0);
}

#[tokio::test]
async fn keys_with_spaces_plus_and_unicode_work_end_to_end() {
    let farm = Farm::start().await;
    let key = format!("{}my scene ü+1 ✓.blend", unique_prefix("unicode"));
    let etag = farm.upload(&key, BLEND_HEADER.to_vec(), "frame=2").await;
    let raw_event = event("ObjectCreated:Put", &key, &etag);
    let raw_key = raw_event.records[0].s3.object.key.clone().unwrap();
    assert!(
        raw_key.contains("my+scene+%C3%BC%2B1+%E2%9C%93.blend"),
        "{raw_key}"
    );
    let report = handle_event(&farm.deps, raw_event).await.unwrap();
    let (render_id, _) = submitted(&report);
    let render = &farm.describe(&[&render_id]).await[0];
    assert_eq!(env_of(render)["FARM_KEY"], key);
    let tag = &render.tags().unwrap()["farm:key"];
    assert!(tag.ends_with("/my scene _+1 _.blend"), "{tag}");
    let name = render.job_name().unwrap();
    assert!(
        name.contains("-my-scene-1-blend-") && name.ends_with("-render"),
        "{name}"
    );
    assert_eq!(farm.manifest(&key).await.unwrap().key, key);
}

#[tokio::test]
async fn an_object_deleted_since_the_event_is_skipped() {
    let farm = Farm::start().await;
    let key = format!("{}gone.blend", unique_prefix("gone"));
    let etag = farm.upload(&key, BLEND_HEADER.to_vec(), "frame=3").await;
    farm.moto
        .s3()
        .delete_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
    assert!(
        matches!(report.records[..], [RecordOutcome::Gone { .. }]),
        "{report:?}"
    );
    assert_eq!(farm.job_count().await, 0);
}

/// A .blend saved by the official `bpy` 4.2 LTS module: the active scene `Shot` renders
/// 5-29 every 6th frame and is set to EEVEE; a second scene has another range.
fn blend_4_2(dir: &Path) -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bpy-venv.sh");
    let out = std::process::Command::new("bash")
        .arg(venv)
        .arg("4.2.23")
        .output()
        .expect("scripts/bpy-venv.sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let path = dir.join("shot42.blend");
    let script = format!(
        "import bpy\n\
         other = bpy.data.scenes.new('Aaa')\n\
         other.frame_start, other.frame_end = 1, 100\n\
         s = bpy.context.scene\n\
         s.name = 'Shot'\n\
         s.frame_start, s.frame_end, s.frame_step = 5, 29, 6\n\
         s.render.engine = 'BLENDER_EEVEE_NEXT'\n\
         bpy.ops.wm.save_as_mainfile(filepath={:?}, compress=True)\n",
        path.display().to_string()
    );
    let made = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("bpy runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    path
}

#[tokio::test]
async fn frames_scene_renders_the_active_scenes_stepped_range_and_records_what_it_read() {
    let farm = Farm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let blend = blend_4_2(dir.path());
    let key = format!("{}shots/shot42.blend", unique_prefix("scene"));
    let etag = farm
        .upload(&key, std::fs::read(blend).unwrap(), "frames=scene&chunk=2")
        .await;
    let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
    let (render_id, _) = submitted(&report);
    let render = &farm.describe(&[&render_id]).await[0];
    let vars = env_of(render);
    assert_eq!(vars["FARM_FRAMES"], "5-29:6");
    assert_eq!(render.array_properties().and_then(|a| a.size()), Some(3));

    // What the reader found is part of the job's record, for `farm status`.
    let manifest = farm.manifest(&key).await.expect("job.json");
    let record = serde_json::to_value(manifest.scene.expect("scene facts in job.json")).unwrap();
    assert_eq!(record["version"], "4.2");
    assert_eq!(record["compression"], "zstd");
    assert_eq!(record["scene"], "Shot");
    assert_eq!(record["frames"], "5-29:6");
    assert_eq!(record["engine"], "BLENDER_EEVEE_NEXT");
    // The scene's own engine runs, and the job says so.
    assert_eq!(record["rendered_with"], "eevee");
    assert!(record.get("notes").is_none(), "{record}");
    assert_eq!(vars["FARM_ENGINE"], "eevee");
    assert_eq!(
        serde_json::to_value(manifest.engine).unwrap(),
        serde_json::json!("eevee")
    );
    assert_eq!(record["resolution"], serde_json::json!([1920, 1080]));
    // No separate record beside it any more.
    assert!(farm
        .moto
        .s3()
        .head_object()
        .bucket(BUCKET)
        .key(format!("{key}/scene.json"))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn frames_scene_on_a_file_that_is_not_a_blend_is_rejected() {
    let farm = Farm::start().await;
    let key = format!("{}fake.blend", unique_prefix("scene-bad"));
    let etag = farm
        .upload(&key, b"not a blend at all".to_vec(), "frames=scene")
        .await;
    let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
    match &report.records[..] {
        [RecordOutcome::Rejected { message, .. }] => {
            assert!(message.contains("not a .blend file"), "{message}");
        }
        other => panic!("expected a rejection: {other:?}"),
    }
    assert_eq!(farm.job_count().await, 0);
}

/// A 17-character tag can stand for a frame list of 9,000+ characters, past ECS's 8,192 on
/// container overrides: the trigger writes it to the bucket and both jobs get a reference that
/// Batch (here moto) accepts, naming an object that holds the job's canonical list.
#[tokio::test]
async fn a_long_frame_list_travels_by_reference() {
    let farm = Farm::start().await;
    let key = format!("{}long.blend", unique_prefix("byref"));
    let etag = farm
        .upload(
            &key,
            BLEND_HEADER.to_vec(),
            "frames=1-3000%3A3%202-3000%3A3&chunk=100",
        )
        .await;
    let (render_id, zip_id) = submitted(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    let canonical = farm.manifest(&key).await.unwrap().frames.unwrap();
    assert!(canonical.len() > 9_000, "{}", canonical.len());
    for job in farm.describe(&[&render_id, &zip_id]).await {
        let vars = env_of(&job);
        let characters: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(characters < 8_192, "{characters} characters of environment");
        let reference = &vars["FARM_FRAMES"];
        let plan = reference.strip_prefix('@').expect("a reference");
        assert!(plan.starts_with(&format!("{key}/plans/")), "{plan}");
        let body = farm
            .moto
            .s3()
            .get_object()
            .bucket(BUCKET)
            .key(plan)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(String::from_utf8(body.to_vec()).unwrap(), canonical);
    }
    let render = &farm.describe(&[&render_id]).await[0];
    assert_eq!(render.array_properties().and_then(|a| a.size()), Some(20));
}

/// A compressed .blend saved by the official `bpy` 5.0 module: newer than every series the farm
/// runs.
fn blend_5_0(dir: &Path) -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bpy-venv.sh");
    let out = std::process::Command::new("bash")
        .arg(venv)
        .arg("5.0.1")
        .output()
        .expect("scripts/bpy-venv.sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let path = dir.join("shot50.blend");
    let script = format!(
        "import bpy\nbpy.ops.wm.save_as_mainfile(filepath={:?}, compress=True)\n",
        path.display().to_string()
    );
    let made = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("bpy runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    path
}

/// The message of a report's one record, which must be a rejection.
fn rejection(report: &EventReport) -> String {
    match &report.records[..] {
        [RecordOutcome::Rejected { message, .. }] => message.clone(),
        other => panic!("expected a rejection: {other:?}"),
    }
}

/// The job definition a job was submitted to, as moto describes it.
fn definition_of(job: &JobDetail) -> &str {
    job.job_definition().unwrap()
}

#[tokio::test]
async fn the_blender_tag_picks_its_series_job_definition_and_job_json_records_it() {
    let farm = Farm::start().await;
    let prefix = unique_prefix("series");

    let key = format!("{prefix}tagged.blend");
    let etag = farm
        .upload(&key, BLEND_HEADER.to_vec(), "frame=4&chunk=2&blender=4.5")
        .await;
    let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
    let (render_id, zip_id) = submitted(&report);
    match &report.records[..] {
        [RecordOutcome::Submitted {
            blender, warnings, ..
        }] => {
            assert_eq!(blender.as_deref(), Some("4.5"));
            assert!(warnings.is_empty(), "{warnings:?}");
        }
        other => panic!("{other:?}"),
    }
    let jobs = farm.describe(&[&render_id, &zip_id]).await;
    assert_eq!(definition_of(&jobs[0]), farm.render_45);
    assert_eq!(definition_of(&jobs[1]), farm.batch.zip_definition);
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.blender, Some(V45));
    assert_eq!(manifest.saved_by, Some(BlenderSeries::new(3, 4)));
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
    // `farm retry` submits again where the job ran.
    let targets = BatchTargets::recorded(&manifest.targets.unwrap()).unwrap();
    assert_eq!(targets.render_definition, farm.render_45);
    assert_eq!(targets.zip_definition, farm.batch.zip_definition);

    // Without the tag: the default series, 4.2.
    let key = format!("{prefix}untagged.blend");
    let etag = farm.upload(&key, BLEND_HEADER.to_vec(), "frame=2").await;
    let (render_id, _) = submitted(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    let render = &farm.describe(&[&render_id]).await[0];
    assert_eq!(definition_of(render), farm.batch.render_definition);
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.blender, Some(V42));
    assert_eq!(
        BatchTargets::recorded(&manifest.targets.unwrap())
            .unwrap()
            .render_definition,
        farm.batch.render_definition
    );

    // Re-tagging the same frames for the other series is a new request: a new job on 4.5
    // that replaces the 4.2 one.
    farm.tag(&key, &[("frame", "2"), ("blender", "4.5")]).await;
    let (retagged, _) = submitted(&farm.handle("ObjectTagging:Put", &key, &etag).await);
    assert_ne!(retagged, render_id);
    assert_eq!(
        definition_of(&farm.describe(&[&retagged]).await[0]),
        farm.render_45
    );
    assert_eq!(farm.manifest(&key).await.unwrap().blender, Some(V45));
    assert_eq!(farm.job_count().await, 6);
}

#[tokio::test]
async fn an_unknown_blender_is_rejected_naming_the_supported_ones_and_submits_nothing() {
    let farm = Farm::start().await;
    let prefix = unique_prefix("series-bad");
    for (tags, needles) in [
        (
            "frame=4&blender=4.4",
            &[
                "`blender=4.4` names a Blender this farm does not run",
                "Blender 4.2 (`blender=4.2`), Blender 4.5 (`blender=4.5`)",
            ][..],
        ),
        (
            "frame=4&blender=5.0",
            &[
                "`blender=5.0`",
                "Blender 4.2 (`blender=4.2`), Blender 4.5 (`blender=4.5`)",
            ][..],
        ),
        (
            "frame=4&blender=latest",
            &["tag `blender=latest` is invalid", "major.minor"][..],
        ),
        ("frame=4&blender=4.5.15", &["use the series `4.5`"][..]),
    ] {
        let key = format!("{prefix}{}.blend", tags.replace(['&', '='], "-"));
        let etag = farm.upload(&key, BLEND_HEADER.to_vec(), tags).await;
        let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
        let message = match &report.records[..] {
            [RecordOutcome::Rejected { message, .. }] => message.clone(),
            other => panic!("{tags}: expected a rejection: {other:?}"),
        };
        let manifest = farm.manifest(&key).await.unwrap();
        assert_eq!(manifest.status, ManifestStatus::Rejected, "{tags}");
        assert_eq!(manifest.message.as_deref(), Some(message.as_str()));
        for needle in needles {
            assert!(message.contains(needle), "{tags}: {message}");
        }
        assert!(manifest.render_job_id.is_none());
    }
    assert_eq!(farm.job_count().await, 0);

    // A bad re-tag of a submitted job: the job and its job.json stay, rejected.json says why.
    let key = format!("{prefix}running.blend");
    let etag = farm.upload(&key, BLEND_HEADER.to_vec(), "frame=3").await;
    let (render_id, _) = submitted(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    farm.tag(&key, &[("frame", "3"), ("blender", "3.6")]).await;
    let report = farm.handle("ObjectTagging:Put", &key, &etag).await;
    assert!(
        matches!(&report.records[..], [RecordOutcome::Rejected { .. }]),
        "{report:?}"
    );
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.status, ManifestStatus::Submitted);
    assert_eq!(manifest.render_job_id.as_deref(), Some(render_id.as_str()));
    let got = farm
        .moto
        .s3()
        .get_object()
        .bucket(BUCKET)
        .key(format!("{key}/rejected.json"))
        .send()
        .await
        .expect("rejected.json is written");
    let rejected: JobManifest =
        serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(rejected.status, ManifestStatus::Rejected);
    let message = rejected.message.unwrap();
    assert!(
        message.contains("`blender=3.6`")
            && message.contains("Blender 4.2 (`blender=4.2`), Blender 4.5 (`blender=4.5`)"),
        "{message}"
    );
    assert_eq!(farm.job_count().await, 2);
}

/// Log lines of warning level and above, as the trigger writes them.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_file_saved_by_a_newer_blender_is_named_in_job_json_and_the_log() {
    let farm = Farm::start().await;
    let prefix = unique_prefix("newer");
    // The test runs on one thread: this subscriber sees everything the handler logs.
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    // Saved by 4.5 (its header), rendered by the default 4.2: the warning says to tag 4.5.
    let key = format!("{prefix}from45.blend");
    let etag = farm
        .upload(
            &key,
            b"BLENDER-v405REND\x00\x00\x00 stand-in".to_vec(),
            "frame=2",
        )
        .await;
    let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
    submitted(&report);
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.status, ManifestStatus::Submitted);
    assert_eq!(manifest.blender, Some(V42));
    assert_eq!(manifest.saved_by, Some(V45));
    let [warning] = &manifest.warnings[..] else {
        panic!("one warning expected: {:?}", manifest.warnings)
    };
    assert!(
        warning.contains("saved by Blender 4.5, newer than this job's Blender 4.2"),
        "{warning}"
    );
    assert!(warning.contains("tag `blender=4.5`"), "{warning}");
    match &report.records[..] {
        [RecordOutcome::Submitted { warnings, .. }] => assert_eq!(warnings, &manifest.warnings),
        other => panic!("{other:?}"),
    }
    let log = logs.text();
    let line = log
        .lines()
        .find(|l| l.contains("saved by Blender 4.5"))
        .unwrap_or_else(|| panic!("the warning is not in the trigger's log: {log}"));
    assert!(line.contains("WARN") && line.contains(&key), "{line}");
    // Tagged for 4.5, nothing to warn of.
    farm.tag(&key, &[("frame", "2"), ("blender", "4.5")]).await;
    submitted(&farm.handle("ObjectTagging:Put", &key, &etag).await);
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.blender, Some(V45));
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);

    // A real file saved by Blender 5.0 (zstd): Blender 4.2 cannot open it at all, so the
    // default series is refused, naming the one that opens it.
    let dir = tempfile::tempdir().unwrap();
    let blend = blend_5_0(dir.path());
    let key = format!("{prefix}from50.blend");
    let etag = farm
        .upload(&key, std::fs::read(blend).unwrap(), "frame=2")
        .await;
    let jobs_before = farm.job_count().await;
    let message = rejection(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    assert!(
        message.contains("saved by Blender 5.0, whose files Blender 4.2 cannot open"),
        "{message}"
    );
    assert!(message.contains("tag `blender=4.5`"), "{message}");
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.status, ManifestStatus::Rejected);
    assert_eq!(manifest.message.as_deref(), Some(message.as_str()));
    assert_eq!(farm.job_count().await, jobs_before);
    // Blender 4.5 opens it (dropping what 5.0 added): submitted, with the warning.
    farm.tag(&key, &[("frame", "2"), ("blender", "4.5")]).await;
    submitted(&farm.handle("ObjectTagging:Put", &key, &etag).await);
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.saved_by, Some(BlenderSeries::new(5, 0)));
    let [warning] = &manifest.warnings[..] else {
        panic!("one warning expected: {:?}", manifest.warnings)
    };
    assert!(
        warning.contains("saved by Blender 5.0, newer than this job's Blender 4.5"),
        "{warning}"
    );
    assert!(
        warning.contains("this farm runs no Blender that new (4.2, 4.5)"),
        "{warning}"
    );
}

#[tokio::test]
async fn blender_auto_runs_the_series_of_the_file_on_that_series_job_definition() {
    let (v50, v53) = (BlenderSeries::new(5, 0), BlenderSeries::new(5, 3));
    // As the template deploys it: every series, `DefaultBlender=auto`.
    let farm = Farm::start_with(BlenderPick::Auto, &[v50, v53]).await;
    let prefix = unique_prefix("auto");
    let dir = tempfile::tempdir().unwrap();
    let stand_in = |header: &str| format!("{header}REND\x00\x00\x00\x00 stand-in").into_bytes();
    // (file, its bytes, the series it runs, why)
    let cases = [
        ("by34", BLEND_HEADER.to_vec(), V42, "saved by Blender 3.4, which the farm does not run; this is the oldest series newer than it"),
        ("by42", stand_in("BLENDER-v402"), V42, "`blender=auto`: the file was saved by Blender 4.2"),
        ("by45", stand_in("BLENDER-v405"), V45, "`blender=auto`: the file was saved by Blender 4.5"),
        ("by50", std::fs::read(blend_5_0(dir.path())).unwrap(), v50, "`blender=auto`: the file was saved by Blender 5.0"),
        ("by53", stand_in("BLENDER17-01v0503"), v53, "`blender=auto`: the file was saved by Blender 5.3"),
    ];
    let mut etags = HashMap::new();
    for (name, body, want, why) in cases {
        let key = format!("{prefix}{name}.blend");
        let etag = farm.upload(&key, body, "frame=2").await;
        etags.insert(name, etag.clone());
        let report = farm.handle("ObjectCreated:Put", &key, &etag).await;
        let (render_id, _) = submitted(&report);
        let jobs = farm.describe(&[&render_id]).await;
        assert_eq!(definition_of(&jobs[0]), farm.definitions[&want], "{name}");
        let manifest = farm.manifest(&key).await.unwrap();
        assert_eq!(manifest.blender, Some(want), "{name}");
        let reason = manifest.blender_reason.unwrap_or_default();
        assert!(reason.contains(why), "{name}: {reason}");
        assert!(
            manifest.warnings.is_empty(),
            "{name}: {:?}",
            manifest.warnings
        );
        assert_eq!(
            BatchTargets::recorded(&manifest.targets.unwrap())
                .unwrap()
                .render_definition,
            farm.definitions[&want]
        );
    }

    // Newer than every series: refused before any job, naming both versions.
    let key = format!("{prefix}by54.blend");
    let etag = farm
        .upload(&key, stand_in("BLENDER17-01v0504"), "frame=2")
        .await;
    let jobs_before = farm.job_count().await;
    let message = rejection(&farm.handle("ObjectCreated:Put", &key, &etag).await);
    assert!(
        message.contains(
            "saved by Blender 5.4, newer than every Blender this farm runs (the newest is 5.3)"
        ),
        "{message}"
    );
    assert_eq!(farm.job_count().await, jobs_before);
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.status, ManifestStatus::Rejected);

    // An explicit series still wins, with today's warning.
    let key = format!("{prefix}by50.blend");
    let etag = etags["by50"].clone();
    farm.tag(&key, &[("frame", "2"), ("blender", "4.5")]).await;
    let (render_id, _) = submitted(&farm.handle("ObjectTagging:Put", &key, &etag).await);
    let jobs = farm.describe(&[&render_id]).await;
    assert_eq!(definition_of(&jobs[0]), farm.render_45);
    let manifest = farm.manifest(&key).await.unwrap();
    assert_eq!(manifest.blender, Some(V45));
    assert_eq!(
        manifest.blender_reason.as_deref(),
        Some("asked for with `blender=`")
    );
    assert!(
        manifest.warnings[0].contains("saved by Blender 5.0, newer than this job's Blender 4.5"),
        "{:?}",
        manifest.warnings
    );
}
