//! A project's dependencies: where the files a `.blend` loads live in the bucket, and what a job
//! records of them.
//!
//! The bucket mirrors the artist's project folder. A path Blender stores relative to the
//! `.blend` (`//tex/wood.png`) resolves against the `.blend`'s key: `//tex/wood.png` in
//! `proj/shots/a.blend` is `proj/shots/tex/wood.png`, `//../assets/x.png` is
//! `proj/assets/x.png`. Nothing resolves above the bucket's root, and an absolute path
//! (`/home/me/x.png`, `C:\tex\x.png`, `\\server\share\x.png`) cannot be found on a farm at all:
//! it is refused with [`ABSOLUTE_HINT`].
//!
//! Blender's own numbering rules decide which files a `<UDIM>` set ([`tile_keys`]) and an image
//! sequence ([`SequencePattern`], [`image_user_frame`]) stand for.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

mod scope;
mod url;
mod written;

pub use scope::{out_of_scope, PrefixError, SharedPrefixes};
pub use url::url_scheme;
pub use written::written_folder;

/// Tag that renders even when dependencies are missing (`missing=ok`); they are listed as
/// warnings in `job.json`.
pub const TAG_MISSING: &str = "missing";

/// The [`TAG_MISSING`] value that renders anyway.
pub const MISSING_OK: &str = "ok";

/// What to do about a path the farm cannot find.
pub const ABSOLUTE_HINT: &str = "in Blender use File > External Data > Make Paths Relative (or File > External Data > Pack Resources), save, and upload the project folder again";

/// Whether the tags say to render with missing dependencies (`missing=ok`).
pub fn allows_missing<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    tags.into_iter()
        .any(|(k, v)| k.trim() == TAG_MISSING && v.trim().eq_ignore_ascii_case(MISSING_OK))
}

/// Why a stored path names no key of the bucket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// An absolute path (or one relative to Blender's working folder): it names a file on the
    /// artist's machine.
    #[error("`{path}` is an absolute path, which only exists on the machine that saved the file: {ABSOLUTE_HINT}")]
    Absolute { path: String },
    /// A relative path climbing above the bucket's root.
    #[error("`{path}` climbs above the top of the bucket from `{from}`: upload the project from a folder that holds every file it uses")]
    AboveRoot { path: String, from: String },
    /// Nothing left once resolved (`//`, `//.`).
    #[error("`{path}` names no file")]
    Empty { path: String },
    /// A URL (any FFmpeg protocol, [`url_scheme`]): Blender would reach the network for it.
    #[error("`{path}` is a `{scheme}:` URL, which Blender would fetch over the network, and a render never reaches the network: download the file into the project and use a relative path")]
    Url { path: String, scheme: String },
    /// A cache folder Blender writes while rendering ([`written_folder`]) outside the .blend's
    /// own folder, or with a name Blender would put into Python.
    #[error("`{path}` is a cache folder Blender writes and clears while it renders, and a render writes only inside its job's folder, but {reason}: bake the cache (Physics > Cache > Bake, or the fluid domain's Bake), or set its folder inside the .blend's folder (`//cache/`), and save the file")]
    Written { path: String, reason: &'static str },
    /// A file outside the upload's own top-level folder and the shared prefixes
    /// ([`out_of_scope`]): another uploader's.
    #[error("`{key}` is outside what this upload may use: {rule}; move the file there or ask for its prefix to be shared (the stack's SharedPrefixes)")]
    OutOfScope { key: String, rule: String },
}

impl PathError {
    /// Whether the path is refused outright, never rendered without it (`missing=ok` included).
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            Self::Url { .. } | Self::Written { .. } | Self::OutOfScope { .. }
        )
    }
}

/// The key a path stored in the `.blend` at `blend_key` names. Backslashes (paths saved on
/// Windows) separate folders like slashes.
pub fn resolve(blend_key: &str, path: &str) -> Result<String, PathError> {
    if let Some(scheme) = url_scheme(path) {
        return Err(PathError::Url {
            path: path.to_owned(),
            scheme: scheme.to_owned(),
        });
    }
    let absolute = || PathError::Absolute {
        path: path.to_owned(),
    };
    // `\\server\share` is a Windows network path; after the backslash swap it would look like
    // Blender's `//`.
    if path.starts_with("\\\\") {
        return Err(absolute());
    }
    let unified = path.replace('\\', "/");
    let Some(relative) = unified.strip_prefix("//") else {
        // `/x`, `C:/x`, or `x` (relative to Blender's working folder, not to the file).
        return Err(absolute());
    };
    let mut segments: Vec<&str> = parent_segments(blend_key);
    push_segments(&mut segments, relative).map_err(|()| PathError::AboveRoot {
        path: path.to_owned(),
        from: blend_key.to_owned(),
    })?;
    if segments.is_empty() || unified.ends_with('/') {
        return Err(PathError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(segments.join("/"))
}

/// The key's folders, as [`resolve`] sees them: no empty or `.` segments, `..` applied.
fn parent_segments(key: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    let parent = key.rsplit_once('/').map_or("", |(dir, _)| dir);
    // A key climbing above the root is resolved as if from the root.
    let _ = push_segments(&mut segments, parent);
    segments
}

fn push_segments<'a>(segments: &mut Vec<&'a str>, path: &'a str) -> Result<(), ()> {
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(())?;
            }
            part => segments.push(part),
        }
    }
    Ok(())
}

/// Where a key lands under a local folder that mirrors the bucket: its segments with `.` and
/// empty ones dropped and `..` applied; `None` for a key that climbs above the root.
pub fn local_relative_path(key: &str) -> Option<std::path::PathBuf> {
    let mut segments = Vec::new();
    push_segments(&mut segments, key).ok()?;
    if segments.is_empty() {
        return None;
    }
    Some(segments.iter().collect())
}

/// The token of a UDIM set's path that stands for the tile number (`1001`, `1002`...).
pub const UDIM_TOKEN: &str = "<UDIM>";
/// The token standing for the tile as `u<U>_v<V>` (Mudbox's naming): tile 1001 is `u1_v1`.
pub const UVTILE_TOKEN: &str = "<UVTILE>";

/// Whether a path is a tiled image's (it holds `<UDIM>` or `<UVTILE>`).
pub fn is_tiled(path: &str) -> bool {
    path.contains(UDIM_TOKEN) || path.contains(UVTILE_TOKEN)
}

/// The name of one tile of a UDIM set: `<UDIM>` becomes the tile number, `<UVTILE>`
/// `u<column + 1>_v<row + 1>` (tile 1001 is `u1_v1`, 1012 is `u2_v2`).
pub fn tile_key(key: &str, tile: i32) -> String {
    let index = tile - 1001;
    let uv = format!(
        "u{}_v{}",
        index.rem_euclid(10) + 1,
        index.div_euclid(10) + 1
    );
    key.replace(UDIM_TOKEN, &tile.to_string())
        .replace(UVTILE_TOKEN, &uv)
}

/// The keys of every tile of a UDIM set.
pub fn tile_keys(key: &str, tiles: &[i32]) -> Vec<String> {
    let mut keys: Vec<String> = tiles.iter().map(|&t| tile_key(key, t)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// An image sequence's file name, split as Blender splits it: the last run of digits in the
/// file name (before the extension) is the frame number, written with at least as many digits
/// (`render_0001.png` is `render_` + 4 digits + `.png`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencePattern {
    /// Everything before the number, folders included.
    pub head: String,
    /// Digits the number is padded to.
    pub digits: usize,
    /// Everything after the number (`.png`).
    pub tail: String,
    /// The number in the stored path.
    pub number: i64,
}

impl SequencePattern {
    /// Splits a key; `None` when its file name has no number (Blender then loads the one file
    /// for every frame).
    pub fn parse(key: &str) -> Option<Self> {
        let name_start = key.rfind('/').map_or(0, |i| i + 1);
        let name = &key[name_start..];
        let stem_end = name_start + name.rfind('.').filter(|&i| i > 0).unwrap_or(name.len());
        let bytes = key.as_bytes();
        let mut end = stem_end;
        while end > name_start && !bytes[end - 1].is_ascii_digit() {
            end -= 1;
        }
        if end == name_start {
            return None;
        }
        let mut start = end;
        while start > name_start && bytes[start - 1].is_ascii_digit() {
            start -= 1;
        }
        let digits = &key[start..end];
        Some(Self {
            head: key[..start].to_owned(),
            digits: digits.len(),
            tail: key[end..].to_owned(),
            number: digits.parse().ok()?,
        })
    }

    /// The key of file `number`, padded as Blender pads it (negative numbers are clamped to 0).
    pub fn key(&self, number: i64) -> String {
        format!(
            "{}{:0width$}{}",
            self.head,
            number.max(0),
            self.tail,
            width = self.digits
        )
    }

    /// The number of a key of this sequence, if it is one.
    pub fn number_of(&self, key: &str) -> Option<i64> {
        let digits = key.strip_prefix(&self.head)?.strip_suffix(&self.tail)?;
        if digits.len() < self.digits || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

/// How a node or texture uses an image sequence (Blender's `ImageUser`): `frame_duration`
/// files starting at scene frame `frame_start`, numbered from `frame_offset + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUser {
    pub frame_duration: i32,
    pub frame_start: i32,
    pub frame_offset: i32,
    pub cyclic: bool,
}

/// The sequence file number Blender loads at scene frame `frame` (`BKE_image_user_frame_get`):
/// frames before the start hold the first file, after the end the last, unless cyclic. `None`
/// when the duration is 0 (Blender then loads no file from the sequence).
pub fn image_user_frame(user: &ImageUser, frame: i32) -> Option<i64> {
    let len = i64::from(user.frame_duration);
    if len <= 0 {
        return None;
    }
    let mut at = i64::from(frame) - i64::from(user.frame_start) + 1;
    if user.cyclic {
        at = at.rem_euclid(len);
        if at == 0 {
            at = len;
        }
    }
    at = at.clamp(0, len);
    Some(at + i64::from(user.frame_offset))
}

/// The keys of a sequence the given scene frames load.
pub fn sequence_keys(
    pattern: &SequencePattern,
    user: &ImageUser,
    frames: impl IntoIterator<Item = i32>,
) -> BTreeSet<String> {
    frames
        .into_iter()
        .filter_map(|f| image_user_frame(user, f))
        .map(|n| pattern.key(n))
        .collect()
}

/// A file a job loads, bound to the version the pre-flight check found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dependency {
    /// The object's key in the job's bucket.
    pub key: String,
    /// `image`, `library`, `movie`, `font`, `cache`, `volume` or `sound`.
    pub kind: String,
    /// The path as the `.blend` stores it.
    pub path: String,
    /// The `.blend` (the job's or a linked library's) whose path this is.
    pub from: String,
    /// ETag when found: the renderer downloads this version or stops the job.
    pub etag: String,
    pub size: u64,
}

/// A file the check could not find, or a path it cannot look up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MissingDependency {
    /// The key looked at (none when the path names no key: absolute, above the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub kind: String,
    pub path: String,
    /// The `.blend` whose path this is.
    pub from: String,
    /// What is wrong, for the code that acts on it (`message` says it to people). A record
    /// written before reasons were recorded reads as `not_found`.
    #[serde(default)]
    pub reason: MissingReason,
    /// What is wrong and what to do.
    pub message: String,
}

/// Why a file the .blend loads is missing.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MissingReason {
    /// The path names no key the farm may look at ([`PathError`]: absolute, above the key's
    /// top folder, a URL).
    Path,
    /// Nothing is at the key the path resolves to.
    #[default]
    NotFound,
    /// No file of an image sequence or UDIM set is there.
    NoSequenceFile,
    /// A linked library past the farm's limit: its files are not followed.
    TooManyLibraries,
    /// A linked library that cannot be read, so its own files cannot be checked.
    UnreadableLibrary,
}

/// What `job.json` records of a job's dependencies (`dependencies`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyRecord {
    /// Every file found, with the version the job is bound to.
    pub files: Vec<Dependency>,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Files that change pixels and were not found (a rejection; warnings under `missing=ok`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingDependency>,
    /// Paths refused outright, whatever `missing=ok` says (a URL, [`PathError::is_refused`]):
    /// the request is rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<MissingDependency>,
    /// What does not stop a render: sounds, files missing under `missing=ok`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Files packed into a `.blend`: nothing to download.
    pub packed: usize,
    /// The object listing the files for the renderer (named by content), when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
}

impl DependencyRecord {
    /// The rejection message: each missing file with the key the farm looked at.
    pub fn missing_message(&self) -> String {
        if !self.refused.is_empty() {
            let mut message = format!(
                "{} path(s) in the .blend are refused, so nothing was rendered (missing=ok does not change that):",
                self.refused.len()
            );
            for refused in &self.refused {
                message.push_str("\n- ");
                message.push_str(&refused.describe());
            }
            return message;
        }
        let mut message = format!(
            "{} file{} the .blend needs {} missing, so nothing was rendered:",
            self.missing.len(),
            if self.missing.len() == 1 { "" } else { "s" },
            if self.missing.len() == 1 { "is" } else { "are" },
        );
        for missing in &self.missing {
            message.push_str("\n- ");
            message.push_str(&missing.describe());
        }
        message.push_str(
            "\nupload them beside the .blend as in the project folder (aws s3 sync project/ s3://BUCKET/project/) and tag the .blend again, or tag `missing=ok` to render without them",
        );
        message
    }

    /// One line: `3 files, 12.5 MiB; 1 warning`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} file{}, {:.1} MiB",
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            self.bytes as f64 / (1024.0 * 1024.0)
        );
        if self.packed > 0 {
            line.push_str(&format!(", {} packed", self.packed));
        }
        if !self.missing.is_empty() {
            line.push_str(&format!("; {} missing", self.missing.len()));
        }
        if !self.warnings.is_empty() {
            line.push_str(&format!(
                "; {} warning{}",
                self.warnings.len(),
                if self.warnings.len() == 1 { "" } else { "s" }
            ));
        }
        line
    }
}

impl MissingDependency {
    /// `image `//tex/wood.png` (from `proj/a.blend`): not found at `proj/tex/wood.png``.
    pub fn describe(&self) -> String {
        format!(
            "{} `{}` (in `{}`): {}",
            self.kind, self.path, self.from, self.message
        )
    }
}

/// The body of the dependency list the renderer downloads (`FARM_DEPENDENCIES` names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyList {
    pub files: Vec<Dependency>,
}

impl DependencyList {
    /// The list as stored.
    pub fn to_body(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
    }

    /// The list's version: the name it is stored under ([`crate::JobKeys::dependency_list`]
    /// of [`DependencyList::to_body`]), 16 hex digits of the body's SHA-256 (ASCII, so it fits
    /// in object metadata). Two lists have one version only if they name the same files at the
    /// same ETags.
    pub fn version(&self) -> serde_json::Result<String> {
        Ok(crate::layout::content_name(&self.to_body()?))
    }
}

/// The version of the dependency list stored at `list_key` (its name without `.json`): what
/// frames rendered with that list record ([`crate::storage::DEPENDENCIES_METADATA`]).
pub fn list_version(list_key: &str) -> &str {
    let name = list_key.rsplit('/').next().unwrap_or(list_key);
    name.strip_suffix(".json").unwrap_or(name)
}

#[cfg(test)]
mod tests;
