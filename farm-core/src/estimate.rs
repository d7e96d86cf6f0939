//! An estimate before compute (issue 27): render a few sample frames, then project the whole job
//! through the cloud model ([`crate::timeline`]). Pure: which frames to sample, every frame's
//! seconds from the samples, and the estimate `farm estimate` prints.

use serde::{Deserialize, Serialize};

use crate::tasks::TaskRecord;
use crate::timeline::{CloudModel, Projection};

/// Sample frames when the user does not say: first, middle, last.
pub const DEFAULT_SAMPLES: u16 = 3;

/// `count` frames spread evenly over `frames` (sorted), first and last included; all of them
/// when there are no more than `count`.
pub fn sample_frames(frames: &[i32], count: usize) -> Vec<i32> {
    let count = count.max(1);
    if frames.len() <= count {
        return frames.to_vec();
    }
    if count == 1 {
        return vec![frames[0]];
    }
    let last = frames.len() - 1;
    let mut picked: Vec<i32> = (0..count)
        .map(|i| frames[(i * last + (count - 1) / 2) / (count - 1)])
        .collect();
    picked.dedup();
    picked
}

/// Seconds of every frame of `frames`, from `samples` (frame, seconds; sorted by frame): linear
/// between two sampled frames, the nearest sample's outside them. Empty samples give nothing.
pub fn frame_seconds(samples: &[(i32, f64)], frames: &[i32]) -> Vec<f64> {
    if samples.is_empty() {
        return Vec::new();
    }
    frames
        .iter()
        .map(|&frame| {
            let after = samples.partition_point(|&(f, _)| f < frame);
            match (after.checked_sub(1).map(|i| samples[i]), samples.get(after)) {
                (_, Some(&(f, s))) if f == frame => s,
                (Some((f0, s0)), Some(&(f1, s1))) => {
                    s0 + (s1 - s0) * f64::from(frame - f0) / f64::from(f1 - f0)
                }
                (Some((_, s)), None) | (None, Some(&(_, s))) => s,
                (None, None) => 0.0,
            }
        })
        .collect()
}

/// One sampled frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampledFrame {
    pub frame: i32,
    /// Render seconds as measured (Blender's own time for the frame).
    pub seconds: f64,
}

/// What the samples measured and what the job would take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Where the samples rendered: `this machine (2 threads)`, `scout task`.
    pub measured_on: String,
    /// Threads the samples rendered with.
    pub threads: usize,
    pub sampled: Vec<SampledFrame>,
    /// Blender's start-up measured with the samples (process start to the first frame).
    pub blender_startup_seconds: f64,
    /// The job's frames.
    pub frames: usize,
    /// Seconds of all the job's frames on a render task (4 vCPUs), interpolated from the samples.
    pub frame_seconds_total: f64,
    /// The job at the chunk size the model finds best.
    pub projection: Projection,
}

impl Estimate {
    /// The estimate from a task record of the sample frames, rendered with `threads` threads:
    /// every frame's seconds interpolated over `frames`, scaled to a 4-vCPU render task
    /// (`threads / 4`: Cycles on the CPU scales with cores), projected with `model` (whose
    /// Blender start-up is taken from the record when it has one).
    pub fn from_samples(
        record: &TaskRecord,
        threads: usize,
        frames: &[i32],
        model: &CloudModel,
        measured_on: &str,
    ) -> Option<Self> {
        // The record lists frames in the order their uploads finished.
        let mut sampled: Vec<SampledFrame> = record
            .frames
            .iter()
            .filter_map(|f| {
                Some(SampledFrame {
                    frame: f.frame,
                    seconds: f.render_seconds?,
                })
            })
            .collect();
        if sampled.is_empty() {
            return None;
        }
        sampled.sort_by_key(|s| s.frame);
        let threads = threads.max(1);
        let scale = threads as f64 / f64::from(crate::plan::RENDER_TASK_VCPUS);
        let mut pairs: Vec<(i32, f64)> = sampled
            .iter()
            .map(|s| (s.frame, s.seconds * scale))
            .collect();
        pairs.sort_by_key(|&(frame, _)| frame);
        let seconds = frame_seconds(&pairs, frames);
        let startup = record
            .blender_startup_seconds
            .unwrap_or(model.blender_start_seconds);
        let model = CloudModel {
            blender_start_seconds: startup,
            ..*model
        };
        Some(Self {
            measured_on: measured_on.to_owned(),
            threads,
            sampled,
            blender_startup_seconds: startup,
            frames: frames.len(),
            frame_seconds_total: seconds.iter().sum(),
            projection: model.best_chunk(&seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::Prices;
    use crate::tasks::{FrameTiming, TaskKind};

    #[test]
    fn samples_are_spread_first_middle_last() {
        let frames: Vec<i32> = (1..=100).collect();
        assert_eq!(sample_frames(&frames, 3), [1, 51, 100]);
        assert_eq!(sample_frames(&frames, 2), [1, 100]);
        assert_eq!(sample_frames(&frames, 1), [1]);
        assert_eq!(sample_frames(&frames, 5), [1, 26, 51, 75, 100]);
        assert_eq!(sample_frames(&[4, 9], 3), [4, 9]);
        assert_eq!(sample_frames(&[-5, 0, 7, 8], 3), [-5, 7, 8]);
    }

    #[test]
    fn frame_seconds_are_linear_between_samples_and_flat_outside() {
        let samples = [(10, 4.0), (20, 8.0)];
        assert_eq!(
            frame_seconds(&samples, &[5, 10, 15, 20, 30]),
            [4.0, 4.0, 6.0, 8.0, 8.0]
        );
        assert_eq!(frame_seconds(&[(3, 2.0)], &[1, 3, 9]), [2.0, 2.0, 2.0]);
        assert!(frame_seconds(&[], &[1]).is_empty());
    }

    #[test]
    fn an_estimate_scales_samples_to_a_render_task_and_projects_them() {
        let timing = |frame, seconds| FrameTiming {
            frame,
            render_seconds: Some(seconds),
            upload_seconds: 0.0,
        };
        let record = TaskRecord {
            task: TaskKind::Render,
            index: 0,
            attempt: 1,
            source_etag: None,
            started: jiff::Timestamp::UNIX_EPOCH,
            ended: jiff::Timestamp::UNIX_EPOCH,
            exit_code: 0,
            error: None,
            cpus: 8,
            download_seconds: None,
            blender_startup_seconds: Some(3.0),
            frames: vec![timing(51, 30.0), timing(1, 10.0), timing(100, 20.0)],
        };
        let frames: Vec<i32> = (1..=100).collect();
        let prices = Prices {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
        };
        let model = CloudModel::new(64, 0.0, prices);
        let estimate = Estimate::from_samples(&record, 2, &frames, &model, "here").unwrap();
        let sampled: Vec<i32> = estimate.sampled.iter().map(|s| s.frame).collect();
        assert_eq!(sampled, [1, 51, 100], "in frame order");
        assert_eq!(estimate.blender_startup_seconds, 3.0);
        // Two threads against four vCPUs: half the seconds. Frames 1..=51 rise from 5 to 15,
        // 51..=100 fall from 15 to 10.
        let expected: f64 = frame_seconds(&[(1, 5.0), (51, 15.0), (100, 10.0)], &frames)
            .iter()
            .sum();
        assert!((estimate.frame_seconds_total - expected).abs() < 1e-9);
        assert_eq!(estimate.projection.frames, 100);
        assert!(estimate.projection.cost_usd > 0.0);
        let no_times = TaskRecord {
            frames: vec![FrameTiming {
                render_seconds: None,
                ..timing(1, 0.0)
            }],
            ..record
        };
        assert!(Estimate::from_samples(&no_times, 2, &frames, &model, "here").is_none());
    }
}
