//! Reading a job's task records (`<key>/tasks/`): the zipper sums them into the receipt, and
//! `farm status` into the cost so far.

use farm_core::storage::StorageResult;
use farm_core::tasks::TaskRecord;
use farm_core::{JobKeys, Storage};

/// The task records under `keys.tasks_prefix()` of the job bound to `source_etag`: a record of
/// another upload of the key is not this job's (with `None`, every record counts). A document
/// that is not a task record is logged and left out.
pub async fn job_records<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    source_etag: Option<&str>,
) -> StorageResult<Vec<TaskRecord>> {
    let mut records = Vec::new();
    for object in storage.list(&keys.tasks_prefix()).await? {
        if !object.key.ends_with(".json") {
            continue;
        }
        let body = storage.get(&object.key).await?;
        match serde_json::from_slice::<TaskRecord>(&body) {
            Ok(record) if source_etag.is_none() || record.source_etag.as_deref() == source_etag => {
                records.push(record);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(key = object.key, %error, "not a task record: left out"),
        }
    }
    Ok(records)
}
