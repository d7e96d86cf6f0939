//! One Blender process's output, line by line: which frame it is on, the files it saved (one a
//! frame, or one a view of a multiview scene saving its views apart), each frame's log, errors
//! and time, and the chunk's verdict once it exits: a frame is done when every file of it is
//! uploaded.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use bytes::Bytes;
use farm_core::blender::{output_frame, parse_log_line, LogEvent};
use farm_core::storage::PutOptions;
use farm_core::Storage;
use tracing::{info, warn};

use crate::error::RenderError;

use super::{ChunkReport, ChunkSpec, FrameEvent, FrameFile, Uploaded, LOG_LINES_PER_FRAME};

/// What one Blender process has done so far, read from its output.
#[derive(Debug, Default)]
pub(super) struct Run {
    expected: BTreeSet<i32>,
    /// The view suffix of each file of a frame (`[""]`: one file).
    views: Vec<String>,
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
    /// Files queued for upload: frame and view suffix.
    queued: BTreeSet<(i32, String)>,
    /// The view files of each frame uploaded so far.
    uploaded_views: BTreeMap<i32, BTreeSet<String>>,
    /// Frames with every file uploaded.
    uploaded: BTreeSet<i32>,
    unreadable: BTreeSet<i32>,
}

impl Run {
    /// A run of `frames`, each made of one file per view suffix in `views` (`[""]`: one file).
    pub(super) fn new(frames: &[i32], views: &[&str], out_dir: &Path) -> Self {
        Self {
            expected: frames.iter().copied().collect(),
            views: views.iter().map(|&s| s.to_owned()).collect(),
            out_dir: out_dir.to_owned(),
            ..Self::default()
        }
    }

    /// The frame Blender is on and when it started, until a file of it is saved.
    pub(super) fn running(&self) -> Option<(i32, Instant)> {
        let frame = self.current?;
        let saving = self.queued.range((frame, String::new())..).next();
        (saving.is_none_or(|(f, _)| *f != frame)).then_some((frame, self.frame_started?))
    }

    /// Takes in one line of Blender's output; returns a frame file ready to upload.
    pub(super) fn observe(
        &mut self,
        line: String,
        events: &(dyn Fn(FrameEvent) + Sync),
    ) -> Option<FrameFile> {
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
        let (frame, suffix, extension) = output_frame(name)?;
        (self.expected.contains(&frame)
            && self.views.iter().any(|v| v == suffix)
            && self.queued.insert((frame, suffix.to_owned())))
        .then(|| FrameFile {
            frame,
            suffix: suffix.to_owned(),
            path: path.to_owned(),
            extension: extension.to_owned(),
        })
    }

    /// Frame files in the output folder that no `Saved:` line announced.
    pub(super) async fn unannounced(
        &mut self,
        out_dir: &Path,
    ) -> Result<Vec<FrameFile>, RenderError> {
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

    pub(super) fn uploaded(
        &mut self,
        done: Result<(FrameFile, Option<Uploaded>), RenderError>,
        events: &(dyn Fn(FrameEvent) + Sync),
    ) -> Result<(), RenderError> {
        match done? {
            (file, None) => {
                self.unreadable.insert(file.frame);
            }
            (file, Some(uploaded)) => {
                let frame = file.frame;
                let render = self.render_times.get(&frame).copied();
                info!(
                    frame,
                    view = file.suffix,
                    key = %uploaded.key,
                    render_seconds = render.map(|d| d.as_secs_f64()),
                    upload_seconds = uploaded.upload.as_secs_f64(),
                    "frame uploaded"
                );
                let views = self.uploaded_views.entry(frame).or_default();
                views.insert(file.suffix);
                if views.len() < self.views.len() {
                    return Ok(());
                }
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
                    object: uploaded.object,
                });
            }
        }
        Ok(())
    }

    /// Every expected frame is in the store, or the chunk failed: then say which frame, why,
    /// and leave its log next to the frames.
    pub(super) async fn verdict<S: Storage>(
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
        } else if let Some(views) = self.views_not_written(frame) {
            format!("blender wrote no image for view {views}")
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

impl Run {
    /// The view files of `frame` not uploaded while others were (`_R`), if any were.
    fn views_not_written(&self, frame: i32) -> Option<String> {
        let done = self.uploaded_views.get(&frame)?;
        let absent: Vec<&str> = self
            .views
            .iter()
            .filter(|v| !done.contains(*v))
            .map(String::as_str)
            .collect();
        (!absent.is_empty()).then(|| absent.join(", "))
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
        let mut run = Run::new(&[1, 2], &[""], &out);
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
    fn a_multiview_frame_is_uploaded_when_every_view_file_is() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        for name in [
            "frame_1_L.png",
            "frame_1_R.png",
            "frame_1.png",
            "frame_1_C.png",
        ] {
            std::fs::write(out.join(name), b"png").unwrap();
        }
        let saved = |name: &str| format!("Saved: '{}'", out.join(name).display());
        let mut run = Run::new(&[1], &["_L", "_R"], &out);
        run.observe("FARM_FRAME 1".into(), &no_events);
        for name in ["frame_1.png", "frame_1_C.png"] {
            assert!(run.observe(saved(name), &no_events).is_none(), "{name}");
        }
        let left = run.observe(saved("frame_1_L.png"), &no_events).unwrap();
        assert_eq!(left.suffix, "_L");
        assert!(
            run.running().is_none(),
            "saving: the frame's render is over"
        );
        let uploaded = |file| {
            Ok((
                file,
                Some(Uploaded {
                    key: "k".into(),
                    upload: Duration::ZERO,
                    object: None,
                }),
            ))
        };
        run.uploaded(uploaded(left), &no_events).unwrap();
        assert!(run.uploaded.is_empty(), "one view of two");
        assert_eq!(run.views_not_written(1).as_deref(), Some("_R"));
        let right = run.observe(saved("frame_1_R.png"), &no_events).unwrap();
        run.uploaded(uploaded(right), &no_events).unwrap();
        assert_eq!(run.uploaded.iter().copied().collect::<Vec<_>>(), [1]);
        assert_eq!(run.views_not_written(1), None);
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
        let mut run = Run::new(&[1, 2], &[""], &out);
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
        let mut run = Run::new(&[1], &[""], Path::new("/w/out"));
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
        let mut run = Run::new(&[1], &[""], dir.path());
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
        let mut run = Run::new(&[1, 2], &[""], Path::new("/w/out"));
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
