//! `farm render` end to end: the real binary, real Blender, small generated scenes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{
    assert_frames_show_their_number, assert_zip_holds, farm, frame_files, names,
    processes_mentioning, run, scene,
};

/// Frames and how many of them, from the summary line `rendered N frame(s) (M already done)`.
fn rendered_and_skipped(stdout: &str) -> (usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rendered "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse().unwrap())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn the_scenes_own_range_and_step_render_into_the_default_folder_with_a_zip() {
    let dir = tempfile::tempdir().unwrap();
    // Frames 2, 5, 8, 11: the scene's own range and step, read from the .blend.
    let blend = scene(dir.path(), "shot", 2, 12, 3);
    let result = run(farm().arg("render").arg(&blend));
    let stdout = result.ok();
    let out = dir.path().join("shot.farm");
    assert!(
        stdout.contains(&out.join("frames").display().to_string()),
        "{stdout}"
    );
    assert!(
        stdout.contains(&out.join("frames.zip").display().to_string()),
        "{stdout}"
    );
    // The contact sheet, beside the archive.
    let preview = out.join("preview.jpg");
    assert!(
        stdout.contains(&format!("preview: {}", preview.display())),
        "{stdout}"
    );
    let sheet = std::fs::read(&preview).expect("preview.jpg written");
    assert!(sheet.starts_with(&[0xff, 0xd8, 0xff]), "a JPEG");
    assert_eq!(rendered_and_skipped(stdout), (4, 0));
    // The run's receipt: times from the chunks' own clocks, no price.
    assert!(
        stdout.contains("frames    4 in 1 task(s), 1 attempt(s)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("of task time"), "{stdout}");
    assert!(stdout.contains("per frame min "), "{stdout}");
    assert!(stdout.contains("slowest   "), "{stdout}");
    assert!(
        !stdout.contains('$') && !stdout.contains("vCPU"),
        "{stdout}"
    );

    let frames = frame_files(&out.join("frames"));
    let numbers: Vec<i32> = frames.iter().map(|(f, _)| *f).collect();
    assert_eq!(numbers, [2, 5, 8, 11]);
    assert_frames_show_their_number(&frames);
    assert_zip_holds(&out.join("frames.zip"), &names(&numbers));
    let unzip = Command::new("unzip")
        .arg("-t")
        .arg(out.join("frames.zip"))
        .output()
        .expect("unzip runs");
    assert!(unzip.status.success(), "{unzip:?}");

    // A rerun finds every frame done and reads the range from the file: no Blender at all.
    let rerun = run(farm()
        .arg("render")
        .arg(&blend)
        .env("BLENDER", dir.path().join("no-blender-here")));
    let rerun_out = rerun.ok();
    assert_eq!(rendered_and_skipped(rerun_out), (0, 4));
    assert!(!rerun_out.contains("task(s)"), "nothing ran: {rerun_out}");
    assert_zip_holds(&out.join("frames.zip"), &names(&numbers));
}

#[test]
fn negative_and_stepped_frames_render_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let blend = scene(dir.path(), "neg", 1, 24, 1);
    let out = dir.path().join("custom out");
    // --dry-run: the plan, and nothing rendered or written (not even the output folder).
    let dry_run = |expect: &str| {
        let dry = run(farm()
            .args([
                "render",
                "--dry-run",
                "--frames",
                "-3--1 4-10:3",
                "--workers",
                "2",
            ])
            .arg("--out")
            .arg(&out)
            .arg(&blend));
        let text = dry.ok();
        assert!(text.starts_with("dry run: nothing rendered\n"), "{text}");
        assert!(text.contains(expect), "{expect}: {text}");
        assert!(text.contains("engine:  Cycles"), "{text}");
    };
    dry_run("frames:  6 (-3--1 4-10:3): 6 to render, 0 already rendered");
    assert!(!out.exists(), "a dry run writes nothing");
    let result = run(farm()
        .args([
            "render",
            "--frames",
            "-3--1 4-10:3",
            "--workers",
            "2",
            "--out",
        ])
        .arg(&out)
        .arg(&blend)
        .env_remove(farm_core::env::PROGRESS));
    let stdout = result.ok();
    assert_eq!(rendered_and_skipped(stdout), (6, 0));
    // Piped: the frames bar as plain lines on stderr (at most one a second), never silence.
    let progress: Vec<&str> = result
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("farm-progress: "))
        .collect();
    assert!(
        progress.iter().any(|l| l.ends_with("/6 frames rendering")),
        "{}",
        result.stderr
    );
    // Each line as the add-on reads it (`<done>/<total> <unit> <what>`), over a known total:
    // the archive's bar says nothing before its length is known (never `0/0 bytes zipping`).
    for line in &progress {
        let (count, rest) = line.split_once(' ').unwrap();
        let (done, total) = count.split_once('/').unwrap();
        let (done, total): (u64, u64) = (done.parse().unwrap(), total.parse().unwrap());
        assert!(done <= total && total > 0, "{line}: {}", result.stderr);
        let unit = rest.split_whitespace().next();
        assert!(matches!(unit, Some("frames" | "bytes")), "{line}");
    }
    assert!(
        progress.iter().any(|l| l.ends_with(" bytes zipping")),
        "{}",
        result.stderr
    );
    assert!(!stdout.contains("note:"), "{stdout}");
    let frames = frame_files(&out.join("frames"));
    let numbers: Vec<i32> = frames.iter().map(|(f, _)| *f).collect();
    assert_eq!(numbers, [-3, -2, -1, 4, 7, 10]);
    assert_eq!(frames[0].1.file_name().unwrap(), "-0003.png");
    assert_frames_show_their_number(&frames);
    assert_zip_holds(&out.join("frames.zip"), &names(&numbers));
    dry_run("frames:  6 (-3--1 4-10:3): 0 to render, 6 already rendered");

    // Commas work as separators too, and a subset of what is there renders nothing new.
    let again = run(farm()
        .args(["render", "--frames", "-3,-2,7", "--out"])
        .arg(&out)
        .arg(&blend));
    let stdout = again.ok();
    assert_eq!(rendered_and_skipped(stdout), (0, 3));
    assert_zip_holds(&out.join("frames.zip"), &names(&[-3, -2, 7]));
    // The frames of the first run that this one left out stay, and the summary says so.
    assert!(
        stdout.contains("frames/ also holds 3 frame(s) of earlier runs"),
        "{stdout}"
    );
    assert_eq!(frame_files(&out.join("frames")).len(), 6);
}

fn mtimes(frames: &[(i32, std::path::PathBuf)]) -> BTreeMap<i32, SystemTime> {
    frames
        .iter()
        .map(|(f, p)| (*f, std::fs::metadata(p).unwrap().modified().unwrap()))
        .collect()
}

/// Starts `farm render`, waits for `count` frames to appear, then sends SIGINT.
fn interrupt_after(blend: &Path, out: &Path, count: usize) -> common::Run {
    let mut child = farm()
        .args(["render", "--workers", "2", "--chunk", "6", "--out"])
        .arg(out)
        .arg(blend)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("farm starts");
    let frames_dir = out.join("frames");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = std::fs::read_dir(&frames_dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
                    .count()
            })
            .unwrap_or(0);
        if seen >= count {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("farm ended before it was interrupted: {status}");
        }
        assert!(Instant::now() < deadline, "no frames appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The shell's own `kill`: no procps needed.
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    common::Run::of(&child.wait_with_output().unwrap())
}

#[test]
fn an_interrupted_render_keeps_whole_frames_and_a_rerun_renders_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    // Bigger and noisier than the other scenes, so frames take long enough to interrupt.
    let options = farm_testkit::SceneOptions {
        width: 160,
        height: 120,
        samples: 16,
        ..farm_testkit::SceneOptions::default()
    };
    let blend = farm_testkit::make_scene(dir.path(), "resume", &options).unwrap();
    let out = dir.path().join("resume.farm");

    let stopped = interrupt_after(&blend, &out, 2);
    assert_eq!(stopped.code, Some(130), "{stopped:#?}");
    let last = stopped.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("farm: interrupted: "), "{stopped:#?}");
    assert!(
        !out.join("frames.zip").exists(),
        "no archive after an interruption"
    );
    // Only whole frames, no partial files, no Blender left running.
    let kept = frame_files(&out.join("frames"));
    assert!(
        !kept.is_empty() && kept.len() < 24,
        "{} frames kept",
        kept.len()
    );
    assert_frames_show_their_number(&kept);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        processes_mentioning(&blend),
        Vec::<String>::new(),
        "blender still running"
    );

    let before = mtimes(&kept);
    let resumed = run(farm().arg("render").arg("--out").arg(&out).arg(&blend));
    let stdout = resumed.ok();
    assert_eq!(
        rendered_and_skipped(stdout),
        (24 - kept.len(), kept.len()),
        "{stdout}"
    );
    let all = frame_files(&out.join("frames"));
    assert_eq!(all.len(), 24);
    assert_frames_show_their_number(&all);
    let after = mtimes(&all);
    for (frame, mtime) in &before {
        assert_eq!(after[frame], *mtime, "frame {frame} was rendered again");
    }
    assert_zip_holds(
        &out.join("frames.zip"),
        &names(&(1..=24).collect::<Vec<_>>()),
    );

    // A changed scene (other content, same path) renders again.
    std::fs::remove_file(&blend).unwrap();
    let changed = scene(dir.path(), "resume", 1, 24, 1);
    std::fs::write(&changed, {
        let mut bytes = std::fs::read(&changed).unwrap();
        bytes.extend_from_slice(b"trailing bytes change the hash, not the scene");
        bytes
    })
    .unwrap();
    let rerendered = run(farm()
        .args(["render", "--frames", "1-2", "--out"])
        .arg(&out)
        .arg(&changed));
    assert_eq!(rendered_and_skipped(rerendered.ok()), (2, 0));
}

#[test]
fn help_explains_every_command_with_examples() {
    let top = run(farm().arg("--help"));
    assert!(top.ok().contains("Examples:"), "{top:#?}");
    for command in [
        "render", "estimate", "inspect", "submit", "status", "download", "cancel", "retry",
    ] {
        let help = run(farm().args([command, "--help"]));
        let text = help.ok();
        assert!(text.contains("Examples:"), "{command}: {text}");
        assert!(
            text.contains(&format!("farm {command}")),
            "{command}: {text}"
        );
    }
    let render = run(farm().args(["render", "--help"]));
    assert!(render.ok().contains("Why the defaults"), "{render:#?}");
    let status = run(farm().args(["status", "--help"]));
    assert!(status.ok().contains("--json"));
}

/// Timeline markers switch the camera at frame 3: each Blender the farm runs renders every frame
/// through the camera Blender itself renders it through.
#[test]
fn camera_switches_on_timeline_markers_render_as_blender_renders_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = farm_testkit::SceneOptions {
        start: 1,
        end: 4,
        camera_switch_at: Some(3),
        ..farm_testkit::SceneOptions::default()
    };
    let blend = farm_testkit::make_scene(dir.path(), "switch", &options).unwrap();
    // Blender's own render of the animation.
    let own = dir.path().join("own");
    let status = Command::new(farm_testkit::blender().unwrap())
        .arg("-b")
        .arg(&blend)
        .arg("-o")
        .arg(format!("{}/####", own.display()))
        .arg("-a")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // (frame, whether the centre shows the cube): the background fills the corners.
    let seen = |png: &Path| {
        let bytes = std::fs::read(png).unwrap();
        let centre = farm_testkit::pixel(&bytes, 16, 12).unwrap();
        let corner = farm_testkit::pixel(&bytes, 0, 0).unwrap();
        (farm_testkit::frame_code(&bytes).unwrap(), centre != corner)
    };
    let blenders_own: Vec<_> = (1..=4)
        .map(|f| seen(&own.join(format!("{f:04}.png"))))
        .collect();
    // The switch is in the picture: the cube in the centre before it, background after.
    assert_eq!(
        blenders_own,
        [(1, true), (2, true), (3, false), (4, false)],
        "Blender's own render"
    );
    for blender in farm_testkit::TestBlender::all().unwrap() {
        let out = dir.path().join(blender.name.replace(' ', "-"));
        let (var, path) = blender.env();
        run(farm()
            .env(var, path)
            .args(["render", "--frames", "1-4", "--out"])
            .arg(&out)
            .arg(&blend))
        .ok();
        let farms: Vec<_> = frame_files(&out.join("frames"))
            .iter()
            .map(|(_, png)| seen(png))
            .collect();
        assert_eq!(farms, blenders_own, "{}", blender.name);
    }
}

/// A project shipping its default output folder, or the `frames/` in it, as a symbolic link
/// gets nothing written through it: `farm render` refuses, naming the link, before Blender
/// starts (RELIABILITY.md, "Hostile .blend").
#[test]
fn an_output_folder_or_frames_folder_that_is_a_link_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let blend = scene(dir.path(), "shot", 1, 1, 1);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = dir.path().join("shot.farm");
    std::os::unix::fs::symlink(&elsewhere, &out).unwrap();
    let result = run(farm().arg("render").arg(&blend));
    let error = result.one_line_error();
    assert!(
        error.contains(&format!("{} is a symbolic link", out.display())),
        "{error}"
    );
    std::fs::remove_file(&out).unwrap();
    std::fs::create_dir(&out).unwrap();
    let frames = out.join("frames");
    std::os::unix::fs::symlink(&elsewhere, &frames).unwrap();
    let result = run(farm().arg("render").arg(&blend));
    let error = result.one_line_error();
    assert!(
        error.contains(&format!("{} is a symbolic link", frames.display())),
        "{error}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// Without a Blender named, `farm render` runs the farm's own build of the series the cloud's
/// rule picks for the file (`--series auto`): a file saved by 5.0 on 5.0, one saved by Debian's
/// 3.4 on the oldest newer series, 4.2 (both installed in the cache already here: the install
/// itself is tests/blender.rs's); a file newer than every series the farm runs is refused before
/// anything installs or renders.
#[test]
fn without_a_named_blender_the_files_series_renders_with_the_farms_build() {
    use farm_core::blender::Blender;
    use farm_testkit::{make_scene_with, SceneOptions, TestBlender};
    let dir = tempfile::tempdir().unwrap();
    let builds = [
        ("4.2.23", TestBlender::bpy("4.2.23").unwrap()),
        ("5.0.1", TestBlender::bpy("5.0.1").unwrap()),
    ];
    let link = |cache: &Path, version: &str, blender: &TestBlender| {
        let Blender::PythonModule(python) = &blender.blender else {
            panic!("a bpy build")
        };
        let venv = python.parent().and_then(Path::parent).unwrap();
        std::fs::create_dir_all(cache).unwrap();
        std::os::unix::fs::symlink(venv, cache.join(format!("bpy-{version}"))).unwrap();
    };
    let both = dir.path().join("both");
    for (version, blender) in &builds {
        link(&both, version, blender);
    }
    let one_frame = SceneOptions {
        start: 1,
        end: 1,
        ..SceneOptions::default()
    };
    let by50 = make_scene_with(&builds[1].1, dir.path(), "by50", &one_frame).unwrap();
    let by34 = scene(dir.path(), "by34", 1, 1, 1);
    let render = |cache: &Path, blend: &Path, out: &str| {
        run(farm()
            .env_remove("BLENDER")
            .env("FARM_CACHE_DIR", cache)
            .arg("render")
            .arg(blend)
            .arg("--out")
            .arg(dir.path().join(out)))
    };
    for (blend, out, said) in [
        (&by50, "out50", "Blender 5.0 (bpy 5.0.1): `blender=auto`: the file was saved by Blender 5.0\n"),
        (&by34, "out34", "Blender 4.2 (bpy 4.2.23): `blender=auto`: the file was saved by Blender 3.4, which the farm does not run"),
    ] {
        let result = render(&both, blend, out);
        let stdout = result.ok();
        assert!(stdout.contains(said), "{stdout}");
        assert!(dir.path().join(out).join("frames/0001.png").is_file(), "{stdout}");
    }
    // `farm estimate --json` picks the same way and says so on stderr: its standard output stays
    // the JSON document alone (the choice was printed into it before).
    let estimate = run(farm()
        .env_remove("BLENDER")
        .env("FARM_CACHE_DIR", &both)
        .args(["estimate", "--json", "--samples", "1", "--threads", "1"])
        .arg(&by34));
    let json: serde_json::Value =
        serde_json::from_str(estimate.ok()).unwrap_or_else(|e| panic!("{e}: {estimate:#?}"));
    assert_eq!(json["frames"], 1);
    assert!(
        estimate
            .stderr
            .contains("Blender 4.2 (bpy 4.2.23): `blender=auto`"),
        "{estimate:#?}"
    );
    // The same file as if saved by Blender 5.4, which the farm does not run yet.
    let mut bytes = std::fs::read(&by50).unwrap();
    assert_eq!(&bytes[..17], b"BLENDER17-01v0500");
    bytes[13..17].copy_from_slice(b"0504");
    let by54 = dir.path().join("by54.blend");
    std::fs::write(&by54, bytes).unwrap();
    let refused = render(&both, &by54, "refused");
    let error = refused.one_line_error();
    assert!(
        error.contains(
            "saved by Blender 5.4, newer than every Blender this farm runs (the newest is 5.3)"
        ),
        "{error}"
    );
    assert!(!refused.stderr.contains("installing"), "{refused:#?}");
    assert!(!dir.path().join("refused/frames/0001.png").exists());
}

/// `farm estimate` renders the first, middle and last frame with the real Blender, says what it
/// measured, and projects the job (issue 27).
#[test]
fn estimate_renders_sample_frames_and_projects_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let blend = scene(dir.path(), "estimate", 1, 24, 1);
    let result = run(farm()
        .args(["estimate", "--json", "--threads", "2"])
        .arg(&blend));
    let estimate: serde_json::Value = serde_json::from_str(result.ok()).unwrap();
    // First, middle and last; the profile may place more where a frame was slow to render.
    let sampled: Vec<i64> = estimate["sampled"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["placed_by_profile"] != true)
        .map(|s| s["frame"].as_i64().unwrap())
        .collect();
    assert_eq!(sampled, [1, 13, 24]);
    assert_eq!(estimate["profile"]["frames"].as_array().unwrap().len(), 24);
    for sample in estimate["sampled"].as_array().unwrap() {
        assert!(sample["seconds"].as_f64().unwrap() > 0.0, "{sample}");
    }
    assert!(estimate["blender_startup_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(estimate["frames"], 24);
    assert_eq!(estimate["measured_on"], "this machine (2 threads)");
    let projection = &estimate["projection"];
    assert_eq!(projection["frames"], 24);
    assert!(
        projection["cost_usd"].as_f64().unwrap() > projection["spot_cost_usd"].as_f64().unwrap()
    );
    // Nothing is left in the scene's folder.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");

    let text = run(farm()
        .args(["estimate", "--frames", "5-9", "--samples", "2"])
        .arg(&blend));
    let stdout = text.ok();
    for needle in [
        "measured on this machine",
        "frame      5",
        "frame      9",
        "on demand:",
        "on Spot",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
}

/// `farm estimate` on a scene whose middle frame renders with 8x the samples (ADR 0016): first,
/// middle and last miss it, the profile pass over every frame finds it and it is rendered as a
/// sample of its own; the estimate says what the profile measured.
#[test]
fn estimate_finds_a_spike_frame_the_even_samples_miss() {
    let dir = tempfile::tempdir().unwrap();
    let blender = farm_testkit::TestBlender::executable().expect("a Blender");
    let spike = farm_testkit::GeometryScene {
        kind: "spike",
        end: 8,
        width: 160,
        height: 90,
        samples: 64,
        objects: 1,
        levels: 1,
    };
    let blend = farm_testkit::make_geometry_scene(&blender, dir.path(), "spike", &spike).unwrap();
    let result = run(farm()
        .args(["estimate", "--json", "--threads", "2"])
        .arg(&blend));
    let estimate: serde_json::Value =
        serde_json::from_str(result.ok()).unwrap_or_else(|e| panic!("{e}: {result:#?}"));
    let profile = &estimate["profile"];
    assert_eq!(profile["resolution_percent"], 25);
    let profiled: Vec<i64> = profile["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["frame"].as_i64().unwrap())
        .collect();
    assert_eq!(profiled, (1..=8).collect::<Vec<_>>());
    let sampled: Vec<(i64, bool)> = estimate["sampled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["frame"].as_i64().unwrap(), s["placed_by_profile"] == true))
        .collect();
    // Frame 4 (end / 2) is the spike; 1, 5 and 8 are first, middle and last.
    assert!(sampled.contains(&(4, true)), "{estimate:#}");
    for base in [1, 5, 8] {
        assert!(sampled.contains(&(base, false)), "{estimate:#}");
    }
    assert!(
        estimate["first_frame_extra_seconds"].is_f64(),
        "{estimate:#}"
    );
}

/// Without a scene, `--seconds-per-frame` projects a cost given by hand: 1,000 one-minute frames
/// on 16 slots are 16 tasks of 63 frames, as `chunk=auto` would plan.
#[test]
fn estimate_projects_a_given_frame_cost_without_blender() {
    let result = run(farm().args([
        "estimate",
        "--seconds-per-frame",
        "60",
        "--frames",
        "1-1000",
        "--max-vcpus",
        "64",
        "--json",
    ]));
    let projection: serde_json::Value = serde_json::from_str(result.ok()).unwrap();
    assert_eq!(projection["chunk_size"], 63);
    assert_eq!(projection["tasks"], 16);
    assert_eq!(projection["slots"], 16);
    let bad = run(farm().args(["estimate", "--seconds-per-frame", "0", "--frames", "1-3"]));
    assert!(
        bad.one_line_error()
            .contains("invalid --seconds-per-frame 0"),
        "{bad:#?}"
    );
    let region = run(farm().args([
        "estimate",
        "--seconds-per-frame",
        "5",
        "--frames",
        "1",
        "--region",
        "mars",
    ]));
    assert!(
        region
            .one_line_error()
            .contains("no Fargate prices for region `mars`"),
        "{region:#?}"
    );
}
