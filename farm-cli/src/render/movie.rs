//! The movie a scene set to FFmpeg output asks for, written once every frame is rendered: a
//! second Blender step (the farm's script, scripts disabled, cleared environment) shows the
//! rendered stills in the sequencer with the scene's sound strips and encodes them with the
//! scene's settings (ADR 0012). Nothing is rendered again.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, bail, Context};
use farm_blend::Movie;
use farm_core::blender::{Blender, MovieCommand, OutputFormat};
use farm_core::layout::frame_stem;

/// Writes the movie the scene asks for from the run's frames (in `format`, PNG by default) and
/// says where it is.
pub(super) async fn write_and_say(
    blender: &Blender,
    blend: &Path,
    out: &Path,
    frames: &[i32],
    format: Option<OutputFormat>,
    movie: &Movie,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let extension = format.map_or("png", OutputFormat::extension);
    let threads = renderer::config::available_cpus();
    let path = write_movie(blender, blend, out, frames, extension, movie, threads)
        .await
        .context("making the scene's movie from the frames")?;
    println!(
        "movie:   {} ({} {}, made from the frames in {})",
        path.display(),
        movie.container,
        movie.codec,
        crate::progress::seconds(started.elapsed())
    );
    Ok(())
}

/// Writes `<out>/<stem>.<ext>` from `frames` (in `<out>/frames/`, with `extension`) and returns
/// its path.
async fn write_movie(
    blender: &Blender,
    blend: &Path,
    out: &Path,
    frames: &[i32],
    extension: &str,
    movie: &Movie,
    threads: usize,
) -> anyhow::Result<PathBuf> {
    let first = *frames
        .first()
        .ok_or_else(|| anyhow!("no frames to make a movie of"))?;
    let files: Vec<PathBuf> = frames
        .iter()
        .map(|&f| {
            out.join("frames")
                .join(format!("{}.{extension}", frame_stem(f)))
        })
        .collect();
    let work = tempfile::Builder::new()
        .prefix("farm-movie-")
        .tempdir()
        .context("cannot create a temporary work folder (check TMPDIR)")?;
    let written = work.path().join("movie");
    tokio::fs::create_dir_all(&written).await?;
    let command = MovieCommand {
        blend,
        frames: &files,
        first,
        threads,
        output_dir: &written,
    };
    let output = renderer::render::blender_command(blender, work.path())
        .await?
        .args(command.args(blender))
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("starting {}", blender.program().display()))?;
    let mut made = Vec::new();
    let mut entries = tokio::fs::read_dir(&written).await?;
    while let Some(entry) = entries.next_entry().await? {
        made.push(entry.path());
    }
    let [file] = made.as_slice() else {
        bail!(
            "Blender did not write the scene's {} movie ({}; {} file(s) written): {}",
            movie.container,
            output.status,
            made.len(),
            last_lines(&output.stdout, &output.stderr)
        );
    };
    if !output.status.success() {
        bail!(
            "Blender failed writing the movie ({}): {}",
            output.status,
            last_lines(&output.stdout, &output.stderr)
        );
    }
    let stem = blend
        .file_stem()
        .map_or_else(|| "movie".into(), |s| s.to_string_lossy().into_owned());
    let ext = file.extension().map_or_else(
        || movie.extension.clone(),
        |e| e.to_string_lossy().into_owned(),
    );
    let target = out.join(format!("{stem}.{ext}"));
    // Copied then renamed within OUT: only a whole movie is ever visible there.
    let partial = out.join(format!(".{stem}.{ext}.partial"));
    tokio::fs::copy(file, &partial).await?;
    tokio::fs::rename(&partial, &target).await?;
    Ok(target)
}

fn last_lines(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
