//! `farm status --watch`: the status again every `--interval` seconds until the job ends (or
//! Ctrl-C). On a terminal a bar of the frames done, with the jobs' states, the failed frames,
//! the cost so far and the ETA beside it, then the whole status; piped, one plain line per
//! change (`farm-status: ...`), or with `--json` one JSON object per change, the last with
//! `"ended": true`. The exit code is the job's: 0 when it ended complete, 1 otherwise, 130 on
//! Ctrl-C (the job goes on).

use std::time::Duration;

use anyhow::anyhow;
use farm_core::frames::compact;
use farm_core::manifest::ManifestStatus;
use farm_core::scheduler::{JobState, Scheduler};
use farm_io::S3Storage;
use serde::Serialize;

use super::fetch::{job_spend, report_cached};
use super::judge::{unfinished, JobReport, StatusReport};
use super::print::render_text;
use super::spend::Spend;
use crate::aws::Site;
use crate::cli::StatusArgs;
use crate::shutdown::Shutdown;
use crate::{progress, shell_quote, Interrupted};

/// Polls in a row that may fail (the network, a throttled call) before the watch gives up.
const MAX_FAILED_POLLS: u32 = 5;
/// Failed frames named in one event; the rest are counted.
const MAX_FAILED_NAMED: usize = 20;

/// One state of the job, as the watch reports it; a new one is printed when it differs from the
/// last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchEvent {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render: Option<JobState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<JobState>,
    /// Render tasks running now (array children, or the one task of a plain job).
    pub running_tasks: usize,
    pub frames_total: usize,
    pub frames_done: usize,
    pub frames_failed: usize,
    pub frames_pending: usize,
    /// The failed frames (the first [`MAX_FAILED_NAMED`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_frames: Vec<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
    pub archive: bool,
    /// The job will change no more: both jobs ended, the render job failed, or the request was
    /// rejected.
    pub ended: bool,
    pub complete: bool,
}

impl WatchEvent {
    /// What a report (and its spend) amounts to.
    pub fn of(report: &StatusReport, spend: Option<&Spend>) -> Self {
        let frames = report.frames.clone().unwrap_or_default();
        Self {
            key: report.key.clone(),
            render: report.render_job.as_ref().map(|j| j.state.clone()),
            zip: report.zip_job.as_ref().map(|j| j.state.clone()),
            running_tasks: running_tasks(report.render_job.as_ref()),
            frames_total: frames.total,
            frames_done: frames.done,
            frames_failed: frames.failed,
            frames_pending: frames.pending,
            failed_frames: report
                .failed_frames
                .iter()
                .take(MAX_FAILED_NAMED)
                .map(|f| f.frame)
                .collect(),
            // Nothing ended yet costs nothing known yet.
            cost_usd: spend
                .filter(|s| s.attempts_ended > 0)
                .and_then(|s| s.cost_usd),
            eta_seconds: spend.and_then(|s| s.eta_seconds),
            archive: report.archive.is_some(),
            ended: ended(report),
            complete: report.complete,
        }
    }

    /// The event as one plain line: `farm-status: render RUNNING (1 task running), zip PENDING;
    /// frames 2/4 done, 0 failed; ...`.
    pub fn line(&self) -> String {
        let state = |s: &Option<JobState>| s.as_ref().map_or_else(|| "-".to_owned(), |s| s.name());
        let mut line = format!(
            "farm-status: render {} ({} task(s) running), zip {}; frames {}/{} done, {} failed",
            state(&self.render),
            self.running_tasks,
            state(&self.zip),
            self.frames_done,
            self.frames_total,
            self.frames_failed
        );
        line.push_str(&self.details());
        if self.ended {
            line.push_str(if self.complete {
                "; ended, complete"
            } else {
                "; ended, not complete"
            });
        }
        line
    }

    /// The failed frames, the cost so far and the ETA, each as `; ...` when known.
    fn details(&self) -> String {
        let mut out = String::new();
        if !self.failed_frames.is_empty() {
            let more = self.frames_failed.saturating_sub(self.failed_frames.len());
            out.push_str(&format!(
                " ({}{})",
                compact(&self.failed_frames, ", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        if let Some(cost) = self.cost_usd {
            out.push_str(&format!("; spent about ${cost:.4}"));
        }
        if let Some(eta) = self.eta_seconds.filter(|e| *e > 0.0) {
            out.push_str(&format!(
                "; eta about {}",
                progress::seconds(Duration::from_secs_f64(eta))
            ));
        }
        out
    }

    /// The bar's message on a terminal: the jobs' states and the details.
    fn bar_message(&self) -> String {
        let state = |s: &Option<JobState>| s.as_ref().map_or_else(|| "-".to_owned(), |s| s.name());
        format!(
            "render {}, zip {}, {} running{}",
            state(&self.render),
            state(&self.zip),
            self.running_tasks,
            self.details()
        )
    }
}

/// Render tasks running: the array's running children, or 1 for a running plain job.
fn running_tasks(job: Option<&JobReport>) -> usize {
    job.map_or(0, |job| match &job.array {
        Some(array) => array.running,
        None => usize::from(job.state == JobState::Running),
    })
}

/// Whether the job will change no more: the request was rejected, no job was submitted, both
/// jobs ended, or the render job failed (its zip job then never runs).
pub fn ended(report: &StatusReport) -> bool {
    report.status == ManifestStatus::Rejected
        || report.render_job.is_none()
        || unfinished(&report.render_job, &report.zip_job).is_none()
        || report
            .render_job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Failed)
}

/// How the watch shows what it sees.
enum Show {
    Bar(indicatif::ProgressBar),
    Lines,
    Json,
}

impl Show {
    fn new(json: bool) -> Self {
        if json {
            Self::Json
        } else if progress::bars_shown() {
            Self::Bar(progress::watch_bar())
        } else {
            Self::Lines
        }
    }

    fn event(&self, event: &WatchEvent) -> anyhow::Result<()> {
        match self {
            Self::Bar(bar) => {
                bar.set_length(event.frames_total as u64);
                bar.set_position(event.frames_done as u64);
                bar.set_message(event.bar_message());
            }
            Self::Lines => println!("{}", event.line()),
            Self::Json => println!(
                "{}",
                serde_json::to_string(event)
                    .map_err(|e| anyhow!("cannot write the event as JSON: {e}"))?
            ),
        }
        Ok(())
    }

    /// A poll that failed, before the next try.
    fn warn(&self, err: &anyhow::Error) {
        let text = format!("farm: could not read the job's status ({err:#}); trying again");
        match self {
            Self::Bar(bar) => bar.println(text),
            Self::Lines | Self::Json => eprintln!("{text}"),
        }
    }

    fn finish(&self, report: &StatusReport, spend: Option<&Spend>) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
            print!("{}", render_text(report));
            if let Some(spend) = spend {
                print!("{}", super::spend::spend_text(spend));
            }
        }
    }
}

/// Watches the job of `args.key` until it ends; the error says how it ended when it is not
/// complete.
pub async fn run<B: Scheduler>(
    args: &StatusArgs,
    site: &Site,
    storage: &S3Storage,
    scheduler: &B,
) -> anyhow::Result<()> {
    let shutdown = Shutdown::listen();
    let show = Show::new(args.json);
    let interval = Duration::from_secs(args.interval.into());
    let mut last: Option<WatchEvent> = None;
    let mut failures = 0;
    // Each task record is read once, whatever the number of readings.
    let mut records = farm_jobs::tasks::RecordCache::default();
    loop {
        match report_cached(
            site,
            storage,
            &args.bucket,
            scheduler,
            &args.key,
            &mut records,
        )
        .await
        {
            Ok(fetched) => {
                failures = 0;
                let spend = job_spend(site, &fetched);
                let event = WatchEvent::of(&fetched.report, spend.as_ref());
                if last.as_ref() != Some(&event) {
                    show.event(&event)?;
                }
                if event.ended {
                    show.finish(&fetched.report, spend.as_ref());
                    return outcome(&fetched.report, args);
                }
                last = Some(event);
            }
            // The first reading's error is the answer (a wrong bucket or key); later ones may
            // pass.
            Err(err) if last.is_none() => return Err(err),
            Err(err) => {
                failures += 1;
                if failures >= MAX_FAILED_POLLS {
                    return Err(err.context(format!("{failures} readings in a row failed")));
                }
                show.warn(&err);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.signal() => {
                return Err(Interrupted(format!(
                    "stopped watching; the job goes on: farm status {} --bucket {} --watch",
                    shell_quote(&args.key),
                    shell_quote(&args.bucket)
                ))
                .into());
            }
        }
    }
}

/// `Ok` for a job that ended complete; otherwise what happened and what to do.
fn outcome(report: &StatusReport, args: &StatusArgs) -> anyhow::Result<()> {
    if report.complete {
        return Ok(());
    }
    let (k, b) = (shell_quote(&args.key), shell_quote(&args.bucket));
    if report.status == ManifestStatus::Rejected {
        return Err(anyhow!(
            "the trigger rejected the request: {}",
            report.message.as_deref().unwrap_or("no reason given")
        ));
    }
    let state = |job: &Option<JobReport>| {
        job.as_ref()
            .map_or_else(|| "-".to_owned(), |j| j.state.name())
    };
    Err(anyhow!(
        "the job ended without all its frames and archive (render {}, zip {}): farm status {k} --bucket {b} says why, farm retry {k} --bucket {b} renders what is missing",
        state(&report.render_job),
        state(&report.zip_job)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{ArrayReport, FrameCounts};

    fn job(state: JobState) -> Option<JobReport> {
        Some(JobReport {
            id: "j".into(),
            name: None,
            state,
            reason: None,
            array: None,
        })
    }

    fn report(render: JobState, zip: JobState) -> StatusReport {
        StatusReport {
            render_job: job(render),
            zip_job: job(zip),
            ..StatusReport::blank()
        }
    }

    #[test]
    fn a_job_ends_when_both_jobs_end_or_the_render_job_fails() {
        use JobState::*;
        assert!(!ended(&report(Running, Pending)));
        assert!(!ended(&report(Succeeded, Running)));
        assert!(ended(&report(Succeeded, Succeeded)));
        assert!(ended(&report(Failed, Pending)));
        assert!(ended(&report(Unknown, Unknown)));
        let rejected = StatusReport {
            status: ManifestStatus::Rejected,
            render_job: None,
            zip_job: None,
            ..report(Pending, Pending)
        };
        assert!(ended(&rejected));
    }

    #[test]
    fn an_event_reads_as_one_line() {
        let mut running = report(JobState::Running, JobState::Pending);
        running.render_job.as_mut().unwrap().array = Some(ArrayReport {
            size: 4,
            succeeded: 1,
            failed: 0,
            running: 2,
            pending: 1,
        });
        running.frames = Some(FrameCounts {
            list: "1-8".into(),
            total: 8,
            done: 3,
            failed: 2,
            pending: 3,
            ..Default::default()
        });
        running.failed_frames = [5, 6]
            .map(|frame| crate::status::FailedFrame {
                frame,
                log: String::new(),
                reason: None,
            })
            .to_vec();
        let spend = Spend {
            attempts_ended: 1,
            task_seconds: 60.0,
            cost_usd: Some(0.0031),
            frame_median_seconds: Some(20.0),
            eta_seconds: Some(90.0),
        };
        let event = WatchEvent::of(&running, Some(&spend));
        assert_eq!(
            event.line(),
            "farm-status: render RUNNING (2 task(s) running), zip PENDING; frames 3/8 done, 2 failed (5-6); spent about $0.0031; eta about 1 min 30 s"
        );
        let done = WatchEvent::of(&report(JobState::Succeeded, JobState::Succeeded), None);
        assert!(
            done.line()
                .ends_with("frames 0/0 done, 0 failed; ended, not complete"),
            "{}",
            done.line()
        );
    }
}
