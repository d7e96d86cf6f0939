//! An estimate before compute (issue 27): profile every frame cheaply ([`profile`], ADR 0016),
//! render a few sample frames at full quality (first, middle, last and the frames the profile
//! finds unlike their neighbours), then project the whole job through the cloud model
//! ([`crate::timeline`]). Pure: which frames to sample, every frame's seconds from the samples
//! shaped by the profile, the estimate `farm estimate` prints, the scout job's
//! `<key>/estimate.json` ([`EstimateFile`]) and the receipt's estimate against actual
//! ([`EstimateCheck`]).

use serde::{Deserialize, Serialize};

use crate::receipt::{Prices, MINIMUM_BILLED_SECONDS};
use crate::tasks::{TaskKind, TaskRecord};
use crate::timeline::{CloudModel, Projection};

pub mod profile;

pub use profile::{Profile, PROFILE_RESOLUTION_PERCENT};

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
    /// The profile found this frame unlike its neighbours ([`profile::place_samples`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub placed_by_profile: bool,
}

impl SampledFrame {
    /// The frames of `record` Blender printed a render time for, in frame order (the record
    /// lists them in the order their uploads finished).
    pub fn timed(record: &TaskRecord) -> Vec<Self> {
        let mut timed: Vec<Self> = record
            .frames
            .iter()
            .filter_map(|f| {
                Some(Self {
                    frame: f.frame,
                    seconds: f.render_seconds?,
                    placed_by_profile: false,
                })
            })
            .collect();
        timed.sort_by_key(|s| s.frame);
        timed
    }
}

/// What an estimate measured on one machine: the profile pass (none when the job has too few
/// frames to profile or the profile was not run) and the record of the full-quality samples,
/// rendered in one Blender session in frame order (its download, if any, included).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub profile: Option<Profile>,
    pub samples: TaskRecord,
    /// The samples the profile placed (beyond first, middle and last).
    pub placed: Vec<i32>,
}

/// What the samples measured and what the job would take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Where the samples rendered: `this machine (2 threads)`, `scout task`.
    pub measured_on: String,
    /// Threads the samples rendered with.
    pub threads: usize,
    pub sampled: Vec<SampledFrame>,
    /// The profile pass (ADR 0016); absent in estimates made before it (schema 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Start-up measured with the samples: the .blend's download (a scout's) and Blender from
    /// its start to the first frame.
    pub blender_startup_seconds: f64,
    /// What the first frame of a task pays beyond the same frame later in the chunk (the whole
    /// scene's sync; measured by the profile), on a 4-vCPU task: paid once per task.
    #[serde(default)]
    pub first_frame_extra_seconds: f64,
    /// The job's frames.
    pub frames: usize,
    /// Seconds of all the job's frames on a render task (4 vCPUs) as later frames of a chunk,
    /// from the samples shaped by the profile.
    pub frame_seconds_total: f64,
    /// The job at the chunk size the model finds best.
    pub projection: Projection,
}

impl Estimate {
    /// The estimate from what `measured` rendered with `threads` threads: every frame's seconds
    /// from the samples (the first without its first-frame extra) shaped by the profile over
    /// `frames`, scaled to a 4-vCPU render task (`threads / 4`: Cycles on the CPU scales with
    /// cores), projected with `model`, whose start-up is the samples' Blender start-up (and
    /// download) when measured, plus the first frame's extra.
    pub fn from_measurement(
        measured: &Measurement,
        threads: usize,
        frames: &[i32],
        model: &CloudModel,
        measured_on: &str,
    ) -> Option<Self> {
        let record = &measured.samples;
        let mut sampled = SampledFrame::timed(record);
        if sampled.is_empty() {
            return None;
        }
        for sample in &mut sampled {
            sample.placed_by_profile = measured.placed.contains(&sample.frame);
        }
        let threads = threads.max(1);
        let scale = threads as f64 / f64::from(crate::plan::RENDER_TASK_VCPUS);
        let profile = measured.profile.as_ref();
        let extra = profile
            .map_or(0.0, |p| profile::first_frame_extra(&p.frames))
            .min(sampled[0].seconds);
        let mut pairs: Vec<(i32, f64)> = sampled.iter().map(|s| (s.frame, s.seconds)).collect();
        pairs[0].1 -= extra;
        let steady = profile.map(Profile::steady).unwrap_or_default();
        let seconds: Vec<f64> = profile::profiled_seconds(&pairs, &steady, frames)
            .into_iter()
            .map(|s| s * scale)
            .collect();
        let startup = record
            .blender_startup_seconds
            .map(|blender| blender + record.download_seconds.unwrap_or(0.0))
            .unwrap_or(model.blender_start_seconds);
        let model = CloudModel {
            blender_start_seconds: startup,
            first_frame_extra_seconds: extra * scale,
            ..*model
        };
        Some(Self {
            measured_on: measured_on.to_owned(),
            threads,
            sampled,
            profile: measured.profile.clone(),
            blender_startup_seconds: startup,
            first_frame_extra_seconds: extra * scale,
            frames: frames.len(),
            frame_seconds_total: seconds.iter().sum(),
            projection: model.best_chunk(&seconds),
        })
    }
}

/// Version of the `estimate.json` document.
/// 2: the estimate says what the profile measured (`profile`, `first_frame_extra_seconds`,
/// a sample's `placed_by_profile`); a schema-1 file reads with none of them.
pub const ESTIMATE_SCHEMA: u32 = 2;

/// Where a scout job (`estimate=N`) is: submitted by the trigger, or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateStatus {
    /// The trigger submitted the scout job (`job_id`); no estimate yet.
    Submitted,
    /// The scout rendered its samples: `estimate` holds what they say.
    Estimated,
}

/// `<key>/estimate.json`: the scout job of an upload tagged `estimate=N`, written `submitted`
/// by the trigger, then `estimated` by the scout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimateFile {
    pub schema: u32,
    pub status: EstimateStatus,
    /// The `.blend`'s key.
    pub key: String,
    /// ETag of the `.blend` version estimated (quoted, as S3 returns it): the estimate of
    /// another upload is not this one's.
    pub etag: Option<String>,
    /// The job's canonical frame list.
    pub frames: String,
    /// The frames the scout renders at full quality: first, middle and last as the trigger
    /// planned them; once `estimated`, as rendered (the profile's placed ones included).
    pub samples: Vec<i32>,
    /// The stack's `MaxVcpus` the projection is made for.
    pub max_vcpus: u32,
    /// The scout's Batch job, as the trigger submitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub written: jiff::Timestamp,
    /// What the samples measured and what the job would take (`estimated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

impl EstimateFile {
    /// Whether this is a finished estimate of the `.blend` version `etag`.
    pub fn estimates(&self, etag: Option<&str>) -> Option<&Estimate> {
        let same = match (self.etag.as_deref(), etag) {
            (Some(ours), Some(theirs)) => {
                crate::etag::unquote_etag(ours) == crate::etag::unquote_etag(theirs)
            }
            _ => false,
        };
        (same && self.status == EstimateStatus::Estimated)
            .then_some(self.estimate.as_ref())
            .flatten()
    }
}

/// The estimate against what the job took: in the receipt when `estimate.json` estimated the
/// same version of the upload. Render tasks only (the zip job is in no estimate); both sides
/// billed the same way (each task at least a minute), both on demand. The actual seconds start
/// with the renderer's process, so the image pull the estimate models is not in them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimateCheck {
    /// The chunk size the estimate projected.
    pub chunk_size: u32,
    pub estimated_task_hours: f64,
    pub actual_task_hours: f64,
    pub estimated_cost_usd: f64,
    /// The render tasks at the receipt's prices; `None` without prices.
    pub actual_cost_usd: Option<f64>,
}

impl EstimateCheck {
    /// `estimate` against the render task records of the job, priced at `prices`.
    pub fn new(estimate: &Estimate, records: &[TaskRecord], prices: Option<Prices>) -> Self {
        let actual_task_hours: f64 = records
            .iter()
            .filter(|r| r.task == TaskKind::Render)
            .map(|r| r.seconds().max(MINIMUM_BILLED_SECONDS) / 3600.0)
            .sum();
        let p = &estimate.projection;
        Self {
            chunk_size: p.chunk_size,
            estimated_task_hours: round(p.task_hours, 4),
            actual_task_hours: round(actual_task_hours, 4),
            estimated_cost_usd: round(p.cost_usd, 4),
            actual_cost_usd: prices.map(|prices| {
                let model = CloudModel::new(1, 0.0, prices);
                round(actual_task_hours * model.task_hour_usd(), 4)
            }),
        }
    }

    /// How far the estimate was off, in percent of the actual task-hours (`+` too high);
    /// `None` when nothing ran.
    pub fn error_percent(&self) -> Option<f64> {
        (self.actual_task_hours > 0.0).then(|| {
            (self.estimated_task_hours - self.actual_task_hours) / self.actual_task_hours * 100.0
        })
    }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::FrameTiming;

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

    fn record(task: TaskKind, index: usize, seconds: i64) -> TaskRecord {
        TaskRecord {
            task,
            index,
            attempt: 1,
            source_etag: None,
            started: jiff::Timestamp::UNIX_EPOCH,
            ended: jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_secs(seconds),
            exit_code: 0,
            error: None,
            cpus: 4,
            download_seconds: None,
            blender_startup_seconds: None,
            frames: Vec::new(),
            frame_metadata: None,
        }
    }

    fn estimate_with(projection: Projection) -> Estimate {
        Estimate {
            measured_on: "scout task".into(),
            threads: 4,
            sampled: vec![SampledFrame {
                frame: 1,
                seconds: 10.0,
                placed_by_profile: false,
            }],
            profile: None,
            blender_startup_seconds: 2.0,
            first_frame_extra_seconds: 0.0,
            frames: projection.frames,
            frame_seconds_total: 100.0,
            projection,
        }
    }

    #[test]
    fn the_receipt_compares_the_estimate_with_the_render_tasks_billed() {
        let prices = Prices {
            vcpu_hour: 0.04,
            gb_hour: 0.005,
        };
        let model = CloudModel::new(64, 5.0, prices);
        let projection = model.project(&[360.0; 20], 10);
        assert_eq!(projection.tasks, 2);
        let estimate = estimate_with(projection);
        // Two render tasks of 30 and 90 minutes, a retried attempt of 10 s (billed a minute),
        // and the zip job, which no estimate covers.
        let records = [
            record(TaskKind::Render, 0, 1800),
            record(TaskKind::Render, 1, 10),
            record(TaskKind::Render, 1, 5400),
            record(TaskKind::Zip, 0, 600),
        ];
        let check = EstimateCheck::new(&estimate, &records, Some(prices));
        let actual = 0.5 + 1.0 / 60.0 + 1.5;
        assert!((check.actual_task_hours - round(actual, 4)).abs() < 1e-9);
        assert_eq!(check.chunk_size, 10);
        assert_eq!(check.estimated_task_hours, round(projection.task_hours, 4));
        // A render task-hour: 4 vCPU x 0.04 + 8 GB x 0.005 = 0.2 USD.
        assert_eq!(check.actual_cost_usd, Some(round(actual * 0.2, 4)));
        assert_eq!(check.estimated_cost_usd, round(projection.cost_usd, 4));
        let error = check.error_percent().unwrap();
        let expected = (round(projection.task_hours, 4) - round(actual, 4)) / round(actual, 4);
        assert!((error - expected * 100.0).abs() < 1e-9, "{error}");
        assert_eq!(
            EstimateCheck::new(&estimate, &records[3..], None).error_percent(),
            None,
            "no render task ran"
        );
        assert_eq!(
            EstimateCheck::new(&estimate, &records, None).actual_cost_usd,
            None
        );
    }

    #[test]
    fn an_estimate_file_estimates_only_its_own_version_once_done() {
        let model = CloudModel::new(
            64,
            5.0,
            Prices {
                vcpu_hour: 0.04,
                gb_hour: 0.005,
            },
        );
        let mut file = EstimateFile {
            schema: ESTIMATE_SCHEMA,
            status: EstimateStatus::Submitted,
            key: "k.blend".into(),
            etag: Some("\"e1\"".into()),
            frames: "1-20".into(),
            samples: vec![1, 11, 20],
            max_vcpus: 64,
            job_id: Some("job-1".into()),
            written: jiff::Timestamp::UNIX_EPOCH,
            estimate: None,
        };
        assert!(file.estimates(Some("\"e1\"")).is_none(), "not done yet");
        file.status = EstimateStatus::Estimated;
        file.estimate = Some(estimate_with(model.project(&[1.0; 20], 2)));
        assert!(file.estimates(Some("e1")).is_some(), "bare or quoted");
        assert!(file.estimates(Some("\"e2\"")).is_none(), "another upload");
        assert!(file.estimates(None).is_none());
        let text = serde_json::to_string(&file).unwrap();
        assert!(text.contains("\"status\":\"estimated\""), "{text}");
        assert_eq!(serde_json::from_str::<EstimateFile>(&text).unwrap(), file);
    }

    /// An `estimate.json` of schema 1 (before the profile) still reads, and still gives the
    /// receipt its estimate.
    #[test]
    fn a_schema_1_estimate_file_still_reads() {
        let text = r#"{"schema":1,"status":"estimated","key":"k.blend","etag":"\"e1\"",
            "frames":"1-3","samples":[1,3],"max_vcpus":64,"written":"2026-12-06T16:46:00Z",
            "estimate":{"measured_on":"a scout task (4 threads)","threads":4,
            "sampled":[{"frame":1,"seconds":2.0},{"frame":3,"seconds":4.0}],
            "blender_startup_seconds":3.0,"frames":3,"frame_seconds_total":9.0,
            "projection":{"frames":3,"chunk_size":3,"tasks":1,"slots":16,"startup_seconds":17.75,
            "wall_seconds":26.75,"spot_wall_seconds":26.8,"task_hours":0.0167,
            "spot_task_hours":0.0167,"cost_usd":0.0033,"spot_cost_usd":0.001}}}"#;
        let file: EstimateFile = serde_json::from_str(text).unwrap();
        let estimate = file.estimates(Some("e1")).expect("estimated");
        assert_eq!(estimate.profile, None);
        assert_eq!(estimate.first_frame_extra_seconds, 0.0);
        assert!(!estimate.sampled[0].placed_by_profile);
        let check = EstimateCheck::new(estimate, &[record(TaskKind::Render, 0, 30)], None);
        assert_eq!(check.estimated_task_hours, 0.0167);
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
            object: None,
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
            frame_metadata: None,
        };
        let frames: Vec<i32> = (1..=100).collect();
        let prices = Prices {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
        };
        let model = CloudModel::new(64, 0.0, prices);
        let measured = Measurement {
            profile: None,
            samples: record.clone(),
            placed: Vec::new(),
        };
        let estimate = Estimate::from_measurement(&measured, 2, &frames, &model, "here").unwrap();
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
        assert_eq!(estimate.first_frame_extra_seconds, 0.0, "no profile");
        let no_times = Measurement {
            samples: TaskRecord {
                frames: vec![FrameTiming {
                    render_seconds: None,
                    ..timing(1, 0.0)
                }],
                ..record
            },
            ..measured
        };
        assert!(Estimate::from_measurement(&no_times, 2, &frames, &model, "here").is_none());
    }

    /// The spike scene of the benchmark: frame 6 of 12 at 8x, which first, middle and last miss.
    /// The profile places a sample on it; the estimate holds it once, the first frame's extra
    /// once per task, and says what it measured.
    #[test]
    fn a_spike_the_profile_found_is_in_the_estimate() {
        let frames: Vec<i32> = (1..=12).collect();
        let profile = Profile {
            resolution_percent: PROFILE_RESOLUTION_PERCENT,
            frames: frames
                .iter()
                .map(|&frame| SampledFrame {
                    frame,
                    seconds: match frame {
                        1 => 1.2,
                        6 => 0.6,
                        _ => 0.2,
                    },
                    placed_by_profile: false,
                })
                .collect(),
            seconds: 8.0,
        };
        let base = sample_frames(&frames, 3);
        assert_eq!(base, [1, 7, 12]);
        let placed = profile::place_samples(&base, &profile.steady(), 3);
        assert_eq!(placed, [1, 6, 7, 12]);
        let timing = |frame, seconds| FrameTiming {
            frame,
            render_seconds: Some(seconds),
            upload_seconds: 0.0,
            object: None,
        };
        // Full quality, in one session: frame 1 pays the first frame's extra (1 s).
        let measured = Measurement {
            profile: Some(profile),
            samples: TaskRecord {
                blender_startup_seconds: Some(3.0),
                frames: vec![
                    timing(1, 3.0),
                    timing(6, 16.0),
                    timing(7, 2.0),
                    timing(12, 2.0),
                ],
                ..record(TaskKind::Render, 0, 0)
            },
            placed: vec![6],
        };
        let model = CloudModel {
            image_bytes: 0,
            ..CloudModel::new(
                64,
                0.0,
                Prices::for_region("us-east-1", None, None).unwrap(),
            )
        };
        let estimate = Estimate::from_measurement(&measured, 4, &frames, &model, "here").unwrap();
        // 11 frames of 2 s and one of 16 s; the extra once, in the start-up.
        assert!(
            (estimate.frame_seconds_total - 38.0).abs() < 1e-9,
            "{estimate:?}"
        );
        assert!((estimate.first_frame_extra_seconds - 1.0).abs() < 1e-9);
        assert!((estimate.projection.startup_seconds - 4.0).abs() < 1e-9);
        let placed: Vec<bool> = estimate
            .sampled
            .iter()
            .map(|s| s.placed_by_profile)
            .collect();
        assert_eq!(placed, [false, true, false, false]);
        // Without the profile the spike is missed: frames 1, 7 and 12 say 2 s each.
        let blind = Measurement {
            profile: None,
            samples: TaskRecord {
                frames: vec![timing(1, 2.0), timing(7, 2.0), timing(12, 2.0)],
                ..measured.samples
            },
            placed: Vec::new(),
        };
        let blind = Estimate::from_measurement(&blind, 4, &frames, &model, "here").unwrap();
        assert!((blind.frame_seconds_total - 24.0).abs() < 1e-9);
        let text = serde_json::to_string(&estimate).unwrap();
        assert!(text.contains("\"placed_by_profile\":true"), "{text}");
        let read: Estimate = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (read.sampled, read.profile),
            (estimate.sampled, estimate.profile)
        );
    }
}
