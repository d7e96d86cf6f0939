//! The request marker and takeover protocol of `submit` (see the module docs of
//! `farm_jobs::submit`), over the test kit's in-memory store behind its failure-injecting
//! wrapper and its in-memory scheduler.

use bytes::Bytes;
use farm_core::manifest::JobManifest;
use farm_core::scheduler::{JobKind, Scheduler};
use farm_core::RenderRequest;
use farm_jobs::{
    submit_request, MarkerState, RequestMarker, SourceObject, Submission, SubmitError,
};
use farm_testkit::{Fault, Faulty, MemoryScheduler, MemoryStorage, Op, StoredObject};

const BUCKET: &str = "render-farm-bucket";
const E1: &str = "0123456789abcdef0123456789abcdef";

type Store = Faulty<MemoryStorage>;

fn store() -> Store {
    Faulty::new(MemoryStorage::new())
}

/// Writing and reading the bucket as another party would.
trait Bucket {
    fn upload(&self, key: &str, body: &[u8], etag: &str);
    fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T>;
}

impl Bucket for Store {
    fn upload(&self, key: &str, body: &[u8], etag: &str) {
        self.inner().insert_object(
            key,
            StoredObject::new(Bytes::copy_from_slice(body)).etag(etag),
        );
    }

    fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.inner()
            .body(key)
            .map(|body| serde_json::from_slice(&body).unwrap())
    }
}

fn request(frames: &str) -> RenderRequest {
    RenderRequest::from_tags([("frames", frames)], 10_000)
        .unwrap()
        .unwrap()
}

fn source() -> SourceObject {
    SourceObject {
        bucket: BUCKET.into(),
        key: "k.blend".into(),
        etag: format!("\"{E1}\""),
        version_id: None,
        saved_by: None,
        scene: None,
        movie: None,
        views: farm_core::views::FrameViews::single(),
    }
}

/// Submits `request` and returns the key of the marker it holds.
async fn submitted_marker(
    store: &Store,
    scheduler: &MemoryScheduler,
    source: &SourceObject,
    request: &RenderRequest,
) -> String {
    match submit_request(store, scheduler, source, request).await {
        Ok(Submission::Submitted { marker, .. }) => marker,
        other => panic!("first submission: {other:?}"),
    }
}

/// Rewrites `marker` as a submitter that died would have left it: `pending`, created
/// `age_seconds` ago, with no manifest.
fn mark_pending(store: &Store, marker: &str, age_seconds: i64) {
    let mut body: RequestMarker = store.json(marker).unwrap();
    body.state = MarkerState::Pending;
    body.manifest = None;
    body.created = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(age_seconds);
    store.upload(marker, &serde_json::to_vec(&body).unwrap(), "m");
}

#[tokio::test]
async fn a_stale_pending_marker_is_taken_over_and_a_fresh_one_fails_the_invocation() {
    let store = store();
    let scheduler = MemoryScheduler::new();
    let (source, request) = (source(), request("1-4"));

    // Submit once to learn the marker key, then pretend the submitter died before SubmitJob.
    let marker = submitted_marker(&store, &scheduler, &source, &request).await;
    mark_pending(&store, &marker, 30);
    // A young pending marker may belong to a live submitter, or to one that died: the event
    // must be retried (not called a duplicate, which would lose the request).
    let second = submit_request(&store, &scheduler, &source, &request).await;
    assert!(
        matches!(second, Err(SubmitError::InFlight { .. })),
        "{second:?}"
    );
    assert_eq!(scheduler.jobs().len(), 2);

    // Crash point 1, before SubmitJob: nothing of the request exists at Batch.
    for id in ["job-1", "job-2"] {
        scheduler.cancel(id, "gone").await.unwrap();
    }
    mark_pending(&store, &marker, 600);
    let third = submit_request(&store, &scheduler, &source, &request)
        .await
        .unwrap();
    let Submission::Submitted {
        marker: taken_over, ..
    } = third
    else {
        panic!("{third:?}")
    };
    assert_eq!(taken_over, marker.replace(".json", ".1.json"));
    assert_eq!(scheduler.jobs().len(), 4);
    // And the takeover itself is deduplicated.
    let fourth = submit_request(&store, &scheduler, &source, &request)
        .await
        .unwrap();
    assert!(matches!(fourth, Submission::Duplicate { .. }), "{fourth:?}");
    assert_eq!(scheduler.jobs().len(), 4);
}

#[tokio::test]
async fn a_takeover_adopts_the_jobs_a_submitter_left_when_it_died_after_submit_job() {
    let store = store();
    let scheduler = MemoryScheduler::new();
    let (source, request) = (source(), request("1-4"));
    // Crash point 2: SubmitJob (render and zip) returned, then the process died before the
    // marker was rewritten `submitted` and before `job.json` was written.
    let marker = submitted_marker(&store, &scheduler, &source, &request).await;
    mark_pending(&store, &marker, 600);
    store.inner().remove("k.blend/job.json");

    let again = submit_request(&store, &scheduler, &source, &request)
        .await
        .unwrap();
    let Submission::Submitted {
        render_job_id,
        zip_job_id,
        ..
    } = again
    else {
        panic!("{again:?}")
    };
    assert_eq!(
        scheduler.jobs().len(),
        2,
        "nothing submitted twice: {:?}",
        scheduler.jobs()
    );
    assert_eq!(
        (render_job_id.as_str(), zip_job_id.as_str()),
        ("job-1", "job-2")
    );
    assert!(scheduler.cancelled().is_empty());
    let manifest: JobManifest = store.json("k.blend/job.json").unwrap();
    assert_eq!(manifest.render_job_id.as_deref(), Some("job-1"));
}

#[tokio::test]
async fn a_new_request_for_a_key_terminates_the_previous_job() {
    let store = store();
    let scheduler = MemoryScheduler::new();
    let first = submit_request(&store, &scheduler, &source(), &request("1-4"))
        .await
        .unwrap();
    assert!(matches!(first, Submission::Submitted { .. }));
    let mut reuploaded = source();
    reuploaded.etag = "\"e-new\"".into();
    let second = submit_request(&store, &scheduler, &reuploaded, &request("1-4"))
        .await
        .unwrap();
    assert!(matches!(second, Submission::Submitted { .. }), "{second:?}");
    let mut cancelled = scheduler.cancelled();
    cancelled.sort();
    assert_eq!(cancelled, ["job-1", "job-2"]);
    // A duplicate of the new request cancels nothing more.
    submit_request(&store, &scheduler, &reuploaded, &request("1-4"))
        .await
        .unwrap();
    assert_eq!(scheduler.cancelled().len(), 2);
}

/// The request's markers under `k.blend`.
fn markers(store: &Store) -> Vec<String> {
    store
        .inner()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("k.blend/requests/"))
        .collect()
}

#[tokio::test]
async fn a_failed_render_submission_removes_the_marker_so_the_retry_submits() {
    let store = store();
    let scheduler = Faulty::new(MemoryScheduler::new());
    let (source, request) = (source(), request("1-4"));
    scheduler.inject(Fault::on(Op::Submit).job_kind(JobKind::Render));
    let err = submit_request(&store, &scheduler, &source, &request)
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::Scheduler(_)), "{err}");
    assert!(markers(&store).is_empty());
    assert!(store.inner().body("k.blend/job.json").is_none());

    scheduler.clear();
    let again = submit_request(&store, &scheduler, &source, &request)
        .await
        .unwrap();
    assert!(matches!(again, Submission::Submitted { .. }), "{again:?}");
}

#[tokio::test]
async fn a_failed_zip_submission_cancels_the_render_job_and_removes_the_marker() {
    let store = store();
    let scheduler = Faulty::new(MemoryScheduler::new());
    let (source, request) = (source(), request("1-4"));
    scheduler.inject(Fault::on(Op::Submit).job_kind(JobKind::Zip));
    assert!(submit_request(&store, &scheduler, &source, &request)
        .await
        .is_err());
    assert_eq!(scheduler.inner().cancelled(), ["job-1"]);
    assert!(markers(&store).is_empty());

    scheduler.clear();
    submit_request(&store, &scheduler, &source, &request)
        .await
        .unwrap();
    let jobs = scheduler.inner().jobs();
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[2].1.depends_on, vec![jobs[1].0.clone()]);
}

/// A store that fails the marker's creation: nothing is submitted, and the error is the
/// store's (the event is retried).
#[tokio::test]
async fn a_marker_that_cannot_be_created_submits_nothing() {
    let store = store();
    let scheduler = MemoryScheduler::new();
    store.inject(Fault::on(Op::CreateIfAbsent));
    let err = submit_request(&store, &scheduler, &source(), &request("1-4"))
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::Storage(_)), "{err}");
    assert!(scheduler.jobs().is_empty());
    assert!(markers(&store).is_empty());
}

/// A movie scene's request gets a third job, after the zip job on the render job's series,
/// which alone is told the movie; one that cannot be submitted cancels the other two.
#[tokio::test]
async fn a_movie_scene_gets_a_movie_job_after_the_zip_job() {
    let store = store();
    let scheduler = Faulty::new(MemoryScheduler::new());
    let movie_scene = SourceObject {
        movie: Some("mkv".into()),
        ..source()
    };
    let request = request("1-4");
    scheduler.inject(Fault::on(Op::Submit).job_kind(JobKind::Movie));
    assert!(submit_request(&store, &scheduler, &movie_scene, &request)
        .await
        .is_err());
    assert_eq!(scheduler.inner().cancelled(), ["job-2", "job-1"]);
    assert!(markers(&store).is_empty());

    scheduler.clear();
    let Submission::Submitted { manifest, .. } =
        submit_request(&store, &scheduler, &movie_scene, &request)
            .await
            .unwrap()
    else {
        panic!("submitted")
    };
    let jobs = scheduler.inner().jobs();
    let [.., (render_id, render), (zip_id, zip), (movie_id, movie)] = jobs.as_slice() else {
        panic!("{jobs:?}")
    };
    assert_eq!(
        (render.kind, zip.kind, movie.kind),
        (JobKind::Render, JobKind::Zip, JobKind::Movie)
    );
    assert_eq!(zip.depends_on, std::slice::from_ref(render_id));
    assert_eq!(movie.depends_on, std::slice::from_ref(zip_id));
    assert_eq!(movie.blender, render.blender);
    assert!(movie.name.ends_with("-movie"), "{}", movie.name);
    let told = |job: &farm_core::scheduler::JobSpec| {
        job.env
            .iter()
            .find(|(name, _)| name == farm_core::env::MOVIE)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(
        (told(render), told(zip), told(movie)),
        (None, None, Some("mkv".to_owned()))
    );
    assert_eq!(manifest.movie.as_deref(), Some("mkv"));
    assert_eq!(manifest.movie_job_id.as_ref(), Some(movie_id));
    let written: JobManifest = store.json("k.blend/job.json").unwrap();
    assert_eq!(written.movie_job_id.as_ref(), Some(movie_id));

    // A scene without a movie: two jobs, as before.
    let stills = submit_request(&store, &scheduler, &source(), &self::request("1-5")).await;
    let Ok(Submission::Submitted { manifest, .. }) = stills else {
        panic!("{stills:?}")
    };
    assert_eq!((manifest.movie, manifest.movie_job_id), (None, None));
    assert!(scheduler
        .inner()
        .jobs()
        .iter()
        .skip(jobs.len())
        .all(|(_, job)| job.kind != JobKind::Movie));
}

/// `estimate=2`: one scout job (one task on the render job definition, the samples and the
/// farm's MaxVcpus in its environment), `estimate.json` written `submitted`, no render or zip
/// job, no `job.json`, and the key's running job left alone. The same tags without
/// `estimate=` are another request: the job itself.
#[tokio::test]
async fn an_estimate_request_submits_one_scout_job_and_nothing_else() {
    use farm_core::estimate::{EstimateFile, EstimateStatus};
    let store = store();
    let scheduler = MemoryScheduler::new();
    let source = source();
    let running = submit_request(&store, &scheduler, &source, &request("1-30"))
        .await
        .unwrap();
    assert!(
        matches!(running, Submission::Submitted { .. }),
        "{running:?}"
    );
    let manifest_before: JobManifest = store.json("k.blend/job.json").unwrap();

    let scout = RenderRequest::from_tags([("frames", "1-30"), ("estimate", "2")], 10_000)
        .unwrap()
        .unwrap();
    let extras = farm_jobs::JobExtras {
        max_vcpus: Some(256),
        ..Default::default()
    };
    let submitted = farm_jobs::submit_request_with(&store, &scheduler, &source, &scout, &extras)
        .await
        .unwrap();
    let Submission::Scouted(scouted) = submitted else {
        panic!("{submitted:?}")
    };
    assert_eq!(scouted.samples, [1, 30]);
    let jobs = scheduler.jobs();
    assert_eq!(jobs.len(), 3, "two of the running job, one scout: {jobs:?}");
    let (id, job) = &jobs[2];
    assert_eq!(id, &scouted.job_id);
    assert_eq!(job.kind, JobKind::Render);
    assert_eq!(job.array_size, None, "one task");
    assert!(job.depends_on.is_empty());
    assert!(job.name.ends_with("-scout"), "{}", job.name);
    let env: std::collections::BTreeMap<_, _> = job.env.iter().cloned().collect();
    assert_eq!(env[farm_core::env::ESTIMATE], "2");
    assert_eq!(env[farm_core::env::MAX_VCPUS], "256");
    assert_eq!(env[farm_core::env::FRAMES], "1-30");
    assert!(scheduler.cancelled().is_empty(), "a scout stops no job");
    let manifest_after: JobManifest = store.json("k.blend/job.json").unwrap();
    assert_eq!(manifest_after, manifest_before, "job.json is the job's");
    let estimate: EstimateFile = store.json("k.blend/estimate.json").unwrap();
    assert_eq!(estimate.status, EstimateStatus::Submitted);
    assert_eq!(estimate.job_id.as_deref(), Some(id.as_str()));
    assert_eq!(estimate.etag.as_deref(), Some(source.etag.as_str()));
    assert_eq!(
        (estimate.samples.as_slice(), estimate.max_vcpus),
        (&[1, 30][..], 256)
    );
    assert!(estimate.estimate.is_none());

    // A duplicate delivery submits nothing.
    let again = farm_jobs::submit_request_with(&store, &scheduler, &source, &scout, &extras)
        .await
        .unwrap();
    assert!(matches!(again, Submission::Duplicate { .. }), "{again:?}");
    assert_eq!(scheduler.jobs().len(), 3);
}

/// A scout whose submission fails leaves no marker, so the retry submits it.
#[tokio::test]
async fn a_failed_scout_submission_removes_the_marker() {
    let store = store();
    let scheduler = Faulty::new(MemoryScheduler::new());
    let scout = RenderRequest::from_tags([("frames", "1-3"), ("estimate", "1")], 10_000)
        .unwrap()
        .unwrap();
    scheduler.inject(Fault::on(Op::Submit));
    assert!(submit_request(&store, &scheduler, &source(), &scout)
        .await
        .is_err());
    assert!(markers(&store).is_empty());
    assert!(store
        .json::<serde_json::Value>("k.blend/estimate.json")
        .is_none());
    scheduler.clear();
    let again = submit_request(&store, &scheduler, &source(), &scout)
        .await
        .unwrap();
    assert!(matches!(again, Submission::Scouted(_)), "{again:?}");
    assert_eq!(scheduler.inner().jobs().len(), 1);
}
