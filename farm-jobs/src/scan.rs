//! The one frame scan: which of a job's expected frames the store holds *for this job*.
//!
//! A frame object belongs to a job when it was rendered from the job's version of the `.blend`,
//! with the job's dependency list (the textures and libraries at the ETags the job is bound to),
//! with the job's engine and in the job's output format. The renderer records them on every
//! frame it uploads
//! ([`OutputVersion::metadata`]); the scan reads them back ([`Storage::head`]) and sorts every
//! expected frame into one of three states ([`FrameState`]). A caller that has the job's task
//! records passes them: a listed frame a record of the job's version vouches for (its key, the
//! ETag its upload returned, its size: [`vouch`]) is current without a HEAD.
//!
//! - **current**: each of the frame's files (one, or one per view of a multiview scene saving
//!   views as individual files: [`farm_core::views`]) is exactly one object matching the job;
//! - **stale**: objects of the frame exist, but not every file of it matches (an older upload of
//!   the key, another format, a file planted by hand such as `frames/0001.blend`);
//! - **missing**: no object of the frame at all, or only some of its view files
//!   ([`FrameScan::missing_views`] names the others).
//!
//! The renderer (which frames to render), the local farm, the zipper (what to archive),
//! `farm status` and `farm retry` all ask this scan, so they never disagree.

mod vouch;

use std::collections::BTreeMap;

use farm_core::blender::OutputFormat;
use farm_core::engine::Engine;
use farm_core::layout::{frame_stem, view_file_name};
use farm_core::storage::{
    Metadata, ObjectMeta, StorageError, DEPENDENCIES_METADATA, ENGINE_METADATA, FORMAT_METADATA,
    SCENE_FORMAT, SOURCE_ETAG_METADATA,
};
use farm_core::tasks::TaskRecord;
use farm_core::views::FrameViews;
use farm_core::{JobKeys, Storage};
use futures::{StreamExt, TryStreamExt};

use vouch::Vouchers;

/// Objects read (HEAD) at once to learn which version of the source they were rendered from.
const HEADS_IN_FLIGHT: usize = 16;

/// [`scan_chunk_frames`] lists each frame's objects on their own (`frames/0001.`) up to this many
/// frames, and the whole `frames/` folder once for more.
const PER_FRAME_LISTING: usize = 16;

/// What makes a frame object belong to a job. The default accepts a frame of any version in
/// the scene's own format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputVersion {
    /// The version of the `.blend` the frames must come from: its S3 ETag (quotes included), or
    /// the scene's SHA-256 on a local farm. `None` accepts frames of any version (a job
    /// submitted without one).
    pub source_tag: Option<String>,
    /// The output format the job asked for; `None` is the scene's own format.
    pub format: Option<OutputFormat>,
    /// The version of the job's dependency list ([`farm_core::deps::list_version`]): a frame
    /// rendered with other textures or libraries is not this job's. `None`: the job has no
    /// list, and frames rendered with one are not its frames either.
    pub dependencies: Option<String>,
    /// The engine the job renders with (Cycles by default, and for frames that record none).
    pub engine: Engine,
    /// The files each frame makes (its views): a frame is the job's when all of them are.
    pub views: FrameViews,
}

impl OutputVersion {
    pub fn new(source_tag: Option<&str>, format: Option<OutputFormat>) -> Self {
        Self {
            source_tag: source_tag.map(str::to_owned),
            format,
            dependencies: None,
            engine: Engine::Cycles,
            views: FrameViews::single(),
        }
    }

    /// The same, for a job rendering with `engine` (`None`: a job from before the farm chose
    /// engines, which ran Cycles).
    #[must_use]
    pub fn with_engine(mut self, engine: Option<Engine>) -> Self {
        self.engine = engine.unwrap_or_default();
        self
    }

    /// The same, for a job bound to the dependency list of this version
    /// ([`farm_core::deps::list_version`] of the list's key).
    #[must_use]
    pub fn with_dependencies(mut self, version: Option<&str>) -> Self {
        self.dependencies = version.map(str::to_owned);
        self
    }

    /// The metadata the renderer stores on every frame of this job.
    pub fn metadata(&self) -> Metadata {
        let mut metadata = Metadata::new();
        if let Some(tag) = &self.source_tag {
            metadata.insert(SOURCE_ETAG_METADATA.to_owned(), tag.clone());
        }
        metadata.insert(FORMAT_METADATA.to_owned(), self.format_name().to_owned());
        if let Some(version) = &self.dependencies {
            metadata.insert(DEPENDENCIES_METADATA.to_owned(), version.clone());
        }
        if self.engine != Engine::Cycles {
            metadata.insert(ENGINE_METADATA.to_owned(), self.engine.name().to_owned());
        }
        metadata
    }

    fn format_name(&self) -> &'static str {
        self.format.map_or(SCENE_FORMAT, OutputFormat::blender_name)
    }

    /// Whether the name alone already rules an object out (no need to read its metadata).
    fn may_match(&self, extension: &str, size: u64) -> bool {
        size > 0
            && !extension.eq_ignore_ascii_case("blend")
            && self.format.is_none_or(|f| f.extension() == extension)
    }

    /// Whether an object with this extension, size and metadata is a frame of this job.
    pub fn matches(&self, extension: &str, size: u64, metadata: &Metadata) -> bool {
        let format = metadata
            .get(FORMAT_METADATA)
            .map_or(SCENE_FORMAT, String::as_str);
        let source = match &self.source_tag {
            Some(tag) => metadata.get(SOURCE_ETAG_METADATA) == Some(tag),
            None => true,
        };
        let dependencies = metadata.get(DEPENDENCIES_METADATA) == self.dependencies.as_ref();
        let engine = metadata
            .get(ENGINE_METADATA)
            .map_or(Engine::Cycles.name(), String::as_str)
            == self.engine.name();
        self.may_match(extension, size)
            && format == self.format_name()
            && source
            && dependencies
            && engine
    }
}

/// One frame object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameObject {
    /// Absolute frame number.
    pub frame: i32,
    /// Key of the object holding it.
    pub key: String,
    /// Its view suffix (`_L`; `""`: the frame's only file) and extension (`png`, `exr`, ...),
    /// which name the archive entry.
    pub suffix: String,
    pub extension: String,
    /// Its size.
    pub size: u64,
}

impl FrameObject {
    /// Its file name in the job's layout and in `frames.zip`: `0001.png`, `0001_L.png`.
    pub fn file_name(&self) -> String {
        view_file_name(self.frame, &self.suffix, &self.extension)
    }
}

/// Where one expected frame stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameState {
    /// Rendered for this job.
    Current,
    /// Only objects of another version or format (or not frames at all) are there.
    Stale,
    /// Nothing is there.
    Missing,
}

/// The expected frames of a job, by state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameScan {
    /// The current objects of each current frame (one per view), in frame and view order.
    pub current: Vec<FrameObject>,
    /// Frames with objects, not all of their files current, sorted.
    pub stale: Vec<i32>,
    /// Frames with no object, or only some of their view files, sorted.
    pub missing: Vec<i32>,
    /// The view suffixes of each missing frame that has other views current (`0001_L.png`
    /// there, `0001_R.png` not: `(1, ["_R"])`), in frame order.
    pub missing_views: Vec<(i32, Vec<String>)>,
    /// The objects of expected frames that are not current: never archived, never counted.
    pub stale_objects: Vec<FrameObject>,
    /// Frame objects of frames the job does not expect.
    pub ignored: usize,
}

impl FrameScan {
    /// The state of `frame` (an expected frame).
    pub fn state(&self, frame: i32) -> FrameState {
        if self.stale.binary_search(&frame).is_ok() {
            FrameState::Stale
        } else if self.missing.binary_search(&frame).is_ok() {
            FrameState::Missing
        } else {
            FrameState::Current
        }
    }

    /// Frames still to render for this job: stale and missing, sorted.
    pub fn not_current(&self) -> Vec<i32> {
        let mut frames: Vec<i32> = self.stale.iter().chain(&self.missing).copied().collect();
        frames.sort_unstable();
        frames
    }

    /// Whether every expected frame is current.
    pub fn is_complete(&self) -> bool {
        self.stale.is_empty() && self.missing.is_empty()
    }

    /// The views missing beside current ones ([`FrameScan::missing_views`]), for a message:
    /// `frame 2 has no view file _R`, one clause a frame joined by `; ` (`None`: no such frame).
    pub fn missing_views_text(&self) -> Option<String> {
        let clauses: Vec<String> = self
            .missing_views
            .iter()
            .map(|(frame, views)| {
                let views: Vec<String> = views
                    .iter()
                    .map(|s| {
                        if s.is_empty() {
                            "without a suffix".to_owned()
                        } else {
                            s.clone()
                        }
                    })
                    .collect();
                format!("frame {frame} has no view file {}", views.join(", "))
            })
            .collect();
        (!clauses.is_empty()).then(|| clauses.join("; "))
    }
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Two objects of one frame's file both claim to be this job's (only a hand-made copy does this).
    #[error("frame {frame} of this job is present more than once: {}; delete all but one", keys.join(", "))]
    Ambiguous { frame: i32, keys: Vec<String> },
}

impl ScanError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Storage(e) if e.is_transient())
    }
}

/// Scans the store for `frames` (sorted, distinct expected frames) of the job under `keys`,
/// listing the whole `frames/` folder (so [`FrameScan::ignored`] counts every other frame).
/// `records` are the task records at the key (of any version; none is fine): the frames they
/// vouch for are not read.
pub async fn scan_frames<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    frames: &[i32],
    version: &OutputVersion,
    records: &[TaskRecord],
) -> Result<FrameScan, ScanError> {
    let listing = storage.list(&keys.frames_prefix()).await?;
    classify(storage, keys, frames, version, records, listing).await
}

/// [`scan_frames`] for a few frames of a large job (a renderer's chunk): each frame's objects
/// are listed on their own, so the cost follows the chunk, not the job. [`FrameScan::ignored`]
/// is then 0.
pub async fn scan_chunk_frames<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    frames: &[i32],
    version: &OutputVersion,
    records: &[TaskRecord],
) -> Result<FrameScan, ScanError> {
    if frames.len() > PER_FRAME_LISTING {
        return scan_frames(storage, keys, frames, version, records).await;
    }
    let mut listing = Vec::new();
    for &frame in frames {
        // `0001.` and, with views, `0001_L.` (`0001` alone would list `00010.png` too): a
        // frame's one file is listed beside its views, which it is not.
        let views = version.views.suffixes();
        for suffix in std::iter::once("").chain(views.into_iter().filter(|s| !s.is_empty())) {
            let prefix = format!("{}{}{suffix}.", keys.frames_prefix(), frame_stem(frame));
            listing.extend(storage.list(&prefix).await?);
        }
    }
    classify(storage, keys, frames, version, records, listing).await
}

async fn classify<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    frames: &[i32],
    version: &OutputVersion,
    records: &[TaskRecord],
    listing: Vec<ObjectMeta>,
) -> Result<FrameScan, ScanError> {
    let vouchers = Vouchers::new(records);
    let vouchers = &vouchers;
    let mut ignored = 0;
    let mut by_frame: BTreeMap<i32, Vec<(FrameObject, Option<String>)>> = BTreeMap::new();
    for object in listing {
        let Some((frame, suffix, extension)) = keys.parse_view_key(&object.key) else {
            continue;
        };
        if frames.binary_search(&frame).is_err() {
            ignored += 1;
            continue;
        }
        let listed = FrameObject {
            frame,
            suffix: suffix.to_owned(),
            extension: extension.to_owned(),
            key: object.key,
            size: object.size,
        };
        by_frame
            .entry(frame)
            .or_default()
            .push((listed, object.etag));
    }
    let candidates: Vec<(FrameObject, Option<String>)> =
        by_frame.values().flatten().cloned().collect();
    let verdicts: Vec<(FrameObject, bool)> = futures::stream::iter(candidates)
        .map(|(object, etag)| async move {
            if !version.may_match(&object.extension, object.size)
                || version.views.suffix_of(&object.suffix).is_none()
            {
                return Ok::<_, ScanError>((object, false));
            }
            let (key, extension) = (&object.key, &object.extension);
            if vouchers.vouch(version, key, extension, etag.as_deref(), object.size) {
                return Ok((object, true));
            }
            let current = match storage.head(&object.key).await? {
                Some(meta) => version.matches(&object.extension, meta.size, &meta.metadata),
                None => false,
            };
            Ok((object, current))
        })
        .buffered(HEADS_IN_FLIGHT)
        .try_collect()
        .await?;

    let mut scan = FrameScan {
        ignored,
        ..FrameScan::default()
    };
    let mut current: BTreeMap<i32, Vec<FrameObject>> = BTreeMap::new();
    for (object, is_current) in verdicts {
        if is_current {
            current.entry(object.frame).or_default().push(object);
        } else {
            scan.stale_objects.push(object);
        }
    }
    for &frame in frames {
        let objects = current.remove(&frame).unwrap_or_default();
        let (files, absent) = frame_files(frame, objects, &version.views)?;
        if absent.is_empty() {
            scan.current.extend(files);
        } else if files.is_empty() && !by_frame.contains_key(&frame) {
            scan.missing.push(frame);
        } else if by_frame[&frame].len() == files.len() {
            // Some views are there and current, the others not at all.
            scan.missing.push(frame);
            scan.missing_views.push((frame, absent));
        } else {
            scan.stale.push(frame);
        }
    }
    Ok(scan)
}

/// A frame's current objects in view order, and the suffixes of its views that have none.
fn frame_files(
    frame: i32,
    mut objects: Vec<FrameObject>,
    views: &FrameViews,
) -> Result<(Vec<FrameObject>, Vec<String>), ScanError> {
    let mut files = Vec::new();
    let mut absent = Vec::new();
    for suffix in views.suffixes() {
        let (mut of_view, rest): (Vec<_>, Vec<_>) =
            objects.into_iter().partition(|o| o.suffix == suffix);
        objects = rest;
        match of_view.len() {
            0 => absent.push(suffix.to_owned()),
            1 => files.extend(of_view.pop()),
            _ => {
                return Err(ScanError::Ambiguous {
                    frame,
                    keys: of_view.into_iter().map(|o| o.key).collect(),
                })
            }
        }
    }
    Ok((files, absent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(tag: Option<&str>, format: &str) -> Metadata {
        let mut m = Metadata::new();
        if let Some(tag) = tag {
            m.insert(SOURCE_ETAG_METADATA.into(), tag.into());
        }
        m.insert(FORMAT_METADATA.into(), format.into());
        m
    }

    #[test]
    fn a_frame_matches_only_the_dependencies_it_was_rendered_with() {
        let version = farm_core::deps::list_version("shots/a.blend/deps/00aa11bb22cc33dd.json");
        let old = OutputVersion::new(Some("\"e1\""), None).with_dependencies(Some(version));
        let new =
            OutputVersion::new(Some("\"e1\""), None).with_dependencies(Some("ffee00112233aabb"));
        let none = OutputVersion::new(Some("\"e1\""), None);
        let rendered_old = old.metadata();
        assert_eq!(
            rendered_old.get(DEPENDENCIES_METADATA).map(String::as_str),
            Some("00aa11bb22cc33dd")
        );
        assert!(old.matches("png", 10, &rendered_old));
        assert!(!new.matches("png", 10, &rendered_old));
        assert!(!none.matches("png", 10, &rendered_old));
        assert!(none.matches("png", 10, &none.metadata()));
        assert!(!old.matches("png", 10, &none.metadata()));
    }

    #[test]
    fn a_frame_matches_only_its_version_and_format() {
        let job = OutputVersion::new(Some("\"e2\""), None);
        assert!(job.matches("png", 10, &meta(Some("\"e2\""), "scene")));
        assert!(!job.matches("png", 10, &meta(Some("\"e1\""), "scene")));
        assert!(!job.matches("png", 10, &meta(None, "scene")));
        assert!(!job.matches("jpg", 10, &meta(Some("\"e2\""), "JPEG")));
        assert!(!job.matches("png", 0, &meta(Some("\"e2\""), "scene")));
        assert!(!job.matches("blend", 10, &meta(Some("\"e2\""), "scene")));
        let jpeg = OutputVersion::new(Some("\"e2\""), Some(OutputFormat::Jpeg));
        assert!(jpeg.matches("jpg", 10, &meta(Some("\"e2\""), "JPEG")));
        assert!(!jpeg.matches("png", 10, &meta(Some("\"e2\""), "scene")));
        assert!(jpeg.matches("jpg", 10, &jpeg.metadata()));
    }

    #[test]
    fn a_frame_matches_only_the_engine_it_was_rendered_with() {
        let cycles = OutputVersion::new(Some("\"e1\""), None);
        let eevee = cycles.clone().with_engine(Some(Engine::Eevee));
        assert_eq!(
            eevee.metadata().get(ENGINE_METADATA).map(String::as_str),
            Some("eevee")
        );
        // Cycles frames record no engine, as every frame did before the farm chose engines.
        assert_eq!(cycles.metadata().get(ENGINE_METADATA), None);
        assert_eq!(cycles.clone().with_engine(Some(Engine::Cycles)), cycles);
        assert!(eevee.matches("png", 10, &eevee.metadata()));
        assert!(!eevee.matches("png", 10, &cycles.metadata()));
        assert!(!cycles.matches("png", 10, &eevee.metadata()));
        assert!(cycles.matches("png", 10, &meta(Some("\"e1\""), "scene")));
    }

    #[test]
    fn frames_without_a_format_record_count_as_the_scene_format() {
        let job = OutputVersion::new(Some("t"), None);
        let mut old = Metadata::new();
        old.insert(SOURCE_ETAG_METADATA.into(), "t".into());
        assert!(job.matches("png", 1, &old));
    }

    #[test]
    fn states_are_read_from_the_lists() {
        let scan = FrameScan {
            stale: vec![2],
            missing: vec![3, 5],
            ..FrameScan::default()
        };
        assert_eq!(scan.state(1), FrameState::Current);
        assert_eq!(scan.state(2), FrameState::Stale);
        assert_eq!(scan.state(5), FrameState::Missing);
        assert_eq!(scan.not_current(), [2, 3, 5]);
        assert!(!scan.is_complete());
    }
}
