//! The job contract: everything a render or zip job is told, typed once.
//!
//! The trigger (and `farm retry`) makes a [`JobTicket`] from a request, turns it into the jobs'
//! environment with [`JobTicket::to_env`], and the renderer and zipper read it back with the one
//! parser, [`JobArgs`] (flattened into their command lines, each field also a variable of
//! [`farm_core::env`]), into the same ticket. `farm status` and `farm retry` make it from
//! `job.json` ([`JobTicket::from_manifest`]). What makes a frame this job's,
//! [`JobTicket::version`], is assembled here and nowhere else.
//!
//! A new field of the contract is added here: to [`JobTicket`], to [`JobArgs`] (its variable in
//! `farm-core/src/env.rs`), and to [`JobTicket::to_env`] and [`JobArgs::into_ticket`]; the
//! round-trip tests below pin that each reads back what the other writes.

use bytes::Bytes;
use farm_core::blender::OutputFormat;
use farm_core::engine::Engine;
use farm_core::frames::{DEFAULT_MAX_FRAMES, FRAMES_SYNTAX};
use farm_core::manifest::JobManifest;
use farm_core::scheduler::{FRAMES_INLINE_MAX, FRAMES_REF_PREFIX};
use farm_core::series::{BlenderPick, BlenderSeries, SERIES_SYNTAX};
use farm_core::storage::{PutOptions, StorageError};
use farm_core::views::FrameViews;
use farm_core::{env, FrameList, JobKeys, Plan, RenderRequest, Storage};

use crate::scan::OutputVersion;

/// What a job is told: which `.blend`, which frames in which chunks, and what makes a frame it
/// renders (or archives) this job's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTicket {
    /// Bucket holding the `.blend` and receiving the outputs.
    pub bucket: String,
    /// Where the `.blend` and the job's outputs are.
    pub keys: JobKeys,
    /// The job's frames and its chunks (one per array child).
    pub plan: Plan,
    /// ETag of the `.blend` the job was submitted for, quoted as S3 returns it; `None` accepts
    /// frames of any version (a job submitted without one).
    pub source_etag: Option<String>,
    /// The output format the request asked for; `None` is the scene's own.
    pub format: Option<OutputFormat>,
    /// The engine the job renders with; `None` is Cycles (jobs from before the farm chose).
    pub engine: Option<Engine>,
    /// Key of the job's dependency list (`<key>/deps/<hash>.json`), if it has one.
    pub dependencies: Option<String>,
    /// The Blender series the render job runs on; the renderer refuses another.
    pub blender: Option<BlenderSeries>,
    /// `false`: every frame of a chunk is rendered from scratch (`persistent=off`, ADR 0015).
    pub persistent: bool,
    /// The extension of the movie the scene asks for (`mkv`, `mp4`...): the movie job makes
    /// `<key>/<stem>.<ext>` from the frames (ADR 0012). Only the movie job is told: a renderer
    /// with a movie makes the movie instead of rendering.
    pub movie: Option<String>,
    /// The files each frame makes: one per view of a multiview scene saving its views as
    /// individual files ([`farm_core::views`]), else one.
    pub views: FrameViews,
    /// A scout job (`estimate=N`): one task renders sample frames of the plan instead of its
    /// chunks and writes `<key>/estimate.json`.
    pub scout: Option<Scout>,
}

/// What a scout job (`estimate=N`) is told besides the job it estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scout {
    /// Sample frames to render ([`farm_core::estimate::sample_frames`]: first, middle, last
    /// for 3).
    pub samples: u16,
    /// The stack's `MaxVcpus`, which the projection's task slots come from.
    pub max_vcpus: u32,
}

/// A job's settings that cannot make a ticket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// A value is malformed: `variable` names the setting (its environment variable).
    #[error("{variable}: {message}")]
    Invalid {
        variable: &'static str,
        message: String,
    },
    /// `job.json` does not describe a job that can be planned again.
    #[error("`{key}/job.json` {message}")]
    Manifest { key: String, message: String },
    /// The pairs are not a job's environment (an unknown variable, a value clap refuses).
    #[error("not a job's environment: {0}")]
    NotJobEnv(String),
    /// The frame list passed by reference could not be read.
    #[error("reading the frame list `{key}`: {source}")]
    FrameList { key: String, source: StorageError },
}

impl TicketError {
    fn invalid(variable: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            variable,
            message: message.to_string(),
        }
    }
}

impl JobTicket {
    /// The ticket of a request for the object `bucket`/`key` at `etag` (`None` or empty: any
    /// version), bound to the dependency list `dependencies`.
    pub fn for_request(
        bucket: &str,
        key: &str,
        etag: Option<&str>,
        request: &RenderRequest,
        dependencies: Option<&str>,
    ) -> Self {
        Self {
            bucket: bucket.to_owned(),
            keys: JobKeys::new(key),
            plan: request.plan.clone(),
            source_etag: etag.filter(|e| !e.is_empty()).map(str::to_owned),
            format: request.format,
            engine: request.engine,
            dependencies: dependencies.map(str::to_owned),
            blender: request.blender.and_then(BlenderPick::series),
            persistent: request.persistent,
            movie: None,
            views: FrameViews::single(),
            scout: None,
        }
    }

    /// The ticket of `request`'s scout job when it asks for one (`estimate=N`), for a farm of
    /// `max_vcpus` (`None`: the stack's default).
    pub fn with_scout(self, request: &RenderRequest, max_vcpus: Option<u32>) -> Self {
        Self {
            scout: request.estimate.map(|samples| Scout {
                samples,
                max_vcpus: max_vcpus.unwrap_or(farm_core::timeline::DEFAULT_MAX_VCPUS),
            }),
            ..self
        }
    }

    /// The ticket of a local render (`farm render`) into a folder laid out at its root
    /// ([`JobKeys::root`]): the scene's content hash stands for the upload's ETag, and
    /// `dependencies` is the version of the scene's files found ([`farm_core::deps::DependencyList::version`]),
    /// named by the key its list would have, so [`JobTicket::version`] reads it back.
    pub fn local(
        plan: Plan,
        source_tag: &str,
        format: Option<OutputFormat>,
        engine: Engine,
        dependencies: Option<&str>,
        persistent: bool,
    ) -> Self {
        let keys = JobKeys::root();
        Self {
            bucket: String::new(),
            dependencies: dependencies.map(|version| keys.dependency_list_of(version)),
            keys,
            plan,
            source_etag: Some(source_tag.to_owned()),
            format,
            engine: Some(engine),
            blender: None,
            persistent,
            movie: None,
            views: FrameViews::single(),
            scout: None,
        }
    }

    /// The ticket of the job `job.json` describes (a submitted one: a rejected manifest has no
    /// frame plan).
    pub fn from_manifest(manifest: &JobManifest) -> Result<Self, TicketError> {
        let list = manifest.frames.as_deref().unwrap_or_default();
        let frames =
            FrameList::parse(list, DEFAULT_MAX_FRAMES.max(manifest.frame_count)).map_err(|e| {
                TicketError::Manifest {
                    key: manifest.key.clone(),
                    message: format!("holds an unreadable frame list `{list}`: {e}"),
                }
            })?;
        let plan =
            Plan::new(frames, manifest.chunk_size.max(1)).map_err(|e| TicketError::Manifest {
                key: manifest.key.clone(),
                message: format!("holds a frame plan that cannot be cut into jobs: {e}"),
            })?;
        Ok(Self {
            bucket: manifest.bucket.clone(),
            keys: JobKeys::new(manifest.key.as_str()),
            plan,
            source_etag: manifest.etag.clone().filter(|e| !e.is_empty()),
            format: manifest.format,
            engine: manifest.engine,
            dependencies: manifest.dependencies.as_ref().and_then(|d| d.list.clone()),
            blender: manifest.blender,
            persistent: manifest.persistent,
            movie: manifest.movie.clone(),
            views: manifest.views.clone(),
            scout: None,
        })
    }

    /// What makes a frame object this job's: the one place a job's identity is assembled.
    pub fn version(&self) -> OutputVersion {
        OutputVersion {
            source_tag: self.source_etag.clone(),
            format: self.format,
            dependencies: self
                .dependencies
                .as_deref()
                .map(|list| farm_core::deps::list_version(list).to_owned()),
            engine: self.engine.unwrap_or_default(),
            views: self.views.clone(),
        }
    }

    /// The job's version ([`JobTicket::version`]) for the upload at `etag`, which a job
    /// submitted for any version (no `source_etag`) renders, and a job bound to one has found
    /// equal: the renderer stamps every frame with it.
    pub fn version_at(&self, etag: Option<&str>) -> OutputVersion {
        OutputVersion {
            source_tag: etag.map(str::to_owned),
            ..self.version()
        }
    }

    /// The ticket of the zip job that archives this job: the same frames and version, without
    /// what only the render job reads (its Blender series, `persistent=off`).
    pub fn for_zip(&self) -> Self {
        Self {
            blender: None,
            persistent: true,
            movie: None,
            scout: None,
            ..self.clone()
        }
    }

    /// The ticket of the render job: everything but the movie, which only the movie job makes.
    pub fn for_render(&self) -> Self {
        Self {
            movie: None,
            ..self.clone()
        }
    }

    /// The ticket of the movie job: the job's frames, version and Blender series, and the
    /// movie; `None` when the scene asks for no movie.
    pub fn for_movie(&self) -> Option<Self> {
        self.movie.as_ref()?;
        Some(Self {
            persistent: true,
            ..self.clone()
        })
    }

    /// The job's environment, which [`JobTicket::from_env`] (and the workers' [`JobArgs`]) read
    /// back. A frame list longer than [`FRAMES_INLINE_MAX`] is written to the bucket
    /// (`storage`, a content-named object that never changes under a job) and the environment
    /// names it (`@<key>`): ECS caps a task's container overrides at 8,192 characters.
    pub async fn to_env<S: Storage>(
        &self,
        storage: &S,
    ) -> Result<Vec<(String, String)>, StorageError> {
        let mut frames = self.plan.frames().canonical();
        if frames.len() > FRAMES_INLINE_MAX {
            let key = self.keys.frame_list(&frames);
            storage
                .put(
                    &key,
                    Bytes::from(frames),
                    &PutOptions::content_type("text/plain; charset=utf-8"),
                )
                .await?;
            frames = format!("{FRAMES_REF_PREFIX}{key}");
        }
        let mut vars = vec![
            (env::BUCKET, self.bucket.clone()),
            (env::KEY, self.keys.source().to_owned()),
            (env::FRAMES, frames),
            (env::CHUNK, self.plan.chunk_size().to_string()),
        ];
        let optional = [
            (
                env::FORMAT,
                self.format.map(|f| f.blender_name().to_owned()),
            ),
            (env::ENGINE, self.engine.map(|e| e.name().to_owned())),
            (env::SOURCE_ETAG, self.source_etag.clone()),
            (env::DEPENDENCIES, self.dependencies.clone()),
            (env::JOB_BLENDER_SERIES, self.blender.map(|s| s.to_string())),
            (
                env::PERSISTENT,
                (!self.persistent).then(|| "off".to_owned()),
            ),
            (env::MOVIE, self.movie.clone()),
            (
                env::VIEWS,
                (!self.views.is_single()).then(|| self.views.canonical()),
            ),
            (env::ESTIMATE, self.scout.map(|s| s.samples.to_string())),
            (env::MAX_VCPUS, self.scout.map(|s| s.max_vcpus.to_string())),
        ];
        vars.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v))),
        );
        Ok(vars
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect())
    }

    /// Reads a job's environment back ([`JobTicket::to_env`]) with the workers' own parser,
    /// resolving a frame list passed by reference from `storage`.
    pub async fn from_env<S: Storage>(
        vars: &[(String, String)],
        storage: &S,
    ) -> Result<Self, TicketError> {
        let mut args = JobArgs::from_vars(vars)?;
        args.resolve_frames(storage).await?;
        args.into_ticket()
    }
}

/// The job's settings as the workers receive them: each a flag and an environment variable
/// (set by the trigger as container overrides). The renderer and the zipper flatten it into
/// their command lines (`#[command(flatten)]`) and make a [`JobTicket`] of it.
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// Bucket holding the .blend; frames are written next to it.
    #[arg(long, env = env::BUCKET, help_heading = "Job")]
    pub bucket: String,
    /// Key of the .blend; frames go to `<key>/frames/`.
    #[arg(long, env = env::KEY, help_heading = "Job")]
    pub key: String,
    /// Canonical frame list of the whole job, e.g. `1-240` or `1-100:2 150`, or `@<key>`: the
    /// object of the bucket holding it.
    #[arg(long, env = env::FRAMES, help_heading = "Job")]
    pub frames: String,
    /// Frames per array child.
    #[arg(long, env = env::CHUNK, default_value_t = 1, help_heading = "Job")]
    pub chunk: u32,
    /// Output format override (PNG, JPEG, OPEN_EXR, ...); the scene's own format if unset.
    #[arg(long, env = env::FORMAT, help_heading = "Job")]
    pub format: Option<String>,
    /// `off`: render every frame of the chunk from scratch, without Cycles' persistent data
    /// (tag `persistent=off`); `on` (default): keep it between the chunk's frames (ADR 0015).
    #[arg(long, env = env::PERSISTENT, default_value = "on", value_parser = ["on", "off"], help_heading = "Job")]
    pub persistent: String,
    /// The render engine (`cycles`, `eevee`, `workbench`), chosen by the trigger from the
    /// scene (or its `engine=` tag): only frames rendered with it are the job's. Default: Cycles.
    #[arg(long, env = env::ENGINE, help_heading = "Job")]
    pub engine: Option<Engine>,
    /// ETag of the .blend the job was submitted for: a replaced .blend is refused, and only
    /// frames rendered from it are the job's.
    #[arg(long, env = env::SOURCE_ETAG, help_heading = "Job")]
    pub source_etag: Option<String>,
    /// Key of the job's dependency list (written by the trigger's pre-flight check): its files
    /// are downloaded beside the .blend, each at its recorded ETag, before Blender starts, and
    /// only frames rendered with them are the job's.
    #[arg(long, env = env::DEPENDENCIES, help_heading = "Job")]
    pub dependencies: Option<String>,
    /// The Blender series the job was submitted for (`blender=` or the farm's default), set by
    /// the trigger; the renderer refuses it when its image runs another (--blender-series).
    #[arg(long, env = env::JOB_BLENDER_SERIES, help_heading = "Job")]
    pub job_blender_series: Option<String>,
    /// The extension of the movie the scene asks for (`mkv`, `mp4`...), set by the trigger on
    /// the movie job only: the renderer then makes `<key>/<stem>.<ext>` from the job's frames
    /// instead of rendering.
    #[arg(long, env = env::MOVIE, help_heading = "Job")]
    pub movie: Option<String>,
    /// The view suffixes of a multiview scene saving each view to its own file (`_L,_R`), set
    /// by the trigger from the scene: every frame is one file per view. Unset: one file.
    #[arg(long, env = env::VIEWS, help_heading = "Job")]
    pub views: Option<String>,
    /// A scout job (tag `estimate=N`): render this many sample frames of the job (first,
    /// middle, last for 3) on this one task instead of a chunk, and write `<key>/estimate.json`.
    #[arg(long, env = env::ESTIMATE, help_heading = "Job")]
    pub estimate: Option<u16>,
    /// The farm's MaxVcpus, which a scout's projection is made for (default: the stack's, 64).
    #[arg(long, env = env::MAX_VCPUS, help_heading = "Job")]
    pub max_vcpus: Option<u32>,
}

impl JobArgs {
    /// Parses environment pairs as the workers' command lines would read them from their
    /// environment (the same definitions: each pair is given as the flag of its variable).
    fn from_vars(vars: &[(String, String)]) -> Result<Self, TicketError> {
        use clap::{Args, FromArgMatches};
        let command = Self::augment_args(clap::Command::new("job").no_binary_name(true));
        let flags: Vec<(String, String)> = command
            .get_arguments()
            .filter_map(|arg| {
                let var = arg.get_env()?.to_str()?;
                Some((var.to_owned(), arg.get_long()?.to_owned()))
            })
            .collect();
        let mut argv = Vec::with_capacity(vars.len());
        for (name, value) in vars {
            let (_, flag) = flags
                .iter()
                .find(|(var, _)| var == name)
                .ok_or_else(|| TicketError::NotJobEnv(format!("`{name}` is not a job variable")))?;
            argv.push(format!("--{flag}={value}"));
        }
        // Only the pairs count: this process's own environment is no job's.
        let command = command.mut_args(|arg| arg.env(clap::builder::Resettable::Reset));
        let matches = command
            .try_get_matches_from(argv)
            .map_err(|e| TicketError::NotJobEnv(e.render().to_string()))?;
        Self::from_arg_matches(&matches).map_err(|e| TicketError::NotJobEnv(e.render().to_string()))
    }

    /// Replaces a frame list passed by reference (`@<key>`) with the text of the object it
    /// names in `storage`, the job's bucket.
    pub async fn resolve_frames<S: Storage>(&mut self, storage: &S) -> Result<(), TicketError> {
        let Some(key) = self.frames.strip_prefix(FRAMES_REF_PREFIX) else {
            return Ok(());
        };
        let failed = |source| TicketError::FrameList {
            key: key.to_owned(),
            source,
        };
        let body = storage.get(key).await.map_err(failed)?;
        let text = String::from_utf8(body.to_vec()).map_err(|_| {
            failed(StorageError::Permanent {
                operation: "GetObject",
                key: key.to_owned(),
                message: "the frame list is not UTF-8 text".to_owned(),
            })
        })?;
        self.frames = text;
        Ok(())
    }

    /// Validates the settings into the ticket the rest of the worker trusts. A frame list still
    /// passed by reference is refused ([`JobArgs::resolve_frames`] reads it first).
    pub fn into_ticket(self) -> Result<JobTicket, TicketError> {
        if self.bucket.trim().is_empty() {
            return Err(TicketError::invalid(
                env::BUCKET,
                "the bucket is empty: set it, or --bucket",
            ));
        }
        if self.key.trim().is_empty() {
            return Err(TicketError::invalid(
                env::KEY,
                "the .blend key is empty: set it, or --key",
            ));
        }
        let frames = FrameList::parse(&self.frames, DEFAULT_MAX_FRAMES).map_err(|e| {
            TicketError::invalid(
                env::FRAMES,
                format!("--frames: {e} (expected {FRAMES_SYNTAX})"),
            )
        })?;
        let plan = Plan::new(frames, self.chunk)
            .map_err(|e| TicketError::invalid(env::CHUNK, format!("--chunk: {e}")))?;
        let format = non_empty(self.format)
            .map(|f| f.parse::<OutputFormat>())
            .transpose()
            .map_err(|e| TicketError::invalid(env::FORMAT, format!("--format: {e}")))?;
        let blender = non_empty(self.job_blender_series)
            .map(|s| s.trim().parse::<BlenderSeries>())
            .transpose()
            .map_err(|e| TicketError::invalid(env::JOB_BLENDER_SERIES, job_series_error(e)))?;
        let movie = non_empty(self.movie)
            .map(|ext| check_movie_extension(ext.trim()))
            .transpose()?;
        let views = FrameViews::parse(self.views.as_deref().unwrap_or_default())
            .map_err(|e| TicketError::invalid(env::VIEWS, format!("--views: {e}")))?;
        let max = farm_core::request::MAX_ESTIMATE_SAMPLES;
        let scout = match self.estimate {
            None => None,
            Some(samples) if (1..=max).contains(&samples) => Some(Scout {
                samples,
                max_vcpus: self
                    .max_vcpus
                    .unwrap_or(farm_core::timeline::DEFAULT_MAX_VCPUS),
            }),
            Some(samples) => {
                return Err(TicketError::invalid(
                    env::ESTIMATE,
                    format!("--estimate {samples}: use 1 to {max} sample frames"),
                ))
            }
        };
        Ok(JobTicket {
            bucket: self.bucket,
            keys: JobKeys::new(self.key),
            plan,
            source_etag: non_empty(self.source_etag),
            format,
            engine: self.engine,
            dependencies: non_empty(self.dependencies),
            blender,
            persistent: self.persistent == "on",
            movie,
            views,
            scout,
        })
    }
}

/// A movie's extension names the object beside `frames.zip` the movie job writes: one of
/// Blender's movie containers' ([`farm_blend::MOVIE_EXTENSIONS`]).
fn check_movie_extension(ext: &str) -> Result<String, TicketError> {
    if !farm_blend::MOVIE_EXTENSIONS.contains(&ext) {
        return Err(TicketError::invalid(
            env::MOVIE,
            format!(
                "--movie: `{ext}` is not a movie file extension Blender writes ({})",
                farm_blend::MOVIE_EXTENSIONS.join(", ")
            ),
        ));
    }
    Ok(ext.to_owned())
}

fn job_series_error(e: impl std::fmt::Display) -> String {
    format!("{e} (expected {SERIES_SYNTAX})")
}

/// An optional setting, with an empty (or blank) value read as unset.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests;
