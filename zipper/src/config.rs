//! The zipper's configuration: command-line flags, each also an environment variable.

use clap::Parser;
use farm_core::env;
use farm_core::receipt::{self, Prices};
use farm_jobs::{JobArgs, JobTicket};

use crate::error::ZipError;
use crate::ZipOptions;

/// Zips every expected frame of a render job into `<key>/frames.zip`.
///
/// Lists `<key>/frames/`, checks that every frame of the job is there exactly once, and streams
/// the frames in frame order into a STORED zip written straight into a multipart upload. When
/// frames are missing it writes `<key>/missing.json` instead and exits 3.
///
/// Exit codes: 0 done, 2 unusable configuration, 3 bad input (frames missing or present twice,
/// access denied), 4 transient failure (retry), 143 interrupted by SIGTERM (retry).
#[derive(Debug, Clone, Parser)]
#[command(name = "zipper", version, about, long_about)]
pub struct Cli {
    /// The job's settings: the .blend, its frames and what makes a frame the job's.
    #[command(flatten)]
    pub job: JobArgs,

    /// This attempt of the zip job, set by AWS Batch (from 1); names its task record.
    #[arg(long, env = env::BATCH_JOB_ATTEMPT, value_name = "N", default_value_t = 1)]
    pub attempt: u32,

    /// Region whose Fargate on-demand prices the receipt's cost uses (set by Fargate).
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// Price of a vCPU-hour in USD, instead of the region's in the built-in table (e.g. Spot).
    #[arg(long, env = receipt::ENV_VCPU_HOUR_USD, value_name = "USD")]
    pub vcpu_hour_usd: Option<f64>,

    /// Price of a GB-hour in USD, instead of the region's in the built-in table.
    #[arg(long, env = receipt::ENV_GB_HOUR_USD, value_name = "USD")]
    pub gb_hour_usd: Option<f64>,

    /// Write the contact sheet, `<key>/preview.jpg` (up to 64 labelled thumbnails), with the
    /// archive; `false` leaves it out (and removes an older run's).
    #[arg(long, env = env::PREVIEW, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub preview: bool,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the job is told (the trigger's [`JobTicket`]): where its frames, archive and
    /// report live, the frames the archive must hold, and which frame objects are the job's.
    pub ticket: JobTicket,
    /// Pipeline tuning.
    pub options: ZipOptions,
    /// AWS Batch's attempt number, from 1.
    pub attempt: u32,
    /// Prices for the receipt's cost; `None`: no cost (unknown region, no override).
    pub prices: Option<Prices>,
}

impl Cli {
    /// Validates the flags: a non-empty bucket and key and a well-formed frame list. A frame
    /// list passed by reference must have been read first ([`JobArgs::resolve_frames`]).
    pub fn into_config(self) -> Result<Config, ZipError> {
        let ticket = self.job.into_ticket().map_err(ZipError::from)?;
        Ok(Config {
            ticket,
            options: ZipOptions {
                preview: self.preview,
                ..ZipOptions::default()
            },
            attempt: self.attempt.max(1),
            prices: Prices::for_region(
                self.region.as_deref().unwrap_or_default(),
                self.vcpu_hour_usd,
                self.gb_hour_usd,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("zipper").chain(args.iter().copied()))
    }

    #[test]
    fn flags_make_a_config() {
        let config = cli(&["--bucket", "b", "--key", "a b.blend", "--frames", "1-3 7"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(config.ticket.bucket, "b");
        assert_eq!(config.ticket.keys.zip(), "a b.blend/frames.zip");
        assert_eq!(config.ticket.plan.frames().as_slice(), [1, 2, 3, 7]);
        assert_eq!(config.attempt, 1);
        assert!(config.options.preview);
        let config = cli(&[
            "--bucket",
            "b",
            "--key",
            "k",
            "--frames",
            "1",
            "--attempt",
            "3",
            "--region",
            "eu-west-1",
            "--vcpu-hour-usd",
            "0.5",
            "--preview",
            "false",
        ])
        .unwrap()
        .into_config()
        .unwrap();
        assert_eq!(config.attempt, 3);
        assert!(!config.options.preview);
        assert_eq!(
            config.prices,
            Some(Prices {
                vcpu_hour: 0.5,
                gb_hour: 0.004445
            })
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            ["--bucket", "b", "--key", "k", "--frames", "3-1"],
            ["--bucket", "b", "--key", "", "--frames", "1"],
            ["--bucket", " ", "--key", "k", "--frames", "1"],
        ] {
            let error = cli(&args).unwrap().into_config().unwrap_err();
            assert_eq!(error.exit_code(), farm_core::exit::USAGE, "{error}");
        }
    }

    #[test]
    fn help_names_the_variables() {
        let help = cli(&["--help"]).unwrap_err().to_string();
        for variable in [env::BUCKET, env::KEY, env::FRAMES] {
            assert!(help.contains(variable), "{variable} in {help}");
        }
    }
}
