//! Where everything of a job lives, relative to the uploaded `.blend`'s key.
//!
//! For an upload `<key>` (any S3 key: spaces and unicode included):
//!
//! | what | key |
//! |---|---|
//! | frame `N` | `<key>/frames/<NNNN>.<ext>`: absolute frame, at least 4 digits, `-` first if negative |
//! | view `<suffix>` of frame `N` (multiview saved as individual files, [`crate::views`]) | `<key>/frames/<NNNN><suffix>.<ext>`: `0001_L.png`, `0001_R.png` |
//! | archive | `<key>/frames.zip` |
//! | job manifest | `<key>/job.json` |
//! | Blender log of a failed frame | `<key>/logs/<NNNN>.log` |
//! | missing frames found by the zipper | `<key>/missing.json` |
//! | a request rejected while an earlier job of the key stands | `<key>/rejected.json` |
//! | one-job-per-request markers | `<key>/requests/<fingerprint>` |
//! | a long frame list, passed to jobs by reference | `<key>/plans/<hash>.txt` |
//! | the files a job downloads beside its `.blend` | `<key>/deps/<hash>.json` |
//! | what one task attempt did | `<key>/tasks/<index>-<attempt>.json`, `<key>/tasks/zip-<attempt>.json`, `<key>/tasks/movie-<attempt>.json` |
//! | the job's cost and times, summed from the task records | `<key>/receipt.json` |
//! | the movie a movie scene asks for | `<key>/<stem>.<ext>` |
//! | a scout job's estimate of the job (`estimate=N`) | `<key>/estimate.json` |
//!
//! Nothing here ends in `.blend`, so the farm's own writes never trigger it again.
//! A local farm uses the same layout with an empty base: `frames/0001.png`, `frames.zip`.

use sha2::{Digest, Sha256};

/// The keys of one job, derived from the key of its `.blend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKeys {
    base: String,
}

impl JobKeys {
    /// Layout under an uploaded `.blend`'s key.
    pub fn new(source_key: impl Into<String>) -> Self {
        Self {
            base: source_key.into(),
        }
    }

    /// Layout at the root of a store, as a local farm's output folder uses it.
    pub fn root() -> Self {
        Self::new(String::new())
    }

    /// The `.blend` key this layout hangs off (empty for [`JobKeys::root`]).
    pub fn source(&self) -> &str {
        &self.base
    }

    fn join(&self, rest: &str) -> String {
        if self.base.is_empty() {
            rest.to_owned()
        } else {
            format!("{}/{rest}", self.base)
        }
    }

    pub fn frames_prefix(&self) -> String {
        self.join("frames/")
    }

    pub fn frame(&self, frame: i32, extension: &str) -> String {
        self.join(&format!("frames/{}", frame_file_name(frame, extension)))
    }

    /// The file of view `suffix` of a frame (`""`: the frame's only file, [`JobKeys::frame`]).
    pub fn view_frame(&self, frame: i32, suffix: &str, extension: &str) -> String {
        self.join(&format!(
            "frames/{}",
            view_file_name(frame, suffix, extension)
        ))
    }

    pub fn zip(&self) -> String {
        self.join("frames.zip")
    }

    /// The movie a movie scene asks for, beside `frames.zip`: `<key>/<stem>.<extension>`, the
    /// `.blend`'s file name without `.blend` (`shots/a.blend/a.mkv`; `movie.<extension>` for
    /// [`JobKeys::root`]).
    pub fn movie(&self, extension: &str) -> String {
        let name = self.base.rsplit('/').next().unwrap_or_default();
        let stem = name
            .strip_suffix(".blend")
            .or_else(|| name.strip_suffix(".BLEND"))
            .unwrap_or(name);
        let stem = if stem.is_empty() { "movie" } else { stem };
        self.join(&format!("{stem}.{extension}"))
    }

    pub fn manifest(&self) -> String {
        self.join("job.json")
    }

    pub fn missing(&self) -> String {
        self.join("missing.json")
    }

    /// Where a rejected request is recorded when `job.json` describes a submitted job that must
    /// not be overwritten (it may still run, and `farm cancel`/`farm retry` need it).
    pub fn rejection(&self) -> String {
        self.join("rejected.json")
    }

    pub fn logs_prefix(&self) -> String {
        self.join("logs/")
    }

    pub fn log(&self, frame: i32) -> String {
        self.join(&format!("logs/{}.log", frame_stem(frame)))
    }

    pub fn requests_prefix(&self) -> String {
        self.join("requests/")
    }

    /// The marker that makes a request submit at most one job; see [`request_fingerprint`].
    pub fn request_marker(&self, fingerprint: &str) -> String {
        self.join(&format!("requests/{fingerprint}.json"))
    }

    /// A frame list too long for a job's environment, named by its content (see
    /// [`crate::scheduler::FRAMES_INLINE_MAX`]).
    pub fn frame_list(&self, canonical: &str) -> String {
        self.join(&format!("plans/{}.txt", content_name(canonical.as_bytes())))
    }

    /// The files a job downloads beside its `.blend` (the trigger's dependency check writes
    /// them, the renderer reads them), named by the list's content so it never changes under a
    /// job that reads it.
    pub fn dependency_list(&self, body: &[u8]) -> String {
        self.dependency_list_of(&content_name(body))
    }

    /// The key of the dependency list of version `version` (its content name,
    /// [`crate::deps::DependencyList::version`]), whose [`crate::deps::list_version`] it is.
    pub fn dependency_list_of(&self, version: &str) -> String {
        self.join(&format!("deps/{version}.json"))
    }

    pub fn tasks_prefix(&self) -> String {
        self.join("tasks/")
    }

    /// The record of attempt `attempt` (from 1) of render array child `index`.
    pub fn task_record(&self, index: usize, attempt: u32) -> String {
        self.join(&format!("tasks/{index}-{attempt}.json"))
    }

    /// The record of attempt `attempt` of the zip job.
    pub fn zip_task_record(&self, attempt: u32) -> String {
        self.join(&format!("tasks/zip-{attempt}.json"))
    }

    /// The record of attempt `attempt` of the movie job.
    pub fn movie_task_record(&self, attempt: u32) -> String {
        self.join(&format!("tasks/movie-{attempt}.json"))
    }

    /// The job's receipt ([`crate::receipt::Receipt`]), written by the zipper and brought up to
    /// date by the movie job, which ends after it.
    pub fn receipt(&self) -> String {
        self.join("receipt.json")
    }

    /// The job's contact sheet ([`crate::preview`]), written by the zipper with the archive.
    /// The scout job's estimate (`estimate=N`, [`crate::estimate::EstimateFile`]).
    pub fn estimate(&self) -> String {
        self.join("estimate.json")
    }

    pub fn preview(&self) -> String {
        self.join("preview.jpg")
    }

    /// The frame number and extension of a key under [`JobKeys::frames_prefix`], if it is one.
    pub fn parse_frame_key<'k>(&self, key: &'k str) -> Option<(i32, &'k str)> {
        let name = key.strip_prefix(&self.frames_prefix())?;
        parse_frame_file_name(name)
    }

    /// The frame number, view suffix (`""` for none) and extension of a key under
    /// [`JobKeys::frames_prefix`], if it is one.
    pub fn parse_view_key<'k>(&self, key: &'k str) -> Option<(i32, &'k str, &'k str)> {
        let name = key.strip_prefix(&self.frames_prefix())?;
        parse_view_file_name(name)
    }
}

/// 16 hex digits of the SHA-256 of `body`: the name of an object named by its content.
pub(crate) fn content_name(body: &[u8]) -> String {
    Sha256::digest(body)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The suffix of an upload the farm renders, exactly: the bucket notification's S3 suffix
/// filter (`infra/farm.yaml`) is this string, and S3 compares it case-sensitively, so an upload
/// ending `.BLEND` never reaches the trigger.
pub const BLEND_SUFFIX: &str = ".blend";

/// Whether a key names a `.blend` the farm renders: it ends with [`BLEND_SUFFIX`] (in that
/// letter case, as S3's event filter matches it) after a non-empty name.
pub fn is_blend_key(key: &str) -> bool {
    key.len() > BLEND_SUFFIX.len() && key.ends_with(BLEND_SUFFIX)
}

/// `0001`, `0042`, `12345`, `-0005`: the absolute frame, zero-padded to at least 4 digits.
pub fn frame_stem(frame: i32) -> String {
    if frame < 0 {
        format!("-{:04}", frame.unsigned_abs())
    } else {
        format!("{frame:04}")
    }
}

/// `0001.png`: a frame's file name in S3, in a local output folder and in `frames.zip`.
pub fn frame_file_name(frame: i32, extension: &str) -> String {
    format!("{}.{extension}", frame_stem(frame))
}

/// `0001_L.png`: the file of view `suffix` of a frame ([`crate::views`]); `0001.png` for `""`.
pub fn view_file_name(frame: i32, suffix: &str, extension: &str) -> String {
    format!("{}{suffix}.{extension}", frame_stem(frame))
}

/// The inverse of [`view_file_name`]: the frame, the view suffix (`""` for none: a suffix is
/// [`crate::views::is_plain_suffix`] and starts with no digit) and the extension.
pub fn parse_view_file_name(name: &str) -> Option<(i32, &str, &str)> {
    let (frame, number, suffix, extension) = split_view_name(name)?;
    (frame_stem(frame) == number).then_some((frame, suffix, extension))
}

/// A file name `<number><suffix>.<extension>` cut into the frame, the number as written, the
/// view suffix ([`crate::views::is_plain_suffix`]) and the extension (one, not empty).
pub(crate) fn split_view_name(name: &str) -> Option<(i32, &str, &str, &str)> {
    let (stem, extension) = name.split_once('.')?;
    if extension.is_empty() || extension.contains(['.', '/']) {
        return None;
    }
    let digits = usize::from(stem.starts_with('-'))
        + stem
            .trim_start_matches('-')
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
    let (number, suffix) = stem.split_at(digits);
    let frame: i32 = number.parse().ok()?;
    crate::views::is_plain_suffix(suffix).then_some((frame, number, suffix, extension))
}

/// The inverse of [`frame_file_name`]: only names it could have produced are accepted.
pub fn parse_frame_file_name(name: &str) -> Option<(i32, &str)> {
    let (stem, extension) = name.split_once('.')?;
    if extension.is_empty() || extension.contains(['.', '/']) {
        return None;
    }
    let frame: i32 = stem.parse().ok()?;
    (frame_stem(frame) == stem).then_some((frame, extension))
}

/// Identifies one render request for one version of one object, for the at-most-one-job marker.
/// `version` is the object's version id when the bucket is versioned, else its ETag; `blender`
/// is the series the request asked for (`blender=`), if it did; `engine` the engine the job
/// renders with when it is not Cycles (a Cycles job hashes as before the farm chose engines).
pub fn request_fingerprint(
    version: &str,
    canonical_frames: &str,
    chunk_size: u32,
    format: Option<&str>,
    blender: Option<&str>,
    engine: Option<&str>,
) -> String {
    let mut hash = Sha256::new();
    let chunk = chunk_size.to_string();
    // A request without `blender=` hashes as it did before the tag existed, so a redelivered
    // event of such a request still finds its marker.
    let parts = [version, canonical_frames, &chunk, format.unwrap_or("")];
    let engine = engine.map(|e| format!("engine={e}"));
    for part in parts.into_iter().chain(blender).chain(engine.as_deref()) {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn keys_hang_off_the_upload() {
        let keys = JobKeys::new("shots/my scene ü.blend");
        assert_eq!(
            keys.frame(1, "png"),
            "shots/my scene ü.blend/frames/0001.png"
        );
        assert_eq!(
            keys.frame(-5, "exr"),
            "shots/my scene ü.blend/frames/-0005.exr"
        );
        assert_eq!(
            keys.frame(123_456, "png"),
            "shots/my scene ü.blend/frames/123456.png"
        );
        assert_eq!(keys.zip(), "shots/my scene ü.blend/frames.zip");
        assert_eq!(keys.manifest(), "shots/my scene ü.blend/job.json");
        assert_eq!(keys.log(7), "shots/my scene ü.blend/logs/0007.log");
        assert_eq!(keys.missing(), "shots/my scene ü.blend/missing.json");
        assert!(keys
            .request_marker("ab")
            .starts_with(&keys.requests_prefix()));
        assert_eq!(
            keys.task_record(3, 2),
            "shots/my scene ü.blend/tasks/3-2.json"
        );
        assert_eq!(
            keys.zip_task_record(1),
            "shots/my scene ü.blend/tasks/zip-1.json"
        );
        assert_eq!(
            keys.movie_task_record(2),
            "shots/my scene ü.blend/tasks/movie-2.json"
        );
        assert!(keys.task_record(0, 1).starts_with(&keys.tasks_prefix()));
        assert_eq!(keys.receipt(), "shots/my scene ü.blend/receipt.json");
        assert_eq!(keys.preview(), "shots/my scene ü.blend/preview.jpg");
        assert_eq!(keys.movie("mkv"), "shots/my scene ü.blend/my scene ü.mkv");
        assert_eq!(JobKeys::new("a.BLEND").movie("mp4"), "a.BLEND/a.mp4");
        assert_eq!(JobKeys::root().movie("avi"), "movie.avi");
        assert_eq!(JobKeys::root().task_record(0, 1), "tasks/0-1.json");
    }

    #[test]
    fn nothing_the_farm_writes_ends_in_blend() {
        let keys = JobKeys::new("a.blend");
        for key in [
            keys.frame(1, "png"),
            keys.zip(),
            keys.manifest(),
            keys.log(1),
            keys.missing(),
            keys.rejection(),
            keys.frame_list("1-3"),
            keys.dependency_list(b"{}"),
            keys.request_marker("f"),
            keys.task_record(0, 1),
            keys.zip_task_record(1),
            keys.movie_task_record(1),
            keys.receipt(),
        ] {
            assert!(!key.to_lowercase().ends_with(".blend"), "{key}");
        }
    }

    #[test]
    fn lists_are_named_by_their_content() {
        let keys = JobKeys::new("p/a.blend");
        let list = keys.dependency_list(b"{\"files\":[]}");
        let name = list
            .strip_prefix("p/a.blend/deps/")
            .and_then(|n| n.strip_suffix(".json"))
            .unwrap();
        assert_eq!(name.len(), 16);
        assert!(name.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(list, keys.dependency_list(b"{\"files\":[]}"));
        assert_ne!(list, keys.dependency_list(b"{\"files\":[1]}"));
        assert_eq!(
            JobKeys::root().dependency_list(b"x"),
            format!(
                "deps/{}",
                keys.dependency_list(b"x").rsplit('/').next().unwrap()
            )
        );
        assert!(keys.frame_list("1-3").starts_with("p/a.blend/plans/"));
    }

    #[test]
    fn root_layout_has_no_leading_slash() {
        let keys = JobKeys::root();
        assert_eq!(keys.frame(3, "png"), "frames/0003.png");
        assert_eq!(keys.zip(), "frames.zip");
        assert_eq!(keys.parse_frame_key("frames/0003.png"), Some((3, "png")));
    }

    #[test]
    fn frame_keys_parse_back() {
        let keys = JobKeys::new("x y.blend");
        for frame in [
            -1_048_574, -1000, -5, -1, 0, 1, 9, 999, 1000, 9999, 10_000, 1_048_574,
        ] {
            for ext in ["png", "exr", "jpg"] {
                assert_eq!(
                    keys.parse_frame_key(&keys.frame(frame, ext)),
                    Some((frame, ext))
                );
            }
        }
    }

    #[test]
    fn view_keys_parse_back() {
        let keys = JobKeys::new("x y.blend");
        assert_eq!(
            keys.view_frame(12, "_L", "png"),
            "x y.blend/frames/0012_L.png"
        );
        assert_eq!(keys.view_frame(12, "", "png"), keys.frame(12, "png"));
        for frame in [-1000, -5, 0, 9, 10_000] {
            for suffix in ["", "_L", "_R", "-left", "Right2"] {
                assert_eq!(
                    keys.parse_view_key(&keys.view_frame(frame, suffix, "exr")),
                    Some((frame, suffix, "exr"))
                );
            }
        }
        for key in [
            "x y.blend/frames/00012_L.png",
            "x y.blend/frames/0012_L.x.png",
            "x y.blend/frames/0012 L.png",
            "x y.blend/frames/_L0012.png",
            "x y.blend/frames/--0012.png",
        ] {
            assert_eq!(keys.parse_view_key(key), None, "{key}");
        }
        // A name with a view suffix is no suffixless frame's.
        assert_eq!(keys.parse_frame_key("x y.blend/frames/0012_L.png"), None);
    }

    #[test]
    fn non_frame_keys_do_not_parse() {
        let keys = JobKeys::new("k.blend");
        for key in [
            "k.blend/frames/1.png",
            "k.blend/frames/00001.png",
            "k.blend/frames/-5.png",
            "k.blend/frames/0001",
            "k.blend/frames/0001.",
            "k.blend/frames/0001.tar.gz",
            "k.blend/frames/abcd.png",
            "k.blend/frames/sub/0001.png",
            "k.blend/frames/+0001.png",
            "k.blend/logs/0001.log",
            "other.blend/frames/0001.png",
        ] {
            assert_eq!(keys.parse_frame_key(key), None, "{key}");
        }
    }

    #[test]
    fn fingerprints_change_with_every_part() {
        let base = request_fingerprint("etag1", "1-10", 1, None, None, None);
        assert_eq!(
            base,
            request_fingerprint("etag1", "1-10", 1, None, None, None)
        );
        assert_eq!(base.len(), 32);
        for other in [
            request_fingerprint("etag2", "1-10", 1, None, None, None),
            request_fingerprint("etag1", "1-11", 1, None, None, None),
            request_fingerprint("etag1", "1-10", 2, None, None, None),
            request_fingerprint("etag1", "1-10", 1, Some("PNG"), None, None),
            request_fingerprint("etag1", "1-10", 1, None, Some("4.5"), None),
            request_fingerprint("etag1", "1-10", 1, Some("4.5"), None, None),
            request_fingerprint("etag1", "1-10", 1, None, None, Some("eevee")),
        ] {
            assert_ne!(base, other);
        }
        // The engine part cannot be mistaken for a series.
        assert_ne!(
            request_fingerprint("etag1", "1-10", 1, None, Some("eevee"), None),
            request_fingerprint("etag1", "1-10", 1, None, None, Some("eevee"))
        );
    }

    #[test]
    fn a_request_without_blender_keeps_its_fingerprint_from_before_the_tag() {
        // sha256("etag1\01-10\01\0\0"), what the fingerprint was before `blender=` existed.
        assert_eq!(
            request_fingerprint("etag1", "1-10", 1, None, None, None),
            "337442b680a2cdabadb61a7119ea82ab"
        );
    }

    /// Keys of any characters, with the troublesome ones (`_`, `-`, `/`, `.`, spaces) frequent.
    pub(crate) fn any_key() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let c = prop_oneof![
            Just('_'),
            Just('-'),
            Just('/'),
            Just('.'),
            Just(' '),
            proptest::char::range('a', 'z'),
            proptest::char::range('0', '9'),
            any::<char>(),
        ];
        proptest::collection::vec(c, 0..400).prop_map(|chars| chars.into_iter().collect())
    }

    proptest::proptest! {
        #[test]
        fn a_blend_key_is_what_the_s3_suffix_filter_passes(key in any_key(), upper in proptest::bool::ANY) {
            let key = if upper { format!("{key}.BLEND") } else { format!("{key}.blend") };
            // S3's suffix filter compares bytes: what it passes, and only that, the trigger takes.
            let s3_passes = key.ends_with(BLEND_SUFFIX);
            proptest::prop_assert_eq!(is_blend_key(&key), s3_passes && key != BLEND_SUFFIX);
        }
    }
}
