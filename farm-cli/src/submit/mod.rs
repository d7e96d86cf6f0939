//! `farm submit`: a tagged upload that starts the job.
//!
//! The tags travel in the upload request itself (PutObject `tagging`, or CreateMultipartUpload
//! `tagging` for a large file), so the object is never visible without them and the trigger's
//! `ObjectCreated` event finds them. They are validated first with the trigger's own parser,
//! [`RenderRequest::from_tags`], so whatever is uploaded is accepted.

use anyhow::{anyhow, bail, Context};
use farm_core::blender::OutputFormat;
use farm_core::deps::{ABSOLUTE_HINT, MISSING_OK, TAG_MISSING};
use farm_core::layout::is_blend_key;
use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::plan::{Chunking, CHUNK_AUTO};
use farm_core::request::DEFAULT_REQUEST_MAX_FRAMES as DEFAULT_MAX_FRAMES;
use farm_core::request::{
    TAG_BLENDER, TAG_CHUNK, TAG_ENGINE, TAG_ESTIMATE, TAG_FORMAT, TAG_FRAME, TAG_FRAMES,
};
use farm_core::scheduler::Scheduler;
use farm_core::storage::{get_json, PutOptions, Storage, StorageError};
use farm_core::{JobKeys, RenderRequest};
use farm_io::UploadTuning;

use crate::aws::{Aws, Site};
use crate::cli::SubmitArgs;
use crate::confine::ProjectRoot;
use crate::project::{plan_upload, ProjectFile, ProjectUpload};
use crate::render::check_scene;
use crate::shutdown::Shutdown;
use crate::upload::UploadError;
use crate::{progress, shell_quote};

pub mod dry_run;
mod refuse;
mod scout;
mod send;

use refuse::refuse_unchecked_or_warned;
use send::{interrupted, print_submitted, upload_project};

/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Parts of each project file uploading at once (`upload::FILES_AT_ONCE` files at a time).
const DEPENDENCY_PARTS_IN_FLIGHT: usize = 2;
const MIB: u64 = 1024 * 1024;
/// Longest value S3 allows in a tag.
const MAX_TAG_VALUE: usize = 256;
/// Content type of an uploaded scene.
const BLEND_CONTENT_TYPE: &str = "application/x-blender";

/// What `farm submit` asks for, as given on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    pub frames: Option<&'a str>,
    pub frame: Option<&'a str>,
    pub chunk: Option<&'a str>,
    pub format: Option<&'a str>,
    pub blender: Option<&'a str>,
    pub engine: Option<&'a str>,
}

/// The tags for a request, in upload order, as the trigger will read them. Fails with the
/// trigger's own message on a bad frame list, chunk size, format or Blender series (whether the
/// farm runs that series only the trigger knows).
pub fn request_tags(
    asked: Asked<'_>,
) -> anyhow::Result<(Vec<(&'static str, String)>, RenderRequest)> {
    let Asked {
        frames,
        frame,
        chunk,
        format,
        blender,
        engine,
    } = asked;
    let mut asked: Vec<(&str, &str)> = Vec::new();
    if let Some(frames) = frames {
        asked.push((TAG_FRAMES, frames));
    }
    if let Some(frame) = frame {
        asked.push((TAG_FRAME, frame));
    }
    if let Some(chunk) = chunk {
        asked.push((TAG_CHUNK, chunk));
    }
    if let Some(format) = format {
        asked.push((TAG_FORMAT, format));
    }
    if let Some(blender) = blender {
        asked.push((TAG_BLENDER, blender));
    }
    if let Some(engine) = engine {
        asked.push((TAG_ENGINE, engine));
    }
    let request = RenderRequest::from_tags(asked.iter().copied(), DEFAULT_MAX_FRAMES)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("no frames given: pass --frames LIST or --frame N"))?;
    // What goes on the object: canonical values, which are also valid S3 tag values (a comma,
    // for one, is not).
    let mut tags = Vec::new();
    match frame {
        Some(count) => tags.push((TAG_FRAME, count.trim().to_owned())),
        None => tags.push((TAG_FRAMES, request.plan.frames().canonical())),
    }
    if let Some(chunk) = chunk {
        // `auto` stays `auto`: only the trigger knows the farm's task slots.
        let value = match Chunking::parse(chunk) {
            Ok(Chunking::Auto) => CHUNK_AUTO.to_owned(),
            _ => request.plan.chunk_size().to_string(),
        };
        tags.push((TAG_CHUNK, value));
    }
    if let Some(format) = request.format {
        tags.push((TAG_FORMAT, format.blender_name().to_owned()));
    }
    if let Some(blender) = request.blender {
        tags.push((TAG_BLENDER, blender.to_string()));
    }
    if let Some(engine) = request.engine {
        tags.push((TAG_ENGINE, engine.name().to_owned()));
    }
    for (name, value) in &tags {
        if value.chars().count() > MAX_TAG_VALUE {
            bail!(
                "the {name} list is too long for an S3 tag ({} characters, at most {MAX_TAG_VALUE}): use ranges like 1-100 or 1-100:5, or submit it in several uploads",
                value.chars().count()
            );
        }
    }
    let again = RenderRequest::from_tags(
        tags.iter().map(|(k, v)| (*k, v.as_str())),
        DEFAULT_MAX_FRAMES,
    )
    .map_err(|e| anyhow!("{e}"))?;
    if again.as_ref() != Some(&request) {
        bail!("the tags do not read back as the request (a bug in farm): {tags:?}");
    }
    Ok((tags, request))
}

pub fn is_auto(chunk: Option<&str>) -> bool {
    chunk.map(Chunking::parse) == Some(Ok(Chunking::Auto))
}

/// What `farm submit` checked before anything is sent: the request, its tags and the project.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub key: String,
    /// The tags, in upload order, as the trigger will read them.
    pub tags: Vec<(&'static str, String)>,
    pub request: RenderRequest,
    pub project: ProjectUpload,
    /// The project folder files are confined to (`--project`).
    pub root: ProjectRoot,
    /// The .blend's size in bytes.
    pub size: u64,
    /// The Blender series that saved the file, when the reader could read it.
    pub saved_by: Option<String>,
    /// The series the farm runs it on, and why (the trigger's rule).
    pub blender: crate::inspect::FarmBlender,
    /// What the farm does differently from the scene's own settings.
    pub notes: Vec<String>,
    /// What does not stop the render but the user should know, one line each.
    pub warnings: Vec<String>,
    /// Why the reader could not read the .blend (its files are then not checked; only
    /// `--force` uploads it).
    pub unchecked: Option<String>,
    /// `chunk=auto` (`farm submit`'s default): the trigger picks the chunk size.
    pub chunk_auto: bool,
    /// The engine the job renders with: `--engine`, else the scene's own.
    pub engine: farm_core::engine::Engine,
}

/// Checks the request and the project by the trigger's rules, on this machine only (no AWS
/// call): the key, the tags, `--frames scene` and every file the .blend uses. Refuses what the
/// trigger would refuse.
pub async fn prepare(args: &SubmitArgs) -> anyhow::Result<Prepared> {
    check_scene(&args.scene).await?;
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let root = ProjectRoot::choose(
        &args.scene,
        args.project.as_deref(),
        &cwd,
        &args.include_hidden,
    )?;
    let key = upload_key(args)?;
    let format = args
        .format
        .as_deref()
        .map(|f| f.parse::<OutputFormat>().map(|f| f.blender_name()))
        .transpose()
        .map_err(|e| anyhow!("invalid --format: {e}"))?;
    // The reader's facts: the project's files, and `--frames scene`'s range.
    let path = args.scene.clone();
    let read = tokio::task::spawn_blocking(move || crate::inspect::read_blend(&path))
        .await
        .context("reading the scene")?;
    let read = crate::inspect::unless_refused(read)?;
    // A scene Blender cannot render is refused here, as the trigger would, before any upload.
    if let Some(refusal) = read.as_ref().ok().and_then(farm_jobs::scene::cannot_render) {
        bail!("{refusal}");
    }
    let notes = read.as_ref().map(crate::inspect::notes).unwrap_or_default();
    // `--frames scene`: the active scene's own range and step, read here to check and show
    // it; the object is tagged `frames=scene` so the trigger reads and records it too.
    let scene_frames = scene_frames(args, &read)?;
    // `farm submit` makes as few tasks as keep the farm busy unless told (`--chunk K`); an
    // upload tagged by hand keeps the trigger's own default, one frame per task.
    let chunk = args.chunk.as_deref().unwrap_or(CHUNK_AUTO);
    let (mut tags, request) = request_tags(Asked {
        frames: scene_frames.as_deref().or(args.frames.as_deref()),
        frame: args.frame.as_deref(),
        chunk: Some(chunk),
        format,
        blender: args.blender.as_deref(),
        engine: args.engine.as_deref(),
    })?;
    add_tags(args, scene_frames.is_some(), &mut tags);

    // The project, checked by the trigger's rules before anything is uploaded.
    // A file the reader cannot read is left to Blender, as the trigger does.
    let (project, unchecked) = match &read {
        Ok(info) => (
            plan_upload(
                &args.scene,
                &key,
                info,
                request.plan.frames().as_slice(),
                &args.shared_prefixes.clone().unwrap_or_default(),
            )
            .await?,
            None,
        ),
        Err(err) => (ProjectUpload::default(), Some(err.to_string())),
    };
    // A file outside the project folder is named as such first: the scope rule would refuse
    // it too, but the folder is what the user controls here.
    root.check(&project.files)?;
    let mut warnings = refuse_missing(&project, args.missing_ok)?;
    warnings.extend(project.warnings.iter().cloned());
    if let Some(reason) = &unchecked {
        warnings.push(format!(
            "{reason}: only the .blend is uploaded, and the trigger renders it without checking its files"
        ));
    }
    // The series by the trigger's rule, against the deployed farm's: refused before uploading.
    let saved_by = read
        .as_ref()
        .ok()
        .map(|info| farm_core::BlenderSeries::new(info.version.major, info.version.minor));
    let blender = crate::inspect::FarmBlender::judge(saved_by, request.blender);
    if blender.series.is_none() {
        bail!("{}; nothing was uploaded", blender.why);
    }
    refuse_unchecked_or_warned(args, unchecked.as_deref(), &warnings)?;
    let engine = farm_jobs::scene::choose_engine(request.engine, read.as_ref().ok()).engine;
    let size = tokio::fs::metadata(&args.scene)
        .await
        .with_context(|| format!("cannot read {}", args.scene.display()))?
        .len();
    Ok(Prepared {
        chunk_auto: is_auto(Some(chunk)),
        engine,
        key,
        tags,
        request,
        project,
        root,
        size,
        saved_by: read.as_ref().ok().map(|info| info.version.to_string()),
        blender,
        notes,
        warnings,
        unchecked,
    })
}

/// The tags besides the request's: `frames=scene` (the trigger reads the scene's range too),
/// `missing=ok`, and `--estimate`'s `estimate=N` (the upload starts a scout job; the same tags
/// without it, the job).
fn add_tags(args: &SubmitArgs, scene_frames: bool, tags: &mut Vec<(&'static str, String)>) {
    if scene_frames {
        farm_jobs::scene::set_frames_tag(tags);
    }
    if args.missing_ok {
        tags.push((TAG_MISSING, MISSING_OK.to_owned()));
    }
    if let Some(samples) = args.estimate {
        tags.push((TAG_ESTIMATE, samples.to_string()));
    }
}

/// The key the .blend goes to (`--key`, else its file name), and the bucket checked non-empty.
fn upload_key(args: &SubmitArgs) -> anyhow::Result<String> {
    let key = match &args.key {
        Some(key) => key.trim_start_matches('/').to_owned(),
        None => args
            .scene
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("{} has no file name", args.scene.display()))?,
    };
    if !is_blend_key(&key) {
        bail!("key `{key}` does not end in `.blend` (lowercase: the bucket's event filter is case-sensitive): the trigger only starts jobs for such keys; pass --key NAME.blend");
    }
    if args.bucket.trim().is_empty() {
        bail!("--bucket is empty: give the farm's bucket name");
    }
    Ok(key)
}

/// `--frames scene`'s frames: the active scene's own range and step, as the trigger reads them.
fn scene_frames(
    args: &SubmitArgs,
    read: &anyhow::Result<farm_blend::BlendInfo>,
) -> anyhow::Result<Option<String>> {
    Ok(match args.frames.as_deref().map(str::trim) {
        Some(f) if f.eq_ignore_ascii_case(farm_jobs::scene::SCENE_FRAMES) => {
            let info = match read {
                Ok(info) => info,
                Err(err) => bail!("{err}"),
            };
            match farm_jobs::scene::from_info(info, DEFAULT_MAX_FRAMES) {
                farm_jobs::scene::SceneRead::Frames(record) => Some(record.frames),
                farm_jobs::scene::SceneRead::Invalid(message) => bail!("{message}"),
            }
        }
        _ => None,
    })
}

/// The `tag=value, ...` text of the tags.
pub fn tag_text(tags: &[(&str, String)]) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `farm submit`: checks, prints the plan (what goes up, what the bucket holds, the
/// request, and a running job of the key it would replace), then uploads; with `--dry-run`
/// only prints the plan.
pub async fn run(args: &SubmitArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::listen();
    let prepared = prepare(args).await?;
    let aws = Aws::load().await;
    let site = aws.site();
    let tuning = UploadTuning {
        part_size: usize::try_from(args.part_size_mib * MIB).context("--part-size-mib")?,
        parts_in_flight: PARTS_IN_FLIGHT,
        ..UploadTuning::default()
    };
    let storage = aws.storage(&args.bucket).with_upload_tuning(tuning);
    let blend = ProjectFile {
        local: args.scene.clone(),
        key: prepared.key.clone(),
        size: prepared.size,
    };
    let mut all = prepared.project.files.clone();
    all.push(blend.clone());
    let scheduler = aws.scheduler(None);
    let spinner = progress::spinner("comparing the project with the bucket");
    let compared = futures::try_join!(
        async {
            crate::upload::to_send(&storage, &all, tuning)
                .await
                .map_err(|err| upload_error(&site, err))
        },
        running_job(&site, &storage, &scheduler, &prepared.key)
    );
    spinner.finish_and_clear();
    let (sending, running) = compared?;
    let plan = dry_run::plan(args, &prepared, &all, &sending, running.clone());
    if args.dry_run {
        return dry_run::print(&plan, &prepared, args.json, "dry run: nothing uploaded");
    }
    dry_run::print(&plan, &prepared, false, "plan (nothing is uploaded yet):")?;
    if let Some(running) = &running {
        confirm_replace(args, &prepared.key, running)?;
    }
    let options = PutOptions {
        content_type: Some(BLEND_CONTENT_TYPE.to_owned()),
        tags: prepared
            .tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..PutOptions::default()
    };
    let since = jiff::Timestamp::now();
    let sent = {
        let work = upload_project(&site, &storage, sending, &blend, options, tuning);
        tokio::select! {
            () = shutdown.signal() => Err(interrupted()),
            sent = work => sent,
        }
    }?;
    let key = &prepared.key;
    let etag = storage
        .head(key)
        .await
        .map_err(|err| {
            site.storage_error(&err, &format!("checking s3://{}/{key}", storage.bucket()))
        })?
        .and_then(|meta| meta.etag)
        .unwrap_or_default();
    print_submitted(args, &prepared, sent, &etag);
    if args.estimate.is_some() {
        let scheduler = aws.scheduler(None);
        let ports = (&site, &storage, &scheduler);
        scout::estimate_then_submit(args, &prepared, ports, &etag, &shutdown, since).await?;
    }
    Ok(())
}

/// The key's job that has not ended (`render job ID (RUNNING)`), if any: a new request for the
/// key stops it, as the trigger does.
async fn running_job<S: Storage, B: Scheduler>(
    site: &Site,
    storage: &S,
    scheduler: &B,
    key: &str,
) -> anyhow::Result<Option<String>> {
    let keys = JobKeys::new(key);
    let manifest = match get_json::<JobManifest>(storage, &keys.manifest()).await {
        Ok(manifest) => manifest,
        Err(StorageError::NotFound { .. } | StorageError::Json { .. }) => return Ok(None),
        Err(err) => {
            return Err(site.storage_error(&err, &format!("reading `{}`", keys.manifest())));
        }
    };
    if manifest.status != ManifestStatus::Submitted {
        return Ok(None);
    }
    let (render, zip) = crate::status::describe_jobs(scheduler, &manifest).await?;
    Ok(crate::status::unfinished(&render, &zip)
        .map(|(label, job)| format!("{label} job {} ({})", job.id, job.state)))
}

/// A running job of the key is replaced only when asked: `--replace`, or a yes at the terminal.
fn confirm_replace(args: &SubmitArgs, key: &str, running: &str) -> anyhow::Result<()> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if args.replace {
        return Ok(());
    }
    let refusal = || {
        anyhow!(
            "`{key}` has a job still running ({running}): submitting again stops it and starts a new one. Add --replace to do that, or wait for it (farm status {} --bucket {}); nothing was uploaded",
            shell_quote(key),
            shell_quote(&args.bucket)
        )
    };
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(refusal());
    }
    eprint!("`{key}` has a job still running ({running}): stop it and submit this one? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(refusal())
    }
}

/// Refuses, before anything is uploaded, a project with refused paths (URLs), absolute paths or
/// missing files (unless `--missing-ok`, which uploads the rest and tags `missing=ok`: the
/// trigger then renders without them, as Blender would, magenta; the warnings say which; never
/// refused paths).
fn refuse_missing(project: &ProjectUpload, missing_ok: bool) -> anyhow::Result<Vec<String>> {
    crate::project::refuse(&project.refused)?;
    if missing_ok {
        return Ok(project
            .absolute
            .iter()
            .chain(&project.missing)
            .map(|line| format!("{line}: not uploaded; rendered without it (--missing-ok)"))
            .collect());
    }
    let mut problems = Vec::new();
    if !project.absolute.is_empty() {
        problems.push(format!(
            "{} absolute path(s), which only exist on this machine: {}; {ABSOLUTE_HINT}",
            project.absolute.len(),
            project.absolute.join("; ")
        ));
    }
    if !project.missing.is_empty() {
        problems.push(format!(
            "{} missing file(s): {}; put them where the paths say",
            project.missing.len(),
            project.missing.join("; ")
        ));
    }
    if problems.is_empty() {
        return Ok(Vec::new());
    }
    bail!(
        "the farm could not render every file the .blend uses, so nothing was uploaded: {}; or pass --missing-ok to render without them (Blender shows them magenta)",
        problems.join("; and ")
    )
}

/// A failure of the project upload (or of looking at what the bucket holds), in the user's words.
pub fn upload_error(site: &Site, err: UploadError) -> anyhow::Error {
    match err.storage() {
        Some((doing, source)) => site.storage_error(source, doing),
        None => anyhow!(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_canonical() {
        let (tags, request) = request_tags(Asked {
            frames: Some("1-10, 20"),
            chunk: Some("2"),
            format: Some("open_exr"),
            blender: Some(" 4.5"),
            engine: Some("Workbench"),
            ..Asked::default()
        })
        .unwrap();
        assert_eq!(
            tags,
            vec![
                ("frames", "1-10 20".to_owned()),
                ("chunk", "2".to_owned()),
                ("format", "OPEN_EXR".to_owned()),
                ("blender", "4.5".to_owned()),
                ("engine", "workbench".to_owned())
            ]
        );
        assert_eq!(request.plan.chunk_count(), 6);
        assert_eq!(
            request.blender,
            Some(farm_core::series::BlenderPick::Series(
                farm_core::BlenderSeries::new(4, 5)
            ))
        );
        let frames = |list| Asked {
            frames: Some(list),
            ..Asked::default()
        };
        let (tags, _) = request_tags(frames("-3--1 4-10:3")).unwrap();
        assert_eq!(tags, vec![("frames", "-3--1 4-10:3".to_owned())]);
    }

    #[test]
    fn chunk_auto_is_tagged_auto_for_the_trigger_to_resolve() {
        let (tags, _) = request_tags(Asked {
            frame: Some("100"),
            chunk: Some(" Auto"),
            ..Asked::default()
        })
        .unwrap();
        assert_eq!(
            tags,
            vec![("frame", "100".to_owned()), ("chunk", "auto".to_owned())]
        );
        assert!(is_auto(Some("auto")));
        assert!(!is_auto(Some("7")) && !is_auto(None));
    }

    #[test]
    fn bad_requests_fail_with_the_triggers_message() {
        for (frames, frame, chunk, blender, needle) in [
            (Some("5-1"), None, None, None, "tag `frames=5-1` is invalid"),
            (Some("x"), None, None, None, "tag `frames=x` is invalid"),
            (None, Some("0"), None, None, "tag `frame=0` is invalid"),
            (
                Some("1-4"),
                None,
                Some("0"),
                None,
                "tag `chunk=0` is invalid",
            ),
            (
                Some("1-4"),
                None,
                None,
                Some("4.2.23"),
                "use the series `4.2`",
            ),
            (None, None, None, None, "no frames given"),
        ] {
            let err = request_tags(Asked {
                frames,
                frame,
                chunk,
                blender,
                ..Asked::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(needle), "{err}");
        }
        let long: Vec<String> = (0..200).map(|i: i32| (i * i).to_string()).collect();
        let long = long.join(" ");
        let err = request_tags(Asked {
            frames: Some(&long),
            ..Asked::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("too long for an S3 tag"), "{err}");
    }
}
