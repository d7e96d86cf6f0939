//! [`Storage`] on a local folder: what `farm render` reads and writes.
//!
//! # Layout
//! - An object `a/b c/d.png` is the file `<root>/a/b c/d.png`. Keys are checked before any path
//!   is built: empty keys, absolute keys, `.`/`..`/empty components, backslashes and NUL are
//!   refused with [`StorageError::InvalidKey`], so no key reaches outside the root.
//! - Writes go to a hidden partial file in the destination folder (`.<name>.<uuid>.partial`),
//!   then are renamed over the destination: readers see the old object or the new one, never
//!   half of one. (Atomic, not crash-durable: nothing is fsynced.)
//! - Content type, user metadata, tags and ETag live in a sidecar `<root>/.farm-meta/<key>.json`,
//!   written before the data is renamed into place. The ETag is the quoted first 32 hex digits
//!   of the content's SHA-256, computed while writing. The sidecar records the size and
//!   modification time of the file it describes; when they no longer match (the file was
//!   replaced by something other than this store), the sidecar is ignored: the ETag becomes
//!   `"<size hex>-<mtime hex>"` and the metadata is empty.
//! - Listings skip `.farm-meta` and partial files. A key cannot be both an object and a folder
//!   (`a` and `a/b`), unlike in S3: such a write fails with [`StorageError::Io`].

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::{Bytes, BytesMut};
use farm_core::storage::{
    ByteChunks, Metadata, ObjectMeta, PutOptions, StorageError, StorageResult, Tags,
};
use farm_core::Storage;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::temp::{temp_path_beside, TempFile};

mod keys;
mod upload;
use keys::{is_partial_name, partial_target, validate_key, validate_prefix};
pub use upload::LocalUpload;
use upload::PartialFile;

/// Folder under the root holding the sidecars.
const META_DIR: &str = ".farm-meta";

/// Suffix of the hidden files a write goes to before it is renamed into place.
const PARTIAL_SUFFIX: &str = ".partial";

/// Bytes read at a time when copying a file in.
const COPY_CHUNK: usize = 1024 * 1024;

/// Size of the chunks [`Storage::get_stream`] reads.
const STREAM_CHUNK: usize = 256 * 1024;

/// [`Storage`] on a local folder (see the module documentation for the layout).
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

/// What the sidecar of an object records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sidecar {
    /// Size and modification time of the file this sidecar was written for.
    stamp: Stamp,
    etag: String,
    content_type: Option<String>,
    metadata: Metadata,
    /// Object tags (older sidecars have none).
    #[serde(default)]
    tags: Tags,
}

/// Size and modification time of a file: tells whether a sidecar still describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_secs: u64,
    mtime_nanos: u32,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        Self {
            size: meta.len(),
            mtime_secs: mtime.as_secs(),
            mtime_nanos: mtime.subsec_nanos(),
        }
    }

    /// The ETag of a file without a matching sidecar.
    fn etag(&self) -> String {
        format!(
            "\"{:x}-{:x}{:08x}\"",
            self.size, self.mtime_secs, self.mtime_nanos
        )
    }
}

impl LocalStorage {
    /// Storage rooted at `root`; the folder is created by the first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder holding the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding `key`, after checking the key.
    pub fn path_of(&self, key: &str) -> StorageResult<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn sidecar_path(&self, key: &str) -> PathBuf {
        self.root.join(META_DIR).join(format!("{key}.json"))
    }

    /// The sidecar describing the file whose metadata is `file`: the one on disk if it still
    /// matches the file, else what a file without a sidecar has (an ETag from size and
    /// modification time, nothing else).
    async fn sidecar_of(&self, key: &str, file: &std::fs::Metadata) -> Sidecar {
        let stamp = Stamp::of(file);
        read_sidecar(&self.sidecar_path(key))
            .await
            .filter(|sidecar| sidecar.stamp == stamp)
            .unwrap_or_else(|| Sidecar {
                stamp,
                etag: stamp.etag(),
                content_type: None,
                metadata: Metadata::new(),
                tags: Tags::new(),
            })
    }

    /// The object's description from the open file's metadata and its sidecar.
    async fn object_meta(&self, key: &str, file: &std::fs::Metadata) -> ObjectMeta {
        let sidecar = self.sidecar_of(key, file).await;
        ObjectMeta {
            key: key.to_owned(),
            size: sidecar.stamp.size,
            etag: Some(sidecar.etag),
            metadata: sidecar.metadata,
            version_id: None,
        }
    }

    /// The file's metadata; `None` if there is no object at `key`.
    async fn stat(&self, key: &str) -> StorageResult<Option<std::fs::Metadata>> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta)),
            Ok(_) => Ok(None),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(StorageError::io(path, err)),
        }
    }

    async fn write_sidecar(&self, key: &str, sidecar: &Sidecar) -> StorageResult<()> {
        let path = self.sidecar_path(key);
        let json = serde_json::to_vec_pretty(sidecar).map_err(|source| StorageError::Json {
            key: key.to_owned(),
            source,
        })?;
        let mut partial = PartialFile::create(&path).await?;
        partial.write(&json).await?;
        partial.close().await?;
        partial.rename_to(&path).await
    }

    /// Closes `partial` and makes it the object at `key`: replacing any object there, or only if
    /// there is none (`Ok(None)` then). Returns the ETag of the object written.
    async fn commit(
        &self,
        key: &str,
        mut partial: PartialFile,
        options: &PutOptions,
        mode: Commit,
    ) -> StorageResult<Option<String>> {
        let dest = self.path_of(key)?;
        let (stamp, etag) = partial.close().await?;
        let sidecar = Sidecar {
            stamp,
            etag: etag.clone(),
            content_type: options.content_type.clone(),
            metadata: options.metadata.clone(),
            tags: options.tags.clone(),
        };
        match mode {
            Commit::Replace => {
                self.write_sidecar(key, &sidecar).await?;
                partial.rename_to(&dest).await?;
            }
            Commit::CreateNew => {
                // A hard link fails if the destination exists: the check and the creation are
                // one step. The sidecar follows the link, as an existing object's must survive.
                match tokio::fs::hard_link(&partial.path, &dest).await {
                    Ok(()) => {}
                    Err(err) if err.kind() == ErrorKind::AlreadyExists => return Ok(None),
                    Err(err) => return Err(StorageError::io(&dest, err)),
                }
                self.write_sidecar(key, &sidecar).await?;
            }
        }
        Ok(Some(etag))
    }

    /// Writes `body` as the object at `key`.
    async fn write_bytes(
        &self,
        key: &str,
        body: &[u8],
        options: &PutOptions,
        mode: Commit,
    ) -> StorageResult<bool> {
        let dest = self.path_of(key)?;
        let mut partial = PartialFile::create(&dest).await?;
        partial.write(body).await?;
        let written = self.commit(key, partial, options, mode).await?;
        Ok(written.is_some())
    }

    /// Lists in a blocking task: walking thousands of entries is file system work.
    async fn walk(&self, prefix: &str, want: Want) -> StorageResult<Vec<Found>> {
        validate_prefix(prefix)?;
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let key = prefix.clone();
        tokio::task::spawn_blocking(move || walk_prefix(&root, &prefix, want))
            .await
            .map_err(|err| StorageError::Permanent {
                operation: "list",
                key,
                message: format!("the listing task failed: {err}"),
            })?
    }
}

/// How a write becomes visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    Replace,
    CreateNew,
}

impl Storage for LocalStorage {
    type Upload = LocalUpload;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        match self.stat(key).await? {
            Some(meta) => Ok(Some(self.object_meta(key, &meta).await)),
            None => Ok(None),
        }
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        let path = self.path_of(key)?;
        tokio::fs::read(&path)
            .await
            .map(Bytes::from)
            .map_err(|err| read_error(key, &path, err))
    }

    async fn get_stream(&self, key: &str) -> StorageResult<ByteChunks> {
        let path = self.path_of(key)?;
        let file = open_object(key, &path).await?;
        let key = key.to_owned();
        let chunks = futures::stream::unfold(Some(file), move |file| {
            let (key, path) = (key.clone(), path.clone());
            async move {
                let mut file = file?;
                let mut chunk = BytesMut::with_capacity(STREAM_CHUNK);
                match file.read_buf(&mut chunk).await {
                    Ok(0) => None,
                    Ok(_) => Some((Ok(chunk.freeze()), Some(file))),
                    Err(err) => Some((Err(read_error(&key, &path, err)), None)),
                }
            }
        });
        Ok(Box::pin(chunks))
    }

    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        if_match: Option<&str>,
    ) -> StorageResult<Bytes> {
        let path = self.path_of(key)?;
        let mut file = open_object(key, &path).await?;
        if let Some(expected) = if_match {
            let stat = file
                .metadata()
                .await
                .map_err(|err| StorageError::io(&path, err))?;
            if self.object_meta(key, &stat).await.etag.as_deref() != Some(expected) {
                return Err(StorageError::Changed {
                    key: key.to_owned(),
                    expected: expected.to_owned(),
                });
            }
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|err| read_error(key, &path, err))?;
        let mut body = Vec::new();
        file.take(len)
            .read_to_end(&mut body)
            .await
            .map_err(|err| read_error(key, &path, err))?;
        Ok(Bytes::from(body))
    }

    async fn download(
        &self,
        key: &str,
        dest: &Path,
        if_match: Option<&str>,
    ) -> StorageResult<ObjectMeta> {
        let path = self.path_of(key)?;
        let mut file = open_object(key, &path).await?;
        let stat = file
            .metadata()
            .await
            .map_err(|err| StorageError::io(&path, err))?;
        let meta = self.object_meta(key, &stat).await;
        if let Some(expected) = if_match {
            if meta.etag.as_deref() != Some(expected) {
                return Err(StorageError::Changed {
                    key: key.to_owned(),
                    expected: expected.to_owned(),
                });
            }
        }
        let temp = TempFile::beside(dest);
        copy_to(&mut file, temp.path()).await?;
        temp.persist(dest).await?;
        Ok(meta)
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> StorageResult<()> {
        self.write_bytes(key, &body, options, Commit::Replace)
            .await
            .map(|_| ())
    }

    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> StorageResult<Option<String>> {
        let dest = self.path_of(key)?;
        let mut source = tokio::fs::File::open(path)
            .await
            .map_err(|err| StorageError::io(path, err))?;
        let mut partial = PartialFile::create(&dest).await?;
        loop {
            let mut chunk = BytesMut::with_capacity(COPY_CHUNK);
            let read = source
                .read_buf(&mut chunk)
                .await
                .map_err(|err| StorageError::io(path, err))?;
            if read == 0 {
                break;
            }
            partial.write(&chunk).await?;
        }
        self.commit(key, partial, options, Commit::Replace).await
    }

    async fn create_if_absent(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> StorageResult<bool> {
        self.write_bytes(key, &body, options, Commit::CreateNew)
            .await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let found = self.walk(prefix, Want::Objects).await?;
        let mut objects = Vec::with_capacity(found.len());
        for Found { key, meta } in found {
            let mut object = self.object_meta(&key, &meta).await;
            object.metadata = Metadata::new();
            objects.push(object);
        }
        Ok(objects)
    }

    async fn get_tags(&self, key: &str, _version_id: Option<&str>) -> StorageResult<Option<Tags>> {
        match self.stat(key).await? {
            Some(meta) => Ok(Some(self.sidecar_of(key, &meta).await.tags)),
            None => Ok(None),
        }
    }

    /// Rewrites the sidecar with the new tags. Not atomic with a concurrent write of the same
    /// key: the farm tags only uploads it has finished.
    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> StorageResult<()> {
        let Some(meta) = self.stat(key).await? else {
            return Err(StorageError::NotFound {
                key: key.to_owned(),
            });
        };
        let sidecar = Sidecar {
            tags: tags.to_vec(),
            ..self.sidecar_of(key, &meta).await
        };
        self.write_sidecar(key, &sidecar).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(err) if is_missing(&err) => {}
            Err(err) => return Err(StorageError::io(path, err)),
        }
        let sidecar = self.sidecar_path(key);
        match tokio::fs::remove_file(&sidecar).await {
            Ok(()) => {}
            Err(err) if is_missing(&err) => {}
            Err(err) => return Err(StorageError::io(sidecar, err)),
        }
        prune_empty_folders(&path, &self.root).await;
        prune_empty_folders(&sidecar, &self.root.join(META_DIR)).await;
        Ok(())
    }

    fn start_upload(&self, key: &str, options: PutOptions) -> LocalUpload {
        LocalUpload {
            storage: self.clone(),
            key: key.to_owned(),
            options,
            partial: None,
            written: 0,
        }
    }

    async fn open_uploads(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let found = self.walk(prefix, Want::Partials).await?;
        let mut keys: Vec<String> = found.into_iter().map(|f| f.key).collect();
        keys.dedup();
        Ok(keys)
    }
}

/// What a walk collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Objects,
    Partials,
}

/// One file found by a walk: its key (the target key for a partial file).
#[derive(Debug)]
struct Found {
    key: String,
    meta: std::fs::Metadata,
}

/// Every object (or partial file) whose key starts with `prefix`, in key order.
fn walk_prefix(root: &Path, prefix: &str, want: Want) -> StorageResult<Vec<Found>> {
    let start = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
    let mut found = Vec::new();
    let mut folders = vec![start.to_owned()];
    while let Some(folder) = folders.pop() {
        let dir = if folder.is_empty() {
            root.to_owned()
        } else {
            root.join(&folder)
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if is_missing(&err) => continue,
            Err(err) => return Err(StorageError::io(dir, err)),
        };
        for entry in entries {
            let entry = entry.map_err(|err| StorageError::io(&dir, err))?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(path = %entry.path().display(), "skipping a file name that is not UTF-8");
                continue;
            };
            let key = if folder.is_empty() {
                name.clone()
            } else {
                format!("{folder}/{name}")
            };
            if key == META_DIR {
                continue;
            }
            let meta = match std::fs::metadata(entry.path()) {
                Ok(meta) => meta,
                // Renamed or deleted since read_dir saw it.
                Err(err) if is_missing(&err) => continue,
                Err(err) => return Err(StorageError::io(entry.path(), err)),
            };
            if meta.is_dir() {
                // Only folders that can hold keys under the prefix.
                let folder_prefix = format!("{key}/");
                if folder_prefix.starts_with(prefix) || prefix.starts_with(&folder_prefix) {
                    folders.push(key);
                }
                continue;
            }
            let key = match (want, partial_target(&name)) {
                (Want::Objects, _) if !is_partial_name(&name) => key,
                (Want::Partials, Some(target)) => {
                    if folder.is_empty() {
                        target.to_owned()
                    } else {
                        format!("{folder}/{target}")
                    }
                }
                _ => continue,
            };
            if key.starts_with(prefix) {
                found.push(Found { key, meta });
            }
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(found)
}

async fn open_object(key: &str, path: &Path) -> StorageResult<tokio::fs::File> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|err| read_error(key, path, err))?;
    let meta = file
        .metadata()
        .await
        .map_err(|err| StorageError::io(path, err))?;
    if meta.is_dir() {
        return Err(StorageError::NotFound {
            key: key.to_owned(),
        });
    }
    Ok(file)
}

async fn copy_to(source: &mut tokio::fs::File, dest: &Path) -> StorageResult<()> {
    let mut out = tokio::fs::File::create(dest)
        .await
        .map_err(|err| StorageError::io(dest, err))?;
    tokio::io::copy(source, &mut out)
        .await
        .map_err(|err| StorageError::io(dest, err))?;
    out.flush().await.map_err(|err| StorageError::io(dest, err))
}

/// Removes the folders between `path` and `stop` that became empty (best effort: S3 has no
/// folders, and an empty one left behind would only clutter the tree).
async fn prune_empty_folders(path: &Path, stop: &Path) {
    let mut current = path.parent();
    while let Some(folder) = current {
        if folder == stop || !folder.starts_with(stop) {
            break;
        }
        if tokio::fs::remove_dir(folder).await.is_err() {
            break;
        }
        current = folder.parent();
    }
}

async fn read_sidecar(path: &Path) -> Option<Sidecar> {
    let bytes = tokio::fs::read(path).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn is_missing(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

fn read_error(key: &str, path: &Path, err: std::io::Error) -> StorageError {
    if is_missing(&err) || err.kind() == ErrorKind::IsADirectory {
        StorageError::NotFound {
            key: key.to_owned(),
        }
    } else {
        StorageError::io(path, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_leave_the_root_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            ".farm-meta/x.json",
            "a/.b.1234.partial",
        ] {
            assert!(
                matches!(validate_key(key), Err(StorageError::InvalidKey { .. })),
                "{key:?} should be refused"
            );
        }
        for key in ["a", "a/b c/ünï.png", ".hidden", "a/..b", "frames/0001.png"] {
            assert!(validate_key(key).is_ok(), "{key:?} should be accepted");
        }
    }

    #[test]
    fn prefixes_are_checked_up_to_the_last_slash() {
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("fr").is_ok());
        assert!(validate_prefix("a/b/..").is_ok(), "the tail only filters");
        assert!(validate_prefix("../").is_err());
        assert!(validate_prefix("/a").is_err());
        assert!(validate_prefix("a//b").is_err());
    }

    #[test]
    fn partial_names_give_back_their_target() {
        assert_eq!(
            partial_target(".0001.png.3f0e4c1a-0000-4000-8000-000000000000.partial"),
            Some("0001.png")
        );
        assert_eq!(partial_target("0001.png"), None);
    }
}
