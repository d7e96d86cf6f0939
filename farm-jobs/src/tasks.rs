//! Reading a job's task records (`<key>/tasks/`): the zipper sums them into the receipt, and
//! `farm status` into the cost so far.

use std::collections::HashMap;

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
    let mut cache = RecordCache::default();
    let listed = read_new(storage, keys, &mut cache).await?;
    // Moved out of the cache, not copied: each record is held once (10,000 of them in the
    // zipper, BENCHMARKS.md "10,000 children").
    Ok(listed
        .iter()
        .filter_map(|id| cache.read.remove(id)?)
        .filter(|r| of_upload(r, source_etag))
        .collect())
}

/// Task records read before, by key and ETag. Each attempt writes its record once, so a
/// caller that reads a job's records again and again (`farm status --watch`) lists them and
/// GETs only the ones it has not read: a record rewritten since (another upload's job at the
/// same key) has another ETag and is read again.
#[derive(Debug, Default)]
pub struct RecordCache {
    read: HashMap<(String, Option<String>), Option<TaskRecord>>,
}

/// [`job_records`], reading only what `cache` does not hold yet (and keeping it there).
pub async fn job_records_cached<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    source_etag: Option<&str>,
    cache: &mut RecordCache,
) -> StorageResult<Vec<TaskRecord>> {
    let listed = read_new(storage, keys, cache).await?;
    Ok(listed
        .iter()
        .filter_map(|id| cache.read.get(id)?.clone())
        .filter(|r| of_upload(r, source_etag))
        .collect())
}

/// Whether `record` is of the job bound to `source_etag` (with `None`, every record is).
pub(crate) fn of_upload(record: &TaskRecord, source_etag: Option<&str>) -> bool {
    source_etag.is_none() || record.source_etag.as_deref() == source_etag
}

/// Lists the records (key and ETag, in the listing's order) and reads into `cache` the ones it
/// does not hold yet.
async fn read_new<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    cache: &mut RecordCache,
) -> StorageResult<Vec<(String, Option<String>)>> {
    let listing = storage.list(&keys.tasks_prefix()).await?;
    let listed: Vec<(String, Option<String>)> = listing
        .into_iter()
        .filter(|o| o.key.ends_with(".json"))
        .map(|o| (o.key, o.etag))
        .collect();
    let unread: Vec<&(String, Option<String>)> = listed
        .iter()
        .filter(|k| !cache.read.contains_key(*k))
        .collect();
    let mut bodies = stream::iter(unread)
        .map(|id| async move { Ok((id, storage.get(&id.0).await?)) })
        .buffered(RECORD_READS_AT_ONCE);
    while let Some(read) = bodies.next().await {
        let (id, body): (&(String, Option<String>), _) = read?;
        let record = serde_json::from_slice::<TaskRecord>(&body)
            .inspect_err(|error| tracing::warn!(key = id.0, %error, "not a task record: left out"))
            .ok();
        cache.read.insert(id.clone(), record);
    }
    drop(bodies);
    Ok(listed)
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
        // The zip and movie jobs' records are in the same folder, read the same way.
        let mut movie: serde_json::Value = serde_json::from_slice(&record(0, "e1")).unwrap();
        movie["task"] = "movie".into();
        put(
            keys.movie_task_record(1),
            serde_json::to_vec(&movie).unwrap(),
        )
        .await;
        let records = job_records(&storage, &keys, Some("e1")).await.unwrap();
        assert_eq!(records.len(), count);
        assert!(records
            .iter()
            .any(|r| r.task == farm_core::tasks::TaskKind::Movie));
    }

    /// A second reading GETs only the records written since, and sees a rewritten one anew.
    #[tokio::test]
    async fn a_cache_reads_only_new_or_rewritten_records() {
        use farm_testkit::{Faulty, Op};
        let storage = Faulty::new(MemoryStorage::new());
        let keys = JobKeys::new("k.blend");
        let put = |index: usize, etag: &'static str| {
            let storage = &storage;
            let key = keys.task_record(index, 1);
            async move {
                storage
                    .put(
                        &key,
                        Bytes::from(record(index, etag)),
                        &PutOptions::default(),
                    )
                    .await
                    .unwrap()
            }
        };
        for index in 0..5 {
            put(index, "e1").await;
        }
        let mut cache = RecordCache::default();
        let first = job_records_cached(&storage, &keys, Some("e1"), &mut cache).await;
        assert_eq!(first.unwrap().len(), 5);
        put(5, "e1").await;
        put(0, "e2").await;
        let gets = || storage.calls().iter().filter(|c| c.op == Op::Get).count();
        let before = gets();
        let second = job_records_cached(&storage, &keys, Some("e1"), &mut cache)
            .await
            .unwrap();
        assert_eq!(gets() - before, 2, "the new and the rewritten");
        let indexes: Vec<usize> = second.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [1, 2, 3, 4, 5]);
    }
}
