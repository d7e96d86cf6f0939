//! The profile pass of an estimate (ADR 0016): every frame of the job (or an even stride of at
//! most [`PROFILE_MAX_FRAMES`]) rendered once at [`PROFILE_RESOLUTION_PERCENT`] of the scene's
//! resolution, with everything else the scene animates (samples, subdivision, geometry) as it
//! is, in one Blender session like a chunk's. Pure: which frames to profile, which frames the
//! profile says to render at full quality ([`place_samples`]), what the first frame of a session
//! pays beyond later frames ([`first_frame_extra`]), and every frame's seconds from the
//! full-quality samples shaped by the profile ([`profiled_seconds`]).

use serde::{Deserialize, Serialize};

use super::{frame_seconds, sample_frames, SampledFrame};

/// The profile renders every frame of a job of up to this many frames, else this many spread
/// evenly (first and last included).
pub const PROFILE_MAX_FRAMES: usize = 48;

/// Percent of the scene's resolution (per side) the profile renders at: 1/16 of the pixels.
pub const PROFILE_RESOLUTION_PERCENT: u8 = 25;

/// A profiled frame whose cost is more than this factor away from what the samples around it
/// predict (either way) is not like its neighbours: it is rendered as a sample of its own.
pub const OUTLIER_FACTOR: f64 = 1.5;

/// What the profile pass measured (`estimate.json`'s `profile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Percent of the scene's resolution the profile rendered at.
    pub resolution_percent: u8,
    /// The profiled frames' seconds as measured (the first frame's with its extra), in frame
    /// order.
    pub frames: Vec<SampledFrame>,
    /// Seconds the profile pass took, Blender's start-up included.
    pub seconds: f64,
}

impl Profile {
    /// The profiled frames as (frame, seconds), the first frame without what it paid for being
    /// the session's first ([`first_frame_extra`]).
    pub fn steady(&self) -> Vec<(i32, f64)> {
        let mut pairs: Vec<(i32, f64)> = self.frames.iter().map(|s| (s.frame, s.seconds)).collect();
        if let Some(first) = pairs.first_mut() {
            first.1 -= first_frame_extra(&self.frames);
        }
        pairs
    }
}

/// The frames the profile renders: the job's `frames` (sorted), at most [`PROFILE_MAX_FRAMES`]
/// of them spread evenly, and the `samples` (which the projection calibrates against).
pub fn profile_frames(frames: &[i32], samples: &[i32]) -> Vec<i32> {
    let mut picked = sample_frames(frames, PROFILE_MAX_FRAMES);
    picked.extend_from_slice(samples);
    picked.sort_unstable();
    picked.dedup();
    picked
}

/// Seconds the first frame of a Blender session pays beyond a later one (the whole scene's sync
/// and BVH build; with persistent data later frames sync only what changed): the first
/// profiled frame's seconds over the second's, 0 when it is not more. Resolution does not
/// change it, so the profile measures it for the full-quality samples and for each task.
pub fn first_frame_extra(profile: &[SampledFrame]) -> f64 {
    match profile {
        [first, second, ..] => (first.seconds - second.seconds).max(0.0),
        _ => 0.0,
    }
}

/// Profiled frames on each side a frame is compared with ([`place_samples`]).
const NEIGHBOURS: usize = 2;

/// The frames to render at full quality: `base` (sorted; first, middle and last by default)
/// and up to `extra` more: the profiled frames unlike their neighbours (more than
/// [`OUTLIER_FACTOR`] from the median of the [`NEIGHBOURS`] profiled frames on each side and
/// itself), the furthest first. A rise or a step is not unlike its neighbours: the profile
/// shapes it between the samples ([`profiled_seconds`]). `profile` is the steady profile
/// ([`Profile::steady`]), sorted by frame.
pub fn place_samples(base: &[i32], profile: &[(i32, f64)], extra: usize) -> Vec<i32> {
    let mut outliers: Vec<(i32, f64)> = profile
        .iter()
        .enumerate()
        .filter(|(_, (frame, _))| !base.contains(frame))
        .filter_map(|(i, &(frame, seconds))| {
            let window =
                &profile[i.saturating_sub(NEIGHBOURS)..(i + NEIGHBOURS + 1).min(profile.len())];
            let mut around: Vec<f64> = window.iter().map(|&(_, s)| s).collect();
            around.sort_by(f64::total_cmp);
            let median = around[around.len() / 2];
            let factor = (seconds > 0.0 && median > 0.0).then(|| (seconds / median).ln().abs())?;
            (factor > OUTLIER_FACTOR.ln()).then_some((frame, factor))
        })
        .collect();
    outliers.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut samples = base.to_vec();
    samples.extend(outliers.iter().take(extra).map(|&(frame, _)| frame));
    samples.sort_unstable();
    samples
}

/// Every frame's seconds of `frames` from the full-quality `samples` (frame, steady seconds;
/// sorted), shaped by the steady `profile` (sorted; empty: linear in the frame, as
/// [`frame_seconds`]). Between two adjacent samples a frame is linear in the frame when the
/// profile there is (every profiled frame within [`OUTLIER_FACTOR`] of the line between the
/// two samples' profile), else placed between the two samples' seconds by its profile seconds
/// (an unsampled step or spike: the frames beside a sampled spike stay at their own level).
/// Outside the samples, the nearest sample's seconds.
pub fn profiled_seconds(
    samples: &[(i32, f64)],
    profile: &[(i32, f64)],
    frames: &[i32],
) -> Vec<f64> {
    if profile.is_empty() || samples.len() < 2 {
        return frame_seconds(samples, frames);
    }
    let sample_frames: Vec<i32> = samples.iter().map(|&(f, _)| f).collect();
    let known = profile_at(profile, &sample_frames);
    let linear = frame_seconds(samples, frames);
    frames
        .iter()
        .zip(linear)
        .map(|(&frame, linear)| {
            let after = samples.partition_point(|&(f, _)| f < frame);
            if after == 0 || after == samples.len() || samples[after].0 == frame {
                return linear;
            }
            let ((a, sa), (b, sb)) = (samples[after - 1], samples[after]);
            let inside = profile.iter().filter(|&&(f, _)| f > a && f < b);
            let straight = inside
                .clone()
                .all(|&(f, seconds)| deviation(seconds, &known, f) <= OUTLIER_FACTOR.ln());
            let (pa, pb) = (known[after - 1].1, known[after].1);
            if straight || (pb - pa).abs() < f64::EPSILON {
                return linear;
            }
            let here = frame_seconds(profile, &[frame])[0];
            let t = ((here - pa) / (pb - pa)).clamp(0.0, 1.0);
            sa + (sb - sa) * t
        })
        .collect()
}

/// The steady profile's seconds at `frames` (linear between profiled frames).
fn profile_at(profile: &[(i32, f64)], frames: &[i32]) -> Vec<(i32, f64)> {
    frames
        .iter()
        .zip(frame_seconds(profile, frames))
        .map(|(&frame, seconds)| (frame, seconds))
        .collect()
}

/// How far (`|ln|` of the factor) `seconds` at `frame` is from the line through `known`.
fn deviation(seconds: f64, known: &[(i32, f64)], frame: i32) -> f64 {
    let predicted = frame_seconds(known, &[frame])[0];
    if predicted <= 0.0 || seconds <= 0.0 {
        return 0.0;
    }
    (seconds / predicted).ln().abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile of frames 1..=12 at `each` seconds, the first paying `extra` more.
    fn profile(each: impl Fn(i32) -> f64, extra: f64) -> Profile {
        Profile {
            resolution_percent: PROFILE_RESOLUTION_PERCENT,
            frames: (1..=12)
                .map(|frame| SampledFrame {
                    frame,
                    seconds: each(frame) + if frame == 1 { extra } else { 0.0 },
                    placed_by_profile: false,
                })
                .collect(),
            seconds: 10.0,
        }
    }

    #[test]
    fn the_profile_covers_short_jobs_whole_and_strides_long_ones() {
        let short: Vec<i32> = (1..=12).collect();
        assert_eq!(profile_frames(&short, &[1, 7, 12]), short);
        let long: Vec<i32> = (1..=1000).collect();
        let picked = profile_frames(&long, &[1, 501, 1000]);
        assert!(picked.len() <= PROFILE_MAX_FRAMES + 1, "{}", picked.len());
        assert!(picked.contains(&501) && picked[0] == 1 && picked.last() == Some(&1000));
    }

    #[test]
    fn the_first_frame_extra_is_what_it_paid_beyond_the_second() {
        let p = profile(|_| 0.2, 1.5);
        assert!((first_frame_extra(&p.frames) - 1.5).abs() < 1e-9);
        assert!((p.steady()[0].1 - 0.2).abs() < 1e-9);
        assert_eq!(first_frame_extra(&profile(f64::from, 0.0).frames), 0.0);
        assert_eq!(first_frame_extra(&p.frames[..1]), 0.0);
    }

    /// The three benchmark scenes' shapes (uniform, rising, one spike), with a profile that
    /// compresses the frames' differences (fixed costs dominate at a low resolution).
    #[test]
    fn the_profile_places_a_sample_on_a_spike_and_none_on_uniform_or_rising_frames() {
        let base = [1, 7, 12];
        type Case = (&'static str, fn(i32) -> f64, &'static [i32]);
        let cases: [Case; 4] = [
            ("uniform", |_| 0.20, &[1, 7, 12]),
            (
                "noisy",
                |f| if f % 2 == 0 { 0.24 } else { 0.18 },
                &[1, 7, 12],
            ),
            ("rising", |f| 0.2 + 0.01 * f64::from(f), &[1, 7, 12]),
            ("spike", |f| if f == 6 { 0.6 } else { 0.2 }, &[1, 6, 7, 12]),
        ];
        for (name, each, expected) in cases {
            let steady = profile(each, 1.0).steady();
            assert_eq!(place_samples(&base, &steady, 3), expected, "{name}");
        }
        let two_spikes = profile(|f| if f == 3 || f == 9 { 0.8 } else { 0.2 }, 0.0).steady();
        assert_eq!(
            place_samples(&base, &two_spikes, 1),
            [1, 3, 7, 12],
            "the budget"
        );
        assert_eq!(place_samples(&base, &two_spikes, 3), [1, 3, 7, 9, 12]);
    }

    #[test]
    fn a_sampled_spike_stays_on_its_frame_and_uniform_or_rising_frames_stay_linear() {
        let frames: Vec<i32> = (1..=12).collect();
        // Uniform and rising: the profile is straight, the seconds are the samples' line.
        let rising = profile(|f| 0.2 + 0.01 * f64::from(f), 1.0).steady();
        let samples = [(1, 1.0), (7, 2.2), (12, 3.2)];
        assert_eq!(
            profiled_seconds(&samples, &rising, &frames),
            frame_seconds(&samples, &frames)
        );
        // The spike: 8 s on frame 6 alone, its neighbours at their own 1 s.
        let spike = profile(|f| if f == 6 { 0.6 } else { 0.2 }, 1.0).steady();
        let samples = [(1, 1.0), (6, 8.0), (7, 1.0), (12, 1.0)];
        let seconds = profiled_seconds(&samples, &spike, &frames);
        let mut expected = vec![1.0; 12];
        expected[5] = 8.0;
        for (got, want) in seconds.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-9, "{seconds:?}");
        }
        // Without the profile the spike would leak into frames 2-5.
        assert!(frame_seconds(&samples, &frames)[3] > 4.0);
    }

    #[test]
    fn an_unsampled_step_follows_the_profile_between_the_samples() {
        let frames: Vec<i32> = (1..=12).collect();
        // Frames 1-4 cheap, 5-12 dear; samples only on 1 and 12.
        let step = profile(|f| if f < 5 { 0.2 } else { 0.8 }, 0.0).steady();
        let seconds = profiled_seconds(&[(1, 1.0), (12, 3.0)], &step, &frames);
        assert_eq!(seconds[..4], [1.0; 4]);
        assert_eq!(seconds[4..], [3.0; 8]);
        // No profile: linear, as before.
        let linear = profiled_seconds(&[(1, 1.0), (12, 3.0)], &[], &frames);
        assert_eq!(linear, frame_seconds(&[(1, 1.0), (12, 3.0)], &frames));
    }
}
