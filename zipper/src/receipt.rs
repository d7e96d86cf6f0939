//! The zip job's own task record (`<key>/tasks/zip-<attempt>.json`) and, when the archive is
//! done, the job's receipt (`<key>/receipt.json`, [`farm_jobs::receipt::write`]). Best effort:
//! a failure is logged and never changes the zip job's outcome.

use farm_core::storage::put_json;
use farm_core::tasks::{TaskKind, TaskRecord};
use farm_core::Storage;
use jiff::Timestamp;

use crate::{Config, ZipError, ZipSummary};

/// Writes the zip attempt's record and, after a successful archive, the receipt, from
/// `records` (every task record at the key, read for the frame scan; `None` when that read
/// failed: the receipt reads them again).
pub(crate) async fn finish<S: Storage>(
    storage: &S,
    config: &Config,
    started: Timestamp,
    result: &Result<ZipSummary, ZipError>,
    records: Option<Vec<TaskRecord>>,
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
    let written = farm_jobs::receipt::write(
        storage,
        &config.ticket,
        own,
        summary.frames,
        config.prices,
        None,
        records,
    )
    .await;
    match written {
        Ok(receipt) => tracing::info!(
            key = config.ticket.keys.receipt(),
            tasks = receipt.tasks,
            attempts = receipt.attempts,
            task_seconds = receipt.task_seconds,
            cost_usd = receipt.cost_usd,
            "receipt written"
        ),
        Err(error) => tracing::warn!(%error, "could not write the receipt"),
    }
}
