//! `farm cancel` and `farm retry`: acting on a submitted job's Batch jobs.

use anyhow::{anyhow, bail};
use farm_core::frames::compact;
use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::scheduler::{JobState, Scheduler};
use farm_core::series::BlenderPick;
use farm_core::Storage;
use farm_core::{FrameList, JobKeys, Plan, RenderRequest};
use farm_io::BatchTargets;
use farm_jobs::{scan_frames, submit_retry, JobTicket, SourceObject, SubmitError};

use crate::aws::{Aws, Site};
use crate::cli::{CancelArgs, RetryArgs};
use crate::shell_quote;
use crate::status::{describe_jobs, scan_error, unfinished, JobReport};

/// The reason recorded on jobs `farm cancel` terminates.
pub const CANCEL_REASON: &str = "cancelled with farm cancel";

fn scheduler_error(err: &farm_core::scheduler::SchedulerError, doing: &str) -> anyhow::Error {
    let hint = if err.is_transient() {
        "; check the network and your AWS configuration, then retry"
    } else {
        ""
    };
    anyhow!("{doing}: {err}{hint}")
}

fn submitted(manifest: &JobManifest, what: &str) -> anyhow::Result<()> {
    if manifest.status == ManifestStatus::Rejected {
        bail!(
            "nothing to {what}: the trigger rejected the request for `{}`: {}",
            manifest.key,
            manifest.message.as_deref().unwrap_or("no reason given")
        );
    }
    Ok(())
}

/// Runs `farm cancel`: terminates the zip job, then the render job (and its children).
pub async fn cancel(args: &CancelArgs) -> anyhow::Result<()> {
    let aws = Aws::load().await;
    let storage = aws.storage(&args.bucket);
    let scheduler = aws.scheduler(None);
    let manifest = aws
        .site()
        .manifest(&storage, &args.bucket, &args.key)
        .await?;
    submitted(&manifest, "cancel")?;
    let (render, zip) = describe_jobs(&scheduler, &manifest).await?;
    for (label, job) in [("zip", zip), ("render", render)] {
        let Some(job) = job else { continue };
        if job.state.is_done() {
            println!("{label} job {}: already {}", job.id, job.state);
            continue;
        }
        scheduler
            .cancel(&job.id, CANCEL_REASON)
            .await
            .map_err(|e| scheduler_error(&e, &format!("terminating the {label} job {}", job.id)))?;
        println!("{label} job {}: terminated (was {})", job.id, job.state);
    }
    Ok(())
}

/// Runs `farm retry`.
///
/// Submits a render job for the frames of the job that are not current (missing, or rendered
/// from another upload or in another format: [`farm_jobs::scan_frames`]), and a zip job that
/// depends on it and archives *all* of the job's frames; `<key>/job.json` then describes the
/// new jobs with the whole frame list, so `farm status` keeps counting every frame.
pub async fn retry(args: &RetryArgs) -> anyhow::Result<()> {
    let aws = Aws::load().await;
    let site = aws.site();
    let storage = aws.storage(&args.bucket);
    let (k, b) = (shell_quote(&args.key), shell_quote(&args.bucket));
    let manifest = site.manifest(&storage, &args.bucket, &args.key).await?;
    submitted(&manifest, "retry")?;
    let targets = retry_targets(args, &manifest)?;
    let scheduler = aws.scheduler(Some(targets));
    let (render, zip) = describe_jobs(&scheduler, &manifest).await?;
    if let Some((label, job)) = unfinished(&render, &zip) {
        bail!(
            "the {label} job {} is still {}: wait for it to end (farm status {k} --bucket {b}) or stop it (farm cancel {k} --bucket {b}), then retry",
            job.id,
            job.state
        );
    }
    let mut ticket = JobTicket::from_manifest(&manifest)?;
    let frames = ticket.plan.frames().clone();
    let format = ticket.format;
    let source = source_object(&site, &storage, &args.bucket, &args.key).await?;
    if manifest
        .etag
        .as_deref()
        .is_some_and(|etag| etag != source.etag)
    {
        bail!(
            "`{}` was replaced since the job was submitted: its frames would mix two versions. The new upload gets its own job when it is tagged (farm submit, or aws s3api put-object-tagging)",
            args.key
        );
    }
    ticket.source_etag = Some(source.etag.clone());
    let version = ticket.version();
    let keys = JobKeys::new(args.key.as_str());
    let scan = scan_frames(&storage, &keys, frames.as_slice(), &version, &[])
        .await
        .map_err(|e| scan_error(&site, &e, &keys))?;
    let Ok(missing) = FrameList::from_frames(scan.not_current()) else {
        println!(
            "nothing is missing: all {} frames of `{}` are in s3://{}/{}",
            frames.len(),
            args.key,
            args.bucket,
            keys.frames_prefix()
        );
        if zip_failed(zip.as_ref()) {
            println!("the archive was not made: retrying renders no frame; run the zip job again from the AWS Batch console");
        }
        return Ok(());
    };
    let (render_request, whole_request) = retry_requests(&manifest, &missing, &frames, format)?;
    let source = SourceObject {
        saved_by: manifest.saved_by,
        scene: manifest.scene.clone(),
        movie: manifest.movie.clone(),
        views: manifest.views.clone(),
        ..source
    };
    let new = submit_retry(
        &storage,
        &scheduler,
        &source,
        &render_request,
        &whole_request,
    )
    .await
    .map_err(|e| match e {
        SubmitError::Scheduler(e) => scheduler_error(&e, "submitting the retry"),
        SubmitError::Storage(e) => site.storage_error(&e, "writing the job manifest"),
        other => anyhow!(other),
    })?;
    println!(
        "submitted a retry of {} missing frame(s) of {} ({}) in {} task(s)",
        missing.len(),
        frames.len(),
        compact(missing.as_slice(), " "),
        render_request.plan.chunk_count()
    );
    println!(
        "render job {}, zip job {} (archives all {} frames)",
        new.render_job_id.as_deref().unwrap_or("?"),
        new.zip_job_id.as_deref().unwrap_or("?"),
        frames.len()
    );
    println!("watch it:  farm status {k} --bucket {b}");
    Ok(())
}

/// The retry's render request (the frames not current) and the whole job's (for `job.json` and
/// the zip job), on the Blender series the job ran, which `job.json` records with what the file
/// was saved with, so the new `job.json` keeps both and its warnings.
fn retry_requests(
    manifest: &JobManifest,
    missing: &FrameList,
    frames: &FrameList,
    format: Option<farm_core::blender::OutputFormat>,
) -> anyhow::Result<(RenderRequest, RenderRequest)> {
    let chunk = manifest.chunk_size.max(1);
    let request = |frames: &FrameList| -> anyhow::Result<RenderRequest> {
        Ok(RenderRequest {
            plan: Plan::new(frames.clone(), chunk)
                .map_err(|e| anyhow!("cannot plan the retry: {e}"))?,
            format,
            blender: manifest.blender.map(BlenderPick::Series),
            persistent: manifest.persistent,
            engine: manifest.engine,
            estimate: None,
        })
    };
    Ok((request(missing)?, request(frames)?))
}

/// The queue and job definitions of a retry: the command line's, else those `job.json` records,
/// by name: a redeploy since the job registered new revisions and deregistered the recorded
/// ones, and the retry runs on the revisions the stack deploys now.
pub fn retry_targets(args: &RetryArgs, manifest: &JobManifest) -> anyhow::Result<BatchTargets> {
    let recorded = manifest
        .targets
        .as_ref()
        .and_then(BatchTargets::recorded)
        .map(|targets| targets.current_revisions());
    let recorded = recorded.as_ref();
    let pick = |given: &Option<String>, recorded: Option<&String>, flag: &str| {
        given
            .clone()
            .or_else(|| recorded.cloned())
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "`{}/job.json` does not record where its jobs ran (it was written by an older farm): pass {flag} (the stack's outputs name it)",
                    manifest.key
                )
            })
    };
    Ok(BatchTargets {
        queue: pick(&args.queue, recorded.map(|t| &t.queue), "--queue")?,
        render_definition: pick(
            &args.job_definition,
            recorded.map(|t| &t.render_definition),
            "--job-definition",
        )?,
        zip_definition: pick(
            &args.zip_job_definition,
            recorded.map(|t| &t.zip_definition),
            "--zip-job-definition",
        )?,
    })
}

fn zip_failed(zip: Option<&JobReport>) -> bool {
    zip.is_some_and(|j| j.state == JobState::Failed)
}

/// The .blend as it is now: its ETag and version.
async fn source_object<S: Storage>(
    site: &Site,
    storage: &S,
    bucket: &str,
    key: &str,
) -> anyhow::Result<SourceObject> {
    let head = storage
        .head(key)
        .await
        .map_err(|err| site.storage_error(&err, &format!("reading s3://{bucket}/{key}")))?;
    let Some(head) = head else {
        bail!(
            "the .blend `{key}` is no longer in bucket {bucket}: upload it again with farm submit"
        );
    };
    Ok(SourceObject {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag: head.etag.unwrap_or_default(),
        version_id: head.version_id,
        saved_by: None,
        scene: None,
        movie: None,
        views: farm_core::views::FrameViews::single(),
    })
}
