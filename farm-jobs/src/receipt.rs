//! Writing a job's receipt, `<key>/receipt.json`: every task record of the job's version summed
//! by [`Receipt::compute`], with the scout's estimate against it when `<key>/estimate.json`
//! estimated this version of the upload ([`EstimateCheck`]). The zip job writes it when the
//! archive is done; a movie scene's movie job, which runs after the zip job, writes it again
//! when it ends (with its own attempt, and its movie once made), so the receipt of a movie job
//! counts it too. Both go through [`write`]: one reading of the records, one formula.

use farm_core::estimate::{EstimateCheck, EstimateFile};
use farm_core::receipt::{MovieObject, Prices, Receipt};
use farm_core::storage::{get_json, put_json, StorageError, StorageResult};
use farm_core::tasks::TaskRecord;
use farm_core::Storage;

use crate::JobTicket;

/// Writes the receipt of `ticket`'s job, which delivered `frames` frames, from the job's task
/// records with `own` (the writer's own attempt, which replaces its stored copy, if any),
/// naming `movie`; returns it. `at_key`: every task record at the job's key when the caller
/// has just read them (the zipper, for its frame scan), so they are not read twice; `None`
/// reads them.
pub async fn write<S: Storage>(
    storage: &S,
    ticket: &JobTicket,
    own: TaskRecord,
    frames: usize,
    prices: Option<Prices>,
    movie: Option<MovieObject>,
    at_key: Option<Vec<TaskRecord>>,
) -> StorageResult<Receipt> {
    let etag = ticket.source_etag.as_deref();
    let mut records = match at_key {
        Some(mut records) => {
            records.retain(|r| crate::tasks::of_upload(r, etag));
            records
        }
        None => crate::tasks::job_records(storage, &ticket.keys, etag).await?,
    };
    records.retain(|r| (r.task, r.index, r.attempt) != (own.task, own.index, own.attempt));
    records.push(own);
    let mut receipt = Receipt::compute(&records, frames, prices);
    receipt.estimate = estimate_check(storage, ticket, &records, prices).await;
    receipt.movie = movie;
    put_json(storage, &ticket.keys.receipt(), &receipt).await?;
    Ok(receipt)
}

/// The job's receipt as last written; `None` when there is none yet.
pub async fn read<S: Storage>(storage: &S, ticket: &JobTicket) -> StorageResult<Option<Receipt>> {
    match get_json::<Receipt>(storage, &ticket.keys.receipt()).await {
        Ok(receipt) => Ok(Some(receipt)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The scout's estimate of this version of the upload against `records`, if `estimate.json`
/// holds one; a missing or unreadable one is no comparison.
async fn estimate_check<S: Storage>(
    storage: &S,
    ticket: &JobTicket,
    records: &[TaskRecord],
    prices: Option<Prices>,
) -> Option<EstimateCheck> {
    let key = ticket.keys.estimate();
    let file = match get_json::<EstimateFile>(storage, &key).await {
        Ok(file) => file,
        Err(StorageError::NotFound { .. }) => return None,
        Err(error) => {
            tracing::warn!(key, %error, "could not read the estimate: the receipt has no comparison");
            return None;
        }
    };
    let estimate = file.estimates(ticket.source_etag.as_deref())?;
    Some(EstimateCheck::new(estimate, records, prices))
}
