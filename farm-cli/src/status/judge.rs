//! `farm status`'s judgement: what the job's manifest, Batch jobs, frames and logs amount to
//! (the report's types, frame counts, why a frame failed). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use farm_core::blender::{parse_log_line, LogEvent};
use farm_core::engine::Engine;
use farm_core::layout::parse_frame_file_name;
use farm_core::manifest::{ManifestStatus, SceneFacts};
use farm_core::scheduler::{ArrayProgress, JobState, JobStatus};
use farm_core::storage::ObjectMeta;
use farm_core::{FrameList, JobKeys};
use farm_jobs::FrameScan;
use serde::Serialize;

/// Everything `farm status` reports; `--json` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub bucket: String,
    pub key: String,
    /// `submitted` or `rejected`.
    pub status: ManifestStatus,
    /// Why the trigger rejected the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created: jiff::Timestamp,
    /// The Blender series the render job runs, and the one that saved the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_by: Option<String>,
    /// Why the job runs that series (`blender=auto`: the file was saved by Blender 5.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blender_reason: Option<String>,
    /// The engine the render job runs (absent in a `job.json` from before the farm chose
    /// engines, whose jobs ran Cycles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    /// What `job.json` warns of (a file saved by a newer Blender than the job's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the `.blend` reader found in the upload (`frames=scene`), from `job.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene: Option<Box<SceneFacts>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<FrameCounts>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_frames: Vec<FailedFrame>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_job: Option<JobReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_job: Option<JobReport>,
    /// `frames.zip`, once it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<Archive>,
    /// The render and zip jobs succeeded and the archive is there.
    pub complete: bool,
    /// Why a later request for the key (a re-tag) was rejected; this job stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub later_rejection: Option<String>,
    /// The project's files the job loads (or lacks), from `job.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<farm_core::deps::DependencyRecord>,
}

/// Frames of the job by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FrameCounts {
    /// The job's frame list, canonical.
    pub list: String,
    pub total: usize,
    /// Rendered for this job: a frame object of the job's source version and format exists.
    pub done: usize,
    /// Of the frames not done, those with an object of another upload or format only (counted
    /// as pending or failed too; never archived).
    pub stale: usize,
    /// A failure log exists and no frame object.
    pub failed: usize,
    /// Neither (queued, rendering, or never tried).
    pub pending: usize,
    pub chunk_size: u32,
}

/// A failed frame and where to read why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedFrame {
    pub frame: i32,
    /// Key of the frame's log.
    pub log: String,
    /// The last error-looking line of the log (read for the first frames only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One Batch job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobReport {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Batch's state: SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED, or
    /// UNKNOWN when Batch no longer knows the job.
    pub state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Children of an array job, by state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array: Option<ArrayReport>,
}

/// The children of an array job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayReport {
    pub size: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub running: usize,
    pub pending: usize,
}

/// The job's archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archive {
    pub key: String,
    pub size: u64,
}

pub(super) fn job_report(id: &str, status: Option<&JobStatus>) -> JobReport {
    match status {
        Some(status) => JobReport {
            id: id.to_owned(),
            name: Some(status.name.clone()),
            state: status.state.clone(),
            reason: status.reason.clone().filter(|r| !r.is_empty()),
            array: status.array.as_ref().map(|a: &ArrayProgress| ArrayReport {
                size: a.size,
                succeeded: a.succeeded,
                failed: a.failed,
                running: a.running,
                pending: a.pending,
            }),
        },
        None => JobReport {
            id: id.to_owned(),
            name: None,
            state: JobState::Unknown,
            reason: Some(
                "AWS Batch does not know this job (it forgets jobs some days after they end)"
                    .to_owned(),
            ),
            array: None,
        },
    }
}

/// Counts the frames of `frames` that are done (current for this job, see
/// [`farm_jobs::scan`]), failed (a log under `logs/` and not done) or pending. Objects of frames
/// outside the list do not count.
pub fn count_frames(
    keys: &JobKeys,
    frames: &FrameList,
    chunk_size: u32,
    scan: &FrameScan,
    log_objects: &[ObjectMeta],
) -> (FrameCounts, Vec<FailedFrame>) {
    let done: BTreeSet<i32> = scan.current.iter().map(|o| o.frame).collect();
    let logs_prefix = keys.logs_prefix();
    let failed: BTreeMap<i32, String> = log_objects
        .iter()
        .filter_map(|o| {
            let name = o.key.strip_prefix(&logs_prefix)?;
            match parse_frame_file_name(name)? {
                (frame, "log") => Some((frame, o.key.clone())),
                _ => None,
            }
        })
        .filter(|(frame, _)| frames.contains(*frame) && !done.contains(frame))
        .collect();
    let counts = FrameCounts {
        list: frames.canonical(),
        total: frames.len(),
        done: done.len(),
        stale: scan.stale.len(),
        failed: failed.len(),
        pending: frames.len() - done.len() - failed.len(),
        chunk_size,
    };
    let failed = failed
        .into_iter()
        .map(|(frame, log)| FailedFrame {
            frame,
            log,
            reason: None,
        })
        .collect();
    (counts, failed)
}

/// The line of a log that says best why the frame failed: the last error, else the last line.
pub fn failure_reason(log: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|line| matches!(parse_log_line(line), LogEvent::Error { .. }))
        .or(lines.last())
        .map(|line| line.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_jobs::FrameObject;

    fn object(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: 10,
            etag: None,
            metadata: Default::default(),
            version_id: None,
        }
    }

    #[test]
    fn frames_count_as_done_failed_or_pending() {
        let keys = JobKeys::new("s/a.blend");
        let frames = FrameList::parse("1-10", 100).unwrap();
        let current = |frame: i32| FrameObject {
            frame,
            key: keys.frame(frame, "png"),
            extension: "png".into(),
            size: 10,
        };
        let scan = FrameScan {
            current: vec![current(1), current(2)],
            stale: vec![3],
            missing: vec![4, 5, 6, 7, 8, 9, 10],
            stale_objects: vec![current(3)],
            ignored: 1,
        };
        let logs = [
            object("s/a.blend/logs/0002.log"), // rendered after all: done
            object("s/a.blend/logs/0005.log"),
            object("s/a.blend/logs/0012.log"), // not in the list
        ];
        let (counts, failed) = count_frames(&keys, &frames, 2, &scan, &logs);
        assert_eq!(
            (
                counts.total,
                counts.done,
                counts.stale,
                counts.failed,
                counts.pending
            ),
            (10, 2, 1, 1, 7)
        );
        assert_eq!(failed[0].frame, 5);
        assert_eq!(failed[0].log, "s/a.blend/logs/0005.log");
    }

    #[test]
    fn the_reason_is_the_last_error_line() {
        let log = "Read blend\nFra:5 Mem:1M\nError: out of memory\nBlender quit\n";
        assert_eq!(failure_reason(log).as_deref(), Some("Error: out of memory"));
        assert_eq!(
            failure_reason("a\nlast line\n\n").as_deref(),
            Some("last line")
        );
        assert_eq!(failure_reason(""), None);
    }

    #[test]
    fn unknown_jobs_say_why() {
        let report = job_report("abc", None);
        assert_eq!(report.state, JobState::Unknown);
        assert!(report.reason.unwrap().contains("does not know"));
    }
}
