//! The movie a scene set to FFmpeg output asks for (ADR 0012), made from frames already
//! rendered: a second Blender step (the farm's script, scripts disabled, cleared environment,
//! the work folder only) shows the stills in the sequencer with the scene's sound strips and
//! encodes them with the scene's settings. Nothing is rendered again.
//!
//! [`encode`] is that Blender step, for `farm render` and the cloud alike. [`run`] is the movie
//! job, which runs after the zip job on the render job definition: it makes the movie only when
//! every expected frame of the job's version is there (the one frame scan), and uploads it
//! whole to `<key>/<stem>.<ext>` beside `frames.zip` (or nothing), then names it in the
//! receipt.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use farm_core::blender::{Blender, MovieCommand};
use farm_core::receipt::{MovieObject, Receipt};
use farm_core::storage::{get_json, put_json, PutOptions};
use farm_core::Storage;
use farm_jobs::{scan_frames, ScanError};
use futures::{StreamExt, TryStreamExt};

use crate::{Config, RenderError};

/// Frames downloaded at once by the movie job.
const DOWNLOADS_AT_ONCE: usize = 8;

/// Makes the job's movie from its frames and uploads it; returns where it is. Fails, uploading
/// nothing, when a frame of the job is missing or not this job's, or Blender writes no movie.
pub async fn run<S: Storage>(
    storage: &S,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<MovieObject, RenderError> {
    tokio::select! {
        () = shutdown => Err(RenderError::Interrupted),
        made = make(storage, config) => made,
    }
}

async fn make<S: Storage>(storage: &S, config: &Config) -> Result<MovieObject, RenderError> {
    let ticket = &config.ticket;
    let extension = ticket
        .movie
        .as_deref()
        .ok_or_else(|| RenderError::Config("the job names no movie (FARM_MOVIE)".to_owned()))?;
    let source = crate::check_source(storage, ticket).await?;
    let frames = ticket.plan.frames().as_slice();
    let scan = scan_frames(storage, &ticket.keys, frames, &ticket.version())
        .await
        .map_err(|error| match error {
            ScanError::Storage(e) => RenderError::Storage(e),
            other => RenderError::Config(other.to_string()),
        })?;
    if !scan.is_complete() {
        return Err(RenderError::MovieFramesMissing {
            key: ticket.keys.source().to_owned(),
            missing: scan.not_current(),
        });
    }
    let blend = crate::fetch_blend(storage, config, source.etag.as_deref()).await?;
    let work = &config.blender.work_dir;
    let folder = work.join("frames");
    create_dir(&folder).await?;
    let files: Vec<PathBuf> = futures::stream::iter(&scan.current)
        .map(|object| {
            let path = folder.join(object.file_name());
            async move {
                storage.download(&object.key, &path, None).await?;
                Ok::<_, RenderError>(path)
            }
        })
        .buffered(DOWNLOADS_AT_ONCE)
        .try_collect()
        .await?;
    let started = std::time::Instant::now();
    let setup = &config.blender;
    let made = encode(
        &setup.blender,
        &blend,
        &files,
        frames[0],
        setup.threads,
        work,
    )
    .await?;
    let size = tokio::fs::metadata(&made)
        .await
        .map_err(|source| RenderError::WorkDir {
            path: made.clone(),
            source,
        })?
        .len();
    tracing::info!(
        frames = files.len(),
        bytes = size,
        seconds = started.elapsed().as_secs_f64(),
        "movie encoded"
    );
    let key = ticket.keys.movie(extension);
    storage
        .upload_file(
            &key,
            &made,
            &PutOptions::content_type(
                farm_blend::movie_content_type(extension).unwrap_or("application/octet-stream"),
            ),
        )
        .await?;
    let movie = MovieObject { key, size };
    name_in_receipt(storage, &ticket.keys, &movie).await;
    Ok(movie)
}

/// Writes the movie the scene of `blend` asks for from `frames` (files in frame order, in one
/// folder; the first is frame `first`, so sound strips keep their timing) with one sandboxed
/// Blender process whose work folder is `work_dir`; returns the one file Blender wrote, in
/// `<work_dir>/movie/`.
pub async fn encode(
    blender: &Blender,
    blend: &Path,
    frames: &[PathBuf],
    first: i32,
    threads: usize,
    work_dir: &Path,
) -> Result<PathBuf, RenderError> {
    let written = work_dir.join("movie");
    create_dir(&written).await?;
    let command = MovieCommand {
        blend,
        frames,
        first,
        threads,
        output_dir: &written,
    };
    let output = crate::render::blender_command(blender, work_dir)
        .await?
        .args(command.args(blender))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| RenderError::BlenderMissing {
            path: blender.program().to_owned(),
            source,
        })?;
    let mut made = Vec::new();
    let mut entries =
        tokio::fs::read_dir(&written)
            .await
            .map_err(|source| RenderError::WorkDir {
                path: written.clone(),
                source,
            })?;
    while let Ok(Some(entry)) = entries.next_entry().await {
        made.push(entry.path());
    }
    match made.as_slice() {
        [file] if output.status.success() => Ok(file.clone()),
        _ => Err(RenderError::MovieFailed {
            exit: output.status.to_string(),
            signal: std::os::unix::process::ExitStatusExt::signal(&output.status),
            written: made.len(),
            message: last_lines(&output.stdout, &output.stderr),
        }),
    }
}

async fn create_dir(path: &Path) -> Result<(), RenderError> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|source| RenderError::WorkDir {
            path: path.to_owned(),
            source,
        })
}

/// Names the movie in the job's receipt, which the zip job wrote before this job started. Best
/// effort, as the receipt is: a failure is logged and never fails the movie job.
async fn name_in_receipt<S: Storage>(storage: &S, keys: &farm_core::JobKeys, movie: &MovieObject) {
    let key = keys.receipt();
    match get_json::<Receipt>(storage, &key).await {
        Ok(mut receipt) => {
            receipt.movie = Some(movie.clone());
            if let Err(error) = put_json(storage, &key, &receipt).await {
                tracing::warn!(key, %error, "could not name the movie in the receipt");
            }
        }
        Err(error) => tracing::warn!(key, %error, "no receipt to name the movie in"),
    }
}

/// Blender's last few non-empty lines, for an error.
fn last_lines(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use clap::Parser;
    use farm_core::JobKeys;
    use farm_testkit::MemoryStorage;

    use super::*;
    use crate::Args;

    /// The movie job of frames 1-3 of `k.blend` as MKV, whose Blender does not exist: a step
    /// that went as far as Blender would fail with `BlenderMissing`.
    fn config(work: &Path) -> Config {
        let work = work.to_string_lossy();
        Args::try_parse_from([
            "renderer",
            "--bucket=b",
            "--key=k.blend",
            "--frames=1-3",
            "--format=PNG",
            "--movie=mkv",
            "--blender=/nonexistent/blender",
            &format!("--work-dir={work}"),
        ])
        .unwrap()
        .validate()
        .unwrap()
    }

    #[tokio::test]
    async fn a_missing_frame_makes_no_movie_and_uploads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let storage = MemoryStorage::new();
        let keys = JobKeys::new("k.blend");
        storage
            .put(
                "k.blend",
                Bytes::from_static(b"BLENDER-v304RENDH"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        let current = PutOptions {
            metadata: config.ticket.version().metadata(),
            ..PutOptions::default()
        };
        // Frame 1 is this job's, frame 2 is missing, frame 3 is of another format.
        storage
            .put(&keys.frame(1, "png"), Bytes::from_static(b"png"), &current)
            .await
            .unwrap();
        storage
            .put(
                &keys.frame(3, "png"),
                Bytes::from_static(b"png"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        let before = storage.keys();

        let err = run(&storage, &config, std::future::pending())
            .await
            .unwrap_err();
        let RenderError::MovieFramesMissing { key, missing } = &err else {
            panic!("{err}")
        };
        assert_eq!((key.as_str(), missing.as_slice()), ("k.blend", &[2, 3][..]));
        assert_eq!(err.class().exit_code(), farm_core::exit::BAD_INPUT);
        assert!(err.to_string().contains("farm retry"), "{err}");
        assert_eq!(storage.keys(), before, "nothing written");
        assert!(!dir.path().join("movie").exists(), "no Blender step");

        // With every frame there, the step goes on to Blender (missing here).
        storage
            .put(&keys.frame(2, "png"), Bytes::from_static(b"png"), &current)
            .await
            .unwrap();
        storage
            .put(&keys.frame(3, "png"), Bytes::from_static(b"png"), &current)
            .await
            .unwrap();
        let err = run(&storage, &config, std::future::pending())
            .await
            .unwrap_err();
        assert!(matches!(err, RenderError::BlenderMissing { .. }), "{err}");
        assert!(storage.body(&keys.movie("mkv")).is_none());
    }
}
