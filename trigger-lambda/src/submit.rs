//! Submitting a render request: at most one render job and one zip job per object version and
//! request, whoever asks (the Lambda on an S3 event, or `farm submit` / `farm retry`).
//!
//! # Idempotency
//! S3 delivers events at least once and Lambda retries failed invocations, so one request may be
//! handled several times, even at the same time. Before submitting anything,
//! [`submit_request`] creates a marker object `<key>/requests/<fingerprint>.json` with
//! `If-None-Match: *` ([`Storage::create_if_absent`]); the fingerprint
//! ([`request_fingerprint`]) covers the object version (version id, else ETag), the canonical
//! frame list, the chunk size and the format. Whoever creates the marker submits; everyone else
//! finds it and submits nothing. A re-upload with new content (new ETag or version) or a new
//! frame tag is a new fingerprint, hence a new job.
//!
//! The marker is written `pending` and rewritten `submitted` (with the manifest) once both jobs
//! are in. If submitting fails, the marker is deleted again before the error is returned, so the
//! retry can submit; a render job whose zip job could not be submitted is cancelled first.
//!
//! What remains: if the process dies between creating the marker and finishing the submission
//! (a Lambda timeout, say), the marker stays `pending`. A later delivery takes over a pending
//! marker older than [`PENDING_MARKER_TAKEOVER`] (well past the Lambda timeout) by creating the
//! next generation of marker (`<fingerprint>.1.json`, ...) with `If-None-Match: *` again, so
//! two deliveries never both take over. If the dead process had already submitted the render
//! job, the takeover submits a second one: that window (a crash after SubmitJob returned and
//! before the marker was rewritten) is the one duplicate this scheme does not prevent.

use std::time::Duration;

use bytes::Bytes;
use farm_core::layout::request_fingerprint;
use farm_core::manifest::{JobManifest, ManifestStatus, MANIFEST_SCHEMA};
use farm_core::scheduler::{JobSpec, Scheduler};
use farm_core::storage::{get_json, put_json, PutOptions, StorageError};
use farm_core::{JobKeys, RenderRequest, Storage};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::TriggerError;

/// How old a `pending` marker must be before another delivery may take it over. Must exceed the
/// Lambda timeout (60 s in `infra/farm.yaml`): a younger marker may belong to a live invocation.
pub const PENDING_MARKER_TAKEOVER: Duration = Duration::from_secs(120);

/// How many takeovers of stale pending markers one request allows before giving up.
const MAX_MARKER_GENERATIONS: u32 = 5;

/// Rounds of create-then-find-it-gone before giving up (other deliveries rolling back).
const MAX_MARKER_ATTEMPTS: u32 = 10;

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
}

impl SourceObject {
    /// What identifies this content for the marker: the version id if there is one, else the
    /// ETag (without quotes, so that an event's bare ETag and S3's quoted one agree).
    pub fn version(&self) -> &str {
        self.version_id
            .as_deref()
            .unwrap_or_else(|| crate::event::unquote(&self.etag))
    }
}

/// Where a request marker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerState {
    /// Created; the jobs are being submitted (or the submitter died, see the module docs).
    Pending,
    /// Both jobs were submitted; `manifest` holds their ids.
    Submitted,
}

/// The body of `<key>/requests/<fingerprint>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMarker {
    pub state: MarkerState,
    /// When the marker was created (kept when it is rewritten `submitted`).
    pub created: Timestamp,
    pub key: String,
    /// Version id or ETag of the object.
    pub version: String,
    pub frames: String,
    pub chunk_size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The manifest written for the submitted jobs (state `submitted` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<JobManifest>,
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
    /// The same request was already handled (or is being handled): nothing was submitted.
    Duplicate {
        marker: String,
        state: MarkerState,
        /// The render job of the earlier submission, if it finished submitting.
        render_job_id: Option<String>,
    },
}

/// Submits `request` for `source` once: claims the request marker, submits the render job and
/// the zip job that depends on it, and writes `<key>/job.json` (status `submitted`, both ids).
///
/// `storage` is the bucket `source.bucket` names. A request already claimed returns
/// [`Submission::Duplicate`] and submits nothing; see the module docs for the guarantees.
pub async fn submit_request<S: Storage, B: Scheduler>(
    storage: &S,
    scheduler: &B,
    source: &SourceObject,
    request: &RenderRequest,
) -> Result<Submission, TriggerError> {
    let keys = JobKeys::new(source.key.clone());
    let format = request.format.map(|f| f.blender_name().to_owned());
    let frames = request.plan.frames().canonical();
    let fingerprint = request_fingerprint(
        source.version(),
        &frames,
        request.plan.chunk_size(),
        format.as_deref(),
    );
    let pending = RequestMarker {
        state: MarkerState::Pending,
        created: Timestamp::now(),
        key: source.key.clone(),
        version: source.version().to_owned(),
        frames,
        chunk_size: request.plan.chunk_size(),
        format,
        manifest: None,
    };
    let marker = match claim_marker(storage, &keys, &fingerprint, &pending).await? {
        Claim::Owned(marker) => marker,
        Claim::Taken { marker, existing } => {
            tracing::info!(
                key = %source.key,
                marker = %marker,
                state = ?existing.state,
                "duplicate request: this object version and frame request were already submitted; nothing submitted"
            );
            repair_manifest(storage, &keys, &existing).await;
            return Ok(Submission::Duplicate {
                marker,
                state: existing.state,
                render_job_id: existing
                    .manifest
                    .as_ref()
                    .and_then(|m| m.render_job_id.clone()),
            });
        }
    };

    let (render_job_id, zip_job_id) = match submit_render_and_zip(scheduler, source, &keys, request)
        .await
    {
        Ok(ids) => ids,
        Err(err) => {
            // Let the retry submit: it would otherwise find our marker and do nothing.
            if let Err(delete) = storage.delete(&marker).await {
                tracing::error!(
                    key = %source.key,
                    marker = %marker,
                    error = %delete,
                    "could not delete the request marker after a failed submission; the retry takes it over once it is stale"
                );
            }
            return Err(err);
        }
    };

    let manifest = submitted_manifest(source, request, &render_job_id, &zip_job_id);
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

/// Submits the render job and its zip job and writes `<key>/job.json`, with no request marker:
/// for a deliberate resubmission (`farm retry`) that must run even though the same request was
/// submitted before. Returns the manifest written.
pub async fn submit_jobs<S: Storage, B: Scheduler>(
    storage: &S,
    scheduler: &B,
    source: &SourceObject,
    request: &RenderRequest,
) -> Result<JobManifest, TriggerError> {
    let keys = JobKeys::new(source.key.clone());
    let (render_job_id, zip_job_id) =
        submit_render_and_zip(scheduler, source, &keys, request).await?;
    let manifest = submitted_manifest(source, request, &render_job_id, &zip_job_id);
    put_json(storage, &keys.manifest(), &manifest).await?;
    Ok(manifest)
}

/// Writes `<key>/job.json` with status `rejected` and `message`, for a request that can never
/// succeed as it stands (bad tags, not a .blend).
pub async fn write_rejection<S: Storage>(
    storage: &S,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    version_id: Option<&str>,
    message: &str,
) -> Result<JobManifest, TriggerError> {
    let mut manifest = JobManifest::rejected(
        bucket,
        key,
        etag.map(str::to_owned),
        message.to_owned(),
        Timestamp::now(),
    );
    manifest.version_id = version_id.map(str::to_owned);
    put_json(storage, &JobKeys::new(key).manifest(), &manifest).await?;
    Ok(manifest)
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
        format: request.format.map(|f| f.blender_name().to_owned()),
        render_job_id: Some(render_job_id.to_owned()),
        zip_job_id: Some(zip_job_id.to_owned()),
        created: Timestamp::now(),
        message: None,
    }
}

async fn submit_render_and_zip<B: Scheduler>(
    scheduler: &B,
    source: &SourceObject,
    keys: &JobKeys,
    request: &RenderRequest,
) -> Result<(String, String), TriggerError> {
    let etag = Some(source.etag.as_str());
    let render = JobSpec::render(&source.bucket, keys, etag, request);
    let render_job_id = scheduler.submit(&render).await?;
    let zip = JobSpec::zip(&source.bucket, keys, etag, request, &render_job_id);
    match scheduler.submit(&zip).await {
        Ok(zip_job_id) => {
            tracing::info!(
                key = %source.key,
                render_job_id = %render_job_id,
                zip_job_id = %zip_job_id,
                frames = %request.plan.frames().canonical(),
                chunk_size = request.plan.chunk_size(),
                array_size = ?render.array_size,
                "submitted render and zip jobs"
            );
            Ok((render_job_id, zip_job_id))
        }
        Err(err) => {
            // A render job nobody zips would only cost money; the retry submits both again.
            let reason = "the zip job could not be submitted; the request will be retried";
            if let Err(cancel) = scheduler.cancel(&render_job_id, reason).await {
                tracing::error!(
                    key = %source.key,
                    render_job_id = %render_job_id,
                    error = %cancel,
                    "could not cancel the render job whose zip job failed to submit; cancel it by hand"
                );
            }
            Err(err.into())
        }
    }
}

enum Claim {
    Owned(String),
    Taken {
        marker: String,
        existing: Box<RequestMarker>,
    },
}

fn marker_key(keys: &JobKeys, fingerprint: &str, generation: u32) -> String {
    if generation == 0 {
        keys.request_marker(fingerprint)
    } else {
        keys.request_marker(&format!("{fingerprint}.{generation}"))
    }
}

async fn claim_marker<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    fingerprint: &str,
    pending: &RequestMarker,
) -> Result<Claim, TriggerError> {
    let body = serde_json::to_vec_pretty(pending).map_err(|source| StorageError::Json {
        key: keys.request_marker(fingerprint),
        source,
    })?;
    let body = Bytes::from(body);
    let options = PutOptions::content_type("application/json");
    let mut generation = 0;
    for _ in 0..MAX_MARKER_ATTEMPTS {
        let marker = marker_key(keys, fingerprint, generation);
        if storage
            .create_if_absent(&marker, body.clone(), &options)
            .await?
        {
            return Ok(Claim::Owned(marker));
        }
        let existing = match get_json::<RequestMarker>(storage, &marker).await {
            Ok(existing) => Box::new(existing),
            // Deleted since: a failed submission rolled back. Try to create it again.
            Err(StorageError::NotFound { .. }) => continue,
            // Not ours to judge: treat as taken rather than risk a second job.
            Err(StorageError::Json { .. }) => {
                tracing::warn!(marker = %marker, "request marker is not valid JSON; treating the request as submitted");
                return Ok(Claim::Taken {
                    existing: Box::new(pending.clone()),
                    marker,
                });
            }
            Err(err) => return Err(err.into()),
        };
        let age = Timestamp::now().duration_since(existing.created);
        let stale = existing.state == MarkerState::Pending
            && age > jiff::SignedDuration::try_from(PENDING_MARKER_TAKEOVER).unwrap_or_default();
        if !stale {
            return Ok(Claim::Taken { marker, existing });
        }
        if generation + 1 >= MAX_MARKER_GENERATIONS {
            tracing::error!(marker = %marker, "request markers stayed pending through {MAX_MARKER_GENERATIONS} takeovers; giving up without submitting");
            return Ok(Claim::Taken { marker, existing });
        }
        tracing::warn!(
            marker = %marker,
            age_seconds = age.as_secs(),
            "request marker has been pending for longer than any submitter lives; taking it over"
        );
        generation += 1;
    }
    Err(TriggerError::MarkerContention {
        key: marker_key(keys, fingerprint, generation),
        attempts: MAX_MARKER_ATTEMPTS,
    })
}

/// A duplicate whose earlier submission wrote its marker but not `job.json` (S3 failed in
/// between) writes the missing manifest. Best effort: failures are only logged.
async fn repair_manifest<S: Storage>(storage: &S, keys: &JobKeys, existing: &RequestMarker) {
    let Some(manifest) = &existing.manifest else {
        return;
    };
    let key = keys.manifest();
    match storage.head(&key).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            if let Err(err) = put_json(storage, &key, manifest).await {
                tracing::warn!(key = %key, error = %err, "could not write the missing job manifest");
            } else {
                tracing::info!(key = %key, "wrote the job manifest an earlier submission left out");
            }
        }
        Err(err) => {
            tracing::warn!(key = %key, error = %err, "could not check for the job manifest")
        }
    }
}
