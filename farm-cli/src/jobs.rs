//! `farm cancel` and `farm retry`: acting on a submitted job's Batch jobs.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail};
use farm_core::blender::OutputFormat;
use farm_core::frames::compact;
use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::scheduler::{JobSpec, Scheduler};
use farm_core::storage::put_json;
use farm_core::{FrameList, JobKeys, Plan, RenderRequest, Storage};
use farm_io::{BatchTargets, S3Storage};
use trigger_lambda::submit::submitted_manifest;
use trigger_lambda::SourceObject;

use crate::aws::Aws;
use crate::cli::{CancelArgs, RetryArgs};
use crate::shell_quote;
use crate::status::{describe_jobs, manifest_frames, JobReport, UNKNOWN_STATE};

/// The reason recorded on jobs `farm cancel` terminates.
pub const CANCEL_REASON: &str = "cancelled with farm cancel";

/// Whether a Batch state is final.
fn is_final(state: &str) -> bool {
    matches!(state, "SUCCEEDED" | "FAILED" | UNKNOWN_STATE)
}

fn scheduler_error(err: &farm_core::scheduler::SchedulerError, doing: &str) -> anyhow::Error {
    let hint = if err.is_transient() {
        "; check the network and your AWS configuration, then retry"
    } else {
        ""
    };
    anyhow!(
        "{doing}: {}{hint}",
        crate::aws::without_debug_tail(&err.to_string())
    )
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
    let manifest = aws.manifest(&storage, &args.key).await?;
    submitted(&manifest, "cancel")?;
    let (render, zip) = describe_jobs(&scheduler, &manifest).await?;
    for (label, job) in [("zip", zip), ("render", render)] {
        let Some(job) = job else { continue };
        if is_final(&job.state) {
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
/// Submits a render job for the frames of the job not under `<key>/frames/`, and a zip job
/// that depends on it and archives *all* of the job's frames; `<key>/job.json` then describes
/// the new jobs with the whole frame list, so `farm status` keeps counting every frame.
pub async fn retry(args: &RetryArgs) -> anyhow::Result<()> {
    let aws = Aws::load().await;
    let storage = aws.storage(&args.bucket);
    let scheduler = aws.scheduler(Some(BatchTargets {
        queue: args.queue.clone(),
        render_definition: args.job_definition.clone(),
        zip_definition: args.zip_job_definition.clone(),
    }));
    let (k, b) = (shell_quote(&args.key), shell_quote(&args.bucket));
    let manifest = aws.manifest(&storage, &args.key).await?;
    submitted(&manifest, "retry")?;
    let (render, zip) = describe_jobs(&scheduler, &manifest).await?;
    for (label, job) in [("render", &render), ("zip", &zip)] {
        if let Some(job) = job.as_ref().filter(|j| !is_final(&j.state)) {
            bail!(
                "the {label} job {} is still {}: wait for it to end (farm status {k} --bucket {b}) or stop it (farm cancel {k} --bucket {b}), then retry",
                job.id,
                job.state
            );
        }
    }
    let frames = manifest_frames(&manifest)?;
    let missing = missing_frames(&aws, &storage, &args.key, &frames).await?;
    let Ok(missing) = FrameList::from_frames(missing) else {
        println!(
            "nothing is missing: all {} frames of `{}` are in s3://{}/{}",
            frames.len(),
            args.key,
            args.bucket,
            JobKeys::new(args.key.as_str()).frames_prefix()
        );
        if zip_failed(zip.as_ref()) {
            println!("the archive was not made: retrying renders no frame; run the zip job again from the AWS Batch console");
        }
        return Ok(());
    };
    let source = source_object(&aws, &args.bucket, &args.key).await?;
    if manifest
        .etag
        .as_deref()
        .is_some_and(|etag| etag != source.etag)
    {
        eprintln!(
            "farm: note: `{}` changed since the job was submitted; the missing frames are rendered from the current upload",
            args.key
        );
    }
    let format = manifest
        .format
        .as_deref()
        .map(str::parse::<OutputFormat>)
        .transpose()
        .map_err(|e| anyhow!("`{}/job.json` holds an unknown format: {e}", args.key))?;
    let chunk = manifest.chunk_size.max(1);
    let plan = |frames: FrameList| {
        Plan::new(frames, chunk).map_err(|e| anyhow!("cannot plan the retry: {e}"))
    };
    let render_request = RenderRequest {
        plan: plan(missing.clone())?,
        format,
    };
    let whole_request = RenderRequest {
        plan: plan(frames.clone())?,
        format,
    };
    let new = submit_retry(
        &storage,
        &scheduler,
        &source,
        &render_request,
        &whole_request,
    )
    .await?;
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

/// Frames of `frames` with no object under `<key>/frames/`.
async fn missing_frames(
    aws: &Aws,
    storage: &S3Storage,
    key: &str,
    frames: &FrameList,
) -> anyhow::Result<Vec<i32>> {
    let keys = JobKeys::new(key);
    let prefix = keys.frames_prefix();
    let listing = storage
        .list(&prefix)
        .await
        .map_err(|e| aws.storage_error(&e, &format!("listing `{prefix}`")))?;
    let present: BTreeSet<i32> = listing
        .iter()
        .filter(|o| o.size > 0)
        .filter_map(|o| keys.parse_frame_key(&o.key))
        .map(|(frame, _)| frame)
        .collect();
    Ok(frames
        .as_slice()
        .iter()
        .copied()
        .filter(|f| !present.contains(f))
        .collect())
}

fn zip_failed(zip: Option<&JobReport>) -> bool {
    zip.is_some_and(|j| j.state == "FAILED")
}

/// The .blend as it is now: its ETag and version.
async fn source_object(aws: &Aws, bucket: &str, key: &str) -> anyhow::Result<SourceObject> {
    let head = aws.s3().head_object().bucket(bucket).key(key).send().await;
    let head = match head {
        Ok(head) => head,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => bail!(
            "the .blend `{key}` is no longer in bucket {bucket}: upload it again with farm submit"
        ),
        Err(err) => return Err(aws.sdk_error(&err, &format!("reading s3://{bucket}/{key}"))),
    };
    Ok(SourceObject {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag: head.e_tag().unwrap_or_default().to_owned(),
        version_id: head.version_id().map(str::to_owned),
    })
}

/// Submits the retry: a render job for `render`'s frames, then a zip job for all of `whole`'s
/// frames depending on it (the render job is cancelled if the zip job cannot be submitted),
/// then writes `<key>/job.json`. Built from the same pieces as the trigger's submission
/// ([`JobSpec::render`], [`JobSpec::zip`], [`submitted_manifest`]); the trigger's own
/// `submit_request`/`submit_jobs` would make the zip job archive only the retried frames.
pub async fn submit_retry<S: Storage, B: Scheduler>(
    storage: &S,
    scheduler: &B,
    source: &SourceObject,
    render: &RenderRequest,
    whole: &RenderRequest,
) -> anyhow::Result<JobManifest> {
    let keys = JobKeys::new(source.key.clone());
    let etag = Some(source.etag.as_str()).filter(|e| !e.is_empty());
    let render_spec = JobSpec::render(&source.bucket, &keys, etag, render);
    let render_job_id = scheduler
        .submit(&render_spec)
        .await
        .map_err(|e| scheduler_error(&e, "submitting the render job"))?;
    let zip_spec = JobSpec::zip(&source.bucket, &keys, etag, whole, &render_job_id);
    let zip_job_id = match scheduler.submit(&zip_spec).await {
        Ok(id) => id,
        Err(err) => {
            let _ = scheduler
                .cancel(&render_job_id, "its zip job could not be submitted")
                .await;
            return Err(scheduler_error(&err, "submitting the zip job"));
        }
    };
    let mut manifest = submitted_manifest(source, whole, &render_job_id, &zip_job_id);
    manifest.chunk_count = render.plan.chunk_count();
    put_json(storage, &keys.manifest(), &manifest)
        .await
        .map_err(|e| anyhow!("writing `{}`: {e}", keys.manifest()))?;
    Ok(manifest)
}
