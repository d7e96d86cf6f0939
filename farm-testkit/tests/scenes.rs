//! The Blender fixtures work: frames show their own number, autorun only runs when allowed,
//! compression is what Blender 3.x writes.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use farm_blend::{sniff, Compression};
use farm_core::blender::RenderCommand;
use farm_testkit::{
    blender, decode_png, frame_code, make_geometry_scene, make_scene, make_scene_with,
    GeometryScene, SceneOptions, TestBlender,
};

fn render(blend: &Path, frames: &[i32], out: &Path) -> anyhow::Result<()> {
    render_with(&TestBlender::executable()?, blend, frames, out).map(drop)
}

/// Renders `frames` in one Blender (persistent data on when there are several), returning
/// Blender's standard output.
fn render_with(
    blender: &TestBlender,
    blend: &Path,
    frames: &[i32],
    out: &Path,
) -> anyhow::Result<String> {
    let side = out.join("side");
    let command = RenderCommand {
        blend,
        frames,
        threads: 2,
        output_dir: out,
        outputs_dir: &side,
        caches_dir: &side,
        format: None,
        persistent: true,
        engine: farm_core::engine::Engine::Cycles,
        resolution_percent: None,
    };
    let output = Command::new(blender.blender.program())
        .args(command.args(&blender.blender))
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "blender failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Issue 27, ADR 0015: a chunk rendered with Cycles' persistent data gives the very pixels of
/// each frame rendered fresh, in a Blender of its own, on a static scene (moving camera and
/// cube, animated seed) and a deforming one (bending, waving monkeys, motion blur), with
/// Debian's executable and bpy 4.2.
#[test]
fn persistent_data_renders_the_pixels_of_fresh_renders() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let frames = [1, 2, 3, 4];
    let blenders = TestBlender::all()?;
    for kind in ["static", "deforming"] {
        let scene = GeometryScene {
            kind,
            end: 4,
            width: 48,
            height: 27,
            samples: 4,
            objects: 3,
            levels: 2,
        };
        let blend = make_geometry_scene(&blenders[0], dir.path(), kind, &scene)?;
        for blender in &blenders {
            let chunk = dir.path().join(format!("{kind} chunk {}", blender.name));
            let log = render_with(blender, &blend, &frames, &chunk)?;
            assert!(
                log.contains("FARM_NOTE Cycles persistent data on for the chunk's 4 frames"),
                "{kind}, {}: persistent data was not on:\n{log}",
                blender.name
            );
            for frame in frames {
                let fresh = dir
                    .path()
                    .join(format!("{kind} fresh {frame} {}", blender.name));
                let log = render_with(blender, &blend, &[frame], &fresh)?;
                assert!(!log.contains("persistent data on"), "{log}");
                let name = format!("frame_{frame}.png");
                let kept = decode_png(&std::fs::read(chunk.join(&name))?)?;
                let alone = decode_png(&std::fs::read(fresh.join(&name))?)?;
                assert!(
                    kept == alone,
                    "{kind}, {}: frame {frame} of the chunk differs from its fresh render",
                    blender.name
                );
            }
        }
    }
    Ok(())
}

/// On Debian's executable and on each bpy under test; each also renders the scenes older
/// Blenders saved (the other way round is not supported by Blender).
#[test]
fn every_frame_shows_its_own_number() -> anyhow::Result<()> {
    let blenders = TestBlender::all()?;
    let dir = tempfile::tempdir()?;
    for maker in &blenders {
        let blend = make_scene_with(maker, dir.path(), &maker.name, &SceneOptions::default())?;
        for renderer in &blenders {
            if maker.series > renderer.series {
                continue;
            }
            let out = dir
                .path()
                .join(format!("out {} by {}", maker.name, renderer.name));
            std::fs::create_dir(&out)?;
            let frames: Vec<i32> = [-5].into_iter().chain(1..=24).collect();
            let started = Instant::now();
            render_with(renderer, &blend, &frames, &out)?;
            let elapsed = started.elapsed();
            eprintln!(
                "{} rendered {} frames of the scene {} saved in {elapsed:?}",
                renderer.name,
                frames.len(),
                maker.name
            );
            check_frame_codes(&out, &frames)?;
        }
    }
    Ok(())
}

fn check_frame_codes(out: &Path, frames: &[i32]) -> anyhow::Result<()> {
    for &frame in frames {
        let png = std::fs::read(out.join(format!("frame_{frame}.png")))?;
        let code = frame_code(&png)?;
        assert!((code - frame).abs() <= 1, "frame {frame} shows {code}");
        // The mapping is exact in practice; the tolerance is only for other Blender builds.
        if [-5, 1, 3, 6, 24].contains(&frame) {
            assert_eq!(code, frame, "frame {frame}");
        }
    }
    Ok(())
}

#[test]
fn the_scene_has_the_requested_settings() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = SceneOptions {
        start: 3,
        end: 9,
        step: 2,
        width: 40,
        height: 30,
        ..SceneOptions::default()
    };
    let blend = make_scene(dir.path(), "settings", &options)?;
    let output = Command::new(blender()?)
        .args(farm_core::blender::scene_info_args(
            &farm_core::blender::Blender::Executable(blender()?),
            &blend,
        ))
        .output()?;
    let info = farm_core::blender::SceneInfo::from_output(&String::from_utf8_lossy(&output.stdout))
        .ok_or_else(|| anyhow::anyhow!("no scene info in {output:?}"))?;
    assert_eq!((info.start, info.end, info.step), (3, 9, 2));
    assert_eq!(info.format, "PNG");
    assert_eq!(info.engine, "CYCLES");

    let out = dir.path().join("out");
    std::fs::create_dir(&out)?;
    render(&blend, &[5], &out)?;
    let png = std::fs::read(out.join("frame_5.png"))?;
    let decoder = png::Decoder::new(std::io::Cursor::new(png.as_slice()));
    let reader = decoder.read_info()?;
    let header = reader.info();
    assert_eq!((header.width, header.height), (40, 30));
    assert_eq!(header.color_type, png::ColorType::Rgb);
    assert_eq!(header.bit_depth, png::BitDepth::Eight);
    assert_eq!(frame_code(&png)?, 5);
    Ok(())
}

#[test]
fn the_autorun_marker_appears_only_with_auto_execution() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("autorun ran");
    let options = SceneOptions {
        autorun_marker: Some(marker.clone()),
        ..SceneOptions::default()
    };
    let blend = make_scene(dir.path(), "autorun", &options)?;
    assert!(!marker.exists(), "making the scene must not run the script");

    let open = |flag: &str| -> anyhow::Result<()> {
        let status = Command::new(blender()?)
            .args(["-b", flag])
            .arg(&blend)
            .args(["--python-expr", "pass"])
            .output()?
            .status;
        anyhow::ensure!(status.success(), "blender {flag} failed: {status}");
        Ok(())
    };
    open("--disable-autoexec")?;
    assert!(!marker.exists(), "the script ran with --disable-autoexec");
    open("--enable-autoexec")?;
    assert!(
        marker.exists(),
        "the script did not run with --enable-autoexec"
    );
    Ok(())
}

#[test]
fn compressed_scenes_are_zstd_and_plain_ones_are_not() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plain = make_scene(dir.path(), "plain", &SceneOptions::default())?;
    let compressed = make_scene(
        dir.path(),
        "compressed",
        &SceneOptions {
            compress: true,
            ..SceneOptions::default()
        },
    )?;
    assert_eq!(sniff(&std::fs::read(plain)?)?, Compression::None);
    assert_eq!(sniff(&std::fs::read(compressed)?)?, Compression::Zstd);
    Ok(())
}

#[test]
fn frame_code_refuses_what_is_not_an_rgb_png() {
    assert!(frame_code(b"not a png").is_err());
}
