//! The command line: every subcommand, flag and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use farm_core::deps::SharedPrefixes;
use farm_core::env;
use farm_core::estimate::DEFAULT_SAMPLES;
use farm_core::plan::Chunking;
use farm_core::series::BlenderPick;

use crate::machine::default_workers;

/// Render Blender scenes: on this machine, or on the AWS Batch render farm.
///
/// `farm render` runs the whole pipeline locally with no AWS account. `farm submit` uploads a
/// scene to the farm's bucket; `status`, `download`, `cancel` and `retry` follow its job there.
/// AWS region, profile and endpoint come from the standard AWS configuration (`AWS_REGION`,
/// `AWS_PROFILE`, `AWS_ENDPOINT_URL`, ~/.aws/config).
#[derive(Debug, Clone, Parser)]
#[command(name = "farm", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Examples:
  farm render examples/bounce.blend
  farm submit shot.blend --bucket my-farm --frames 1-240 --chunk 10
  farm status shot.blend --bucket my-farm")]
pub struct Cli {
    /// Log more to stderr: -v for progress details, -vv for debugging (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    Render(RenderArgs),
    Estimate(EstimateArgs),
    Inspect(InspectArgs),
    Submit(SubmitArgs),
    Status(StatusArgs),
    Download(DownloadArgs),
    Cancel(CancelArgs),
    Retry(RetryArgs),
    Report(ReportArgs),
    Blender(BlenderCommand),
}

/// Default `--part-size-mib` of `farm submit`: files larger than one part are uploaded in parts,
/// four at a time.
pub const DEFAULT_PART_MIB: u64 = 16;

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Render(_) => "render",
            Self::Estimate(_) => "estimate",
            Self::Inspect(_) => "inspect",
            Self::Submit(_) => "submit",
            Self::Status(_) => "status",
            Self::Download(_) => "download",
            Self::Cancel(_) => "cancel",
            Self::Retry(_) => "retry",
            Self::Report(_) => "report",
            Self::Blender(_) => "blender",
        }
    }
}

/// Render a scene on this machine (no AWS): frames, then a zip of them.
///
/// Plans chunks of frames exactly as the farm's trigger does and renders up to `--workers`
/// chunks at once, one Blender process per chunk, each with its share of the CPUs. Frames go to
/// `OUT/frames/<frame>.<ext>` (e.g. `frames/0001.png`, `frames/-0003.png`) and the archive to
/// `OUT/frames.zip`.
///
/// Rerunning resumes: frames already rendered from this exact .blend (same content hash) are
/// skipped; a changed scene renders again. Ctrl-C stops every Blender and leaves only whole
/// frames (exit code 130).
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm render examples/bounce.blend                   the scene's own frame range
  farm render shot.blend --frames 1-24                frames 1 to 24
  farm render shot.blend --frames '1-100:10, 150'     every 10th frame from 1, and 150
  farm render shot.blend --frames=-3--1 --out /tmp/o  negative frames -3, -2, -1
  farm render shot.blend --workers 2 --chunk 12       two Blenders at once, 12 frames each

Why the defaults: Blender's start-up (about a second, mostly on one core) is paid once per
chunk, and measured on a 2-CPU machine one Blender with both threads rendered 24 small frames
faster than two Blenders with one thread each, as fast as plain `blender -a`. So the
default is one worker per 4 CPUs (at least one) and one chunk per worker; each Blender gets
CPUs / workers threads (both threads on a 2-CPU machine, 4 or more from 4 CPUs up). More
workers may pay off with many cores, or when frames have long single-threaded parts (scene
sync, saving); see BENCHMARKS.md, section `farm render`.")]
pub struct RenderArgs {
    /// The .blend to render.
    pub scene: PathBuf,
    /// Frames to render: `7`, `1-24`, `1-100:10` (every 10th), `-5--1` (negative), several
    /// separated by commas or spaces. Default: the active scene's own range and step, read from the
    /// .blend (without starting Blender).
    #[arg(short, long, allow_hyphen_values = true, value_name = "LIST")]
    pub frames: Option<String>,
    /// Frames per chunk (one Blender process renders one chunk), or `auto`. Default (and
    /// `auto`): the frames shared evenly between the workers, so each worker starts Blender once.
    #[arg(short, long, value_name = "K|auto", value_parser = local_chunk)]
    pub chunk: Option<Chunking>,
    /// Chunks rendered at once (default: one per 4 CPUs, at least 1); each Blender gets
    /// max(1, CPUs / workers) threads.
    #[arg(short, long, value_name = "N", default_value_t = default_workers(),
          value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// Output folder. Default: `<scene>.farm/` beside the scene (`shot.blend` -> `shot.farm/`).
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Image format instead of the scene's own: PNG, JPEG, OPEN_EXR, OPEN_EXR_MULTILAYER, TIFF,
    /// BMP, TARGA, HDR, WEBP.
    #[arg(long, value_name = "F")]
    pub format: Option<String>,
    /// Render engine instead of the scene's own: cycles, eevee or workbench. Default: the
    /// scene's (EEVEE and Workbench run on the CPU, through Mesa's llvmpipe).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<farm_core::engine::Engine>,
    #[command(flatten)]
    pub blender: BlenderArgs,
    /// Threads per Blender process, instead of CPUs / workers.
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Refuse to render when a file the scene loads (texture, UDIM tile, sequence file, linked
    /// library...) is missing, instead of listing it and rendering it magenta.
    #[arg(long)]
    pub strict: bool,
    /// Render every frame from scratch: no Cycles persistent data between a chunk's frames
    /// (by default a chunk of several frames keeps the scene's geometry and BVH between them).
    #[arg(long)]
    pub no_persistent: bool,
    /// Most seconds one frame may take: past it Blender is stopped and the frame fails naming
    /// the limit (default: no limit).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub frame_timeout: Option<u64>,
    /// Render nothing: check the scene and its files, then print the plan (frames to render
    /// and already rendered, chunks, workers and threads, the Blender and the engine, where the
    /// output goes). Nothing is written or installed.
    #[arg(long)]
    pub dry_run: bool,
}

/// Estimate a job's cloud cost and time before rendering it: render a few sample frames here.
///
/// Profiles every frame of the job (at most 48, spread evenly) at 25 % of the resolution, then
/// renders the sample frames (first, middle and last of the job by default, and up to as many
/// the profile finds unlike their neighbours) with this machine's Blender, one Blender per pass
/// with persistent data as the farm's chunks, says what it measured (the profile, seconds per
/// frame, Blender's start-up, the first frame's extra), then projects the whole job on the farm
/// with the cloud model
/// (farm-core `timeline`): task-hours, wall time at `--max-vcpus`, cost on demand and on Spot,
/// and the chunk size it would choose. Frames on a 4-vCPU render task are assumed to take this
/// machine's seconds x threads / 4. `--seconds-per-frame` skips the render and projects a cost
/// given by hand.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm estimate shot.blend
  farm estimate shot.blend --frames 1-240 --samples 5 --max-vcpus 256
  farm estimate --seconds-per-frame 60 --frames 1-1000 --json")]
pub struct EstimateArgs {
    /// The .blend to sample (not needed with --seconds-per-frame and --frames).
    #[arg(required_unless_present = "seconds_per_frame")]
    pub scene: Option<PathBuf>,
    /// The job's frames (same syntax as `farm render`). Default: the scene's own range and step.
    #[arg(short, long, allow_hyphen_values = true, value_name = "LIST")]
    pub frames: Option<String>,
    /// Sample frames to render, spread over the job (first and last included); the profile
    /// may add up to as many more.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SAMPLES,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub samples: u16,
    /// Render nothing: every frame takes this many seconds on a render task.
    #[arg(long, value_name = "S", requires = "frames")]
    pub seconds_per_frame: Option<f64>,
    /// Blender's start-up per task with --seconds-per-frame (measured otherwise).
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub blender_start: f64,
    /// The farm's MaxVcpus: render tasks at once are MaxVcpus / 4.
    #[arg(long, value_name = "N", default_value_t = farm_core::timeline::DEFAULT_MAX_VCPUS)]
    pub max_vcpus: u32,
    /// Price region (Fargate on-demand Linux/x86 prices of farm-core's table).
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub region: String,
    /// Expected Spot interruptions per task-hour (an interrupted task starts over).
    #[arg(long, value_name = "RATE", default_value_t = farm_core::timeline::DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR)]
    pub spot_interruptions: f64,
    #[command(flatten)]
    pub blender: BlenderArgs,
    /// Blender threads for the samples (default: every CPU).
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Print the estimate as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Which Blender renders on this machine (`farm render`, `farm estimate`).
#[derive(Debug, Clone, Args)]
pub struct BlenderArgs {
    /// Blender executable. Without it (or --blender-python): the farm's own Blender, the
    /// official bpy build of the series --series picks, installed once (`farm blender`).
    #[arg(long, env = env::BLENDER, value_name = "PATH")]
    pub blender: Option<PathBuf>,
    /// A Python in which `import bpy` works (Blender from PyPI), used instead of --blender.
    #[arg(long, env = env::BLENDER_PYTHON, value_name = "PYTHON")]
    pub blender_python: Option<PathBuf>,
    /// Which of the farm's Blenders renders, by the cloud's rule: `auto` (default), the series
    /// of the file (its own, else the oldest newer one the farm runs), or a series, e.g. 5.0.
    #[arg(long, value_name = "SERIES|auto")]
    pub series: Option<BlenderPick>,
}

/// Show what a .blend asks for, read without Blender: scenes, frames, engine, output, files.
///
/// Reads the file's own data (Blender 2.4x to 5.x, plain, gzip or zstd) in milliseconds: the
/// version that saved it, every scene's frame range and step, fps, resolution, render engine,
/// output format and camera (the active scene, which the farm renders, is marked), and every
/// external file it can load (images, UDIM tiles, sequences, libraries, sounds, movie clips,
/// fonts, caches, volumes) with whether it is packed, found or missing, relative or absolute.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm inspect shot.blend
  farm inspect shot.blend --json | jq '.files[] | select(.exists == false)'")]
pub struct InspectArgs {
    /// The .blend to read.
    pub scene: PathBuf,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Upload a scene and its project files to the farm's bucket, tagged so the trigger starts its
/// job.
///
/// Checks everything locally first (the file is a .blend, the frame list and chunk size are
/// valid, exactly as the trigger will read them, and every file the .blend uses, through its
/// linked libraries, is there, by the trigger's own rules). Then uploads the project files the
/// bucket does not hold yet beside the .blend's key, as in the folder (`//tex/a.png` of
/// `shots/a.blend` goes to `shots/tex/a.png`), and the .blend last with its tags in the same
/// request (a .blend already there is tagged): the trigger starts the job once everything is
/// in. One progress bar over every byte; large files go in parts.
///
/// Only files inside the project folder go up (`--project DIR`; by default the current folder
/// when the .blend lies below it, else the .blend's folder): a path that climbs out of it, a
/// symlink that leads out of it and a hidden file or folder (`.git`, `.aws`, dot-files, unless
/// named with `--include-hidden`) are refused, each by name, before anything is uploaded. The
/// plan (files and bytes) is printed before the upload starts.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm submit shot.blend --bucket my-farm --frames 1-240 --chunk 10
  farm submit shot.blend --bucket my-farm --key shots/s01.blend --frame 48
  farm submit shot.blend --bucket my-farm --frames '1-100:2 150' --format OPEN_EXR
  farm submit shot.blend --bucket my-farm --frames scene --chunk auto --dry-run   the plan only
  farm submit proj/shots/a.blend --bucket my-farm --key proj/shots/a.blend --frames scene \\
      --project proj                       with ../assets/, ../lib/ at proj/assets/, proj/lib/
  cd proj && farm submit shots/a.blend --bucket my-farm --key proj/shots/a.blend --frame 1
                                           the same: the current folder is the project")]
pub struct SubmitArgs {
    /// The .blend to upload.
    pub scene: PathBuf,
    /// The farm's bucket (the CloudFormation stack's `BucketName` output), or --stack.
    #[arg(short, long, env = env::BUCKET, required_unless_present = "stack", default_value = "",
          hide_default_value = true)]
    pub bucket: String,
    #[command(flatten)]
    pub stack: StackArg,
    /// Folders of the bucket every upload may use besides its own top-level folder, as the
    /// stack's SharedPrefixes parameter gives them to the trigger (comma-separated, e.g.
    /// `library/`); with --stack they are read from the stack. A file the .blend uses outside
    /// both is refused before anything is uploaded, as the trigger would refuse it. Default: none.
    #[arg(long, env = env::SHARED_PREFIXES, value_name = "LIST", conflicts_with = "stack",
          value_parser = shared_prefixes)]
    pub shared_prefixes: Option<SharedPrefixes>,
    /// Key to upload to; must end in `.blend`. Default: the file's name. Project files go
    /// beside it as in the folder, so when the .blend uses files above its own folder
    /// (`//../assets/x.png`), keep the project's folders: `--key proj/shots/a.blend`.
    #[arg(short, long)]
    pub key: Option<String>,
    /// Frames to render: `1-24`, `1-100:10`, `-5--1`, several separated by commas or spaces;
    /// or `scene`: the active scene's own range and step, read from the .blend (here and by the
    /// trigger, which records what it read in `job.json`).
    #[arg(
        short,
        long,
        allow_hyphen_values = true,
        value_name = "LIST",
        required_unless_present = "frame",
        conflicts_with = "frame"
    )]
    pub frames: Option<String>,
    /// Render frames 1 to N (the `frame=N` tag).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub frame: Option<String>,
    /// Frames per Batch array child, or `auto` (the default): the fewest tasks that keep every
    /// task slot of the farm busy, so short frames do not each pay an image pull. (An upload
    /// tagged by hand without `chunk=` renders one frame per task.)
    #[arg(short, long, value_name = "K|auto")]
    pub chunk: Option<String>,
    /// Image format instead of the scene's own (PNG, JPEG, OPEN_EXR, ...).
    #[arg(long, value_name = "F")]
    pub format: Option<String>,
    /// Blender series to render with (the `blender=` tag: 4.2, 4.5, 5.0, 5.3), or `auto`: the
    /// series of the file (its own, else the oldest newer one the farm runs). Default: the
    /// stack's DefaultBlender, `auto` unless changed. A file no series fits is refused before
    /// anything is uploaded.
    #[arg(long, value_name = "SERIES|auto")]
    pub blender: Option<String>,
    /// Render engine instead of the scene's own: cycles, eevee or workbench (the `engine=` tag).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
    /// Upload and render even if files the .blend uses are missing or absolute paths (tags
    /// `missing=ok`: the trigger renders without them and lists them as warnings in job.json;
    /// Blender shows them magenta).
    #[arg(long)]
    pub missing_ok: bool,
    /// The project folder: only files under it are uploaded (symlinks resolved). Default: the
    /// current folder when the .blend lies below it (`cd proj && farm submit shots/a.blend`),
    /// else the .blend's own folder. A file outside it, or reached through a symlink that leaves
    /// it, is refused by name before anything is uploaded.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Upload this hidden file or folder of the project (a path relative to it, e.g.
    /// `.assets`); hidden paths (`.git`, `.aws`, dot-files) are refused unless named here.
    #[arg(long, value_name = "PATH")]
    pub include_hidden: Vec<PathBuf>,
    /// Upload nothing: check everything as a real submit does, then print the plan (files to
    /// upload and those the bucket already holds, tags, frames, chunks and tasks, Blender
    /// series, engine, a running job it would replace, warnings). A real submit prints the same
    /// plan before it uploads.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace the key's job if one is still running (a new submission stops it). Without it
    /// the submit asks at a terminal and refuses otherwise.
    #[arg(long)]
    pub replace: bool,
    /// Upload a .blend the farm cannot read (its files and frames then go unchecked).
    #[arg(long)]
    pub force: bool,
    /// Refuse to upload when there is any warning (missing files with --missing-ok, a newer
    /// Blender than the series, files outside the upload's checks...).
    #[arg(long)]
    pub strict: bool,
    /// With --dry-run: print the plan as one JSON document.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// First estimate the job: upload tagged `estimate=N`, so one scout task renders N sample
    /// frames (default 3: first, middle, last) and writes `<key>/estimate.json`; print it, then
    /// submit the job (asked at a terminal, or --yes).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3",
          value_parser = clap::value_parser!(u16).range(1..=i64::from(farm_core::request::MAX_ESTIMATE_SAMPLES)))]
    pub estimate: Option<u16>,
    /// With --estimate: submit the job after the estimate without asking.
    #[arg(long, requires = "estimate")]
    pub yes: bool,
    /// Part size in MiB for multipart uploads; files larger than one part go in parts.
    #[arg(long, hide = true, default_value_t = DEFAULT_PART_MIB,
          value_parser = clap::value_parser!(u64).range(5..=5120))]
    pub part_size_mib: u64,
}

/// Where a submitted job is: its Batch jobs and its frames.
///
/// Reads `<key>/job.json` (written by the trigger), asks AWS Batch about the render and zip
/// jobs, and counts the frames: done (in `<key>/frames/`), failed (a log in `<key>/logs/` and
/// no frame; the log's last error is shown) and pending (the rest). A rejected request shows the
/// trigger's reason.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm status shot.blend --bucket my-farm
  farm status shot.blend --bucket my-farm --json | jq .frames
  farm status shot.blend --bucket my-farm --watch        until the job ends")]
pub struct StatusArgs {
    /// Key of the uploaded .blend.
    pub key: String,
    /// The farm's bucket (the CloudFormation stack's `BucketName` output), or --stack.
    #[arg(short, long, env = env::BUCKET, required_unless_present = "stack", default_value = "",
          hide_default_value = true)]
    pub bucket: String,
    #[command(flatten)]
    pub stack: StackArg,
    /// Print one JSON document instead of text (with --watch: one JSON object per line, per
    /// change).
    #[arg(long)]
    pub json: bool,
    /// Follow the job until it ends (or Ctrl-C): a bar on a terminal, one line per change when
    /// piped. Exits 0 when the job ended complete, 1 when it did not.
    #[arg(short, long)]
    pub watch: bool,
    /// With --watch: seconds between readings.
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "watch",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub interval: u32,
}

/// A finished job's receipt: frames, tasks and retries, times, vCPU- and GB-hours and the
/// estimated cost.
///
/// Reads `<key>/receipt.json`, which the zip job writes when the job ends (and rewrites when it
/// runs again), summed from the task records every attempt writes to `<key>/tasks/`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm report shot.blend --bucket my-farm
  farm report shot.blend --bucket my-farm --json | jq .cost_usd
  farm report shot.blend --bucket my-farm --preview            -> shot.farm/preview.jpg
  farm report shot.blend --bucket my-farm --preview sheet.jpg")]
pub struct ReportArgs {
    /// Key of the uploaded .blend.
    pub key: String,
    /// The farm's bucket (the CloudFormation stack's `BucketName` output), or --stack.
    #[arg(short, long, env = env::BUCKET, required_unless_present = "stack", default_value = "",
          hide_default_value = true)]
    pub bucket: String,
    #[command(flatten)]
    pub stack: StackArg,
    /// Print `receipt.json` itself instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also download the job's contact sheet (`<key>/preview.jpg`: up to 64 labelled
    /// thumbnails) to PATH, a file or a folder (default: `<name>.cloud/preview.jpg`, beside
    /// where `farm download` puts frames.zip).
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    pub preview: Option<Option<std::path::PathBuf>>,
}

/// Fetch a job's `frames.zip`, and optionally unpack it.
///
/// Streams the archive into a temporary file beside the destination and renames it into place
/// when complete, so `OUT/frames.zip` is never half-written. `--unpack` extracts the frames into
/// `OUT/frames/`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm download shot.blend --bucket my-farm                 -> shot.cloud/frames.zip
  farm download shot.blend --bucket my-farm --unpack --out renders/shot")]
pub struct DownloadArgs {
    /// Key of the uploaded .blend.
    pub key: String,
    /// The farm's bucket (the CloudFormation stack's `BucketName` output), or --stack.
    #[arg(short, long, env = env::BUCKET, required_unless_present = "stack", default_value = "",
          hide_default_value = true)]
    pub bucket: String,
    #[command(flatten)]
    pub stack: StackArg,
    /// Output folder. Default: `<scene>.cloud/` in the current folder (`farm render` uses
    /// `<scene>.farm/`).
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also extract the frames into `OUT/frames/`.
    #[arg(long)]
    pub unpack: bool,
    /// Replace a `frames.zip` or frames already in the folder that another job or a local
    /// render wrote (a download of the same job replaces its own files without it).
    #[arg(long)]
    pub force: bool,
}

/// Stop a job: terminate its render and zip jobs on AWS Batch.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm cancel shot.blend --bucket my-farm")]
pub struct CancelArgs {
    /// Key of the uploaded .blend.
    pub key: String,
    /// The farm's bucket (the CloudFormation stack's `BucketName` output), or --stack.
    #[arg(short, long, env = env::BUCKET, required_unless_present = "stack", default_value = "",
          hide_default_value = true)]
    pub bucket: String,
    #[command(flatten)]
    pub stack: StackArg,
}

/// Render again only the frames of a job that are missing.
///
/// Compares the job's frame list with `<key>/frames/` and submits a render job for just the
/// frames not rendered for this job (missing, or left from another upload or format), and a zip
/// job that archives all of the job's frames once they are in. The jobs go to the queue and job
/// definitions recorded in `<key>/job.json`. Refuses while the job's render or zip job is still
/// queued or running (cancel it first).
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm retry shot.blend --bucket my-farm
  farm retry shots/s01.blend --bucket my-farm --queue farm-queue-2   # another queue than job.json's")]
pub struct RetryArgs {
    /// Key of the uploaded .blend.
    pub key: String,
    /// The farm's bucket (the CloudFormation stack's `BucketName` output), or --stack.
    #[arg(short, long, env = env::BUCKET, required_unless_present = "stack", default_value = "",
          hide_default_value = true)]
    pub bucket: String,
    #[command(flatten)]
    pub stack: StackArg,
    /// AWS Batch job queue (name or ARN); default: the one recorded in `job.json`.
    #[arg(long, env = env::JOB_QUEUE)]
    pub queue: Option<String>,
    /// Render job definition (name or ARN); default: the one recorded in `job.json`.
    #[arg(long, env = env::JOB_DEFINITION)]
    pub job_definition: Option<String>,
    /// Zip job definition (name or ARN); default: the one recorded in `job.json`.
    #[arg(long, env = env::ZIP_JOB_DEFINITION)]
    pub zip_job_definition: Option<String>,
}

/// `--shared-prefixes`: the trigger's own reading of the list.
fn shared_prefixes(list: &str) -> Result<SharedPrefixes, String> {
    SharedPrefixes::parse(list).map_err(|e| e.to_string())
}

/// `--stack`: the bucket read from the farm's CloudFormation stack (crate::stack).
#[derive(Debug, Clone, Args)]
pub struct StackArg {
    /// The farm's CloudFormation stack, instead of --bucket: the bucket is its `BucketName`
    /// output (one `cloudformation:DescribeStacks`).
    #[arg(long, env = env::STACK, value_name = "NAME", conflicts_with = "bucket")]
    pub stack: Option<String>,
}

/// `farm render --chunk`: a number of frames or `auto`, said in the local farm's words.
fn local_chunk(value: &str) -> Result<Chunking, String> {
    Chunking::parse(value).map_err(|_| {
        format!("`{value}` is not a chunk size: give a whole number of frames per Blender process, at least 1, or `auto`")
    })
}

/// The farm's own Blender on this machine: the official build (bpy from PyPI, hash-pinned as
/// in the cloud's images) of each series the farm runs, in the user's cache.
///
/// `farm render` and `farm estimate` install the series a file needs by themselves when no
/// Blender is named (--blender, --blender-python, BLENDER); this command lists, installs ahead
/// of time and removes them. The cache is FARM_CACHE_DIR, else $XDG_CACHE_HOME/blender-farm,
/// else ~/.cache/blender-farm; each build takes about 1 GB there.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  farm blender list
  farm blender install 4.2 5.0
  farm blender remove 5.3")]
pub struct BlenderCommand {
    #[command(subcommand)]
    pub action: BlenderAction,
}

/// What `farm blender` does.
#[derive(Debug, Clone, Subcommand)]
pub enum BlenderAction {
    /// Every series the farm runs, its pinned bpy release and whether it is installed here.
    List,
    /// Install series (e.g. `4.2`, or the release `4.2.23`): skipped when installed already.
    Install {
        #[arg(required = true, value_name = "SERIES")]
        series: Vec<String>,
    },
    /// Remove installed series.
    Remove {
        #[arg(required = true, value_name = "SERIES")]
        series: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn negative_frames_parse_as_values() {
        let cli =
            Cli::try_parse_from(["farm", "render", "a.blend", "--frames", "-3--1 4-10:3"]).unwrap();
        let Command::Render(args) = cli.command else {
            panic!("not render")
        };
        assert_eq!(args.frames.as_deref(), Some("-3--1 4-10:3"));
        assert_eq!(args.workers, default_workers());
    }

    #[test]
    fn submit_needs_exactly_one_frame_option() {
        let base = ["farm", "submit", "a.blend", "--bucket", "b"];
        assert!(Cli::try_parse_from(base).is_err());
        let both = [&base[..], &["--frames", "1-2", "--frame", "3"]].concat();
        assert!(Cli::try_parse_from(both).is_err());
        let one = [&base[..], &["--frame", "3"]].concat();
        assert!(Cli::try_parse_from(one).is_ok());
    }
}
