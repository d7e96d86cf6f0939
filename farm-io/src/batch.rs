//! [`Scheduler`] on AWS Batch.

use std::collections::HashMap;

use aws_sdk_batch::config::http::HttpResponse;
use aws_sdk_batch::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_batch::operation::submit_job::builders::SubmitJobFluentBuilder;
use aws_sdk_batch::types::{
    ArrayProperties, ArrayPropertiesDetail, ContainerOverrides, JobDependency, JobDetail,
    KeyValuePair, KeyValuesPair,
};
use aws_sdk_batch::Client;
use farm_core::scheduler::{
    ArrayProgress, JobKind, JobSpec, JobState, JobStatus, RenderDefinitions, Scheduler,
    SchedulerError, SchedulerLimits, SchedulerRecord,
};
use farm_core::series::{BlenderSeries, SeriesChoice};

use crate::aws_error::Failure;

/// What AWS Batch accepts ([`Scheduler::limits`]): arrays of 2 to 10,000 children, ECS's
/// 8,192 characters of container overrides, SubmitJob's job names (128 characters) and Batch's
/// tag rules (keys of 128 characters, values of 256, `aws:` reserved).
pub const BATCH_LIMITS: SchedulerLimits = SchedulerLimits {
    array_sizes: 2..=10_000,
    env_max: 8_192,
    job_name_max: 128,
    tag_key_max: 128,
    tag_value_max: 256,
    tag_reserved_prefix: "aws:",
};
/// Most job ids one DescribeJobs call takes.
const DESCRIBE_BATCH: usize = 100;

mod targets;
pub use targets::{definition_name, BatchTargets};

/// [`Scheduler`] on AWS Batch.
///
/// Failures are classified: throttling, 5xx (`ServerException`) and transport errors are
/// [`SchedulerError::Transient`]; `ClientException` and any other 4xx are
/// [`SchedulerError::Rejected`].
#[derive(Debug, Clone)]
pub struct BatchScheduler {
    client: Client,
    targets: BatchTargets,
    render: Option<RenderDefinitions>,
}

impl BatchScheduler {
    /// A scheduler submitting to `targets` through `client`.
    pub fn new(client: Client, targets: BatchTargets) -> Self {
        Self {
            client,
            targets,
            render: None,
        }
    }

    /// Render jobs go to the job definition of their Blender series (`targets`' render
    /// definition is then unused), and a series outside `render` is refused.
    pub fn with_render_definitions(mut self, render: RenderDefinitions) -> Self {
        self.render = Some(render);
        self
    }

    /// The job definition `job` runs on.
    fn definition(&self, job: &JobSpec) -> Result<&str, SchedulerError> {
        match (&self.render, job.kind) {
            (Some(render), JobKind::Render | JobKind::Movie) => render
                .definition(job.blender)
                .ok_or_else(|| SchedulerError::Rejected {
                    operation: "submit job",
                    message: format!(
                        "no render job definition for Blender {}",
                        job.blender.map(|b| b.to_string()).unwrap_or_default()
                    ),
                }),
            _ => Ok(self.targets.definition(job.kind)),
        }
    }

    /// The queue and job definitions jobs go to.
    pub fn targets(&self) -> &BatchTargets {
        &self.targets
    }

    /// The SubmitJob request for `job`, refused before sending if Batch would refuse it.
    fn submit_request(&self, job: &JobSpec) -> Result<SubmitJobFluentBuilder, SchedulerError> {
        let array = array_properties(job.array_size)?;
        let definition = self.definition(job)?;
        let environment = job
            .env
            .iter()
            .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
            .collect();
        // No dependency type: on an array job, the dependent waits for the whole array.
        let depends_on = job
            .depends_on
            .iter()
            .map(|id| JobDependency::builder().job_id(id).build())
            .collect();
        let tags: HashMap<String, String> = job
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(self
            .client
            .submit_job()
            .job_name(&job.name)
            .job_queue(&self.targets.queue)
            .job_definition(definition)
            .set_array_properties(array)
            .set_depends_on(Some(depends_on))
            .container_overrides(
                ContainerOverrides::builder()
                    .set_environment(Some(environment))
                    .build(),
            )
            .set_tags((!tags.is_empty()).then_some(tags))
            .set_parameters(Some(job.parameters().into_iter().collect()))
            .propagate_tags(true))
    }
}

impl Scheduler for BatchScheduler {
    fn limits(&self) -> SchedulerLimits {
        BATCH_LIMITS
    }

    fn record(&self, blender: Option<BlenderSeries>) -> Option<SchedulerRecord> {
        let mut targets = self.targets.clone();
        if let Some(definition) = self.render.as_ref().and_then(|r| r.definition(blender)) {
            definition.clone_into(&mut targets.render_definition);
        }
        Some(SchedulerRecord::new(&targets))
    }

    fn blender(&self) -> Option<SeriesChoice> {
        self.render.as_ref().map(RenderDefinitions::choice)
    }

    async fn submit(&self, job: &JobSpec) -> Result<String, SchedulerError> {
        let output = self
            .submit_request(job)?
            .send()
            .await
            .map_err(|err| scheduler_error("submit job", &err))?;
        output
            .job_id()
            .map(str::to_owned)
            .ok_or_else(|| SchedulerError::Rejected {
                operation: "submit job",
                message: "SubmitJob returned no job id".to_owned(),
            })
    }

    async fn describe(&self, ids: &[String]) -> Result<Vec<JobStatus>, SchedulerError> {
        let mut statuses = Vec::with_capacity(ids.len());
        for batch in ids.chunks(DESCRIBE_BATCH) {
            let output = self
                .client
                .describe_jobs()
                .set_jobs(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|err| scheduler_error("describe jobs", &err))?;
            statuses.extend(output.jobs().iter().filter_map(job_status));
        }
        Ok(statuses)
    }

    async fn find_by_name(&self, name: &str) -> Result<Vec<JobStatus>, SchedulerError> {
        // With a JOB_NAME filter ListJobs returns jobs in every state (newest first).
        let filter = KeyValuesPair::builder()
            .name("JOB_NAME")
            .values(name)
            .build();
        let mut found = Vec::new();
        let mut pages = self
            .client
            .list_jobs()
            .job_queue(&self.targets.queue)
            .filters(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| scheduler_error("list jobs", &err))?;
            found.extend(page.job_summary_list().iter().filter_map(|job| {
                Some(JobStatus {
                    id: job.job_id()?.to_owned(),
                    name: job.job_name()?.to_owned(),
                    state: job
                        .status()
                        .map_or(JobState::Other(String::new()), |s| job_state(s.as_str())),
                    reason: job.status_reason().map(str::to_owned),
                    array: None,
                })
            }));
        }
        // The filter ignores case, and moto also lists array children (`<parent id>:<index>`,
        // named like their parent), which ListJobs on AWS leaves out without `arrayJobId`.
        Ok(found
            .into_iter()
            .filter(|job| job.name == name && !job.id.contains(':'))
            .collect())
    }

    async fn cancel(&self, id: &str, reason: &str) -> Result<(), SchedulerError> {
        // TerminateJob stops the job whatever its state; on an array job, its children too.
        self.client
            .terminate_job()
            .job_id(id)
            .reason(reason)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| scheduler_error("terminate job", &err))
    }
}

/// Batch's array properties for `size`, refusing sizes Batch would refuse.
fn array_properties(size: Option<usize>) -> Result<Option<ArrayProperties>, SchedulerError> {
    let Some(size) = size else {
        return Ok(None);
    };
    let sizes = BATCH_LIMITS.array_sizes;
    if !sizes.contains(&size) {
        return Err(SchedulerError::Rejected {
            operation: "submit job",
            message: farm_core::scheduler::OverLimit::ArraySize { size, sizes }.to_string(),
        });
    }
    let size = i32::try_from(size).map_err(|_| SchedulerError::Rejected {
        operation: "submit job",
        message: format!("array size {size} is out of range"),
    })?;
    Ok(Some(ArrayProperties::builder().size(size).build()))
}

/// One job of a DescribeJobs answer; jobs without an id are left out.
fn job_status(job: &JobDetail) -> Option<JobStatus> {
    Some(JobStatus {
        id: job.job_id()?.to_owned(),
        name: job.job_name().unwrap_or_default().to_owned(),
        state: job
            .status()
            .map_or(JobState::Other(String::new()), |s| job_state(s.as_str())),
        reason: job.status_reason().map(str::to_owned),
        array: job.array_properties().and_then(array_progress),
    })
}

/// A Batch status string as a [`JobState`].
pub(crate) fn job_state(status: &str) -> JobState {
    match status {
        "SUBMITTED" => JobState::Submitted,
        "PENDING" => JobState::Pending,
        "RUNNABLE" => JobState::Runnable,
        "STARTING" => JobState::Starting,
        "RUNNING" => JobState::Running,
        "SUCCEEDED" => JobState::Succeeded,
        "FAILED" => JobState::Failed,
        other => JobState::Other(other.to_owned()),
    }
}

/// The children's counts of an array job (the parent only: children carry an index, no size).
///
/// `running` counts `STARTING` and `RUNNING` children; `pending` counts `SUBMITTED`, `PENDING`
/// and `RUNNABLE` ones.
fn array_progress(array: &ArrayPropertiesDetail) -> Option<ArrayProgress> {
    let size = array.size()?;
    let summary = array.status_summary();
    let count = |states: &[&str]| -> usize {
        states
            .iter()
            .filter_map(|state| summary.and_then(|s| s.get(*state)))
            .map(|n| usize::try_from(*n).unwrap_or(0))
            .sum()
    };
    Some(ArrayProgress {
        size: usize::try_from(size).unwrap_or(0),
        succeeded: count(&["SUCCEEDED"]),
        failed: count(&["FAILED"]),
        running: count(&["STARTING", "RUNNING"]),
        pending: count(&["SUBMITTED", "PENDING", "RUNNABLE"]),
    })
}

fn scheduler_error<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> SchedulerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = Failure::of(err);
    if failure.is_transient() {
        SchedulerError::Transient {
            operation,
            message: failure.message,
        }
    } else {
        SchedulerError::Rejected {
            operation,
            message: failure.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn array_sizes_outside_batch_limits_are_refused() {
        assert!(array_properties(None).unwrap().is_none());
        assert_eq!(array_properties(Some(2)).unwrap().unwrap().size(), Some(2));
        assert!(array_properties(Some(10_000)).unwrap().is_some());
        for size in [0, 1, 10_001] {
            assert!(matches!(
                array_properties(Some(size)),
                Err(SchedulerError::Rejected { .. })
            ));
        }
    }

    fn offline_scheduler() -> BatchScheduler {
        let config = aws_sdk_batch::Config::builder()
            .behavior_version(aws_sdk_batch::config::BehaviorVersion::latest())
            .region(aws_sdk_batch::config::Region::new("us-east-1"))
            .build();
        BatchScheduler::new(
            Client::from_conf(config),
            BatchTargets {
                queue: "queue".to_owned(),
                render_definition: "render".to_owned(),
                zip_definition: "zip".to_owned(),
            },
        )
    }

    #[test]
    fn render_jobs_go_to_their_blender_series_definition() {
        let (v42, v45) = (BlenderSeries::new(4, 2), BlenderSeries::new(4, 5));
        let defs = RenderDefinitions::new(
            farm_core::series::BlenderPick::Series(v42),
            [
                (v42, "render-4-2".to_owned()),
                (v45, "render-4-5".to_owned()),
            ]
            .into(),
        )
        .unwrap();
        let scheduler = offline_scheduler().with_render_definitions(defs);
        let mut job = JobSpec {
            kind: JobKind::Render,
            name: "shot-render".to_owned(),
            array_size: None,
            depends_on: Vec::new(),
            env: Vec::new(),
            tags: BTreeMap::new(),
            blender: Some(v45),
        };
        let definition = |job: &JobSpec| {
            scheduler
                .submit_request(job)
                .map(|r| r.as_input().get_job_definition().clone().unwrap())
        };
        assert_eq!(definition(&job).unwrap(), "render-4-5");
        job.blender = None;
        assert_eq!(definition(&job).unwrap(), "render-4-2");
        job.blender = Some(BlenderSeries::new(5, 0));
        assert!(matches!(
            definition(&job),
            Err(SchedulerError::Rejected { message, .. }) if message.contains("Blender 5.0")
        ));
        job.kind = JobKind::Zip;
        assert_eq!(definition(&job).unwrap(), "zip");
        let recorded = |scheduler: &BatchScheduler, blender| {
            BatchTargets::recorded(&scheduler.record(blender).unwrap()).unwrap()
        };
        assert_eq!(
            recorded(&scheduler, Some(v45)).render_definition,
            "render-4-5"
        );
        assert_eq!(recorded(&scheduler, None).render_definition, "render-4-2");
        assert_eq!(
            scheduler.blender().unwrap().default_pick(),
            farm_core::series::BlenderPick::Series(v42)
        );
        assert_eq!(offline_scheduler().blender(), None);
        assert_eq!(
            recorded(&offline_scheduler(), Some(v45)).render_definition,
            "render"
        );
    }

    #[test]
    fn submit_requests_carry_the_whole_spec() {
        let job = JobSpec {
            kind: JobKind::Zip,
            name: "shot-zip".to_owned(),
            array_size: None,
            depends_on: vec!["render-1".to_owned()],
            env: vec![(farm_core::env::KEY.to_owned(), "shot.blend".to_owned())],
            tags: [("farm:key".to_owned(), "shot.blend".to_owned())].into(),
            blender: None,
        };
        let request = offline_scheduler().submit_request(&job).unwrap();
        let input = request.as_input();
        assert_eq!(input.get_job_name().as_deref(), Some("shot-zip"));
        assert_eq!(input.get_job_queue().as_deref(), Some("queue"));
        assert_eq!(input.get_job_definition().as_deref(), Some("zip"));
        assert_eq!(input.get_propagate_tags(), &Some(true));
        assert!(input.get_array_properties().is_none());
        let depends_on = input.get_depends_on().as_ref().unwrap();
        assert_eq!(depends_on[0].job_id(), Some("render-1"));
        assert!(depends_on[0].r#type().is_none());
        let env = input
            .get_container_overrides()
            .as_ref()
            .unwrap()
            .environment();
        assert_eq!(env[0].name(), Some(farm_core::env::KEY));
        assert_eq!(env[0].value(), Some("shot.blend"));
        assert_eq!(
            input
                .get_tags()
                .as_ref()
                .unwrap()
                .get("farm:key")
                .map(String::as_str),
            Some("shot.blend")
        );
        // The key, exactly, for the notifications' input transformer (detail.parameters).
        assert_eq!(
            input
                .get_parameters()
                .as_ref()
                .unwrap()
                .get(farm_core::scheduler::PARAM_KEY)
                .map(String::as_str),
            Some("shot.blend")
        );

        let mut render = job;
        render.kind = JobKind::Render;
        render.array_size = Some(7);
        let request = offline_scheduler().submit_request(&render).unwrap();
        assert_eq!(
            request.as_input().get_job_definition().as_deref(),
            Some("render")
        );
        assert_eq!(
            request
                .as_input()
                .get_array_properties()
                .as_ref()
                .and_then(|a| a.size()),
            Some(7)
        );
    }

    #[test]
    fn batch_states_its_own_numbers_and_the_farms_largest_plan_fits() {
        assert!(BATCH_LIMITS
            .array_sizes
            .contains(&farm_core::plan::MAX_ARRAY_SIZE));
        assert!(array_properties(Some(*BATCH_LIMITS.array_sizes.start())).is_ok());
        // Tag values of 256 characters, `aws:` reserved; job names of 128.
        let value = BATCH_LIMITS.tag_value(&format!("aws:{}", "a".repeat(300)));
        assert_eq!(value.len(), 256);
        assert!(value.starts_with("aws_"), "{value}");
        assert!(BATCH_LIMITS.is_valid_tag_value(&value));
        let name = BATCH_LIMITS.job_name(&"a".repeat(300), "0123456789abcdef-render");
        assert_eq!(name.len(), 128, "{name}");
        assert!(BATCH_LIMITS.check_job_name(&name).is_ok());
        assert!(BATCH_LIMITS.check_job_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn statuses_map_to_states() {
        assert_eq!(job_state("RUNNABLE"), JobState::Runnable);
        assert_eq!(job_state("SUCCEEDED"), JobState::Succeeded);
        assert_eq!(job_state("NEW"), JobState::Other("NEW".to_owned()));
    }

    #[test]
    fn array_progress_groups_child_states() {
        let detail = ArrayPropertiesDetail::builder()
            .size(10)
            .status_summary("SUCCEEDED", 3)
            .status_summary("FAILED", 1)
            .status_summary("RUNNING", 2)
            .status_summary("STARTING", 1)
            .status_summary("RUNNABLE", 2)
            .status_summary("PENDING", 1)
            .build();
        assert_eq!(
            array_progress(&detail),
            Some(ArrayProgress {
                size: 10,
                succeeded: 3,
                failed: 1,
                running: 3,
                pending: 3,
            })
        );
    }
}
