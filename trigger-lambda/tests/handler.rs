//! The handler on real S3 event JSON fixtures, against the test kit's in-memory storage and
//! scheduler (failures injected by its `Faulty` wrapper).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aws_lambda_events::event::s3::S3Event;
use bytes::Bytes;
use farm_core::env;
use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::scheduler::{JobKind, JobSpec, Scheduler};
use farm_testkit::{Fault, Faulty, MemoryScheduler, MemoryStorage, Op, StoredObject};
use trigger_lambda::{
    handle_event, parse_event, process_event, Deps, EventReport, MarkerState, RecordOutcome,
    RequestMarker, TriggerError,
};

const BUCKET: &str = "render-farm-bucket";
const E1: &str = "0123456789abcdef0123456789abcdef";
const E2: &str = "fedcba9876543210fedcba9876543210";
const BLEND: &[u8] = b"BLENDER-v304RENDH\x00\x00\x00 rest of a scene";

// ---------------------------------------------------------------------------------------------
// The test kit's in-memory store and scheduler, behind its failure-injecting wrapper

/// The bucket (objects, ETags and tags in memory); clones share it and its faults.
type Store = Faulty<MemoryStorage>;

fn store() -> Store {
    Faulty::new(MemoryStorage::new())
}

/// Seeding and reading the bucket in the terms of S3 events.
trait Bucket {
    /// An upload by a user: `etag` as the event carries it (no quotes).
    fn upload(&self, key: &str, body: &[u8], etag: &str, tags: &[(&str, &str)]);
    /// PutObjectTagging: new tags, same content and ETag.
    fn set_tags(&self, key: &str, tags: &[(&str, &str)]);
    fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T>;
    fn manifest(&self, key: &str) -> Option<JobManifest>;
    fn markers(&self, key: &str) -> Vec<String>;
}

impl Bucket for Store {
    fn upload(&self, key: &str, body: &[u8], etag: &str, tags: &[(&str, &str)]) {
        self.inner().insert_object(
            key,
            StoredObject::new(Bytes::copy_from_slice(body))
                .etag(etag)
                .tags(tags.iter().copied()),
        );
    }

    fn set_tags(&self, key: &str, tags: &[(&str, &str)]) {
        self.inner().set_tags(key, tags.iter().copied());
    }

    fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.inner()
            .body(key)
            .map(|body| serde_json::from_slice(&body).unwrap())
    }

    fn manifest(&self, key: &str) -> Option<JobManifest> {
        self.json(&format!("{key}/job.json"))
    }

    fn markers(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}/requests/");
        self.inner()
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(&prefix))
            .collect()
    }
}

type TestDeps = Deps<Box<dyn Fn(&str) -> Store + Send + Sync>, Faulty<MemoryScheduler>>;

fn deps(store: &Store) -> TestDeps {
    let for_buckets = store.clone();
    Deps {
        buckets: Box::new(move |bucket: &str| {
            assert_eq!(bucket, BUCKET);
            for_buckets.clone()
        }),
        scheduler: Faulty::new(MemoryScheduler::new()),
        max_frames: 10_000,
        task_slots: None,
        read_budget: trigger_lambda::READ_BUDGET,
        shared_prefixes: Default::default(),
    }
}

fn fixture(name: &str) -> S3Event {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    // Real S3 events deserialise as they are, without the lenient parser's help.
    let strict: S3Event = serde_json::from_str(&text).unwrap();
    let lenient = parse_event(serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(strict, lenient, "{name}");
    strict
}

async fn run(deps: &TestDeps, name: &str) -> EventReport {
    handle_event(deps, fixture(name)).await.unwrap()
}

fn env_of(job: &JobSpec) -> HashMap<String, String> {
    job.env.iter().cloned().collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn every_fixture_is_a_real_s3_event_shape() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let event = fixture(&name);
        assert!(!event.records.is_empty(), "{name}");
        for record in &event.records {
            // The fields moto leaves out but real S3 always sends.
            assert!(record.principal_id.principal_id.is_some(), "{name}");
            assert!(
                record.request_parameters.source_ip_address.is_some(),
                "{name}"
            );
            assert!(record.event_name.is_some(), "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 7, "{seen}");
}

#[tokio::test]
async fn put_event_submits_an_array_render_job_and_a_dependent_zip_job() {
    let store = store();
    store.upload(
        "shots/scene.blend",
        BLEND,
        E1,
        &[("frame", "120"), ("chunk", "4"), ("format", "png")],
    );
    let deps = deps(&store);
    let report = run(&deps, "object_created_put.json").await;
    assert_eq!(report.submitted(), 1, "{report:?}");

    let jobs = deps.scheduler.inner().jobs();
    assert_eq!(jobs.len(), 2);
    let (render_id, render) = &jobs[0];
    let (zip_id, zip) = &jobs[1];
    assert_eq!(render.kind, JobKind::Render);
    assert_eq!(render.array_size, Some(30));
    assert_job_name(&render.name, "shots-scene-blend-", "-render");
    assert_job_name(&zip.name, "shots-scene-blend-", "-zip");
    let vars = env_of(render);
    assert_eq!(vars[env::BUCKET], BUCKET);
    assert_eq!(vars[env::KEY], "shots/scene.blend");
    assert_eq!(vars[env::FRAMES], "1-120");
    assert_eq!(vars[env::CHUNK], "4");
    assert_eq!(vars[env::FORMAT], "PNG");
    assert_eq!(vars[env::SOURCE_ETAG], format!("\"{E1}\""));
    assert_eq!(zip.kind, JobKind::Zip);
    assert_eq!(zip.depends_on, vec![render_id.clone()]);
    assert_eq!(zip.array_size, None);

    let manifest = store.manifest("shots/scene.blend").unwrap();
    assert_eq!(manifest.status, ManifestStatus::Submitted);
    assert_eq!(manifest.render_job_id.as_ref(), Some(render_id));
    assert_eq!(manifest.zip_job_id.as_ref(), Some(zip_id));
    assert_eq!(manifest.frames.as_deref(), Some("1-120"));
    assert_eq!(manifest.chunk_count, 30);
    assert_eq!(manifest.frame_count, 120);
    let markers = store.markers("shots/scene.blend");
    assert_eq!(markers.len(), 1, "{markers:?}");
    let marker: RequestMarker = store.json(&markers[0]).unwrap();
    assert_eq!(marker.state, MarkerState::Submitted);
    assert_eq!(
        marker.manifest.unwrap().render_job_id.as_ref(),
        Some(render_id)
    );
}

/// `estimate=2`: exactly one scout job (one task on the render job definition, its samples and
/// the farm's MaxVcpus in its environment), no render or zip job, no `job.json`; the re-tag
/// without `estimate=` then submits the job.
#[tokio::test]
async fn an_estimate_upload_submits_one_scout_job_and_no_render_or_zip_job() {
    let store = store();
    let tags = [("frame", "120"), ("chunk", "4")];
    let mut with_estimate = tags.to_vec();
    with_estimate.push(("estimate", "2"));
    store.upload("shots/scene.blend", BLEND, E1, &with_estimate);
    let mut deps = deps(&store);
    deps.task_slots = std::num::NonZeroUsize::new(16);
    let report = run(&deps, "object_created_put.json").await;
    assert_eq!(report.submitted(), 0, "{report:?}");
    let RecordOutcome::Scouted {
        scout_job_id,
        samples,
        ..
    } = &report.records[0]
    else {
        panic!("{report:?}")
    };
    assert_eq!(samples, "1 120");
    let jobs = deps.scheduler.inner().jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let (id, scout) = &jobs[0];
    assert_eq!(id, scout_job_id);
    assert_eq!(scout.kind, JobKind::Render);
    assert_eq!(scout.array_size, None);
    assert_job_name(&scout.name, "shots-scene-blend-", "-scout");
    let vars = env_of(scout);
    assert_eq!(vars[env::ESTIMATE], "2");
    assert_eq!(vars[env::MAX_VCPUS], "64");
    assert_eq!(vars[env::FRAMES], "1-120");
    assert_eq!(vars[env::SOURCE_ETAG], format!("\"{E1}\""));
    assert!(store.manifest("shots/scene.blend").is_none());
    let estimate: farm_core::estimate::EstimateFile =
        store.json("shots/scene.blend/estimate.json").unwrap();
    assert_eq!(estimate.job_id.as_ref(), Some(id));
    assert_eq!(estimate.samples, [1, 120]);

    // A duplicate delivery submits nothing; the tags without `estimate=` submit the job.
    let report = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(report.records[0], RecordOutcome::Duplicate { .. }),
        "{report:?}"
    );
    store.set_tags("shots/scene.blend", &tags);
    let report = run(&deps, "object_tagging_put.json").await;
    assert_eq!(report.submitted(), 1, "{report:?}");
    let jobs = deps.scheduler.inner().jobs();
    assert_eq!(jobs.len(), 3);
    assert_eq!(
        (jobs[1].1.kind, jobs[1].1.array_size, jobs[2].1.kind),
        (JobKind::Render, Some(30), JobKind::Zip)
    );
    assert!(!env_of(&jobs[1].1).contains_key(env::ESTIMATE));
    assert!(deps.scheduler.inner().cancelled().is_empty());
}

#[tokio::test]
async fn multipart_upload_event_is_handled_like_a_put() {
    let store = store();
    store.upload(
        "shots/big film.blend",
        BLEND,
        "d41d8cd98f00b204e9800998ecf8427e-3",
        &[("frames", "1-10 20"), ("chunk", "11")],
    );
    let deps = deps(&store);
    let report = run(&deps, "object_created_multipart.json").await;
    assert_eq!(report.submitted(), 1, "{report:?}");
    let jobs = deps.scheduler.inner().jobs();
    // One chunk: a plain job, since Batch refuses arrays smaller than 2.
    assert_eq!(jobs[0].1.array_size, None);
    assert_eq!(env_of(&jobs[0].1)[env::FRAMES], "1-10 20");
    assert_eq!(env_of(&jobs[0].1)[env::KEY], "shots/big film.blend");
}

#[tokio::test]
async fn untagged_upload_then_tagging_event_submits_once() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("owner", "ana")]);
    let deps = deps(&store);
    let report = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(report.records[0], RecordOutcome::NoFrameTag { .. }),
        "{report:?}"
    );
    assert!(deps.scheduler.inner().jobs().is_empty());
    assert!(store.manifest("shots/scene.blend").is_none());

    store.set_tags("shots/scene.blend", &[("owner", "ana"), ("frame", "24")]);
    let report = run(&deps, "object_tagging_put.json").await;
    assert_eq!(report.submitted(), 1, "{report:?}");
    assert_eq!(deps.scheduler.inner().jobs()[0].1.array_size, Some(24));

    // The created event delivered again (late) now reads the same tags: a duplicate.
    let report = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(report.records[0], RecordOutcome::Duplicate { .. }),
        "{report:?}"
    );
    assert_eq!(deps.scheduler.inner().jobs().len(), 2);
}

#[tokio::test]
async fn keys_with_spaces_plus_and_unicode_are_decoded() {
    let store = store();
    store.upload("my scene ü.blend", BLEND, E1, &[("frame", "3")]);
    store.upload("shots/a+b ✓.blend", BLEND, E1, &[("frame", "2")]);
    let deps = deps(&store);
    assert_eq!(
        run(&deps, "key_with_spaces_plus_unicode.json")
            .await
            .submitted(),
        1
    );
    assert_eq!(
        run(&deps, "key_with_literal_plus.json").await.submitted(),
        1
    );
    let jobs = deps.scheduler.inner().jobs();
    assert_eq!(env_of(&jobs[0].1)[env::KEY], "my scene ü.blend");
    assert_job_name(&jobs[0].1.name, "my-scene-blend-", "-render");
    assert_eq!(env_of(&jobs[2].1)[env::KEY], "shots/a+b ✓.blend");
    // Batch refuses tag values with other characters than letters, digits and ` _.:/=+-@`.
    assert_eq!(jobs[0].1.tags["farm:key"], "my scene _.blend");
    assert_eq!(jobs[1].1.tags["farm:key"], "my scene _.blend");
    assert_eq!(jobs[2].1.tags["farm:key"], "shots/a+b _.blend");
    assert!(store.manifest("my scene ü.blend").is_some());
    assert!(store.manifest("shots/a+b ✓.blend").is_some());
}

#[tokio::test]
async fn non_blend_keys_and_other_events_are_ignored() {
    let store = store();
    store.upload("shots/notes.txt", b"BLENDER", E1, &[("frame", "3")]);
    let deps = deps(&store);
    let report = run(&deps, "non_blend_key.json").await;
    assert!(
        matches!(&report.records[0], RecordOutcome::Ignored { reason } if reason.contains("does not end in `.blend`")),
        "{report:?}"
    );
    assert!(deps.scheduler.inner().jobs().is_empty());
    assert!(store.manifest("shots/notes.txt").is_none());
}

#[tokio::test]
async fn several_records_are_handled_independently() {
    let store = store();
    store.upload("a/one.blend", BLEND, E1, &[("frame", "2")]);
    store.upload("a/two.blend", BLEND, E2, &[("frame", "abc")]);
    store.upload("a/three.blend", BLEND, E1, &[("frame", "5")]);
    // The job manifest of the first record cannot be written: S3 fails.
    store.inject(Fault::on_any(Op::WRITES).key("a/one.blend/job.json"));
    let deps = deps(&store);
    let event = fixture("several_records.json");
    let report = process_event(&deps, &event).await;
    let kinds: Vec<&str> = report
        .records
        .iter()
        .map(|o| match o {
            RecordOutcome::Failed { .. } => "failed",
            RecordOutcome::Ignored { .. } => "ignored",
            RecordOutcome::Rejected { .. } => "rejected",
            RecordOutcome::Submitted { .. } => "submitted",
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["failed", "ignored", "ignored", "rejected", "submitted"]
    );
    assert_eq!(report.failed(), 1);

    // The Lambda's view: the invocation fails so the event is retried...
    store.clear();
    let err = handle_event(&deps, fixture("several_records.json"))
        .await
        .map(|_| ())
        .err();
    assert!(err.is_none(), "the retry succeeds: {err:?}");
    // ...and the retry resubmits nothing: the jobs of the first record exist (its marker says
    // submitted), and the missing manifest is written from the marker.
    assert_eq!(deps.scheduler.inner().jobs().len(), 4);
    assert!(store.manifest("a/one.blend").is_some());
}

#[tokio::test]
async fn an_s3_error_fails_the_invocation() {
    let store = store();
    store.upload("a/one.blend", BLEND, E1, &[("frame", "2")]);
    store.upload("a/three.blend", BLEND, E1, &[("frame", "2")]);
    store.inject(Fault::on_any(Op::WRITES).key("a/three.blend/job.json"));
    let deps = deps(&store);
    let err = handle_event(&deps, fixture("several_records.json"))
        .await
        .unwrap_err();
    match &err {
        TriggerError::Records { failed, total, .. } => {
            assert_eq!((*failed, *total), (1, 5));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("a/three.blend"), "{err}");
}

#[tokio::test]
async fn a_duplicate_delivery_submits_nothing() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("frame", "10")]);
    let deps = deps(&store);
    assert_eq!(run(&deps, "object_created_put.json").await.submitted(), 1);
    for _ in 0..3 {
        let report = run(&deps, "object_created_put.json").await;
        assert!(
            matches!(report.records[0], RecordOutcome::Duplicate { .. }),
            "{report:?}"
        );
    }
    assert_eq!(deps.scheduler.inner().jobs().len(), 2);
}

/// Deliveries of one event that race (S3 delivers at least once; Lambda may run the copies at
/// once) submit it once: the marker's `If-None-Match: *` create is atomic, on S3 as in memory
/// (moto's is not, so the moto tests deliver duplicates one after the other). The losers meet
/// the winner's marker still pending and fail, to be retried; the retry finds it submitted.
#[tokio::test]
async fn racing_deliveries_submit_once() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("frame", "10")]);
    let deps = deps(&store);
    // All four deliveries reach the marker's create together, and the winner's SubmitJob takes
    // a moment, so the others read its marker before it says `submitted`.
    store.inject(
        Fault::on(Op::CreateIfAbsent)
            .prefix("shots/scene.blend/requests/")
            .times(4)
            .barrier(4),
    );
    deps.scheduler
        .inject(Fault::on(Op::Submit).delay(Duration::from_millis(20)));
    let deliveries = (0..4).map(|_| handle_event(&deps, fixture("object_created_put.json")));
    let reports = futures::future::join_all(deliveries).await;

    let submissions: usize = reports
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.submitted())
        .sum();
    assert_eq!(submissions, 1, "{reports:?}");
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(failed.len(), 3, "{reports:?}");
    for failed in &failed {
        assert!(failed.contains("is pending"), "{failed}");
    }
    assert_eq!(deps.scheduler.inner().jobs().len(), 2);
    assert_eq!(store.markers("shots/scene.blend").len(), 1);

    store.clear();
    deps.scheduler.clear();
    let retried = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(retried.records[..], [RecordOutcome::Duplicate { .. }]),
        "{retried:?}"
    );
    assert_eq!(deps.scheduler.inner().jobs().len(), 2);
}

#[tokio::test]
async fn new_content_or_new_frame_tags_submit_a_new_job() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("frame", "10")]);
    let deps = deps(&store);
    assert_eq!(run(&deps, "object_created_put.json").await.submitted(), 1);
    // New tags on the same content.
    store.set_tags("shots/scene.blend", &[("frame", "20")]);
    assert_eq!(run(&deps, "object_tagging_put.json").await.submitted(), 1);
    // Back to the first request: already submitted.
    store.set_tags("shots/scene.blend", &[("frame", "10")]);
    assert_eq!(run(&deps, "object_tagging_put.json").await.submitted(), 0);
    // Same tags on a new version of the object.
    let event = fixture("object_created_versioned.json");
    assert_eq!(handle_event(&deps, event).await.unwrap().submitted(), 1);
    assert_eq!(deps.scheduler.inner().jobs().len(), 6);
    assert_eq!(store.markers("shots/scene.blend").len(), 3);
}

#[tokio::test]
async fn an_event_for_replaced_content_is_skipped() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E2, &[("frame", "10")]);
    let deps = deps(&store);
    let report = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(&report.records[0], RecordOutcome::Stale { event_etag, .. } if event_etag == E1),
        "{report:?}"
    );
    assert!(deps.scheduler.inner().jobs().is_empty());
}

#[tokio::test]
async fn an_object_deleted_since_the_event_is_skipped() {
    let store = store();
    let deps = deps(&store);
    let report = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(report.records[0], RecordOutcome::Gone { .. }),
        "{report:?}"
    );
    assert!(deps.scheduler.inner().jobs().is_empty());
    assert!(store.inner().keys().is_empty());
}

#[tokio::test]
async fn invalid_tags_write_a_rejected_manifest_and_submit_nothing() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("frame", "10"), ("frames", "1-5")], "both `frame=10`"),
        (&[("frames", "5-1")], "tag `frames=5-1` is invalid"),
        (
            &[("frame", "10"), ("chunk", "0")],
            "tag `chunk=0` is invalid",
        ),
        (&[("frame", "abc")], "tag `frame=abc` is invalid"),
        (&[("frame", "10001")], "10000"),
        (
            &[("frame", "5"), ("format", "GIF")],
            "tag `format=GIF` is invalid",
        ),
    ];
    for (tags, needle) in cases {
        let store = store();
        store.upload("shots/scene.blend", BLEND, E1, tags);
        let deps = deps(&store);
        let report = run(&deps, "object_created_put.json").await;
        assert!(
            matches!(&report.records[0], RecordOutcome::Rejected { message, .. } if message.contains(needle)),
            "{tags:?}: {report:?}"
        );
        assert!(deps.scheduler.inner().jobs().is_empty(), "{tags:?}");
        let manifest = store.manifest("shots/scene.blend").unwrap();
        assert_eq!(manifest.status, ManifestStatus::Rejected);
        let message = manifest.message.unwrap();
        assert!(message.contains(needle), "{message}");
        assert!(message.contains("put-object-tagging"), "{message}");
        assert!(store.markers("shots/scene.blend").is_empty());
    }
}

/// 17 characters of tag expand to a 9,261-character list: it travels by reference so every job
/// fits ECS's 8,192-character limit on container overrides.
#[tokio::test]
async fn a_short_tag_with_a_long_frame_list_fits_the_container_overrides() {
    let store = store();
    store.upload(
        "shots/scene.blend",
        BLEND,
        E1,
        &[("frames", "1-3000:3 2-3000:3"), ("chunk", "1")],
    );
    let deps = deps(&store);
    assert_eq!(run(&deps, "object_created_put.json").await.submitted(), 1);
    let jobs = deps.scheduler.inner().jobs();
    assert_eq!(jobs.len(), 2);
    let canonical = store.manifest("shots/scene.blend").unwrap().frames.unwrap();
    assert!(canonical.len() > 9_000, "{}", canonical.len());
    let max = deps.scheduler.limits().env_max;
    assert_eq!(max, 8_192, "ECS's limit, as the scheduler states it");
    for (_, job) in &jobs {
        assert!(
            job.env_len() <= max,
            "{:?} job: {} characters",
            job.kind,
            job.env_len()
        );
        let (_, value) = job
            .env
            .iter()
            .find(|(name, _)| name == farm_core::env::FRAMES)
            .unwrap();
        let key = value.strip_prefix('@').expect("a reference");
        let body = store.inner().body(key).unwrap();
        assert_eq!(String::from_utf8(body.to_vec()).unwrap(), canonical);
    }
}

#[tokio::test]
async fn a_rejected_retag_leaves_the_running_jobs_manifest_and_writes_beside_it() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("frame", "4")]);
    let deps = deps(&store);
    assert_eq!(run(&deps, "object_created_put.json").await.submitted(), 1);
    let submitted = store.manifest("shots/scene.blend").unwrap();

    store.set_tags("shots/scene.blend", &[("frame", "abc")]);
    let report = run(&deps, "object_tagging_put.json").await;
    assert!(
        matches!(&report.records[0], RecordOutcome::Rejected { .. }),
        "{report:?}"
    );
    assert_eq!(
        store.manifest("shots/scene.blend").unwrap(),
        submitted,
        "job.json still describes the job that runs"
    );
    let rejection: JobManifest = store.json("shots/scene.blend/rejected.json").unwrap();
    assert_eq!(rejection.status, ManifestStatus::Rejected);
    assert!(rejection.message.unwrap().contains("frame=abc"));
    assert_eq!(deps.scheduler.inner().jobs().len(), 2);
    assert!(deps.scheduler.inner().cancelled().is_empty());
}

#[tokio::test]
async fn the_frame_limit_and_the_array_limit_are_enforced() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("frame", "600")]);
    let mut deps = deps(&store);
    deps.max_frames = 500;
    let report = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(&report.records[0], RecordOutcome::Rejected { message, .. } if message.contains("500")),
        "{report:?}"
    );
    // More frames than array children allowed: a bigger chunk is needed.
    deps.max_frames = 100_000;
    store.set_tags("shots/scene.blend", &[("frame", "20000")]);
    let report = run(&deps, "object_tagging_put.json").await;
    assert!(
        matches!(&report.records[0], RecordOutcome::Rejected { message, .. } if message.contains("use chunk=2")),
        "{report:?}"
    );
    store.set_tags("shots/scene.blend", &[("frame", "20000"), ("chunk", "2")]);
    assert_eq!(run(&deps, "object_tagging_put.json").await.submitted(), 1);
    assert_eq!(deps.scheduler.inner().jobs()[0].1.array_size, Some(10_000));
}

#[tokio::test]
async fn a_body_that_is_not_a_blend_is_rejected() {
    let store = store();
    store.upload(
        "shots/scene.blend",
        b"PK\x03\x04 a zip file",
        E1,
        &[("frame", "10")],
    );
    let deps = deps(&store);
    let report = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(&report.records[0], RecordOutcome::Rejected { message, .. } if message.contains("not a .blend")),
        "{report:?}"
    );
    assert!(deps.scheduler.inner().jobs().is_empty());
    let manifest = store.manifest("shots/scene.blend").unwrap();
    assert_eq!(manifest.status, ManifestStatus::Rejected);
    assert_eq!(manifest.etag.as_deref(), Some(format!("\"{E1}\"").as_str()));
    // An empty upload too.
    store.upload("shots/scene.blend", b"", E1, &[("frame", "10")]);
    let report = run(&deps, "object_created_put.json").await;
    assert!(
        matches!(&report.records[0], RecordOutcome::Rejected { message, .. } if message.contains("empty")),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_failed_render_submission_removes_the_marker_so_the_retry_submits() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("frame", "10")]);
    let deps = deps(&store);
    deps.scheduler
        .inject(Fault::on(Op::Submit).job_kind(JobKind::Render));
    let err = handle_event(&deps, fixture("object_created_put.json"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(store.markers("shots/scene.blend").is_empty());
    assert!(store.manifest("shots/scene.blend").is_none());

    deps.scheduler.clear();
    assert_eq!(run(&deps, "object_created_put.json").await.submitted(), 1);
}

#[tokio::test]
async fn a_failed_zip_submission_cancels_the_render_job_and_removes_the_marker() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("frame", "10")]);
    let deps = deps(&store);
    deps.scheduler
        .inject(Fault::on(Op::Submit).job_kind(JobKind::Zip));
    assert!(handle_event(&deps, fixture("object_created_put.json"))
        .await
        .is_err());
    assert_eq!(deps.scheduler.inner().cancelled(), ["job-1"]);
    assert!(store.markers("shots/scene.blend").is_empty());

    deps.scheduler.clear();
    let report = run(&deps, "object_created_put.json").await;
    assert_eq!(report.submitted(), 1);
    let jobs = deps.scheduler.inner().jobs();
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[2].1.depends_on, vec![jobs[1].0.clone()]);
}

/// A request's job name: readable, with the request's fingerprint (16 hex digits) before the kind.
fn assert_job_name(name: &str, start: &str, end: &str) {
    let middle = name
        .strip_prefix(start)
        .and_then(|rest| rest.strip_suffix(end))
        .unwrap_or_else(|| panic!("{name} is not {start}<fingerprint>{end}"));
    assert!(
        middle.len() == 16 && middle.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
}

/// The trigger reads an upload once: its first bytes serve the file check, the Blender that
/// saved it and the .blend reader (they were read a second time for the check).
#[tokio::test]
async fn each_upload_is_read_once() {
    let store = store();
    store.upload("shots/scene.blend", BLEND, E1, &[("frame", "3")]);
    let deps = deps(&store);
    assert_eq!(run(&deps, "object_created_put.json").await.submitted(), 1);
    let reads: Vec<Op> = store
        .calls()
        .into_iter()
        .filter(|call| call.key == "shots/scene.blend")
        .map(|call| call.op)
        // The object's HEAD and tags are metadata, not the upload's bytes.
        .filter(|op| !matches!(op, Op::Head | Op::GetTags))
        .collect();
    assert_eq!(
        reads,
        [Op::GetRange],
        "one ranged read of the whole (small) upload"
    );
}

#[tokio::test]
async fn frames_scene_reads_the_upload_once_in_parts_never_whole() {
    let dir = tempfile::tempdir().unwrap();
    let options = farm_testkit::SceneOptions {
        start: 5,
        end: 15,
        step: 5,
        ..farm_testkit::SceneOptions::default()
    };
    let scene = farm_testkit::make_scene(dir.path(), "scene", &options).unwrap();
    let body = std::fs::read(scene).unwrap();
    let mut ranged_reads = Vec::new();
    for tag in [("frames", "scene"), ("frame", "3")] {
        let store = store();
        store.upload("shots/scene.blend", &body, E1, &[tag]);
        let deps = deps(&store);
        let report = run(&deps, "object_created_put.json").await;
        assert!(
            matches!(&report.records[0], RecordOutcome::Submitted { .. }),
            "{tag:?}: {report:?}"
        );
        let on_blend: Vec<Op> = store
            .calls()
            .into_iter()
            .filter(|call| call.key == "shots/scene.blend")
            .map(|call| call.op)
            .collect();
        assert!(
            on_blend
                .iter()
                .all(|op| matches!(op, Op::Head | Op::GetTags | Op::GetRange)),
            "{tag:?}: {on_blend:?}"
        );
        ranged_reads.push(on_blend.iter().filter(|op| **op == Op::GetRange).count());
    }
    // The scene's frames and the dependency check come from one read.
    assert_eq!(ranged_reads[0], ranged_reads[1], "{ranged_reads:?}");
}

#[tokio::test]
async fn a_scene_without_a_camera_is_rejected_before_any_job() {
    let dir = tempfile::tempdir().unwrap();
    let options = farm_testkit::SceneOptions {
        no_camera: true,
        ..farm_testkit::SceneOptions::default()
    };
    let scene = farm_testkit::make_scene(dir.path(), "nocam", &options).unwrap();
    let body = std::fs::read(scene).unwrap();
    for tag in [("frames", "scene"), ("frame", "3")] {
        let store = store();
        store.upload("shots/scene.blend", &body, E1, &[tag]);
        let deps = deps(&store);
        let report = run(&deps, "object_created_put.json").await;
        assert!(
            matches!(&report.records[0], RecordOutcome::Rejected { message, .. }
                if message.contains("scene `Scene` has no camera")),
            "{tag:?}: {report:?}"
        );
        assert!(deps.scheduler.inner().jobs().is_empty(), "{tag:?}");
        let manifest = store.manifest("shots/scene.blend").unwrap();
        assert_eq!(manifest.status, ManifestStatus::Rejected);
        assert!(manifest
            .message
            .unwrap()
            .contains("Scene Properties > Camera"));
    }
}

#[tokio::test]
async fn a_decompression_bomb_or_a_read_past_the_budget_is_a_recorded_rejection() {
    // 32 GiB of empty block headers behind a Blender file header, about 1 MiB compressed.
    let bomb = farm_testkit::zstd_blend_bomb(b"BLENDER-v304", (32 << 30) / 24 * 24);
    let store = store();
    store.upload("shots/scene.blend", &bomb, E1, &[("frame", "10")]);
    let deps = deps(&store);
    let report = run(&deps, "object_created_put.json").await;
    let [RecordOutcome::Rejected { message, .. }] = report.records.as_slice() else {
        panic!("expected a rejection: {report:?}");
    };
    assert!(message.contains("decompression bomb"), "{message}");
    assert!(
        message.contains("128 times its compressed size"),
        "{message}"
    );
    assert!(message.contains("16 GiB"), "{message}");
    assert!(deps.scheduler.inner().jobs().is_empty());
    let manifest = store.manifest("shots/scene.blend").unwrap();
    assert_eq!(manifest.status, ManifestStatus::Rejected);
    assert_eq!(manifest.message.as_deref(), Some(message.as_str()));

    // Reads slower than the budget: the rejection names it, recorded, no job.
    let slow = self::store();
    slow.upload("shots/scene.blend", BLEND, E1, &[("frame", "10")]);
    slow.inject(Fault::on(Op::GetRange).delay(Duration::from_millis(300)));
    let mut deps = self::deps(&slow);
    deps.read_budget = Duration::from_millis(50);
    let report = run(&deps, "object_created_put.json").await;
    let [RecordOutcome::Rejected { message, .. }] = report.records.as_slice() else {
        panic!("expected a rejection: {report:?}");
    };
    assert!(message.contains("budget of 0.05 s per upload"), "{message}");
    assert!(deps.scheduler.inner().jobs().is_empty());
    let manifest = slow.manifest("shots/scene.blend").unwrap();
    assert_eq!(manifest.status, ManifestStatus::Rejected);
}
