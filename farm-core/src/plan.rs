//! Chunking a frame list into the children of a Batch array job.

use crate::frames::FrameList;

/// AWS Batch array jobs have 2..=10,000 children.
pub const MAX_ARRAY_SIZE: usize = 10_000;
/// Frames per array child when the upload does not say.
pub const DEFAULT_CHUNK_SIZE: u32 = 1;

/// Why a plan could not be made or queried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("`{value}` is not a chunk size: `chunk=K` takes a whole number of frames per task, at least 1")]
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
}
