//! `<key>/job.json`: what was asked, what was submitted, or why it was refused.

use serde::{Deserialize, Serialize};

use crate::blender::OutputFormat;
use crate::scheduler::SchedulerRecord;
use crate::series::BlenderSeries;

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

/// What the `.blend` reader (`farm-blend`) found in an upload: the active scene the farm renders
/// and the files it can load. `farm status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneFacts {
    /// The Blender version that saved the file (`4.2`).
    pub version: String,
    /// `none`, `gzip` or `zstd`.
    pub compression: String,
    /// The active scene, which is rendered.
    pub scene: String,
    pub frame_start: i32,
    pub frame_end: i32,
    pub frame_step: i32,
    /// The frames rendered, canonical (`1-250:7`).
    pub frames: String,
    /// The scene's engine (`BLENDER_EEVEE_NEXT`...) and the one the farm renders it with
    /// (`eevee`: [`crate::engine::Engine::name`]; `CYCLES` in records written before the farm
    /// chose engines).
    pub engine: String,
    pub rendered_with: String,
    pub resolution: [i32; 2],
    pub resolution_percentage: i32,
    /// Blender's name of the scene's output format (`PNG`, `OPEN_EXR`).
    pub output_format: String,
    /// What the farm does differently from the scene's settings, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Files outside the .blend the scene can load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SceneFile>,
}

/// A file outside the `.blend` that the scene can load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneFile {
    /// `image`, `library`, `sound`, `movie`, `font`, `cache` or `volume`.
    pub kind: String,
    /// The path as stored: `//` starts a path relative to the .blend's folder.
    pub path: String,
    pub packed: bool,
    /// How an image is read: `FILE`, `SEQUENCE`, `MOVIE` or `TILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
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
    /// Output format override, if the request set one (Blender's name: `PNG`, `OPEN_EXR`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "format_name")]
    pub format: Option<OutputFormat>,
    /// The Blender series the render job runs (`4.2`; absent if refused, or written before
    /// the farm ran several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blender: Option<BlenderSeries>,
    /// Why the job runs that series (`blender=auto`: the file was saved by Blender 5.0...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blender_reason: Option<String>,
    /// `false` when the request said `persistent=off` (recorded only then): `farm retry` keeps it.
    #[serde(default = "persistent_default", skip_serializing_if = "Clone::clone")]
    pub persistent: bool,
    /// The engine the render job runs (absent if refused, or written before the farm chose
    /// engines: Cycles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::engine::Engine>,
    /// The Blender that saved the `.blend`, from its header, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_by: Option<BlenderSeries>,
    /// What the user should know about a submitted job, one sentence each (a file saved by a
    /// newer Blender than the job's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the `.blend` reader found in the upload, when the trigger read it (`frames=scene`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<Box<SceneFacts>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_job_id: Option<String>,
    /// The extension of the movie the scene asks for (`mkv`...): the movie job writes
    /// `<key>/<stem>.<extension>` ([`crate::JobKeys::movie`]) from the frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movie: Option<String>,
    /// The movie job, which runs after the zip job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movie_job_id: Option<String>,
    /// The view suffixes of a multiview scene saving each view to its own file (`["_L",
    /// "_R"]`): each frame is one file per view ([`crate::views`]); absent: one file.
    #[serde(default, skip_serializing_if = "crate::views::FrameViews::is_single")]
    pub views: crate::views::FrameViews,
    /// Where the jobs went, in the scheduler's own words (AWS Batch: the queue and job
    /// definitions): `farm retry` submits there again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<SchedulerRecord>,
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

/// An output format in `job.json`, by Blender's name.
mod format_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::blender::OutputFormat;

    pub(super) fn serialize<S: Serializer>(
        format: &Option<OutputFormat>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match format {
            Some(format) => serializer.serialize_str(format.blender_name()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OutputFormat>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|name| name.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

fn persistent_default() -> bool {
    true
}

impl JobManifest {
    /// The version of the job's dependency list ([`crate::deps::list_version`]), which its
    /// frames record; `None` when the job has no list.
    pub fn dependency_version(&self) -> Option<&str> {
        self.dependencies
            .as_ref()
            .and_then(|d| d.list.as_deref())
            .map(crate::deps::list_version)
    }

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
            blender: None,
            blender_reason: None,
            persistent: true,
            engine: None,
            saved_by: None,
            warnings: Vec::new(),
            scene: None,
            render_job_id: None,
            zip_job_id: None,
            movie: None,
            movie_job_id: None,
            views: crate::views::FrameViews::single(),
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
            format: Some(OutputFormat::Png),
            blender: Some(BlenderSeries::new(4, 2)),
            blender_reason: Some("asked for with `blender=`".into()),
            persistent: true,
            engine: Some(crate::engine::Engine::Workbench),
            saved_by: Some(BlenderSeries::new(4, 5)),
            warnings: vec!["saved by a newer Blender".into()],
            scene: None,
            render_job_id: Some("r-1".into()),
            zip_job_id: Some("z-1".into()),
            movie: None,
            movie_job_id: None,
            views: crate::views::FrameViews::single(),
            targets: Some(SchedulerRecord::new(&serde_json::json!({
                "queue": "q",
                "render_definition": "r",
                "zip_definition": "z",
            }))),
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
        assert_eq!(json["blender"], "4.2");
        assert_eq!(json["blender_reason"], "asked for with `blender=`");
        assert_eq!(json["saved_by"], "4.5");
        assert_eq!(json["engine"], "workbench");
        assert_eq!(json["warnings"][0], "saved by a newer Blender");
        // The scheduler's record, as the scheduler wrote it (the shape job.json always had).
        assert_eq!(json["targets"]["render_definition"], "r");
        assert!(json.get("message").is_none());
        assert!(json.get("persistent").is_none(), "recorded only when off");
        let back: JobManifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, manifest);
        let off = JobManifest {
            persistent: false,
            ..manifest
        };
        let json = serde_json::to_value(&off).unwrap();
        assert_eq!(json["persistent"], false);
        assert!(
            !serde_json::from_value::<JobManifest>(json)
                .unwrap()
                .persistent
        );
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
        assert!(json.get("blender").is_none());
        assert!(json.get("engine").is_none());
        assert!(json.get("warnings").is_none());
        // A manifest written before the farm ran several Blenders still reads.
        let old: JobManifest = serde_json::from_value(json).unwrap();
        assert_eq!((old.blender, old.warnings.len()), (None, 0));
    }
}
