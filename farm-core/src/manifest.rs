//! `<key>/job.json`: what was asked, what was submitted, or why it was refused.

use serde::{Deserialize, Serialize};

use crate::scheduler::JobTargets;

/// Version of the manifest's JSON schema; bumped on any incompatible change.
pub const MANIFEST_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestStatus {
    /// The render and zip jobs were submitted.
    Submitted,
    /// The request was refused; `message` says why and what to do.
    Rejected,
}

/// The job manifest, one per `.blend` key, rewritten by each new request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobManifest {
    pub schema: u32,
    pub status: ManifestStatus,
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Canonical frame list (absent if the request was refused before it parsed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<String>,
    pub frame_count: usize,
    pub chunk_size: u32,
    pub chunk_count: usize,
    /// Output format override, if the request set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_job_id: Option<String>,
    /// The queue and job definitions the jobs went to: `farm retry` submits there again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<JobTargets>,
    /// Fingerprint of the request the jobs were submitted for (absent for `farm retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    pub created: jiff::Timestamp,
    /// Why a request was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The files the job loads besides the .blend, each bound to the version found before
    /// submitting; what was missing (a rejection) and the warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<crate::deps::DependencyRecord>,
}

impl JobManifest {
    /// A manifest for a refused request: no job, and the reason for the user to read.
    pub fn rejected(
        bucket: &str,
        key: &str,
        etag: Option<String>,
        message: String,
        created: jiff::Timestamp,
    ) -> Self {
        Self {
            schema: MANIFEST_SCHEMA,
            status: ManifestStatus::Rejected,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag,
            version_id: None,
            frames: None,
            frame_count: 0,
            chunk_size: 0,
            chunk_count: 0,
            format: None,
            render_job_id: None,
            zip_job_id: None,
            targets: None,
            request: None,
            created,
            message: Some(message),
            dependencies: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_reads_as_documented() {
        let manifest = JobManifest {
            schema: MANIFEST_SCHEMA,
            status: ManifestStatus::Submitted,
            bucket: "b".into(),
            key: "a b.blend".into(),
            etag: Some("\"abc\"".into()),
            version_id: None,
            frames: Some("1-24".into()),
            frame_count: 24,
            chunk_size: 4,
            chunk_count: 6,
            format: Some("PNG".into()),
            render_job_id: Some("r-1".into()),
            zip_job_id: Some("z-1".into()),
            targets: Some(JobTargets {
                queue: "q".into(),
                render_definition: "r".into(),
                zip_definition: "z".into(),
            }),
            request: Some("f".into()),
            created: "2026-11-24T10:00:00Z".parse().unwrap(),
            message: None,
            dependencies: None,
        };
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(json["schema"], 1);
        assert_eq!(json["status"], "submitted");
        assert_eq!(json["frames"], "1-24");
        assert_eq!(json["created"], "2026-11-24T10:00:00Z");
        assert!(json.get("message").is_none());
        let back: JobManifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, manifest);
    }

    #[test]
    fn rejected_manifest_carries_the_reason() {
        let manifest = JobManifest::rejected(
            "b",
            "k.blend",
            None,
            "bad tag".into(),
            jiff::Timestamp::UNIX_EPOCH,
        );
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(json["status"], "rejected");
        assert_eq!(json["message"], "bad tag");
        assert!(json.get("render_job_id").is_none());
    }
}
