//! `farm report`: a finished job's receipt (`<key>/receipt.json`, written by the zip job) and,
//! with `--preview`, its contact sheet (`<key>/preview.jpg`); and the text `farm render` prints
//! for a local run.

use std::fmt::Write as _;

use farm_core::receipt::{Receipt, PRICES_AS_OF};

use crate::progress;

fn seconds(secs: f64) -> String {
    progress::seconds(std::time::Duration::from_secs_f64(secs.max(0.0)))
}

/// The receipt as text. `priced`: the cloud's receipt (vCPU- and GB-hours and the estimated
/// cost); a local run shows times only.
pub fn receipt_text(receipt: &Receipt, priced: bool) -> String {
    let mut out = String::new();
    let retries = receipt.attempts.saturating_sub(receipt.tasks);
    let _ = writeln!(
        out,
        "frames    {} in {} task(s), {} attempt(s){}",
        receipt.frames,
        receipt.tasks,
        receipt.attempts,
        if retries > 0 {
            format!(" ({retries} retried)")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "time      {} from the first task's start to the end, {} of task time",
        seconds(receipt.wall_seconds),
        seconds(receipt.task_seconds)
    );
    if receipt.frame_seconds.max > 0.0 {
        let f = receipt.frame_seconds;
        let _ = writeln!(
            out,
            "per frame min {}, median {}, max {}",
            seconds(f.min),
            seconds(f.median),
            seconds(f.max)
        );
        let slowest: Vec<String> = receipt
            .slowest
            .iter()
            .map(|s| format!("{} ({})", s.frame, seconds(s.seconds)))
            .collect();
        let _ = writeln!(out, "slowest   {}", slowest.join(", "));
    }
    if let Some(movie) = &receipt.movie {
        let _ = writeln!(
            out,
            "movie     {} ({})",
            movie.key,
            progress::human_bytes(movie.size)
        );
    }
    if priced {
        let _ = writeln!(
            out,
            "billed    {:.4} vCPU-hours, {:.4} GB-hours (one-minute minimum per task)",
            receipt.vcpu_hours, receipt.gb_hours
        );
        match receipt.cost_usd {
            Some(cost) => {
                let _ = writeln!(
                    out,
                    "cost      about ${cost:.4} at Fargate on-demand prices of {PRICES_AS_OF} \
                     (image pulls not included; Fargate Spot costs up to 70 % less)"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "cost      unknown: the region is not in the price table; set FARM_PRICE_VCPU_HOUR_USD and FARM_PRICE_GB_HOUR_USD on the zip job"
                );
            }
        }
    }
    if let Some(check) = &receipt.estimate {
        out.push_str(&estimate_text(check));
    }
    out
}

/// The scout's estimate against what the render tasks took (`estimate=N`, `farm submit
/// --estimate`).
fn estimate_text(check: &farm_core::estimate::EstimateCheck) -> String {
    let error = check
        .error_percent()
        .map_or_else(String::new, |e| format!(" ({e:+.0} %)"));
    let cost = match check.actual_cost_usd {
        Some(actual) => format!(
            "; ${:.4} estimated, ${actual:.4} actual",
            check.estimated_cost_usd
        ),
        None => format!("; ${:.4} estimated", check.estimated_cost_usd),
    };
    format!(
        "estimate  {:.4} render task-hours estimated (chunk {}), {:.4} actual{error}{cost}\n",
        check.estimated_task_hours, check.chunk_size, check.actual_task_hours
    )
}

/// Runs `farm report`.
#[cfg(feature = "aws")]
pub async fn run(args: &crate::cli::ReportArgs) -> anyhow::Result<()> {
    use farm_core::storage::{get_json, Storage as _, StorageError};
    use farm_core::JobKeys;

    let aws = crate::aws::Aws::load().await;
    let site = aws.site();
    let storage = aws.storage(&args.bucket);
    let key = JobKeys::new(args.key.trim_start_matches('/')).receipt();
    let receipt: Receipt = match get_json(&storage, &key).await {
        Ok(receipt) => receipt,
        Err(StorageError::NotFound { .. }) => anyhow::bail!(
            "no receipt for `{}` in bucket {}: `{key}` does not exist yet; the zip job writes it when the job ends (see `farm status {} --bucket {}`)",
            args.key,
            args.bucket,
            crate::shell_quote(&args.key),
            crate::shell_quote(&args.bucket)
        ),
        Err(err) => return Err(site.storage_error(&err, &format!("reading `{key}`"))),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&receipt)
            .map_err(|e| anyhow::anyhow!("cannot write the receipt as JSON: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", receipt_text(&receipt, true));
    }
    if let Some(path) = &args.preview {
        let dest = preview_path(&args.key, path.as_deref());
        let preview = JobKeys::new(args.key.trim_start_matches('/')).preview();
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
        }
        let meta = match storage.download(&preview, &dest, None).await {
            Ok(meta) => meta,
            Err(StorageError::NotFound { .. }) => anyhow::bail!(
                "no contact sheet for `{}` in bucket {}: `{preview}` does not exist (the zip job writes it with frames.zip unless FARM_PREVIEW=false)",
                args.key,
                args.bucket
            ),
            Err(err) => return Err(site.storage_error(&err, &format!("downloading `{preview}`"))),
        };
        let line = format!(
            "preview   {} ({})",
            dest.display(),
            crate::progress::human_bytes(meta.size)
        );
        // `--json` keeps standard output the document alone.
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(())
}

/// Where `--preview [PATH]` writes the sheet: PATH itself, `PATH/preview.jpg` for a folder, and
/// `<name>.cloud/preview.jpg` (`farm download`'s folder) without a PATH.
#[cfg(feature = "aws")]
pub fn preview_path(key: &str, path: Option<&std::path::Path>) -> std::path::PathBuf {
    match path {
        None => crate::out::download_out(key).join("preview.jpg"),
        Some(path) if path.is_dir() => path.join("preview.jpg"),
        Some(path) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_core::receipt::{FrameSeconds, SlowFrame};

    fn receipt(cost: Option<f64>) -> Receipt {
        Receipt {
            frames: 12,
            tasks: 4,
            attempts: 5,
            wall_seconds: 95.0,
            task_seconds: 300.0,
            vcpu_hours: 0.3333,
            gb_hours: 0.6667,
            cost_usd: cost,
            frame_seconds: FrameSeconds {
                min: 4.0,
                median: 6.5,
                max: 20.0,
            },
            slowest: vec![SlowFrame {
                frame: 9,
                seconds: 20.0,
            }],
            movie: None,
            estimate: None,
        }
    }

    #[test]
    fn the_cloud_receipt_shows_cost_and_a_local_one_only_times() {
        let text = receipt_text(&receipt(Some(0.0165)), true);
        assert!(
            text.contains("12 in 4 task(s), 5 attempt(s) (1 retried)"),
            "{text}"
        );
        assert!(text.contains("slowest   9 (20.0 s)"), "{text}");
        assert!(text.contains("about $0.0165"), "{text}");
        assert!(text.contains("0.3333 vCPU-hours"), "{text}");
        let text = receipt_text(&receipt(None), true);
        assert!(text.contains(farm_core::env::PRICE_VCPU_HOUR_USD), "{text}");
        let local = receipt_text(&receipt(None), false);
        assert!(!local.contains('$') && !local.contains("vCPU"), "{local}");
        assert!(local.contains("of task time"), "{local}");
        assert!(!local.contains("movie"), "{local}");
        let with_movie = Receipt {
            movie: Some(farm_core::receipt::MovieObject {
                key: "shots/a.blend/a.mkv".into(),
                size: 3 * 1024 * 1024,
            }),
            ..receipt(None)
        };
        let text = receipt_text(&with_movie, true);
        assert!(
            text.contains("movie     shots/a.blend/a.mkv (3.0 MiB)"),
            "{text}"
        );
        assert!(
            !text.contains("estimate"),
            "no scout, no comparison: {text}"
        );
    }

    #[test]
    fn a_scouted_job_shows_its_estimate_against_the_actual() {
        let mut scouted = receipt(Some(0.0165));
        scouted.estimate = Some(farm_core::estimate::EstimateCheck {
            chunk_size: 3,
            estimated_task_hours: 0.12,
            actual_task_hours: 0.1,
            estimated_cost_usd: 0.0237,
            actual_cost_usd: Some(0.0197),
        });
        let text = receipt_text(&scouted, true);
        assert!(
            text.contains(
                "estimate  0.1200 render task-hours estimated (chunk 3), 0.1000 actual (+20 %); $0.0237 estimated, $0.0197 actual"
            ),
            "{text}"
        );
    }
}
