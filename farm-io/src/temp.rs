//! Temporary files beside their destination: downloads are renamed into place when whole.

use std::path::{Path, PathBuf};

use farm_core::storage::{StorageError, StorageResult};

/// A hidden temporary file in `dest`'s folder, so the final rename stays on one file system.
pub(crate) fn temp_path_beside(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = format!(".{name}.{}.partial", uuid::Uuid::new_v4());
    match dest.parent() {
        Some(parent) => parent.join(temp),
        None => PathBuf::from(temp),
    }
}

/// A temporary file beside a destination: renamed into place by [`TempFile::persist`], deleted
/// if dropped before (an error, or the future cancelled mid-download).
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    pub(crate) fn beside(dest: &Path) -> Self {
        Self {
            path: temp_path_beside(dest),
            persisted: false,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `dest`, replacing what is there.
    pub(crate) async fn persist(mut self, dest: &Path) -> StorageResult<()> {
        tokio::fs::rename(&self.path, dest)
            .await
            .map_err(|e| StorageError::io(dest, e))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_sit_beside_the_destination() {
        let temp = temp_path_beside(Path::new("/work/scene.blend"));
        assert_eq!(temp.parent(), Some(Path::new("/work")));
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".scene.blend.") && name.ends_with(".partial"),
            "{name}"
        );
    }
}
