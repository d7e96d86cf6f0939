//! `renderer`: reads its configuration, sets up logging and S3, runs the job its ticket names
//! (`renderer::run`), and exits with the code AWS Batch's retry rules expect (see
//! `farm_core::exit`).

use anyhow::Context;
use clap::Parser;
use farm_core::{env, exit};
use renderer::{Args, RenderError};
use tracing::error;

fn main() {
    let args = Args::parse();
    farm_io::telemetry::init(&args.log_format);
    let code = match tokio::runtime::Runtime::new().context("failed to start the async runtime") {
        Ok(runtime) => runtime.block_on(main_async(args)),
        Err(e) => {
            error!("{e:#}");
            exit::TRANSIENT
        }
    };
    std::process::exit(code);
}

async fn main_async(mut args: Args) -> i32 {
    let storage = farm_io::S3Storage::from_env(&args.job.bucket).await;
    // A long frame list comes by reference (`FARM_FRAMES=@<key>`).
    if !args.job.bucket.trim().is_empty() {
        if let Err(e) = args.job.resolve_frames(&storage).await {
            return failed(&RenderError::from(e));
        }
    }
    let config = match args.validate() {
        Ok(config) => config,
        Err(e) => return failed(&e),
    };
    let span = tracing::info_span!(
        "chunk",
        job_id = std::env::var(env::BATCH_JOB_ID).unwrap_or_default(),
        array_index = config.index,
        key = config.ticket.keys.source(),
    );
    let _entered = span.enter();
    match renderer::run(&storage, &config, farm_io::telemetry::sigterm()).await {
        Ok(_) => exit::SUCCESS,
        Err(e) => failed(&e),
    }
}

fn failed(e: &RenderError) -> i32 {
    let code = e.class().exit_code();
    error!(exit_code = code, "{e}");
    code
}
