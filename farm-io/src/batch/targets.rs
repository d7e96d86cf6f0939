//! Where a Batch scheduler sends jobs, as `job.json` records it.

use farm_core::scheduler::{JobKind, SchedulerRecord};

/// Where the farm's jobs go: one queue and a job definition per [`JobKind`] (names or ARNs).
/// Recorded in `job.json` ([`SchedulerRecord`]) so that `farm retry` needs nothing but the key
/// and the bucket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchTargets {
    /// Job queue every job goes to.
    pub queue: String,
    /// Job definition of [`JobKind::Render`] jobs.
    pub render_definition: String,
    /// Job definition of [`JobKind::Zip`] jobs.
    pub zip_definition: String,
}

impl BatchTargets {
    /// The targets a job's `job.json` records, if it records Batch's.
    pub fn recorded(record: &SchedulerRecord) -> Option<Self> {
        record.read().ok()
    }

    /// The same targets with each job definition by name ([`definition_name`]): a job submitted
    /// to them runs on the definitions' current revisions, as the stack now deploys them.
    pub fn current_revisions(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            render_definition: definition_name(&self.render_definition).to_owned(),
            zip_definition: definition_name(&self.zip_definition).to_owned(),
        }
    }

    /// The job definition of a kind of job.
    pub fn definition(&self, kind: JobKind) -> &str {
        match kind {
            JobKind::Render | JobKind::Movie => &self.render_definition,
            JobKind::Zip => &self.zip_definition,
        }
    }
}

/// The name of a job definition, whatever revision `definition` names: `name`, `name:3` and
/// `arn:aws:batch:<region>:<account>:job-definition/name:3` all give `name`. SubmitJob runs a
/// definition given by name on its latest ACTIVE revision; a redeploy registers new revisions
/// and deregisters the old ones, so a job submitted later by a recorded ARN would be refused.
pub fn definition_name(definition: &str) -> &str {
    let name = definition
        .rsplit_once(":job-definition/")
        .map_or(definition, |(_, name)| name);
    name.split_once(':').map_or(name, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_definition_is_named_without_its_revision() {
        for given in [
            "farm-render-4-2",
            "farm-render-4-2:7",
            "arn:aws:batch:eu-west-1:123456789012:job-definition/farm-render-4-2:7",
            "arn:aws-cn:batch:cn-north-1:123456789012:job-definition/farm-render-4-2",
        ] {
            assert_eq!(definition_name(given), "farm-render-4-2", "{given}");
        }
        let recorded = BatchTargets {
            queue: "arn:aws:batch:us-east-1:123456789012:job-queue/farm-queue".to_owned(),
            render_definition:
                "arn:aws:batch:us-east-1:123456789012:job-definition/farm-render-4-5:3".to_owned(),
            zip_definition: "farm-zip:3".to_owned(),
        };
        let current = recorded.current_revisions();
        assert_eq!(current.queue, recorded.queue);
        assert_eq!(current.render_definition, "farm-render-4-5");
        assert_eq!(current.zip_definition, "farm-zip");
    }

    #[test]
    fn the_record_reads_back_and_old_job_json_targets_read_as_before() {
        let targets = BatchTargets {
            queue: "queue".to_owned(),
            render_definition: "render".to_owned(),
            zip_definition: "zip".to_owned(),
        };
        let record = SchedulerRecord::new(&targets);
        assert_eq!(BatchTargets::recorded(&record), Some(targets));
        // `targets` as job.json has held it since before the record was the scheduler's.
        let old: SchedulerRecord =
            serde_json::from_str(r#"{"queue":"q","render_definition":"r:3","zip_definition":"z"}"#)
                .unwrap();
        assert_eq!(
            BatchTargets::recorded(&old),
            Some(BatchTargets {
                queue: "q".to_owned(),
                render_definition: "r:3".to_owned(),
                zip_definition: "z".to_owned(),
            })
        );
        let other: SchedulerRecord = serde_json::from_str(r#"{"cluster":"c"}"#).unwrap();
        assert_eq!(BatchTargets::recorded(&other), None);
    }
}
