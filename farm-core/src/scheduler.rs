//! The scheduler port: submitting, watching and cancelling the render and zip jobs.
//!
//! `farm-io` implements it on AWS Batch. Jobs are described in domain terms; which queue and job
//! definition a kind of job uses is the implementation's configuration. The test kit's
//! `farm_testkit::MemoryScheduler` passes the same conformance suite
//! (`farm-io/tests/scheduler_conformance.rs`).

use std::collections::BTreeMap;
use std::future::Future;

use crate::env;

mod limits;
use crate::series::{BlenderPick, BlenderSeries, SeriesChoice};
pub use limits::{OverLimit, SchedulerLimits};

/// Which job definition a job runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Render,
    Zip,
    /// The movie a movie scene asks for, made from the frames after the zip job: it runs on
    /// the render job definition of the job's series (Blender makes the movie, ADR 0012).
    Movie,
}

/// Where a scheduler sent a job's jobs, in the scheduler's own words (for AWS Batch, the queue
/// and job definitions: `farm_io::BatchTargets`). Recorded in `job.json` (as `targets`) as the
/// adapter wrote it, and read back only by that adapter (`farm retry` sends the retry there):
/// the farm neither reads nor writes its fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SchedulerRecord(serde_json::Value);

impl SchedulerRecord {
    /// The record of an adapter's own type.
    pub fn new<T: serde::Serialize>(record: &T) -> Self {
        Self(serde_json::to_value(record).expect("a record of plain fields serialises"))
    }

    /// The record read back as the adapter's own type.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.0)
    }
}

/// The render job definition of each Blender series a farm runs (names or ARNs), and what a
/// request without `blender=` runs (`auto`, or one series).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderDefinitions {
    default: BlenderPick,
    by_series: BTreeMap<BlenderSeries, String>,
}

/// The default series has no render job definition (or `auto` has none to choose from).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the default Blender {default} has no render job definition (there are: {})", list(.defined))]
pub struct NoDefaultDefinition {
    pub default: BlenderPick,
    pub defined: Vec<BlenderSeries>,
}

fn list(series: &[BlenderSeries]) -> String {
    if series.is_empty() {
        return "none".to_owned();
    }
    series
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl RenderDefinitions {
    pub fn new(
        default: BlenderPick,
        by_series: BTreeMap<BlenderSeries, String>,
    ) -> Result<Self, NoDefaultDefinition> {
        let defined = match default {
            BlenderPick::Series(series) => by_series.contains_key(&series),
            BlenderPick::Auto => !by_series.is_empty(),
        };
        if !defined {
            return Err(NoDefaultDefinition {
                default,
                defined: by_series.into_keys().collect(),
            });
        }
        Ok(Self { default, by_series })
    }

    /// The series and the default, as requests are judged against them.
    pub fn choice(&self) -> SeriesChoice {
        SeriesChoice::new(self.default, self.by_series.keys().copied())
            .expect("checked by new: a definition for the default, or at least one")
    }

    /// The render job definition of `series`; for `None`, of the series a request that names
    /// none runs when the file's Blender is unknown (the default's, or under `auto` the newest).
    pub fn definition(&self, series: Option<BlenderSeries>) -> Option<&str> {
        let series = series.unwrap_or_else(|| self.choice().fallback());
        self.by_series.get(&series).map(String::as_str)
    }

    pub fn default_pick(&self) -> BlenderPick {
        self.default
    }

    /// Every series and its definition, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (BlenderSeries, &str)> + '_ {
        self.by_series.iter().map(|(s, d)| (*s, d.as_str()))
    }
}

/// A job to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub kind: JobKind,
    pub name: String,
    /// Children of an array job; `None` for a plain job (see [`SchedulerLimits::array_sizes`]).
    pub array_size: Option<usize>,
    pub depends_on: Vec<String>,
    pub env: Vec<(String, String)>,
    pub tags: BTreeMap<String, String>,
    /// The Blender series a render job runs on, which picks its job definition; `None` for the
    /// zip job, or the scheduler's only render definition.
    pub blender: Option<BlenderSeries>,
}

/// Longest frame list a job's environment carries itself. A longer one is written to the bucket
/// ([`JobKeys::frame_list`]) and `FARM_FRAMES` holds `@<key>` ([`FRAMES_REF_PREFIX`]): ECS caps
/// a task's container overrides at 8,192 characters, and the S3 key (up to 1,024 bytes), bucket,
/// ETag and format must fit beside the list.
pub const FRAMES_INLINE_MAX: usize = 2_048;

/// `FARM_FRAMES=@<key>`: the frame list is the text of object `<key>` in the job's bucket.
pub const FRAMES_REF_PREFIX: char = '@';

/// Tag naming the `.blend` a job renders.
pub const TAG_KEY: &str = "farm:key";
/// Tag holding the job's canonical frame list.
pub const TAG_FRAMES: &str = "farm:frames";

/// Batch job parameter holding a job's bucket (see [`JobSpec::parameters`]).
pub const PARAM_BUCKET: &str = "farm_bucket";
/// Batch job parameter holding a job's `.blend` key, exactly (see [`JobSpec::parameters`]).
pub const PARAM_KEY: &str = "farm_key";
/// Batch job parameter holding a movie job's movie key (see [`JobSpec::parameters`]).
pub const PARAM_MOVIE: &str = "farm_movie";

impl JobSpec {
    /// The job's Batch parameters: its bucket ([`PARAM_BUCKET`]) and `.blend` key
    /// ([`PARAM_KEY`]), from its environment. Batch's job state change events carry a job's
    /// parameters as a map (`detail.parameters`), which an EventBridge input transformer can
    /// read, unlike the environment (a list) and the tags (`farm:key` holds a colon, which its
    /// paths cannot name, and tag values are sanitised): the stack's notifications name the
    /// exact key from them. No job definition's command refers to them.
    /// A movie job also gets [`PARAM_MOVIE`], the movie's key, by which the notifications tell
    /// it from the render jobs whose job definition it shares.
    pub fn parameters(&self) -> BTreeMap<String, String> {
        let var = |var: &str| {
            self.env
                .iter()
                .find(|(name, _)| name == var)
                .map(|(_, value)| value.as_str())
        };
        let movie = var(env::KEY)
            .zip(var(env::MOVIE))
            .map(|(key, extension)| crate::JobKeys::new(key).movie(extension));
        [(env::BUCKET, PARAM_BUCKET), (env::KEY, PARAM_KEY)]
            .into_iter()
            .filter_map(|(name, param)| var(name).map(|value| (param.to_owned(), value.to_owned())))
            .chain(movie.map(|key| (PARAM_MOVIE.to_owned(), key)))
            .collect()
    }

    /// Characters of the environment as ECS counts them in the container overrides (names and
    /// values, plus JSON punctuation), a bound for [`SchedulerLimits::env_max`].
    pub fn env_len(&self) -> usize {
        self.env
            .iter()
            .map(|(name, value)| name.len() + value.len() + r#"{"name":"","value":""},"#.len())
            .sum()
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Submitted,
    Pending,
    Runnable,
    Starting,
    Running,
    Succeeded,
    Failed,
    /// The scheduler no longer knows the job (Batch forgets jobs some days after they end).
    Unknown,
    /// A state this port does not name, as the scheduler spelled it.
    Other(String),
}

impl JobState {
    /// Whether the job has ended, as far as anyone can still tell: succeeded, failed, or
    /// forgotten by the scheduler.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Unknown)
    }

    /// The state's name as the farm shows it (`farm status`, its JSON): `SUCCEEDED`...
    pub fn name(&self) -> String {
        let name = match self {
            Self::Submitted => "SUBMITTED",
            Self::Pending => "PENDING",
            Self::Runnable => "RUNNABLE",
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Unknown => "UNKNOWN",
            Self::Other(other) => return other.to_uppercase(),
        };
        name.to_owned()
    }
}

/// The state's [`JobState::name`], padded as asked (`{:<10}` lines up `farm status`).
impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.name())
    }
}

impl serde::Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

/// Counts of an array job's children by state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArrayProgress {
    pub size: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub running: usize,
    pub pending: usize,
}

/// What the scheduler says of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub id: String,
    pub name: String,
    pub state: JobState,
    pub reason: Option<String>,
    pub array: Option<ArrayProgress>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    #[error("{operation} failed: {message}")]
    Transient {
        operation: &'static str,
        message: String,
    },
    #[error("{operation} failed: {message}")]
    Rejected {
        operation: &'static str,
        message: String,
    },
}

impl SchedulerError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// Runs jobs somewhere else (AWS Batch).
pub trait Scheduler: Send + Sync {
    /// Submits a job and returns its id.
    fn submit(&self, job: &JobSpec) -> impl Future<Output = Result<String, SchedulerError>> + Send;

    /// The state of each known job; unknown ids are left out.
    fn describe(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<JobStatus>, SchedulerError>> + Send;

    /// Jobs named exactly `name` that the scheduler still knows, in any state. A takeover uses
    /// it to find what a submitter that died after submitting left behind.
    fn find_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<JobStatus>, SchedulerError>> + Send;

    /// What this scheduler accepts: `farm-jobs` names, tags and checks every job by it.
    fn limits(&self) -> SchedulerLimits;

    /// Where this scheduler sends a request's jobs, with render jobs on `blender`, in its own
    /// words (recorded in `job.json`), if it has such a notion.
    fn record(&self, blender: Option<BlenderSeries>) -> Option<SchedulerRecord> {
        let _ = blender;
        None
    }

    /// The Blender series this scheduler runs render jobs on (one job definition each) and the
    /// default; `None` if it has one render job definition and no notion of series.
    fn blender(&self) -> Option<SeriesChoice> {
        None
    }

    /// Stops a job (and, for an array job, its children).
    fn cancel(
        &self,
        id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), SchedulerError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_are_named_and_padded_as_farm_status_prints_them() {
        assert_eq!(format!("{:<10}|", JobState::Succeeded), "SUCCEEDED |");
        assert_eq!(JobState::Unknown.to_string(), "UNKNOWN");
        assert_eq!(JobState::Other("weird".into()).to_string(), "WEIRD");
        assert_eq!(
            serde_json::to_value(JobState::Failed).unwrap(),
            serde_json::json!("FAILED")
        );
        assert!(JobState::Unknown.is_done() && !JobState::Running.is_done());
    }

    #[test]
    fn render_definitions_hold_their_default() {
        let (v42, v45) = (BlenderSeries::new(4, 2), BlenderSeries::new(4, 5));
        let map = BTreeMap::from([(v42, "r42".to_owned()), (v45, "r45".to_owned())]);
        let defs = RenderDefinitions::new(BlenderPick::Series(v42), map.clone()).unwrap();
        assert_eq!(defs.definition(None), Some("r42"));
        assert_eq!(defs.definition(Some(v45)), Some("r45"));
        assert_eq!(defs.definition(Some(BlenderSeries::new(5, 0))), None);
        assert_eq!(defs.choice().default_pick(), BlenderPick::Series(v42));
        assert_eq!(defs.choice().supported().collect::<Vec<_>>(), [v42, v45]);
        // `auto`: a request naming no series for an unknown file runs the newest.
        let auto = RenderDefinitions::new(BlenderPick::Auto, map.clone()).unwrap();
        assert_eq!(auto.definition(None), Some("r45"));
        assert_eq!(auto.default_pick(), BlenderPick::Auto);
        let err =
            RenderDefinitions::new(BlenderPick::Series(BlenderSeries::new(5, 0)), map).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the default Blender 5.0 has no render job definition (there are: 4.2, 4.5)"
        );
        let err = RenderDefinitions::new(BlenderPick::Auto, BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the default Blender auto has no render job definition (there are: none)"
        );
    }
}
