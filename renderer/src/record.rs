//! The task record of this attempt, `<key>/tasks/<index>-<attempt>.json` (the movie job's:
//! `<key>/tasks/movie-<attempt>.json`): start and end, the download, Blender's start-up, each
//! frame's render and upload seconds, the exit code and the CPUs. Written whether the chunk succeeded or not, best effort: a failed write is logged and
//! never changes the exit code the chunk earned.

use std::sync::Mutex;
use std::time::Instant;

use farm_core::storage::{put_json, Metadata};
use farm_core::tasks::{FrameTiming, TaskKind, TaskRecord};
use farm_core::{exit, Storage};
use farm_jobs::OutputVersion;
use jiff::Timestamp;
use tracing::{debug, warn};

use crate::config::{available_cpus, Config};
use crate::error::RenderError;
use crate::render::FrameEvent;

/// Times one attempt as it goes; shared with the frame-event callback.
#[derive(Debug)]
pub struct TaskClock {
    started: Timestamp,
    inner: Mutex<Times>,
}

#[derive(Debug, Default)]
struct Times {
    download_started: Option<Instant>,
    download_seconds: Option<f64>,
    /// When Blender's clock starts: the end of the download.
    blender_from: Option<Instant>,
    blender_startup_seconds: Option<f64>,
    frames: Vec<FrameTiming>,
    /// The metadata stored on the frames uploaded ([`TaskClock::rendering_for`]).
    frame_metadata: Option<Metadata>,
}

impl Default for TaskClock {
    fn default() -> Self {
        Self::start()
    }
}

impl TaskClock {
    pub fn start() -> Self {
        Self {
            started: Timestamp::now(),
            inner: Mutex::new(Times::default()),
        }
    }

    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `.blend`'s download begins.
    pub fn downloading(&self) {
        self.times().download_started = Some(Instant::now());
    }

    /// The download ended; Blender's start-up is timed from here.
    pub fn downloaded(&self) {
        let mut times = self.times();
        let now = Instant::now();
        times.download_seconds = times
            .download_started
            .map(|started| now.duration_since(started).as_secs_f64());
        times.blender_from = Some(now);
    }

    /// Seconds the download took, once it ended.
    pub fn download_seconds(&self) -> Option<f64> {
        self.times().download_seconds
    }

    /// The frames are rendered for `version`: the record names it beside the frames it
    /// uploads, so the frame scan can take them as current without reading them.
    pub fn rendering_for(&self, version: &OutputVersion) {
        self.times().frame_metadata = Some(version.metadata());
    }

    /// Takes in a frame event of the render.
    pub fn event(&self, event: &FrameEvent) {
        let mut times = self.times();
        match event {
            FrameEvent::Started { .. } => {
                if times.blender_startup_seconds.is_none() {
                    times.blender_startup_seconds =
                        times.blender_from.map(|from| from.elapsed().as_secs_f64());
                }
            }
            FrameEvent::Uploaded {
                frame,
                render,
                upload,
                object,
                ..
            } => times.frames.push(FrameTiming {
                frame: *frame,
                render_seconds: render.map(|d| d.as_secs_f64()),
                upload_seconds: upload.as_secs_f64(),
                object: object.clone(),
            }),
        }
    }

    /// The record of attempt `attempt` of render chunk `index`, ending now, for `result`.
    pub fn finish<T>(
        &self,
        index: usize,
        attempt: u32,
        source_etag: Option<String>,
        result: &Result<T, RenderError>,
    ) -> TaskRecord {
        self.finish_as(TaskKind::Render, index, attempt, source_etag, result)
    }

    /// The record of attempt `attempt` of task `index` of a `task` job, ending now, for
    /// `result`.
    pub fn finish_as<T>(
        &self,
        task: TaskKind,
        index: usize,
        attempt: u32,
        source_etag: Option<String>,
        result: &Result<T, RenderError>,
    ) -> TaskRecord {
        let times = self.times();
        let (exit_code, error) = match result {
            Ok(_) => (exit::SUCCESS, None),
            Err(e) => (e.class().exit_code(), Some(e.to_string())),
        };
        TaskRecord {
            task,
            index,
            attempt,
            source_etag,
            started: self.started,
            ended: Timestamp::now(),
            exit_code,
            error,
            cpus: available_cpus(),
            download_seconds: times.download_seconds,
            blender_startup_seconds: times.blender_startup_seconds,
            frames: times.frames.clone(),
            frame_metadata: times.frame_metadata.clone(),
        }
    }
}

/// Writes the attempt's record as a task of `task` (at its key in `farm_core::layout`) and
/// returns it; a failure to write is logged, never returned.
pub async fn write_record<S: Storage, T>(
    storage: &S,
    config: &Config,
    clock: &TaskClock,
    task: TaskKind,
    result: &Result<T, RenderError>,
) -> TaskRecord {
    let ticket = &config.ticket;
    let record = clock.finish_as(
        task,
        config.index,
        config.attempt,
        ticket.source_etag.clone(),
        result,
    );
    let key = match task {
        TaskKind::Render => ticket.keys.task_record(config.index, config.attempt),
        TaskKind::Zip => ticket.keys.zip_task_record(config.attempt),
        TaskKind::Movie => ticket.keys.movie_task_record(config.attempt),
    };
    match put_json(storage, &key, &record).await {
        Ok(()) => debug!(key, "task record written"),
        Err(error) => warn!(key, %error, "could not write the task record"),
    }
    record
}
