//! `farm submit --estimate [N]`: the upload goes up tagged `estimate=N`, so the trigger submits
//! a scout job instead of the job; this waits for the scout's `<key>/estimate.json` of the
//! version just uploaded (showing the scout job's state), prints it, and then submits the job
//! by tagging the `.blend` again without `estimate=` (asked at a terminal, or `--yes`), the
//! path README documents for the AWS CLI.

use std::time::Duration;

use anyhow::{anyhow, bail};
use farm_core::estimate::{EstimateFile, EstimateStatus};
use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::request::{TAG_CHUNK, TAG_ESTIMATE};
use farm_core::scheduler::{JobState, Scheduler};
use farm_core::storage::{get_json, Storage, StorageError};
use farm_core::JobKeys;
use farm_io::S3Storage;

use crate::aws::Site;
use crate::cli::SubmitArgs;
use crate::progress;
use crate::shutdown::Shutdown;

use super::{tag_text, Prepared};

/// How often the scout's estimate and job are looked at.
const POLL: Duration = Duration::from_secs(2);

/// The tags that start the job once the scout is done: the upload's without `estimate=`; a
/// chunk size the user left to the farm (`chunk=auto`) becomes the one the estimate chose, so
/// the job runs as estimated.
pub(super) fn job_tags(
    tags: &[(&'static str, String)],
    chunk: Option<u32>,
) -> Vec<(&'static str, String)> {
    tags.iter()
        .filter(|(name, _)| *name != TAG_ESTIMATE)
        .map(|(name, value)| match (*name, chunk) {
            (TAG_CHUNK, Some(size)) => (*name, size.to_string()),
            _ => (*name, value.clone()),
        })
        .collect()
}

/// Waits for the estimate of the upload at `etag`, prints it, then tags the `.blend` for the
/// job when the user says so.
pub(super) async fn estimate_then_submit(
    args: &SubmitArgs,
    prepared: &Prepared,
    (site, storage, scheduler): (&Site, &S3Storage, &impl Scheduler),
    etag: &str,
    shutdown: &Shutdown,
    since: jiff::Timestamp,
) -> anyhow::Result<()> {
    let key = &prepared.key;
    let file = tokio::select! {
        () = shutdown.signal() => bail!("stopped waiting for the estimate; the scout job goes on: its estimate will be in s3://{}/{}", args.bucket, JobKeys::new(key).estimate()),
        file = wait((site, storage, scheduler), key, (etag, since)) => file?,
    };
    let estimate = file
        .estimate
        .as_ref()
        .ok_or_else(|| anyhow!("estimate.json says estimated but holds no estimate"))?;
    println!("estimate of s3://{}/{key}:", args.bucket);
    crate::estimate::print_estimate(
        Some(estimate),
        &estimate.projection,
        file.max_vcpus,
        farm_core::timeline::DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR,
    );
    let chunk = prepared
        .chunk_auto
        .then_some(estimate.projection.chunk_size);
    let tags = job_tags(&prepared.tags, chunk);
    if !confirm(args.yes, &tags)? {
        println!(
            "not submitted. To render it: farm submit again with --yes, or tag it yourself: aws s3api put-object-tagging --bucket {} --key {} --tagging '{}'",
            crate::shell_quote(&args.bucket),
            crate::shell_quote(key),
            tags.iter()
                .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
                .collect::<Vec<_>>()
                .join("&")
        );
        return Ok(());
    }
    let tag_map: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    storage.put_tags(key, &tag_map).await.map_err(|err| {
        site.storage_error(&err, &format!("tagging s3://{}/{key}", storage.bucket()))
    })?;
    println!(
        "tagged {} for the job: the trigger starts it now",
        tag_text(&tags)
    );
    Ok(())
}

/// Submit the job? `--yes`, or a yes at the terminal; elsewhere no.
fn confirm(yes: bool, tags: &[(&'static str, String)]) -> anyhow::Result<bool> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if yes {
        return Ok(true);
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(false);
    }
    eprint!("submit the job ({})? [y/N] ", tag_text(tags));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Polls `estimate.json` until it estimates the upload at `etag`, saying where the scout job
/// is; fails when the trigger rejected the upload or the scout job failed.
async fn wait(
    (site, storage, scheduler): (&Site, &S3Storage, &impl Scheduler),
    key: &str,
    (etag, since): (&str, jiff::Timestamp),
) -> anyhow::Result<EstimateFile> {
    let keys = JobKeys::new(key);
    let spinner = progress::spinner("waiting for the trigger to submit the scout job");
    let mut said = String::new();
    let result = loop {
        let mut say = |line: String| {
            if line != said {
                spinner.suspend(|| eprintln!("{line}"));
                spinner.set_message(line.clone());
                said = line;
            }
        };
        let file = read_estimate(site, storage, &keys, etag).await?;
        match &file {
            Some(file) if file.status == EstimateStatus::Estimated => break Ok(file.clone()),
            Some(EstimateFile {
                job_id: Some(id), ..
            }) => {
                let state = scheduler
                    .describe(std::slice::from_ref(id))
                    .await
                    .map_err(|e| anyhow!("asking Batch for the scout job {id}: {e}"))?
                    .into_iter()
                    .next();
                match state {
                    Some(job) if job.state == JobState::Failed => {
                        break Err(anyhow!(
                            "the scout job {id} failed ({}): no estimate; see its log in CloudWatch (the render log group)",
                            job.reason.unwrap_or_else(|| "no reason given".to_owned())
                        ))
                    }
                    Some(job) if job.state == JobState::Succeeded => {
                        // It wrote its estimate before it ended: read once more.
                        match read_estimate(site, storage, &keys, etag).await? {
                            Some(done) if done.status == EstimateStatus::Estimated => break Ok(done),
                            _ => break Err(anyhow!("the scout job {id} succeeded but wrote no estimate to `{}`", keys.estimate())),
                        }
                    }
                    Some(job) => say(format!("scout job {id}: {}", job.state)),
                    None => say(format!("scout job {id}: not known to Batch yet")),
                }
            }
            _ => {
                if let Some(message) = rejection(storage, &keys, etag, since).await {
                    break Err(anyhow!("the trigger refused the upload: {message}"));
                }
                say("waiting for the trigger to submit the scout job".to_owned());
            }
        }
        tokio::time::sleep(POLL).await;
    };
    spinner.finish_and_clear();
    result
}

/// `estimate.json` when it is the upload at `etag`'s.
async fn read_estimate(
    site: &Site,
    storage: &S3Storage,
    keys: &JobKeys,
    etag: &str,
) -> anyhow::Result<Option<EstimateFile>> {
    match get_json::<EstimateFile>(storage, &keys.estimate()).await {
        Ok(file) => {
            let ours = file.etag.as_deref().map(farm_core::etag::unquote_etag)
                == Some(farm_core::etag::unquote_etag(etag));
            Ok(ours.then_some(file))
        }
        Err(StorageError::NotFound { .. } | StorageError::Json { .. }) => Ok(None),
        Err(err) => Err(site.storage_error(&err, &format!("reading `{}`", keys.estimate()))),
    }
}

/// The trigger's message when it rejected the upload at `etag` since `since` (in `job.json`, or
/// `rejected.json` beside a running job's).
async fn rejection(
    storage: &S3Storage,
    keys: &JobKeys,
    etag: &str,
    since: jiff::Timestamp,
) -> Option<String> {
    for key in [keys.rejection(), keys.manifest()] {
        if let Ok(manifest) = get_json::<JobManifest>(storage, &key).await {
            let ours = manifest.etag.as_deref().map(farm_core::etag::unquote_etag)
                == Some(farm_core::etag::unquote_etag(etag));
            if ours && manifest.status == ManifestStatus::Rejected && manifest.created >= since {
                return manifest.message;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jobs_tags_drop_the_estimate_and_take_its_chunk_for_auto() {
        let tags = vec![
            ("frames", "1-100".to_owned()),
            (TAG_CHUNK, "auto".to_owned()),
            (TAG_ESTIMATE, "3".to_owned()),
        ];
        assert_eq!(
            job_tags(&tags, Some(7)),
            [("frames", "1-100".to_owned()), (TAG_CHUNK, "7".to_owned())]
        );
        assert_eq!(
            job_tags(&tags, None),
            [
                ("frames", "1-100".to_owned()),
                (TAG_CHUNK, "auto".to_owned())
            ]
        );
    }
}
