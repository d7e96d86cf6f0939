//! `frames=scene`: render the active scene's own range and step, read from the uploaded .blend
//! by `farm-blend` (no Blender in the Lambda).
//!
//! The object is read where it lies ([`crate::blend::read_blend`]: ranged reads with the event's
//! ETag as a condition, past the blocks the reader does not need), so neither memory nor disk
//! grows with the file's size. What it found is recorded in `job.json`
//! ([`farm_core::manifest::SceneFacts`]), so `farm status` and users can see what the farm
//! rendered and why.

use farm_blend::{BlendInfo, FileKind, Scene};
use farm_core::blender::OutputFormat;
use farm_core::engine::{self, Engine, EngineChoice, SceneEngine};
use farm_core::manifest::SceneFile;
use farm_core::request::TAG_FRAMES;
use farm_core::views::{FrameViews, ImageViews, RenderView, ViewsSetup};
use farm_core::FrameList;

/// The `frames` tag value that asks for the scene's own frames.
pub const SCENE_FRAMES: &str = "scene";

/// Whether the tags ask for the scene's own frames (`frames=scene`).
pub fn asks_for_scene(tags: &[(String, String)]) -> bool {
    tags.iter()
        .any(|(k, v)| k.trim() == TAG_FRAMES && v.trim().eq_ignore_ascii_case(SCENE_FRAMES))
}

/// Replaces the `frames=scene` tag's value with a frame list.
pub fn set_frames(tags: &mut [(String, String)], spec: &str) {
    for (k, v) in tags.iter_mut() {
        if k.trim() == TAG_FRAMES {
            spec.clone_into(v);
        }
    }
}

/// Sets the `frames` tag of an upload to `scene` (`farm submit --frames scene`).
pub fn set_frames_tag(tags: &mut [(&'static str, String)]) {
    for (k, v) in tags.iter_mut() {
        if *k == TAG_FRAMES {
            SCENE_FRAMES.clone_into(v);
        }
    }
}

/// What the reader found, as `job.json` records it.
pub use farm_core::manifest::SceneFacts as SceneRecord;

/// The outcome of reading the scene.
#[derive(Debug, Clone, PartialEq)]
pub enum SceneRead {
    /// The frames to render and what was found.
    Frames(Box<SceneRecord>),
    /// The file cannot give frames; the message says why and what to do.
    Invalid(String),
}

/// The frames and record for the upload as [`crate::blend::read_blend`] read it (or why it
/// could not).
pub fn from_read(read: &Result<BlendInfo, String>, max_frames: usize) -> SceneRead {
    match read {
        Ok(info) => from_info(info, max_frames),
        Err(reason) => SceneRead::Invalid(format!(
            "`frames=scene` needs the scene's frame range, but {reason}; or tag explicit frames (`frames=1-250`)"
        )),
    }
}

/// The record and frames for a read file.
pub fn from_info(info: &BlendInfo, max_frames: usize) -> SceneRead {
    let Some(active) = info.active_scene() else {
        return SceneRead::Invalid(
            "`frames=scene`: the .blend names no active scene; tag explicit frames (`frames=1-250`)"
                .to_owned(),
        );
    };
    let frames = match FrameList::from_frames(active.frames()) {
        Ok(frames) if frames.len() <= max_frames => frames,
        Ok(frames) => {
            return SceneRead::Invalid(format!(
                "`frames=scene`: scene `{}` has {} frames, more than the farm's limit of {max_frames}; tag a part of it (`frames={}-{}`)",
                active.name,
                frames.len(),
                active.frame_start,
                active.frame_start.saturating_add(i32::try_from(max_frames).unwrap_or(i32::MAX) - 1)
            ))
        }
        Err(err) => {
            return SceneRead::Invalid(format!(
                "`frames=scene`: the frame range {}-{} of scene `{}` is unusable: {err}",
                active.frame_start, active.frame_end, active.name
            ))
        }
    };
    let notes: Vec<String> = view_layer_note(active).into_iter().collect();
    SceneRead::Frames(Box::new(SceneRecord {
        version: info.version.to_string(),
        compression: info.compression.as_str().to_owned(),
        scene: active.name.clone(),
        frame_start: active.frame_start,
        frame_end: active.frame_end,
        frame_step: active.frame_step,
        frames: frames.canonical(),
        engine: active.engine.clone(),
        // The scene's own until the request's `engine=` is known: see [`record_engine`].
        rendered_with: choose_engine(None, Some(info)).engine.name().to_owned(),
        resolution: active.resolution,
        resolution_percentage: active.resolution_percentage,
        output_format: active.output_format.clone(),
        notes,
        files: info
            .files
            .iter()
            .map(|file| SceneFile {
                kind: file.kind.as_str().to_owned(),
                path: file.path.clone(),
                packed: file.packed,
                source: file.source.clone(),
            })
            .collect(),
    }))
}

/// Why the active scene cannot render, for the artist (`None`: it can, as far as the file
/// shows). Blender renders a scene through its camera, or (without one) through the first
/// camera object it finds in the scene, or through the cameras its timeline markers bind; it
/// needs none to show sequencer strips or to composite without Render Layers nodes. Objects
/// linked from a library may be cameras, so a file with libraries is never refused here.
///
/// A scene whose frame buffers cannot fit in a render task's memory
/// ([`farm_core::memory::too_large`]) cannot render either, nor one whose views the farm cannot
/// keep ([`frame_views`]).
pub fn cannot_render(info: &BlendInfo) -> Option<String> {
    let scene = info.active_scene()?;
    if let Err(refusal) = frame_views(Some(info)) {
        return Some(refusal);
    }
    if let Some(refusal) = farm_core::memory::too_large(
        &scene.name,
        scene.resolution,
        scene.resolution_percentage,
        scene.view_layers.len(),
    ) {
        return Some(refusal);
    }
    let may_render = scene.camera.is_some()
        || !scene.marker_cameras.is_empty()
        || scene.sequencer
        || scene.compositor
        || !info.cameras.is_empty()
        || info.files.iter().any(|f| f.kind == FileKind::Library);
    (!may_render).then(|| {
        format!(
            "scene `{}` has no camera, so Blender cannot render it (\"No camera found in scene\"): \
             add a camera and set it as the scene's camera (Scene Properties > Camera), and save the file",
            scene.name
        )
    })
}

/// What a scene with several view layers keeps in a single-layer output format: Blender saves
/// one image per frame, the compositor's result or, without compositing, the first view layer.
pub fn view_layer_note(scene: &Scene) -> Option<String> {
    const MULTILAYER: &str = "OPEN_EXR_MULTILAYER";
    if scene.view_layers.len() < 2 || scene.output_format == MULTILAYER {
        return None;
    }
    let kept = if scene.compositor {
        "the compositor's result".to_owned()
    } else {
        format!("only view layer `{}`", scene.view_layers[0])
    };
    Some(format!(
        "scene `{}` renders {} view layers ({}) into {}, one image per frame: each frame keeps {kept}; \
         to keep every layer, use OpenEXR MultiLayer (tag `format={MULTILAYER}`)",
        scene.name,
        scene.view_layers.len(),
        scene
            .view_layers
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", "),
        scene.output_format,
    ))
}

/// The engine a job on this file runs ([`farm_core::engine::choose`] over its active scene);
/// `info` is `None` when the file could not be read.
pub fn choose_engine(asked: Option<Engine>, info: Option<&BlendInfo>) -> EngineChoice {
    let scene = info.and_then(BlendInfo::active_scene).map(|s| SceneEngine {
        scene: &s.name,
        id: &s.engine,
    });
    engine::choose(asked, scene)
}

/// The format the job's frames are saved in ([`farm_core::blender::stills_format`] over the
/// active scene's output), and a note when the scene writes a movie the farm renders as stills.
pub fn stills_format(
    asked: Option<OutputFormat>,
    info: Option<&BlendInfo>,
) -> (Option<OutputFormat>, Option<String>) {
    let active = info.and_then(BlendInfo::active_scene);
    let format = farm_core::blender::stills_format(asked, active.map(|s| s.output_format.as_str()));
    let note = match (asked, active, format) {
        (None, Some(scene), Some(format)) => Some(match &scene.movie {
            Some(movie) => format!(
                "scene `{}` writes a movie ({}, {}): its frames are rendered as {format} stills",
                scene.name, movie.container, movie.codec
            ),
            None => format!(
                "scene `{}` writes a movie ({}): its frames are rendered as {format} stills",
                scene.name, scene.output_format
            ),
        }),
        _ => None,
    };
    (format, note)
}

/// The files each frame of the active scene makes ([`farm_core::views`]: one per view of a
/// multiview scene saving its views as individual files, else one; one for a file that could not
/// be read), or why the farm refuses the scene: view suffixes it cannot keep apart, or a movie
/// scene saving each view to its own file (Blender would write one movie per view, which the
/// farm does not make).
pub fn frame_views(info: Option<&BlendInfo>) -> Result<FrameViews, String> {
    let Some(scene) = info.and_then(BlendInfo::active_scene) else {
        return Ok(FrameViews::single());
    };
    let Some(multiview) = &scene.multiview else {
        return Ok(FrameViews::single());
    };
    let setup = match multiview.setup.as_str() {
        "MULTIVIEW" => ViewsSetup::Multiview,
        _ => ViewsSetup::Stereo3d,
    };
    let image = match multiview.image_views.as_str() {
        "STEREO_3D" => ImageViews::Stereo3d,
        "MULTIVIEW" => ImageViews::Multiview,
        _ => ImageViews::Individual,
    };
    let views: Vec<RenderView<'_>> = multiview
        .views
        .iter()
        .map(|v| RenderView {
            name: &v.name,
            suffix: &v.suffix,
            enabled: v.enabled,
        })
        .collect();
    let files = FrameViews::of_scene(setup, image, &views).map_err(|e| {
        format!(
            "scene `{}` renders several views (Stereoscopy) into individual files, but {e} \
             (Output Properties > Stereoscopy), then upload again",
            scene.name
        )
    })?;
    if !files.is_single() && scene.movie.is_some() {
        return Err(format!(
            "scene `{}` writes a movie with Stereoscopy saving each view to its own file \
             (Views Format: Individual), for which Blender writes one movie per view, and the \
             farm makes one movie a job: set Output Properties > Views > Views Format to Stereo 3D \
             (the views combined in one movie), or turn Stereoscopy off, then upload again",
            scene.name
        ));
    }
    Ok(files)
}

/// The extension of the movie the active scene asks for (its output is FFmpeg), which the job
/// makes from its frames; `None` for stills or a file that could not be read.
pub fn movie_extension(info: Option<&BlendInfo>) -> Option<String> {
    let movie = info.and_then(BlendInfo::active_scene)?.movie.as_ref()?;
    Some(movie.extension.clone())
}

/// Records in a `frames=scene` record the engine the job runs, and why when it is not the
/// scene's own.
pub fn record_engine(record: &mut SceneRecord, choice: &EngineChoice) {
    record.notes.extend(choice.note.iter().cloned());
    choice.engine.name().clone_into(&mut record.rendered_with);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A one-layer Cycles scene, `Shot`, frames 1-10, 64x36, with no camera.
    pub(crate) fn scene() -> Scene {
        Scene {
            name: "Shot".into(),
            frame_start: 1,
            frame_end: 10,
            frame_step: 1,
            fps: 24.0,
            resolution: [64, 36],
            resolution_percentage: 100,
            engine: "CYCLES".into(),
            output_format: "PNG".into(),
            output_path: String::new(),
            camera: None,
            marker_cameras: Vec::new(),
            sequencer: false,
            compositor: false,
            view_layers: vec!["ViewLayer".into()],
            movie: None,
            multiview: None,
        }
    }

    /// A Blender 4.2 file whose only (and active) scene is `scene`.
    pub(crate) fn info(scene: Scene) -> BlendInfo {
        BlendInfo {
            version: farm_blend::BlenderVersion { major: 4, minor: 2 },
            compression: farm_blend::Compression::None,
            scene: Some(scene.name.clone()),
            scenes: vec![scene],
            files: Vec::new(),
            cameras: Vec::new(),
        }
    }

    #[test]
    fn a_scene_without_any_way_to_a_picture_cannot_render() {
        let refused = cannot_render(&info(scene())).expect("refused");
        assert!(refused.contains("scene `Shot` has no camera"), "{refused}");
        assert!(refused.contains("Scene Properties > Camera"), "{refused}");
        // Each way Blender finds a picture.
        let ways: [fn(&mut BlendInfo); 6] = [
            |i| i.scenes[0].camera = Some("Cam".into()),
            |i| i.scenes[0].marker_cameras = vec!["Cam".into()],
            |i| i.scenes[0].sequencer = true,
            |i| i.scenes[0].compositor = true,
            |i| i.cameras = vec!["Some Cam".into()],
            |i| {
                i.files.push(farm_blend::ExternalFile {
                    kind: FileKind::Library,
                    path: "//lib.blend".into(),
                    name: "lib.blend".into(),
                    packed: false,
                    source: None,
                    tiles: Vec::new(),
                    sequence_uses: Vec::new(),
                });
            },
        ];
        for (i, way) in ways.iter().enumerate() {
            let mut renders = info(scene());
            way(&mut renders);
            assert_eq!(cannot_render(&renders), None, "way {i}");
        }
        // No active scene: nothing to decide here.
        let mut none = info(scene());
        none.scene = None;
        assert_eq!(cannot_render(&none), None);
    }

    #[test]
    fn several_view_layers_in_a_single_layer_format_get_a_note() {
        let mut shot = scene();
        assert_eq!(view_layer_note(&shot), None);
        shot.view_layers = vec!["Main".into(), "Background".into()];
        let note = view_layer_note(&shot).expect("a note");
        assert!(
            note.contains("2 view layers (`Main`, `Background`) into PNG"),
            "{note}"
        );
        assert!(note.contains("only view layer `Main`"), "{note}");
        assert!(note.contains("format=OPEN_EXR_MULTILAYER"), "{note}");
        shot.compositor = true;
        let note = view_layer_note(&shot).expect("a note");
        assert!(note.contains("the compositor's result"), "{note}");
        shot.output_format = "OPEN_EXR_MULTILAYER".into();
        assert_eq!(view_layer_note(&shot), None);
    }

    #[test]
    fn only_frames_scene_asks_for_the_scene() {
        assert!(asks_for_scene(&tags(&[("frames", "scene")])));
        assert!(asks_for_scene(&tags(&[
            ("chunk", "2"),
            ("frames", " Scene ")
        ])));
        assert!(!asks_for_scene(&tags(&[("frames", "1-10")])));
        assert!(!asks_for_scene(&tags(&[("frame", "scene")])));
        let mut t = tags(&[("frames", "scene"), ("chunk", "2")]);
        set_frames(&mut t, "1-10:3");
        assert_eq!(t, tags(&[("frames", "1-10:3"), ("chunk", "2")]));
    }

    /// A scene with Stereoscopy on, left and right saved as `image_views`.
    pub(crate) fn stereo(image_views: &str, right_suffix: &str) -> Scene {
        let view = |name: &str, suffix: &str| farm_blend::RenderView {
            name: name.into(),
            suffix: suffix.into(),
            enabled: true,
        };
        Scene {
            multiview: Some(farm_blend::Multiview {
                setup: "STEREO_3D".into(),
                image_views: image_views.into(),
                stereo_mode: None,
                views: vec![view("left", "_L"), view("right", right_suffix)],
            }),
            camera: Some("Camera".into()),
            ..scene()
        }
    }

    #[test]
    fn a_stereo_scene_makes_a_file_per_view_or_one() {
        let views = frame_views(Some(&info(stereo("INDIVIDUAL", "_R")))).unwrap();
        assert_eq!(views.suffixes(), ["_L", "_R"]);
        let combined = frame_views(Some(&info(stereo("STEREO_3D", "_R")))).unwrap();
        assert!(combined.is_single());
        assert!(frame_views(Some(&info(scene()))).unwrap().is_single());
        assert!(frame_views(None).unwrap().is_single());
    }

    #[test]
    fn views_the_farm_cannot_keep_apart_are_refused_before_compute() {
        for suffix in ["_L", "../x"] {
            let refused = cannot_render(&info(stereo("INDIVIDUAL", suffix))).expect("refused");
            assert!(refused.contains("scene `Shot`"), "{refused}");
            assert!(refused.contains(suffix), "{refused}");
        }
        // Combined in one image, the suffixes name no file.
        assert_eq!(cannot_render(&info(stereo("STEREO_3D", "_L"))), None);
    }

    /// An MKV, H.264 movie without audio.
    pub(crate) fn mkv() -> farm_blend::Movie {
        farm_blend::Movie {
            container: "MKV".into(),
            extension: "mkv".into(),
            codec: "H264".into(),
            crf: Some(23),
            video_bitrate: 0,
            gop_size: 12,
            audio_codec: None,
            audio_bitrate: 0,
            audio_mixrate: 0,
            audio_channels: 0,
        }
    }

    #[test]
    fn a_movie_saving_each_view_apart_is_refused_and_a_combined_one_is_not() {
        let movie = mkv();
        let individual = Scene {
            output_format: "FFMPEG".into(),
            movie: Some(movie.clone()),
            ..stereo("INDIVIDUAL", "_R")
        };
        let refused = cannot_render(&info(individual)).expect("refused");
        assert!(refused.contains("scene `Shot` writes a movie"), "{refused}");
        assert!(refused.contains("Views Format to Stereo 3D"), "{refused}");
        let combined = Scene {
            output_format: "FFMPEG".into(),
            movie: Some(movie),
            ..stereo("STEREO_3D", "_R")
        };
        assert_eq!(cannot_render(&info(combined)), None);
    }
}
