//! `farm submit`'s project upload: which files the bucket already holds, and sending the rest
//! through the storage port, several at once, under one progress bar.
//!
//! A file is already there when the object at its key has its size and an ETag its bytes give
//! (`farm_io::etag`: the MD5 of a one-request upload, or of the parts of a multipart one as the
//! farm or the AWS CLI splits them). So a project synced with `aws s3 sync` is not sent again,
//! and an object the check cannot vouch for (SSE-KMS, another tool's part size) is sent again
//! rather than wrongly kept. Objects are looked up by listing a folder when several files are
//! wanted from it and by HEAD otherwise: the trigger's own lookup, `farm_jobs::lookup`.

use std::path::Path;

use bytes::BytesMut;
use farm_core::storage::{ObjectMeta, PutOptions, StorageError};
use farm_core::{Storage, StreamUpload};
use farm_io::UploadTuning;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::AsyncReadExt;

use crate::project::ProjectFile;

/// Files hashed at once (each reads its file once).
const HASHES_AT_ONCE: usize = 2;
/// Files uploading at once; each sends its parts `UploadTuning::parts_in_flight` at a time.
pub const FILES_AT_ONCE: usize = 4;
/// How much of a file is read at a time.
const READ_CHUNK: usize = 1024 * 1024;

/// A failure of the project upload.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{doing}: {source}")]
    Storage {
        doing: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl UploadError {
    /// The storage failure, if that is what this is.
    pub fn storage(&self) -> Option<(&str, &StorageError)> {
        match self {
            Self::Storage { doing, source } => Some((doing, source)),
            Self::Read { .. } => None,
        }
    }
}

/// Whether the object `remote` already holds the bytes of the local file.
pub async fn holds(
    remote: Option<&ObjectMeta>,
    local: &Path,
    size: u64,
    tuning: UploadTuning,
) -> Result<bool, UploadError> {
    let Some(remote) = remote else {
        return Ok(false);
    };
    let Some(etag) = remote.etag.clone() else {
        return Ok(false);
    };
    if remote.size != size {
        return Ok(false);
    }
    let path = local.to_owned();
    tokio::task::spawn_blocking(move || farm_io::etag::file_matches_etag(&path, &etag, &tuning))
        .await
        .map_err(|e| UploadError::Read {
            path: local.to_owned(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| UploadError::Read {
            path: local.to_owned(),
            source,
        })
}

/// The files the bucket does not hold yet, in the order given.
pub async fn to_send<S: Storage>(
    storage: &S,
    files: &[ProjectFile],
    tuning: UploadTuning,
) -> Result<Vec<ProjectFile>, UploadError> {
    let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
    let objects = farm_jobs::lookup::look_up(storage, &keys, &[])
        .await
        .map_err(|source| UploadError::Storage {
            doing: "looking up the project's files in the bucket".to_owned(),
            source,
        })?;
    let held: Vec<bool> = stream::iter(files)
        .map(|file| holds(objects.get(&file.key), &file.local, file.size, tuning))
        .buffered(HASHES_AT_ONCE)
        .try_collect()
        .await?;
    Ok(files
        .iter()
        .zip(held)
        .filter(|(_, held)| !held)
        .map(|(file, _)| file.clone())
        .collect())
}

/// Uploads each file to its key, [`FILES_AT_ONCE`] at a time, adding the bytes read to `bar`.
/// A failure stops the rest; every upload not finished is aborted (nothing half-written).
pub async fn send_all<S: Storage>(
    storage: &S,
    files: &[ProjectFile],
    bar: &indicatif::ProgressBar,
) -> Result<(), UploadError> {
    stream::iter(files)
        .map(|file| send_file(storage, file, PutOptions::default(), bar))
        .buffer_unordered(FILES_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Uploads one file through a streaming upload, a mebibyte at a time (one request while small,
/// in parts past one part); aborted on any failure.
pub async fn send_file<S: Storage>(
    storage: &S,
    file: &ProjectFile,
    options: PutOptions,
    bar: &indicatif::ProgressBar,
) -> Result<(), UploadError> {
    let failed = |source| UploadError::Storage {
        doing: format!("uploading {} to `{}`", file.local.display(), file.key),
        source,
    };
    let read_error = |source| UploadError::Read {
        path: file.local.clone(),
        source,
    };
    let mut reader = tokio::fs::File::open(&file.local)
        .await
        .map_err(read_error)?;
    let mut upload = storage.start_upload(&file.key, options);
    loop {
        let mut chunk = BytesMut::with_capacity(READ_CHUNK);
        let read = match reader.read_buf(&mut chunk).await {
            Ok(read) => read,
            Err(err) => {
                // The read error is the one worth reporting; the abort is best effort.
                let _ = upload.abort().await;
                return Err(read_error(err));
            }
        };
        if read == 0 {
            break;
        }
        // A failed write has aborted the upload already.
        upload.write(chunk.freeze()).await.map_err(failed)?;
        bar.inc(read as u64);
    }
    upload.finish().await.map_err(failed)?;
    Ok(())
}
