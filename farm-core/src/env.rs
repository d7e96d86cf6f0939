//! Names of the environment variables the farm's binaries read.
//!
//! The trigger sets the job variables as Batch container overrides; the job definitions' command
//! never changes. Each is also a command-line flag of the binary that reads it.

/// Bucket holding the `.blend` and receiving the outputs.
pub const BUCKET: &str = "FARM_BUCKET";
/// `farm`: the farm's CloudFormation stack, whose `BucketName` output is the bucket (`--stack`).
pub const STACK: &str = "FARM_STACK";
/// Key of the `.blend`.
pub const KEY: &str = "FARM_KEY";
/// Canonical frame list of the whole job, or `@<key>`: the object of the bucket holding it (long
/// lists; see `scheduler::FRAMES_INLINE_MAX`).
pub const FRAMES: &str = "FARM_FRAMES";
/// Frames per array child.
pub const CHUNK: &str = "FARM_CHUNK";
/// Render job: `off` renders every frame of a chunk from scratch (tag `persistent=off`); unset or
/// `on`: a chunk of several frames keeps Cycles' data between them (ADR 0015).
pub const PERSISTENT: &str = "FARM_PERSISTENT";
/// Render job: a scout (`estimate=N`): render this many sample frames of the job instead of
/// its chunk and write `<key>/estimate.json`, projected for the farm's [`MAX_VCPUS`].
pub const ESTIMATE: &str = "FARM_ESTIMATE";
/// Render job: most seconds one frame may take (scene update, render and save) before Blender
/// is stopped and the frame fails naming the limit; unset or `0`: no limit but the attempt's.
pub const FRAME_TIMEOUT: &str = "FARM_FRAME_TIMEOUT";
/// Optional output format override (`PNG`, `OPEN_EXR`, ...).
pub const FORMAT: &str = "FARM_FORMAT";
/// The engine a job renders with (`cycles`, `eevee`, `workbench`; see [`crate::engine`]),
/// chosen by the trigger; the zip job's frame scan checks it too. Absent: Cycles (jobs submitted
/// before the farm chose engines).
pub const ENGINE: &str = "FARM_ENGINE";
/// The view suffixes of a multiview scene saving each view to its own file (`_L,_R`; see
/// [`crate::views`]): every frame is one file per suffix. Absent: one file a frame.
pub const VIEWS: &str = "FARM_VIEWS";
/// ETag of the `.blend` the job was submitted for: a changed object is refused, not rendered.
pub const SOURCE_ETAG: &str = "FARM_SOURCE_ETAG";
/// Renderer: Blender threads (default: the CPUs the container may use).
pub const THREADS: &str = "FARM_THREADS";
/// Scratch folder for the renderer's download and Blender's output.
pub const WORK_DIR: &str = "FARM_WORK_DIR";
/// `json` for JSON log lines (CloudWatch), anything else for text.
pub const LOG_FORMAT: &str = "FARM_LOG_FORMAT";
/// Blender executable (default `blender` on `PATH`).
pub const BLENDER: &str = "BLENDER";
/// A Python in which `import bpy` works (the official Blender builds on PyPI); when set, Blender
/// runs as that Python module instead of the `BLENDER` executable.
pub const BLENDER_PYTHON: &str = "FARM_BLENDER_PYTHON";
/// `farm render` and `scripts/bpy-venv.sh`: where the official bpy builds' virtual environments
/// live (default `~/.cache/blender-farm`); `farm render` chooses among them.
pub const CACHE_DIR: &str = "FARM_CACHE_DIR";
/// Renderer image: the Blender series its Blender is (`major.minor`), set by
/// `Dockerfile.renderer`. Absent on a local machine.
pub const BLENDER_SERIES: &str = "FARM_BLENDER_SERIES";
/// Render job: the Blender series the job was submitted for (its `blender=` tag, or the farm's
/// default), set by the trigger. A renderer whose image runs another series
/// ([`BLENDER_SERIES`]) refuses the job.
pub const JOB_BLENDER_SERIES: &str = "FARM_JOB_BLENDER_SERIES";
/// `lines`: `farm` reports progress as plain lines on stderr instead of terminal bars, for the
/// programs that run it (the Blender add-on); see `farm-cli`'s `progress` module.
pub const PROGRESS: &str = "FARM_PROGRESS";
/// Set by AWS Batch on array children: 0-based index. Absent on a plain job (index 0).
pub const ARRAY_INDEX: &str = "AWS_BATCH_JOB_ARRAY_INDEX";
/// Set by AWS Batch: the attempt number, from 1 (absent outside Batch: 1). Names the task records.
pub const BATCH_JOB_ATTEMPT: &str = "AWS_BATCH_JOB_ATTEMPT";
/// Set by AWS Batch: the job id, logged with every line.
pub const BATCH_JOB_ID: &str = "AWS_BATCH_JOB_ID";

/// Trigger: queue the render and zip jobs go to (name or ARN).
pub const JOB_QUEUE: &str = "JOB_QUEUE_ARN";
/// Trigger: render job definition (name or ARN) of a farm with one Blender series, the
/// default's ([`DEFAULT_BLENDER`]); `farm retry --job-definition`.
pub const JOB_DEFINITION: &str = "JOB_DEFINITION_ARN";
/// Trigger: the render job definition of each Blender series the farm runs,
/// `4.2=<name or ARN>,4.5=<name or ARN>` (instead of [`JOB_DEFINITION`]).
pub const RENDER_JOB_DEFINITIONS: &str = "FARM_RENDER_JOB_DEFINITIONS";
/// Trigger: what a request without a `blender=` tag runs: `auto` (the series of the file,
/// the default with [`RENDER_JOB_DEFINITIONS`]) or one series (the default with
/// [`JOB_DEFINITION`] alone: [`crate::series::DEFAULT_SERIES`]).
pub const DEFAULT_BLENDER: &str = "FARM_DEFAULT_BLENDER";
/// Trigger: zip job definition (name or ARN).
pub const ZIP_JOB_DEFINITION: &str = "ZIP_JOB_DEFINITION_ARN";
/// Trigger: most frames one upload may ask for (default 10,000).
pub const MAX_FRAMES: &str = "FARM_MAX_FRAMES";
/// Trigger: the compute environment's `MaxvCpus`; `chunk=auto` fills its `MaxvCpus / 4` render
/// task slots (unset: as many tasks as an array job allows). The trigger passes it on to a scout
/// job ([`ESTIMATE`]), whose projection is made for it.
pub const MAX_VCPUS: &str = "FARM_MAX_VCPUS";
/// Trigger: the prefixes of the bucket every upload may use besides its own top-level folder,
/// comma-separated (`library/,textures/`; the stack's `SharedPrefixes`; unset: none), see
/// [`crate::deps::SharedPrefixes`].
pub const SHARED_PREFIXES: &str = "FARM_SHARED_PREFIXES";
/// Zipper: `false` leaves out the contact sheet, `<key>/preview.jpg` (default `true`).
pub const PREVIEW: &str = "FARM_PREVIEW";
/// Zipper, renderer (a scout, the movie job) and `farm report`: overrides the vCPU-hour price
/// in USD (a region not in the price table, or Spot; see [`crate::receipt`]).
pub const PRICE_VCPU_HOUR_USD: &str = "FARM_PRICE_VCPU_HOUR_USD";
/// Zipper, renderer (a scout, the movie job) and `farm report`: overrides the GB-hour price in
/// USD.
pub const PRICE_GB_HOUR_USD: &str = "FARM_PRICE_GB_HOUR_USD";
/// Tests: the bpy versions to test on instead of the default ones (space- or
/// comma-separated), e.g. `4.5.15 5.3.0` (`farm_testkit::test_bpy_versions`).
pub const TEST_BPY: &str = "FARM_TEST_BPY";
/// Overrides the time one AWS request attempt may take, in (fractional) seconds (tests).
pub const AWS_ATTEMPT_TIMEOUT: &str = "FARM_AWS_ATTEMPT_TIMEOUT_SECS";

/// Renderer: key of the job's dependency list (`<key>/deps/<hash>.json`, written by the trigger's
/// pre-flight check): every file is downloaded beside the `.blend` before Blender starts.
pub const DEPENDENCIES: &str = "FARM_DEPENDENCIES";

/// A movie job (and `job.json`): the extension of the movie the scene asks for (`mkv`, `mp4`...).
/// A renderer told it makes the job's movie from its frames instead of rendering (ADR 0012).
pub const MOVIE: &str = "FARM_MOVIE";
