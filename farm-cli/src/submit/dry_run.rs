//! The plan of a submit: printed before every upload, and alone by `farm submit --dry-run`.
//!
//! Everything a real submit checks is checked ([`crate::submit::prepare`]); then the bucket is
//! only read (HEAD or list, as the upload's own comparison does: [`crate::upload::to_send`]) to
//! tell which files are already there, and the key's job, if one is still running, is named.
//! `--json` prints the [`Plan`] for programs (the Blender add-on shows it before the real
//! submit).

use serde::Serialize;

use super::{tag_text, Prepared};
use crate::cli::SubmitArgs;
use crate::progress::human_bytes;
use crate::project::ProjectFile;

/// What `farm submit` would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub bucket: String,
    pub key: String,
    /// The .blend itself.
    pub scene: PlanFile,
    /// The project's files found beside it (textures, libraries...), each with its key.
    pub project: Vec<PlanFile>,
    /// Files packed into the .blend or its libraries (they travel inside it).
    pub packed: usize,
    /// What would be sent: files the bucket does not hold yet (the .blend included).
    pub upload: Totals,
    /// What the bucket already holds (same size and ETag), not sent again.
    pub in_bucket: Totals,
    /// The tags the .blend would carry, in upload order: they start the job.
    pub tags: Vec<PlanTag>,
    /// The frame list, canonical, and how many frames.
    pub frames: String,
    pub frame_count: usize,
    /// `auto` (the trigger decides from the farm's task slots) or frames per task.
    pub chunk: String,
    /// Tasks (Batch array children); `None` with `chunk=auto`, which only the trigger resolves.
    pub tasks: Option<usize>,
    /// The Blender series asked for; `None`: the farm's default (the stack's DefaultBlender).
    pub blender: Option<String>,
    /// The series the farm will run, by the trigger's rule against the deployed series, and why.
    pub series: Option<String>,
    pub series_why: String,
    /// The engine the job renders with (`--engine`, else the scene's own).
    pub engine: String,
    /// The project folder files come from, and how it was chosen.
    pub project_root: String,
    /// The key's job still running (`render job ID (RUNNING)`), which this submit would stop
    /// (only with `--replace`, or a yes at the terminal).
    pub replaces: Option<String>,
    /// The Blender series that saved the file.
    pub saved_by: Option<String>,
    /// What the farm does differently from the scene's own settings.
    pub notes: Vec<String>,
    /// What does not stop the render but should be known.
    pub warnings: Vec<String>,
}

/// A file of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanFile {
    pub path: String,
    pub key: String,
    pub bytes: u64,
    /// The bucket already holds these bytes at `key` (the .blend would only be tagged).
    pub in_bucket: bool,
}

/// A count of files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub files: usize,
    pub bytes: u64,
}

/// One tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanTag {
    pub key: String,
    pub value: String,
}

/// Prints the plan, as JSON for programs or as text under `header` (its warnings on stderr,
/// each a `warning:` line).
pub fn print(plan: &Plan, prepared: &Prepared, json: bool, header: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(plan)?);
    } else {
        print!("{}", plan_text(plan, &tag_text(&prepared.tags), header));
        for warning in &plan.warnings {
            eprintln!("warning: {warning}");
        }
    }
    Ok(())
}

/// The plan, given every file (the .blend last) and those the bucket does not hold.
pub fn plan(
    args: &SubmitArgs,
    prepared: &Prepared,
    all: &[ProjectFile],
    sending: &[ProjectFile],
    replaces: Option<String>,
) -> Plan {
    let file = |f: &ProjectFile| PlanFile {
        path: f.local.display().to_string(),
        key: f.key.clone(),
        bytes: f.size,
        in_bucket: !sending.iter().any(|s| s.key == f.key),
    };
    let mut files: Vec<PlanFile> = all.iter().map(file).collect();
    let scene = files.pop().expect("the .blend is the last file");
    let totals = |in_bucket: bool| {
        let chosen = files
            .iter()
            .chain([&scene])
            .filter(|f| f.in_bucket == in_bucket);
        chosen.fold(Totals::default(), |t, f| Totals {
            files: t.files + 1,
            bytes: t.bytes + f.bytes,
        })
    };
    let request = &prepared.request;
    let auto = prepared.chunk_auto;
    Plan {
        bucket: args.bucket.clone(),
        key: prepared.key.clone(),
        upload: totals(false),
        in_bucket: totals(true),
        scene,
        project: files,
        packed: prepared.project.packed,
        tags: prepared
            .tags
            .iter()
            .map(|(k, v)| PlanTag {
                key: (*k).to_owned(),
                value: v.clone(),
            })
            .collect(),
        frames: request.plan.frames().canonical(),
        frame_count: request.plan.frames().len(),
        chunk: if auto {
            farm_core::plan::CHUNK_AUTO.to_owned()
        } else {
            request.plan.chunk_size().to_string()
        },
        tasks: (!auto).then(|| request.plan.chunk_count()),
        blender: request.blender.map(|b| b.to_string()),
        series: prepared.blender.series.clone(),
        series_why: prepared.blender.why.clone(),
        engine: prepared.engine.label().to_owned(),
        project_root: format!(
            "{} ({})",
            prepared.root.root.display(),
            prepared.root.chosen
        ),
        replaces,
        saved_by: prepared.saved_by.clone(),
        notes: prepared.notes.clone(),
        warnings: prepared.warnings.clone(),
    }
}

/// The plan as text.
fn plan_text(plan: &Plan, tags: &str, header: &str) -> String {
    let scene_state = if plan.scene.in_bucket {
        "already in the bucket: only tagged"
    } else {
        "to upload"
    };
    let saved = plan
        .saved_by
        .as_ref()
        .map(|v| format!(", saved by Blender {v}"))
        .unwrap_or_default();
    let mut text = format!(
        "{header}\nscene:     {} ({}{saved}) -> s3://{}/{}: {scene_state}\nroot:      {}\n",
        plan.scene.path,
        human_bytes(plan.scene.bytes),
        plan.bucket,
        plan.key,
        plan.project_root
    );
    let project_bytes: u64 = plan.project.iter().map(|f| f.bytes).sum();
    let held = plan.project.iter().filter(|f| f.in_bucket).count();
    text += &format!(
        "project:   {} file(s), {}: {} to upload, {held} already in the bucket; {} packed\n",
        plan.project.len(),
        human_bytes(project_bytes),
        plan.project.len() - held,
        plan.packed
    );
    for file in plan.project.iter().filter(|f| !f.in_bucket) {
        text += &format!("  upload   {} -> {}\n", file.path, file.key);
    }
    text += &format!(
        "upload:    {} file(s), {}\ntags:      {tags}\nframes:    {} ({})\n",
        plan.upload.files,
        human_bytes(plan.upload.bytes),
        plan.frame_count,
        plan.frames
    );
    text += &match plan.tasks {
        Some(tasks) => format!("tasks:     {tasks} of up to {} frame(s)\n", plan.chunk),
        None => {
            "tasks:     chunk=auto: the trigger makes as few tasks as keep every task slot busy\n"
                .to_owned()
        }
    };
    text += &match &plan.series {
        Some(series) => format!("blender:   {series} ({})\n", plan.series_why),
        None => format!(
            "blender:   {}\n",
            plan.blender
                .as_deref()
                .unwrap_or("the farm's default (the stack's DefaultBlender)")
        ),
    };
    text += &format!("engine:    {}\n", plan.engine);
    if let Some(running) = &plan.replaces {
        text += &format!("replaces:  {running}, still running: submitting stops it (--replace)\n");
    }
    for note in &plan.notes {
        text += &format!("note: {note}\n");
    }
    text
}
