//! `<key>/receipt.json`: what a job took and cost, summed from its task records
//! ([`crate::tasks`]) by [`Receipt::compute`], a pure function the zipper calls at the end of
//! the archive and a movie scene's movie job again when it ends (`farm_jobs::receipt`; `farm
//! report` prints it, `farm status` sums the cost so far with it).
//!
//! Cost is an estimate at Fargate's on-demand Linux/x86 price: every attempt is billed at its job
//! definition's size (render, and the movie job on the render definition: 4 vCPU / 8 GB, ADR
//! 0103; zip: 1 vCPU / 2 GB) for its measured
//! seconds with Fargate's one-minute minimum. The measured seconds start when the process does,
//! so the image pull before it (30-60 s a task, billed by Fargate) is not in them: the real bill
//! is higher by about that much per attempt. Fargate Spot is billed at up to 70 % less; the
//! receipt does not know which capacity ran a task and prices all of it on demand.

use serde::{Deserialize, Serialize};

use crate::tasks::{TaskKind, TaskRecord};

/// Memory of one render task, GB (the render job definitions' 8,192 MiB).
pub const RENDER_TASK_MEMORY_GB: f64 = 8.0;
/// vCPUs of the zip task.
pub const ZIP_TASK_VCPUS: f64 = 1.0;
/// Memory of the zip task, GB (2,048 MiB).
pub const ZIP_TASK_MEMORY_GB: f64 = 2.0;
/// Fargate bills each task for at least a minute.
pub const MINIMUM_BILLED_SECONDS: f64 = 60.0;
/// How many of the slowest frames a receipt lists.
pub const SLOWEST_FRAMES: usize = 5;
/// When [`FARGATE_PRICES`] was read off <https://aws.amazon.com/fargate/pricing/>.
pub const PRICES_AS_OF: &str = "2025-01";
/// The variables overriding the prices (e.g. for a region not in [`FARGATE_PRICES`], or Spot).
pub use crate::env::{
    PRICE_GB_HOUR_USD as ENV_GB_HOUR_USD, PRICE_VCPU_HOUR_USD as ENV_VCPU_HOUR_USD,
};

/// Fargate on-demand prices, Linux/x86, USD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

/// Fargate on-demand Linux/x86 prices per region as of [`PRICES_AS_OF`].
pub const FARGATE_PRICES: &[(&str, Prices)] = &[
    (
        "us-east-1",
        Prices {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
        },
    ),
    (
        "us-east-2",
        Prices {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
        },
    ),
    (
        "us-west-2",
        Prices {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
        },
    ),
    (
        "eu-west-1",
        Prices {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
        },
    ),
    (
        "eu-central-1",
        Prices {
            vcpu_hour: 0.04656,
            gb_hour: 0.00511,
        },
    ),
    (
        "ap-northeast-1",
        Prices {
            vcpu_hour: 0.05056,
            gb_hour: 0.00553,
        },
    ),
];

impl Prices {
    /// The region's prices, overridden by `vcpu_hour` / `gb_hour` when given (both, or one on
    /// top of the table's); `None` for a region not in the table without both overrides.
    pub fn for_region(region: &str, vcpu_hour: Option<f64>, gb_hour: Option<f64>) -> Option<Self> {
        let table = FARGATE_PRICES
            .iter()
            .find(|(name, _)| *name == region.trim())
            .map(|(_, prices)| *prices);
        match (table, vcpu_hour, gb_hour) {
            (_, Some(vcpu_hour), Some(gb_hour)) => Some(Self { vcpu_hour, gb_hour }),
            (Some(table), vcpu, gb) => Some(Self {
                vcpu_hour: vcpu.unwrap_or(table.vcpu_hour),
                gb_hour: gb.unwrap_or(table.gb_hour),
            }),
            (None, _, _) => None,
        }
    }
}

/// Seconds per frame over the job's frames.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FrameSeconds {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

/// One of the slowest frames.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlowFrame {
    pub frame: i32,
    pub seconds: f64,
}

/// The `receipt.json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// Frames the job delivered.
    pub frames: usize,
    /// Distinct tasks (render array children, the zip job and the movie job) that ran at least
    /// once.
    pub tasks: usize,
    /// Attempts of all tasks: more than `tasks` when Batch retried some.
    pub attempts: usize,
    /// From the first task's start to the last task's end (the zip, or the movie job).
    pub wall_seconds: f64,
    /// Seconds of every attempt, summed.
    pub task_seconds: f64,
    /// Billed vCPU-hours (each attempt at its size, at least a minute).
    pub vcpu_hours: f64,
    /// Billed GB-hours.
    pub gb_hours: f64,
    /// Estimated cost at on-demand prices; `None` without prices (a local render).
    pub cost_usd: Option<f64>,
    /// Blender's render time per frame.
    pub frame_seconds: FrameSeconds,
    /// The slowest frames, slowest first.
    pub slowest: Vec<SlowFrame>,
    /// The movie the scene asked for, once the movie job wrote it (ADR 0012).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movie: Option<MovieObject>,
    /// The scout's estimate of this version of the upload against what the job took, when
    /// `estimate.json` holds one ([`crate::estimate::EstimateCheck`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<crate::estimate::EstimateCheck>,
}

/// A job's movie in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovieObject {
    /// `<key>/<stem>.<ext>` ([`crate::JobKeys::movie`]).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Receipt {
    /// Sums `records` (this job's attempts) for a job that delivered `frames` frames.
    pub fn compute(records: &[TaskRecord], frames: usize, prices: Option<Prices>) -> Self {
        let mut tasks: Vec<(TaskKind, usize)> = records.iter().map(|r| (r.task, r.index)).collect();
        tasks.sort_unstable();
        tasks.dedup();
        let started = records.iter().map(|r| r.started).min();
        let ended = records.iter().map(|r| r.ended).max();
        let wall_seconds = match (started, ended) {
            (Some(started), Some(ended)) => ended.duration_since(started).as_secs_f64().max(0.0),
            _ => 0.0,
        };
        let (mut task_seconds, mut vcpu_hours, mut gb_hours) = (0.0, 0.0, 0.0);
        for record in records {
            let seconds = record.seconds();
            task_seconds += seconds;
            let (vcpus, gb) = match record.task {
                TaskKind::Render | TaskKind::Movie => (
                    f64::from(crate::plan::RENDER_TASK_VCPUS),
                    RENDER_TASK_MEMORY_GB,
                ),
                TaskKind::Zip => (ZIP_TASK_VCPUS, ZIP_TASK_MEMORY_GB),
            };
            let billed_hours = seconds.max(MINIMUM_BILLED_SECONDS) / 3600.0;
            vcpu_hours += vcpus * billed_hours;
            gb_hours += gb * billed_hours;
        }
        let cost_usd = prices.map(|p| round(vcpu_hours * p.vcpu_hour + gb_hours * p.gb_hour, 4));

        // Each frame's time from the last attempt that rendered it.
        let mut by_frame = std::collections::BTreeMap::new();
        let mut ordered: Vec<&TaskRecord> = records
            .iter()
            .filter(|r| r.task == TaskKind::Render)
            .collect();
        ordered.sort_by_key(|r| (r.attempt, r.started));
        for record in ordered {
            for timing in &record.frames {
                if let Some(seconds) = timing.render_seconds {
                    by_frame.insert(timing.frame, seconds);
                }
            }
        }
        // Milliseconds: what a JSON round trip keeps exactly, so a re-read receipt compares equal.
        for seconds in by_frame.values_mut() {
            *seconds = round(*seconds, 3);
        }
        let mut times: Vec<f64> = by_frame.values().copied().collect();
        times.sort_by(f64::total_cmp);
        let frame_seconds = match times.len() {
            0 => FrameSeconds::default(),
            n => FrameSeconds {
                min: times[0],
                median: if n % 2 == 1 {
                    times[n / 2]
                } else {
                    round((times[n / 2 - 1] + times[n / 2]) / 2.0, 3)
                },
                max: times[n - 1],
            },
        };
        let mut slowest: Vec<SlowFrame> = by_frame
            .into_iter()
            .map(|(frame, seconds)| SlowFrame { frame, seconds })
            .collect();
        slowest.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(a.frame.cmp(&b.frame)));
        slowest.truncate(SLOWEST_FRAMES);

        Self {
            frames,
            tasks: tasks.len(),
            attempts: records.len(),
            wall_seconds: round(wall_seconds, 3),
            task_seconds: round(task_seconds, 3),
            vcpu_hours: round(vcpu_hours, 6),
            gb_hours: round(gb_hours, 6),
            cost_usd,
            frame_seconds,
            slowest,
            movie: None,
            estimate: None,
        }
    }
}

/// Seconds until `pending` frames are rendered by `running` tasks at `median` seconds a frame;
/// `None` with no measured frame or no running task (then it depends on when tasks start).
pub fn eta_seconds(median: f64, pending: usize, running: usize) -> Option<f64> {
    if median <= 0.0 || running == 0 {
        return (pending == 0).then_some(0.0);
    }
    Some(median * pending.div_ceil(running) as f64)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::FrameTiming;

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn render(
        index: usize,
        attempt: u32,
        from: i64,
        to: i64,
        exit_code: i32,
        frames: &[(i32, f64)],
    ) -> TaskRecord {
        TaskRecord {
            task: TaskKind::Render,
            index,
            attempt,
            source_etag: None,
            started: at(from),
            ended: at(to),
            exit_code,
            error: None,
            cpus: 4,
            download_seconds: Some(1.0),
            blender_startup_seconds: Some(2.0),
            frames: frames
                .iter()
                .map(|&(frame, seconds)| FrameTiming {
                    frame,
                    render_seconds: Some(seconds),
                    upload_seconds: 0.1,
                    object: None,
                })
                .collect(),
            frame_metadata: None,
        }
    }

    #[test]
    fn a_job_sums_its_attempts_at_their_sizes_with_the_one_minute_minimum() {
        let mut zip = render(0, 1, 400, 430, 0, &[]);
        zip.task = TaskKind::Zip;
        let records = [
            // Child 0: 300 s, frames 1-2.
            render(0, 1, 0, 300, 0, &[(1, 100.0), (2, 140.0)]),
            // Child 1 failed after 20 s (billed 60) having rendered frame 3, then was retried.
            render(1, 1, 10, 30, 4, &[(3, 500.0)]),
            render(1, 2, 40, 340, 0, &[(3, 120.0), (4, 90.0)]),
            zip,
        ];
        let prices = Prices::for_region("us-east-1", None, None).unwrap();
        let receipt = Receipt::compute(&records, 4, Some(prices));
        assert_eq!(receipt.frames, 4);
        assert_eq!(receipt.tasks, 3);
        assert_eq!(receipt.attempts, 4);
        assert_eq!(receipt.wall_seconds, 430.0);
        assert_eq!(receipt.task_seconds, 300.0 + 20.0 + 300.0 + 30.0);
        // Render: (300 + 60 + 300) s at 4 vCPU / 8 GB; zip: 60 s at 1 vCPU / 2 GB.
        let render_hours = 660.0 / 3600.0;
        let zip_hours = 60.0 / 3600.0;
        let vcpu_hours = 4.0 * render_hours + zip_hours;
        let gb_hours = 8.0 * render_hours + 2.0 * zip_hours;
        assert!(
            (receipt.vcpu_hours - vcpu_hours).abs() < 1e-6,
            "{receipt:?}"
        );
        assert!((receipt.gb_hours - gb_hours).abs() < 1e-6, "{receipt:?}");
        let cost = vcpu_hours * 0.04048 + gb_hours * 0.004445;
        assert!(
            (receipt.cost_usd.unwrap() - cost).abs() < 1e-4,
            "{receipt:?}"
        );
        // Frame 3 counts at its retry's 120 s, not the failed attempt's 500.
        assert_eq!(
            receipt.frame_seconds,
            FrameSeconds {
                min: 90.0,
                median: 110.0,
                max: 140.0
            }
        );
        let slowest: Vec<(i32, f64)> = receipt
            .slowest
            .iter()
            .map(|s| (s.frame, s.seconds))
            .collect();
        assert_eq!(slowest, [(2, 140.0), (3, 120.0), (1, 100.0), (4, 90.0)]);
    }

    /// The movie job runs on the render job definition: its attempts are billed at a render
    /// task's size, counted as one more task, and end the job's wall time.
    #[test]
    fn the_movie_job_is_billed_at_the_render_size_and_ends_the_wall_time() {
        let mut zip = render(0, 1, 300, 320, 0, &[]);
        zip.task = TaskKind::Zip;
        let mut failed_movie = render(0, 1, 330, 340, 4, &[]);
        failed_movie.task = TaskKind::Movie;
        let mut movie = render(0, 2, 350, 500, 0, &[]);
        movie.task = TaskKind::Movie;
        let records = [
            render(0, 1, 0, 300, 0, &[(1, 100.0)]),
            zip,
            failed_movie,
            movie,
        ];
        let receipt = Receipt::compute(&records, 1, None);
        assert_eq!((receipt.tasks, receipt.attempts), (3, 4));
        assert_eq!(receipt.wall_seconds, 500.0);
        assert_eq!(receipt.task_seconds, 300.0 + 20.0 + 10.0 + 150.0);
        // Render 300 s and the movie's 60 (billed) + 150 s at 4 vCPU; the zip's 60 s at 1.
        let render_hours = (300.0 + 60.0 + 150.0) / 3600.0;
        let zip_hours = 60.0 / 3600.0;
        assert!((receipt.vcpu_hours - (4.0 * render_hours + zip_hours)).abs() < 1e-6);
        assert!((receipt.gb_hours - (8.0 * render_hours + 2.0 * zip_hours)).abs() < 1e-6);
        // The movie job renders no frame.
        assert_eq!(receipt.frame_seconds.max, 100.0);
    }

    #[test]
    fn the_receipt_has_exactly_the_documented_fields() {
        let receipt = Receipt::compute(&[render(0, 1, 0, 10, 0, &[(1, 3.0)])], 1, None);
        let json = serde_json::to_value(&receipt).unwrap();
        let mut fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "attempts",
                "cost_usd",
                "frame_seconds",
                "frames",
                "gb_hours",
                "slowest",
                "task_seconds",
                "tasks",
                "vcpu_hours",
                "wall_seconds"
            ]
        );
        assert_eq!(json["cost_usd"], serde_json::Value::Null);
        assert_eq!(
            json["frame_seconds"],
            serde_json::json!({"min": 3.0, "median": 3.0, "max": 3.0})
        );
        assert_eq!(
            json["slowest"],
            serde_json::json!([{"frame": 1, "seconds": 3.0}])
        );
        let back: Receipt = serde_json::from_value(json).unwrap();
        assert_eq!(back, receipt);
    }

    #[test]
    fn slowest_keeps_the_five_slowest_and_median_of_odd_counts_is_the_middle() {
        let frames: Vec<(i32, f64)> = (1..=7).map(|f| (f, f64::from(f * 10))).collect();
        let receipt = Receipt::compute(&[render(0, 1, 0, 100, 0, &frames)], 7, None);
        assert_eq!(receipt.frame_seconds.median, 40.0);
        assert_eq!(
            receipt.slowest.iter().map(|s| s.frame).collect::<Vec<_>>(),
            [7, 6, 5, 4, 3]
        );
        let empty = Receipt::compute(&[], 0, None);
        assert_eq!((empty.tasks, empty.wall_seconds), (0, 0.0));
        assert!(empty.slowest.is_empty());
    }

    #[test]
    fn a_receipt_reads_back_equal_from_json() {
        let receipt = Receipt::compute(
            &[render(
                0,
                1,
                0,
                7,
                0,
                &[(1, 0.93), (2, 0.03), (3, 0.94), (4, 0.0)],
            )],
            4,
            Prices::for_region("us-east-1", None, None),
        );
        assert_eq!(receipt.frame_seconds.median, 0.48);
        let back: Receipt =
            serde_json::from_str(&serde_json::to_string(&receipt).unwrap()).unwrap();
        assert_eq!(back, receipt);
    }

    #[test]
    fn eta_spreads_pending_frames_over_running_tasks() {
        assert_eq!(eta_seconds(10.0, 100, 16), Some(70.0));
        assert_eq!(eta_seconds(10.0, 16, 16), Some(10.0));
        assert_eq!(eta_seconds(10.0, 0, 0), Some(0.0));
        assert_eq!(eta_seconds(0.0, 5, 2), None);
        assert_eq!(eta_seconds(10.0, 5, 0), None);
    }

    #[test]
    fn prices_come_from_the_dated_table_or_the_overrides() {
        assert_eq!(
            Prices::for_region("eu-west-1", None, None),
            Some(Prices {
                vcpu_hour: 0.04048,
                gb_hour: 0.004445
            })
        );
        assert_eq!(Prices::for_region("mars-north-1", None, None), None);
        assert_eq!(Prices::for_region("mars-north-1", Some(0.1), None), None);
        assert_eq!(
            Prices::for_region("mars-north-1", Some(0.1), Some(0.01)),
            Some(Prices {
                vcpu_hour: 0.1,
                gb_hour: 0.01
            })
        );
        // Spot, say: the vCPU price overridden, the GB price from the table.
        assert_eq!(
            Prices::for_region("us-east-1", Some(0.012), None),
            Some(Prices {
                vcpu_hour: 0.012,
                gb_hour: 0.004445
            })
        );
    }
}
