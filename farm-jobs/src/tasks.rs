//! Reading a job's task records (`<key>/tasks/`): the zipper sums them into the receipt, and
//! `farm status` into the cost so far.

use farm_core::storage::StorageResult;
use farm_core::tasks::TaskRecord;
use farm_core::{JobKeys, Storage};
use futures::stream::{self, StreamExt};

/// Task records read at once: a job of 10,000 tasks has at least 10,000 records, and one GET
/// after the other took minutes against S3 (BENCHMARKS.md, "10,000 children").
pub const RECORD_READS_AT_ONCE: usize = 32;

/// The task records under `keys.tasks_prefix()` of the job bound to `source_etag`: a record of
/// another upload of the key is not this job's (with `None`, every record counts). A document
/// that is not a task record is logged and left out. Records are read
/// [`RECORD_READS_AT_ONCE`] at a time and returned in the listing's order.
pub async fn job_records<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    source_etag: Option<&str>,
) -> StorageResult<Vec<TaskRecord>> {
    let listing = storage.list(&keys.tasks_prefix()).await?;
    let mut bodies = stream::iter(listing.iter().filter(|o| o.key.ends_with(".json")))
        .map(|object| async move { Ok((object.key.as_str(), storage.get(&object.key).await?)) })
        .buffered(RECORD_READS_AT_ONCE);
    let mut records = Vec::new();
    while let Some(read) = bodies.next().await {
        let (key, body): (&str, _) = read?;
        match serde_json::from_slice::<TaskRecord>(&body) {
            Ok(record) if source_etag.is_none() || record.source_etag.as_deref() == source_etag => {
                records.push(record);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(key, %error, "not a task record: left out"),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use farm_core::storage::PutOptions;
    use farm_testkit::MemoryStorage;

    /// A task record's document, as the renderer writes it.
    fn record(index: usize, etag: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "task": "render", "index": index, "attempt": 1, "source_etag": etag,
            "started": "2026-12-06T10:00:00Z", "ended": "2026-12-06T10:01:00Z",
            "exit_code": 0, "cpus": 4, "frames": [],
        }))
        .unwrap()
    }

    /// Read many at once, the records still come back in the listing's order, the job's only.
    #[tokio::test]
    async fn records_of_the_job_are_read_in_listing_order() {
        let storage = MemoryStorage::new();
        let keys = JobKeys::new("k.blend");
        let put = |key: String, body: Vec<u8>| {
            let storage = &storage;
            async move {
                storage
                    .put(&key, Bytes::from(body), &PutOptions::default())
                    .await
                    .unwrap()
            }
        };
        let count = RECORD_READS_AT_ONCE * 3 + 5;
        for index in 0..count {
            let etag = if index == 7 { "other" } else { "e1" };
            put(keys.task_record(index, 1), record(index, etag)).await;
        }
        put(format!("{}broken.json", keys.tasks_prefix()), b"{".to_vec()).await;
        put(format!("{}notes.txt", keys.tasks_prefix()), b"x".to_vec()).await;
        let listed: Vec<String> = storage
            .list(&keys.tasks_prefix())
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.ends_with("-1.json"))
            .collect();
        let records = job_records(&storage, &keys, Some("e1")).await.unwrap();
        assert_eq!(records.len(), count - 1);
        let read: Vec<String> = records
            .iter()
            .map(|r| keys.task_record(r.index, 1))
            .collect();
        let expected: Vec<String> = listed
            .into_iter()
            .filter(|k| *k != keys.task_record(7, 1))
            .collect();
        assert_eq!(read, expected);
        assert_eq!(
            job_records(&storage, &keys, None).await.unwrap().len(),
            count
        );
    }
}
