//! A request tagged `estimate=N`: instead of its render and zip jobs, one scout job renders `N`
//! sample frames on the render job definition of the request's series and writes
//! `<key>/estimate.json`. Submitted under the same request marker as any request (its
//! fingerprint holds `estimate=N`, so the same tags without it are a new request: the job).
//! A scout stops no job of the key and writes no `job.json`: those describe the key's job, and
//! `farm status`, `farm cancel` and `farm retry` read them.

use farm_core::estimate::{sample_frames, EstimateFile, EstimateStatus, ESTIMATE_SCHEMA};
use farm_core::scheduler::{JobState, Scheduler};
use farm_core::storage::put_json;
use farm_core::Storage;
use jiff::Timestamp;

use super::jobs::{fits, scout_job_name, TAG_REQUEST};
use super::{MarkerState, RequestMarker, SubmitError};
use crate::JobTicket;

/// What a submitted scout left: its Batch job and the frames it renders (`estimate.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scouted {
    pub job_id: String,
    /// The marker key this submission holds.
    pub marker: String,
    /// The sample frames.
    pub samples: Vec<i32>,
}

/// Submits the scout job of `ticket` (which has [`JobTicket::scout`]) under the claimed
/// `marker`, adopting the one a dead submitter left on a takeover, then writes `estimate.json`
/// (`submitted`, with the job's id) and marks the request submitted. The caller removes the
/// marker when this fails.
pub(super) async fn submit_scout<S: Storage, B: Scheduler>(
    storage: &S,
    scheduler: &B,
    ticket: &JobTicket,
    claim: (&str, &str, bool),
    pending: RequestMarker,
) -> Result<Scouted, SubmitError> {
    let (marker, fingerprint, takeover) = claim;
    let keys = &ticket.keys;
    let limits = scheduler.limits();
    let name = scout_job_name(&limits, keys, fingerprint);
    let adopted = if takeover {
        scheduler
            .find_by_name(&name)
            .await?
            .into_iter()
            .find(|job| job.name == name && job.state != JobState::Failed)
            .map(|job| job.id)
    } else {
        None
    };
    let job_id = match adopted {
        Some(id) => {
            tracing::warn!(name = %name, job_id = %id, "a dead submitter already submitted this scout job; adopting it");
            id
        }
        None => {
            let mut spec = ticket.scout_job(storage, &limits).await?;
            spec.name = name;
            spec.tags
                .insert(TAG_REQUEST.to_owned(), fingerprint.to_owned());
            fits(&limits, &spec)?;
            scheduler.submit(&spec).await?
        }
    };
    let estimate = submitted_estimate(ticket, &job_id);
    put_json(storage, &keys.estimate(), &estimate).await?;
    tracing::info!(
        key = %keys.source(),
        job_id = %job_id,
        samples = ?estimate.samples,
        "submitted a scout job"
    );
    let done = RequestMarker {
        state: MarkerState::Submitted,
        ..pending
    };
    // The job exists now: a failure from here on must not let anyone submit it again.
    if let Err(err) = put_json(storage, marker, &done).await {
        tracing::error!(marker = %marker, job_id = %job_id, error = %err, "scout job submitted but the request marker could not be marked submitted");
    }
    Ok(Scouted {
        job_id,
        marker: marker.to_owned(),
        samples: estimate.samples,
    })
}

/// The `estimate.json` of a scout just submitted as `job_id`.
fn submitted_estimate(ticket: &JobTicket, job_id: &str) -> EstimateFile {
    let scout = ticket.scout.expect("a scout ticket");
    let frames = ticket.plan.frames();
    EstimateFile {
        schema: ESTIMATE_SCHEMA,
        status: EstimateStatus::Submitted,
        key: ticket.keys.source().to_owned(),
        etag: ticket.source_etag.clone(),
        frames: frames.canonical(),
        samples: sample_frames(frames.as_slice(), usize::from(scout.samples)),
        max_vcpus: scout.max_vcpus,
        job_id: Some(job_id.to_owned()),
        written: Timestamp::now(),
        estimate: None,
    }
}
