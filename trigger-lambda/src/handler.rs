//! The Lambda's work: one S3 notification in, at most one render + zip submission per record.

use std::time::Duration;

use aws_lambda_events::event::s3::S3Event;
use bytes::Bytes;
use farm_blend::{BlendError, BlendInfo, SNIFF_LEN};
use farm_core::etag::{quote_etag, unquote_etag};
use farm_core::request::{TAG_FRAME, TAG_FRAMES};
use farm_core::scheduler::Scheduler;
use farm_core::storage::StorageError;
use farm_core::Storage;
use serde::Serialize;

use crate::error::TriggerError;
use crate::event::{BlendRecord, EventKind};
use farm_jobs::submit::{
    submit_request_with, write_rejection, SourceObject, Submission, SubmitError,
};
use farm_jobs::trigger::{decide, Accepted, Decision, Limits, UploadFacts};

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
pub struct Deps<O, B> {
    /// Storage for a bucket, e.g. `|bucket| S3Storage::new(client.clone(), bucket)`.
    pub buckets: O,
    pub scheduler: B,
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

impl<O, B> std::fmt::Debug for Deps<O, B> {
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
    /// The upload asked for an estimate (`estimate=N`): its scout job was submitted, no render
    /// or zip job; the scout writes `<key>/estimate.json`.
    Scouted {
        bucket: String,
        key: String,
        scout_job_id: String,
        /// The sample frames it renders.
        samples: String,
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
pub async fn handle_event<O, B>(
    deps: &Deps<O, B>,
    event: S3Event,
) -> Result<EventReport, TriggerError>
where
    O: Buckets,
    B: Scheduler,
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
pub async fn process_event<O, B>(deps: &Deps<O, B>, event: &S3Event) -> EventReport
where
    O: Buckets,
    B: Scheduler,
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
pub async fn process_record<O, B>(
    deps: &Deps<O, B>,
    record: &BlendRecord,
) -> Result<RecordOutcome, TriggerError>
where
    O: Buckets,
    B: Scheduler,
{
    let (bucket, key) = (record.bucket.as_str(), record.key.as_str());
    let storage = deps.buckets.open(bucket);
    let (etag, size) = match current_version(&storage, record).await? {
        Ok(current) => current,
        Err(outcome) => return Ok(outcome),
    };
    let Some(tags) = storage.get_tags(key, record.version_id.as_deref()).await? else {
        return Ok(gone(record));
    };
    let limits = Limits {
        max_frames: deps.max_frames,
        task_slots: deps.task_slots,
    };
    let budget = Budget::start(deps.read_budget);
    let (accepted, upload) =
        match decide_reading(&storage, record, (&etag, size), &tags, &limits, budget).await? {
            Ok(accepted) => accepted,
            Err(outcome) => return Ok(outcome),
        };
    let blend = &upload.read;
    let gate = crate::preflight::gate(
        &storage,
        record,
        &etag,
        &accepted.tags,
        accepted.request.plan.frames().as_slice(),
        blend,
        &deps.shared_prefixes,
    );
    let mut extras = match tokio::time::timeout_at(budget.deadline, Box::pin(gate)).await {
        Err(_) => return reject(&storage, record, &etag, budget.exceeded()).await,
        Ok(gate) => match gate? {
            crate::preflight::Gate::Proceed(extras) => extras,
            crate::preflight::Gate::Done(outcome) => return Ok(outcome),
        },
    };
    // A scout projects for the farm's task slots: its MaxVcpus in whole render tasks.
    extras.max_vcpus = deps
        .task_slots
        .and_then(|slots| u32::try_from(slots.get()).ok())
        .map(|slots| slots.saturating_mul(farm_core::plan::RENDER_TASK_VCPUS));

    log_accepted(record, &accepted);
    let source = SourceObject {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag,
        version_id: record.version_id.clone(),
        saved_by: accepted.saved_by.ok(),
        scene: accepted.scene,
        movie: accepted.movie,
        views: accepted.views,
    };
    let submitted = match Box::pin(submit_request_with(
        &storage,
        &deps.scheduler,
        &source,
        &accepted.request,
        &extras,
    ))
    .await
    {
        Err(
            err @ (SubmitError::TooLarge { .. } | SubmitError::Unfit(_) | SubmitError::Blender(_)),
        ) => return reject(&storage, record, &source.etag, err.to_string()).await,
        other => other?,
    };
    Ok(outcome(record, submitted))
}

/// The record's object as it is now: its quoted ETag and size; or its outcome when it is gone
/// or was replaced since the event (the newer upload's own event handles it).
async fn current_version<S: Storage>(
    storage: &S,
    record: &BlendRecord,
) -> Result<Result<(String, u64), RecordOutcome>, TriggerError> {
    let (bucket, key) = (record.bucket.as_str(), record.key.as_str());
    let Some(meta) = storage.head(key).await? else {
        return Ok(Err(gone(record)));
    };
    let Some(etag) = meta.etag.or_else(|| record.etag.as_deref().map(quote_etag)) else {
        return Err(StorageError::Permanent {
            operation: "HeadObject",
            key: key.to_owned(),
            message: "s3 returned no etag for the object".to_owned(),
        }
        .into());
    };
    if let Some(event_etag) = &record.etag {
        if unquote_etag(&etag) != event_etag {
            tracing::info!(
                bucket,
                key,
                event_etag = %event_etag,
                current_etag = %etag,
                "the object was replaced since this event; the newer upload's own event handles it"
            );
            return Ok(Err(RecordOutcome::Stale {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                event_etag: event_etag.clone(),
                current_etag: etag,
            }));
        }
    }
    Ok(Ok((etag, meta.size)))
}

/// The outcome of a record whose object no longer exists.
fn gone(record: &BlendRecord) -> RecordOutcome {
    let (bucket, key) = (record.bucket.as_str(), record.key.as_str());
    tracing::info!(
        bucket,
        key,
        "the object no longer exists (deleted since the event): nothing to do"
    );
    RecordOutcome::Gone {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    }
}

/// The outcome of a submission, its warnings logged.
fn outcome(record: &BlendRecord, submitted: Submission) -> RecordOutcome {
    let (bucket, key) = (record.bucket.as_str(), record.key.as_str());
    match submitted {
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
        Submission::Scouted(scouted) => RecordOutcome::Scouted {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            scout_job_id: scouted.job_id,
            samples: farm_core::frames::compact(&scouted.samples, " "),
        },
        Submission::Duplicate { marker, .. } => RecordOutcome::Duplicate {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            marker,
        },
    }
}

/// What to do with the record's upload ([`decide`]), reading it at most once, only when the
/// decision needs it, within `budget`: the request accepted with the upload read; or the
/// record's outcome (no frame tag, rejected and recorded, gone).
async fn decide_reading<S: Storage>(
    storage: &S,
    record: &BlendRecord,
    (etag, size): (&str, u64),
    tags: &[(String, String)],
    limits: &Limits,
    budget: Budget,
) -> Result<Result<(Accepted, Upload), RecordOutcome>, TriggerError> {
    let mut upload = None;
    let mut decision = decide(tags, None, limits);
    if decision == Decision::NeedsFacts {
        let read = match read_upload(storage, record, etag, size, budget).await? {
            Ok(read) => upload.insert(read),
            Err(outcome) => return Ok(Err(outcome)),
        };
        decision = decide(tags, Some(read.facts()), limits);
    }
    match (decision, upload) {
        (Decision::Submit(accepted), Some(upload)) => Ok(Ok((*accepted, upload))),
        (Decision::Reject(message), _) => reject(storage, record, etag, message).await.map(Err),
        (Decision::NoFrameTag, _) => Ok(Err(no_frame_tag(record))),
        (Decision::Submit(_), None) | (Decision::NeedsFacts, _) => {
            unreachable!("`decide` accepts only with the upload's facts, and asks for them once")
        }
    }
}

/// Logs what the trigger found of an accepted request's upload.
fn log_accepted(record: &BlendRecord, accepted: &Accepted) {
    let (bucket, key) = (record.bucket.as_str(), record.key.as_str());
    if let Err(err) = &accepted.saved_by {
        tracing::info!(
            bucket,
            key,
            "the Blender that saved the file is unknown: {err}"
        );
    }
    if let Some(found) = &accepted.scene {
        tracing::info!(bucket, key, scene = %found.scene, frames = %found.frames, engine = %found.engine, "frames=scene: the active scene's own range");
    }
    for note in &accepted.notes {
        tracing::info!(bucket, key, engine = %accepted.engine, "{note}");
    }
}

/// An upload as the trigger read it, once: its first bytes and what `farm-blend` found.
struct Upload {
    head: Bytes,
    read: Result<BlendInfo, String>,
}

impl Upload {
    fn facts(&self) -> UploadFacts<'_> {
        UploadFacts {
            head: &self.head,
            read: &self.read,
        }
    }
}

/// Reads the upload where it lies within `budget`, each byte once: its first bytes, then the
/// facts from them on (or why they cannot be read, left to Blender); or the record's outcome:
/// gone (deleted or replaced meanwhile, nothing to do), or rejected (recorded) for a
/// decompression bomb or a read past the budget.
async fn read_upload<S: Storage>(
    storage: &S,
    record: &BlendRecord,
    etag: &str,
    size: u64,
    budget: Budget,
) -> Result<Result<Upload, RecordOutcome>, TriggerError> {
    let key = record.key.as_str();
    let read = async {
        let head = storage
            .get_range(key, 0, SNIFF_LEN as u64, Some(etag))
            .await?;
        let read =
            farm_jobs::blend::read_blend_from(storage, key, etag, size, head.clone()).await?;
        Ok::<_, StorageError>((head, read))
    };
    let refused = match tokio::time::timeout_at(budget.deadline, read).await {
        Err(_) => budget.exceeded(),
        Ok(Ok((_, Err(err @ BlendError::TooLarge { .. })))) => {
            format!("{err}; no job was submitted")
        }
        Ok(Ok((head, read))) => {
            return Ok(Ok(Upload {
                head,
                read: read.map_err(|err| err.to_string()),
            }))
        }
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

/// The outcome of an upload whose tags ask for no frames, logged with how to ask.
fn no_frame_tag(record: &BlendRecord) -> RecordOutcome {
    let (bucket, key) = (record.bucket.as_str(), record.key.as_str());
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
    RecordOutcome::NoFrameTag {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    }
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
