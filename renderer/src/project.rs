//! The job's project brought down before Blender starts: every dependency the trigger's
//! pre-flight check recorded (`FARM_DEPENDENCIES`) is downloaded into the work folder in the
//! bucket's layout, so the `.blend`, placed at its own key there, resolves each relative path
//! as on the artist's machine.
//!
//! Downloads run several at once, each streamed to its file and conditional on the ETag the job
//! is bound to: a dependency replaced or deleted since the check stops the job as superseded.

use std::path::{Path, PathBuf};

use farm_core::deps::{local_relative_path, Dependency};
use farm_core::storage::StorageError;
use farm_core::Storage;
use futures::stream::{self, StreamExt, TryStreamExt};
use tracing::info;

use crate::error::RenderError;

/// Downloads at once.
pub const DOWNLOADS_AT_ONCE: usize = 8;

/// The folder under the work folder that mirrors the bucket.
pub fn project_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("project")
}

/// Where the object `key` lands under `root`.
pub fn local_path(root: &Path, key: &str) -> Result<PathBuf, RenderError> {
    local_relative_path(key)
        .map(|relative| root.join(relative))
        .ok_or_else(|| RenderError::DependencyPath {
            dependency: key.to_owned(),
        })
}

/// Downloads the dependency list at `list_key` into `root`; returns the files and bytes.
pub async fn download_dependencies<S: Storage>(
    storage: &S,
    blend_key: &str,
    list_key: &str,
    root: &Path,
) -> Result<(usize, u64), RenderError> {
    let list = farm_jobs::deps::read_dependency_list(storage, list_key).await?;
    let mut targets = Vec::with_capacity(list.files.len());
    for file in &list.files {
        targets.push((file, local_path(root, &file.key)?));
    }
    let count = targets.len();
    let bytes: u64 = stream::iter(targets)
        .map(|(file, path)| download_one(storage, blend_key, file, path))
        .buffer_unordered(DOWNLOADS_AT_ONCE)
        .try_fold(0u64, |sum, size| async move { Ok(sum + size) })
        .await?;
    info!(files = count, bytes, "dependencies downloaded");
    Ok((count, bytes))
}

async fn download_one<S: Storage>(
    storage: &S,
    blend_key: &str,
    file: &Dependency,
    path: PathBuf,
) -> Result<u64, RenderError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|source| RenderError::WorkDir {
                path: parent.to_owned(),
                source,
            })?;
    }
    match storage.download(&file.key, &path, Some(&file.etag)).await {
        Ok(meta) => Ok(meta.size),
        Err(StorageError::Changed { .. } | StorageError::NotFound { .. }) => {
            Err(RenderError::DependencyChanged {
                key: blend_key.to_owned(),
                dependency: file.key.clone(),
                expected: file.etag.clone(),
            })
        }
        Err(err) => Err(err.into()),
    }
}
