//! One Blender process for a chunk: follow its log, upload each frame as soon as it is saved,
//! and trust nothing Blender says about success until every frame is in the store.

use std::future::Future;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use farm_core::blender::{blender_env, Blender, RenderCommand};
use farm_core::image::{content_type, looks_like_image, IMAGE_SNIFF_LEN};
use farm_core::storage::PutOptions;
use farm_core::tasks::UploadedFrame;
use farm_core::{JobKeys, Storage};
use farm_jobs::{scan_chunk_frames, OutputVersion, ScanError};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tracing::warn;

use crate::error::RenderError;

mod run;

use run::Run;

/// How long a killed Blender gets to exit before we stop waiting for it.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Frames uploading at once while Blender goes on rendering.
const UPLOADS_IN_FLIGHT: usize = 4;
/// Lines of Blender output kept per frame for its failure log.
const LOG_LINES_PER_FRAME: usize = 2_000;

/// The frames one process renders and where they go.
#[derive(Debug, Clone)]
pub struct ChunkSpec<'a> {
    pub keys: &'a JobKeys,
    /// Sorted absolute frames of the chunk.
    pub frames: &'a [i32],
    /// What makes a frame object this job's ([`farm_jobs::JobTicket::version`]): the .blend's
    /// version (its ETag), the format and the engine Blender renders with, the version of the
    /// job's dependency list. Stored on every frame; a frame carrying another was rendered for
    /// another job and is rendered again.
    pub version: &'a OutputVersion,
    /// Whether `keys.source()` is the .blend in the store and the version's source tag its
    /// ETag: then the source is checked again before each upload, and a replaced .blend stops
    /// the chunk with [`RenderError::Superseded`] instead of mixing its frames with the new
    /// upload's.
    pub recheck_source: bool,
    /// Render at this percent of the scene's resolution: the estimate's profile pass (ADR
    /// 0016), never a job's frames.
    pub resolution_percent: Option<u8>,
}

/// How to run Blender.
#[derive(Debug, Clone)]
pub struct BlenderSetup {
    pub blender: Blender,
    pub threads: usize,
    /// Scratch folder; Blender writes frames into `<work_dir>/out`, File Output nodes into
    /// `<work_dir>/outputs`, and has `<work_dir>/home` and `<work_dir>/tmp` as HOME and TMPDIR.
    pub work_dir: PathBuf,
    /// The job allows Cycles' persistent data between a chunk's frames (ADR 0015).
    pub persistent: bool,
    /// Most time one frame may take, from the script's `FARM_FRAME` line to its `Saved:` line;
    /// past it Blender is stopped and the chunk fails with [`RenderError::FrameTimeout`].
    pub frame_timeout: Option<Duration>,
}

/// Something that happened to one frame, for progress bars and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    Started {
        frame: i32,
    },
    Uploaded {
        frame: i32,
        key: String,
        render: Option<Duration>,
        upload: Duration,
        /// The object as the upload left it (the ETag the store returned), for the task
        /// record; `None` when the store returned no ETag.
        object: Option<UploadedFrame>,
    },
}

/// What a finished chunk did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkReport {
    /// Frames rendered and uploaded by this run.
    pub rendered: Vec<i32>,
    /// Frames already in the store for this .blend, left alone.
    pub skipped: Vec<i32>,
}

/// Frames of the chunk not yet in the store for this job: missing, or only rendered from
/// another version of the .blend or in another format (the job model's frame scan).
pub async fn pending_frames<S: Storage>(
    storage: &S,
    spec: &ChunkSpec<'_>,
) -> Result<Vec<i32>, RenderError> {
    let scan = scan_chunk_frames(storage, spec.keys, spec.frames, spec.version, &[])
        .await
        .map_err(|error| match error {
            ScanError::Storage(e) => RenderError::Storage(e),
            other => RenderError::Config(other.to_string()),
        })?;
    Ok(scan.not_current())
}

/// Renders `frames` (a subset of the chunk) with one Blender process and uploads each frame as
/// it is saved. Stops Blender and returns [`RenderError::Interrupted`] when `shutdown` fires;
/// uploads in flight are dropped, and an object store never shows a dropped upload.
pub async fn render_frames<S: Storage, F: Future<Output = ()> + Unpin>(
    storage: &S,
    spec: &ChunkSpec<'_>,
    blend: &Path,
    setup: &BlenderSetup,
    frames: &[i32],
    mut shutdown: F,
    events: &(dyn Fn(FrameEvent) + Sync),
) -> Result<ChunkReport, RenderError> {
    // Blender runs in the work folder: every path it gets is absolute.
    let work_dir = std::path::absolute(&setup.work_dir).map_err(|source| RenderError::WorkDir {
        path: setup.work_dir.clone(),
        source,
    })?;
    let blend = &std::path::absolute(blend).map_err(|source| RenderError::WorkDir {
        path: blend.to_owned(),
        source,
    })?;
    let setup = &BlenderSetup {
        work_dir,
        ..setup.clone()
    };
    let out_dir = fresh_dir(&setup.work_dir.join("out")).await?;
    let outputs_dir = fresh_dir(&setup.work_dir.join("outputs")).await?;
    let caches_dir = fresh_dir(&setup.work_dir.join("caches")).await?;
    let command = RenderCommand {
        blend,
        frames,
        threads: setup.threads,
        output_dir: &out_dir,
        outputs_dir: &outputs_dir,
        caches_dir: &caches_dir,
        format: spec.version.format,
        persistent: setup.persistent,
        engine: spec.version.engine,
        resolution_percent: spec.resolution_percent,
    };
    let (mut child, mut lines) = spawn_blender(setup, &command).await?;
    let mut run = Run::new(frames, &spec.version.views.suffixes(), &out_dir);
    let mut uploads = FuturesUnordered::new();

    // Follow Blender's output until it closes, uploading frames as they are saved.
    loop {
        let running = run.running().zip(setup.frame_timeout);
        tokio::select! {
            () = &mut shutdown => return Err(stop(&mut child).await),
            () = past_limit(running) => {
                stop(&mut child).await;
                if let Some(((frame, _), limit)) = running {
                    return Err(RenderError::FrameTimeout { frame, limit });
                }
            }
            line = lines.recv(), if uploads.len() < UPLOADS_IN_FLIGHT => match line {
                Some(line) => {
                    if let Some(file) = run.observe(line, events) {
                        uploads.push(upload_frame(storage, spec, file));
                    }
                }
                None => break,
            },
            Some(done) = uploads.next(), if !uploads.is_empty() => {
                if let Err(e) = run.uploaded(done, events) {
                    stop(&mut child).await;
                    return Err(e);
                }
            }
        }
    }
    let status = loop {
        tokio::select! {
            () = &mut shutdown => return Err(stop(&mut child).await),
            status = child.wait() => break status.map_err(|source| RenderError::BlenderMissing { path: setup.blender.program().to_owned(), source })?,
            Some(done) = uploads.next(), if !uploads.is_empty() => run.uploaded(done, events)?,
        }
    };
    // Files Blender wrote without a `Saved:` line we recognised.
    for file in run.unannounced(&out_dir).await? {
        uploads.push(upload_frame(storage, spec, file));
    }
    loop {
        tokio::select! {
            () = &mut shutdown => return Err(RenderError::Interrupted),
            done = uploads.next() => match done {
                Some(done) => run.uploaded(done, events)?,
                None => break,
            },
        }
    }
    run.verdict(storage, spec, status).await
}

/// A command starting Blender (executable or Python module) in `work_dir` that can reach no
/// credentials: its environment holds only what [`blender_env`] keeps (HOME and TMPDIR are
/// `<work_dir>/home` and `<work_dir>/tmp`), and this process is made non-dumpable first, so
/// Blender (same user, no CAP_SYS_PTRACE) can read neither `/proc/<our pid>/environ` nor our
/// memory. See ADR 0006. Where the platform allows, it has no network either and can write
/// nothing outside `work_dir` ([`crate::sandbox`]).
pub async fn blender_command(blender: &Blender, work_dir: &Path) -> Result<Command, RenderError> {
    protect_this_process().map_err(|source| RenderError::WorkDir {
        path: "/proc/self".into(),
        source,
    })?;
    let home = work_dir.join("home");
    let tmp = work_dir.join("tmp");
    for dir in [&home, &tmp] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| RenderError::WorkDir {
                path: dir.clone(),
                source,
            })?;
    }
    let mut command = crate::sandbox::command(blender.program(), work_dir);
    command
        .env_clear()
        .envs(blender_env(std::env::vars_os(), &home, &tmp))
        .current_dir(work_dir);
    Ok(command)
}

/// Makes this process non-dumpable: only a process with CAP_SYS_PTRACE may then read its
/// `/proc/<pid>/environ`, `/proc/<pid>/mem` or attach to it. Lasts for the process's life (the
/// setting is reset for programs it starts, which get a cleared environment instead).
pub fn protect_this_process() -> std::io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(std::io::Error::from)
}

/// Starts Blender with stdout and stderr on one pipe, so its lines keep their order, and reads
/// that pipe on a blocking thread into a channel.
async fn spawn_blender(
    setup: &BlenderSetup,
    command: &RenderCommand<'_>,
) -> Result<(Child, mpsc::Receiver<String>), RenderError> {
    let missing = |source| RenderError::BlenderMissing {
        path: setup.blender.program().to_owned(),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(missing)?;
    let writer_for_stderr = writer.try_clone().map_err(missing)?;
    let child = blender_command(&setup.blender, &setup.work_dir)
        .await?
        .args(command.args(&setup.blender))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_for_stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(missing)?;
    // The Command and its copies of the pipe's write end are gone: the pipe closes when
    // Blender exits.
    let (tx, rx) = mpsc::channel(1024);
    tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok((child, rx))
}

/// Kills Blender and waits (briefly) for it to go.
/// Resolves when the frame that started at `running` has taken `limit`; never without a
/// frame or a limit.
async fn past_limit(running: Option<((i32, Instant), Duration)>) {
    match running {
        Some(((_, started), limit)) => {
            tokio::time::sleep_until(tokio::time::Instant::from_std(started + limit)).await;
        }
        None => std::future::pending().await,
    }
}

async fn stop(child: &mut Child) -> RenderError {
    if child.start_kill().is_ok() {
        let _ = tokio::time::timeout(KILL_WAIT, child.wait()).await;
    }
    RenderError::Interrupted
}

async fn fresh_dir(dir: &Path) -> Result<PathBuf, RenderError> {
    let error = |source| RenderError::WorkDir {
        path: dir.to_owned(),
        source,
    };
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    tokio::fs::create_dir_all(dir).await.map_err(error)?;
    Ok(dir.to_owned())
}

/// A file Blender wrote for a frame (or for one view of it).
#[derive(Debug)]
struct FrameFile {
    frame: i32,
    /// The view's suffix (`_L`), `""` for a frame's only file.
    suffix: String,
    path: PathBuf,
    extension: String,
}

#[derive(Debug)]
struct Uploaded {
    key: String,
    upload: Duration,
    object: Option<UploadedFrame>,
}

/// Uploads a frame's file, or returns `Ok(None)` if it is not a finished image.
async fn upload_frame<S: Storage>(
    storage: &S,
    spec: &ChunkSpec<'_>,
    file: FrameFile,
) -> Result<(FrameFile, Option<Uploaded>), RenderError> {
    let head = read_head(&file.path, IMAGE_SNIFF_LEN).await?;
    if !looks_like_image(&file.extension, &head) {
        warn!(frame = file.frame, path = %file.path.display(), "blender wrote an empty or unreadable image");
        return Ok((file, None));
    }
    let key = spec
        .keys
        .view_frame(file.frame, &file.suffix, &file.extension);
    let options = PutOptions {
        content_type: Some(content_type(&file.extension).to_owned()),
        metadata: spec.version.metadata(),
        ..PutOptions::default()
    };
    check_source(storage, spec).await?;
    let size = tokio::fs::metadata(&file.path).await.ok().map(|m| m.len());
    let started = Instant::now();
    let etag = storage.upload_file(&key, &file.path, &options).await?;
    // The frame is in the store: its local copy only takes disk space from here on.
    if let Err(error) = tokio::fs::remove_file(&file.path).await {
        warn!(frame = file.frame, path = %file.path.display(), %error, "could not remove an uploaded frame file");
    }
    let object = etag.zip(size).map(|(etag, size)| UploadedFrame {
        key: key.clone(),
        etag,
        size,
    });
    let uploaded = Uploaded {
        key,
        upload: started.elapsed(),
        object,
    };
    Ok((file, Some(uploaded)))
}

/// Fails with [`RenderError::Superseded`] when the job's .blend was replaced since the job was
/// submitted (its frames would overwrite the newer upload's), with [`RenderError::SourceMissing`]
/// when it was deleted.
async fn check_source<S: Storage>(storage: &S, spec: &ChunkSpec<'_>) -> Result<(), RenderError> {
    let (true, Some(expected)) = (spec.recheck_source, spec.version.source_tag.as_deref()) else {
        return Ok(());
    };
    let key = spec.keys.source();
    let found = storage
        .head(key)
        .await?
        .ok_or_else(|| RenderError::SourceMissing {
            key: key.to_owned(),
        })?
        .etag
        .unwrap_or_default();
    if found != expected {
        return Err(RenderError::Superseded {
            key: key.to_owned(),
            expected: expected.to_owned(),
            found,
        });
    }
    Ok(())
}

/// The first `len` bytes of a local file (fewer if it is shorter).
pub(crate) async fn read_head(path: &Path, len: usize) -> Result<Vec<u8>, RenderError> {
    let error = |source| RenderError::WorkDir {
        path: path.to_owned(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(error)?;
    let mut head = Vec::with_capacity(len);
    file.take(len as u64)
        .read_to_end(&mut head)
        .await
        .map_err(error)?;
    Ok(head)
}
