//! Exit codes of the `renderer` and `zipper` binaries.
//!
//! AWS Batch matches these in the job definitions' `retryStrategy.evaluateOnExit` rules
//! (`infra/farm.yaml`): bad input exits at once, transient failures and interruptions retry.

/// Everything asked for was done.
pub const SUCCESS: i32 = 0;
/// The configuration was unusable (a missing or malformed flag or variable). No retry.
pub const USAGE: i32 = 2;
/// Bad input no retry can fix: not a .blend, a missing object, a scene that fails to render,
/// an array index outside the plan, frames missing when zipping. No retry.
pub const BAD_INPUT: i32 = 3;
/// A failure worth another attempt: S3 or network errors after the SDK's own retries, Blender
/// killed by a signal. Batch retries.
pub const TRANSIENT: i32 = 4;
/// The job's `.blend` was replaced (or deleted) after the job was submitted: this job's frames
/// would mix versions, so it stops and leaves the key to the newer upload's own job. No retry.
pub const SUPERSEDED: i32 = 5;
/// Stopped by SIGTERM (a Batch cancel or a Fargate Spot reclaim), 128 + 15. Batch retries.
pub const INTERRUPTED: i32 = 143;

/// How a failure leaves the process, which decides its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Usage,
    BadInput,
    Transient,
    Superseded,
    Interrupted,
}

impl FailureClass {
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Usage => USAGE,
            Self::BadInput => BAD_INPUT,
            Self::Transient => TRANSIENT,
            Self::Superseded => SUPERSEDED,
            Self::Interrupted => INTERRUPTED,
        }
    }
}
