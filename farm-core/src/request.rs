//! A render request: what the tags on an upload (or the command line) ask for.

use crate::blender::OutputFormat;
use crate::engine::{Engine, UnknownEngine};
use crate::frames::{FrameList, FrameSpecError, FRAMES_SYNTAX};
use std::num::NonZeroUsize;
use std::str::FromStr;

use crate::plan::{Chunking, Plan, PlanError, DEFAULT_CHUNK_SIZE};
use crate::series::{BlenderPick, SeriesSyntaxError};

/// `frame=N`: render frames 1..=N.
pub const TAG_FRAME: &str = "frame";
/// `frames=<list>`: render exactly these frames.
pub const TAG_FRAMES: &str = "frames";
/// `chunk=K`: frames per array child; `chunk=auto`: the fewest chunks that keep every task slot
/// busy ([`Chunking::Auto`]).
pub const TAG_CHUNK: &str = "chunk";
/// `format=PNG|JPEG|OPEN_EXR|...`: override the scene's output format.
pub const TAG_FORMAT: &str = "format";
/// `engine=cycles|eevee|workbench`: render with this engine instead of the scene's own.
pub const TAG_ENGINE: &str = "engine";
/// `blender=4.5`: the Blender series to render with (one the farm runs; default: the farm's).
pub const TAG_BLENDER: &str = "blender";
/// `persistent=off`: render every frame of a chunk from scratch, without Cycles' persistent data
/// (ADR 0015); `persistent=on` is the default.
pub const TAG_PERSISTENT: &str = "persistent";
/// `estimate=N`: instead of the job, a scout job renders `N` sample frames of it (first, middle,
/// last for 3) and writes `<key>/estimate.json` ([`crate::estimate::EstimateFile`]); the tags
/// without it then submit the job itself.
pub const TAG_ESTIMATE: &str = "estimate";
/// Most sample frames `estimate=N` may ask for: one task renders them all.
pub const MAX_ESTIMATE_SAMPLES: u16 = 16;

/// How many frames one upload may request when the farm's `FARM_MAX_FRAMES` is not set (it may
/// be raised up to [`crate::frames::MAX_JOB_FRAMES`]).
pub const DEFAULT_REQUEST_MAX_FRAMES: usize = 10_000;

/// A validated request: frames, chunking, format, engine and Blender series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderRequest {
    pub plan: Plan,
    pub format: Option<OutputFormat>,
    /// The Blender series asked for (`blender=`, or `auto`); `None`: the farm's default. Which
    /// series runs is the farm's to say ([`crate::series::SeriesChoice::choose`]).
    pub blender: Option<BlenderPick>,
    /// Whether a chunk of several frames may keep Cycles' data between its frames
    /// (`persistent=off` says no; [`crate::blender::RenderCommand::persistent`]).
    pub persistent: bool,
    /// The engine the job renders with: the one asked for (`engine=`) until whoever read the
    /// scene resolves it with [`crate::engine::choose`]; `None` when neither happened (a job
    /// written before the farm chose engines, which ran Cycles).
    pub engine: Option<Engine>,
    /// `estimate=N`: a scout job rendering `N` sample frames instead of the job
    /// ([`TAG_ESTIMATE`]).
    pub estimate: Option<u16>,
}

/// Why tags did not make a request. Messages name the tag, the value and the accepted syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("both `frame={frame}` and `frames={frames}` are set: keep one (`frame=N` renders 1..=N, `frames=` takes {FRAMES_SYNTAX})")]
    Conflicting { frame: String, frames: String },
    #[error("tag `{tag}={value}` is invalid: {source}")]
    Frames {
        tag: &'static str,
        value: String,
        source: FrameSpecError,
    },
    #[error("tag `{TAG_CHUNK}={value}` is invalid: {source}")]
    Chunk { value: String, source: PlanError },
    #[error("tag `{TAG_FORMAT}={value}` is invalid: {source}")]
    Format {
        value: String,
        source: crate::blender::UnknownFormat,
    },
    #[error("tag `{TAG_ENGINE}={value}` is invalid: {source}")]
    Engine {
        value: String,
        source: UnknownEngine,
    },
    #[error("tag `{TAG_BLENDER}={value}` is invalid: {source}")]
    Blender {
        value: String,
        source: SeriesSyntaxError,
    },
    #[error("tag `{TAG_PERSISTENT}={value}` is invalid: use `on` (the default: a chunk keeps Cycles' data between its frames where that is safe) or `off` (every frame from scratch)")]
    Persistent { value: String },
    #[error("tag `{TAG_ESTIMATE}={value}` is invalid: use a number of sample frames from 1 to {MAX_ESTIMATE_SAMPLES} (3: first, middle and last)")]
    Estimate { value: String },
    #[error("{0}")]
    Plan(PlanError),
}

impl RenderRequest {
    /// Reads a request from an object's tags. `Ok(None)`: no frame tag, so nothing to render.
    /// `chunk=auto` is planned as if the farm's task slots were unknown (see
    /// [`Self::from_tags_with_slots`]).
    pub fn from_tags<'a>(
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
        max_frames: usize,
    ) -> Result<Option<Self>, RequestError> {
        Self::from_tags_with_slots(tags, max_frames, None)
    }

    /// [`Self::from_tags`] for a farm that runs `slots` render tasks at once, which `chunk=auto`
    /// fills ([`crate::plan::auto_chunk_size`]).
    pub fn from_tags_with_slots<'a>(
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
        max_frames: usize,
        slots: Option<NonZeroUsize>,
    ) -> Result<Option<Self>, RequestError> {
        let (mut frame, mut frames, mut chunk, mut format, mut blender, mut persistent, mut engine) =
            (None, None, None, None, None, None, None);
        let mut estimate = None;
        for (name, value) in tags {
            match name.trim() {
                TAG_FRAME => frame = Some(value),
                TAG_FRAMES => frames = Some(value),
                TAG_CHUNK => chunk = Some(value),
                TAG_FORMAT => format = Some(value),
                TAG_BLENDER => blender = Some(value),
                TAG_PERSISTENT => persistent = Some(value),
                TAG_ENGINE => engine = Some(value),
                TAG_ESTIMATE => estimate = Some(value),
                _ => {}
            }
        }
        let list = match (frame, frames) {
            (None, None) => return Ok(None),
            (Some(frame), Some(frames)) => {
                return Err(RequestError::Conflicting {
                    frame: frame.to_owned(),
                    frames: frames.to_owned(),
                })
            }
            (Some(count), None) => {
                FrameList::first(count, max_frames).map_err(|source| RequestError::Frames {
                    tag: TAG_FRAME,
                    value: count.to_owned(),
                    source,
                })?
            }
            (None, Some(spec)) => {
                FrameList::parse(spec, max_frames).map_err(|source| RequestError::Frames {
                    tag: TAG_FRAMES,
                    value: spec.to_owned(),
                    source,
                })?
            }
        };
        let chunk_size = match chunk {
            None => DEFAULT_CHUNK_SIZE,
            Some(value) => Chunking::parse(value)
                .map_err(|source| RequestError::Chunk {
                    value: value.to_owned(),
                    source,
                })?
                .chunk_size(list.len(), slots),
        };
        let format = parse_tag(format, |value, source| RequestError::Format {
            value,
            source,
        })?;
        let blender = parse_tag(blender, |value, source| RequestError::Blender {
            value,
            source,
        })?;
        let engine = parse_tag(engine, |value, source| RequestError::Engine {
            value,
            source,
        })?;
        let persistent = match persistent.map(|v| v.trim().to_ascii_lowercase()) {
            None => true,
            Some(v) if v == "on" => true,
            Some(v) if v == "off" => false,
            Some(_) => {
                return Err(RequestError::Persistent {
                    value: persistent.unwrap_or_default().to_owned(),
                })
            }
        };
        let estimate = estimate
            .map(|value| {
                value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..=MAX_ESTIMATE_SAMPLES).contains(n))
                    .ok_or_else(|| RequestError::Estimate {
                        value: value.to_owned(),
                    })
            })
            .transpose()?;
        let plan = Plan::new(list, chunk_size).map_err(RequestError::Plan)?;
        Ok(Some(Self {
            plan,
            format,
            blender,
            persistent,
            engine,
            estimate,
        }))
    }
}

/// A tag's value parsed, or the request error naming the value.
fn parse_tag<T: FromStr>(
    value: Option<&str>,
    error: impl FnOnce(String, T::Err) -> RequestError,
) -> Result<Option<T>, RequestError> {
    value
        .map(|v| v.parse::<T>().map_err(|source| error(v.to_owned(), source)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::BlenderSeries;

    fn from(tags: &[(&str, &str)]) -> Result<Option<RenderRequest>, RequestError> {
        RenderRequest::from_tags(tags.iter().copied(), 10_000)
    }

    #[test]
    fn frame_tag_renders_one_to_n_in_single_frame_chunks() {
        let request = from(&[("frame", "120")]).unwrap().unwrap();
        assert_eq!(request.plan.frames().canonical(), "1-120");
        assert_eq!(request.plan.chunk_size(), 1);
        assert_eq!(request.plan.array_size(), Some(120));
        assert_eq!(request.format, None);
        assert_eq!(request.blender, None);
        assert!(request.persistent);
    }

    #[test]
    fn persistent_tag_turns_persistent_data_off() {
        let request = from(&[("frame", "3"), ("persistent", "off")])
            .unwrap()
            .unwrap();
        assert!(!request.persistent);
        let request = from(&[("frame", "3"), ("persistent", " ON ")])
            .unwrap()
            .unwrap();
        assert!(request.persistent);
    }

    #[test]
    fn estimate_tag_asks_for_a_scout_of_n_samples() {
        assert_eq!(from(&[("frame", "3")]).unwrap().unwrap().estimate, None);
        let request = from(&[("frame", "30"), ("estimate", " 2 ")])
            .unwrap()
            .unwrap();
        assert_eq!(request.estimate, Some(2));
        for bad in ["0", "17", "x", "-1", ""] {
            let err = from(&[("frame", "3"), ("estimate", bad)]).unwrap_err();
            assert_eq!(
                err,
                RequestError::Estimate {
                    value: bad.to_owned()
                }
            );
            assert!(err.to_string().contains("from 1 to 16"), "{err}");
        }
    }

    #[test]
    fn engine_tag_picks_an_engine() {
        let request = from(&[("frame", "3"), ("engine", " EEVEE ")])
            .unwrap()
            .unwrap();
        assert_eq!(request.engine, Some(Engine::Eevee));
    }

    #[test]
    fn blender_tag_picks_a_series() {
        for (value, want) in [
            ("4.5", BlenderPick::Series(BlenderSeries::new(4, 5))),
            (" 4.2 ", BlenderPick::Series(BlenderSeries::new(4, 2))),
            ("auto", BlenderPick::Auto),
        ] {
            let request = from(&[("frame", "3"), ("blender", value)])
                .unwrap()
                .unwrap();
            assert_eq!(request.blender, Some(want), "{value:?}");
        }
    }

    #[test]
    fn frames_chunk_and_format_tags_combine() {
        let request = from(&[
            ("frames", "1-10 20"),
            ("chunk", "4"),
            ("format", "open_exr"),
            ("owner", "x"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(request.plan.frames().canonical(), "1-10 20");
        assert_eq!(request.plan.chunk_count(), 3);
        assert_eq!(request.format, Some(OutputFormat::OpenExr));
    }

    #[test]
    fn chunk_auto_fills_the_farms_slots() {
        let tags = [("frame", "100"), ("chunk", "auto")];
        let slots = Some(crate::plan::task_slots(64));
        let request = RenderRequest::from_tags_with_slots(tags, 10_000, slots)
            .unwrap()
            .unwrap();
        assert_eq!(request.plan.chunk_size(), 7);
        assert_eq!(request.plan.chunk_count(), 15);
        // A number is a number whatever the slots.
        let request =
            RenderRequest::from_tags_with_slots([("frame", "100"), ("chunk", "3")], 10_000, slots)
                .unwrap()
                .unwrap();
        assert_eq!(request.plan.chunk_size(), 3);
        // Unknown slots: one frame per task while an array job has room.
        let request = from(&tags).unwrap().unwrap();
        assert_eq!(request.plan.chunk_size(), 1);
        assert_eq!(request.plan.chunk_count(), 100);
    }

    #[test]
    fn no_frame_tag_is_no_request() {
        assert_eq!(from(&[]), Ok(None));
        assert_eq!(from(&[("chunk", "2")]), Ok(None));
    }

    #[test]
    fn bad_tags_name_the_tag_the_value_and_the_syntax() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("frame", "10"), ("frames", "1-5")],
                "both `frame=10` and `frames=1-5`",
            ),
            (&[("frame", "abc")], "tag `frame=abc` is invalid"),
            (&[("frame", "0")], "tag `frame=0` is invalid"),
            (&[("frames", "5-1")], "tag `frames=5-1` is invalid"),
            (&[("frames", "1-10:0")], "tag `frames=1-10:0` is invalid"),
            (&[("frames", "1-20000")], "more than 10000 frames"),
            (
                &[("frame", "5"), ("chunk", "0")],
                "tag `chunk=0` is invalid",
            ),
            (
                &[("frame", "5"), ("format", "GIF")],
                "tag `format=GIF` is invalid",
            ),
            (
                &[("frame", "5"), ("engine", "octane")],
                "tag `engine=octane` is invalid: `octane` is not a render engine the farm runs: use cycles, eevee or workbench",
            ),
            (
                &[("frame", "5"), ("blender", "latest")],
                "tag `blender=latest` is invalid",
            ),
            (
                &[("frame", "5"), ("blender", "4.2.23")],
                "tag `blender=4.2.23` is invalid: `4.2.23` names a patch release; use the series `4.2`",
            ),
            (
                &[("frame", "5"), ("persistent", "no")],
                "tag `persistent=no` is invalid: use `on`",
            ),
        ];
        for (tags, needle) in cases {
            let err = from(tags).unwrap_err().to_string();
            assert!(err.contains(needle), "{tags:?}: {err}");
        }
        let err = from(&[("frames", "x")]).unwrap_err().to_string();
        assert!(err.contains(FRAMES_SYNTAX), "{err}");
    }
}
