//! Chunking a frame list into the children of a Batch array job.

use std::num::NonZeroUsize;

use crate::frames::FrameList;

/// AWS Batch array jobs have 2..=10,000 children.
pub const MAX_ARRAY_SIZE: usize = 10_000;
/// Frames per array child when the upload does not say.
pub const DEFAULT_CHUNK_SIZE: u32 = 1;
/// vCPUs of one render task: the render job definitions' size (ADR 0103), so a compute
/// environment of `MaxvCpus` runs `MaxvCpus / RENDER_TASK_VCPUS` render tasks at once.
pub const RENDER_TASK_VCPUS: u32 = 4;
/// `chunk=auto`: the chunk size is picked from the farm's task slots ([`Chunking::Auto`]).
pub const CHUNK_AUTO: &str = "auto";

/// What a request says about chunk size: a number of frames, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// `chunk=K`: K frames per task.
    Frames(u32),
    /// `chunk=auto`: the fewest chunks that keep every task slot busy, resolved where the plan
    /// is made (the trigger knows the farm's slots, `farm render` its workers); see
    /// [`auto_chunk_size`].
    Auto,
}

impl Chunking {
    /// Parses the value of a `chunk=` tag: a whole number of frames, at least 1, or `auto`.
    pub fn parse(value: &str) -> Result<Self, PlanError> {
        if value.trim().eq_ignore_ascii_case(CHUNK_AUTO) {
            return Ok(Self::Auto);
        }
        Plan::parse_chunk_size(value).map(Self::Frames)
    }

    /// The chunk size for `frames` frames over `slots` task slots (`None`: unknown, as many
    /// tasks as an array job allows).
    pub fn chunk_size(self, frames: usize, slots: Option<NonZeroUsize>) -> u32 {
        match self {
            Self::Frames(size) => size,
            Self::Auto => auto_chunk_size(frames, slots),
        }
    }
}

impl std::str::FromStr for Chunking {
    type Err = PlanError;
    fn from_str(value: &str) -> Result<Self, PlanError> {
        Self::parse(value)
    }
}

/// Render tasks a compute environment of `max_vcpus` runs at once: `max_vcpus / 4`, at least 1.
pub fn task_slots(max_vcpus: u32) -> NonZeroUsize {
    NonZeroUsize::new((max_vcpus / RENDER_TASK_VCPUS) as usize).unwrap_or(NonZeroUsize::MIN)
}

/// `chunk=auto`: with `S` slots and `N` frames, `ceil(N / S)` frames per task, so every slot gets
/// one task and no task pays an image pull another could have saved. Unknown slots (and more
/// slots than an array job has children) count as [`MAX_ARRAY_SIZE`].
pub fn auto_chunk_size(frames: usize, slots: Option<NonZeroUsize>) -> u32 {
    let slots = slots.map_or(MAX_ARRAY_SIZE, |s| s.get().min(MAX_ARRAY_SIZE));
    u32::try_from(frames.div_ceil(slots).max(1)).unwrap_or(u32::MAX)
}

/// Why a plan could not be made or queried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("`{value}` is not a chunk size: `chunk=K` takes a whole number of frames per task, at least 1, or `auto` (the fewest chunks that keep every task slot busy)")]
    BadChunkSize { value: String },
    #[error(
        "{frames} frames in chunks of {chunk_size} make {chunks} tasks, more than the {MAX_ARRAY_SIZE} \
         an AWS Batch array job allows: use chunk={fitting} or more"
    )]
    TooManyChunks {
        frames: usize,
        chunk_size: u32,
        chunks: usize,
        fitting: usize,
    },
    #[error("array index {index} is outside the plan: it has {chunks} chunk(s), indexes 0..={last}", last = chunks - 1)]
    IndexOutOfPlan { index: usize, chunks: usize },
}

/// A frame list cut into chunks of `chunk_size` frames; chunk `i` is array child `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    frames: FrameList,
    chunk_size: u32,
}

impl Plan {
    pub fn new(frames: FrameList, chunk_size: u32) -> Result<Self, PlanError> {
        if chunk_size == 0 {
            return Err(PlanError::BadChunkSize {
                value: "0".to_owned(),
            });
        }
        let chunks = frames.len().div_ceil(chunk_size as usize);
        if chunks > MAX_ARRAY_SIZE {
            return Err(PlanError::TooManyChunks {
                frames: frames.len(),
                chunk_size,
                chunks,
                fitting: frames.len().div_ceil(MAX_ARRAY_SIZE),
            });
        }
        Ok(Self { frames, chunk_size })
    }

    /// Parses the value of a `chunk=K` tag.
    pub fn parse_chunk_size(value: &str) -> Result<u32, PlanError> {
        match value.trim().parse::<u32>() {
            Ok(size) if size >= 1 => Ok(size),
            _ => Err(PlanError::BadChunkSize {
                value: value.to_owned(),
            }),
        }
    }

    pub fn frames(&self) -> &FrameList {
        &self.frames
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    pub fn chunk_count(&self) -> usize {
        self.frames.len().div_ceil(self.chunk_size as usize)
    }

    /// The Batch array size: `None` for a single chunk, which is submitted as a plain job
    /// because Batch refuses arrays smaller than 2.
    pub fn array_size(&self) -> Option<usize> {
        Some(self.chunk_count()).filter(|&n| n > 1)
    }

    /// The frames array child `index` renders.
    pub fn chunk(&self, index: usize) -> Result<&[i32], PlanError> {
        self.frames
            .as_slice()
            .chunks(self.chunk_size as usize)
            .nth(index)
            .ok_or(PlanError::IndexOutOfPlan {
                index,
                chunks: self.chunk_count(),
            })
    }

    pub fn chunks(&self) -> impl Iterator<Item = &[i32]> {
        self.frames.as_slice().chunks(self.chunk_size as usize)
    }

    /// The array child that renders `frame`, if the plan has it.
    pub fn index_of(&self, frame: i32) -> Option<usize> {
        let position = self.frames.as_slice().binary_search(&frame).ok()?;
        Some(position / self.chunk_size as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::DEFAULT_MAX_FRAMES;

    fn plan(spec: &str, chunk: u32) -> Result<Plan, PlanError> {
        Plan::new(FrameList::parse(spec, DEFAULT_MAX_FRAMES).unwrap(), chunk)
    }

    #[test]
    fn chunks_cover_every_frame_once_in_order() {
        let plan = plan("1-10", 3).unwrap();
        assert_eq!(plan.chunk_count(), 4);
        assert_eq!(plan.array_size(), Some(4));
        assert_eq!(plan.chunk(0).unwrap(), &[1, 2, 3]);
        assert_eq!(plan.chunk(3).unwrap(), &[10]);
        let all: Vec<i32> = plan.chunks().flatten().copied().collect();
        assert_eq!(all, (1..=10).collect::<Vec<_>>());
        assert_eq!(plan.index_of(10), Some(3));
        assert_eq!(plan.index_of(4), Some(1));
        assert_eq!(plan.index_of(11), None);
    }

    #[test]
    fn one_chunk_is_a_plain_job() {
        let plan = plan("1-24", 24).unwrap();
        assert_eq!(plan.chunk_count(), 1);
        assert_eq!(plan.array_size(), None);
        let plan = super::Plan::new(FrameList::parse("5", 10).unwrap(), 1).unwrap();
        assert_eq!(plan.array_size(), None);
        assert_eq!(plan.chunk(0).unwrap(), &[5]);
    }

    #[test]
    fn index_outside_the_plan_is_an_error() {
        let plan = plan("1-4", 2).unwrap();
        let err = plan.chunk(2).unwrap_err();
        assert_eq!(
            err,
            PlanError::IndexOutOfPlan {
                index: 2,
                chunks: 2
            }
        );
        assert!(err.to_string().contains("indexes 0..=1"), "{err}");
    }

    #[test]
    fn too_many_chunks_names_a_chunk_size_that_fits() {
        let err = plan("1-25000", 1).unwrap_err();
        assert_eq!(
            err,
            PlanError::TooManyChunks {
                frames: 25_000,
                chunk_size: 1,
                chunks: 25_000,
                fitting: 3
            }
        );
        assert!(err.to_string().contains("use chunk=3"), "{err}");
        let fitting = plan("1-25000", 3).unwrap();
        assert_eq!(fitting.chunk_count(), 8_334);
        assert_eq!(
            plan("1-10000", 1).unwrap().array_size(),
            Some(MAX_ARRAY_SIZE)
        );
        assert!(plan("1-10001", 1).is_err());
    }

    #[test]
    fn chunk_size_parses_whole_positive_numbers_only() {
        assert_eq!(Plan::parse_chunk_size("4"), Ok(4));
        for bad in ["0", "-1", "x", "", "1.5", "99999999999"] {
            assert!(Plan::parse_chunk_size(bad).is_err(), "{bad:?}");
        }
        assert!(Plan::new(FrameList::parse("1", 1).unwrap(), 0).is_err());
    }

    #[test]
    fn chunking_is_a_size_or_auto() {
        assert_eq!(Chunking::parse("7"), Ok(Chunking::Frames(7)));
        assert_eq!(Chunking::parse(" auto "), Ok(Chunking::Auto));
        assert_eq!(Chunking::parse("AUTO"), Ok(Chunking::Auto));
        for bad in ["0", "automatic", "", "-3"] {
            let err = Chunking::parse(bad).unwrap_err().to_string();
            assert!(err.contains("or `auto`"), "{bad:?}: {err}");
        }
        let slots = NonZeroUsize::new(16);
        assert_eq!(Chunking::Frames(3).chunk_size(100, slots), 3);
        assert_eq!(Chunking::Auto.chunk_size(100, slots), 7);
    }

    #[test]
    fn auto_chunks_fill_every_slot_once() {
        let slots = |n| NonZeroUsize::new(n);
        // 64 vCPUs are 16 four-vCPU slots; 100 frames over 16 slots: 15 tasks of 7 (the last 2).
        assert_eq!(task_slots(64).get(), 16);
        assert_eq!(auto_chunk_size(100, Some(task_slots(64))), 7);
        let plan = Plan::new(FrameList::parse("1-100", 1000).unwrap(), 7).unwrap();
        assert_eq!(plan.chunk_count(), 15);
        assert_eq!(plan.chunk(14).unwrap(), &[99, 100]);
        // Fewer frames than slots: one frame each.
        assert_eq!(auto_chunk_size(10, slots(16)), 1);
        assert_eq!(auto_chunk_size(16, slots(16)), 1);
        assert_eq!(auto_chunk_size(17, slots(16)), 2);
        assert_eq!(auto_chunk_size(1, slots(1)), 1);
        assert_eq!(auto_chunk_size(250, slots(1)), 250);
        // Under 4 vCPUs is still one slot; 4096 vCPUs are 1024.
        assert_eq!(task_slots(0).get(), 1);
        assert_eq!(task_slots(7).get(), 1);
        assert_eq!(task_slots(4096).get(), 1024);
        // Unknown slots: as many tasks as an array job allows.
        assert_eq!(auto_chunk_size(5_000, None), 1);
        assert_eq!(auto_chunk_size(25_000, None), 3);
        assert_eq!(auto_chunk_size(25_000, slots(50_000)), 3);
    }
}
