//! One Blender process for a chunk: follow its log, upload each frame as soon as it is saved,
//! and trust nothing Blender says about success until every frame is in the store.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use farm_core::blender::{
    blender_env, output_frame, parse_log_line, Blender, LogEvent, OutputFormat, RenderCommand,
};
use farm_core::engine::Engine;
use farm_core::image::{content_type, looks_like_image, IMAGE_SNIFF_LEN};
use farm_core::storage::PutOptions;
use farm_core::{JobKeys, Storage};
use farm_jobs::{scan_chunk_frames, OutputVersion, ScanError};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::error::RenderError;

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
    pub format: Option<OutputFormat>,
    /// The engine Blender renders with; recorded on every frame.
    pub engine: Engine,
    /// Identifies the version of the .blend (its ETag). Stored on every frame; a frame carrying
    /// another tag was rendered from another version and is rendered again.
    pub source_tag: Option<&'a str>,
    /// The version of the job's dependency list, if it has one ([`farm_core::deps::list_version`]):
    /// stored on every frame, so a frame rendered with other textures or libraries is rendered
    /// again.
    pub dependencies: Option<&'a str>,
    /// Whether `keys.source()` is the .blend in the store and `source_tag` its ETag: then the
    /// source is checked again before each upload, and a replaced .blend stops the chunk with
    /// [`RenderError::Superseded`] instead of mixing its frames with the new upload's.
    pub recheck_source: bool,
}

impl ChunkSpec<'_> {
    /// What makes a frame object this job's (see [`farm_jobs::scan`]).
    pub fn version(&self) -> OutputVersion {
        OutputVersion::new(self.source_tag, self.format)
            .with_dependencies(self.dependencies)
            .with_engine(Some(self.engine))
    }
}

/// How to run Blender.
#[derive(Debug, Clone)]
pub struct BlenderSetup {
    pub blender: Blender,
    pub threads: usize,
    /// Scratch folder; Blender writes frames into `<work_dir>/out`, File Output nodes into
    /// `<work_dir>/outputs`, and has `<work_dir>/home` and `<work_dir>/tmp` as HOME and TMPDIR.
    pub work_dir: PathBuf,
    /// The job allows Cycles' persistent data between a chunk's frames (ADR 0012).
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
    let scan = scan_chunk_frames(storage, spec.keys, spec.frames, &spec.version())
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
        format: spec.format,
        persistent: setup.persistent,
        engine: spec.engine,
    };
    let (mut child, mut lines) = spawn_blender(setup, &command).await?;
    let mut run = Run::new(frames, &out_dir);
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
/// memory. See ADR 0006. Where the platform allows, it has no network either
/// ([`crate::network`]).
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
    let mut command = crate::network::command(blender.program());
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

/// A file Blender wrote for a frame.
#[derive(Debug)]
struct FrameFile {
    frame: i32,
    path: PathBuf,
    extension: String,
}

#[derive(Debug)]
struct Uploaded {
    key: String,
    upload: Duration,
}

/// Uploads a frame's file, or returns `Ok(None)` if it is not a finished image.
async fn upload_frame<S: Storage>(
    storage: &S,
    spec: &ChunkSpec<'_>,
    file: FrameFile,
) -> Result<(i32, Option<Uploaded>), RenderError> {
    let head = read_head(&file.path, IMAGE_SNIFF_LEN).await?;
    if !looks_like_image(&file.extension, &head) {
        warn!(frame = file.frame, path = %file.path.display(), "blender wrote an empty or unreadable image");
        return Ok((file.frame, None));
    }
    let key = spec.keys.frame(file.frame, &file.extension);
    let options = PutOptions {
        content_type: Some(content_type(&file.extension).to_owned()),
        metadata: spec.version().metadata(),
        ..PutOptions::default()
    };
    check_source(storage, spec).await?;
    let started = Instant::now();
    storage.upload_file(&key, &file.path, &options).await?;
    // The frame is in the store: its local copy only takes disk space from here on.
    if let Err(error) = tokio::fs::remove_file(&file.path).await {
        warn!(frame = file.frame, path = %file.path.display(), %error, "could not remove an uploaded frame file");
    }
    let uploaded = Uploaded {
        key,
        upload: started.elapsed(),
    };
    Ok((file.frame, Some(uploaded)))
}

/// Fails with [`RenderError::Superseded`] when the job's .blend was replaced since the job was
/// submitted (its frames would overwrite the newer upload's), with [`RenderError::SourceMissing`]
/// when it was deleted.
async fn check_source<S: Storage>(storage: &S, spec: &ChunkSpec<'_>) -> Result<(), RenderError> {
    let (true, Some(expected)) = (spec.recheck_source, spec.source_tag) else {
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

/// What one Blender process has done so far, read from its output.
#[derive(Debug, Default)]
struct Run {
    expected: BTreeSet<i32>,
    /// The only folder a frame file is accepted from.
    out_dir: PathBuf,
    /// Why the render script refused the file, if it did.
    refused: Option<String>,
    /// The frame the render script is on.
    current: Option<i32>,
    /// Lines before the first frame (loading the file), part of every frame's log.
    header: Vec<String>,
    logs: BTreeMap<i32, VecDeque<String>>,
    last_error: Option<String>,
    errors: BTreeMap<i32, String>,
    /// Each frame's cost: from the script's `FARM_FRAME` line to Blender's `Saved:` line (scene
    /// update, sync, render and save), or Blender's `Time:` line when no `Saved:` came first.
    render_times: BTreeMap<i32, Duration>,
    /// When the current frame started (its `FARM_FRAME` line).
    frame_started: Option<Instant>,
    queued: BTreeSet<i32>,
    uploaded: BTreeSet<i32>,
    unreadable: BTreeSet<i32>,
}

impl Run {
    fn new(frames: &[i32], out_dir: &Path) -> Self {
        Self {
            expected: frames.iter().copied().collect(),
            out_dir: out_dir.to_owned(),
            ..Self::default()
        }
    }

    /// The frame Blender is on and when it started, until its file is saved.
    fn running(&self) -> Option<(i32, Instant)> {
        let frame = self.current?;
        (!self.queued.contains(&frame)).then_some((frame, self.frame_started?))
    }

    /// Takes in one line of Blender's output; returns a frame file ready to upload.
    fn observe(&mut self, line: String, events: &(dyn Fn(FrameEvent) + Sync)) -> Option<FrameFile> {
        let mut ready = None;
        match parse_log_line(&line) {
            LogEvent::FrameStart { frame } => {
                self.current = Some(frame);
                self.frame_started = Some(Instant::now());
                events(FrameEvent::Started { frame });
            }
            LogEvent::Saved { path } => {
                ready = self.saved(Path::new(path));
                // Timed here: Blender prints its `Time:` line after `Saved:`, and the upload
                // (which reports the time) may finish before that line is read.
                if let (Some(file), Some(started)) = (&ready, self.frame_started) {
                    self.render_times
                        .entry(file.frame)
                        .or_insert_with(|| started.elapsed());
                }
            }
            LogEvent::FrameTime { render } => {
                if let Some(frame) = self.current {
                    self.render_times.entry(frame).or_insert(render);
                }
            }
            LogEvent::Refused { reason } => self.refused = Some(reason.to_owned()),
            LogEvent::Note { text } => {
                info!(note = text, "render script changed the scene")
            }
            LogEvent::Error { message } => {
                self.last_error = Some(message.to_owned());
                if let Some(frame) = self.current {
                    self.errors.insert(frame, message.to_owned());
                }
            }
            LogEvent::Progress { .. } | LogEvent::Other => {}
        }
        match self.current {
            Some(frame) => {
                let log = self.logs.entry(frame).or_default();
                if log.len() == LOG_LINES_PER_FRAME {
                    log.pop_front();
                }
                log.push_back(line);
            }
            None if self.header.len() < LOG_LINES_PER_FRAME => self.header.push(line),
            None => {}
        }
        ready
    }

    /// A frame file Blender says it wrote. Accepted only directly inside the output folder
    /// and only as a regular file: a `Saved:` line from a File Output node, a line forged by a
    /// name in the scene, or a symbolic link never becomes a frame.
    fn saved(&mut self, path: &Path) -> Option<FrameFile> {
        if path.parent() != Some(self.out_dir.as_path())
            || path.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )
            })
            || !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
        {
            return None;
        }
        let name = path.file_name()?.to_str()?;
        let (frame, extension) = output_frame(name)?;
        (self.expected.contains(&frame) && self.queued.insert(frame)).then(|| FrameFile {
            frame,
            path: path.to_owned(),
            extension: extension.to_owned(),
        })
    }

    /// Frame files in the output folder that no `Saved:` line announced.
    async fn unannounced(&mut self, out_dir: &Path) -> Result<Vec<FrameFile>, RenderError> {
        let error = |source| RenderError::WorkDir {
            path: out_dir.to_owned(),
            source,
        };
        let mut entries = tokio::fs::read_dir(out_dir).await.map_err(error)?;
        let mut files = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(error)? {
            if let Some(file) = self.saved(&entry.path()) {
                files.push(file);
            }
        }
        Ok(files)
    }

    fn uploaded(
        &mut self,
        done: Result<(i32, Option<Uploaded>), RenderError>,
        events: &(dyn Fn(FrameEvent) + Sync),
    ) -> Result<(), RenderError> {
        match done? {
            (frame, None) => {
                self.unreadable.insert(frame);
            }
            (frame, Some(uploaded)) => {
                let render = self.render_times.get(&frame).copied();
                info!(
                    frame,
                    key = %uploaded.key,
                    render_seconds = render.map(|d| d.as_secs_f64()),
                    upload_seconds = uploaded.upload.as_secs_f64(),
                    "frame uploaded"
                );
                self.uploaded.insert(frame);
                // Only a failed frame's log is kept (to upload next to the frames).
                if let Some(log) = self.logs.get_mut(&frame) {
                    *log = VecDeque::new();
                }
                events(FrameEvent::Uploaded {
                    frame,
                    key: uploaded.key,
                    render,
                    upload: uploaded.upload,
                });
            }
        }
        Ok(())
    }

    /// Every expected frame is in the store, or the chunk failed: then say which frame, why,
    /// and leave its log next to the frames.
    async fn verdict<S: Storage>(
        self,
        storage: &S,
        spec: &ChunkSpec<'_>,
        status: ExitStatus,
    ) -> Result<ChunkReport, RenderError> {
        if let Some(reason) = self.refused {
            return Err(RenderError::Refused {
                key: spec.keys.source().to_owned(),
                reason,
            });
        }
        let missing: Vec<i32> = self.expected.difference(&self.uploaded).copied().collect();
        if missing.is_empty() {
            if !status.success() {
                warn!(%status, "blender reported failure, but every frame was written and uploaded");
            }
            return Ok(ChunkReport {
                rendered: self.uploaded.into_iter().collect(),
                skipped: Vec::new(),
            });
        }
        let exit = describe(status);
        if let Some(signal) = status.signal() {
            return Err(RenderError::BlenderKilled {
                frame: self.current.unwrap_or(missing[0]),
                exit,
                signal,
            });
        }
        if self.logs.is_empty() {
            return Err(RenderError::SceneUnreadable {
                key: spec.keys.source().to_owned(),
                message: self
                    .last_error
                    .unwrap_or_else(|| format!("blender {exit} before rendering a frame")),
            });
        }
        let started_and_failed: Vec<i32> = missing
            .iter()
            .copied()
            .filter(|f| self.logs.contains_key(f))
            .collect();
        for &frame in &started_and_failed {
            let mut text = self.header.join("\n");
            text.push('\n');
            for line in &self.logs[&frame] {
                text.push_str(line);
                text.push('\n');
            }
            storage
                .put(
                    &spec.keys.log(frame),
                    Bytes::from(text),
                    &PutOptions::content_type("text/plain; charset=utf-8"),
                )
                .await?;
        }
        let frame = started_and_failed.first().copied().unwrap_or(missing[0]);
        let message = if self.unreadable.contains(&frame) {
            "blender wrote an empty or unreadable image".to_owned()
        } else {
            self.errors
                .get(&frame)
                .or(self.last_error.as_ref())
                .cloned()
                .unwrap_or_else(|| "blender wrote no image and printed no error".to_owned())
        };
        Err(RenderError::FrameFailed {
            frame,
            failed: missing.len(),
            total: self.expected.len(),
            exit,
            message,
            log_key: spec.keys.log(frame),
        })
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_events(_: FrameEvent) {}

    #[test]
    fn saved_lines_queue_each_expected_frame_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        for name in ["frame_1.png", "frame_9.png", "other.png"] {
            std::fs::write(out.join(name), b"png").unwrap();
        }
        let saved = |name: &str| format!("Saved: '{}'", out.join(name).display());
        let mut run = Run::new(&[1, 2], &out);
        assert!(run.observe("FARM_FRAME 1".into(), &no_events).is_none());
        let file = run.observe(saved("frame_1.png"), &no_events).unwrap();
        assert_eq!((file.frame, file.extension.as_str()), (1, "png"));
        assert!(
            run.observe(saved("frame_1.png"), &no_events).is_none(),
            "queued twice"
        );
        assert!(
            run.observe(saved("frame_9.png"), &no_events).is_none(),
            "not in the chunk"
        );
        assert!(run.observe(saved("other.png"), &no_events).is_none());
    }

    #[test]
    fn only_regular_files_directly_in_the_output_folder_are_frames() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let outputs = dir.path().join("outputs/File Output");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(out.join("sub")).unwrap();
        std::fs::create_dir_all(&outputs).unwrap();
        std::fs::write(outputs.join("frame_1.png"), b"png").unwrap();
        std::fs::write(dir.path().join("frame_1.png"), b"png").unwrap();
        std::fs::write(out.join("sub/frame_1.png"), b"png").unwrap();
        std::os::unix::fs::symlink(dir.path().join("frame_1.png"), out.join("frame_2.png"))
            .unwrap();
        let mut run = Run::new(&[1, 2], &out);
        for path in [
            outputs.join("frame_1.png"),
            dir.path().join("frame_1.png"),
            out.join("sub/frame_1.png"),
            out.join("sub/../frame_1.png"),
            out.join("frame_2.png"),
            PathBuf::from("frame_1.png"),
        ] {
            let line = format!("Saved: '{}'", path.display());
            assert!(
                run.observe(line, &no_events).is_none(),
                "{}",
                path.display()
            );
        }
        assert!(run.queued.is_empty());
    }

    #[test]
    fn a_refusal_is_kept_for_the_verdict() {
        let mut run = Run::new(&[1], Path::new("/w/out"));
        run.observe(
            "FARM_REFUSED Freestyle on view layer \"V\"".into(),
            &no_events,
        );
        assert_eq!(
            run.refused.as_deref(),
            Some("Freestyle on view layer \"V\"")
        );
    }

    /// Blender prints a frame's `Time:` line after its `Saved:` line, and a fast upload used to
    /// finish before it was read: the task record then had no time for the frame (seen with
    /// `farm estimate` on the local folder).
    #[test]
    fn a_frame_is_timed_when_saved_before_blenders_time_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("frame_1.png"), b"png").unwrap();
        let mut run = Run::new(&[1], dir.path());
        run.observe("FARM_FRAME 1".into(), &no_events);
        let saved = format!("Saved: '{}'", dir.path().join("frame_1.png").display());
        let file = run.observe(saved, &no_events).expect("a frame file");
        assert_eq!(file.frame, 1);
        let timed = run.render_times[&1];
        run.observe(" Time: 00:09.50 (Saving: 00:00.01)".into(), &no_events);
        assert_eq!(run.render_times[&1], timed, "the first measure stays");
    }

    #[test]
    fn errors_and_times_belong_to_the_current_frame() {
        let mut run = Run::new(&[1, 2], Path::new("/w/out"));
        run.observe("Read blend: /w/scene.blend".into(), &no_events);
        run.observe("FARM_FRAME 2".into(), &no_events);
        run.observe(" Time: 00:01.50 (Saving: 00:00.01)".into(), &no_events);
        run.observe(
            "Error: Python: Traceback (most recent call last):".into(),
            &no_events,
        );
        assert_eq!(run.header, vec!["Read blend: /w/scene.blend".to_owned()]);
        assert_eq!(run.render_times[&2], Duration::from_millis(1500));
        assert!(run.errors[&2].contains("Traceback"));
        assert_eq!(run.logs[&2].len(), 3);
    }

    #[test]
    fn exit_statuses_read_plainly() {
        assert_eq!(describe(ExitStatus::from_raw(256)), "exited with code 1");
        assert_eq!(describe(ExitStatus::from_raw(9)), "was killed by signal 9");
    }
}
