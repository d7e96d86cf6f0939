//! Which files one frame makes: the one rule for a scene's multiview (stereo) output.
//!
//! A scene with Stereoscopy on (`render.use_multiview`) renders each of its active views. How
//! Blender saves them (`render.image_settings.views_format`, checked against Debian's Blender 3.4
//! and bpy 4.2.23 by the tests):
//!
//! - `INDIVIDUAL`: one file per active view, the view's suffix (`file_suffix`: `_L`, `_R`)
//!   inserted before the extension: `frame_12.png` becomes `frame_12_L.png` and
//!   `frame_12_R.png`, as `####` names do (`0012_L.png`). This holds for every image format,
//!   multilayer EXR included.
//! - `STEREO_3D` (anaglyph, side-by-side, top-bottom, interlace) and `MULTIVIEW` (one multiview
//!   EXR): one file holding the views.
//! - one active view only: one file, without a suffix.
//!
//! A view is active when it is not disabled and, in the `STEREO_3D` setup
//! (`render.views_format`), when it is `left` or `right` (`BKE_scene_multiview_is_render_view_active`).
//!
//! The farm keeps a frame's files as `<key>/frames/<NNNN><suffix>.<ext>` ([`FrameViews::file_name`]).
//! A view suffix comes from the .blend (hostile input), so only suffixes that make one plain
//! file name each, which no frame number can be mistaken for, are accepted ([`FrameViews::new`]).

use std::fmt;

/// Longest view suffix accepted (Blender's own limit is 63 bytes).
pub const MAX_SUFFIX: usize = 63;

/// How a scene sets up its views (`render.views_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewsSetup {
    /// `STEREO_3D`: the `left` and `right` views.
    Stereo3d,
    /// `MULTIVIEW`: every enabled view.
    Multiview,
}

/// How views are saved (`render.image_settings.views_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageViews {
    /// One file per view.
    Individual,
    /// The views combined in one image (anaglyph, side-by-side...).
    Stereo3d,
    /// All views in one multiview EXR.
    Multiview,
}

/// One render view of a scene (`SceneRenderView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderView<'a> {
    pub name: &'a str,
    /// The file suffix (`file_suffix`).
    pub suffix: &'a str,
    /// Not disabled (`use`).
    pub enabled: bool,
}

/// The files each frame of a job makes: one per suffix, in the scene's view order. No suffix
/// list (the default) is one file per frame, named without a suffix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct FrameViews {
    suffixes: Vec<String>,
}

/// A scene whose views the farm cannot keep apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewsError {
    #[error("view file suffix `{0}` is not a plain file name part: use letters, digits, `_` and `-` (up to {MAX_SUFFIX}), not starting with a digit")]
    Suffix(String),
    #[error("two views save with the same file suffix `{0}`, so one would overwrite the other: give each view its own suffix")]
    Duplicate(String),
}

impl FrameViews {
    /// One file per frame (no multiview, or views saved in one file).
    pub fn single() -> Self {
        Self::default()
    }

    /// One file per suffix. Each must be empty or letters, digits, `_` and `-` not starting
    /// with a digit (a digit would read as part of the frame number), and all distinct.
    pub fn new<S: AsRef<str>>(suffixes: &[S]) -> Result<Self, ViewsError> {
        let mut seen: Vec<&str> = Vec::new();
        for suffix in suffixes.iter().map(AsRef::as_ref) {
            if !is_plain_suffix(suffix) {
                return Err(ViewsError::Suffix(suffix.to_owned()));
            }
            if seen.contains(&suffix) {
                return Err(ViewsError::Duplicate(suffix.to_owned()));
            }
            seen.push(suffix);
        }
        if seen.len() < 2 {
            return Ok(Self::single());
        }
        Ok(Self {
            suffixes: seen.into_iter().map(str::to_owned).collect(),
        })
    }

    /// The files Blender writes for each frame of a scene: see the module's rule.
    pub fn of_scene(
        setup: ViewsSetup,
        image: ImageViews,
        views: &[RenderView<'_>],
    ) -> Result<Self, ViewsError> {
        let active: Vec<&str> = views
            .iter()
            .filter(|v| v.enabled)
            .filter(|v| setup == ViewsSetup::Multiview || matches!(v.name, "left" | "right"))
            .map(|v| v.suffix)
            .collect();
        if image != ImageViews::Individual || active.len() < 2 {
            return Ok(Self::single());
        }
        Self::new(&active)
    }

    /// Whether each frame is one file.
    pub fn is_single(&self) -> bool {
        self.suffixes.is_empty()
    }

    /// The suffix of each file of a frame: `[""]` for one file.
    pub fn suffixes(&self) -> Vec<&str> {
        if self.suffixes.is_empty() {
            vec![""]
        } else {
            self.suffixes.iter().map(String::as_str).collect()
        }
    }

    /// The files of `frame`: `0001_L.png`, `0001_R.png` (or `0001.png`).
    pub fn file_names(&self, frame: i32, extension: &str) -> Vec<String> {
        self.suffixes()
            .into_iter()
            .map(|suffix| crate::layout::view_file_name(frame, suffix, extension))
            .collect()
    }

    /// Written as the jobs' `FARM_VIEWS`: the suffixes joined by `,` (empty for one file).
    pub fn canonical(&self) -> String {
        self.suffixes.join(",")
    }

    /// The inverse of [`FrameViews::canonical`].
    pub fn parse(text: &str) -> Result<Self, ViewsError> {
        if text.is_empty() {
            return Ok(Self::single());
        }
        Self::new(&text.split(',').collect::<Vec<_>>())
    }

    /// A view file's suffix from the name part after the frame number, if it is one of these.
    pub fn suffix_of<'n>(&self, rest: &'n str) -> Option<&'n str> {
        self.suffixes().contains(&rest).then_some(rest)
    }
}

impl TryFrom<Vec<String>> for FrameViews {
    type Error = ViewsError;

    fn try_from(suffixes: Vec<String>) -> Result<Self, ViewsError> {
        Self::new(&suffixes)
    }
}

impl From<FrameViews> for Vec<String> {
    fn from(views: FrameViews) -> Self {
        views.suffixes
    }
}

impl fmt::Display for FrameViews {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            return f.write_str("one file a frame");
        }
        write!(f, "one file a view ({})", self.suffixes.join(", "))
    }
}

/// Empty, or up to [`MAX_SUFFIX`] of `A-Z a-z 0-9 _ -`, not starting with a digit.
pub fn is_plain_suffix(suffix: &str) -> bool {
    suffix.len() <= MAX_SUFFIX
        && suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !suffix.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stereo(left: bool, right: bool) -> Vec<RenderView<'static>> {
        vec![
            RenderView {
                name: "left",
                suffix: "_L",
                enabled: left,
            },
            RenderView {
                name: "right",
                suffix: "_R",
                enabled: right,
            },
        ]
    }

    #[test]
    fn individual_views_make_one_file_each_with_the_suffix_before_the_extension() {
        let views = FrameViews::of_scene(
            ViewsSetup::Stereo3d,
            ImageViews::Individual,
            &stereo(true, true),
        )
        .unwrap();
        assert_eq!(views.suffixes(), ["_L", "_R"]);
        assert_eq!(views.file_names(12, "png"), ["0012_L.png", "0012_R.png"]);
        assert_eq!(views.file_names(-5, "exr"), ["-0005_L.exr", "-0005_R.exr"]);
        assert_eq!(FrameViews::parse(&views.canonical()).unwrap(), views);
    }

    #[test]
    fn combined_views_and_a_single_active_view_make_one_file() {
        for image in [ImageViews::Stereo3d, ImageViews::Multiview] {
            let views =
                FrameViews::of_scene(ViewsSetup::Stereo3d, image, &stereo(true, true)).unwrap();
            assert!(views.is_single());
            assert_eq!(views.file_names(1, "png"), ["0001.png"]);
        }
        let one = FrameViews::of_scene(
            ViewsSetup::Stereo3d,
            ImageViews::Individual,
            &stereo(true, false),
        )
        .unwrap();
        assert_eq!(one, FrameViews::single());
        assert_eq!(one.canonical(), "");
        assert_eq!(FrameViews::parse("").unwrap(), one);
    }

    #[test]
    fn the_stereo_setup_renders_only_left_and_right() {
        let mut views = stereo(true, true);
        views.push(RenderView {
            name: "centre",
            suffix: "_C",
            enabled: true,
        });
        let stereo =
            FrameViews::of_scene(ViewsSetup::Stereo3d, ImageViews::Individual, &views).unwrap();
        assert_eq!(stereo.suffixes(), ["_L", "_R"]);
        let all =
            FrameViews::of_scene(ViewsSetup::Multiview, ImageViews::Individual, &views).unwrap();
        assert_eq!(all.suffixes(), ["_L", "_R", "_C"]);
    }

    #[test]
    fn suffixes_that_are_not_plain_or_clash_are_refused() {
        for bad in [
            "/x",
            "..",
            "_L.png",
            "1",
            "9_L",
            "a b",
            "é",
            &"x".repeat(64),
        ] {
            assert_eq!(
                FrameViews::new(&["_L", bad]),
                Err(ViewsError::Suffix(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            FrameViews::new(&["_L", "_L"]),
            Err(ViewsError::Duplicate("_L".to_owned()))
        );
        // An empty suffix is Blender's default for a new custom view: that view's file has none.
        let custom = FrameViews::new(&["_L", ""]).unwrap();
        assert_eq!(custom.file_names(1, "png"), ["0001_L.png", "0001.png"]);
        assert_eq!(FrameViews::parse(&custom.canonical()).unwrap(), custom);
    }
}
