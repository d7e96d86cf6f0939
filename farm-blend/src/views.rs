//! A scene's multiview (stereo) output: whether Stereoscopy is on (`RenderData.scemode &
//! R_MULTIVIEW`), how the views are set up (`RenderData.views_format`), how they are saved
//! (`ImageFormatData.views_format` and its `stereo3d_format.display_mode`) and the render views
//! (`SceneRenderView`, the scene's data blocks), named as Blender's Python API names them
//! (`DNA_scene_types.h`, `rna_scene.cc`).

use serde::Serialize;

use crate::sdna::View;

/// `RenderData.scemode`: Stereoscopy (`render.use_multiview`).
const R_MULTIVIEW: i64 = 1 << 21;
/// `SceneRenderView.viewflag`: the view is off (`use` unchecked).
const SCE_VIEW_DISABLE: i64 = 1 << 0;

/// A scene's multiview settings, when Stereoscopy is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Multiview {
    /// `render.views_format`: `STEREO_3D` (left and right) or `MULTIVIEW` (custom views).
    pub setup: String,
    /// `render.image_settings.views_format`: `INDIVIDUAL` (a file per view), `STEREO_3D` (one
    /// image) or `MULTIVIEW` (one multiview EXR).
    pub image_views: String,
    /// `image_settings.stereo_3d_format.display_mode` when `image_views` is `STEREO_3D`:
    /// `ANAGLYPH`, `INTERLACE`, `TIMESEQUENTIAL`, `SIDEBYSIDE`, `TOPBOTTOM`.
    pub stereo_mode: Option<String>,
    /// The render views, in order.
    pub views: Vec<RenderView>,
}

/// One render view (`SceneRenderView`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderView {
    pub name: String,
    /// `file_suffix`: added to the file name of the view's image.
    pub suffix: String,
    /// `use`: the view is rendered.
    pub enabled: bool,
}

/// The multiview settings of a scene's `RenderData` (`r`); `None` with Stereoscopy off. The
/// views come later, from the scene's data blocks ([`render_view`]).
pub(crate) fn multiview(r: &View<'_>) -> Option<Multiview> {
    if r.int("scemode").unwrap_or(0) & R_MULTIVIEW == 0 {
        return None;
    }
    let setup = match r.int("views_format") {
        Some(1) => "MULTIVIEW",
        _ => "STEREO_3D",
    };
    let format = r.sub("im_format");
    let image_views = match format.as_ref().and_then(|f| f.int("views_format")) {
        Some(1) => "STEREO_3D",
        Some(2) => "MULTIVIEW",
        _ => "INDIVIDUAL",
    };
    let stereo_mode = (image_views == "STEREO_3D")
        .then(|| {
            let mode = format?.sub("stereo3d_format")?.int("display_mode")?;
            Some(display_mode_name(mode))
        })
        .flatten();
    Some(Multiview {
        setup: setup.to_owned(),
        image_views: image_views.to_owned(),
        stereo_mode,
        views: Vec::new(),
    })
}

/// A `SceneRenderView` data block.
pub(crate) fn render_view(view: &View<'_>) -> Option<RenderView> {
    Some(RenderView {
        name: view.string("name")?,
        suffix: view.string("suffix").unwrap_or_default(),
        enabled: view.int("viewflag").unwrap_or(0) & SCE_VIEW_DISABLE == 0,
    })
}

/// Blender's name of a `Stereo3dFormat.display_mode`.
fn display_mode_name(mode: i64) -> String {
    let name = match mode {
        0 => "ANAGLYPH",
        1 => "INTERLACE",
        2 => "TIMESEQUENTIAL",
        3 => "SIDEBYSIDE",
        4 => "TOPBOTTOM",
        other => return format!("UNKNOWN_{other}"),
    };
    name.to_owned()
}
