//! The one object lookup: which of many keys a store holds, by listing a folder when several of
//! its keys are wanted and by `HEAD` otherwise (the trigger's dependency check and `farm
//! submit`'s comparison of a project with the bucket).

use std::collections::{BTreeMap, BTreeSet};

use farm_core::storage::{ObjectMeta, StorageError};
use farm_core::Storage;
use futures::stream::{self, StreamExt, TryStreamExt};

/// `HEAD` requests in flight at once.
const HEADS_AT_ONCE: usize = 16;

/// A folder from which more keys than this are wanted is listed instead of `HEAD`-ed per key.
const LIST_ABOVE: usize = 4;

fn folder_of(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The objects at `keys` and every object under `prefixes`, by key; absent keys are left out,
/// and so may be other objects of a folder listed for its wanted keys.
pub async fn look_up<S: Storage>(
    storage: &S,
    keys: &[&str],
    prefixes: &[&str],
) -> Result<BTreeMap<String, ObjectMeta>, StorageError> {
    let mut by_folder: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for key in keys {
        by_folder.entry(folder_of(key)).or_default().insert(key);
    }
    let mut listed: BTreeSet<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
    let mut heads: Vec<&str> = Vec::new();
    for (folder, wanted) in by_folder {
        if wanted.len() > LIST_ABOVE {
            listed.insert(if folder.is_empty() {
                String::new()
            } else {
                format!("{folder}/")
            });
        } else {
            heads.extend(wanted);
        }
    }
    let mut objects = BTreeMap::new();
    for prefix in listed {
        for meta in storage.list(&prefix).await? {
            objects.insert(meta.key.clone(), meta);
        }
    }
    let heads: Vec<&str> = heads
        .into_iter()
        .filter(|k| !objects.contains_key(*k))
        .collect();
    let found: Vec<Option<ObjectMeta>> = stream::iter(heads)
        .map(|key| storage.head(key))
        .buffer_unordered(HEADS_AT_ONCE)
        .try_collect()
        .await?;
    for meta in found.into_iter().flatten() {
        objects.insert(meta.key.clone(), meta);
    }
    Ok(objects)
}
