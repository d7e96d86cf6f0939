//! A model of a render job's timeline on AWS Batch over Fargate (issue 27): when each array
//! child starts and ends, what the job costs on demand and on Spot. Pure arithmetic over
//! parameters; the estimate (`farm estimate`) feeds it measured seconds per frame.
//!
//! What it models, in this order for every task (array child, in index order):
//! - **Launch rate**: Fargate starts a burst of [`LAUNCH_BURST`] tasks at once, then
//!   [`LAUNCH_RATE_PER_SECOND`] a second; task `i` cannot start before that allows.
//! - **Slots**: at most `MaxVcpus / 4` render tasks run at once ([`crate::plan::task_slots`]); a
//!   task waits for the earliest free slot.
//! - **Start-up**: the image pull (compressed image size over a pull rate), Blender's start
//!   (open the .blend) and what the chunk's first frame pays beyond a later one (the whole
//!   scene's sync; later frames with persistent data sync only what changed, ADR 0015), all
//!   paid by every task, billed.
//! - **Frames**: the chunk's seconds per frame (as later frames of a chunk), one after the other.
//! - **Billing**: every task is billed at the render task's size (4 vCPU / 8 GB) for its
//!   seconds with Fargate's one-minute minimum ([`MINIMUM_BILLED_SECONDS`]).
//! - **Spot**: interruptions arrive at a rate `λ` per task-hour; an interrupted task is retried
//!   and resumes after the frames it already uploaded (the renderer skips them), so it loses the
//!   frame in progress and pays the start-up again. A frame of `f` hours then takes
//!   `(e^(λf) - 1) / λ` hours on average and causes `e^(λf) - 1` restarts; billed at Spot's price.
//!
//! Not modelled: Batch's own scheduling delay (seconds to a minute before the first task), the
//! zip job, and capacity Fargate does not have (Spot capacity can be short).

use crate::plan::{task_slots, RENDER_TASK_VCPUS};
use crate::receipt::{Prices, MINIMUM_BILLED_SECONDS, RENDER_TASK_MEMORY_GB};

/// Tasks Fargate launches at once before its steady rate.
pub const LAUNCH_BURST: usize = 100;
/// Tasks Fargate launches a second after the burst.
pub const LAUNCH_RATE_PER_SECOND: f64 = 20.0;
/// The renderer image's compressed size (BENCHMARKS.md, "renderer image": 295 MB, Blender 4.2).
pub const RENDERER_IMAGE_BYTES: u64 = 295_000_000;
/// Assumed image pull rate of a Fargate task, compressed bytes a second (download and unpack;
/// no measurement on AWS here).
pub const PULL_BYTES_PER_SECOND: f64 = 20_000_000.0;
/// Fargate Spot's price as a share of on demand ("up to 70 % less").
pub const SPOT_PRICE_FACTOR: f64 = 0.3;

/// Spot interruptions per task-hour the estimates assume unless told (`farm estimate
/// --spot-interruptions`, the scout job).
pub const DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR: f64 = 0.05;
/// The stack's default `MaxVcpus` (infra/farm.yaml), for an estimate that is told no other.
pub const DEFAULT_MAX_VCPUS: u32 = 64;

/// The farm's parameters the timeline depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CloudModel {
    /// The compute environment's `MaxvCpus`.
    pub max_vcpus: u32,
    /// Compressed size of the renderer image.
    pub image_bytes: u64,
    /// Image pull rate, compressed bytes a second.
    pub pull_bytes_per_second: f64,
    /// Blender's start-up in a task before its first frame (process start, opening the .blend).
    pub blender_start_seconds: f64,
    /// What a task's first frame takes beyond the same frame later in a chunk (the scene's
    /// first sync).
    pub first_frame_extra_seconds: f64,
    /// Spot interruptions per task-hour (0: none).
    pub spot_interruptions_per_hour: f64,
    /// Spot's price as a share of on demand.
    pub spot_price_factor: f64,
    /// On-demand Fargate prices.
    pub prices: Prices,
}

impl CloudModel {
    /// The farm's defaults for `max_vcpus` at `prices`: the renderer image, the assumed pull
    /// rate, `blender_start_seconds` measured elsewhere, no Spot interruptions.
    pub fn new(max_vcpus: u32, blender_start_seconds: f64, prices: Prices) -> Self {
        Self {
            max_vcpus,
            image_bytes: RENDERER_IMAGE_BYTES,
            pull_bytes_per_second: PULL_BYTES_PER_SECOND,
            blender_start_seconds,
            first_frame_extra_seconds: 0.0,
            spot_interruptions_per_hour: 0.0,
            spot_price_factor: SPOT_PRICE_FACTOR,
            prices,
        }
    }

    /// Seconds a task pays once beside its frames: image pull, Blender's start and the first
    /// frame's extra.
    pub fn startup_seconds(&self) -> f64 {
        self.image_bytes as f64 / self.pull_bytes_per_second.max(1.0)
            + self.blender_start_seconds
            + self.first_frame_extra_seconds
    }

    /// Render tasks running at once.
    pub fn slots(&self) -> usize {
        task_slots(self.max_vcpus).get()
    }

    /// Seconds after submission before Fargate may start task `index` (0-based).
    pub fn launch_at(index: usize) -> f64 {
        if index < LAUNCH_BURST {
            0.0
        } else {
            (index - LAUNCH_BURST + 1) as f64 / LAUNCH_RATE_PER_SECOND
        }
    }

    /// USD an hour of one render task on demand.
    pub fn task_hour_usd(&self) -> f64 {
        f64::from(RENDER_TASK_VCPUS) * self.prices.vcpu_hour
            + RENDER_TASK_MEMORY_GB * self.prices.gb_hour
    }

    /// Expected seconds a task rendering frames of `frame_seconds` runs on Spot: each frame is
    /// redone when interrupted, and each interruption pays the start-up again.
    pub fn spot_seconds(&self, frame_seconds: &[f64]) -> f64 {
        let rate = self.spot_interruptions_per_hour / 3600.0;
        let startup = self.startup_seconds();
        if rate <= 0.0 {
            return startup + frame_seconds.iter().sum::<f64>();
        }
        startup
            + frame_seconds
                .iter()
                .map(|&f| {
                    let restarts = (rate * f).exp_m1();
                    restarts / rate + restarts * startup
                })
                .sum::<f64>()
    }

    /// The timeline of rendering frames costing `frame_seconds` (in the job's order) in chunks
    /// of `chunk_size`.
    pub fn project(&self, frame_seconds: &[f64], chunk_size: u32) -> Projection {
        let chunk = chunk_size.max(1) as usize;
        let tasks: Vec<f64> = frame_seconds
            .chunks(chunk)
            .map(|frames| self.startup_seconds() + frames.iter().sum::<f64>())
            .collect();
        let spot: Vec<f64> = frame_seconds
            .chunks(chunk)
            .map(|frames| self.spot_seconds(frames))
            .collect();
        let billed = |runs: &[f64]| -> f64 {
            runs.iter()
                .map(|s| s.max(MINIMUM_BILLED_SECONDS))
                .sum::<f64>()
                / 3600.0
        };
        let (task_hours, spot_task_hours) = (billed(&tasks), billed(&spot));
        Projection {
            frames: frame_seconds.len(),
            chunk_size: chunk_size.max(1),
            tasks: tasks.len(),
            slots: self.slots(),
            startup_seconds: self.startup_seconds(),
            wall_seconds: self.wall(&tasks),
            spot_wall_seconds: self.wall(&spot),
            task_hours,
            spot_task_hours,
            cost_usd: task_hours * self.task_hour_usd(),
            spot_cost_usd: spot_task_hours * self.task_hour_usd() * self.spot_price_factor,
        }
    }

    /// When the last of `tasks` (their run seconds, in launch order) ends.
    fn wall(&self, tasks: &[f64]) -> f64 {
        // Each slot's free time; a task takes the earliest (ties: any, they are equal).
        let mut free = vec![0.0f64; self.slots().min(tasks.len().max(1))];
        let mut end = 0.0f64;
        for (index, &run) in tasks.iter().enumerate() {
            let (slot, &at) = free
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .expect("at least one slot");
            let finish = at.max(Self::launch_at(index)) + run;
            free[slot] = finish;
            end = end.max(finish);
        }
        end
    }

    /// The chunk size with the shortest wall time for `frame_seconds`, the cheaper on a tie
    /// (within a second): among one task per slot (`ceil(N / slots)`, today's `chunk=auto`) and
    /// 2, 4 and 8 tasks per slot (which even out frames of unequal cost), and one frame a task.
    pub fn best_chunk(&self, frame_seconds: &[f64]) -> Projection {
        let frames = frame_seconds.len().max(1);
        let mut candidates: Vec<u32> = [1usize, 2, 4, 8]
            .iter()
            .map(|per_slot| frames.div_ceil(self.slots() * per_slot).max(1))
            .chain([1])
            .filter(|&size| frames.div_ceil(size) <= crate::plan::MAX_ARRAY_SIZE)
            .map(|size| u32::try_from(size).unwrap_or(u32::MAX))
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .map(|size| self.project(frame_seconds, size))
            .min_by(|a, b| {
                if (a.wall_seconds - b.wall_seconds).abs() < 1.0 {
                    a.cost_usd.total_cmp(&b.cost_usd)
                } else {
                    a.wall_seconds.total_cmp(&b.wall_seconds)
                }
            })
            .unwrap_or_else(|| self.project(frame_seconds, 1))
    }
}

/// What a job would take on the cloud ([`CloudModel::project`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Projection {
    pub frames: usize,
    pub chunk_size: u32,
    pub tasks: usize,
    pub slots: usize,
    /// Image pull, Blender start and the first frame's extra of one task.
    pub startup_seconds: f64,
    /// Submission to the last frame, on demand.
    pub wall_seconds: f64,
    /// The same on Spot, interruptions included.
    pub spot_wall_seconds: f64,
    /// Billed render task-hours on demand (one-minute minimum each).
    pub task_hours: f64,
    /// Billed render task-hours on Spot, the work redone after interruptions included.
    pub spot_task_hours: f64,
    pub cost_usd: f64,
    pub spot_cost_usd: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: Prices = Prices {
        vcpu_hour: 0.04048,
        gb_hour: 0.004445,
    };

    /// A model whose start-up is exactly `startup` seconds.
    fn model(max_vcpus: u32, startup: f64) -> CloudModel {
        CloudModel {
            image_bytes: 0,
            ..CloudModel::new(max_vcpus, startup, PRICES)
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn launches_burst_then_follow_the_rate() {
        for (index, at) in [(0, 0.0), (99, 0.0), (100, 0.05), (119, 1.0), (9_999, 495.0)] {
            assert!(close(CloudModel::launch_at(index), at), "{index}");
        }
    }

    #[test]
    fn startup_is_the_pull_blenders_start_and_the_first_frames_extra() {
        let m = CloudModel::new(64, 3.0, PRICES);
        assert!(close(m.startup_seconds(), 295.0 / 20.0 + 3.0));
        let first = CloudModel {
            first_frame_extra_seconds: 2.0,
            ..m
        };
        assert!(close(first.startup_seconds(), 295.0 / 20.0 + 5.0));
        // Paid once per task: 4 frames of 100 s in chunks of 2 and of 4.
        let run = |chunk| first.project(&[100.0; 4], chunk).task_hours * 3600.0;
        assert!(close(run(4), first.startup_seconds() + 400.0));
        assert!(close(run(2) - run(4), first.startup_seconds()));
        assert_eq!(m.slots(), 16);
        // 4 x 0.04048 + 8 x 0.004445, ADR 0103.
        assert!(close(m.task_hour_usd(), 0.19748));
    }

    #[test]
    fn timelines_table() {
        // (max vCPUs, start-up s, frames, seconds each, chunk) -> (tasks, wall s, billed task-hours)
        type Case = (u32, f64, usize, f64, u32, usize, f64, f64);
        let cases: &[Case] = &[
            // One slot, two one-frame tasks of 10 s + 20 s start: back to back, each billed 60 s.
            (4, 20.0, 2, 10.0, 1, 2, 60.0, 120.0 / 3600.0),
            // Two slots: side by side.
            (8, 20.0, 2, 10.0, 1, 2, 30.0, 120.0 / 3600.0),
            // One chunk of both frames: one start-up, one minute billed.
            (8, 20.0, 2, 10.0, 2, 1, 40.0, 60.0 / 3600.0),
            // 16 slots, 100 frames of 60 s in 7-frame chunks: 15 tasks in one wave.
            (
                64,
                30.0,
                100,
                60.0,
                7,
                15,
                30.0 + 420.0,
                (14.0 * 450.0 + 150.0) / 3600.0,
            ),
            // 200 slots, 200 one-frame tasks of 60 s: the last launches at (199 - 99) / 20 = 5 s.
            (800, 30.0, 200, 60.0, 1, 200, 95.0, 200.0 * 90.0 / 3600.0),
        ];
        for &(vcpus, startup, frames, each, chunk, tasks, wall, hours) in cases {
            let p = model(vcpus, startup).project(&vec![each; frames], chunk);
            assert_eq!(p.tasks, tasks, "{vcpus} {frames} {chunk}");
            assert!(
                close(p.wall_seconds, wall),
                "{vcpus} {frames} {chunk}: {p:?}"
            );
            assert!(
                close(p.task_hours, hours),
                "{vcpus} {frames} {chunk}: {p:?}"
            );
            assert!(close(p.cost_usd, hours * 0.19748), "{p:?}");
            assert!(
                close(p.spot_cost_usd, p.cost_usd * SPOT_PRICE_FACTOR),
                "{p:?}"
            );
            assert!(
                close(p.spot_wall_seconds, p.wall_seconds),
                "no interruptions: {p:?}"
            );
        }
    }

    #[test]
    fn spot_interruptions_lengthen_long_tasks_most() {
        let m = CloudModel {
            spot_interruptions_per_hour: 0.1,
            ..model(64, 0.0)
        };
        // A one-hour frame: (e^(0.1) - 1) / 0.1 hours, 1.0517 h (no start-up in this model).
        assert!(close(
            m.spot_seconds(&[3600.0]),
            3600.0 * 0.1f64.exp_m1() / 0.1
        ));
        assert!(m.spot_seconds(&[60.0]) / 60.0 < m.spot_seconds(&[36_000.0]) / 36_000.0);
        // Resuming after the uploaded frames: ten one-hour frames lose ten times one frame's
        // share, not a ten-hour task's.
        assert!(close(
            m.spot_seconds(&[3600.0; 10]),
            10.0 * m.spot_seconds(&[3600.0])
        ));
        // Each restart pays the start-up again.
        let slow_start = CloudModel {
            blender_start_seconds: 100.0,
            ..m
        };
        let restarts = 0.1f64.exp_m1();
        assert!(close(
            slow_start.spot_seconds(&[3600.0]),
            100.0 + m.spot_seconds(&[3600.0]) + restarts * 100.0
        ));
        let p = m.project(&[3600.0], 1);
        assert!(p.spot_task_hours > p.task_hours);
        assert!(p.spot_wall_seconds > p.wall_seconds);
    }

    #[test]
    fn the_best_chunk_fills_the_slots_once_for_equal_frames_and_evens_out_a_spike() {
        let m = model(64, 30.0);
        // 100 equal frames on 16 slots: one wave of 7-frame chunks, today's chunk=auto.
        let uniform = m.best_chunk(&vec![60.0; 100]);
        assert_eq!(
            uniform.chunk_size,
            crate::plan::auto_chunk_size(100, Some(task_slots(64)))
        );
        // 32 frames with one 30-minute frame: a chunk of two would hold the spike and another
        // frame; one frame a task lets the other tasks take the rest.
        let mut spike = vec![60.0; 32];
        spike[10] = 1800.0;
        let best = m.best_chunk(&spike);
        assert_eq!(best.chunk_size, 1);
        assert!(best.wall_seconds <= m.project(&spike, 2).wall_seconds);
    }
}
