//! The movie a scene set to FFmpeg output asks for (ADR 0012), made from frames already
//! rendered: a second Blender step (the farm's script, scripts disabled, cleared environment,
//! the work folder only) shows the stills in the sequencer with the scene's sound strips and
//! encodes them with the scene's settings. Nothing is rendered again.
//!
//! [`encode`] is that Blender step, for `farm render` and the cloud alike. [`run`] is the movie
//! job, which runs after the zip job on the render job definition: it makes the movie only when
//! every expected frame of the job's version is there (the one frame scan), and uploads it
//! whole to `<key>/<stem>.<ext>` beside `frames.zip` (or nothing); then, whatever the outcome,
//! writes its task record and the job's receipt again, counting its attempt and naming the
//! movie.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use farm_core::blender::{parse_log_line, Blender, LogEvent, MovieCommand};
use farm_core::receipt::MovieObject;
use farm_core::storage::PutOptions;
use farm_core::tasks::TaskKind;
use farm_core::Storage;
use farm_jobs::{receipt, scan_frames, ScanError};
use futures::{StreamExt, TryStreamExt};

use crate::record::{self, TaskClock};
use crate::{Config, RenderError};

/// Frames downloaded at once by the movie job.
const DOWNLOADS_AT_ONCE: usize = 8;

/// Makes the job's movie from its frames and uploads it; returns where it is. Fails, uploading
/// nothing, when a frame of the job is missing or not this job's, or Blender writes no movie.
/// Whatever the outcome, then writes the attempt's task record and the job's receipt again
/// with it ([`finish`]).
pub(crate) async fn run<S: Storage>(
    storage: &S,
    config: &Config,
    shutdown: impl Future<Output = ()>,
    clock: &TaskClock,
) -> Result<MovieObject, RenderError> {
    let result = tokio::select! {
        () = shutdown => Err(RenderError::Interrupted),
        made = make(storage, config, clock) => made,
    };
    finish(storage, config, clock, &result).await;
    result
}

async fn make<S: Storage>(
    storage: &S,
    config: &Config,
    clock: &TaskClock,
) -> Result<MovieObject, RenderError> {
    let ticket = &config.ticket;
    let extension = ticket
        .movie
        .as_deref()
        .ok_or_else(|| RenderError::Config("the job names no movie (FARM_MOVIE)".to_owned()))?;
    let source = crate::check_source(storage, ticket).await?;
    let frames = ticket.plan.frames().as_slice();
    let scan = scan_frames(storage, &ticket.keys, frames, &ticket.version(), &[])
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
    clock.downloading();
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
    clock.downloaded();
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
    Ok(MovieObject { key, size })
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
            message: blender_error(&output.stdout, &output.stderr),
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

/// Writes the attempt's task record (`<key>/tasks/movie-<attempt>.json`), then the job's
/// receipt again with it (and the movie, once made): the zip job wrote the receipt before this
/// job started, and this job ends last. Best effort, as the receipt is: a failure is logged and
/// never changes the movie job's outcome; with no receipt (the zip job wrote none) none is
/// written.
async fn finish<S: Storage>(
    storage: &S,
    config: &Config,
    clock: &TaskClock,
    result: &Result<MovieObject, RenderError>,
) {
    let own = record::write_record(storage, config, clock, TaskKind::Movie, result).await;
    let ticket = &config.ticket;
    let zipped = match receipt::read(storage, ticket).await {
        Ok(Some(zipped)) => zipped,
        Ok(None) => {
            tracing::warn!("the zip job wrote no receipt: the movie job writes none");
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "could not read the receipt");
            return;
        }
    };
    // A movie an earlier attempt of this job made stays named if this one fails.
    let movie = result.as_ref().ok().cloned().or(zipped.movie);
    match receipt::write(
        storage,
        ticket,
        own,
        zipped.frames,
        config.prices,
        movie,
        None,
    )
    .await
    {
        Ok(written) => tracing::info!(
            key = ticket.keys.receipt(),
            tasks = written.tasks,
            cost_usd = written.cost_usd,
            "receipt written with the movie job"
        ),
        Err(error) => tracing::warn!(%error, "could not write the receipt"),
    }
}

/// Why Blender wrote no movie, as a failed render shows it: Blender's own error line
/// ([`parse_log_line`]; the farm's script prints an operator's error last, on stdout), or the
/// script's refusal; only when Blender printed neither, its last few non-empty lines.
fn blender_error(stdout: &[u8], stderr: &[u8]) -> String {
    let stdout = String::from_utf8_lossy(stdout);
    let stderr = String::from_utf8_lossy(stderr);
    let said = |text: &str| {
        text.lines()
            .rev()
            .find_map(|line| match parse_log_line(line) {
                LogEvent::Error { message } => Some(message.to_owned()),
                LogEvent::Refused { reason } => Some(reason.to_owned()),
                _ => None,
            })
    };
    if let Some(message) = said(&stdout).or_else(|| said(&stderr)) {
        return message;
    }
    let text = format!("{stdout}{stderr}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use clap::Parser;
    use farm_core::tasks::TaskRecord;
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

    /// Blender's own error line, not the traceback around it; its last lines only when it
    /// printed no error (lines as Debian's Blender 3.4 printed them for an MPEG-4 file with the
    /// FFV1 codec).
    #[test]
    fn a_failed_movie_shows_blenders_own_error_line() {
        let stdout =
            b"Error: Could not initialize streams, probably unsupported codec combination\n\
            Error: Could not initialize streams, probably unsupported codec combination\n";
        let stderr = b"Traceback (most recent call last):\n  File \"<string>\", line 420, in <module>\n\
            RuntimeError: Error: Could not initialize streams, probably unsupported codec combination\n";
        assert_eq!(
            blender_error(stdout, stderr),
            "Error: Could not initialize streams, probably unsupported codec combination"
        );
        assert_eq!(
            blender_error(b"FARM_REFUSED scene `S` has no sequencer\n", b""),
            "scene `S` has no sequencer"
        );
        assert_eq!(blender_error(b"a\nb\n\nc\n", b"d\n"), "a | b | c | d");
    }

    /// A store holding `k.blend`.
    async fn with_blend() -> MemoryStorage {
        let storage = MemoryStorage::new();
        storage
            .put(
                "k.blend",
                Bytes::from_static(b"BLENDER-v304RENDH"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        storage
    }

    /// The movie job's attempt `attempt`, as the renderer reads it from its environment.
    fn attempt(config: &Config, attempt: u32) -> Config {
        Config {
            attempt,
            ..config.clone()
        }
    }

    #[tokio::test]
    async fn a_missing_frame_makes_no_movie_and_uploads_nothing_but_its_task_record() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let storage = with_blend().await;
        let keys = JobKeys::new("k.blend");
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

        let err = crate::run(&storage, &config, std::future::pending())
            .await
            .unwrap_err();
        let RenderError::MovieFramesMissing { key, missing } = &err else {
            panic!("{err}")
        };
        assert_eq!((key.as_str(), missing.as_slice()), ("k.blend", &[2, 3][..]));
        assert_eq!(err.class().exit_code(), farm_core::exit::BAD_INPUT);
        assert!(err.to_string().contains("farm retry"), "{err}");
        let record_key = keys.movie_task_record(1);
        let mut expected = before.clone();
        expected.push(record_key.clone());
        expected.sort();
        assert_eq!(
            storage.keys(),
            expected,
            "nothing written but the task record"
        );
        let record: TaskRecord =
            serde_json::from_slice(&storage.body(&record_key).unwrap()).unwrap();
        assert_eq!(
            (record.task, record.attempt, record.exit_code),
            (TaskKind::Movie, 1, farm_core::exit::BAD_INPUT)
        );
        assert!(record.error.unwrap().contains("farm retry"));
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
        let err = crate::run(&storage, &attempt(&config, 2), std::future::pending())
            .await
            .unwrap_err();
        assert!(matches!(err, RenderError::BlenderMissing { .. }), "{err}");
        assert!(storage.body(&keys.movie("mkv")).is_none());
        assert!(storage.body(&keys.movie_task_record(2)).is_some());
    }

    /// The zip job's receipt, written before the movie job, is written again when the movie job
    /// ends, whatever the outcome: its attempts are counted (at the render size), the zip's
    /// frame count kept.
    #[tokio::test]
    async fn the_movie_job_counts_itself_in_the_receipt_the_zip_job_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let storage = with_blend().await;
        let keys = &config.ticket.keys;
        let zip = TaskRecord {
            task: TaskKind::Zip,
            index: 0,
            attempt: 1,
            source_etag: None,
            started: "2026-12-07T00:00:00Z".parse().unwrap(),
            ended: "2026-12-07T00:00:10Z".parse().unwrap(),
            exit_code: 0,
            error: None,
            cpus: 1,
            download_seconds: None,
            blender_startup_seconds: None,
            frames: Vec::new(),
            frame_metadata: None,
        };
        farm_core::storage::put_json(&storage, &keys.zip_task_record(1), &zip)
            .await
            .unwrap();
        let zipped = farm_core::receipt::Receipt::compute(std::slice::from_ref(&zip), 3, None);
        farm_core::storage::put_json(&storage, &keys.receipt(), &zipped)
            .await
            .unwrap();

        // Frames missing: each attempt fails, and is counted all the same.
        let failed_attempt = |attempt| {
            let (storage, config) = (&storage, &config);
            async move {
                let config = Config {
                    attempt,
                    ..config.clone()
                };
                crate::run(storage, &config, std::future::pending())
                    .await
                    .unwrap_err();
                receipt::read(storage, &config.ticket)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let receipt = failed_attempt(1).await;
        assert_eq!((receipt.frames, receipt.tasks, receipt.attempts), (3, 2, 2));
        assert!(receipt.movie.is_none());
        // Billed at a render task's 4 vCPU for at least a minute; the zip at 1.
        let hours = 60.0 / 3600.0;
        assert!(
            (receipt.vcpu_hours - (4.0 + 1.0) * hours).abs() < 1e-6,
            "{receipt:?}"
        );

        let receipt = failed_attempt(2).await;
        assert_eq!((receipt.tasks, receipt.attempts), (2, 3));
    }
}
