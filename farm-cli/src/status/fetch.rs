//! `farm status`'s reading: the manifest, the Batch jobs, the frame scan, the failure logs, the
//! archive and the task records, each through the ports.

use anyhow::anyhow;
use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::scheduler::Scheduler;
use farm_core::storage::get_json;
use farm_core::tasks::TaskRecord;
use farm_core::{JobKeys, Storage};
use farm_jobs::tasks::{job_records_cached, RecordCache};
use farm_jobs::{scan_frames, JobTicket, ScanError};
use futures::StreamExt;

use super::judge::{
    count_frames, failure_reason, job_report, judge_outcome, Archive, JobReport, MovieReport,
    StatusReport,
};
use super::spend::{self, Spend};
use crate::aws::Site;

/// Logs of failed frames read at once.
const LOG_READS_IN_FLIGHT: usize = 8;
/// Failed frames whose log is read for a reason; the others are counted and listed only.
const MAX_FAILED_DETAILS: usize = 50;

/// Builds the report: the manifest, the jobs, the frames and the archive.
pub async fn report<S: Storage, B: Scheduler>(
    site: &Site,
    storage: &S,
    bucket: &str,
    scheduler: &B,
    key: &str,
) -> anyhow::Result<Fetched> {
    report_cached(
        site,
        storage,
        bucket,
        scheduler,
        key,
        &mut RecordCache::default(),
    )
    .await
}

/// [`report`], reading only the task records `cache` does not hold yet (`--watch` reads the
/// job again and again; a job of 10,000 tasks has 10,000 records).
pub(super) async fn report_cached<S: Storage, B: Scheduler>(
    site: &Site,
    storage: &S,
    bucket: &str,
    scheduler: &B,
    key: &str,
    cache: &mut RecordCache,
) -> anyhow::Result<Fetched> {
    let manifest = site.manifest(storage, bucket, key).await?;
    let mut report = manifest_report(&manifest, bucket, key);
    let keys = JobKeys::new(key);
    if manifest.status == ManifestStatus::Submitted {
        // Best effort: a missing or unreadable rejection is no reason to fail the report.
        if let Ok(rejected) = get_json::<JobManifest>(storage, &keys.rejection()).await {
            if rejected.created > manifest.created {
                report.later_rejection = rejected.message;
            }
        }
    }
    if manifest.status == ManifestStatus::Rejected {
        return Ok(Fetched {
            report,
            records: Vec::new(),
        });
    }
    let (render_job, zip_job) = describe_jobs(scheduler, &manifest).await?;
    report.render_job = render_job;
    report.zip_job = zip_job;

    let ticket = JobTicket::from_manifest(&manifest)?;
    let frames = ticket.plan.frames();
    let version = ticket.version();
    let logs = async {
        let prefix = keys.logs_prefix();
        storage
            .list(&prefix)
            .await
            .map_err(|e| site.storage_error(&e, &format!("listing `{prefix}`")))
    };
    // The task records at the key, best effort, as the cost so far is: without them, a task
    // that failed before its first frame shows as pending, and every frame is read by the scan.
    let records = async {
        let read = job_records_cached(storage, &keys, None, cache).await;
        Ok(read
            .inspect_err(|e| tracing::warn!("cannot read the task records: {e}"))
            .unwrap_or_default())
    };
    let (log_objects, mut records) = futures::try_join!(logs, records)?;
    // The records vouch for the frames they uploaded (the scan checks each one's version).
    let scan = scan_frames(storage, &keys, frames.as_slice(), &version, &records)
        .await
        .map_err(|e| scan_error(site, &e, &keys))?;
    // The job's own records (its upload's ETag) count.
    if let Some(etag) = manifest.etag.as_deref() {
        records.retain(|r| r.source_etag.as_deref() == Some(etag));
    }
    let (counts, mut failed) = count_frames(&keys, &ticket.plan, &scan, &log_objects, &records);
    let reasons: Vec<Option<String>> =
        futures::stream::iter(failed.iter().take(MAX_FAILED_DETAILS))
            .map(|f| async move {
                if f.reason.is_some() {
                    return f.reason.clone();
                }
                let log = storage.get(&f.log).await.ok()?;
                failure_reason(&String::from_utf8_lossy(&log))
            })
            .buffered(LOG_READS_IN_FLIGHT)
            .collect()
            .await;
    for (frame, reason) in failed.iter_mut().zip(reasons) {
        frame.reason = reason;
    }
    report.frames = Some(counts);
    report.failed_frames = failed;
    report.archive = storage
        .head(&keys.zip())
        .await
        .map_err(|e| site.storage_error(&e, &format!("reading `{}`", keys.zip())))?
        .map(|meta| Archive {
            key: meta.key,
            size: meta.size,
        });
    (report.movie_job, report.movie) = movie(site, storage, scheduler, &manifest).await?;
    judge_outcome(&mut report);
    Ok(Fetched { report, records })
}

/// The report of what `job.json` says, before the jobs, frames and archive are looked at.
pub(super) fn manifest_report(manifest: &JobManifest, bucket: &str, key: &str) -> StatusReport {
    StatusReport {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        status: manifest.status,
        message: manifest.message.clone(),
        created: manifest.created,
        blender: manifest.blender.map(|b| b.to_string()),
        saved_by: manifest.saved_by.map(|b| b.to_string()),
        blender_reason: manifest.blender_reason.clone(),
        engine: manifest.engine,
        warnings: manifest.warnings.clone(),
        scene: manifest.scene.clone(),
        frames: None,
        failed_frames: Vec::new(),
        render_job: None,
        zip_job: None,
        archive: None,
        movie_job: None,
        movie: None,
        complete: false,
        problems: Vec::new(),
        later_rejection: None,
        dependencies: manifest.dependencies.clone(),
    }
}

/// What `farm status` read: the report, and the job's task records (the cost so far).
#[derive(Debug)]
pub struct Fetched {
    pub report: StatusReport,
    pub records: Vec<TaskRecord>,
}

/// Describes the manifest's render and zip jobs.
pub async fn describe_jobs<B: Scheduler>(
    scheduler: &B,
    manifest: &JobManifest,
) -> anyhow::Result<(Option<JobReport>, Option<JobReport>)> {
    let ids: Vec<String> = [&manifest.render_job_id, &manifest.zip_job_id]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if ids.is_empty() {
        return Ok((None, None));
    }
    let statuses = scheduler.describe(&ids).await.map_err(|e| {
        let hint = if e.is_transient() {
            "; check the network and your AWS configuration, then retry"
        } else {
            ""
        };
        anyhow!("asking AWS Batch about the jobs: {e}{hint}")
    })?;
    let find = |id: &Option<String>| {
        id.as_deref()
            .map(|id| job_report(id, statuses.iter().find(|s| s.id == id)))
    };
    Ok((find(&manifest.render_job_id), find(&manifest.zip_job_id)))
}

/// A movie scene's movie job and movie (`None`s for a job of stills).
async fn movie<S: Storage, B: Scheduler>(
    site: &Site,
    storage: &S,
    scheduler: &B,
    manifest: &JobManifest,
) -> anyhow::Result<(Option<JobReport>, Option<MovieReport>)> {
    let Some(extension) = &manifest.movie else {
        return Ok((None, None));
    };
    let key = JobKeys::new(manifest.key.as_str()).movie(extension);
    let size = storage
        .head(&key)
        .await
        .map_err(|e| site.storage_error(&e, &format!("reading `{key}`")))?
        .map(|meta| meta.size);
    let job = match &manifest.movie_job_id {
        Some(id) => {
            let statuses = scheduler
                .describe(std::slice::from_ref(id))
                .await
                .map_err(|e| anyhow!("asking AWS Batch about the movie job: {e}"))?;
            Some(job_report(id, statuses.iter().find(|s| &s.id == id)))
        }
        None => None,
    };
    Ok((job, Some(MovieReport { key, size })))
}

/// The cost so far and the ETA of a submitted job, from its task records.
pub(super) fn job_spend(site: &Site, fetched: &Fetched) -> Option<Spend> {
    (fetched.report.status == ManifestStatus::Submitted)
        .then(|| spend::spend(&fetched.records, &fetched.report, spend::prices(site)))
}

/// A failed frame scan, with what to do.
pub fn scan_error(site: &Site, err: &ScanError, keys: &JobKeys) -> anyhow::Error {
    match err {
        ScanError::Storage(e) => {
            site.storage_error(e, &format!("reading `{}`", keys.frames_prefix()))
        }
        other => anyhow!("{other}"),
    }
}
