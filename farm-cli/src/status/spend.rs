//! `farm status`'s cost so far and ETA, from the job's task records (`<key>/tasks/`): the
//! attempts that ended, summed as the receipt sums them, and the pending frames spread over the
//! running tasks at the measured median frame time.

use std::fmt::Write as _;

use farm_core::receipt::{eta_seconds, Prices, Receipt, ENV_GB_HOUR_USD, ENV_VCPU_HOUR_USD};
use farm_core::scheduler::JobState;
use serde::Serialize;

use super::StatusReport;
use crate::aws::Site;

/// What the job has spent and how long it has to go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spend {
    /// Attempts that ended (each writes its task record when it does).
    pub attempts_ended: usize,
    pub task_seconds: f64,
    /// At the region's on-demand price; `None` when the region has no price.
    pub cost_usd: Option<f64>,
    /// Median seconds per frame so far.
    pub frame_median_seconds: Option<f64>,
    /// Seconds until the pending frames are rendered, at that median, by the running tasks.
    pub eta_seconds: Option<f64>,
}

/// Sums a job's task records with its status.
pub fn spend(
    records: &[farm_core::tasks::TaskRecord],
    report: &StatusReport,
    prices: Option<Prices>,
) -> Spend {
    let done = report.frames.as_ref().map_or(0, |f| f.done);
    let receipt = Receipt::compute(records, done, prices);
    let median = Some(receipt.frame_seconds.median).filter(|m| *m > 0.0);
    let pending = report.frames.as_ref().map_or(0, |f| f.pending);
    let running = report
        .render_job
        .as_ref()
        .map_or(0, |job| match &job.array {
            Some(array) => array.running,
            None => usize::from(job.state == JobState::Running),
        });
    Spend {
        attempts_ended: receipt.attempts,
        task_seconds: receipt.task_seconds,
        cost_usd: receipt.cost_usd,
        frame_median_seconds: median,
        eta_seconds: median.and_then(|m| eta_seconds(m, pending, running)),
    }
}

/// The region's prices, or the `FARM_PRICE_*_USD` variables'.
pub fn prices(site: &Site) -> Option<Prices> {
    let price = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse().ok());
    Prices::for_region(
        site.region(),
        price(ENV_VCPU_HOUR_USD),
        price(ENV_GB_HOUR_USD),
    )
}

/// The status lines of a job's spend.
pub fn spend_text(spend: &Spend) -> String {
    let mut out = String::new();
    let secs = |s: f64| crate::progress::seconds(std::time::Duration::from_secs_f64(s.max(0.0)));
    if spend.attempts_ended > 0 {
        let cost = spend.cost_usd.map_or_else(
            || "no price for this region".to_owned(),
            |c| format!("about ${c:.4}"),
        );
        let _ = writeln!(
            out,
            "spent     {cost} so far: {} of task time in {} ended attempt(s) (Fargate on-demand, image pulls not included)",
            secs(spend.task_seconds),
            spend.attempts_ended
        );
    }
    match (spend.eta_seconds, spend.frame_median_seconds) {
        (Some(eta), Some(median)) if eta > 0.0 => {
            let _ = writeln!(
                out,
                "eta       about {} ({} a frame, measured)",
                secs(eta),
                secs(median)
            );
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{ArrayReport, FrameCounts, JobReport};
    use farm_core::tasks::{FrameTiming, TaskKind, TaskRecord};

    fn report(pending: usize, running: usize) -> StatusReport {
        StatusReport {
            frames: Some(FrameCounts {
                list: "1-100".into(),
                total: 100,
                done: 100 - pending,
                stale: 0,
                failed: 0,
                pending,
                chunk_size: 1,
            }),
            render_job: Some(JobReport {
                id: "r".into(),
                name: None,
                state: JobState::Running,
                reason: None,
                array: Some(ArrayReport {
                    size: 100,
                    succeeded: 100 - pending - running,
                    failed: 0,
                    running,
                    pending: pending - running,
                }),
            }),
            ..StatusReport::blank()
        }
    }

    fn record(frame: i32, seconds: f64) -> TaskRecord {
        let at = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
        TaskRecord {
            task: TaskKind::Render,
            index: frame as usize,
            attempt: 1,
            source_etag: None,
            started: at(0),
            ended: at(120),
            exit_code: 0,
            error: None,
            cpus: 4,
            download_seconds: None,
            blender_startup_seconds: None,
            frames: vec![FrameTiming {
                frame,
                render_seconds: Some(seconds),
                upload_seconds: 0.1,
                object: None,
            }],
            frame_metadata: None,
        }
    }

    #[test]
    fn cost_so_far_and_eta_come_from_the_ended_attempts() {
        let records = [record(1, 20.0), record(2, 30.0), record(3, 40.0)];
        let prices = Prices::for_region("us-east-1", None, None);
        // 40 frames pending over 8 running tasks at a median of 30 s: 5 rounds, 150 s.
        let spend = spend(&records, &report(40, 8), prices);
        assert_eq!(spend.attempts_ended, 3);
        assert_eq!(spend.task_seconds, 360.0);
        assert_eq!(spend.frame_median_seconds, Some(30.0));
        assert_eq!(spend.eta_seconds, Some(150.0));
        let expected = Receipt::compute(&records, 60, prices).cost_usd;
        assert_eq!(spend.cost_usd, expected);
        let text = spend_text(&spend);
        assert!(text.contains("spent     about $"), "{text}");
        assert!(text.contains("in 3 ended attempt(s)"), "{text}");
        assert!(
            text.contains("eta       about 2 min 30 s (30.0 s a frame, measured)"),
            "{text}"
        );
        // Nothing ended yet: no lines at all.
        let nothing = super::spend(&[], &report(40, 8), prices);
        assert_eq!(nothing.eta_seconds, None);
        assert_eq!(spend_text(&nothing), "");
    }

    /// The movie job's attempts (`tasks/movie-<attempt>.json`) count in the cost so far, at the
    /// render job definition's size it runs on.
    #[test]
    fn the_movie_job_counts_in_the_cost_so_far_at_the_render_size() {
        let with = |task: TaskKind| {
            let mut last = record(0, 0.0);
            last.task = task;
            last.frames.clear();
            vec![record(1, 20.0), record(2, 30.0), last]
        };
        let prices = Prices::for_region("us-east-1", None, None);
        let renders = spend(&with(TaskKind::Render)[..2], &report(40, 8), prices);
        let movie = spend(&with(TaskKind::Movie), &report(40, 8), prices);
        assert_eq!(movie.attempts_ended, 3);
        assert_eq!(movie.task_seconds, 360.0);
        assert_eq!(movie.frame_median_seconds, renders.frame_median_seconds);
        assert!(movie.cost_usd > renders.cost_usd);
        // What a render task of the same length costs; more than the zip's size would.
        let render = spend(&with(TaskKind::Render), &report(40, 8), prices);
        assert_eq!(movie.cost_usd, render.cost_usd);
        let zip = spend(&with(TaskKind::Zip), &report(40, 8), prices);
        assert!(movie.cost_usd > zip.cost_usd);
    }
}
