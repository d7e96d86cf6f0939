//! `farm status`'s text: the report as lines a person reads, every name from the bucket or a
//! log escaped.

use std::fmt::Write as _;

use farm_core::engine::Engine;
use farm_core::frames::compact;
use farm_core::manifest::{ManifestStatus, SceneFacts};
use farm_core::scheduler::JobState;
use farm_core::shell::printable;

use super::judge::StatusReport;
use crate::shell_quote;

/// Failed frames listed in the text output.
const MAX_FAILED_SHOWN: usize = 10;
/// Width of the text progress bar.
const BAR_WIDTH: usize = 30;

/// The dependency summary (`depends   3 files, 1.2 MiB; 1 warning`) and each warning.
fn write_dependencies(out: &mut String, report: &StatusReport) {
    let Some(deps) = &report.dependencies else {
        return;
    };
    let _ = writeln!(out, "depends   {}", deps.summary());
    for warning in &deps.warnings {
        let _ = writeln!(out, "warning   {}", printable(warning));
    }
}

/// The text form of a report.
pub fn render_text(report: &StatusReport) -> String {
    let mut out = String::new();
    let (k, b) = (shell_quote(&report.key), shell_quote(&report.bucket));
    let _ = writeln!(
        out,
        "job       s3://{}/{} (submitted {})",
        printable(&report.bucket),
        printable(&report.key),
        report.created.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    if report.status == ManifestStatus::Rejected {
        let _ = writeln!(
            out,
            "rejected  {}",
            printable(report.message.as_deref().unwrap_or("no reason given"))
        );
        let _ = writeln!(
            out,
            "          fix the tags and upload again: farm submit <scene.blend> --bucket {b} --key {k} --frames LIST"
        );
        return out;
    }
    write_request(&mut out, report);
    write_jobs(&mut out, report);
    write_progress(&mut out, report, &k, &b);
    write_dependencies(&mut out, report);
    write_failed(&mut out, report);
    write_archive(&mut out, report, &k, &b);
    out
}

/// What the job renders: its frames, Blender, engine, warnings and the reader's scene facts.
fn write_request(out: &mut String, report: &StatusReport) {
    if let Some(frames) = &report.frames {
        let chunks = frames.total.div_ceil(frames.chunk_size.max(1) as usize);
        let _ = writeln!(
            out,
            "frames    {} ({} frames, {} per task, {} tasks)",
            frames.list, frames.total, frames.chunk_size, chunks
        );
    }
    if let Some(blender) = &report.blender {
        let saved = match (&report.blender_reason, report.saved_by.as_deref()) {
            (Some(why), _) => format!(": {}", printable(why)),
            (None, Some(s)) => format!(" (the file was saved by Blender {})", printable(s)),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "blender   {}{saved}", printable(blender));
    }
    if let Some(engine) = report.engine {
        let _ = writeln!(out, "engine    {}", engine.label());
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning   {}", printable(warning));
    }
    if let Some(scene) = &report.scene {
        write_scene(out, scene);
    }
}

/// One line per Batch job: its state, its tasks, and why a zip job waits.
fn write_jobs(out: &mut String, report: &StatusReport) {
    for (label, job) in [("render", &report.render_job), ("zip", &report.zip_job)] {
        let Some(job) = job else { continue };
        let mut line = format!("{label:<9} {:<10} job {}", job.state, job.id);
        if let Some(array) = &job.array {
            let _ = write!(
                line,
                ", {} tasks: {} succeeded, {} failed, {} running, {} waiting",
                array.size, array.succeeded, array.failed, array.running, array.pending
            );
        }
        let waiting = !matches!(
            job.state,
            JobState::Succeeded | JobState::Failed | JobState::Running
        );
        if label == "zip" && waiting {
            let render_failed = report
                .render_job
                .as_ref()
                .is_some_and(|r| r.state == JobState::Failed);
            line.push_str(if render_failed {
                " (will not run: the render job failed)"
            } else {
                " (starts when the render job has succeeded)"
            });
        }
        if let Some(reason) = &job.reason {
            let _ = write!(line, " ({})", printable(reason));
        }
        let _ = writeln!(out, "{line}");
    }
}

/// The frames done, failed and pending, the stale ones, and a later request's rejection.
fn write_progress(out: &mut String, report: &StatusReport, k: &str, b: &str) {
    if let Some(frames) = &report.frames {
        let _ = writeln!(
            out,
            "progress  {} {}/{} done, {} failed, {} pending",
            text_bar(frames.done, frames.failed, frames.total),
            frames.done,
            frames.total,
            frames.failed,
            frames.pending
        );
    }
    if let Some(frames) = report.frames.as_ref().filter(|f| f.stale > 0) {
        let _ = writeln!(
            out,
            "stale     {} frame(s) hold only output of another upload or format: not counted, never archived; farm retry {k} --bucket {b} renders them",
            frames.stale
        );
    }
    if let Some(message) = &report.later_rejection {
        let _ = writeln!(
            out,
            "rejected  a later request for this key: {}; this job was left as it was",
            printable(message)
        );
    }
    for problem in &report.problems {
        let _ = writeln!(out, "problem   {problem}");
    }
}

/// The failed frames, the first ones with their reason.
fn write_failed(out: &mut String, report: &StatusReport) {
    for failed in report.failed_frames.iter().take(MAX_FAILED_SHOWN) {
        let _ = writeln!(
            out,
            "failed    frame {}: {} (log s3://{}/{})",
            failed.frame,
            printable(failed.reason.as_deref().unwrap_or("no reason recorded")),
            report.bucket,
            printable(&failed.log)
        );
    }
    if report.failed_frames.len() > MAX_FAILED_SHOWN {
        let rest: Vec<i32> = report.failed_frames[MAX_FAILED_SHOWN..]
            .iter()
            .map(|f| f.frame)
            .collect();
        let _ = writeln!(
            out,
            "failed    and frames {} (logs under s3://{}/{}/logs/)",
            compact(&rest, ", "),
            report.bucket,
            report.key
        );
    }
}

/// Where the archive is, and what to do after a failed job.
fn write_archive(out: &mut String, report: &StatusReport, k: &str, b: &str) {
    match &report.archive {
        Some(archive) => {
            let _ = writeln!(
                out,
                "archive   s3://{}/{} ({}): farm download {k} --bucket {b} --unpack",
                report.bucket,
                archive.key,
                crate::progress::human_bytes(archive.size)
            );
        }
        None => {
            let _ = writeln!(out, "archive   not yet");
        }
    }
    if let Some(movie) = &report.movie {
        let _ = match movie.size {
            Some(size) => writeln!(
                out,
                "movie     s3://{}/{} ({}): farm download fetches it with the archive",
                report.bucket,
                movie.key,
                crate::progress::human_bytes(size)
            ),
            None => writeln!(
                out,
                "movie     not yet (s3://{}/{}: the movie job makes it after the archive)",
                report.bucket, movie.key
            ),
        };
    }
    let failed_job = [&report.render_job, &report.zip_job]
        .into_iter()
        .flatten()
        .any(|j| j.state == JobState::Failed);
    if failed_job && report.frames.as_ref().is_some_and(|f| f.done < f.total) {
        let _ = writeln!(
            out,
            "next      render the missing frames again: farm retry {k} --bucket {b}"
        );
    }
}

/// `[=====xx        ]`: done frames as `=`, failed as `x`.
pub fn text_bar(done: usize, failed: usize, total: usize) -> String {
    let total = total.max(1);
    let done_cells = done * BAR_WIDTH / total;
    let failed_cells = (failed * BAR_WIDTH)
        .div_ceil(total)
        .min(BAR_WIDTH - done_cells);
    let failed_cells = if failed > 0 { failed_cells.max(1) } else { 0 };
    let failed_cells = failed_cells.min(BAR_WIDTH - done_cells);
    format!(
        "[{}{}{}]",
        "=".repeat(done_cells),
        "x".repeat(failed_cells),
        " ".repeat(BAR_WIDTH - done_cells - failed_cells)
    )
}

/// The reader's facts: which scene is rendered and how, and the files it loads.
fn write_scene(out: &mut String, scene: &SceneFacts) {
    let own = Engine::from_blender_id(&scene.engine).map(Engine::name);
    let engine = if own == Some(scene.rendered_with.as_str()) || scene.engine == scene.rendered_with
    {
        printable(&scene.engine)
    } else {
        format!(
            "{} (rendered with {})",
            printable(&scene.engine),
            printable(&scene.rendered_with)
        )
    };
    let _ = writeln!(
        out,
        "scene     {} (Blender {}, {}): frames {}-{} step {}, {}x{} at {}%, {}, output {}",
        printable(&scene.scene),
        printable(&scene.version),
        printable(&scene.compression),
        scene.frame_start,
        scene.frame_end,
        scene.frame_step,
        scene.resolution[0],
        scene.resolution[1],
        scene.resolution_percentage,
        engine,
        printable(&scene.output_format)
    );
    for note in &scene.notes {
        let _ = writeln!(out, "note      {}", printable(note));
    }
    if !scene.files.is_empty() {
        let packed = scene.files.iter().filter(|f| f.packed).count();
        let _ = writeln!(
            out,
            "files     {} external ({packed} packed): {}",
            scene.files.len(),
            scene
                .files
                .iter()
                .take(5)
                .map(|f| format!("{} {}", f.kind, printable(&f.path)))
                .collect::<Vec<_>>()
                .join(", ")
                + if scene.files.len() > 5 { ", ..." } else { "" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::judge::{failure_reason, FailedFrame};
    use super::*;

    #[test]
    fn bars_fill_with_done_and_failed_frames() {
        assert_eq!(text_bar(0, 0, 10), format!("[{}]", " ".repeat(30)));
        assert_eq!(text_bar(10, 0, 10), format!("[{}]", "=".repeat(30)));
        let bar = text_bar(5, 1, 10);
        assert!(bar.starts_with("[===============xxx"), "{bar}");
        assert_eq!(text_bar(0, 1, 1000).matches('x').count(), 1);
    }

    #[test]
    fn blender_log_lines_and_keys_reach_the_terminal_escaped() {
        let log = "Fra:1\nError: \x1b]0;owned\x07\x1b[2J\rfine\n";
        let report = StatusReport {
            key: "a\x1b[31m.blend".into(),
            blender: Some("4.2".into()),
            saved_by: Some("4.5".into()),
            engine: Some(Engine::Eevee),
            warnings: vec!["saved by a newer Blender \x1b[2J".into()],
            failed_frames: vec![FailedFrame {
                frame: 1,
                log: "a\x1b[31m.blend/logs/0001.log".into(),
                reason: failure_reason(log),
            }],
            later_rejection: Some("tag `frames=\x1b[2J` is invalid".into()),
            dependencies: Some(farm_core::deps::DependencyRecord {
                bytes: 3 << 20,
                warnings: vec!["image `//tex/\x1b[2Jx.png`: not found (missing=ok)".into()],
                ..Default::default()
            }),
            ..StatusReport::blank()
        };
        let text = render_text(&report);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(
            text.contains("Error: \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\rfine"),
            "{text}"
        );
        assert!(text.contains("s3://b/a\\u{1b}[31m.blend "), "{text}");
        assert!(
            text.contains("blender   4.2 (the file was saved by Blender 4.5)\nengine    EEVEE\n"),
            "{text}"
        );
        let chosen = StatusReport {
            blender: Some("5.0".into()),
            saved_by: Some("5.0".into()),
            blender_reason: Some("`blender=auto`: the file was saved by Blender 5.0".into()),
            ..report
        };
        assert!(
            render_text(&chosen)
                .contains("blender   5.0: `blender=auto`: the file was saved by Blender 5.0\n"),
            "{}",
            render_text(&chosen)
        );
        assert!(
            text.contains("warning   saved by a newer Blender \\u{1b}[2J\n"),
            "{text}"
        );
        assert!(
            text.contains("depends   0 files, 3.0 MiB; 1 warning\n"),
            "{text}"
        );
        assert!(
            text.contains("warning   image `//tex/\\u{1b}[2Jx.png`: not found (missing=ok)"),
            "{text}"
        );
    }

    /// What the reader found in the upload (`frames=scene`) is shown, escaped like the rest.
    #[test]
    fn the_scene_the_reader_found_is_shown() {
        use farm_core::manifest::SceneFile;
        let scene = SceneFacts {
            version: "4.2".into(),
            compression: "zstd".into(),
            scene: "Shot\x1b[2J".into(),
            frame_start: 5,
            frame_end: 29,
            frame_step: 6,
            frames: "5-29:6".into(),
            engine: "BLENDER_EEVEE_NEXT".into(),
            rendered_with: "cycles".into(),
            resolution: [1920, 1080],
            resolution_percentage: 50,
            output_format: "PNG".into(),
            notes: vec![
                "scene `Shot` is set to EEVEE; rendered with Cycles as asked (`engine=cycles`)"
                    .into(),
            ],
            files: vec![SceneFile {
                kind: "image".into(),
                path: "//tex/wood.png".into(),
                packed: false,
                source: Some("FILE".into()),
            }],
        };
        let mut text = String::new();
        write_scene(&mut text, &scene);
        assert_eq!(
            text,
            "scene     Shot\\u{1b}[2J (Blender 4.2, zstd): frames 5-29 step 6, 1920x1080 at 50%, BLENDER_EEVEE_NEXT (rendered with cycles), output PNG\n\
             note      scene `Shot` is set to EEVEE; rendered with Cycles as asked (`engine=cycles`)\n\
             files     1 external (0 packed): image //tex/wood.png\n"
        );
    }
}
