//! The renderer's configuration: environment variables set by the trigger as Batch container
//! overrides (each also a flag), validated once into a [`Config`] the rest of the code trusts.

use std::path::PathBuf;

use clap::Parser;
use farm_core::blender::Blender;
use farm_core::env;
use farm_core::series::{BlenderSeries, SERIES_SYNTAX};
use farm_jobs::{JobArgs, JobTicket};

use crate::error::RenderError;
use crate::render::BlenderSetup;

/// Renders one chunk of a render job's frames with Blender and uploads them to S3.
///
/// Run by AWS Batch, one process per array child; every setting comes from the environment the
/// trigger sets. Exit codes: 0 done, 2 bad configuration, 3 bad input (no retry), 4 transient
/// failure (retry), 143 interrupted by SIGTERM (retry).
#[derive(Debug, Clone, Parser)]
#[command(name = "renderer", version, about, long_about = None, args_override_self = true)]
pub struct Args {
    /// The job's settings: the .blend, its frames and what makes a frame the job's.
    #[command(flatten)]
    pub job: JobArgs,
    /// Most seconds one frame may take before Blender is stopped and the frame fails naming the
    /// limit (the stack's FrameTimeoutSeconds, set on the job definition); 0: no limit but the
    /// attempt's.
    #[arg(long, env = env::FRAME_TIMEOUT, default_value_t = 0, help_heading = "Job")]
    pub frame_timeout: u64,
    /// This child's array index, set by AWS Batch (0-based; absent on a plain job).
    #[arg(long, env = env::ARRAY_INDEX, default_value_t = 0, help_heading = "Job")]
    pub array_index: usize,
    /// This attempt of the job, set by AWS Batch (from 1; absent: 1). Names the task record.
    #[arg(long, env = env::BATCH_JOB_ATTEMPT, default_value_t = 1, help_heading = "Job")]
    pub attempt: u32,
    /// Blender executable.
    #[arg(long, env = env::BLENDER, default_value = "blender", help_heading = "Machine")]
    pub blender: PathBuf,
    /// A Python in which `import bpy` works (Blender from PyPI); used instead of --blender when set.
    #[arg(long, env = env::BLENDER_PYTHON, help_heading = "Machine")]
    pub blender_python: Option<PathBuf>,
    /// The Blender series this image runs (major.minor), set by the renderer image.
    #[arg(long, env = env::BLENDER_SERIES, help_heading = "Machine")]
    pub blender_series: Option<String>,
    /// Scratch folder for the .blend and Blender's output (default: the system temp folder).
    #[arg(long, env = env::WORK_DIR, help_heading = "Machine")]
    pub work_dir: Option<PathBuf>,
    /// Blender threads (default: the CPUs this container may use, cgroup limits included).
    #[arg(long, env = env::THREADS, help_heading = "Machine")]
    pub threads: Option<usize>,
    /// Region whose Fargate on-demand prices a scout's estimate and the movie job's receipt use
    /// (set by Fargate).
    #[arg(
        long,
        env = "AWS_REGION",
        value_name = "REGION",
        help_heading = "Machine"
    )]
    pub region: Option<String>,
    /// Price of a vCPU-hour in USD for a scout's estimate and the movie job's receipt, instead
    /// of the region's in the built-in table.
    #[arg(long, env = farm_core::receipt::ENV_VCPU_HOUR_USD, value_name = "USD", help_heading = "Machine")]
    pub vcpu_hour_usd: Option<f64>,
    /// Price of a GB-hour in USD for a scout's estimate and the movie job's receipt.
    #[arg(long, env = farm_core::receipt::ENV_GB_HOUR_USD, value_name = "USD", help_heading = "Machine")]
    pub gb_hour_usd: Option<f64>,
    /// `json` for one JSON object per log line (CloudWatch), `text` otherwise.
    #[arg(long, env = env::LOG_FORMAT, default_value = "text", help_heading = "Machine")]
    pub log_format: String,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the job is told (the trigger's [`JobTicket`]).
    pub ticket: JobTicket,
    pub index: usize,
    /// AWS Batch's attempt number, from 1.
    pub attempt: u32,
    pub blender: BlenderSetup,
    /// Fargate prices for a scout's estimate and the movie job's receipt; `None`: a region not
    /// in the table, no override.
    pub prices: Option<farm_core::receipt::Prices>,
}

impl Args {
    /// Validates the settings. A frame list passed by reference must have been read first
    /// ([`JobArgs::resolve_frames`]).
    pub fn validate(self) -> Result<Config, RenderError> {
        let ticket = self.job.into_ticket()?;
        check_series(self.blender_series.as_deref(), ticket.blender)?;
        let work_dir = self.work_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("farm-renderer-{}", std::process::id()))
        });
        let persistent = ticket.persistent;
        let prices = farm_core::receipt::Prices::for_region(
            self.region.as_deref().unwrap_or_default(),
            self.vcpu_hour_usd,
            self.gb_hour_usd,
        );
        Ok(Config {
            ticket,
            prices,
            index: self.array_index,
            attempt: self.attempt.max(1),
            blender: BlenderSetup {
                blender: blender_from(self.blender, self.blender_python),
                threads: self.threads.unwrap_or_else(available_cpus),
                work_dir,
                persistent,
                frame_timeout: (self.frame_timeout > 0)
                    .then(|| std::time::Duration::from_secs(self.frame_timeout)),
            },
        })
    }
}

/// Refuses a job submitted for another Blender series than the image runs: its job definition
/// names the wrong image (a stack whose `Renderer<series>ImageTag` points at another series'
/// image), and rendering would silently use the wrong Blender. Nothing to check when either is
/// unknown (a local run, an image or trigger from before the variables).
pub fn check_series(image: Option<&str>, job: Option<BlenderSeries>) -> Result<(), RenderError> {
    let image = image
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<BlenderSeries>().map_err(|e| {
                RenderError::Config(format!(
                    "{}: {e} (expected {SERIES_SYNTAX})",
                    env::BLENDER_SERIES
                ))
            })
        })
        .transpose()?;
    match (image, job) {
        (Some(image), Some(job)) if image != job => Err(RenderError::Config(format!(
            "this renderer image runs Blender {image} ({}={image}) but the job was submitted for \
             Blender {job} ({}={job}): the render job definition of Blender {job} must use a \
             Blender {job} renderer image; check the stack parameter Renderer{}ImageTag \
             (infra/deploy.sh pushes one image per series, tagged r<series>-<hash>)",
            env::BLENDER_SERIES,
            env::JOB_BLENDER_SERIES,
            job.to_string().replace('.', "")
        ))),
        _ => Ok(()),
    }
}

/// Blender as the Python module when a Python is named (and not empty), else the executable.
pub fn blender_from(executable: PathBuf, python: Option<PathBuf>) -> Blender {
    match python.filter(|p| !p.as_os_str().is_empty()) {
        Some(python) => Blender::PythonModule(python),
        None => Blender::Executable(executable),
    }
}

/// CPUs this process may use. The standard library reads cgroup quotas (v1 and v2), so inside a
/// 4 vCPU Fargate task this is 4, not the host's count.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_core::blender::OutputFormat;
    use farm_core::exit::FailureClass;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec![
            "renderer",
            "--bucket",
            "b",
            "--key",
            "a b.blend",
            "--frames",
            "1-10",
            "--chunk",
            "3",
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn a_valid_configuration_plans_the_chunk() {
        let config = args(&["--array-index", "3", "--format", "exr"])
            .validate()
            .unwrap();
        assert_eq!(config.ticket.plan.chunk(config.index).unwrap(), &[10]);
        assert_eq!(config.ticket.format, Some(OutputFormat::OpenExr));
        assert_eq!(
            config.ticket.keys.frame(10, "exr"),
            "a b.blend/frames/0010.exr"
        );
        assert!(config.blender.threads >= 1);
        assert!(config.blender.persistent);
        assert!(
            !args(&["--persistent", "off"])
                .validate()
                .unwrap()
                .blender
                .persistent
        );
        let bad = [
            "renderer",
            "--bucket=b",
            "--key=k",
            "--frames=1",
            "--persistent=no",
        ];
        assert!(Args::try_parse_from(bad).is_err());
        assert_eq!(
            config.blender.blender,
            Blender::Executable("blender".into())
        );
        let config = args(&["--blender-python", "/venv/bin/python"])
            .validate()
            .unwrap();
        assert_eq!(
            config.blender.blender,
            Blender::PythonModule("/venv/bin/python".into())
        );
    }

    #[test]
    fn an_image_of_another_blender_series_refuses_the_job() {
        let err = args(&["--blender-series", "4.2", "--job-blender-series", "4.5"])
            .validate()
            .unwrap_err();
        assert_eq!(err.class(), FailureClass::Usage);
        let text = err.to_string();
        for needle in [
            "runs Blender 4.2",
            "submitted for Blender 4.5",
            env::BLENDER_SERIES,
            env::JOB_BLENDER_SERIES,
            "Renderer45ImageTag",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        // The same series, or either unknown (a local run): nothing to refuse.
        for extra in [
            &["--blender-series", "4.5", "--job-blender-series", "4.5"][..],
            &["--blender-series", " 4.5", "--job-blender-series", "4.5 "][..],
            &["--blender-series", "4.2"][..],
            &["--job-blender-series", "4.5"][..],
            &["--blender-series", "", "--job-blender-series", "4.5"][..],
        ] {
            args(extra)
                .validate()
                .unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        }
        // A value that is no series names its variable.
        for (extra, needle) in [
            (["--blender-series", "latest"], env::BLENDER_SERIES),
            (["--job-blender-series", "4"], env::JOB_BLENDER_SERIES),
        ] {
            let err = args(&extra).validate().unwrap_err();
            assert_eq!(err.class(), FailureClass::Usage);
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (extra, needle) in [
            (vec!["--frames", "5-1"], env::FRAMES),
            (vec!["--chunk", "0"], env::CHUNK),
            (vec!["--format", "gif"], env::FORMAT),
        ] {
            let err = args(&extra).validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
