//! The Lambda's work: one S3 notification in, at most one render + zip submission per record.

use std::time::Duration;

use aws_lambda_events::event::s3::S3Event;
use farm_blend::{BlendError, BlendInfo};
use farm_core::blend::{sniff, SNIFF_LEN};
use farm_core::request::{TAG_FRAME, TAG_FRAMES};
use farm_core::scheduler::Scheduler;
use farm_core::storage::StorageError;
use farm_core::{BlenderSeries, RenderRequest, Storage};
use serde::Serialize;

use crate::error::TriggerError;
use crate::event::{unquote, BlendRecord, EventKind};
use crate::tags::TagReader;
use farm_jobs::scene::{self, SceneRead};
use farm_jobs::submit::{
    submit_request_with, write_rejection, SourceObject, Submission, SubmitError,
};

/// Most frames one upload may ask for when `FARM_MAX_FRAMES` is not set.
pub use farm_core::request::DEFAULT_REQUEST_MAX_FRAMES as DEFAULT_MAX_FRAMES;

/// Opens the storage of a bucket named by an event record.
pub trait Buckets: Send + Sync {
    type Storage: Storage;
    fn open(&self, bucket: &str) -> Self::Storage;
}

impl<F, S> Buckets for F
where
    F: Fn(&str) -> S + Send + Sync,
    S: Storage,
{
    type Storage = S;
    fn open(&self, bucket: &str) -> S {
        self(bucket)
    }
}

/// What the handler talks to, built once per Lambda instance.
pub struct Deps<O, B, T> {
    /// Storage for a bucket, e.g. `|bucket| S3Storage::new(client.clone(), bucket)`.
    pub buckets: O,
    pub scheduler: B,
    pub tags: T,
    /// Most frames one request may ask for (`FARM_MAX_FRAMES`).
    pub max_frames: usize,
    /// Render tasks the farm runs at once (`FARM_MAX_VCPUS / 4`), which `chunk=auto` fills;
    /// `None`: unknown (as many tasks as an array job allows).
    pub task_slots: Option<std::num::NonZeroUsize>,
    /// Most time one record may spend reading its upload and checking its files
    /// ([`READ_BUDGET`] in the Lambda) before the request is rejected.
    pub read_budget: Duration,
    /// The prefixes every upload may use besides its own top-level folder
    /// (`FARM_SHARED_PREFIXES`); any other key is refused by the dependency check.
    pub shared_prefixes: farm_core::deps::SharedPrefixes,
}

/// The trigger's time budget per upload for reading the `.blend` and checking its files
/// (libraries included): past it the request is rejected, and the rejection recorded in
/// `job.json`, with time left for that and for a submission before the Lambda's own timeout
/// (300 s, infra/farm.yaml; `farm-infra` tests the margin), never a silent timeout.
pub const READ_BUDGET: Duration = Duration::from_secs(180);

/// When a record's reading must end, and how long it was given.
#[derive(Debug, Clone, Copy)]
struct Budget {
    deadline: tokio::time::Instant,
    limit: Duration,
}

impl Budget {
    fn start(limit: Duration) -> Self {
        Self {
            deadline: tokio::time::Instant::now() + limit,
            limit,
        }
    }

    fn exceeded(self) -> String {
        format!(
            "reading the .blend and checking its files took longer than the trigger's budget of {} s per upload, so no job was submitted: a file this slow to read is most likely a decompression bomb or full of empty blocks; open it in Blender and save it again, or render it with `farm render`",
            self.limit.as_secs_f64()
        )
    }
}

impl<O, B, T> std::fmt::Debug for Deps<O, B, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("max_frames", &self.max_frames)
            .field("task_slots", &self.task_slots)
            .field("read_budget", &self.read_budget)
            .finish_non_exhaustive()
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecordOutcome {
    /// Not a record the farm acts on (another event, or not a `.blend`).
    Ignored { reason: String },
    /// No `frame`/`frames` tag: nothing to render yet.
    NoFrameTag { bucket: String, key: String },
    /// The object was deleted (or replaced) since the event: nothing to do.
    Gone { bucket: String, key: String },
    /// The object was replaced since the event; the newer upload's own event handles it.
    Stale {
        bucket: String,
        key: String,
        event_etag: String,
        current_etag: String,
    },
    /// The request can never succeed as it stands; a rejected `job.json` says why.
    Rejected {
        bucket: String,
        key: String,
        message: String,
    },
    /// The render and zip jobs were submitted.
    Submitted {
        bucket: String,
        key: String,
        render_job_id: String,
        zip_job_id: String,
        frames: String,
        chunk_count: usize,
        /// The Blender series the render job runs.
        #[serde(skip_serializing_if = "Option::is_none")]
        blender: Option<String>,
        /// What `job.json` warns of (a file saved by a newer Blender).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// The same request was submitted before: nothing submitted.
    Duplicate {
        bucket: String,
        key: String,
        marker: String,
    },
    /// S3 or Batch failed; the event will be retried.
    Failed {
        bucket: Option<String>,
        key: Option<String>,
        error: String,
    },
}

/// What became of each record of an event, in order. It is also the Lambda's response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventReport {
    pub records: Vec<RecordOutcome>,
}

impl EventReport {
    /// Records whose jobs were submitted by this invocation.
    pub fn submitted(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Submitted { .. }))
    }

    /// Records that failed on an S3 or Batch error.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, RecordOutcome::Failed { .. }))
    }

    fn count(&self, f: impl Fn(&RecordOutcome) -> bool) -> usize {
        self.records.iter().filter(|o| f(o)).count()
    }
}

/// Handles every record of an event, each on its own, and fails if any record hit an S3 or
/// Batch error (so that Lambda retries the event; records already submitted are then found
/// duplicate). Validation problems never fail it.
pub async fn handle_event<O, B, T>(
    deps: &Deps<O, B, T>,
    event: S3Event,
) -> Result<EventReport, TriggerError>
where
    O: Buckets,
    B: Scheduler,
    T: TagReader,
{
    let report = process_event(deps, &event).await;
    let errors: Vec<String> = report
        .records
        .iter()
        .filter_map(|o| match o {
            RecordOutcome::Failed { key, error, .. } => {
                Some(format!("`{}`: {error}", key.as_deref().unwrap_or("?")))
            }
            _ => None,
        })
        .collect();
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(TriggerError::Records {
            failed: errors.len(),
            total: report.records.len(),
            errors,
        })
    }
}

/// Handles every record of an event, each on its own, and says what became of each; never
/// fails (see [`handle_event`] for the Lambda's view).
pub async fn process_event<O, B, T>(deps: &Deps<O, B, T>, event: &S3Event) -> EventReport
where
    O: Buckets,
    B: Scheduler,
    T: TagReader,
{
    let mut report = EventReport::default();
    for record in &event.records {
        let outcome = match BlendRecord::from_record(record) {
            Err(skip) => {
                tracing::info!(
                    event = record.event_name.as_deref().unwrap_or(""),
                    key = record.s3.object.key.as_deref().unwrap_or(""),
                    "ignored: {skip}"
                );
                RecordOutcome::Ignored {
                    reason: skip.to_string(),
                }
            }
            Ok(blend) => match process_record(deps, &blend).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    tracing::error!(
                        bucket = %blend.bucket,
                        key = %blend.key,
                        event = %blend.event_name,
                        error = %err,
                        "record failed; the event will be retried"
                    );
                    RecordOutcome::Failed {
                        bucket: Some(blend.bucket),
                        key: Some(blend.key),
                        error: err.to_string(),
                    }
                }
            },
        };
        report.records.push(outcome);
    }
    report
}

/// Handles one `.blend` record: reads its tags and first bytes, then submits or rejects.
pub async fn process_record<O, B, T>(
    deps: &Deps<O, B, T>,
    record: &BlendRecord,
) -> Result<RecordOutcome, TriggerError>
where
    O: Buckets,
    B: Scheduler,
    T: TagReader,
{
    let bucket = record.bucket.as_str();
    let key = record.key.as_str();
    let gone = || {
        tracing::info!(
            bucket,
            key,
            "the object no longer exists (deleted since the event): nothing to do"
        );
        RecordOutcome::Gone {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    };
    let storage = deps.buckets.open(bucket);

    let Some(meta) = storage.head(key).await? else {
        return Ok(gone());
    };
    let Some(etag) = meta
        .etag
        .or_else(|| record.etag.as_ref().map(|e| format!("\"{e}\"")))
    else {
        return Err(StorageError::Permanent {
            operation: "HeadObject",
            key: key.to_owned(),
            message: "s3 returned no etag for the object".to_owned(),
        }
        .into());
    };
    if let Some(event_etag) = &record.etag {
        if unquote(&etag) != event_etag {
            tracing::info!(
                bucket,
                key,
                event_etag = %event_etag,
                current_etag = %etag,
                "the object was replaced since this event; the newer upload's own event handles it"
            );
            return Ok(RecordOutcome::Stale {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                event_etag: event_etag.clone(),
                current_etag: etag,
            });
        }
    }

    let Some(mut tags) = deps
        .tags
        .tags(bucket, key, record.version_id.as_deref())
        .await?
    else {
        return Ok(gone());
    };
    // The upload is read at most once, for `frames=scene` and the dependency check, within
    // the budget.
    let budget = Budget::start(deps.read_budget);
    let mut blend = None;
    let mut scene_record = None;
    if scene::asks_for_scene(&tags) {
        let read = match read_upload(&storage, record, &etag, meta.size, budget).await? {
            Ok(read) => read,
            Err(outcome) => return Ok(outcome),
        };
        match scene::from_read(&read, deps.max_frames) {
            SceneRead::Frames(record) => {
                scene::set_frames(&mut tags, &record.frames);
                scene_record = Some(record);
            }
            SceneRead::Invalid(message) => return reject(&storage, record, &etag, message).await,
        }
        blend = Some(read);
    }
    let parsed = RenderRequest::from_tags_with_slots(
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        deps.max_frames,
        deps.task_slots,
    );
    let mut request = match parsed {
        Ok(Some(request)) => request,
        Ok(None) => {
            match record.kind {
                EventKind::Created => tracing::info!(
                    bucket,
                    key,
                    "no `{TAG_FRAME}` or `{TAG_FRAMES}` tag, so nothing is rendered yet; to render frames 1..=120, tag the object: \
                     aws s3api put-object-tagging --bucket {} --key {} --tagging 'TagSet=[{{Key={TAG_FRAME},Value=120}}]'",
                    farm_core::shell::quote(bucket),
                    farm_core::shell::quote(key),
                ),
                EventKind::Tagged => tracing::info!(
                    bucket,
                    key,
                    "the new tags have no `{TAG_FRAME}` or `{TAG_FRAMES}` tag: nothing to render"
                ),
            }
            return Ok(RecordOutcome::NoFrameTag {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        Err(err) => {
            let message = format!(
                "{err}; set corrected tags (aws s3api put-object-tagging) to submit the render"
            );
            return reject(&storage, record, &etag, message).await;
        }
    };

    let prefix = match storage
        .get_range(key, 0, SNIFF_LEN as u64, Some(&etag))
        .await
    {
        Ok(prefix) => prefix,
        Err(StorageError::NotFound { .. } | StorageError::Changed { .. }) => return Ok(gone()),
        Err(err) => return Err(err.into()),
    };
    if let Err(err) = sniff(&prefix) {
        return reject(&storage, record, &etag, err.to_string()).await;
    }
    let saved_by = match farm_blend::read_version(&prefix[..]) {
        Ok(version) => Some(BlenderSeries::new(version.major, version.minor)),
        Err(err) => {
            tracing::info!(
                bucket,
                key,
                "the Blender that saved the file is unknown: {err}"
            );
            None
        }
    };
    let blend = match blend {
        Some(read) => read,
        None => match read_upload(&storage, record, &etag, meta.size, budget).await? {
            Ok(read) => read,
            Err(outcome) => return Ok(outcome),
        },
    };
    if let Some(refusal) = blend.as_ref().ok().and_then(scene::cannot_render) {
        return reject(&storage, record, &etag, refusal).await;
    }
    let engine = scene::choose_engine(request.engine, blend.as_ref().ok());
    request.engine = Some(engine.engine);
    let (format, stills) = scene::stills_format(request.format, blend.as_ref().ok());
    request.format = format;
    if let Some(record) = scene_record.as_mut() {
        scene::record_engine(record, &engine);
        record.notes.extend(stills.iter().cloned());
    }
    let gate = crate::preflight::gate(
        &storage,
        record,
        &etag,
        &tags,
        request.plan.frames().as_slice(),
        &blend,
        &deps.shared_prefixes,
    );
    let extras = match tokio::time::timeout_at(budget.deadline, Box::pin(gate)).await {
        Err(_) => return reject(&storage, record, &etag, budget.exceeded()).await,
        Ok(gate) => match gate? {
            crate::preflight::Gate::Proceed(extras) => extras,
            crate::preflight::Gate::Done(outcome) => return Ok(outcome),
        },
    };

    if let Some(found) = &scene_record {
        tracing::info!(bucket, key, scene = %found.scene, frames = %found.frames, engine = %found.engine, "frames=scene: the active scene's own range");
    }
    for note in engine.note.iter().chain(&stills) {
        tracing::info!(bucket, key, engine = %engine.engine, "{note}");
    }
    let source = SourceObject {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag,
        version_id: record.version_id.clone(),
        saved_by,
        scene: scene_record,
    };
    let submitted = match Box::pin(submit_request_with(
        &storage,
        &deps.scheduler,
        &source,
        &request,
        &extras,
    ))
    .await
    {
        Err(err @ (SubmitError::TooLarge { .. } | SubmitError::Blender(_))) => {
            return reject(&storage, record, &source.etag, err.to_string()).await
        }
        other => other?,
    };
    Ok(match submitted {
        Submission::Submitted {
            render_job_id,
            zip_job_id,
            manifest,
            ..
        } => {
            for warning in &manifest.warnings {
                tracing::warn!(
                    bucket,
                    key,
                    render_job_id = %render_job_id,
                    blender = %manifest.blender.map(|b| b.to_string()).unwrap_or_default(),
                    "{warning}"
                );
            }
            RecordOutcome::Submitted {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                render_job_id,
                zip_job_id,
                frames: manifest.frames.unwrap_or_default(),
                chunk_count: manifest.chunk_count,
                blender: manifest.blender.map(|b| b.to_string()),
                warnings: manifest.warnings,
            }
        }
        Submission::Duplicate { marker, .. } => RecordOutcome::Duplicate {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            marker,
        },
    })
}

/// Reads the upload where it lies within `budget`: the facts, or why they cannot be read (left
/// to Blender); or the record's outcome: gone (deleted or replaced meanwhile, nothing to do),
/// or rejected (recorded) for a decompression bomb or a read past the budget.
async fn read_upload<S: Storage>(
    storage: &S,
    record: &BlendRecord,
    etag: &str,
    size: u64,
    budget: Budget,
) -> Result<Result<Result<BlendInfo, String>, RecordOutcome>, TriggerError> {
    let key = record.key.as_str();
    let read = farm_jobs::blend::read_blend(storage, key, etag, size);
    let refused = match tokio::time::timeout_at(budget.deadline, read).await {
        Err(_) => budget.exceeded(),
        Ok(Ok(Ok(info))) => return Ok(Ok(Ok(info))),
        Ok(Ok(Err(err @ BlendError::TooLarge { .. }))) => {
            format!("{err}; no job was submitted")
        }
        Ok(Ok(Err(err))) => return Ok(Ok(Err(err.to_string()))),
        Ok(Err(StorageError::NotFound { .. } | StorageError::Changed { .. })) => {
            return Ok(Err(RecordOutcome::Gone {
                bucket: record.bucket.clone(),
                key: key.to_owned(),
            }))
        }
        Ok(Err(err)) => return Err(err.into()),
    };
    reject(storage, record, etag, refused).await.map(Err)
}

async fn reject<S: Storage>(
    storage: &S,
    record: &BlendRecord,
    etag: &str,
    message: String,
) -> Result<RecordOutcome, TriggerError> {
    tracing::error!(
        bucket = %record.bucket,
        key = %record.key,
        "request rejected, no job submitted: {message}"
    );
    let (_, written) = write_rejection(
        storage,
        &record.bucket,
        &record.key,
        Some(etag),
        record.version_id.as_deref(),
        &message,
    )
    .await?;
    tracing::info!(key = %written, "rejection recorded");
    Ok(RecordOutcome::Rejected {
        bucket: record.bucket.clone(),
        key: record.key.clone(),
        message,
    })
}
