//! `farm status`: the manifest, the Batch jobs and the frames of one job, by concern:
//! [`fetch`] reads them through the ports, [`judge`] says what they amount to (no I/O),
//! [`print`] writes the text; [`spend`] is the cost so far and the ETA; [`watch`] follows the
//! job until it ends (`--watch`).

mod fetch;
mod judge;
mod print;
pub mod spend;
pub mod watch;

use anyhow::anyhow;

pub use fetch::{describe_jobs, report, scan_error};
pub use judge::{
    count_frames, failure_reason, unfinished, Archive, ArrayReport, FailedFrame, FrameCounts,
    JobReport, StatusReport,
};
pub use print::{render_text, text_bar};

use crate::aws::Aws;
use crate::cli::StatusArgs;

/// Runs `farm status`.
pub async fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let aws = Aws::load().await;
    let site = aws.site();
    let storage = aws.storage(&args.bucket);
    let scheduler = aws.scheduler(None);
    if args.watch {
        return watch::run(args, &site, &storage, &scheduler).await;
    }
    let fetched = report(&site, &storage, &args.bucket, &scheduler, &args.key).await?;
    let spend = fetch::job_spend(&site, &fetched);
    let report = fetched.report;
    if args.json {
        let mut value = serde_json::to_value(&report)
            .map_err(|e| anyhow!("cannot write the report as JSON: {e}"))?;
        if let (Some(spend), Some(object)) = (&spend, value.as_object_mut()) {
            object.insert("spend".to_owned(), serde_json::json!(spend));
        }
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| anyhow!("cannot write the report as JSON: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", render_text(&report));
        if let Some(spend) = &spend {
            print!("{}", spend::spend_text(spend));
        }
    }
    Ok(())
}
