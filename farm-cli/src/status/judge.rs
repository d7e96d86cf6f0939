//! `farm status`'s judgement: what the job's manifest, Batch jobs, frames and logs amount to
//! (the report's types, frame counts, why a frame failed). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use farm_core::blender::{parse_log_line, LogEvent};
use farm_core::engine::Engine;
use farm_core::layout::parse_frame_file_name;
use farm_core::manifest::{ManifestStatus, SceneFacts};
use farm_core::scheduler::{ArrayProgress, JobState, JobStatus};
use farm_core::storage::ObjectMeta;
use farm_core::tasks::{TaskKind, TaskRecord};
use farm_core::{JobKeys, Plan};
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
    /// The movie job of a movie scene (ADR 0012), which runs after the zip job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movie_job: Option<JobReport>,
    /// The movie a movie scene's job makes, beside `frames.zip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movie: Option<MovieReport>,
    /// The render and zip jobs succeeded, every frame and the archive are there.
    pub complete: bool,
    /// What contradicts itself in the job (a render job that succeeded with frames missing),
    /// each with what to do.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Why a later request for the key (a re-tag) was rejected; this job stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub later_rejection: Option<String>,
    /// The project's files the job loads (or lacks), from `job.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<farm_core::deps::DependencyRecord>,
}

/// A movie scene's movie: where it lands, and its size once the movie job wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovieReport {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
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
    /// Key of what says why: the frame's log, or the task record of an attempt that failed
    /// before it rendered the frame.
    pub log: String,
    /// The last error-looking line of the log (read for the first frames only), or the failed
    /// attempt's own reason.
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

#[cfg(test)]
impl StatusReport {
    /// A submitted job of `k.blend` in bucket `b` with nothing known yet, for tests to fill.
    pub(crate) fn blank() -> Self {
        let mut manifest = farm_core::manifest::JobManifest::rejected(
            "b",
            "k.blend",
            None,
            String::new(),
            jiff::Timestamp::UNIX_EPOCH,
        );
        (manifest.status, manifest.message) = (ManifestStatus::Submitted, None);
        super::fetch::manifest_report(&manifest, "b", "k.blend")
    }
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
    plan: &Plan,
    scan: &FrameScan,
    log_objects: &[ObjectMeta],
    records: &[TaskRecord],
) -> (FrameCounts, Vec<FailedFrame>) {
    let frames = plan.frames();
    let done: BTreeSet<i32> = scan.current.iter().map(|o| o.frame).collect();
    let logs_prefix = keys.logs_prefix();
    let mut failed: BTreeMap<i32, FailedFrame> = log_objects
        .iter()
        .filter_map(|o| {
            let name = o.key.strip_prefix(&logs_prefix)?;
            match parse_frame_file_name(name)? {
                (frame, "log") => Some((
                    frame,
                    FailedFrame {
                        frame,
                        log: o.key.clone(),
                        reason: None,
                    },
                )),
                _ => None,
            }
        })
        .filter(|(frame, _)| frames.contains(*frame) && !done.contains(frame))
        .collect();
    for (frame, failure) in chunk_failures(keys, plan, records) {
        if !done.contains(&frame) {
            failed.entry(frame).or_insert(failure);
        }
    }
    let counts = FrameCounts {
        list: frames.canonical(),
        total: frames.len(),
        done: done.len(),
        stale: scan.stale.len(),
        failed: failed.len(),
        pending: frames.len() - done.len() - failed.len(),
        chunk_size: plan.chunk_size(),
    };
    (counts, failed.into_values().collect())
}

/// The frames of each render task whose last ended attempt failed, with the attempt's own
/// reason: a task that fails before its first frame (Blender could not open the file, the
/// download failed) leaves no frame log, only its task record.
fn chunk_failures(keys: &JobKeys, plan: &Plan, records: &[TaskRecord]) -> Vec<(i32, FailedFrame)> {
    let mut last: BTreeMap<usize, &TaskRecord> = BTreeMap::new();
    for record in records.iter().filter(|r| r.task == TaskKind::Render) {
        let newer = last
            .get(&record.index)
            .is_none_or(|seen| record.attempt > seen.attempt);
        if newer {
            last.insert(record.index, record);
        }
    }
    let mut failures = Vec::new();
    for (index, record) in last.into_iter().filter(|(_, r)| !r.succeeded()) {
        let Ok(chunk) = plan.chunk(index) else {
            continue;
        };
        let reason = record.error.clone().unwrap_or_else(|| {
            format!(
                "attempt {} of task {index} ended with exit code {}",
                record.attempt, record.exit_code
            )
        });
        for &frame in chunk {
            failures.push((
                frame,
                FailedFrame {
                    frame,
                    log: keys.task_record(index, record.attempt),
                    reason: Some(reason.clone()),
                },
            ));
        }
    }
    failures
}

/// Whether the job is there and succeeded.
fn succeeded(job: &Option<JobReport>) -> bool {
    job.as_ref().is_some_and(|j| j.state == JobState::Succeeded)
}

/// The first of a key's render and zip jobs that has not ended, with its label (`render`,
/// `zip`): a new request for the key would stop it, and a retry waits for it.
pub fn unfinished<'a>(
    render: &'a Option<JobReport>,
    zip: &'a Option<JobReport>,
) -> Option<(&'static str, &'a JobReport)> {
    [("render", render), ("zip", zip)]
        .into_iter()
        .find_map(|(label, job)| Some((label, job.as_ref().filter(|j| !j.state.is_done())?)))
}

/// Sets the report's problems and whether it is complete: the render and zip jobs succeeded,
/// the archive is there, and nothing contradicts itself.
pub(super) fn judge_outcome(report: &mut StatusReport) {
    report.problems = problems(report);
    let movie_done = report.movie.as_ref().is_none_or(|movie| {
        movie.size.is_some() && (report.movie_job.is_none() || succeeded(&report.movie_job))
    });
    report.complete = succeeded(&report.render_job)
        && succeeded(&report.zip_job)
        && report.archive.is_some()
        && movie_done
        && report.problems.is_empty();
}

/// What contradicts itself in a job that ended: a render job that succeeded with frames
/// missing, a zip job that succeeded with no archive. Each says what to do.
fn problems(report: &StatusReport) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(frames) = report.frames.as_ref().filter(|f| f.done < f.total) {
        if succeeded(&report.render_job) {
            problems.push(format!(
                "the render job succeeded, yet only {} of {} frames are there: the missing ones were never uploaded (farm retry renders them)",
                frames.done, frames.total
            ));
        }
    }
    if succeeded(&report.zip_job) && report.archive.is_none() {
        problems.push(
            "the zip job succeeded, yet there is no frames.zip (deleted since?): farm retry makes it again"
                .to_owned(),
        );
    }
    problems.extend(movie_problem(report));
    problems
}

/// A movie scene's movie job that failed, or succeeded with no movie there.
fn movie_problem(report: &StatusReport) -> Option<String> {
    let movie = report.movie.as_ref()?;
    let job = report.movie_job.as_ref()?;
    match job.state {
        JobState::Failed => Some(format!(
            "the movie job failed{}: no {} was made (the frames and frames.zip are not affected); its log says why, and running it again from the AWS Batch console makes the movie",
            job.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            movie.key
        )),
        JobState::Succeeded if movie.size.is_none() => Some(format!(
            "the movie job succeeded, yet there is no {} (deleted since?): run the movie job again from the AWS Batch console",
            movie.key
        )),
        _ => None,
    }
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
    use farm_core::FrameList;
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
            suffix: String::new(),
            extension: "png".into(),
            size: 10,
        };
        let scan = FrameScan {
            current: vec![current(1), current(2)],
            stale: vec![3],
            missing: vec![4, 5, 6, 7, 8, 9, 10],
            stale_objects: vec![current(3)],
            ignored: 1,
            ..FrameScan::default()
        };
        let logs = [
            object("s/a.blend/logs/0002.log"), // rendered after all: done
            object("s/a.blend/logs/0005.log"),
            object("s/a.blend/logs/0012.log"), // not in the list
        ];
        let plan = Plan::new(frames, 2).unwrap();
        let (counts, failed) = count_frames(&keys, &plan, &scan, &logs, &[]);
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

    fn record(index: usize, attempt: u32, exit_code: i32, error: Option<&str>) -> TaskRecord {
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        TaskRecord {
            task: TaskKind::Render,
            index,
            attempt,
            source_etag: None,
            started: at,
            ended: at,
            exit_code,
            error: error.map(str::to_owned),
            cpus: 4,
            download_seconds: None,
            blender_startup_seconds: None,
            frames: Vec::new(),
            frame_metadata: None,
        }
    }

    #[test]
    fn a_task_that_failed_before_its_first_frame_fails_its_chunk_with_its_reason() {
        let keys = JobKeys::new("s/a.blend");
        let plan = Plan::new(FrameList::parse("1-6", 100).unwrap(), 2).unwrap();
        let scan = FrameScan {
            current: Vec::new(),
            stale: Vec::new(),
            missing: (1..=6).collect(),
            stale_objects: Vec::new(),
            ignored: 0,
            ..FrameScan::default()
        };
        let records = [
            // Chunk 0 (1-2): failed, then its retry succeeded: not failed.
            record(0, 1, 3, Some("download failed")),
            record(0, 2, 0, None),
            // Chunk 1 (3-4): its only attempt failed before any frame.
            record(1, 1, 4, Some("blender could not open /work/a.blend")),
            // Chunk 2 (5-6): failed without a message.
            record(2, 1, 3, None),
        ];
        let (counts, failed) = count_frames(&keys, &plan, &scan, &[], &records);
        assert_eq!((counts.failed, counts.pending), (4, 2));
        let frames: Vec<i32> = failed.iter().map(|f| f.frame).collect();
        assert_eq!(frames, [3, 4, 5, 6]);
        assert_eq!(
            failed[0].reason.as_deref(),
            Some("blender could not open /work/a.blend")
        );
        assert_eq!(failed[0].log, keys.task_record(1, 1));
        assert_eq!(
            failed[3].reason.as_deref(),
            Some("attempt 1 of task 2 ended with exit code 3")
        );
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

    /// A job whose render and zip jobs succeeded with every frame and the archive there, and
    /// whose movie job is in `state` with the movie (`size`) there or not.
    fn movie_job_ended(state: JobState, size: Option<u64>) -> StatusReport {
        let job = |id: &str, state: JobState| {
            Some(JobReport {
                id: id.into(),
                name: None,
                reason: (state == JobState::Failed)
                    .then(|| "Essential container in task exited".into()),
                state,
                array: None,
            })
        };
        let mut report = StatusReport {
            key: "s/a.blend".into(),
            render_job: job("r", JobState::Succeeded),
            zip_job: job("z", JobState::Succeeded),
            archive: Some(Archive {
                key: "s/a.blend/frames.zip".into(),
                size: 10,
            }),
            movie_job: job("m", state),
            movie: Some(MovieReport {
                key: "s/a.blend/a.mkv".into(),
                size,
            }),
            ..StatusReport::blank()
        };
        judge_outcome(&mut report);
        report
    }

    #[test]
    fn a_movie_scenes_job_is_complete_only_with_its_movie() {
        let done = movie_job_ended(JobState::Succeeded, Some(1234));
        assert!(done.complete && done.problems.is_empty(), "{done:?}");
        let running = movie_job_ended(JobState::Running, None);
        assert!(
            !running.complete && running.problems.is_empty(),
            "{running:?}"
        );
        let failed = movie_job_ended(JobState::Failed, None);
        assert!(!failed.complete, "{failed:?}");
        assert_eq!(failed.problems.len(), 1, "{failed:?}");
        assert!(
            failed.problems[0].starts_with("the movie job failed (Essential container")
                && failed.problems[0].contains("no s/a.blend/a.mkv was made"),
            "{failed:?}"
        );
        let gone = movie_job_ended(JobState::Succeeded, None);
        assert!(!gone.complete, "{gone:?}");
        assert!(gone.problems[0].contains("yet there is no s/a.blend/a.mkv"));
    }

    #[test]
    fn unknown_jobs_say_why() {
        let report = job_report("abc", None);
        assert_eq!(report.state, JobState::Unknown);
        assert!(report.reason.unwrap().contains("does not know"));
    }
}
