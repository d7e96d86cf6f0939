//! `BatchScheduler` against moto's docker-free Batch (jobs succeed at once; dependencies are
//! recorded, not waited on), and the checks made before any request.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use aws_sdk_batch::config::{Credentials, Region};
use aws_sdk_batch::types::JobDetail;
use farm_core::env;
use farm_core::scheduler::{
    ArrayProgress, JobKind, JobSpec, JobState, Scheduler, SchedulerError, PARAM_KEY, TAG_FRAMES,
    TAG_KEY,
};
use farm_io::{BatchScheduler, BatchTargets};
use farm_testkit::{BatchEnv, Moto};
use futures::{StreamExt, TryStreamExt};

fn targets(env: &BatchEnv) -> BatchTargets {
    BatchTargets {
        queue: env.queue.clone(),
        render_definition: env.render_definition.clone(),
        zip_definition: env.zip_definition.clone(),
    }
}

async fn scheduler() -> anyhow::Result<(Moto, BatchEnv, BatchScheduler)> {
    let moto = Moto::start().await?;
    let env = moto.batch_env().await?;
    let scheduler = BatchScheduler::new(moto.batch(), targets(&env));
    Ok((moto, env, scheduler))
}

fn plain_job(name: &str) -> JobSpec {
    JobSpec {
        kind: JobKind::Render,
        name: name.to_owned(),
        array_size: None,
        depends_on: Vec::new(),
        env: vec![(env::KEY.to_owned(), "one.blend".to_owned())],
        tags: BTreeMap::new(),
        blender: None,
    }
}

/// A job as the farm submits them (`farm_jobs::JobTicket::render_job`): its environment names
/// the bucket and key, its tags the key.
fn farm_job(kind: JobKind) -> JobSpec {
    let vars = [
        (env::BUCKET, "bucket"),
        (env::KEY, "shots/a b.blend"),
        (env::FRAMES, "1-10"),
        (env::CHUNK, "3"),
        (env::SOURCE_ETAG, "\"e1\""),
    ];
    JobSpec {
        kind,
        name: format!("shots-a-b-blend-{kind:?}").to_lowercase(),
        array_size: None,
        depends_on: Vec::new(),
        env: vars
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        tags: BTreeMap::from([
            (TAG_KEY.to_owned(), "shots/a b.blend".to_owned()),
            (TAG_FRAMES.to_owned(), "1-10".to_owned()),
        ]),
        blender: None,
    }
}

async fn raw_jobs(moto: &Moto, ids: &[&str]) -> anyhow::Result<HashMap<String, JobDetail>> {
    let output = moto
        .batch()
        .describe_jobs()
        .set_jobs(Some(ids.iter().map(|id| (*id).to_owned()).collect()))
        .send()
        .await?;
    Ok(output
        .jobs()
        .iter()
        .map(|job| (job.job_id().unwrap_or_default().to_owned(), job.clone()))
        .collect())
}

fn environment(job: &JobDetail) -> BTreeMap<String, String> {
    job.container()
        .map(|c| c.environment())
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| Some((kv.name()?.to_owned(), kv.value()?.to_owned())))
        .collect()
}

#[tokio::test]
async fn render_array_plain_and_dependent_zip_jobs_are_submitted_as_specified() -> anyhow::Result<()>
{
    let (moto, env, scheduler) = scheduler().await?;
    let render = JobSpec {
        array_size: Some(4),
        ..farm_job(JobKind::Render)
    };

    let render_id = scheduler.submit(&render).await?;
    let plain_id = scheduler.submit(&plain_job("plain-render")).await?;
    let zip = JobSpec {
        depends_on: vec![render_id.clone()],
        ..farm_job(JobKind::Zip)
    };
    let zip_id = scheduler.submit(&zip).await?;

    let jobs = raw_jobs(&moto, &[&render_id, &plain_id, &zip_id]).await?;
    let (array_job, plain, zip_job) = (&jobs[&render_id], &jobs[&plain_id], &jobs[&zip_id]);

    assert_eq!(array_job.job_name(), Some(render.name.as_str()));
    assert_eq!(array_job.job_queue(), Some(env.queue.as_str()));
    assert_eq!(
        array_job.job_definition(),
        Some(env.render_definition.as_str())
    );
    assert_eq!(array_job.array_properties().and_then(|a| a.size()), Some(4));
    let vars = environment(array_job);
    for (name, value) in &render.env {
        assert_eq!(vars.get(name), Some(value), "{name} on the render job");
    }
    let tags = array_job.tags().context("tags on the render job")?;
    assert_eq!(
        tags.get(TAG_KEY).map(String::as_str),
        Some("shots/a b.blend")
    );
    // moto does not record `propagateTags` on jobs: a unit test checks the request instead.
    // The parameters the notifications' input transformer reads (`detail.parameters`).
    for (job, spec) in [(array_job, &render), (zip_job, &zip)] {
        let parameters: BTreeMap<String, String> = job
            .parameters()
            .context("parameters")?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(parameters, spec.parameters(), "{:?}", spec.kind);
        assert_eq!(
            parameters.get(PARAM_KEY).map(String::as_str),
            Some("shots/a b.blend")
        );
    }

    assert!(plain.array_properties().and_then(|a| a.size()).is_none());
    assert_eq!(
        environment(plain).get(env::KEY).map(String::as_str),
        Some("one.blend")
    );

    assert_eq!(zip_job.job_definition(), Some(env.zip_definition.as_str()));
    let dependencies = zip_job.depends_on();
    assert_eq!(dependencies.len(), 1);
    assert_eq!(dependencies[0].job_id(), Some(render_id.as_str()));
    assert!(
        dependencies[0].r#type().is_none(),
        "no type: wait for the whole array"
    );
    assert!(zip_job.array_properties().and_then(|a| a.size()).is_none());
    Ok(())
}

#[tokio::test]
async fn describe_maps_states_and_array_progress() -> anyhow::Result<()> {
    let (_moto, _env, scheduler) = scheduler().await?;
    let mut array = plain_job("array");
    array.array_size = Some(4);
    let array_id = scheduler.submit(&array).await?;
    let plain_id = scheduler.submit(&plain_job("plain")).await?;

    let statuses = scheduler
        .describe(&[array_id.clone(), plain_id.clone(), "no-such-job".to_owned()])
        .await?;
    assert_eq!(statuses.len(), 2, "unknown ids are left out: {statuses:?}");
    let array_status = statuses
        .iter()
        .find(|s| s.id == array_id)
        .context("array job")?;
    assert_eq!(array_status.name, "array");
    // moto's docker-free Batch succeeds every job as soon as it is submitted.
    assert_eq!(array_status.state, JobState::Succeeded);
    assert_eq!(
        array_status.array,
        Some(ArrayProgress {
            size: 4,
            succeeded: 4,
            ..ArrayProgress::default()
        })
    );
    let plain_status = statuses
        .iter()
        .find(|s| s.id == plain_id)
        .context("plain job")?;
    assert_eq!(plain_status.state, JobState::Succeeded);
    assert_eq!(plain_status.array, None);
    Ok(())
}

#[tokio::test]
async fn describe_takes_more_than_one_hundred_ids() -> anyhow::Result<()> {
    let (_moto, _env, scheduler) = scheduler().await?;
    let ids: Vec<String> = futures::stream::iter(0..105)
        .map(|i| {
            let scheduler = &scheduler;
            async move { scheduler.submit(&plain_job(&format!("job-{i}"))).await }
        })
        .buffered(8)
        .try_collect()
        .await?;
    let statuses = scheduler.describe(&ids).await?;
    assert_eq!(statuses.len(), 105);
    let mut described: Vec<&str> = statuses.iter().map(|s| s.id.as_str()).collect();
    described.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(described, expected);
    Ok(())
}

#[tokio::test]
async fn cancel_terminates_and_bad_requests_are_rejected() -> anyhow::Result<()> {
    let (moto, _env, scheduler) = scheduler().await?;
    let mut array = plain_job("to-cancel");
    array.array_size = Some(3);
    let id = scheduler.submit(&array).await?;
    scheduler.cancel(&id, "cancelled by the test").await?;

    // Batch answers ClientException for an empty reason: a rejection, not worth retrying.
    let refused = scheduler.cancel(&id, "").await;
    assert!(
        matches!(refused, Err(SchedulerError::Rejected { .. })),
        "{refused:?}"
    );
    let mut unknown = plain_job("nowhere");
    unknown.kind = JobKind::Zip;
    let scheduler = BatchScheduler::new(
        moto.batch(),
        BatchTargets {
            queue: "no-such-queue".to_owned(),
            ..scheduler.targets().clone()
        },
    );
    let refused = scheduler.submit(&unknown).await;
    assert!(
        matches!(&refused, Err(err) if !err.is_transient()),
        "{refused:?}"
    );
    Ok(())
}

/// A client whose every request would fail to connect, without retries.
fn unreachable_client() -> aws_sdk_batch::Client {
    let config = aws_sdk_batch::Config::builder()
        .behavior_version(aws_sdk_batch::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_sdk_batch::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_batch::Client::from_conf(config)
}

#[tokio::test]
async fn array_sizes_batch_would_refuse_are_refused_before_any_request() {
    let scheduler = BatchScheduler::new(
        unreachable_client(),
        BatchTargets {
            queue: "q".to_owned(),
            render_definition: "r".to_owned(),
            zip_definition: "z".to_owned(),
        },
    );
    for size in [1, 10_001] {
        let mut job = plain_job("sized");
        job.array_size = Some(size);
        match scheduler.submit(&job).await {
            // A request would have failed to connect: Transient, with another message.
            Err(SchedulerError::Rejected { message, .. }) => {
                assert!(message.contains("2 to 10000"), "{message}");
            }
            other => panic!("size {size}: {other:?}"),
        }
    }
    // The same client does fail transiently once a request goes out.
    let sent = scheduler.submit(&plain_job("plain")).await;
    assert!(matches!(&sent, Err(err) if err.is_transient()), "{sent:?}");
}
