//! Task records: what one attempt of a render task (or of the zip or movie job) did and how
//! long each part took, written to `<key>/tasks/<index>-<attempt>.json` (`zip-<attempt>.json`
//! for the zipper, `movie-<attempt>.json` for the movie job) whether the attempt succeeded or
//! not. They are summed into the job's receipt ([`crate::receipt`]).
//!
//! A render attempt's record also names each frame object it uploaded (key, ETag, size) and
//! the metadata it stored on all of them: the frame scan (`farm_jobs::scan`) takes a listed
//! frame whose key, ETag and size a record of the job's version names as current without
//! reading the object's metadata.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::storage::Metadata;

/// Which job a task belongs to; each is billed at its job definition's size. Ordered as the
/// jobs run: render, zip, movie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Render,
    Zip,
    /// The movie job (ADR 0012), which runs on the render job definition.
    Movie,
}

/// One frame of a render task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameTiming {
    pub frame: i32,
    /// The frame's seconds in Blender: from the script starting the frame to Blender saving it
    /// (scene update, sync, render, save); Blender's own `Time:` line when the frame was never
    /// seen saved; `None` when neither was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_seconds: Option<f64>,
    pub upload_seconds: f64,
    /// The object the frame was uploaded as, with the ETag the store returned for that upload;
    /// `None` in records from before the farm recorded it, and where the store returned no
    /// ETag (a frame sent in parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<UploadedFrame>,
}

/// A frame object as its upload left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFrame {
    pub key: String,
    /// The ETag the store returned for the upload (quotes included).
    pub etag: String,
    pub size: u64,
}

/// One attempt of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: TaskKind,
    /// The array index (0 on a plain job, for the zipper and for the movie job).
    pub index: usize,
    /// AWS Batch's attempt number, from 1.
    pub attempt: u32,
    /// The `.blend`'s ETag the task worked for: records of another upload of the key are not
    /// this job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_etag: Option<String>,
    pub started: Timestamp,
    pub ended: Timestamp,
    /// The process's exit code (`crate::exit`).
    pub exit_code: i32,
    /// Why the attempt failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// CPUs the process could use.
    pub cpus: usize,
    /// Seconds downloading the `.blend` (render tasks that downloaded it; the movie job: the
    /// `.blend`, its files and the frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_seconds: Option<f64>,
    /// Seconds from the end of the download to Blender starting its first frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blender_startup_seconds: Option<f64>,
    /// Frames rendered and uploaded by this attempt, in the order they finished.
    #[serde(default)]
    pub frames: Vec<FrameTiming>,
    /// The metadata the attempt stored on every frame it uploaded: the job's output version
    /// (`farm_jobs::OutputVersion::metadata`). `None` in records from before the farm recorded
    /// it (they vouch for no frame) and in the zip job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_metadata: Option<Metadata>,
}

impl TaskRecord {
    /// Seconds the attempt ran (0 if the clock went backwards).
    pub fn seconds(&self) -> f64 {
        self.ended
            .duration_since(self.started)
            .as_secs_f64()
            .max(0.0)
    }

    pub fn succeeded(&self) -> bool {
        self.exit_code == crate::exit::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_json_with_readable_times() {
        let record = TaskRecord {
            task: TaskKind::Render,
            index: 3,
            attempt: 2,
            source_etag: Some("\"abc\"".into()),
            started: "2026-11-29T10:00:00Z".parse().unwrap(),
            ended: "2026-11-29T10:01:30.5Z".parse().unwrap(),
            exit_code: 4,
            error: Some("S3 went away".into()),
            cpus: 4,
            download_seconds: Some(1.25),
            blender_startup_seconds: Some(3.0),
            frames: vec![FrameTiming {
                frame: 7,
                render_seconds: Some(12.5),
                upload_seconds: 0.25,
                object: Some(UploadedFrame {
                    key: "k.blend/frames/0007.png".into(),
                    etag: "\"d41d8cd98f00b204e9800998ecf8427e\"".into(),
                    size: 68,
                }),
            }],
            frame_metadata: Some(Metadata::from([("farm-format".into(), "scene".into())])),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["task"], "render");
        assert_eq!(json["started"], "2026-11-29T10:00:00Z");
        assert_eq!(json["frames"][0]["render_seconds"], 12.5);
        let back: TaskRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
        assert_eq!(record.seconds(), 90.5);
        assert!(!record.succeeded());
    }

    /// A record written before frames were named reads as one naming none.
    #[test]
    fn records_without_uploads_read_as_vouching_for_nothing() {
        let old = serde_json::json!({
            "task": "render", "index": 0, "attempt": 1, "source_etag": "\"e1\"",
            "started": "2026-12-06T10:00:00Z", "ended": "2026-12-06T10:01:00Z",
            "exit_code": 0, "cpus": 4,
            "frames": [{"frame": 1, "render_seconds": 2.0, "upload_seconds": 0.1}],
        });
        let record: TaskRecord = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(record.frames[0].object, None);
        assert_eq!(record.frame_metadata, None);
        assert_eq!(serde_json::to_value(&record).unwrap(), old);
    }
}
