//! EEVEE and Workbench render as themselves through `farm render`: every frame equals, pixel by
//! pixel, the same Blender's own render of the scene with that engine. Scenes and reference
//! frames are made at test time by each Blender the farm runs here: Debian's Blender 3.4 (EEVEE
//! legacy), bpy 4.2 and bpy 4.5 (EEVEE Next), all on the CPU through Mesa's llvmpipe over EGL.
//!
//! EEVEE Next compiles its shaders on the first frame (over a minute on 2 busy cores), so its
//! scenes have one frame; the others two.

mod common;

use std::path::{Path, PathBuf};

use common::{farm, farm_render_with, run};
use farm_testkit::TestBlender;

const MAKE_SCENE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/engines/make_scene.py");

/// Makes `<dir>/<engine>.blend` set to `engine` with frames `first..=last`, and this Blender's
/// own render of each frame in `<dir>/<engine>-reference/<frame>.png`.
fn make_scene(blender: &TestBlender, dir: &Path, engine: &str, last: i32) -> (PathBuf, PathBuf) {
    let blend = dir.join(format!("{engine}.blend"));
    let reference = dir.join(format!("{engine}-reference"));
    let options = serde_json::json!({
        "output": blend,
        "engine": engine,
        "frames": [1, last],
        "reference": reference,
    });
    let output = blender
        .script(Path::new(MAKE_SCENE), &[&options.to_string()])
        .output()
        .expect("blender runs");
    assert!(
        output.status.success() && blend.is_file(),
        "{} could not make the {engine} scene: {}\n{}",
        blender.name,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (blend, reference)
}

/// Every pixel of two PNGs, side by side; panics on another size.
fn assert_same_pixels(farm: &Path, reference: &Path, what: &str) {
    let (a, b) = (
        std::fs::read(farm).unwrap(),
        std::fs::read(reference).unwrap(),
    );
    let mut differ = 0;
    for y in 0..36 {
        for x in 0..64 {
            let got = farm_testkit::pixel(&a, x, y).unwrap();
            let want = farm_testkit::pixel(&b, x, y).unwrap();
            if got != want {
                differ += 1;
            }
        }
    }
    assert!(
        farm_testkit::pixel(&a, 64, 0).is_err() && farm_testkit::pixel(&a, 0, 36).is_err(),
        "{what}: not 64x36"
    );
    assert_eq!(
        differ, 0,
        "{what}: {differ} of 2304 pixels differ from Blender's own render"
    );
}

/// `farm render` of each engine's scene with this Blender: the farm says which engine it ran,
/// and every frame equals Blender's own.
fn engines_render_as_themselves(blender: &TestBlender, eevee_frames: i32) {
    let dir = tempfile::tempdir().unwrap();
    for (engine, label, last) in [
        ("workbench", "Workbench", 2),
        ("eevee", "EEVEE", eevee_frames),
    ] {
        let (blend, reference) = make_scene(blender, dir.path(), engine, last);
        let inspect = run(farm().args(["inspect", "--json"]).arg(&blend));
        let report: serde_json::Value = serde_json::from_str(inspect.ok()).unwrap();
        assert_eq!(report["renders_with"], engine, "{}", blender.name);

        let out = dir.path().join(format!("{engine}.farm"));
        let stdout = farm_render_with(blender, &blend, &out);
        assert!(
            stdout.contains(&format!("frame(s) with {label} ")),
            "{}: {stdout}",
            blender.name
        );
        for frame in 1..=last {
            assert_same_pixels(
                &out.join(format!("frames/{frame:04}.png")),
                &reference.join(format!("{frame}.png")),
                &format!("{} {engine} frame {frame}", blender.name),
            );
        }
    }
}

#[test]
fn debian_blender_3_4_renders_eevee_and_workbench_as_itself() {
    engines_render_as_themselves(&TestBlender::executable().unwrap(), 2);
}

#[test]
fn bpy_4_2_renders_eevee_next_and_workbench_as_itself() {
    engines_render_as_themselves(&TestBlender::bpy("4.2.23").unwrap(), 1);
}

#[test]
fn bpy_4_5_renders_eevee_next_and_workbench_as_itself() {
    engines_render_as_themselves(&TestBlender::bpy("4.5.15").unwrap(), 1);
}

/// Makes `<dir>/<name>.blend` with Debian's Blender: Workbench, frames 1 to `last`, set to the
/// movie `movie` (container, codec, crf, audio_codec, fps as Blender names them).
fn movie_scene(dir: &Path, name: &str, last: i32, movie: &serde_json::Value) -> PathBuf {
    let blend = dir.join(format!("{name}.blend"));
    let options = serde_json::json!({
        "output": blend,
        "engine": "workbench",
        "frames": [1, last],
        "movie": movie,
    });
    let output = TestBlender::executable()
        .unwrap()
        .script(Path::new(MAKE_SCENE), &[&options.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    blend
}

/// A scene set to a movie (MKV, H.264): the reader reports the movie's settings and
/// `farm render` renders its frames as PNG stills (Blender refuses to write a movie a frame at a
/// time: "Cannot write a single file with an animation format selected"), then writes the movie
/// the scene asks for from them, checked with `ffprobe`.
#[test]
fn a_movie_scene_renders_png_stills() {
    let dir = tempfile::tempdir().unwrap();
    let movie = serde_json::json!({"container": "MKV", "codec": "H264", "crf": "HIGH", "audio_codec": "AAC", "fps": 12});
    let blend = movie_scene(dir.path(), "movie", 3, &movie);
    let inspect = run(farm().args(["inspect", "--json"]).arg(&blend));
    let report: serde_json::Value = serde_json::from_str(inspect.ok()).unwrap();
    let scene = &report["scenes"][0];
    assert_eq!(scene["output_format"], "FFMPEG");
    assert_eq!(scene["movie"]["container"], "MKV");
    assert_eq!(scene["movie"]["extension"], "mkv");
    assert_eq!(scene["movie"]["codec"], "H264");
    assert_eq!(scene["movie"]["crf"], 20);
    assert_eq!(scene["movie"]["audio_codec"], "AAC");

    let out = dir.path().join("out");
    let result = run(farm().arg("render").arg(&blend).arg("--out").arg(&out));
    let stdout = result.ok();
    assert!(
        stdout.contains(
            "note: scene `Scene` writes a movie (MKV, H264): its frames are rendered as PNG stills"
        ),
        "{stdout}"
    );
    for frame in 1..=3 {
        let png = std::fs::read(out.join(format!("frames/{frame:04}.png"))).unwrap();
        assert!(farm_testkit::pixel(&png, 0, 0).is_ok(), "frame {frame}");
    }
    let movie = out.join("movie.mkv");
    assert!(
        stdout.contains(&format!("movie:   {} (MKV H264", movie.display())),
        "{stdout}"
    );
    let probe = farm_testkit::probe_movie(&movie).unwrap();
    assert_eq!(probe["format"]["format_name"], "matroska,webm", "{probe}");
    let streams = probe["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(video["codec_name"], "h264", "{probe}");
    assert_eq!(video["nb_read_frames"], "3", "{probe}");
    assert_eq!(video["r_frame_rate"], "12/1", "{probe}");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(64), Some(36))
    );
    let audio = streams.iter().find(|s| s["codec_type"] == "audio");
    assert_eq!(
        audio.map(|a| &a["codec_name"]),
        Some(&serde_json::json!("aac")),
        "{probe}"
    );
}

/// A movie Blender refuses to write (an MPEG-4 file with the FFV1 codec, which FFmpeg cannot
/// put in it) fails after its frames with Blender's own error line, as a failed frame does, not
/// the traceback or the last lines of Blender's output.
#[test]
fn a_movie_blender_refuses_shows_blenders_own_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let movie = serde_json::json!({"container": "MPEG4", "codec": "FFV1", "crf": "HIGH", "audio_codec": "NONE", "fps": 12});
    let blend = movie_scene(dir.path(), "refused", 2, &movie);

    let out = dir.path().join("out");
    let result = run(farm().arg("render").arg(&blend).arg("--out").arg(&out));
    let error = result.one_line_error();
    assert!(
        error.ends_with(
            "file(s) written): Error: Could not initialize streams, probably unsupported codec combination"
        ),
        "{error}"
    );
    assert!(out.join("frames/0002.png").is_file(), "the frames stay");
    assert!(!out.join("movie.mp4").exists());
}
