//! Matching a listing of `<key>/frames/` against the frames a job expects.

use std::collections::BTreeMap;

use farm_core::storage::ObjectMeta;
use farm_core::{FrameList, JobKeys};

use crate::error::ZipError;

/// One expected frame and the object holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameObject {
    /// Absolute frame number.
    pub frame: i32,
    /// Key of the object holding it.
    pub key: String,
    /// Its extension (`png`, `exr`, ...), which names the archive entry.
    pub extension: String,
    /// Its size according to the listing.
    pub size: u64,
}

/// What a listing holds of the expected frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The expected frames found, each exactly once, in frame order.
    pub found: Vec<FrameObject>,
    /// The expected frames not found, sorted. The archive is made only when this is empty.
    pub missing: Vec<i32>,
    /// Frame objects under the prefix that the job does not expect (left out of the archive).
    pub ignored: usize,
}

/// Maps every expected frame to exactly one listed object. Objects that are not frames, and
/// frames the job does not expect (stale output of an earlier, longer run), are left out.
///
/// Fails with [`ZipError::Ambiguous`] when an expected frame exists under two extensions.
pub fn select_frames(
    keys: &JobKeys,
    frames: &FrameList,
    listing: &[ObjectMeta],
) -> Result<Selection, ZipError> {
    let mut by_frame: BTreeMap<i32, Vec<FrameObject>> = BTreeMap::new();
    let mut ignored = 0;
    for object in listing {
        let Some((frame, extension)) = keys.parse_frame_key(&object.key) else {
            continue;
        };
        if !frames.contains(frame) {
            ignored += 1;
            continue;
        }
        by_frame.entry(frame).or_default().push(FrameObject {
            frame,
            key: object.key.clone(),
            extension: extension.to_owned(),
            size: object.size,
        });
    }
    let missing = frames
        .as_slice()
        .iter()
        .copied()
        .filter(|frame| !by_frame.contains_key(frame))
        .collect();
    let found = by_frame
        .into_iter()
        .map(|(frame, objects)| single(frame, objects))
        .collect::<Result<_, _>>()?;
    Ok(Selection {
        found,
        missing,
        ignored,
    })
}

fn single(frame: i32, mut objects: Vec<FrameObject>) -> Result<FrameObject, ZipError> {
    match objects.pop() {
        Some(object) if objects.is_empty() => Ok(object),
        last => {
            objects.extend(last);
            Err(ZipError::Ambiguous {
                frame,
                keys: objects.into_iter().map(|object| object.key).collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_core::frames::DEFAULT_MAX_FRAMES;

    fn meta(key: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size,
            etag: None,
            metadata: Default::default(),
        }
    }

    fn list(spec: &str) -> FrameList {
        FrameList::parse(spec, DEFAULT_MAX_FRAMES).unwrap()
    }

    #[test]
    fn every_expected_frame_maps_to_its_object_in_frame_order() {
        let keys = JobKeys::new("a b.blend");
        let listing = vec![
            meta("a b.blend/frames/-0001.exr", 5),
            meta("a b.blend/frames/0002.png", 7),
            meta("a b.blend/frames/0010.png", 1),
            meta("a b.blend/frames.zip", 100),
            meta("a b.blend/frames/notes.txt", 1),
        ];
        let selection = select_frames(&keys, &list("-1 2 10"), &listing).unwrap();
        assert!(selection.missing.is_empty());
        assert_eq!(selection.ignored, 0);
        let objects = selection.found;
        let got: Vec<(i32, &str, u64)> = objects
            .iter()
            .map(|o| (o.frame, o.extension.as_str(), o.size))
            .collect();
        assert_eq!(got, [(-1, "exr", 5), (2, "png", 7), (10, "png", 1)]);
        assert_eq!(objects[1].key, "a b.blend/frames/0002.png");
    }

    #[test]
    fn stale_frames_outside_the_list_are_ignored() {
        let keys = JobKeys::new("k");
        let listing: Vec<_> = (1..=5)
            .map(|n| meta(&keys.frame(n, "png"), 1))
            .chain([meta(&keys.frame(3, "exr"), 1)])
            .collect();
        let selection = select_frames(&keys, &list("1-2"), &listing).unwrap();
        assert_eq!(selection.found.len(), 2);
        assert!(selection.missing.is_empty());
        assert_eq!(selection.ignored, 4);
    }

    #[test]
    fn missing_frames_are_reported_sorted() {
        let keys = JobKeys::root();
        let listing = vec![meta("frames/0002.png", 1), meta("frames/0005.png", 1)];
        let selection = select_frames(&keys, &list("1-6"), &listing).unwrap();
        assert_eq!(selection.missing, [1, 3, 4, 6]);
        assert_eq!(selection.found.len(), 2);
    }

    #[test]
    fn a_frame_under_two_extensions_is_an_error_naming_it() {
        let keys = JobKeys::root();
        let listing = vec![
            meta("frames/0001.png", 1),
            meta("frames/0002.exr", 1),
            meta("frames/0002.png", 1),
        ];
        match select_frames(&keys, &list("1-2"), &listing) {
            Err(ZipError::Ambiguous { frame, keys }) => {
                assert_eq!(frame, 2);
                assert_eq!(keys, ["frames/0002.exr", "frames/0002.png"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
