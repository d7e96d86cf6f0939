//! How bucket keys map onto this machine's folders for `farm submit`'s plan.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use farm_core::deps::{local_relative_path, resolve};

/// How bucket keys map onto this machine's folders for one `.blend` and its key.
///
/// The check runs over a [`LocalStorage`] rooted `n` folders above the .blend, `n` being the
/// number of folders in its key, so the local key has the key's depth: resolving a relative
/// path climbs above the root exactly where the trigger's would. A local key maps to the bucket
/// by position (its first folders shared with the .blend's are the key's folders).
#[derive(Debug)]
pub(super) struct Mirror {
    pub(super) root: PathBuf,
    /// The .blend's key under `root`.
    pub(super) local_key: String,
    /// The bucket key's segments.
    key: Vec<String>,
    /// The .blend's local folders under `root`, and the key's folders they stand for.
    local_folders: Vec<String>,
    key_prefix: usize,
}

impl Mirror {
    pub(super) fn new(absolute: &Path, key: &str) -> anyhow::Result<Self> {
        let segments: Vec<String> = key
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(str::to_owned)
            .collect();
        if segments.iter().any(|s| s == "..") || segments.is_empty() {
            bail!("key `{key}` must name a file without `..`: the trigger reads paths from the .blend's key");
        }
        let parent = absolute
            .parent()
            .ok_or_else(|| anyhow!("{} has no folder", absolute.display()))?;
        let available = parent
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .count();
        let depth = available.min(segments.len() - 1);
        let root = parent.ancestors().nth(depth).unwrap_or(parent).to_owned();
        let local_key = absolute
            .strip_prefix(&root)
            .ok()
            .and_then(Path::to_str)
            .map(|k| k.replace('\\', "/"))
            .ok_or_else(|| {
                anyhow!(
                    "{} is not a path the farm can read (not UTF-8)",
                    absolute.display()
                )
            })?;
        let local_folders: Vec<String> = local_key
            .split('/')
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, folders)| folders.to_vec())
            .unwrap_or_default();
        Ok(Self {
            root,
            local_key,
            key_prefix: segments.len() - 1 - local_folders.len(),
            key: segments,
            local_folders,
        })
    }

    /// The bucket key of a key under the local root.
    pub(super) fn key_of(&self, local: &str) -> String {
        if local == self.local_key {
            // The .blend itself, whatever name --key gives it.
            return self.key.join("/");
        }
        let segments: Vec<&str> = local.split('/').collect();
        let folders = &segments[..segments.len().saturating_sub(1)];
        let shared = folders
            .iter()
            .zip(&self.local_folders)
            .take_while(|(a, b)| **a == b.as_str())
            .count();
        let mut key: Vec<&str> = self.key[..self.key_prefix + shared]
            .iter()
            .map(String::as_str)
            .collect();
        key.extend(&segments[shared..]);
        key.join("/")
    }

    /// The bucket key of `local`, the file `path` (stored in `from`) resolves to here, checked
    /// to be where the trigger resolves `path` from `from`'s own key. The two differ only when
    /// `--key` renames a folder the path climbs through (`//../shots/x.png` with the local
    /// `shots` uploaded as another name).
    pub(super) fn commuting_key(
        &self,
        from: &str,
        path: &str,
        local: &str,
    ) -> anyhow::Result<String> {
        let key = self.key_of(local);
        let Ok(pattern_here) = resolve(from, path) else {
            return Ok(key);
        };
        match resolve(&self.key_of(from), path) {
            Ok(there) if there == self.key_of(&pattern_here) => Ok(key),
            _ => bail!(
                "`{path}` (in {}) climbs through a folder --key renames, so the trigger would look for it elsewhere than it is uploaded: keep the folders' names in --key (e.g. --key {})",
                self.local_path(from)?.display(),
                self.suggested_key(from, path)
            ),
        }
    }

    pub(super) fn local_path(&self, local: &str) -> anyhow::Result<PathBuf> {
        local_relative_path(local)
            .map(|relative| self.root.join(relative))
            .ok_or_else(|| anyhow!("`{local}` climbs above {}", self.root.display()))
    }

    /// A key keeping as many of the .blend's folder names as `path` (stored in `from`) climbs.
    pub(super) fn suggested_key(&self, from: &str, path: &str) -> String {
        let from_depth = from.split('/').count().saturating_sub(1);
        let mut depth = from_depth as i64;
        let mut lowest = depth;
        for part in path.trim_start_matches("//").replace('\\', "/").split('/') {
            match part {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            lowest = lowest.min(depth);
        }
        let climb = usize::try_from(-lowest.min(0)).unwrap_or(0);
        let absolute = self.root.join(&self.local_key);
        let names: Vec<String> = absolute
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let keep = (self.key.len() + climb).min(names.len());
        names[names.len() - keep..].join("/")
    }
}
