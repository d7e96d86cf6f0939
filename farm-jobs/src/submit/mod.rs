//! Submitting a render request: at most one render job and one zip job per object version and
//! request, whoever asks (the trigger Lambda on an S3 event, `farm retry`). This is the only
//! code that submits jobs.
//!
//! # Idempotency
//! S3 delivers events at least once and Lambda retries failed invocations, so one request may be
//! handled several times, even at the same time. Before submitting anything,
//! [`submit_request`] creates a marker object `<key>/requests/<fingerprint>.json` with
//! `If-None-Match: *` ([`Storage::create_if_absent`]); the fingerprint
//! ([`request_fingerprint`]) covers the object version (version id, else ETag), the canonical
//! frame list, the chunk size, the format, the Blender series asked for and the engine (when not
//! Cycles). Whoever creates the marker submits; everyone else finds it and submits nothing. A
//! re-upload with new content (new ETag or version), a new frame tag, another `blender=` or
//! `engine=` is a new fingerprint, hence a new job.
//!
//! The marker is written `pending` and rewritten `submitted` (with the manifest) once both jobs
//! are in. If submitting fails, the marker is deleted again before the error is returned, so the
//! retry can submit; a render job whose zip job could not be submitted is cancelled first.
//!
//! A marker still `pending` and younger than [`PENDING_MARKER_TAKEOVER`] belongs to a delivery
//! that may still be submitting, or that died doing it: the invocation fails with
//! [`SubmitError::InFlight`] (retryable), so the request is looked at again later instead of
//! being called a duplicate of a submission that may never finish. A later delivery takes over
//! a pending marker older than that by creating the next generation of marker
//! (`<fingerprint>.1.json`, ...) with `If-None-Match: *` again, so two deliveries never both
//! take over. The takeover first asks the scheduler for jobs already submitted under the
//! request's job names (which carry the fingerprint, [`request_job_name`]): a submitter that
//! died after SubmitJob and before rewriting its marker left them, and they are adopted, not
//! submitted twice.
//!
//! # One job per key
//! A new request for a key (a re-upload, a new frame tag) terminates the jobs `job.json` names
//! before submitting its own: two jobs writing the same `frames/` would mix versions. A request
//! rejected while a submitted job stands never overwrites its `job.json`: the rejection is
//! written beside it, to `<key>/rejected.json`.

use farm_core::manifest::{JobManifest, ManifestStatus, SceneFacts, MANIFEST_SCHEMA};
use farm_core::scheduler::{Scheduler, SchedulerError};
use farm_core::series::{
    check_opens, newer_file_warning, BlenderPick, BlenderSeries, ChooseError, SeriesChoice,
};
use farm_core::storage::{get_json, put_json, StorageError};
use farm_core::{JobKeys, RenderRequest, Storage};
use jiff::Timestamp;

use crate::JobTicket;

mod jobs;
mod marker;
mod scout;

use jobs::{find_request_jobs, stop_previous_job, Adopted, Jobs};
pub use jobs::{request_job_name, scout_job_name, TAG_REQUEST};
use marker::{claim_marker, repair_manifest, Claim};
pub use marker::{MarkerState, RequestMarker, PENDING_MARKER_TAKEOVER};
pub use scout::Scouted;

/// Why a submission failed. Every variant but [`SubmitError::TooLarge`], [`SubmitError::Unfit`]
/// and [`SubmitError::Blender`] is worth retrying later as it stands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The store failed (after the SDK's retries).
    #[error("s3: {0}")]
    Storage(#[from] StorageError),
    /// The scheduler failed (after the SDK's retries).
    #[error("batch: {0}")]
    Scheduler(#[from] SchedulerError),
    /// The request marker kept disappearing under us: other deliveries are racing on it.
    #[error("request marker `{key}` was created and removed by other deliveries {attempts} times in a row; the event will be retried")]
    MarkerContention { key: String, attempts: u32 },
    /// The job's environment would not fit the scheduler's limit ([`SchedulerLimits::env_max`](farm_core::scheduler::SchedulerLimits::env_max),
    /// ECS's container overrides on AWS) even with the frame list passed by reference (an
    /// extremely long key): no retry can fix it.
    #[error("the job's settings take {len} characters, more than the {max} AWS accepts for a job; use a shorter key (folder and file name)")]
    TooLarge { len: usize, max: usize },
    /// The scheduler would refuse the job otherwise ([`SchedulerLimits::check`](farm_core::scheduler::SchedulerLimits::check)): no retry can
    /// fix it.
    #[error("the scheduler would refuse the job: {0}")]
    Unfit(farm_core::scheduler::OverLimit),
    /// No series the scheduler runs fits the request ([`SeriesChoice::choose`]: a series it does
    /// not run, one that cannot open the file, or under `auto` a file newer than every series):
    /// no retry can fix it.
    #[error(transparent)]
    Blender(#[from] ChooseError),
    /// Another delivery claimed the request moments ago and has not finished submitting.
    #[error("request marker `{key}` is pending for {age_seconds} s: another delivery is submitting this request (or died doing it); the event will be retried and takes it over after {} s", PENDING_MARKER_TAKEOVER.as_secs())]
    InFlight { key: String, age_seconds: u64 },
}

/// The object a request renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    pub bucket: String,
    pub key: String,
    /// The object's ETag as S3 returns it (quotes included); the renderer refuses any other
    /// content.
    pub etag: String,
    /// The object's version id, in a versioned bucket.
    pub version_id: Option<String>,
    /// The Blender that saved this version, from its header (`farm_blend::read_version`),
    /// when it was read: a job on an older series gets a warning in `job.json`.
    pub saved_by: Option<BlenderSeries>,
    /// What the `.blend` reader found, when the file was read (`frames=scene`): recorded in
    /// `job.json`.
    pub scene: Option<Box<SceneFacts>>,
    /// The extension of the movie the active scene asks for (its output is FFmpeg), read from
    /// the file: a movie job makes it from the frames after the zip job (ADR 0012).
    pub movie: Option<String>,
    /// The files each frame of the active scene makes (its views, [`farm_core::views`]).
    pub views: farm_core::views::FrameViews,
}

impl SourceObject {
    /// What identifies this content for the marker: the version id if there is one, else the
    /// ETag (without quotes, so that an event's bare ETag and S3's quoted one agree).
    pub fn version(&self) -> &str {
        self.version_id
            .as_deref()
            .unwrap_or_else(|| farm_core::etag::unquote_etag(&self.etag))
    }

    /// The ticket of `request`'s jobs for this object, bound to `dependencies`' list.
    fn ticket(
        &self,
        request: &RenderRequest,
        dependencies: Option<&farm_core::deps::DependencyRecord>,
    ) -> JobTicket {
        JobTicket {
            movie: self.movie.clone(),
            views: self.views.clone(),
            ..JobTicket::for_request(
                &self.bucket,
                &self.key,
                Some(&self.etag),
                request,
                dependencies.and_then(|d| d.list.as_deref()),
            )
        }
    }
}

/// What [`submit_request`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Both jobs were submitted and `<key>/job.json` written.
    Submitted {
        render_job_id: String,
        zip_job_id: String,
        /// The marker key this submission holds.
        marker: String,
        /// The `job.json` written.
        manifest: Box<JobManifest>,
    },
    /// The request asked for an estimate (`estimate=N`): its scout job was submitted and
    /// `<key>/estimate.json` written; no render or zip job, no `job.json`.
    Scouted(Box<Scouted>),
    /// The same request was already handled (or is being handled): nothing was submitted.
    Duplicate {
        marker: String,
        state: MarkerState,
        /// The render job of the earlier submission, if it finished submitting.
        render_job_id: Option<String>,
    },
}

/// Submits `request` for `source` once: claims the request marker, stops the key's previous
/// job, submits the render job and the zip job that depends on it, and writes `<key>/job.json`
/// (status `submitted`, both ids, the Blender series and any warnings).
///
/// `storage` is the bucket `source.bucket` names. The render job runs the series
/// [`SeriesChoice::choose`] picks for the request (`blender=`, or the scheduler's default) and
/// the file; when none fits it fails with [`SubmitError::Blender`] before anything is written. A request already
/// submitted returns [`Submission::Duplicate`] and submits nothing; one still being submitted
/// elsewhere fails with [`SubmitError::InFlight`]. See the module docs for the guarantees.
pub async fn submit_request<S: Storage, B: Scheduler>(
    storage: &S,
    scheduler: &B,
    source: &SourceObject,
    request: &RenderRequest,
) -> Result<Submission, SubmitError> {
    submit_request_with(storage, scheduler, source, request, &JobExtras::default()).await
}

/// What a submission carries besides the request: the dependency record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobExtras {
    /// The jobs render with its list's files (`FARM_DEPENDENCIES`); recorded in `job.json`; its list key also enters the request's fingerprint, so a re-tag
    /// after a dependency changed is a new request.
    pub dependencies: Option<farm_core::deps::DependencyRecord>,
    /// The farm's `MaxVcpus` (`FARM_MAX_VCPUS`), which a scout job's projection is made for
    /// (`None`: the stack's default).
    pub max_vcpus: Option<u32>,
}

/// [`submit_request`] with extras (see [`JobExtras`]).
pub async fn submit_request_with<S: Storage, B: Scheduler>(
    storage: &S,
    scheduler: &B,
    source: &SourceObject,
    request: &RenderRequest,
    extras: &JobExtras,
) -> Result<Submission, SubmitError> {
    let keys = JobKeys::new(source.key.clone());
    let (resolved, why) = resolve_blender(request, source, scheduler.blender().as_ref())?;
    let (fingerprint, pending) =
        RequestMarker::pending(source, request, extras.dependencies.as_ref());
    let (marker, takeover) = match claim_marker(storage, &keys, &fingerprint, &pending).await? {
        Claim::Owned { marker, takeover } => (marker, takeover),
        Claim::InFlight { marker, age } => {
            return Err(SubmitError::InFlight {
                key: marker,
                age_seconds: age.as_secs(),
            })
        }
        Claim::Taken { marker, existing } => {
            return Ok(duplicate(storage, &keys, marker, &existing).await)
        }
    };

    if resolved.estimate.is_some() {
        let ticket = source
            .ticket(&resolved, extras.dependencies.as_ref())
            .with_scout(&resolved, extras.max_vcpus);
        let claim = (marker.as_str(), fingerprint.as_str(), takeover);
        return match scout::submit_scout(storage, scheduler, &ticket, claim, pending).await {
            Ok(scouted) => Ok(Submission::Scouted(Box::new(scouted))),
            Err(err) => {
                release_marker(storage, &source.key, &marker).await;
                Err(err)
            }
        };
    }
    let submitted = async {
        let adopted = if takeover {
            find_request_jobs(scheduler, &keys, &fingerprint).await?
        } else {
            Adopted::default()
        };
        if adopted.render.is_none() {
            stop_previous_job(storage, scheduler, &keys, &fingerprint).await?;
        }
        let ticket = source.ticket(&resolved, extras.dependencies.as_ref());
        let jobs = Jobs {
            render: ticket.clone(),
            whole: ticket,
            fingerprint: Some(&fingerprint),
        };
        jobs.submit(storage, scheduler, adopted).await
    };
    let ids = match submitted.await {
        Ok(ids) => ids,
        Err(err) => {
            release_marker(storage, &source.key, &marker).await;
            return Err(err);
        }
    };

    let (render_job_id, zip_job_id) = (ids.render, ids.zip);
    let mut manifest = submitted_manifest(source, &resolved, &render_job_id, &zip_job_id);
    manifest.movie_job_id = ids.movie;
    manifest.targets = scheduler.record(manifest.blender);
    why.record(&mut manifest);
    manifest.request = Some(fingerprint);
    manifest.dependencies.clone_from(&extras.dependencies);
    let done = RequestMarker {
        state: MarkerState::Submitted,
        manifest: Some(manifest.clone()),
        ..pending
    };
    // The jobs exist now: a failure from here on must not let anyone submit them again.
    if let Err(err) = put_json(storage, &marker, &done).await {
        tracing::error!(
            key = %source.key,
            marker = %marker,
            render_job_id = %render_job_id,
            zip_job_id = %zip_job_id,
            error = %err,
            "jobs submitted but the request marker could not be marked submitted"
        );
    }
    put_json(storage, &keys.manifest(), &manifest).await?;
    Ok(Submission::Submitted {
        render_job_id,
        zip_job_id,
        marker,
        manifest: Box::new(manifest),
    })
}

/// Deletes the marker of a failed submission: the retry would otherwise find it and do nothing.
async fn release_marker<S: Storage>(storage: &S, key: &str, marker: &str) {
    if let Err(delete) = storage.delete(marker).await {
        tracing::error!(
            key = %key,
            marker = %marker,
            error = %delete,
            "could not delete the request marker after a failed submission; the retry takes it over once it is stale"
        );
    }
}

/// A request already submitted (or being submitted) under `marker`: nothing is submitted; a
/// `job.json` the earlier submission left out is written from its marker.
async fn duplicate<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    marker: String,
    existing: &RequestMarker,
) -> Submission {
    tracing::info!(
        key = %keys.source(),
        marker = %marker,
        state = ?existing.state,
        "duplicate request: this object version and frame request were already submitted; nothing submitted"
    );
    repair_manifest(storage, keys, existing).await;
    Submission::Duplicate {
        marker,
        state: existing.state,
        render_job_id: existing
            .manifest
            .as_ref()
            .and_then(|m| m.render_job_id.clone()),
    }
}

/// Submits a render job for `render`'s frames and a zip job archiving all of `whole`'s frames
/// once it has succeeded, with no request marker, and writes `<key>/job.json` for `whole`: a
/// deliberate resubmission (`farm retry`) of a job whose jobs have ended. Returns the manifest.
pub async fn submit_retry<S: Storage, B: Scheduler>(
    storage: &S,
    scheduler: &B,
    source: &SourceObject,
    render: &RenderRequest,
    whole: &RenderRequest,
) -> Result<JobManifest, SubmitError> {
    let keys = JobKeys::new(source.key.clone());
    let choice = scheduler.blender();
    let (render, why) = resolve_blender(render, source, choice.as_ref())?;
    let (whole, _) = resolve_blender(whole, source, choice.as_ref())?;
    // The job stays bound to the dependencies its request was checked with, and keeps why it
    // runs its series (a retry runs the series `job.json` recorded).
    let (dependencies, reason) = match get_json::<JobManifest>(storage, &keys.manifest()).await {
        Ok(previous) if previous.etag.as_deref() == Some(source.etag.as_str()) => {
            (previous.dependencies, previous.blender_reason)
        }
        Ok(_) | Err(StorageError::NotFound { .. } | StorageError::Json { .. }) => (None, None),
        Err(err) => return Err(err.into()),
    };
    let jobs = Jobs {
        render: source.ticket(&render, dependencies.as_ref()),
        whole: source.ticket(&whole, dependencies.as_ref()),
        fingerprint: None,
    };
    let ids = jobs.submit(storage, scheduler, Adopted::default()).await?;
    let mut manifest = submitted_manifest(source, &whole, &ids.render, &ids.zip);
    manifest.movie_job_id = ids.movie;
    manifest.chunk_count = render.plan.chunk_count();
    manifest.targets = scheduler.record(manifest.blender);
    why.record(&mut manifest);
    manifest.blender_reason = manifest.blender_reason.or(reason);
    manifest.dependencies = dependencies;
    put_json(storage, &keys.manifest(), &manifest).await?;
    Ok(manifest)
}

/// Records a request that can never succeed as it stands (bad tags, not a .blend): in
/// `<key>/job.json` with status `rejected`, unless `job.json` describes a submitted job, which
/// it must keep describing (`farm cancel`, `farm retry` and `farm status` read it): then in
/// `<key>/rejected.json` beside it. Returns the manifest and the key it was written to.
pub async fn write_rejection<S: Storage>(
    storage: &S,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    version_id: Option<&str>,
    message: &str,
) -> Result<(JobManifest, String), SubmitError> {
    let mut manifest = JobManifest::rejected(
        bucket,
        key,
        etag.map(str::to_owned),
        message.to_owned(),
        Timestamp::now(),
    );
    manifest.version_id = version_id.map(str::to_owned);
    let target = write_rejected_manifest(storage, &manifest).await?;
    Ok((manifest, target))
}

/// Writes a rejected manifest where [`write_rejection`] would (`job.json`, or `rejected.json`
/// beside a submitted job's); returns the key written.
pub async fn write_rejected_manifest<S: Storage>(
    storage: &S,
    manifest: &JobManifest,
) -> Result<String, SubmitError> {
    let keys = JobKeys::new(manifest.key.clone());
    let target = match get_json::<JobManifest>(storage, &keys.manifest()).await {
        Ok(existing) if existing.status == ManifestStatus::Submitted => keys.rejection(),
        Ok(_) | Err(StorageError::NotFound { .. }) | Err(StorageError::Json { .. }) => {
            keys.manifest()
        }
        Err(err) => return Err(err.into()),
    };
    put_json(storage, &target, manifest).await?;
    Ok(target)
}

/// The manifest of a submitted request.
pub fn submitted_manifest(
    source: &SourceObject,
    request: &RenderRequest,
    render_job_id: &str,
    zip_job_id: &str,
) -> JobManifest {
    JobManifest {
        schema: MANIFEST_SCHEMA,
        status: ManifestStatus::Submitted,
        bucket: source.bucket.clone(),
        key: source.key.clone(),
        etag: Some(source.etag.clone()),
        version_id: source.version_id.clone(),
        frames: Some(request.plan.frames().canonical()),
        frame_count: request.plan.frames().len(),
        chunk_size: request.plan.chunk_size(),
        chunk_count: request.plan.chunk_count(),
        format: request.format,
        blender: request.blender.and_then(BlenderPick::series),
        blender_reason: None,
        persistent: request.persistent,
        engine: request.engine,
        saved_by: source.saved_by,
        warnings: Vec::new(),
        scene: source.scene.clone(),
        render_job_id: Some(render_job_id.to_owned()),
        zip_job_id: Some(zip_job_id.to_owned()),
        movie: source.movie.clone(),
        movie_job_id: None,
        views: source.views.clone(),
        targets: None,
        request: None,
        created: Timestamp::now(),
        message: None,
        dependencies: None,
    }
}

/// Why the render job runs its series and what the user should know, for `job.json`.
struct Why {
    reason: Option<String>,
    warning: Option<String>,
}

impl Why {
    fn record(self, manifest: &mut JobManifest) {
        manifest.blender_reason = self.reason;
        manifest.warnings = self.warning.into_iter().collect();
    }
}

/// The request with the series its render job runs ([`SeriesChoice::choose`] over the
/// scheduler's series and the file's header), and why. A scheduler with no notion of series
/// (one render job definition) runs whatever the request names, e.g. `farm retry` on the
/// definition `job.json` recorded; it still refuses a file that series cannot open.
fn resolve_blender(
    request: &RenderRequest,
    source: &SourceObject,
    choice: Option<&SeriesChoice>,
) -> Result<(RenderRequest, Why), ChooseError> {
    let (blender, why) = match choice {
        Some(choice) => {
            let chosen = choice.choose(request.blender, source.saved_by)?;
            let why = Why {
                reason: Some(chosen.reason.to_string()),
                warning: chosen.warning,
            };
            (Some(chosen.series), why)
        }
        None => {
            let job = request.blender.and_then(BlenderPick::series);
            let warning = match (source.saved_by, job) {
                (Some(saved_by), Some(job)) => {
                    check_opens(saved_by, job, None)?;
                    newer_file_warning(saved_by, job, None)
                }
                _ => None,
            };
            let why = Why {
                reason: None,
                warning,
            };
            (job, why)
        }
    };
    let request = RenderRequest {
        blender: blender.map(BlenderPick::Series),
        ..request.clone()
    };
    Ok((request, why))
}
