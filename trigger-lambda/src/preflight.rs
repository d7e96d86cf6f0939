//! The dependency gate before any job: the project's files must be packed or in the bucket
//! beside the `.blend` (`farm_jobs::deps`), or the request is rejected listing each missing file
//! and the key where the farm looked. `missing=ok` renders anyway, with the list as warnings.

use farm_blend::BlendInfo;
use farm_core::deps::{allows_missing, DependencyRecord, SharedPrefixes};
use farm_core::manifest::JobManifest;
use farm_core::storage::StorageError;
use farm_core::{JobKeys, Storage};
use farm_jobs::deps::{self, Preflight};
use farm_jobs::submit::{write_rejected_manifest, JobExtras};

use crate::error::TriggerError;
use crate::event::BlendRecord;
use crate::handler::RecordOutcome;

/// What the gate decided.
#[derive(Debug)]
pub enum Gate {
    /// Submit, with these extras (the dependency record and the renderer's list).
    Proceed(JobExtras),
    /// Rejected (recorded in `job.json`), or the object is gone: nothing to submit.
    Done(RecordOutcome),
}

/// Checks the dependencies of the `.blend` of `record` (with `etag`) for the job's `frames`,
/// given its tags, confined to the upload's own top-level folder and the `shared` prefixes.
pub async fn gate<S: Storage>(
    storage: &S,
    record: &BlendRecord,
    etag: &str,
    tags: &[(String, String)],
    frames: &[i32],
    blend: &Result<BlendInfo, String>,
    shared: &SharedPrefixes,
) -> Result<Gate, TriggerError> {
    let key = record.key.as_str();
    let allow = allows_missing(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let checked = match blend {
        Ok(info) => {
            match deps::check(storage, key, info, Some(frames), allow, Some(shared)).await {
                Ok(checked) => Ok(checked),
                Err(StorageError::NotFound { .. } | StorageError::Changed { .. }) => {
                    tracing::info!(bucket = %record.bucket, key, "a file was deleted or replaced during the dependency check: nothing to do");
                    return Ok(Gate::Done(RecordOutcome::Gone {
                        bucket: record.bucket.clone(),
                        key: key.to_owned(),
                    }));
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(reason) => Err(reason.clone()),
    };
    let mut found = match checked {
        Ok(Preflight::Ready(found)) => found,
        Ok(Preflight::Missing(found)) => {
            let message = found.missing_message();
            tracing::error!(bucket = %record.bucket, key, missing = found.missing.len(), "request rejected, no job submitted: {message}");
            let mut manifest = JobManifest::rejected(
                &record.bucket,
                key,
                Some(etag.to_owned()),
                message.clone(),
                jiff::Timestamp::now(),
            );
            manifest.version_id.clone_from(&record.version_id);
            manifest.dependencies = Some(found);
            let written = write_rejected_manifest(storage, &manifest).await?;
            tracing::info!(key = %written, "rejection recorded");
            return Ok(Gate::Done(RecordOutcome::Rejected {
                bucket: record.bucket.clone(),
                key: key.to_owned(),
                message,
            }));
        }
        Err(reason) => DependencyRecord {
            warnings: vec![format!(
                "the farm could not read the .blend to check its dependencies ({reason}): files that are not packed may render missing"
            )],
            ..DependencyRecord::default()
        },
    };
    for warning in &found.warnings {
        tracing::warn!(bucket = %record.bucket, key, "{warning}");
    }
    deps::write_dependency_list(storage, &JobKeys::new(key), &mut found).await?;
    tracing::info!(bucket = %record.bucket, key, dependencies = %found.summary(), "dependencies checked");
    Ok(Gate::Proceed(JobExtras {
        dependencies: Some(found),
        ..JobExtras::default()
    }))
}
