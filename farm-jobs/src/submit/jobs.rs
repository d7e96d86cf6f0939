//! The render and zip jobs of a request (and the movie job of a movie scene): their names, their
//! specs (from the request's [`JobTicket`]), submitting them, adopting what a dead submitter
//! left, and stopping the key's previous job.

use std::collections::BTreeMap;

use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::scheduler::{
    JobKind, JobSpec, JobState, OverLimit, Scheduler, SchedulerError, SchedulerLimits, TAG_FRAMES,
    TAG_KEY,
};
use farm_core::storage::{get_json, StorageError};
use farm_core::{JobKeys, Storage};

use super::SubmitError;
use crate::JobTicket;

/// The job name of a request's render, zip or movie job by the scheduler's rules (`limits`):
/// readable, and ending in the first 16 hex digits of the request's fingerprint so a takeover
/// can find what a dead submitter left, e.g. `shots-a-blend-0123456789abcdef-render`.
pub fn request_job_name(
    limits: &SchedulerLimits,
    keys: &JobKeys,
    fingerprint: &str,
    kind: JobKind,
) -> String {
    named(limits, keys, fingerprint, request_job_suffix(kind))
}

/// The job name of a request's scout job (`estimate=N`), as [`request_job_name`]:
/// `shots-a-blend-0123456789abcdef-scout`.
pub fn scout_job_name(limits: &SchedulerLimits, keys: &JobKeys, fingerprint: &str) -> String {
    named(limits, keys, fingerprint, SCOUT_SUFFIX)
}

const SCOUT_SUFFIX: &str = "scout";

fn named(limits: &SchedulerLimits, keys: &JobKeys, fingerprint: &str, suffix: &str) -> String {
    let short = &fingerprint[..fingerprint.len().min(16)];
    limits.job_name(keys.source(), &format!("{short}-{suffix}"))
}

fn request_job_suffix(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Render => "render",
        JobKind::Zip => "zip",
        JobKind::Movie => "movie",
    }
}

/// Jobs of a request that a dead submitter already submitted.
#[derive(Debug, Default)]
pub(super) struct Adopted {
    pub(super) render: Option<String>,
    pub(super) zip: Option<String>,
    pub(super) movie: Option<String>,
}

/// The jobs of one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JobIds {
    pub(super) render: String,
    pub(super) zip: String,
    /// The movie job, when the scene asks for a movie.
    pub(super) movie: Option<String>,
}

/// Asks the scheduler for live (or succeeded) jobs under the request's job names.
pub(super) async fn find_request_jobs<B: Scheduler>(
    scheduler: &B,
    keys: &JobKeys,
    fingerprint: &str,
) -> Result<Adopted, SubmitError> {
    let mut adopted = Adopted::default();
    let limits = scheduler.limits();
    for kind in [JobKind::Render, JobKind::Zip, JobKind::Movie] {
        let name = request_job_name(&limits, keys, fingerprint, kind);
        let found = scheduler
            .find_by_name(&name)
            .await?
            .into_iter()
            .find(|job| job.name == name && job.state != JobState::Failed)
            .map(|job| job.id);
        if let Some(id) = &found {
            tracing::warn!(name = %name, job_id = %id, "a dead submitter already submitted this job; adopting it");
        }
        match kind {
            JobKind::Render => adopted.render = found,
            JobKind::Zip => adopted.zip = found,
            JobKind::Movie => adopted.movie = found,
        }
    }
    if adopted.render.is_none() {
        // A zip job alone depends on nothing we know: submit both again.
        adopted.zip = None;
    }
    if adopted.zip.is_none() {
        adopted.movie = None;
    }
    Ok(adopted)
}

/// Terminates the jobs `job.json` names when they belong to another request of the key.
pub(super) async fn stop_previous_job<S: Storage, B: Scheduler>(
    storage: &S,
    scheduler: &B,
    keys: &JobKeys,
    fingerprint: &str,
) -> Result<(), SubmitError> {
    let previous = match get_json::<JobManifest>(storage, &keys.manifest()).await {
        Ok(previous) => previous,
        Err(StorageError::NotFound { .. } | StorageError::Json { .. }) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    if previous.status != ManifestStatus::Submitted
        || previous.request.as_deref() == Some(fingerprint)
    {
        return Ok(());
    }
    let reason = "superseded: a new request for this key was submitted";
    for id in [
        &previous.movie_job_id,
        &previous.zip_job_id,
        &previous.render_job_id,
    ]
    .into_iter()
    .flatten()
    {
        match scheduler.cancel(id, reason).await {
            Ok(()) => {
                tracing::info!(key = %keys.source(), job_id = %id, "terminated the previous job of the key")
            }
            // Batch no longer knows it, or refuses: it cannot be running.
            Err(SchedulerError::Rejected { message, .. }) => {
                tracing::warn!(key = %keys.source(), job_id = %id, %message, "could not terminate the previous job of the key")
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// The render and zip jobs of one submission, and the movie job when the ticket has a movie.
pub(super) struct Jobs<'a> {
    /// What the render job renders.
    pub(super) render: JobTicket,
    /// What the zip job archives (all of the job's frames).
    pub(super) whole: JobTicket,
    /// The request's fingerprint, which names the jobs (none for `farm retry`).
    pub(super) fingerprint: Option<&'a str>,
}

impl Jobs<'_> {
    /// The render job (`render_job_id` `None`) or the zip job that waits for it, ready to
    /// submit: its frame list written to the bucket when it goes by reference, and checked to
    /// fit the scheduler's `limits`.
    async fn spec<S: Storage>(
        &self,
        storage: &S,
        limits: &SchedulerLimits,
        render_job_id: Option<&str>,
    ) -> Result<JobSpec, SubmitError> {
        let (kind, spec) = match render_job_id {
            None => (
                JobKind::Render,
                self.render.render_job(storage, limits).await?,
            ),
            Some(id) => (JobKind::Zip, self.whole.zip_job(storage, limits, id).await?),
        };
        self.named(limits, kind, spec)
    }

    /// The movie job that waits for the zip job `zip_job_id`, ready to submit; `None` when the
    /// scene asks for no movie.
    async fn movie_spec<S: Storage>(
        &self,
        storage: &S,
        limits: &SchedulerLimits,
        zip_job_id: &str,
    ) -> Result<Option<JobSpec>, SubmitError> {
        match self.whole.movie_job(storage, limits, zip_job_id).await? {
            Some(spec) => Ok(Some(self.named(limits, JobKind::Movie, spec)?)),
            None => Ok(None),
        }
    }

    /// `spec` named and tagged for the request, checked to fit the scheduler's `limits`.
    fn named(
        &self,
        limits: &SchedulerLimits,
        kind: JobKind,
        mut spec: JobSpec,
    ) -> Result<JobSpec, SubmitError> {
        let keys = &self.render.keys;
        if let Some(fingerprint) = self.fingerprint {
            spec.name = request_job_name(limits, keys, fingerprint, kind);
            spec.tags
                .insert(TAG_REQUEST.to_owned(), fingerprint.to_owned());
        }
        fits(limits, &spec)?;
        Ok(spec)
    }

    /// Submits what `adopted` lacks; returns the jobs' ids.
    pub(super) async fn submit<S: Storage, B: Scheduler>(
        &self,
        storage: &S,
        scheduler: &B,
        adopted: Adopted,
    ) -> Result<JobIds, SubmitError> {
        let limits = scheduler.limits();
        let render_job_id = match adopted.render {
            Some(id) => id,
            None => {
                scheduler
                    .submit(&self.spec(storage, &limits, None).await?)
                    .await?
            }
        };
        let zip_job_id = match adopted.zip {
            Some(id) => id,
            None => {
                self.submit_zip(storage, scheduler, &limits, &render_job_id)
                    .await?
            }
        };
        let movie = match adopted.movie {
            Some(id) => Some(id),
            None => {
                self.submit_movie(storage, scheduler, &limits, &render_job_id, &zip_job_id)
                    .await?
            }
        };
        Ok(JobIds {
            render: render_job_id,
            zip: zip_job_id,
            movie,
        })
    }

    /// Submits the movie job after `zip_job_id`, if the scene asks for a movie. If it cannot
    /// be submitted, the zip and render jobs are cancelled (the retry submits all three again).
    async fn submit_movie<S: Storage, B: Scheduler>(
        &self,
        storage: &S,
        scheduler: &B,
        limits: &SchedulerLimits,
        render_job_id: &str,
        zip_job_id: &str,
    ) -> Result<Option<String>, SubmitError> {
        let submitted = match self.movie_spec(storage, limits, zip_job_id).await {
            Ok(Some(spec)) => scheduler.submit(&spec).await.map_err(SubmitError::from),
            Ok(None) => return Ok(None),
            Err(err) => Err(err),
        };
        match submitted {
            Ok(id) => {
                tracing::info!(key = %self.render.keys.source(), movie_job_id = %id, "submitted the movie job");
                Ok(Some(id))
            }
            Err(err) => {
                let reason = "the movie job could not be submitted; the request will be retried";
                for id in [zip_job_id, render_job_id] {
                    if let Err(cancel) = scheduler.cancel(id, reason).await {
                        tracing::error!(key = %self.render.keys.source(), job_id = %id, error = %cancel, "could not cancel a job whose movie job failed to submit; cancel it by hand");
                    }
                }
                Err(err)
            }
        }
    }

    /// Submits the zip job after `render_job_id`; cancels the render job if it cannot.
    async fn submit_zip<S: Storage, B: Scheduler>(
        &self,
        storage: &S,
        scheduler: &B,
        limits: &SchedulerLimits,
        render_job_id: &str,
    ) -> Result<String, SubmitError> {
        let zip = match self.spec(storage, limits, Some(render_job_id)).await {
            Ok(zip) => zip,
            Err(err) => {
                let reason = "the zip job could not be submitted";
                let _ = scheduler.cancel(render_job_id, reason).await;
                return Err(err);
            }
        };
        match scheduler.submit(&zip).await {
            Ok(zip_job_id) => {
                tracing::info!(
                    key = %self.render.keys.source(),
                    render_job_id = %render_job_id,
                    zip_job_id = %zip_job_id,
                    frames = %self.render.plan.frames().canonical(),
                    chunk_size = self.render.plan.chunk_size(),
                    "submitted render and zip jobs"
                );
                Ok(zip_job_id)
            }
            Err(err) => {
                // A render job nobody zips would only cost money; the retry submits both again.
                let reason = "the zip job could not be submitted; the request will be retried";
                if let Err(cancel) = scheduler.cancel(render_job_id, reason).await {
                    tracing::error!(
                        key = %self.render.keys.source(),
                        render_job_id = %render_job_id,
                        error = %cancel,
                        "could not cancel the render job whose zip job failed to submit; cancel it by hand"
                    );
                }
                Err(err.into())
            }
        }
    }
}

impl JobTicket {
    /// The render job of this ticket: one array child per chunk, or a plain job for one chunk,
    /// on the ticket's Blender series, named and tagged by the scheduler's `limits`. A long
    /// frame list is written to `storage` (see [`JobTicket::to_env`]).
    pub async fn render_job<S: Storage>(
        &self,
        storage: &S,
        limits: &SchedulerLimits,
    ) -> Result<JobSpec, StorageError> {
        Ok(JobSpec {
            array_size: self.plan.array_size(),
            blender: self.blender,
            env: self.for_render().to_env(storage).await?,
            ..self.job(limits, JobKind::Render)
        })
    }

    /// The movie job, which starts once the zip job `zip_job_id` has succeeded (every frame is
    /// there), on the render job definition of the ticket's Blender series; `None` when the
    /// ticket has no movie.
    pub async fn movie_job<S: Storage>(
        &self,
        storage: &S,
        limits: &SchedulerLimits,
        zip_job_id: &str,
    ) -> Result<Option<JobSpec>, StorageError> {
        let Some(ticket) = self.for_movie() else {
            return Ok(None);
        };
        Ok(Some(JobSpec {
            depends_on: vec![zip_job_id.to_owned()],
            blender: self.blender,
            env: ticket.to_env(storage).await?,
            ..self.job(limits, JobKind::Movie)
        }))
    }

    /// The zip job, which starts once every child of `render_job_id` has succeeded.
    pub async fn zip_job<S: Storage>(
        &self,
        storage: &S,
        limits: &SchedulerLimits,
        render_job_id: &str,
    ) -> Result<JobSpec, StorageError> {
        Ok(JobSpec {
            depends_on: vec![render_job_id.to_owned()],
            env: self.for_zip().to_env(storage).await?,
            ..self.job(limits, JobKind::Zip)
        })
    }

    /// The scout job of this ticket (`estimate=N`): one task on the render job definition of
    /// the ticket's series, whatever the chunks.
    pub async fn scout_job<S: Storage>(
        &self,
        storage: &S,
        limits: &SchedulerLimits,
    ) -> Result<JobSpec, StorageError> {
        Ok(JobSpec {
            name: limits.job_name(self.keys.source(), SCOUT_SUFFIX),
            blender: self.blender,
            env: self.to_env(storage).await?,
            ..self.job(limits, JobKind::Render)
        })
    }

    /// A job of `kind` named and tagged for this ticket's key and frames.
    fn job(&self, limits: &SchedulerLimits, kind: JobKind) -> JobSpec {
        JobSpec {
            kind,
            name: limits.job_name(self.keys.source(), request_job_suffix(kind)),
            array_size: None,
            depends_on: Vec::new(),
            env: Vec::new(),
            tags: BTreeMap::from([
                (TAG_KEY.to_owned(), limits.tag_value(self.keys.source())),
                (
                    TAG_FRAMES.to_owned(),
                    limits.tag_value(&self.plan.frames().canonical()),
                ),
            ]),
            blender: None,
        }
    }
}

/// Refuses a job the scheduler would refuse (an environment past its limit would fail the job
/// at every start).
pub(super) fn fits(limits: &SchedulerLimits, spec: &JobSpec) -> Result<(), SubmitError> {
    match limits.check(spec) {
        Ok(()) => Ok(()),
        Err(OverLimit::Environment { len, max }) => Err(SubmitError::TooLarge { len, max }),
        Err(other) => Err(SubmitError::Unfit(other)),
    }
}

/// Job tag holding the fingerprint of the request a job was submitted for.
pub const TAG_REQUEST: &str = "farm:request";

#[cfg(test)]
mod tests {
    use farm_core::env;
    use farm_core::scheduler::{PARAM_BUCKET, PARAM_KEY};
    use farm_core::{BlenderSeries, RenderRequest};
    use farm_testkit::{MemoryScheduler, MemoryStorage};

    use super::*;

    /// The render and zip jobs of `tags` for `key` in bucket `bucket`, at ETag `etag`.
    async fn jobs(key: &str, etag: Option<&str>, tags: &[(&str, &str)]) -> (JobSpec, JobSpec) {
        let request = RenderRequest::from_tags(tags.iter().copied(), 100)
            .unwrap()
            .unwrap();
        let ticket = JobTicket::for_request("bucket", key, etag, &request, None);
        let jobs = Jobs {
            render: ticket.clone(),
            whole: ticket,
            fingerprint: None,
        };
        let storage = MemoryStorage::new();
        let limits = MemoryScheduler::new().limits();
        let render = jobs.spec(&storage, &limits, None).await.unwrap();
        let zip = jobs.spec(&storage, &limits, Some("job-1")).await.unwrap();
        (render, zip)
    }

    fn vars(job: &JobSpec) -> BTreeMap<String, String> {
        job.env.iter().cloned().collect()
    }

    #[tokio::test]
    async fn render_and_zip_jobs_carry_what_the_binaries_need() {
        let tags = [("frames", "1-10"), ("chunk", "3"), ("format", "PNG")];
        let (render, zip) = jobs("shots/a b.blend", Some("\"e1\""), &tags).await;
        assert_eq!(render.kind, JobKind::Render);
        assert_eq!(render.array_size, Some(4));
        assert_eq!(render.name, "shots-a-b-blend-render");
        let env = vars(&render);
        assert_eq!(env[env::BUCKET], "bucket");
        assert_eq!(env[env::KEY], "shots/a b.blend");
        assert_eq!(env[env::FRAMES], "1-10");
        assert_eq!(env[env::CHUNK], "3");
        assert_eq!(env[env::FORMAT], "PNG");
        assert_eq!(env[env::SOURCE_ETAG], "\"e1\"");
        assert_eq!(render.tags[TAG_KEY], "shots/a b.blend");
        assert_eq!(render.blender, None);
        assert!(!env.contains_key(env::JOB_BLENDER_SERIES));
        assert!(!env.contains_key(env::PERSISTENT));
        assert!(!env.contains_key(env::ENGINE));
        let eevee = [("frames", "1-10"), ("engine", "eevee")];
        let (eevee_render, eevee_zip) = jobs("shots/a b.blend", None, &eevee).await;
        for job in [eevee_render, eevee_zip] {
            assert!(job
                .env
                .contains(&(env::ENGINE.to_owned(), "eevee".to_owned())));
        }
        for job in [&render, &zip] {
            assert_eq!(
                job.parameters(),
                BTreeMap::from([
                    (PARAM_BUCKET.to_owned(), "bucket".to_owned()),
                    (PARAM_KEY.to_owned(), "shots/a b.blend".to_owned()),
                ]),
                "{:?}",
                job.kind
            );
        }
        assert_eq!(zip.depends_on, vec!["job-1".to_owned()]);
        assert_eq!(zip.array_size, None);
        let (_, zip) = jobs("shots/a b.blend", None, &tags).await;
        assert!(!zip.env.iter().any(|(k, _)| k == env::SOURCE_ETAG));
    }

    #[tokio::test]
    async fn tags_keep_what_batch_accepts_and_the_environment_the_exact_key() {
        let (render, _) = jobs("ü/x%.blend", None, &[("frame", "2")]).await;
        assert_eq!(render.tags[TAG_KEY], "_/x_.blend");
        assert_eq!(
            vars(&render)[env::KEY],
            "ü/x%.blend",
            "the environment keeps the exact key"
        );
    }

    #[tokio::test]
    async fn a_single_chunk_is_a_plain_job() {
        let (render, _) = jobs("k.blend", None, &[("frame", "8"), ("chunk", "8")]).await;
        assert_eq!(render.array_size, None);
    }

    #[tokio::test]
    async fn the_render_job_carries_the_requests_blender_and_the_zip_job_none() {
        let (render, zip) = jobs("k.blend", None, &[("frame", "8"), ("blender", "4.5")]).await;
        assert_eq!(render.blender, Some(BlenderSeries::new(4, 5)));
        assert_eq!(vars(&render)[env::JOB_BLENDER_SERIES], "4.5");
        assert_eq!(zip.blender, None);
        assert!(!zip.env.iter().any(|(k, _)| k == env::JOB_BLENDER_SERIES));
    }

    #[tokio::test]
    async fn persistent_off_reaches_the_render_job_only() {
        let (render, zip) = jobs("k.blend", None, &[("frame", "8"), ("persistent", "off")]).await;
        assert_eq!(vars(&render)[env::PERSISTENT], "off");
        assert!(!zip.env.iter().any(|(k, _)| k == env::PERSISTENT));
    }
}
