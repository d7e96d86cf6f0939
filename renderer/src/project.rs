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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use farm_core::deps::DependencyList;
    use farm_core::storage::PutOptions;
    use farm_io::LocalStorage;

    async fn put(storage: &LocalStorage, key: &str, body: &str) -> Dependency {
        storage
            .put(key, Bytes::from(body.to_owned()), &PutOptions::default())
            .await
            .unwrap();
        let meta = storage.head(key).await.unwrap().unwrap();
        Dependency {
            key: key.to_owned(),
            kind: "image".into(),
            path: String::new(),
            from: "p/shots/a.blend".into(),
            etag: meta.etag.unwrap(),
            size: meta.size,
        }
    }

    async fn list(storage: &LocalStorage, files: Vec<Dependency>) -> String {
        let key = "p/shots/a.blend/deps/test.json";
        farm_core::storage::put_json(storage, key, &DependencyList { files })
            .await
            .unwrap();
        key.to_owned()
    }

    #[tokio::test]
    async fn dependencies_land_in_the_buckets_layout_at_their_recorded_version() {
        let bucket = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(bucket.path());
        let files = vec![
            put(&storage, "p/shots/tex/wood.png", "wood").await,
            put(&storage, "p/shared/green.png", "green").await,
            put(&storage, "p/lib/props.blend", "library").await,
        ];
        let list_key = list(&storage, files.clone()).await;
        let root = project_dir(work.path());
        let (count, bytes) = download_dependencies(&storage, "p/shots/a.blend", &list_key, &root)
            .await
            .unwrap();
        assert_eq!((count, bytes), (3, 4 + 5 + 7));
        for (path, body) in [
            ("p/shots/tex/wood.png", "wood"),
            ("p/shared/green.png", "green"),
            ("p/lib/props.blend", "library"),
        ] {
            assert_eq!(std::fs::read_to_string(root.join(path)).unwrap(), body);
        }
        // The .blend's place: its relative paths reach the files above.
        assert_eq!(
            local_path(&root, "p/shots/a.blend").unwrap(),
            root.join("p/shots/a.blend")
        );

        // Replaced since the check: the job is superseded.
        put(&storage, "p/shared/green.png", "greener").await;
        let err = download_dependencies(&storage, "p/shots/a.blend", &list_key, &root)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RenderError::DependencyChanged { dependency, .. } if dependency == "p/shared/green.png"),
            "{err}"
        );
        assert_eq!(err.class().exit_code(), farm_core::exit::SUPERSEDED);
        // Deleted since the check: the same.
        storage.delete("p/shared/green.png").await.unwrap();
        let err = download_dependencies(&storage, "p/shots/a.blend", &list_key, &root)
            .await
            .unwrap_err();
        assert_eq!(
            err.class().exit_code(),
            farm_core::exit::SUPERSEDED,
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_key_climbing_out_of_the_work_folder_is_refused_before_any_download() {
        let bucket = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(bucket.path());
        let mut escaping = put(&storage, "p/x.png", "x").await;
        escaping.key = "p/../../outside.png".into();
        let list_key = list(&storage, vec![escaping]).await;
        let err = download_dependencies(
            &storage,
            "p/shots/a.blend",
            &list_key,
            &project_dir(work.path()),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RenderError::DependencyPath { .. }), "{err}");
        assert!(!work.path().join("outside.png").exists());
        assert!(!work.path().parent().unwrap().join("outside.png").exists());
    }
}
