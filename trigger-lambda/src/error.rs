//! Errors that fail an invocation (so that Lambda retries it).
//!
//! Only S3 and Batch failures end up here. A request that can never succeed (bad tags, a file
//! that is not a .blend) is answered with a rejected `job.json` instead, because a retry could
//! not fix it.

use farm_core::scheduler::SchedulerError;
use farm_core::storage::StorageError;

use crate::tags::TagError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// S3 failed (after the SDK's retries).
    #[error("s3: {0}")]
    Storage(#[from] StorageError),
    /// AWS Batch failed (after the SDK's retries).
    #[error("batch: {0}")]
    Scheduler(#[from] SchedulerError),
    /// GetObjectTagging failed (after the SDK's retries).
    #[error("s3: {0}")]
    Tags(#[from] TagError),
    /// The request marker kept disappearing under us: other deliveries are racing on it.
    #[error("request marker `{key}` was created and removed by other deliveries {attempts} times in a row; the event will be retried")]
    MarkerContention { key: String, attempts: u32 },
    /// Some records of an event failed; the others were handled.
    #[error("{failed} of {total} S3 event record(s) failed and the event will be retried (records already submitted are not submitted again): {}", errors.join("; "))]
    Records {
        failed: usize,
        total: usize,
        errors: Vec<String>,
    },
}
