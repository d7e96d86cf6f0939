//! The `zipper` binary: the Batch job that zips a render job's frames into `<key>/frames.zip`.
//!
//! Configuration, exit codes and memory bounds: see `zipper --help` and `zipper/README.md`.

use std::process;

use clap::Parser;
use farm_core::env;
use farm_core::scheduler::FRAMES_REF_PREFIX;
use farm_io::S3Storage;
use tracing::Instrument;
use zipper::{Cli, Config, ZipError, ZipSummary};

fn main() {
    // Exits 2 (usage) on a missing flag or variable, 0 on `--help`.
    let cli = Cli::parse();
    farm_io::telemetry::init(&std::env::var(env::LOG_FORMAT).unwrap_or_default());
    process::exit(run_to_exit_code(cli));
}

/// Runs the zipper on a fresh runtime, which is shut down before the process exits.
///
/// One thread is plenty (the zipper waits on the network; CRCs and copies take well under a
/// second per GiB), and keeps glibc's allocator from spreading the MiB-sized buffers over
/// per-thread arenas: about 10 MiB less peak RSS than a multi-threaded runtime.
fn run_to_exit_code(mut cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "could not start the async runtime");
            return farm_core::exit::TRANSIENT;
        }
    };
    // A long frame list comes by reference (`FARM_FRAMES=@<key>`).
    if cli.job.frames.starts_with(FRAMES_REF_PREFIX) && !cli.job.bucket.trim().is_empty() {
        let resolved = runtime.block_on(async {
            let storage = S3Storage::from_env(cli.job.bucket.clone()).await;
            cli.job.resolve_frames(&storage).await
        });
        if let Err(error) = resolved {
            return log_failure(&error.into());
        }
    }
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(error) => return log_failure(&error),
    };
    let config = &config;
    let job_id = std::env::var(env::BATCH_JOB_ID).unwrap_or_default();
    let span = tracing::info_span!("zipper", job_id, key = config.ticket.keys.source());
    let result = runtime.block_on(zip(config).instrument(span.clone()));
    let _entered = span.enter();
    match result {
        Ok(summary) => {
            log_success(&summary);
            farm_core::exit::SUCCESS
        }
        Err(error) => log_failure(&error),
    }
}

async fn zip(config: &Config) -> Result<ZipSummary, ZipError> {
    tracing::info!(
        bucket = config.ticket.bucket,
        frames_expected = config.ticket.plan.frames().len(),
        "zipping frames"
    );
    let storage = S3Storage::from_env(config.ticket.bucket.clone())
        .await
        .with_upload_tuning(zipper::upload_tuning());
    zipper::run(config, &storage, farm_io::telemetry::sigterm()).await
}

fn log_success(summary: &ZipSummary) {
    tracing::info!(
        archive = summary.key,
        frames = summary.frames,
        frames_ignored = summary.ignored,
        frame_bytes = summary.frame_bytes,
        archive_bytes = summary.archive_bytes,
        seconds = summary.elapsed.as_secs_f64(),
        "frames.zip written"
    );
}

/// Logs the failure and returns the exit code it maps to.
fn log_failure(error: &ZipError) -> i32 {
    let code = error.exit_code();
    let missing = match error {
        ZipError::Missing { missing, .. } => missing.len(),
        _ => 0,
    };
    tracing::error!(%error, exit_code = code, frames_missing = missing, "zipping failed");
    code
}
