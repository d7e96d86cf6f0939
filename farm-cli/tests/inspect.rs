//! `farm inspect` and the scene's own frames in `farm render`, read from the .blend without
//! Blender: checked against what Blender itself prints for the same file.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{farm, make_project, run};
use farm_core::blender::{scene_info_args, Blender, SceneInfo};
use farm_testkit::{make_scene, Pipe, SceneOptions};
use serde_json::Value;

/// What Blender reports for the active scene of `blend`.
fn blender_says(blend: &Path) -> SceneInfo {
    let blender = farm_testkit::blender().unwrap();
    let args = scene_info_args(&Blender::Executable(blender.clone()), blend);
    let out = Command::new(blender)
        .args(args)
        .output()
        .expect("blender runs");
    SceneInfo::from_output(&String::from_utf8_lossy(&out.stdout)).expect("blender prints it")
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn inspect_json_has_the_documented_shape_and_blenders_facts() {
    let dir = tempfile::tempdir().unwrap();
    for compress in [false, true] {
        let options = SceneOptions {
            start: 4,
            end: 31,
            step: 3,
            width: 37,
            height: 21,
            compress,
            ..SceneOptions::default()
        };
        let name = if compress { "zstd" } else { "plain" };
        let blend = make_scene(dir.path(), name, &options).unwrap();
        let stdout = run(farm().arg("inspect").arg("--json").arg(&blend))
            .ok()
            .to_owned();
        let json: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
        assert_eq!(
            keys(&json),
            BTreeSet::from([
                "version",
                "blender",
                "compression",
                "scene",
                "renders_with",
                "scenes",
                "files",
                "libraries"
            ])
        );
        // The scene is Cycles: so is the engine the farm renders it with.
        assert_eq!(json["renders_with"], "cycles");
        assert_eq!(json["version"], "3.4");
        // Saved by 3.4: a farm of 4.2 to 5.3 renders it with the oldest newer series.
        assert_eq!(json["blender"]["series"], "4.2");
        let why = json["blender"]["why"].as_str().unwrap();
        assert!(
            why.contains("saved by Blender 3.4, which the farm does not run"),
            "{why}"
        );
        assert_eq!(json["compression"], if compress { "zstd" } else { "none" });

        let blender = blender_says(&blend);
        assert_eq!(json["scene"], blender.scene.as_str());
        let scenes = json["scenes"].as_array().unwrap();
        let active = scenes
            .iter()
            .find(|s| s["name"] == blender.scene.as_str())
            .expect("the active scene is listed");
        assert_eq!(
            keys(active),
            BTreeSet::from([
                "name",
                "frame_start",
                "frame_end",
                "frame_step",
                "fps",
                "resolution",
                "resolution_percentage",
                "engine",
                "output_format",
                "camera",
            ])
        );
        assert_eq!(active["frame_start"], blender.start);
        assert_eq!(active["frame_end"], blender.end);
        assert_eq!(active["frame_step"], blender.step);
        assert_eq!(active["engine"], blender.engine.as_str());
        assert_eq!(active["output_format"], blender.format.as_str());
        assert_eq!(active["resolution"], serde_json::json!([37, 21]));
        assert!(active["fps"].is_number());
        assert!(json["files"].is_array());
    }
}

#[test]
fn inspect_table_marks_the_active_scene_and_file_states() {
    let dir = tempfile::tempdir().unwrap();
    let blend = make_scene(dir.path(), "shot", &SceneOptions::default()).unwrap();
    let stdout = run(farm().arg("inspect").arg(&blend)).ok().to_owned();
    assert!(stdout.contains("saved by Blender 3.4"), "{stdout}");
    let active: Vec<&str> = stdout.lines().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(active.len(), 1, "{stdout}");
    assert!(active[0].contains("1-24 (24 frames)"), "{stdout}");
    assert!(active[0].contains("Cycles"), "{stdout}");
}

#[test]
fn inspect_refuses_what_is_not_a_readable_blend_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.blend");
    std::fs::write(&text, "just some text").unwrap();
    let line = run(farm().arg("inspect").arg(&text))
        .one_line_error()
        .to_owned();
    assert!(line.contains("notes.blend is not a .blend file"), "{line}");

    let blend = make_scene(dir.path(), "cut", &SceneOptions::default()).unwrap();
    let bytes = std::fs::read(&blend).unwrap();
    std::fs::write(&blend, &bytes[..bytes.len() / 2]).unwrap();
    let line = run(farm().arg("inspect").arg("--json").arg(&blend))
        .one_line_error()
        .to_owned();
    assert!(line.contains("truncated"), "{line}");

    let missing = dir.path().join("nope.blend");
    let line = run(farm().arg("inspect").arg(&missing))
        .one_line_error()
        .to_owned();
    assert!(line.contains("nope.blend does not exist"), "{line}");
}

#[test]
fn inspect_reads_a_file_saved_by_blender_2_79_with_its_scene_and_files() {
    // A real file saved by Blender 2.79 (farm-blend/tests/old/README.md), next to one of the
    // two textures it uses.
    let dir = tempfile::tempdir().unwrap();
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../farm-blend/tests/old/plane_2_textures_2_texcoords_279.blend.gz");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap()),
        &mut bytes,
    )
    .unwrap();
    let blend = dir.path().join("plane.blend");
    std::fs::write(&blend, bytes).unwrap();
    std::fs::write(dir.path().join("DROPLETS.tga"), b"a texture").unwrap();

    let stdout = run(farm().arg("inspect").arg(&blend)).ok().to_owned();
    assert!(stdout.contains("saved by Blender 2.79"), "{stdout}");
    let active: Vec<&str> = stdout.lines().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(active.len(), 1, "{stdout}");
    for fact in [
        "Scene",
        "1-250 (250 frames)",
        "1920x1080 @ 50%",
        "EEVEE",
        "camera `Camera`",
    ] {
        assert!(active[0].contains(fact), "{fact} in {stdout}");
    }
    let file_state = |path: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(path))
            .unwrap_or_else(|| panic!("{path} listed in {stdout}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(file_state("//DROPLETS.tga"), "OK");
    assert_eq!(file_state("//rgb_test.png"), "missing");
    assert!(
        stdout.contains("//rgb_test.png  (renders magenta)"),
        "{stdout}"
    );

    let json: Value =
        serde_json::from_str(run(farm().arg("inspect").arg("--json").arg(&blend)).ok()).unwrap();
    assert_eq!(json["version"], "2.79");
    assert_eq!(json["scenes"][0]["engine"], "BLENDER_EEVEE");
    assert_eq!(json["files"].as_array().unwrap().len(), 2);
}

/// A `blender` that logs each start to a pipe (it may write no file outside its work folder),
/// then runs the real one; and the pipe, listened to.
fn counting_blender(dir: &Path) -> (std::path::PathBuf, Pipe) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("starts.pipe");
    let wrapper = dir.join("blender-counting");
    let real = farm_testkit::blender().unwrap();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho start >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, Pipe::listen(&log).unwrap())
}

#[test]
fn render_without_frames_starts_blender_once_per_chunk_and_renders_the_stepped_range() {
    let dir = tempfile::tempdir().unwrap();
    let options = SceneOptions {
        start: 3,
        end: 12,
        step: 4,
        ..SceneOptions::default()
    };
    let blend = make_scene(dir.path(), "stepped", &options).unwrap();
    let (blender, log) = counting_blender(dir.path());
    let out = dir.path().join("out");
    let result = run(farm()
        .args(["render", "--workers", "1", "--out"])
        .arg(&out)
        .arg(&blend)
        .env("BLENDER", &blender));
    result.ok();
    let frames: Vec<i32> = common::frame_files(&out.join("frames"))
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(frames, [3, 7, 11]);
    let starts = String::from_utf8(log.read().unwrap())
        .unwrap()
        .lines()
        .count();
    assert_eq!(
        starts, 1,
        "one chunk, one Blender start, none to read the range"
    );
}

#[test]
fn render_and_inspect_refuse_a_scene_without_a_camera_before_blender_starts() {
    let dir = tempfile::tempdir().unwrap();
    let options = SceneOptions {
        no_camera: true,
        ..SceneOptions::default()
    };
    let blend = make_scene(dir.path(), "nocam", &options).unwrap();
    let (blender, log) = counting_blender(dir.path());
    for frames in [None, Some("1-3")] {
        let mut command = farm();
        command
            .env("BLENDER", &blender)
            .arg("render")
            .arg(&blend)
            .arg("--out")
            .arg(dir.path().join("out"));
        if let Some(frames) = frames {
            command.arg("--frames").arg(frames);
        }
        let line = run(&mut command).one_line_error().to_owned();
        assert!(line.contains("scene `Scene` has no camera"), "{line}");
        assert!(line.contains("Scene Properties > Camera"), "{line}");
    }
    assert!(log.read().unwrap().is_empty(), "Blender was started");
    let stdout = run(farm().arg("inspect").arg(&blend)).ok().to_owned();
    assert!(
        stdout.contains("note: scene `Scene` has no camera"),
        "{stdout}"
    );
}

/// `farm inspect` shows the whole tree the farm checks: a linked library's own files with their
/// state, so a file a library lacks shows before `farm submit` refuses it, and each missing
/// file says what it does to the frames.
#[test]
fn inspect_shows_each_librarys_own_files_and_what_a_missing_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let project = make_project(dir.path());
    std::fs::remove_file(project.join("shared/green.png")).unwrap();
    std::fs::remove_file(project.join("shots/tex/red.png")).unwrap();
    let shot = project.join("shots/shot.blend");

    let json: Value =
        serde_json::from_str(run(farm().args(["inspect", "--json"]).arg(&shot)).ok()).unwrap();
    let libraries = json["libraries"].as_array().unwrap();
    assert_eq!(libraries.len(), 1, "{json}");
    assert_eq!(libraries[0]["path"], "//../lib/props.blend");
    let files = libraries[0]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{json}");
    assert_eq!(files[0]["path"], "//../shared/green.png");
    assert_eq!(files[0]["state"], "missing");
    assert_eq!(files[0]["hint"], "renders magenta");

    let text = run(farm().arg("inspect").arg(&shot)).ok().to_owned();
    assert!(
        text.contains("files of library //../lib/props.blend ("),
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.contains("missing") && l.contains("//../shared/green.png  (renders magenta)")
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("missing") && l.contains("//tex/red.png  (renders magenta)")),
        "{text}"
    );
}
