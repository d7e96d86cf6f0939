//! A multiview (stereo) scene renders as Blender renders it: `farm render` keeps every file
//! Blender's own `render.render(animation=True)` (what `blender -b scene.blend -a` runs) writes,
//! named as Blender names them, each equal pixel by pixel. Scenes and reference frames are made
//! at test time by Debian's Blender 3.4 and bpy 4.2: left and right saved as individual files
//! (`0001_L.png`, `0001_R.png`), and combined in one image (side by side, anaglyph).
//!
//! Before the farm knew views, the individual files failed every frame with "blender wrote no
//! image" (the renderer looked for `frame_1.png`, Blender wrote `frame_1_L.png`); `farm
//! estimate`'s samples failed the same way until they rendered with the scene's views.

mod common;

use std::path::Path;

use common::{assert_zip_holds, farm, farm_render_with, run};
use farm_testkit::TestBlender;

const MAKE_SCENE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/multiview/make_scene.py");

/// A PNG's width and height, from its header.
fn size(png: &[u8]) -> (usize, usize) {
    let be = |at: usize| {
        usize::try_from(u32::from_be_bytes(png[at..at + 4].try_into().unwrap())).unwrap()
    };
    (be(16), be(20))
}

/// Every pixel of two PNGs of the same size.
fn assert_same_pixels(farm: &Path, reference: &Path, what: &str) {
    let (a, b) = (
        std::fs::read(farm).unwrap_or_else(|e| panic!("{what}: {}: {e}", farm.display())),
        std::fs::read(reference).unwrap(),
    );
    let (width, height) = size(&b);
    assert_eq!(size(&a), (width, height), "{what}: size");
    let mut differ = 0;
    for y in 0..height {
        for x in 0..width {
            if farm_testkit::pixel(&a, x, y).unwrap() != farm_testkit::pixel(&b, x, y).unwrap() {
                differ += 1;
            }
        }
    }
    assert_eq!(
        differ,
        0,
        "{what}: {differ} of {} pixels differ from Blender's own render",
        width * height
    );
}

/// Renders each kind of stereo output with `farm render` on `blender` and compares every file
/// with Blender's own animation render.
fn stereo_renders_as_blender(blender: &TestBlender) {
    let dir = tempfile::tempdir().unwrap();
    for (views, files) in [
        ("INDIVIDUAL", &["_L", "_R"][..]),
        ("SIDEBYSIDE", &[""][..]),
        ("ANAGLYPH", &[""][..]),
    ] {
        let what = format!("{} {views}", blender.name);
        let blend = dir.path().join(format!("{views}.blend"));
        let reference = dir.path().join(format!("{views}-reference"));
        let options = serde_json::json!({"output": blend, "views": views, "reference": reference});
        let made = blender
            .script(Path::new(MAKE_SCENE), &[&options.to_string()])
            .output()
            .expect("blender runs");
        assert!(
            made.status.success() && blend.is_file(),
            "{what}: could not make the scene: {}\n{}",
            String::from_utf8_lossy(&made.stdout),
            String::from_utf8_lossy(&made.stderr)
        );
        let mut names: Vec<String> = std::fs::read_dir(&reference)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let expected: Vec<String> = (1..=2)
            .flat_map(|frame| files.iter().map(move |s| format!("{frame:04}{s}.png")))
            .collect();
        assert_eq!(names, expected, "{what}: Blender's own files");

        // The reader's facts, as `farm inspect` shows them.
        let inspect = run(farm().args(["inspect", "--json"]).arg(&blend));
        let report: serde_json::Value = serde_json::from_str(inspect.ok()).unwrap();
        let multiview = &report["scenes"][0]["multiview"];
        assert_eq!(multiview["setup"], "STEREO_3D", "{what}");
        let (image_views, mode) = match views {
            "INDIVIDUAL" => ("INDIVIDUAL", serde_json::Value::Null),
            mode => ("STEREO_3D", mode.into()),
        };
        assert_eq!(multiview["image_views"], image_views, "{what}");
        assert_eq!(multiview["stereo_mode"], mode, "{what}");
        assert_eq!(multiview["views"][1]["suffix"], "_R", "{what}");

        let out = dir.path().join(format!("{views}.farm"));
        let stdout = farm_render_with(blender, &blend, &out);
        assert!(stdout.contains("rendered 2 frame(s)"), "{what}: {stdout}");
        for name in &expected {
            assert_same_pixels(
                &out.join("frames").join(name),
                &reference.join(name),
                &format!("{what} {name}"),
            );
        }
        // The archive holds every file of every frame.
        assert_zip_holds(&out.join("frames.zip"), &expected);
        if views == "INDIVIDUAL" {
            // `farm estimate` renders its samples as the farm renders the frames: a frame is
            // both its view files (it failed with "blender wrote no image" before).
            let (var, path) = blender.env();
            let estimate = run(farm()
                .env(var, path)
                .args(["estimate", "--json", "--samples", "1", "--threads", "1"])
                .arg(&blend));
            let json: serde_json::Value = serde_json::from_str(estimate.ok())
                .unwrap_or_else(|e| panic!("{what}: {e}: {estimate:#?}"));
            assert_eq!(json["frames"], 2, "{what}: {json}");
            let sampled = json["sampled"].as_array().expect("sampled frames");
            assert!(
                !sampled.is_empty() && sampled.iter().all(|s| s["seconds"].as_f64() > Some(0.0)),
                "{what}: {json}"
            );
        }
    }
}

#[test]
fn debian_blender_3_4_renders_stereo_as_itself() {
    stereo_renders_as_blender(&TestBlender::executable().unwrap());
}

#[test]
fn bpy_4_2_renders_stereo_as_itself() {
    stereo_renders_as_blender(&TestBlender::bpy("4.2.23").unwrap());
}
