//! The movie a scene set to FFmpeg output asks for, written once every frame is rendered by the
//! renderer's Blender step (`renderer::movie::encode`, the one the cloud's movie job runs; ADR
//! 0012) into `OUT/<stem>.<ext>`. Nothing is rendered again.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use farm_blend::Movie;
use farm_core::blender::{Blender, OutputFormat};
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

/// Writes `<out>/<stem>.<ext>` from `frames` (in `<out>/frames/`, with `extension`) with the
/// renderer's Blender step ([`renderer::movie::encode`]) and returns its path.
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
    let file = renderer::movie::encode(blender, blend, &files, first, threads, work.path())
        .await
        .with_context(|| format!("writing the scene's {} movie", movie.container))?;
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
    tokio::fs::copy(&file, &partial).await?;
    tokio::fs::rename(&partial, &target).await?;
    Ok(target)
}
