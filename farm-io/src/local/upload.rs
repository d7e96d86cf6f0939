//! Streaming uploads to a [`LocalStorage`], and the partial file every write goes through.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use farm_core::storage::{PutOptions, StorageError, StorageResult};
use farm_core::StreamUpload;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::*;

/// A streaming upload to a [`LocalStorage`]: a partial file, renamed into place by `finish`,
/// deleted by `abort` or on drop.
#[derive(Debug)]
pub struct LocalUpload {
    pub(super) storage: LocalStorage,
    pub(super) key: String,
    pub(super) options: PutOptions,
    pub(super) partial: Option<PartialFile>,
    pub(super) written: u64,
}

impl LocalUpload {
    /// The partial file, created on first use (an invalid key fails here).
    async fn partial(&mut self) -> StorageResult<&mut PartialFile> {
        if self.partial.is_none() {
            let dest = self.storage.path_of(&self.key)?;
            self.partial = Some(PartialFile::create(&dest).await?);
        }
        self.partial
            .as_mut()
            .ok_or_else(|| StorageError::Permanent {
                operation: "upload",
                key: self.key.clone(),
                message: "the partial file was not created".to_owned(),
            })
    }
}

impl StreamUpload for LocalUpload {
    async fn write(&mut self, data: Bytes) -> StorageResult<()> {
        self.partial().await?.write(&data).await?;
        self.written += data.len() as u64;
        Ok(())
    }

    async fn finish(mut self) -> StorageResult<u64> {
        self.partial().await?;
        let Some(partial) = self.partial.take() else {
            return Ok(0);
        };
        self.storage
            .commit(&self.key, partial, &self.options, Commit::Replace)
            .await?;
        Ok(self.written)
    }

    async fn abort(mut self) -> StorageResult<()> {
        if let Some(partial) = self.partial.take() {
            partial.discard().await;
        }
        Ok(())
    }
}

/// A hidden file a write goes to before it is renamed into place; deleted unless it was.
#[derive(Debug)]
pub(super) struct PartialFile {
    pub(super) path: PathBuf,
    pub(super) file: Option<tokio::fs::File>,
    pub(super) hasher: Sha256,
    pub(super) renamed: bool,
}

impl PartialFile {
    /// Creates the partial file for `dest` in `dest`'s folder, creating the folder if needed.
    pub(super) async fn create(dest: &Path) -> StorageResult<Self> {
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|err| StorageError::io(parent, err))?;
        }
        let path = temp_path_beside(dest);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|err| StorageError::io(&path, err))?;
        Ok(Self {
            path,
            file: Some(file),
            hasher: Sha256::new(),
            renamed: false,
        })
    }

    pub(super) async fn write(&mut self, data: &[u8]) -> StorageResult<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(StorageError::io(
                &self.path,
                std::io::Error::other("write after close"),
            ));
        };
        self.hasher.update(data);
        file.write_all(data)
            .await
            .map_err(|err| StorageError::io(&self.path, err))
    }

    /// Flushes and closes the file; returns its stamp and the content's ETag.
    pub(super) async fn close(&mut self) -> StorageResult<(Stamp, String)> {
        if let Some(mut file) = self.file.take() {
            file.flush()
                .await
                .map_err(|err| StorageError::io(&self.path, err))?;
        }
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|err| StorageError::io(&self.path, err))?;
        let digest = std::mem::take(&mut self.hasher).finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Ok((Stamp::of(&meta), format!("\"{hex}\"")))
    }

    pub(super) async fn rename_to(&mut self, dest: &Path) -> StorageResult<()> {
        tokio::fs::rename(&self.path, dest)
            .await
            .map_err(|err| StorageError::io(dest, err))?;
        self.renamed = true;
        Ok(())
    }

    pub(super) async fn discard(mut self) {
        self.file = None;
        let _ = tokio::fs::remove_file(&self.path).await;
        self.renamed = true;
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.renamed {
            // Closing first matters on platforms that cannot delete open files.
            self.file = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
