//! Errors that fail an invocation (so that Lambda retries it).
//!
//! Only S3 and Batch failures end up here. A request that can never succeed (bad tags, a file
//! that is not a .blend) is answered with a rejected `job.json` instead, because a retry could
//! not fix it.

use farm_core::scheduler::SchedulerError;
use farm_core::storage::StorageError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// S3 failed (after the SDK's retries).
    #[error("s3: {0}")]
    Storage(#[from] StorageError),
    /// AWS Batch failed (after the SDK's retries).
    #[error("batch: {0}")]
    Scheduler(#[from] SchedulerError),
    /// Submitting failed (S3, Batch, or another delivery is submitting the same request).
    #[error(transparent)]
    Submit(#[from] farm_jobs::SubmitError),
    /// Some records of an event failed; the others were handled.
    #[error("{failed} of {total} S3 event record(s) failed and the event will be retried (records already submitted are not submitted again): {}", errors.join("; "))]
    Records {
        failed: usize,
        total: usize,
        errors: Vec<String>,
    },
}
