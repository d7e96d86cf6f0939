//! `farm inspect`: what a .blend asks for, read by `farm-blend` without Blender.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use farm_blend::{BlendError, BlendInfo, ExternalFile};
use farm_core::series::{BlenderPick, BlenderSeries, SeriesChoice};
use serde::Serialize;

use crate::cli::InspectArgs;

/// Runs `farm inspect`.
pub async fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let path = args.scene.clone();
    let info = tokio::task::spawn_blocking(move || read_blend(&path))
        .await
        .context("reading the scene")??;
    let folder = blend_folder(&args.scene);
    let mut report = Report::new(&info, &folder);
    // The whole tree, by the farm's own check (what `farm submit` and the trigger look for).
    match crate::project::local_record(&args.scene, &info).await {
        Ok((key, record)) => report.libraries = libraries(&key, &record),
        Err(err) => eprintln!("warning: the linked libraries' own files were not checked: {err:#}"),
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&args.scene, &info, &report));
    }
    Ok(())
}

/// Reads a .blend on disk with `farm-blend`; errors name the file and say what is wrong.
pub fn read_blend(path: &Path) -> anyhow::Result<BlendInfo> {
    let shown = path.display();
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{shown} does not exist: check the path of the .blend file")
        }
        Err(e) => bail!("cannot read {shown}: {e}"),
    };
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        bail!("{shown} is a folder, not a .blend file");
    }
    farm_blend::read_seekable(file).map_err(|e| match e {
        BlendError::NotBlend(_) => anyhow!("{shown} is {e}"),
        BlendError::TooLarge { .. } => Refused(format!("cannot read {shown}: {e}")).into(),
        other => anyhow!("cannot read {shown}: {other}"),
    })
}

/// A .blend no command hands to Blender even when it would leave an unreadable file to it (a
/// decompression bomb): `farm render` and `farm submit` stop on it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

/// `read`, or its error when the file is [`Refused`]; any other error becomes `Err` inside,
/// for the caller to leave to Blender.
pub fn unless_refused<T>(read: anyhow::Result<T>) -> anyhow::Result<Result<T, anyhow::Error>> {
    match read {
        Err(err) if err.is::<Refused>() => Err(err),
        other => Ok(other),
    }
}

/// The folder `//` paths are relative to.
fn blend_folder(scene: &Path) -> PathBuf {
    let absolute = std::path::absolute(scene).unwrap_or_else(|_| scene.to_owned());
    absolute
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// `farm inspect --json`: the shape issue 16 gives.
#[derive(Debug, Serialize)]
pub struct Report {
    pub version: String,
    /// The series a farm deployed with `DefaultBlender=auto` renders it with, and why.
    pub blender: FarmBlender,
    pub compression: &'static str,
    pub scene: Option<String>,
    /// The engine the farm renders the active scene with unless told otherwise (`engine=`):
    /// `cycles`, `eevee` or `workbench`.
    pub renders_with: farm_core::engine::Engine,
    pub scenes: Vec<SceneReport>,
    pub files: Vec<FileReport>,
    /// Each linked library found (directly or through another library) with its own files:
    /// the whole tree `farm submit` uploads and the trigger checks.
    pub libraries: Vec<LibraryReport>,
}

/// A linked library and the files it loads itself.
#[derive(Debug, Serialize)]
pub struct LibraryReport {
    /// The library as the .blend that links it names it.
    pub path: String,
    /// Where it is, from the file system's root.
    pub key: String,
    pub files: Vec<TreeFile>,
}

/// A file a library loads, and what the farm found.
#[derive(Debug, Serialize)]
pub struct TreeFile {
    pub kind: String,
    pub path: String,
    /// `OK`, `missing` or `refused`.
    pub state: &'static str,
    /// What a missing file does to the frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
}

/// What a missing file of `kind` does to the frames.
pub fn missing_hint(kind: &str) -> &'static str {
    match kind {
        "image" => "renders magenta",
        "library" => "its linked objects are missing from the frames",
        "movie" => "renders black where it is shown",
        "font" => "its text falls back to Blender's own font",
        "sound" => "the frames do not change",
        "cache" => "the simulation is recomputed or missing",
        "volume" => "the volume renders empty",
        _ => "Blender renders without it",
    }
}

/// The libraries of the check's record (every `from` but the scene's own `key`), each with
/// the files it loads.
fn libraries(key: &str, record: &farm_core::deps::DependencyRecord) -> Vec<LibraryReport> {
    use std::collections::BTreeMap;
    let mut named: BTreeMap<&str, &str> = BTreeMap::new();
    for file in record.files.iter().filter(|f| f.kind == "library") {
        named.entry(file.key.as_str()).or_insert(file.path.as_str());
    }
    let mut tree: BTreeMap<&str, Vec<TreeFile>> = named.keys().map(|k| (*k, Vec::new())).collect();
    let found = record
        .files
        .iter()
        .map(|f| (&f.from, &f.kind, &f.path, "OK"));
    let missing = record
        .missing
        .iter()
        .map(|m| (&m.from, &m.kind, &m.path, "missing"));
    let refused = record
        .refused
        .iter()
        .map(|m| (&m.from, &m.kind, &m.path, "refused"));
    for (from, kind, path, state) in found.chain(missing).chain(refused) {
        if from == key {
            continue;
        }
        tree.entry(from.as_str()).or_default().push(TreeFile {
            kind: kind.clone(),
            path: path.clone(),
            state,
            hint: (state != "OK").then(|| missing_hint(kind)),
        });
    }
    tree.into_iter()
        .map(|(library, files)| LibraryReport {
            path: named.get(library).map_or(library, |p| p).to_owned(),
            key: format!("/{library}"),
            files,
        })
        .collect()
}

/// Which series the farm would run for a file, by the trigger's rule
/// ([`SeriesChoice::choose`]): `series` is `None` when it would refuse the file, `why` says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FarmBlender {
    pub series: Option<String>,
    pub why: String,
}

impl FarmBlender {
    /// For a file saved by `saved_by` (`None`: unknown), on a request for `asked` (`None`: the
    /// default, `auto`), against the deployed farm's series.
    pub fn judge(saved_by: Option<BlenderSeries>, asked: Option<BlenderPick>) -> Self {
        match SeriesChoice::deployed().choose(asked, saved_by) {
            Ok(chosen) => Self {
                series: Some(chosen.series.to_string()),
                why: match chosen.warning {
                    Some(warning) => format!("{}; {warning}", chosen.reason),
                    None => chosen.reason.to_string(),
                },
            },
            Err(err) => Self {
                series: None,
                why: err.to_string(),
            },
        }
    }

    /// One line: `Blender 5.0 (why)`, or `refused: why`.
    pub fn line(&self) -> String {
        match &self.series {
            Some(series) => format!("Blender {series} ({})", self.why),
            None => format!("refused: {}", self.why),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SceneReport {
    pub name: String,
    pub frame_start: i32,
    pub frame_end: i32,
    pub frame_step: i32,
    pub fps: f64,
    pub resolution: [i32; 2],
    pub resolution_percentage: i32,
    pub engine: String,
    pub output_format: String,
    pub camera: Option<String>,
    /// The movie the scene asks for, when its output is FFmpeg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movie: Option<farm_blend::Movie>,
    /// Its views, when Stereoscopy is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiview: Option<farm_blend::Multiview>,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub kind: &'static str,
    pub path: String,
    pub packed: bool,
    /// Resolved against the .blend's folder; `null` when packed.
    pub exists: Option<bool>,
}

impl Report {
    pub fn new(info: &BlendInfo, folder: &Path) -> Self {
        let saved_by = BlenderSeries::new(info.version.major, info.version.minor);
        Self {
            version: info.version.to_string(),
            blender: FarmBlender::judge(Some(saved_by), None),
            compression: info.compression.as_str(),
            scene: info.scene.clone(),
            renders_with: farm_jobs::scene::choose_engine(None, Some(info)).engine,
            scenes: info
                .scenes
                .iter()
                .map(|s| SceneReport {
                    name: s.name.clone(),
                    frame_start: s.frame_start,
                    frame_end: s.frame_end,
                    frame_step: s.frame_step,
                    fps: round_fps(s.fps),
                    resolution: s.resolution,
                    resolution_percentage: s.resolution_percentage,
                    engine: s.engine.clone(),
                    output_format: s.output_format.clone(),
                    camera: s.camera.clone(),
                    movie: s.movie.clone(),
                    multiview: s.multiview.clone(),
                })
                .collect(),
            files: info
                .files
                .iter()
                .map(|f| FileReport {
                    kind: f.kind.as_str(),
                    path: f.path.clone(),
                    packed: f.packed,
                    exists: (!f.packed).then(|| exists(f, folder)),
                })
                .collect(),
            libraries: Vec::new(),
        }
    }
}

/// fps to 3 decimals, as Blender shows it: `30 / 1.001` is 29.97, not 29.970028570928392
/// (`fps_base` is stored as a 32-bit float).
fn round_fps(fps: f64) -> f64 {
    (fps * 1e3).round() / 1e3
}

/// Where a stored path points on this machine: `//` is the .blend's folder.
pub fn resolve(path: &str, folder: &Path) -> PathBuf {
    match path.strip_prefix("//") {
        Some(relative) => folder.join(relative.replace('\\', "/")),
        None => PathBuf::from(path),
    }
}

/// Whether the file is there: for a `<UDIM>`/`<UVTILE>` set, at least one tile.
fn exists(file: &ExternalFile, folder: &Path) -> bool {
    let resolved = resolve(&file.path, folder);
    let text = resolved.to_string_lossy();
    let token = ["<UDIM>", "<UVTILE>"]
        .into_iter()
        .find(|t| text.contains(t));
    let Some(token) = token else {
        return resolved.exists();
    };
    let (Some(dir), Some(name)) = (resolved.parent(), resolved.file_name()) else {
        return false;
    };
    let name = name.to_string_lossy();
    let Some((prefix, suffix)) = name.split_once(token) else {
        return false;
    };
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.len() > prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix)
        })
    })
}

/// What the farm does differently from the scene's own settings, one line each.
pub fn notes(info: &BlendInfo) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(scene) = info.active_scene() {
        notes.extend(farm_jobs::scene::cannot_render(info));
        notes.extend(farm_jobs::scene::view_layer_note(scene));
    }
    notes.extend(farm_jobs::scene::choose_engine(None, Some(info)).note);
    notes
}

/// A reader's name for an engine identifier.
pub fn engine_name(engine: &str) -> &str {
    farm_core::engine::Engine::from_blender_id(engine).map_or(engine, |e| e.label())
}

/// One row of the scenes table.
fn scene_row(info: &BlendInfo, s: &farm_blend::Scene) -> [String; 7] {
    let active = if info.scene.as_deref() == Some(s.name.as_str()) {
        "*"
    } else {
        " "
    };
    let count = s.frames().count();
    let range = if s.frame_step > 1 {
        format!("{}-{}:{}", s.frame_start, s.frame_end, s.frame_step)
    } else {
        format!("{}-{}", s.frame_start, s.frame_end)
    };
    [
        format!("{active} {}", s.name),
        format!(
            "{range} ({count} frame{})",
            if count == 1 { "" } else { "s" }
        ),
        format!("{} fps", round_fps(s.fps)),
        format!(
            "{}x{} @ {}%",
            s.resolution[0], s.resolution[1], s.resolution_percentage
        ),
        engine_name(&s.engine).to_owned(),
        s.output_format.clone(),
        s.camera
            .as_deref()
            .map_or_else(|| "no camera".to_owned(), |c| format!("camera `{c}`")),
    ]
}

/// One row of the external files table.
fn file_row(f: &FileReport, file: &ExternalFile) -> [String; 3] {
    let status = match f.exists {
        None => "packed",
        Some(true) => "OK",
        Some(false) => "missing",
    };
    let mut flags = Vec::new();
    if !f.packed && !file.is_relative() {
        flags.push("absolute");
    }
    if let Some(source) = file.source.as_deref() {
        match source {
            "TILED" => flags.push("UDIM tiles"),
            "SEQUENCE" => flags.push("sequence"),
            "MOVIE" => flags.push("movie"),
            _ => {}
        }
    }
    if f.exists == Some(false) {
        flags.push(missing_hint(f.kind));
    }
    let path = if flags.is_empty() {
        f.path.clone()
    } else {
        format!("{}  ({})", f.path, flags.join(", "))
    };
    [format!("  {status}"), f.kind.to_owned(), path]
}

fn table(scene: &Path, info: &BlendInfo, report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let compression = match info.compression {
        farm_blend::Compression::None => "not compressed",
        farm_blend::Compression::Gzip => "gzip",
        farm_blend::Compression::Zstd => "zstd",
    };
    let _ = writeln!(
        out,
        "{}: saved by Blender {}, {compression}",
        scene.display(),
        info.version
    );
    let _ = writeln!(out, "the farm renders it with {}", report.blender.line());
    let _ = writeln!(
        out,
        "\nscenes (* = active: what `blender -b` and the farm render)"
    );
    let rows: Vec<[String; 7]> = info.scenes.iter().map(|s| scene_row(info, s)).collect();
    out.push_str(&columns(&rows));
    if report.files.is_empty() {
        let _ = writeln!(out, "\nno external files");
    } else {
        let _ = writeln!(out, "\nexternal files");
        let rows: Vec<[String; 3]> = report
            .files
            .iter()
            .zip(&info.files)
            .map(|(f, file)| file_row(f, file))
            .collect();
        out.push_str(&columns(&rows));
    }
    for library in &report.libraries {
        let _ = writeln!(
            out,
            "
files of library {} ({})",
            library.path, library.key
        );
        if library.files.is_empty() {
            let _ = writeln!(out, "  none");
            continue;
        }
        let rows: Vec<[String; 3]> = library
            .files
            .iter()
            .map(|f| {
                let path = match f.hint {
                    Some(hint) => format!("{}  ({hint})", f.path),
                    None => f.path.clone(),
                };
                [format!("  {}", f.state), f.kind.clone(), path]
            })
            .collect();
        out.push_str(&columns(&rows));
    }
    if let Some(active) = info.active_scene() {
        let _ = writeln!(
            out,
            "\nthe farm renders scene `{}` with {} (`--engine` / the `engine=` tag choose another)",
            active.name,
            report.renders_with.label()
        );
        if let (Some(multiview), Ok(files)) =
            (&active.multiview, farm_jobs::scene::frame_views(Some(info)))
        {
            let _ = writeln!(
                out,
                "Stereoscopy ({}, views saved {}): {files}",
                multiview.setup, multiview.image_views
            );
        }
    }
    let notes = notes(info);
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "note: {note}");
        }
    }
    out
}

/// Left-aligned columns, two spaces apart, trailing blanks trimmed.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(w - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_farms_series_for_a_file_is_said_with_why_or_the_refusal() {
        let v = BlenderSeries::new;
        let judged = FarmBlender::judge(Some(v(5, 0)), None);
        assert_eq!(judged.series.as_deref(), Some("5.0"));
        assert_eq!(
            judged.line(),
            "Blender 5.0 (`blender=auto`: the file was saved by Blender 5.0)"
        );
        let judged = FarmBlender::judge(Some(v(3, 4)), None);
        assert_eq!(judged.series.as_deref(), Some("4.2"));
        let judged = FarmBlender::judge(Some(v(5, 4)), None);
        assert_eq!(judged.series, None);
        assert!(
            judged
                .line()
                .starts_with("refused: the .blend was saved by Blender 5.4"),
            "{}",
            judged.line()
        );
        assert!(judged.why.contains("the newest is 5.3"), "{}", judged.why);
        // An explicit series: the warning of a newer file, or the refusal of one it cannot open.
        let judged = FarmBlender::judge(Some(v(4, 5)), Some(BlenderPick::Series(v(4, 2))));
        assert_eq!(judged.series.as_deref(), Some("4.2"));
        assert!(
            judged.why.contains("newer than this job's Blender 4.2"),
            "{}",
            judged.why
        );
        let judged = FarmBlender::judge(Some(v(5, 0)), Some(BlenderPick::Series(v(4, 2))));
        assert_eq!(judged.series, None);
    }

    #[test]
    fn relative_paths_resolve_against_the_blend_folder() {
        let folder = Path::new("/projects/shot");
        assert_eq!(
            resolve("//tex/wood.png", folder),
            PathBuf::from("/projects/shot/tex/wood.png")
        );
        assert_eq!(
            resolve("//tex\\win.png", folder),
            PathBuf::from("/projects/shot/tex/win.png")
        );
        assert_eq!(resolve("/abs/a.png", folder), PathBuf::from("/abs/a.png"));
    }

    #[test]
    fn fps_is_rounded_for_people() {
        assert_eq!(round_fps(30.0 / f64::from(1.001f32)), 29.97);
        assert_eq!(round_fps(24.0 / 1.001), 23.976);
        assert_eq!(round_fps(24.0), 24.0);
    }

    #[test]
    fn columns_line_up() {
        let rows = [
            ["a".to_owned(), "bb".to_owned()],
            ["ccc".to_owned(), "d".to_owned()],
        ];
        assert_eq!(columns(&rows), "a    bb\nccc  d\n");
    }
}
