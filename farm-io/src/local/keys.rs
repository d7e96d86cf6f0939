//! The keys a [`super::LocalStorage`] accepts, checked before any path is built, and the names
//! of its partial files.

use farm_core::storage::{StorageError, StorageResult};

use super::{META_DIR, PARTIAL_SUFFIX};

/// Checks that `key` names a file under the root and nothing else.
pub(super) fn validate_key(key: &str) -> StorageResult<()> {
    let invalid = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("it is empty");
    }
    if key.starts_with('/') {
        return invalid("it is absolute");
    }
    check_components(key, key.split('/'))?;
    if key.split('/').next() == Some(META_DIR) {
        return invalid("`.farm-meta` is reserved for metadata");
    }
    Ok(())
}

/// Checks the folder part of a listing prefix (what follows the last `/` is only a filter).
pub(super) fn validate_prefix(prefix: &str) -> StorageResult<()> {
    if prefix.starts_with('/') {
        return Err(StorageError::InvalidKey {
            key: prefix.to_owned(),
            reason: "it is absolute",
        });
    }
    match prefix.rsplit_once('/') {
        Some((folder, _)) => check_components(prefix, folder.split('/')),
        None => check_components(prefix, std::iter::empty()),
    }
}

pub(super) fn check_components<'a>(
    key: &str,
    components: impl IntoIterator<Item = &'a str>,
) -> StorageResult<()> {
    let invalid = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.contains('\\') {
        return invalid("it contains a backslash");
    }
    if key.contains('\0') {
        return invalid("it contains a NUL character");
    }
    for component in components {
        if component.is_empty() || component == "." || component == ".." {
            return invalid("it has an empty, `.` or `..` path component");
        }
        if is_partial_name(component) {
            return invalid("names ending in `.partial` after a leading `.` are reserved");
        }
    }
    Ok(())
}

pub(super) fn is_partial_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX)
}

/// The name a partial file `.<name>.<uuid>.partial` stands for.
pub(super) fn partial_target(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(PARTIAL_SUFFIX)?;
    inner.rsplit_once('.').map(|(target, _uuid)| target)
}
