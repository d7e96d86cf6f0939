//! The zip job's own task record (`<key>/tasks/zip-<attempt>.json`) and, when the archive is
//! done, the job's receipt (`<key>/receipt.json`), summed from every task record of this job by
//! [`farm_core::receipt::Receipt::compute`], with the scout's estimate against it when
//! `<key>/estimate.json` estimated this version of the upload
//! ([`farm_core::estimate::EstimateCheck`]). Best effort: a failure is logged and never changes
//! the zip job's outcome.

use farm_core::estimate::{EstimateCheck, EstimateFile};
use farm_core::receipt::Receipt;
use farm_core::storage::{get_json, put_json, StorageError};
use farm_core::tasks::{TaskKind, TaskRecord};
use farm_core::Storage;
use jiff::Timestamp;

use crate::{Config, ZipError, ZipSummary};

/// Writes the zip attempt's record and, after a successful archive, the receipt from
/// `records` (every task record at the key, read before the archive: the render job had ended).
pub(crate) async fn finish<S: Storage>(
    storage: &S,
    config: &Config,
    started: Timestamp,
    result: &Result<ZipSummary, ZipError>,
    records: Result<Vec<TaskRecord>, StorageError>,
) {
    let own = TaskRecord {
        task: TaskKind::Zip,
        index: 0,
        attempt: config.attempt,
        source_etag: config.ticket.source_etag.clone(),
        started,
        ended: Timestamp::now(),
        exit_code: match result {
            Ok(_) => farm_core::exit::SUCCESS,
            Err(error) => error.exit_code(),
        },
        error: result.as_ref().err().map(ToString::to_string),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        download_seconds: None,
        blender_startup_seconds: None,
        frames: Vec::new(),
        frame_metadata: None,
    };
    let key = config.ticket.keys.zip_task_record(config.attempt);
    if let Err(error) = put_json(storage, &key, &own).await {
        tracing::warn!(key, %error, "could not write the task record");
    }
    let Ok(summary) = result else { return };
    match records.map(|records| job_records(config, records, own)) {
        Ok(records) => {
            let mut receipt = Receipt::compute(&records, summary.frames, config.prices);
            receipt.estimate = estimate_check(storage, config, &records).await;
            let key = config.ticket.keys.receipt();
            match put_json(storage, &key, &receipt).await {
                Ok(()) => tracing::info!(
                    key,
                    tasks = receipt.tasks,
                    attempts = receipt.attempts,
                    task_seconds = receipt.task_seconds,
                    cost_usd = receipt.cost_usd,
                    "receipt written"
                ),
                Err(error) => tracing::warn!(key, %error, "could not write the receipt"),
            }
        }
        Err(error) => tracing::warn!(%error, "could not read the task records: no receipt"),
    }
}

/// The scout's estimate of this version of the upload against `records`, if `estimate.json`
/// holds one; a missing or unreadable one is no comparison.
async fn estimate_check<S: Storage>(
    storage: &S,
    config: &Config,
    records: &[TaskRecord],
) -> Option<EstimateCheck> {
    let key = config.ticket.keys.estimate();
    let file = match get_json::<EstimateFile>(storage, &key).await {
        Ok(file) => file,
        Err(StorageError::NotFound { .. }) => return None,
        Err(error) => {
            tracing::warn!(key, %error, "could not read the estimate: the receipt has no comparison");
            return None;
        }
    };
    let estimate = file.estimates(config.ticket.source_etag.as_deref())?;
    Some(EstimateCheck::new(estimate, records, config.prices))
}

/// This job's task records among `records` (its upload's ETag), with `own` for this zip
/// attempt (replacing a stored copy).
fn job_records(config: &Config, mut records: Vec<TaskRecord>, own: TaskRecord) -> Vec<TaskRecord> {
    if let Some(etag) = config.ticket.source_etag.as_deref() {
        records.retain(|r| r.source_etag.as_deref() == Some(etag));
    }
    records.retain(|r| !(r.task == TaskKind::Zip && r.attempt == own.attempt));
    records.push(own);
    records
}
