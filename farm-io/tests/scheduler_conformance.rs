//! One scheduler conformance suite, run against `BatchScheduler` on moto_server's docker-free
//! Batch and against the test kit's `MemoryScheduler` (which unit tests use in its place). It
//! holds what the farm relies on: submitting plain, array and dependent jobs, describing them,
//! finding a request's jobs by name, cancelling, the array sizes Batch refuses, and the limits
//! each states (the memory scheduler states Batch's, `farm_io::BATCH_LIMITS`).
//!
//! moto runs nothing (its jobs succeed at once) and the memory scheduler runs nothing (its jobs
//! stay submitted), so the suite asserts no state a real job would pass through, only what every
//! backend agrees on.
//!
//! Test names: `batch::<case>` and `memory::<case>`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context};
use farm_core::scheduler::{JobKind, JobSpec, JobState, JobStatus, Scheduler, SchedulerError};

fn job(kind: JobKind, name: &str, array_size: Option<usize>) -> JobSpec {
    JobSpec {
        kind,
        name: name.to_owned(),
        array_size,
        depends_on: Vec::new(),
        env: vec![("FARM_KEY".to_owned(), "shots/a.blend".to_owned())],
        tags: BTreeMap::from([("farm:key".to_owned(), "shots/a.blend".to_owned())]),
        blender: None,
    }
}

fn ids(statuses: &[JobStatus]) -> Vec<&str> {
    let mut ids: Vec<&str> = statuses.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    ids.sort_unstable();
    ids
}

mod suite {
    use super::*;

    pub(crate) async fn submit_and_describe<S: Scheduler>(s: &S) -> anyhow::Result<()> {
        let render_id = s
            .submit(&job(JobKind::Render, "shot-render", Some(3)))
            .await?;
        let plain_id = s
            .submit(&job(JobKind::Render, "shot-plain-render", None))
            .await?;
        let mut zip = job(JobKind::Zip, "shot-zip", None);
        zip.depends_on = vec![render_id.clone()];
        let zip_id = s.submit(&zip).await?;
        let mut distinct = sorted(&[&render_id, &plain_id, &zip_id]);
        distinct.dedup();
        ensure!(distinct.len() == 3, "ids repeat: {distinct:?}");
        ensure!(distinct.iter().all(|id| !id.is_empty()));

        let statuses = s
            .describe(&[
                render_id.clone(),
                "no-such-job".to_owned(),
                plain_id.clone(),
                zip_id.clone(),
            ])
            .await?;
        assert_eq!(
            ids(&statuses),
            sorted(&[&render_id, &plain_id, &zip_id]),
            "unknown ids are left out: {statuses:?}"
        );
        let of = |id: &str| statuses.iter().find(|s| s.id == id).context("described");
        let render = of(&render_id)?;
        assert_eq!(render.name, "shot-render");
        let array = render.array.as_ref().context("an array job's progress")?;
        assert_eq!(array.size, 3);
        assert_eq!(
            array.succeeded + array.failed + array.running + array.pending,
            3,
            "every child is counted once: {array:?}"
        );
        let plain = of(&plain_id)?;
        assert_eq!(plain.name, "shot-plain-render");
        assert_eq!(plain.array, None);
        let zip = of(&zip_id)?;
        assert_eq!(zip.name, "shot-zip");
        assert_eq!(zip.array, None);
        for status in &statuses {
            assert!(
                !matches!(status.state, JobState::Other(_)),
                "a known state: {status:?}"
            );
        }
        assert!(s.describe(&[]).await?.is_empty());
        Ok(())
    }

    pub(crate) async fn find_by_name_finds_exactly_that_name<S: Scheduler>(
        s: &S,
    ) -> anyhow::Result<()> {
        let first = s
            .submit(&job(JobKind::Render, "scene-0123-render", Some(2)))
            .await?;
        let second = s
            .submit(&job(JobKind::Render, "scene-0123-render", Some(2)))
            .await?;
        let plain = s
            .submit(&job(JobKind::Render, "scene-0123-render-2", None))
            .await?;
        s.submit(&job(JobKind::Zip, "scene-0123-zip", None)).await?;

        // Both submissions of the name (a resubmitted request), their array children not, and
        // not a name it only starts.
        let found = s.find_by_name("scene-0123-render").await?;
        assert_eq!(ids(&found), sorted(&[&first, &second]), "{found:?}");
        assert!(found.iter().all(|job| job.name == "scene-0123-render"));
        let found = s.find_by_name("scene-0123-render-2").await?;
        assert_eq!(ids(&found), [plain.as_str()]);
        assert!(s.find_by_name("scene-0123").await?.is_empty());
        assert!(s.find_by_name("scene-9999-render").await?.is_empty());
        Ok(())
    }

    pub(crate) async fn cancel_stops_jobs<S: Scheduler>(s: &S) -> anyhow::Result<()> {
        let array = s
            .submit(&job(JobKind::Render, "cancel-render", Some(2)))
            .await?;
        let mut zip = job(JobKind::Zip, "cancel-zip", None);
        zip.depends_on = vec![array.clone()];
        let zip = s.submit(&zip).await?;
        let reason = "superseded: a new request for this key was submitted";
        s.cancel(&zip, reason).await?;
        s.cancel(&array, reason).await?;
        // Cancelling again is harmless.
        s.cancel(&zip, reason).await?;

        // A cancelled job ends: failed with the reason given, or (moto, whose jobs succeed at
        // once) already succeeded. It is never left waiting or running.
        let mut last = Vec::new();
        for _ in 0..100 {
            last = s.describe(&[array.clone(), zip.clone()]).await?;
            if last.len() == 2 && last.iter().all(|job| job.state.is_done()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(last.len(), 2, "{last:?}");
        for status in &last {
            assert!(status.state.is_done(), "{status:?}");
            if status.state == JobState::Failed {
                assert_eq!(status.reason.as_deref(), Some(reason), "{status:?}");
            }
        }

        // Batch requires a reason: a refusal, not worth retrying.
        let refused = s.cancel(&zip, "").await;
        assert!(
            matches!(refused, Err(SchedulerError::Rejected { .. })),
            "{refused:?}"
        );
        Ok(())
    }

    pub(crate) async fn array_sizes_batch_refuses_are_rejected<S: Scheduler>(
        s: &S,
    ) -> anyhow::Result<()> {
        // Batch arrays have 2 to 10,000 children; one chunk is a plain job.
        for size in [0, 1, 10_001] {
            let refused = s
                .submit(&job(JobKind::Render, "sized-render", Some(size)))
                .await;
            assert!(
                matches!(&refused, Err(SchedulerError::Rejected { message, .. }) if message.contains("2 to 10000")),
                "size {size}: {refused:?}"
            );
        }
        assert!(s.find_by_name("sized-render").await?.is_empty());
        // The smallest array is fine (moto would start a thread per child of the largest).
        let id = s
            .submit(&job(JobKind::Render, "sized-2-render", Some(2)))
            .await?;
        assert_eq!(ids(&s.find_by_name("sized-2-render").await?), [id.as_str()]);
        Ok(())
    }

    pub(crate) async fn states_batchs_limits_and_holds_to_them<S: Scheduler>(
        s: &S,
    ) -> anyhow::Result<()> {
        let limits = s.limits();
        assert_eq!(limits, farm_io::BATCH_LIMITS);
        let sizes = limits.array_sizes.clone();
        for size in [sizes.start() - 1, sizes.end() + 1] {
            let refused = s
                .submit(&job(JobKind::Render, "limit-render", Some(size)))
                .await;
            assert!(
                matches!(&refused, Err(SchedulerError::Rejected { .. })),
                "size {size}: {refused:?}"
            );
        }
        assert!(s.find_by_name("limit-render").await?.is_empty());
        // The farm's names and tags, made by the stated rules, are accepted.
        let mut named = job(
            JobKind::Zip,
            &limits.job_name(&format!("{}/ü.blend", "deep/".repeat(40)), "zip"),
            None,
        );
        let value = limits.tag_value(&format!("aws:{}", "ü".repeat(300)));
        named.tags.insert("farm:key".to_owned(), value);
        let id = s.submit(&named).await?;
        assert_eq!(ids(&s.find_by_name(&named.name).await?), [id.as_str()]);
        Ok(())
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod batch {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() -> anyhow::Result<()> {
                    let (_moto, scheduler) = harness::batch().await?;
                    suite::$case(&scheduler).await
                }
            )*
        }

        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() -> anyhow::Result<()> {
                    suite::$case(&farm_testkit::MemoryScheduler::new()).await
                }
            )*
        }
    };
}

conformance!(
    submit_and_describe,
    find_by_name_finds_exactly_that_name,
    cancel_stops_jobs,
    array_sizes_batch_refuses_are_rejected,
    states_batchs_limits_and_holds_to_them,
);

mod harness {
    use farm_io::{BatchScheduler, BatchTargets};
    use farm_testkit::Moto;

    /// A Batch queue and job definitions on a fresh moto_server.
    pub(crate) async fn batch() -> anyhow::Result<(Moto, BatchScheduler)> {
        let moto = Moto::start().await?;
        let env = moto.batch_env().await?;
        let scheduler = BatchScheduler::new(
            moto.batch(),
            BatchTargets {
                queue: env.queue,
                render_definition: env.render_definition,
                zip_definition: env.zip_definition,
            },
        );
        Ok((moto, scheduler))
    }
}
