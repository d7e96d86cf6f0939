//! Frame lists too long for a job's environment travel by reference.

use bytes::Bytes;
use farm_core::scheduler::{JobSpec, FRAMES_INLINE_MAX, FRAMES_REF_PREFIX};
use farm_core::storage::{PutOptions, StorageError};
use farm_core::{JobKeys, Storage};

/// Writes the job's frame list to the bucket and makes `FARM_FRAMES` name it when it is longer
/// than [`FRAMES_INLINE_MAX`]. The object is named by its content, so it never changes under a
/// job that reads it.
pub async fn pass_long_frames<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    spec: &mut JobSpec,
) -> Result<(), StorageError> {
    let Some(frames) = spec.frames_value().map(str::to_owned) else {
        return Ok(());
    };
    if frames.len() <= FRAMES_INLINE_MAX {
        return Ok(());
    }
    let key = keys.frame_list(&frames);
    storage
        .put(
            &key,
            Bytes::from(frames),
            &PutOptions::content_type("text/plain; charset=utf-8"),
        )
        .await?;
    spec.frames_by_reference(&key);
    Ok(())
}

/// The frame list a `FARM_FRAMES` value stands for: the value itself, or the text of the object
/// an `@<key>` value names.
pub async fn resolve_frames<S: Storage>(storage: &S, value: &str) -> Result<String, StorageError> {
    let Some(key) = value.strip_prefix(FRAMES_REF_PREFIX) else {
        return Ok(value.to_owned());
    };
    let body = storage.get(key).await?;
    String::from_utf8(body.to_vec()).map_err(|_| StorageError::Permanent {
        operation: "GetObject",
        key: key.to_owned(),
        message: "the frame list is not UTF-8 text".to_owned(),
    })
}
