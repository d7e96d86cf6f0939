//! `farm status`: the manifest, the Batch jobs and the frames of one job.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::anyhow;
use farm_core::blender::{parse_log_line, LogEvent};
use farm_core::engine::Engine;
use farm_core::frames::{compact, DEFAULT_MAX_FRAMES};
use farm_core::layout::parse_frame_file_name;
use farm_core::manifest::{JobManifest, ManifestStatus, SceneFacts};
use farm_core::scheduler::{ArrayProgress, JobState, JobStatus, Scheduler};
use farm_core::shell::printable;
use farm_core::storage::{get_json, ObjectMeta};
use farm_core::{FrameList, JobKeys, Storage};
use farm_io::S3Storage;
use farm_jobs::{scan_frames, FrameScan, OutputVersion};
use futures::StreamExt;
use serde::Serialize;

use crate::aws::Aws;
use crate::cli::StatusArgs;
use crate::jobs::{manifest_format, scan_error};
use crate::shell_quote;

/// Logs of failed frames read at once.
const LOG_READS_IN_FLIGHT: usize = 8;
/// Failed frames whose log is read for a reason; the others are counted and listed only.
const MAX_FAILED_DETAILS: usize = 50;
/// Failed frames listed in the text output.
const MAX_FAILED_SHOWN: usize = 10;
/// Width of the text progress bar.
const BAR_WIDTH: usize = 30;

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
    pub state: String,
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

/// Batch's name of a state.
pub fn state_name(state: &JobState) -> String {
    match state {
        JobState::Submitted => "SUBMITTED".into(),
        JobState::Pending => "PENDING".into(),
        JobState::Runnable => "RUNNABLE".into(),
        JobState::Starting => "STARTING".into(),
        JobState::Running => "RUNNING".into(),
        JobState::Succeeded => "SUCCEEDED".into(),
        JobState::Failed => "FAILED".into(),
        JobState::Other(other) => other.to_uppercase(),
    }
}

/// The state of a job Batch did not return.
pub const UNKNOWN_STATE: &str = "UNKNOWN";

fn job_report(id: &str, status: Option<&JobStatus>) -> JobReport {
    match status {
        Some(status) => JobReport {
            id: id.to_owned(),
            name: Some(status.name.clone()),
            state: state_name(&status.state),
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
            state: UNKNOWN_STATE.to_owned(),
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

/// Builds the report: the manifest, the jobs, the frames and the archive.
pub async fn report<B: Scheduler>(
    aws: &Aws,
    storage: &S3Storage,
    scheduler: &B,
    key: &str,
) -> anyhow::Result<StatusReport> {
    let manifest = aws.manifest(storage, key).await?;
    let mut report = StatusReport {
        bucket: storage.bucket().to_owned(),
        key: key.to_owned(),
        status: manifest.status,
        message: manifest.message.clone(),
        created: manifest.created,
        blender: manifest.blender.map(|b| b.to_string()),
        saved_by: manifest.saved_by.map(|b| b.to_string()),
        blender_reason: manifest.blender_reason.clone(),
        engine: manifest.engine,
        warnings: manifest.warnings.clone(),
        scene: manifest.scene.clone(),
        frames: None,
        failed_frames: Vec::new(),
        render_job: None,
        zip_job: None,
        archive: None,
        complete: false,
        later_rejection: None,
        dependencies: manifest.dependencies.clone(),
    };
    let keys = JobKeys::new(key);
    if manifest.status == ManifestStatus::Submitted {
        // Best effort: a missing or unreadable rejection is no reason to fail the report.
        if let Ok(rejected) = get_json::<JobManifest>(storage, &keys.rejection()).await {
            if rejected.created > manifest.created {
                report.later_rejection = rejected.message;
            }
        }
    }
    if manifest.status == ManifestStatus::Rejected {
        return Ok(report);
    }
    let (render_job, zip_job) = describe_jobs(scheduler, &manifest).await?;
    report.render_job = render_job;
    report.zip_job = zip_job;

    let frames = manifest_frames(&manifest)?;
    let version = OutputVersion::new(manifest.etag.as_deref(), manifest_format(&manifest)?)
        .with_dependencies(manifest.dependency_version())
        .with_engine(manifest.engine);
    let scan = async {
        scan_frames(storage, &keys, frames.as_slice(), &version)
            .await
            .map_err(|e| scan_error(aws, &e, &keys))
    };
    let logs = async {
        let prefix = keys.logs_prefix();
        storage
            .list(&prefix)
            .await
            .map_err(|e| aws.storage_error(&e, &format!("listing `{prefix}`")))
    };
    let (scan, log_objects) = futures::try_join!(scan, logs)?;
    let (counts, mut failed) =
        count_frames(&keys, &frames, manifest.chunk_size, &scan, &log_objects);
    let reasons: Vec<Option<String>> =
        futures::stream::iter(failed.iter().take(MAX_FAILED_DETAILS))
            .map(|f| async move {
                let log = storage.get(&f.log).await.ok()?;
                failure_reason(&String::from_utf8_lossy(&log))
            })
            .buffered(LOG_READS_IN_FLIGHT)
            .collect()
            .await;
    for (frame, reason) in failed.iter_mut().zip(reasons) {
        frame.reason = reason;
    }
    report.frames = Some(counts);
    report.failed_frames = failed;
    report.archive = storage
        .head(&keys.zip())
        .await
        .map_err(|e| aws.storage_error(&e, &format!("reading `{}`", keys.zip())))?
        .map(|meta| Archive {
            key: meta.key,
            size: meta.size,
        });
    let succeeded = |job: &Option<JobReport>| job.as_ref().is_some_and(|j| j.state == "SUCCEEDED");
    report.complete =
        succeeded(&report.render_job) && succeeded(&report.zip_job) && report.archive.is_some();
    Ok(report)
}

/// The manifest's frame list.
pub fn manifest_frames(manifest: &JobManifest) -> anyhow::Result<FrameList> {
    let list = manifest.frames.as_deref().unwrap_or_default();
    FrameList::parse(list, DEFAULT_MAX_FRAMES.max(manifest.frame_count)).map_err(|e| {
        anyhow!(
            "`{}/job.json` holds an unreadable frame list `{list}`: {e}",
            manifest.key
        )
    })
}

/// Describes the manifest's render and zip jobs.
pub async fn describe_jobs<B: Scheduler>(
    scheduler: &B,
    manifest: &JobManifest,
) -> anyhow::Result<(Option<JobReport>, Option<JobReport>)> {
    let ids: Vec<String> = [&manifest.render_job_id, &manifest.zip_job_id]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if ids.is_empty() {
        return Ok((None, None));
    }
    let statuses = scheduler.describe(&ids).await.map_err(|e| {
        let hint = if e.is_transient() {
            "; check the network and your AWS configuration, then retry"
        } else {
            ""
        };
        anyhow!("asking AWS Batch about the jobs: {e}{hint}")
    })?;
    let find = |id: &Option<String>| {
        id.as_deref()
            .map(|id| job_report(id, statuses.iter().find(|s| s.id == id)))
    };
    Ok((find(&manifest.render_job_id), find(&manifest.zip_job_id)))
}

/// Runs `farm status`.
pub async fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let aws = Aws::load().await;
    let storage = aws.storage(&args.bucket);
    let scheduler = aws.scheduler(None);
    let report = report(&aws, &storage, &scheduler, &args.key).await?;
    let spend = job_spend(&aws, &storage, &report).await;
    if args.json {
        let mut value = serde_json::to_value(&report)
            .map_err(|e| anyhow!("cannot write the report as JSON: {e}"))?;
        if let (Some(spend), Some(object)) = (&spend, value.as_object_mut()) {
            object.insert("spend".to_owned(), serde_json::json!(spend));
        }
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| anyhow!("cannot write the report as JSON: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", render_text(&report));
        if let Some(spend) = &spend {
            print!("{}", crate::spend::spend_text(spend));
        }
    }
    Ok(())
}

/// The dependency summary (`depends   3 files, 1.2 MiB; 1 warning`) and each warning.
fn write_dependencies(out: &mut String, report: &StatusReport) {
    use std::fmt::Write as _;
    let Some(deps) = &report.dependencies else {
        return;
    };
    let _ = writeln!(out, "depends   {}", deps.summary());
    for warning in &deps.warnings {
        let _ = writeln!(out, "warning   {}", printable(warning));
    }
}

/// The cost so far and the ETA of a submitted job (best effort: `None` if unreadable).
async fn job_spend(
    aws: &Aws,
    storage: &S3Storage,
    report: &StatusReport,
) -> Option<crate::spend::Spend> {
    if report.status != ManifestStatus::Submitted {
        return None;
    }
    let etag = aws.manifest(storage, &report.key).await.ok()?.etag;
    crate::spend::load(aws, storage, report, etag.as_deref())
        .await
        .inspect_err(|e| tracing::warn!("no cost so far: {e:#}"))
        .ok()
}

/// The text form of a report.
pub fn render_text(report: &StatusReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let (k, b) = (shell_quote(&report.key), shell_quote(&report.bucket));
    let _ = writeln!(
        out,
        "job       s3://{}/{} (submitted {})",
        printable(&report.bucket),
        printable(&report.key),
        report.created.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    if report.status == ManifestStatus::Rejected {
        let _ = writeln!(
            out,
            "rejected  {}",
            printable(report.message.as_deref().unwrap_or("no reason given"))
        );
        let _ = writeln!(
            out,
            "          fix the tags and upload again: farm submit <scene.blend> --bucket {b} --key {k} --frames LIST"
        );
        return out;
    }
    if let Some(frames) = &report.frames {
        let chunks = frames.total.div_ceil(frames.chunk_size.max(1) as usize);
        let _ = writeln!(
            out,
            "frames    {} ({} frames, {} per task, {} tasks)",
            frames.list, frames.total, frames.chunk_size, chunks
        );
    }
    if let Some(blender) = &report.blender {
        let saved = match (&report.blender_reason, report.saved_by.as_deref()) {
            (Some(why), _) => format!(": {}", printable(why)),
            (None, Some(s)) => format!(" (the file was saved by Blender {})", printable(s)),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "blender   {}{saved}", printable(blender));
    }
    if let Some(engine) = report.engine {
        let _ = writeln!(out, "engine    {}", engine.label());
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning   {}", printable(warning));
    }
    if let Some(scene) = &report.scene {
        write_scene(&mut out, scene);
    }
    for (label, job) in [("render", &report.render_job), ("zip", &report.zip_job)] {
        let Some(job) = job else { continue };
        let mut line = format!("{label:<9} {:<10} job {}", job.state, job.id);
        if let Some(array) = &job.array {
            let _ = write!(
                line,
                ", {} tasks: {} succeeded, {} failed, {} running, {} waiting",
                array.size, array.succeeded, array.failed, array.running, array.pending
            );
        }
        let waiting = !matches!(job.state.as_str(), "SUCCEEDED" | "FAILED" | "RUNNING");
        if label == "zip" && waiting {
            let render_failed = report
                .render_job
                .as_ref()
                .is_some_and(|r| r.state == "FAILED");
            line.push_str(if render_failed {
                " (will not run: the render job failed)"
            } else {
                " (starts when the render job has succeeded)"
            });
        }
        if let Some(reason) = &job.reason {
            let _ = write!(line, " ({})", printable(reason));
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(frames) = &report.frames {
        let _ = writeln!(
            out,
            "progress  {} {}/{} done, {} failed, {} pending",
            text_bar(frames.done, frames.failed, frames.total),
            frames.done,
            frames.total,
            frames.failed,
            frames.pending
        );
    }
    if let Some(frames) = report.frames.as_ref().filter(|f| f.stale > 0) {
        let _ = writeln!(
            out,
            "stale     {} frame(s) hold only output of another upload or format: not counted, never archived; farm retry {k} --bucket {b} renders them",
            frames.stale
        );
    }
    if let Some(message) = &report.later_rejection {
        let _ = writeln!(
            out,
            "rejected  a later request for this key: {}; this job was left as it was",
            printable(message)
        );
    }
    write_dependencies(&mut out, report);
    for failed in report.failed_frames.iter().take(MAX_FAILED_SHOWN) {
        let _ = writeln!(
            out,
            "failed    frame {}: {} (log s3://{}/{})",
            failed.frame,
            printable(failed.reason.as_deref().unwrap_or("no reason recorded")),
            report.bucket,
            printable(&failed.log)
        );
    }
    if report.failed_frames.len() > MAX_FAILED_SHOWN {
        let rest: Vec<i32> = report.failed_frames[MAX_FAILED_SHOWN..]
            .iter()
            .map(|f| f.frame)
            .collect();
        let _ = writeln!(
            out,
            "failed    and frames {} (logs under s3://{}/{}/logs/)",
            compact(&rest, ", "),
            report.bucket,
            report.key
        );
    }
    match &report.archive {
        Some(archive) => {
            let _ = writeln!(
                out,
                "archive   s3://{}/{} ({}): farm download {k} --bucket {b} --unpack",
                report.bucket,
                archive.key,
                crate::progress::human_bytes(archive.size)
            );
        }
        None => {
            let _ = writeln!(out, "archive   not yet");
        }
    }
    let failed_job = [&report.render_job, &report.zip_job]
        .into_iter()
        .flatten()
        .any(|j| j.state == "FAILED");
    if failed_job && report.frames.as_ref().is_some_and(|f| f.done < f.total) {
        let _ = writeln!(
            out,
            "next      render the missing frames again: farm retry {k} --bucket {b}"
        );
    }
    out
}

/// `[=====xx        ]`: done frames as `=`, failed as `x`.
pub fn text_bar(done: usize, failed: usize, total: usize) -> String {
    let total = total.max(1);
    let done_cells = done * BAR_WIDTH / total;
    let failed_cells = (failed * BAR_WIDTH)
        .div_ceil(total)
        .min(BAR_WIDTH - done_cells);
    let failed_cells = if failed > 0 { failed_cells.max(1) } else { 0 };
    let failed_cells = failed_cells.min(BAR_WIDTH - done_cells);
    format!(
        "[{}{}{}]",
        "=".repeat(done_cells),
        "x".repeat(failed_cells),
        " ".repeat(BAR_WIDTH - done_cells - failed_cells)
    )
}

/// The reader's facts: which scene is rendered and how, and the files it loads.
fn write_scene(out: &mut String, scene: &SceneFacts) {
    use std::fmt::Write as _;
    let own = Engine::from_blender_id(&scene.engine).map(Engine::name);
    let engine = if own == Some(scene.rendered_with.as_str()) || scene.engine == scene.rendered_with
    {
        printable(&scene.engine)
    } else {
        format!(
            "{} (rendered with {})",
            printable(&scene.engine),
            printable(&scene.rendered_with)
        )
    };
    let _ = writeln!(
        out,
        "scene     {} (Blender {}, {}): frames {}-{} step {}, {}x{} at {}%, {}, output {}",
        printable(&scene.scene),
        printable(&scene.version),
        printable(&scene.compression),
        scene.frame_start,
        scene.frame_end,
        scene.frame_step,
        scene.resolution[0],
        scene.resolution[1],
        scene.resolution_percentage,
        engine,
        printable(&scene.output_format)
    );
    for note in &scene.notes {
        let _ = writeln!(out, "note      {}", printable(note));
    }
    if !scene.files.is_empty() {
        let packed = scene.files.iter().filter(|f| f.packed).count();
        let _ = writeln!(
            out,
            "files     {} external ({packed} packed): {}",
            scene.files.len(),
            scene
                .files
                .iter()
                .take(5)
                .map(|f| format!("{} {}", f.kind, printable(&f.path)))
                .collect::<Vec<_>>()
                .join(", ")
                + if scene.files.len() > 5 { ", ..." } else { "" }
        );
    }
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
    fn bars_fill_with_done_and_failed_frames() {
        assert_eq!(text_bar(0, 0, 10), format!("[{}]", " ".repeat(30)));
        assert_eq!(text_bar(10, 0, 10), format!("[{}]", "=".repeat(30)));
        let bar = text_bar(5, 1, 10);
        assert!(bar.starts_with("[===============xxx"), "{bar}");
        assert_eq!(text_bar(0, 1, 1000).matches('x').count(), 1);
    }

    #[test]
    fn blender_log_lines_and_keys_reach_the_terminal_escaped() {
        let log = "Fra:1\nError: \x1b]0;owned\x07\x1b[2J\rfine\n";
        let report = StatusReport {
            bucket: "b".into(),
            key: "a\x1b[31m.blend".into(),
            status: ManifestStatus::Submitted,
            message: None,
            created: jiff::Timestamp::UNIX_EPOCH,
            blender: Some("4.2".into()),
            saved_by: Some("4.5".into()),
            blender_reason: None,
            engine: Some(Engine::Eevee),
            warnings: vec!["saved by a newer Blender \x1b[2J".into()],
            scene: None,
            frames: None,
            failed_frames: vec![FailedFrame {
                frame: 1,
                log: "a\x1b[31m.blend/logs/0001.log".into(),
                reason: failure_reason(log),
            }],
            render_job: None,
            zip_job: None,
            archive: None,
            complete: false,
            later_rejection: Some("tag `frames=\x1b[2J` is invalid".into()),
            dependencies: Some(farm_core::deps::DependencyRecord {
                bytes: 3 << 20,
                warnings: vec!["image `//tex/\x1b[2Jx.png`: not found (missing=ok)".into()],
                ..Default::default()
            }),
        };
        let text = render_text(&report);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(
            text.contains("Error: \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\rfine"),
            "{text}"
        );
        assert!(text.contains("s3://b/a\\u{1b}[31m.blend "), "{text}");
        assert!(
            text.contains("blender   4.2 (the file was saved by Blender 4.5)\nengine    EEVEE\n"),
            "{text}"
        );
        let chosen = StatusReport {
            blender: Some("5.0".into()),
            saved_by: Some("5.0".into()),
            blender_reason: Some("`blender=auto`: the file was saved by Blender 5.0".into()),
            ..report
        };
        assert!(
            render_text(&chosen)
                .contains("blender   5.0: `blender=auto`: the file was saved by Blender 5.0\n"),
            "{}",
            render_text(&chosen)
        );
        assert!(
            text.contains("warning   saved by a newer Blender \\u{1b}[2J\n"),
            "{text}"
        );
        assert!(
            text.contains("depends   0 files, 3.0 MiB; 1 warning\n"),
            "{text}"
        );
        assert!(
            text.contains("warning   image `//tex/\\u{1b}[2Jx.png`: not found (missing=ok)"),
            "{text}"
        );
    }

    /// What the reader found in the upload (`frames=scene`) is shown, escaped like the rest.
    #[test]
    fn the_scene_the_reader_found_is_shown() {
        use farm_core::manifest::SceneFile;
        let scene = SceneFacts {
            version: "4.2".into(),
            compression: "zstd".into(),
            scene: "Shot\x1b[2J".into(),
            frame_start: 5,
            frame_end: 29,
            frame_step: 6,
            frames: "5-29:6".into(),
            engine: "BLENDER_EEVEE_NEXT".into(),
            rendered_with: "cycles".into(),
            resolution: [1920, 1080],
            resolution_percentage: 50,
            output_format: "PNG".into(),
            notes: vec![
                "scene `Shot` is set to EEVEE; rendered with Cycles as asked (`engine=cycles`)"
                    .into(),
            ],
            files: vec![SceneFile {
                kind: "image".into(),
                path: "//tex/wood.png".into(),
                packed: false,
                source: Some("FILE".into()),
            }],
        };
        let mut text = String::new();
        write_scene(&mut text, &scene);
        assert_eq!(
            text,
            "scene     Shot\\u{1b}[2J (Blender 4.2, zstd): frames 5-29 step 6, 1920x1080 at 50%, BLENDER_EEVEE_NEXT (rendered with cycles), output PNG\n\
             note      scene `Shot` is set to EEVEE; rendered with Cycles as asked (`engine=cycles`)\n\
             files     1 external (0 packed): image //tex/wood.png\n"
        );
    }

    #[test]
    fn unknown_jobs_say_why() {
        let report = job_report("abc", None);
        assert_eq!(report.state, UNKNOWN_STATE);
        assert!(report.reason.unwrap().contains("does not know"));
    }
}
