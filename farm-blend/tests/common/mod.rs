//! Test files made by Blender itself: Debian's `blender` executable and the official `bpy`
//! modules from PyPI (in virtual environments made by `scripts/bpy-venv.sh`, cached in
//! `~/.cache/blender-farm`).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use farm_blend::BlendInfo;
use serde_json::Value;

/// An external file as compared: kind, path, packed, source, tiles, sequence uses.
pub type FileFacts = (
    String,
    String,
    bool,
    Option<String>,
    Vec<i64>,
    Vec<(i64, i64, i64, bool)>,
);
use std::process::Command;

const MAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/blender/make_fixture.py");
const DUMP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/blender/dump_facts.py");
const BPY_VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bpy-venv.sh");

/// One way to run Blender.
#[derive(Debug, Clone)]
pub enum Blender {
    /// An executable, run as `blender -b`.
    Executable(PathBuf),
    /// A Python with the `bpy` module.
    Module(PathBuf),
}

impl Blender {
    /// Debian's executable: `$BLENDER` or `blender` on PATH.
    pub fn debian() -> Self {
        let path = std::env::var_os("BLENDER")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("blender"), PathBuf::from);
        Self::Executable(path)
    }

    /// The official `bpy` module of this version, in its cached virtual environment.
    pub fn bpy(version: &str) -> Self {
        let out = Command::new("bash")
            .arg(BPY_VENV)
            .arg(version)
            .output()
            .expect("running scripts/bpy-venv.sh");
        assert!(
            out.status.success(),
            "scripts/bpy-venv.sh {version} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self::Module(PathBuf::from(python))
    }

    fn run(&self, script: &str, arg: &str, open: Option<&Path>) -> String {
        let mut cmd = match self {
            Self::Executable(blender) => {
                let mut cmd = Command::new(blender);
                cmd.arg("-b");
                match open {
                    Some(file) => cmd.arg(file),
                    None => cmd.arg("--factory-startup"),
                };
                cmd.args(["--python-exit-code", "1", "--python", script, "--"]);
                if !arg.is_empty() {
                    cmd.arg(arg);
                }
                cmd
            }
            Self::Module(python) => {
                let mut cmd = Command::new(python);
                cmd.arg(script);
                match open {
                    Some(file) => cmd.arg(file),
                    None => cmd.arg(arg),
                };
                cmd
            }
        };
        let out = cmd.output().expect("starting Blender");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "Blender failed running {script} ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Makes `<dir>/shot.blend` (and `<dir>/lib/lib.blend`) with `make_fixture.py`.
    pub fn make_fixture(&self, dir: &Path, compress: bool) -> PathBuf {
        let config = serde_json::json!({ "dir": dir, "compress": compress }).to_string();
        let stdout = self.run(MAKE, &config, None);
        let path = stdout
            .lines()
            .find_map(|l| l.strip_prefix("FIXTURE="))
            .unwrap_or_else(|| panic!("make_fixture.py printed no FIXTURE= line:\n{stdout}"));
        PathBuf::from(path)
    }

    /// What Blender itself sees in `file` (`dump_facts.py`).
    pub fn facts(&self, file: &Path) -> serde_json::Value {
        let stdout = self.run(DUMP, "", Some(file));
        let json = stdout
            .lines()
            .find_map(|l| l.strip_prefix("FACTS="))
            .unwrap_or_else(|| panic!("dump_facts.py printed no FACTS= line:\n{stdout}"));
        serde_json::from_str(json).expect("FACTS= is JSON")
    }
}

/// Every fact the reader reports, against Blender's (`dump_facts.py`); the external files as
/// compared. `fold_separators`: compare paths with `\\` as `/` (Blender makes the paths of files
/// saved before 2.50 native when it opens them; the farm's dependency rules read both alike).
pub fn compare(info: &BlendInfo, blender: &Value, fold_separators: bool) -> BTreeSet<FileFacts> {
    assert_eq!(
        info.version.to_string(),
        blender["version"].as_str().unwrap()
    );
    assert_eq!(
        info.scene.as_deref(),
        blender["scene"].as_str(),
        "active scene"
    );
    let theirs = blender["scenes"].as_array().unwrap();
    assert_eq!(info.scenes.len(), theirs.len(), "scene count");
    for expected in theirs {
        let name = expected["name"].as_str().unwrap();
        let scene = info
            .scenes
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("the reader misses scene {name}"));
        let int = |key: &str| expected[key].as_i64().unwrap();
        assert_eq!(i64::from(scene.frame_start), int("frame_start"), "{name}");
        assert_eq!(i64::from(scene.frame_end), int("frame_end"), "{name}");
        assert_eq!(i64::from(scene.frame_step), int("frame_step"), "{name}");
        let fps = expected["fps"].as_f64().unwrap();
        assert!(
            (scene.fps - fps).abs() < 1e-9,
            "{name}: fps {} vs {fps}",
            scene.fps
        );
        assert_eq!(
            serde_json::to_value(scene.resolution).unwrap(),
            expected["resolution"],
            "{name}"
        );
        assert_eq!(
            i64::from(scene.resolution_percentage),
            int("resolution_percentage"),
            "{name}"
        );
        assert_eq!(scene.engine, expected["engine"].as_str().unwrap(), "{name}");
        assert_eq!(
            scene.output_format,
            expected["output_format"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            scene.camera.as_deref(),
            expected["camera"].as_str(),
            "{name}"
        );
        let names =
            |key: &str| -> Vec<String> { serde_json::from_value(expected[key].clone()).unwrap() };
        assert_eq!(scene.marker_cameras, names("marker_cameras"), "{name}");
        assert_eq!(scene.view_layers, names("view_layers"), "{name}");
        assert_eq!(
            Value::Bool(scene.sequencer),
            expected["sequencer"],
            "{name}"
        );
        assert_eq!(
            Value::Bool(scene.compositor),
            expected["compositor"],
            "{name}"
        );
        // Files saved before multiview (2.75) have no `multiview` in Blender's dump either.
        let multiview = expected.get("multiview").cloned().unwrap_or(Value::Null);
        assert_eq!(
            serde_json::to_value(&scene.multiview).unwrap(),
            multiview,
            "{name}: multiview"
        );
    }
    let cameras: Vec<String> = serde_json::from_value(blender["cameras"].clone()).unwrap();
    assert_eq!(info.cameras, cameras, "camera objects");
    let fold = |path: &str| {
        if fold_separators {
            path.replace('\\', "/")
        } else {
            path.to_owned()
        }
    };
    let ours: BTreeSet<FileFacts> = info
        .files
        .iter()
        .map(|f| {
            (
                f.kind.as_str().to_owned(),
                fold(&f.path),
                f.packed,
                f.source.clone(),
                f.tiles.iter().map(|&t| i64::from(t)).collect(),
                f.sequence_uses
                    .iter()
                    .map(|u| {
                        (
                            i64::from(u.frame_duration),
                            i64::from(u.frame_start),
                            i64::from(u.frame_offset),
                            u.cyclic,
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let theirs: BTreeSet<FileFacts> = blender["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                fold(f["path"].as_str().unwrap()),
                f["packed"].as_bool().unwrap(),
                f["source"].as_str().map(str::to_owned),
                f["tiles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_i64().unwrap())
                    .collect(),
                f["sequence_uses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| {
                        let u = u.as_array().unwrap();
                        (
                            u[0].as_i64().unwrap(),
                            u[1].as_i64().unwrap(),
                            u[2].as_i64().unwrap(),
                            u[3].as_bool().unwrap(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "external files");
    ours
}
