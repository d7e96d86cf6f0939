//! `farm render`'s dependency check: the files the .blend loads (images with every `<UDIM>`
//! tile and sequence file, linked libraries and their own files, clips, fonts, caches, volumes)
//! looked for on this machine by the same rules the trigger applies to the bucket
//! (`farm_jobs::deps` over the local file system, the root folder standing for the bucket).
//!
//! Missing files are listed before rendering (Blender would render them magenta); `--strict`
//! refuses to render. An absolute path that exists here renders here, with a warning that the
//! cloud farm refuses it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use farm_blend::BlendInfo;
use farm_core::deps::{
    out_of_scope, resolve, DependencyList, DependencyRecord, MissingReason, PathError,
    SharedPrefixes, ABSOLUTE_HINT,
};
use farm_io::LocalStorage;
use farm_jobs::deps::{check, Preflight};

mod mirror;

use mirror::Mirror;

/// Where `farm submit` learns the stack's shared prefixes, after a refusal by the scope rule.
const SHARED_HINT: &str =
    "farm submit reads the stack's shared prefixes with --stack, or from --shared-prefixes / FARM_SHARED_PREFIXES";

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDependencies {
    /// Paths refused outright (URLs): nothing renders, `--strict` or not. One line each.
    pub refused: Vec<String>,
    /// Files that change pixels and are missing here, one line each.
    pub missing: Vec<String>,
    /// What does not stop a render (missing sounds, absolute paths that exist here).
    pub warnings: Vec<String>,
    /// The files found and their total size.
    pub found: usize,
    pub bytes: u64,
    /// The version of the files found (each file's path and local ETag, which changes when the
    /// file does), as the cloud farm versions a job's dependency list; `None` without files.
    pub version: Option<String>,
}

/// Checks the dependencies of the .blend at `scene`, read as `info`.
pub async fn check_local(scene: &Path, info: &BlendInfo) -> anyhow::Result<LocalDependencies> {
    let (_, record) = local_record(scene, info).await?;
    Ok(summarise(&record))
}

/// The trigger's dependency check over this machine's folders (the file system's root stands for
/// the bucket): the .blend's key there, and every file found, missing or refused, through its
/// linked libraries (each entry's `from` is the .blend whose path it is).
pub async fn local_record(
    scene: &Path,
    info: &BlendInfo,
) -> anyhow::Result<(String, DependencyRecord)> {
    let absolute = std::path::absolute(scene)
        .with_context(|| format!("cannot resolve the path {}", scene.display()))?;
    let root = filesystem_root(&absolute);
    let key = absolute
        .strip_prefix(&root)
        .ok()
        .and_then(Path::to_str)
        .map(|k| k.replace('\\', "/"))
        .ok_or_else(|| anyhow!("{} is not a path the farm can read", scene.display()))?;
    let storage = LocalStorage::new(&root);
    // Missing files stay missing (not `missing=ok`'s warnings): the callers list them.
    match check(&storage, &key, info, None, false, None).await {
        Ok(Preflight::Ready(record) | Preflight::Missing(record)) => Ok((key, record)),
        Err(err) => Err(anyhow!("checking the scene's files: {err}")),
    }
}

fn filesystem_root(path: &Path) -> PathBuf {
    path.ancestors()
        .last()
        .map_or_else(|| PathBuf::from("/"), Path::to_owned)
}

fn summarise(record: &DependencyRecord) -> LocalDependencies {
    let mut missing = Vec::new();
    let mut warnings = record.warnings.clone();
    for file in &record.missing {
        // Here an absolute path may well exist; only the cloud cannot find it.
        if file.key.is_none() && Path::new(&file.path).is_absolute() {
            if Path::new(&file.path).exists() {
                warnings.push(format!(
                    "{} `{}` is an absolute path: it renders here, but the cloud farm refuses it; {ABSOLUTE_HINT}",
                    file.kind, file.path
                ));
                continue;
            }
            missing.push(format!("{} `{}`: not found", file.kind, file.path));
            continue;
        }
        missing.push(match &file.key {
            Some(key) => format!("{} `{}`: not found at /{key}", file.kind, file.path),
            None => file.describe(),
        });
    }
    LocalDependencies {
        refused: record.refused.iter().map(|r| r.describe()).collect(),
        missing,
        warnings,
        found: record.files.len(),
        bytes: record.bytes,
        version: (!record.files.is_empty())
            .then(|| {
                let list = DependencyList {
                    files: record.files.clone(),
                };
                list.version().ok()
            })
            .flatten(),
    }
}

/// A project file `farm submit` uploads, and its key in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    pub local: PathBuf,
    pub key: String,
    pub size: u64,
}

/// What `farm submit` uploads beside the .blend, found by the trigger's own check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectUpload {
    /// Paths refused outright (URLs, keys outside the upload's scope), whatever `--missing-ok`
    /// says: one line each.
    pub refused: Vec<String>,
    /// Every file found, with the key the trigger will look for it at (a refused one too, so
    /// the project folder's own check sees it: nothing goes up while `refused` holds a line).
    pub files: Vec<ProjectFile>,
    /// Files that change pixels and are not on this machine, or cannot go in the bucket where
    /// the trigger would look: one line each.
    pub missing: Vec<String>,
    /// Absolute paths: one line each.
    pub absolute: Vec<String>,
    /// What does not stop a render (missing sounds, libraries whose own files were not read).
    pub warnings: Vec<String>,
    /// Files packed into the .blend or its libraries.
    pub packed: usize,
}

/// The project files the .blend at `scene`, read as `info`, needs for `frames` once it is at
/// `key` in the bucket: the trigger's check ([`check`]) run over this machine's folders, seen
/// as the bucket will see them.
///
/// The bucket mirrors the folder: the .blend's folder is its key's folder, the folder above it
/// the key's parent, and so on, so a path the trigger resolves to `proj/assets/x.png` from
/// `proj/shots/a.blend` is read from `../assets/x.png` beside the local .blend. Nothing resolves
/// above the key's root (`//../x.png` of a .blend at `a.blend`): such a file is missing, with a
/// hint to give `--key` the project's folders.
///
/// A file whose key lies outside what the upload at `key` may use, with the stack's `shared`
/// prefixes, is refused by the trigger's rule ([`out_of_scope`]), found or not.
pub async fn plan_upload(
    scene: &Path,
    key: &str,
    info: &BlendInfo,
    frames: &[i32],
    shared: &SharedPrefixes,
) -> anyhow::Result<ProjectUpload> {
    let absolute = std::path::absolute(scene)
        .with_context(|| format!("cannot resolve the path {}", scene.display()))?;
    let mirror = Mirror::new(&absolute, key)?;
    let storage = LocalStorage::new(&mirror.root);
    // Missing files stay missing (not `missing=ok`'s warnings): the plan lists them itself.
    let record = match check(&storage, &mirror.local_key, info, Some(frames), false, None).await {
        Ok(Preflight::Ready(record) | Preflight::Missing(record)) => record,
        Err(err) => return Err(anyhow!("checking the scene's files: {err}")),
    };
    let mut plan = ProjectUpload {
        refused: record.refused.iter().map(|r| r.describe()).collect(),
        packed: record.packed,
        warnings: record.warnings.clone(),
        ..ProjectUpload::default()
    };
    let out_of_scope = |what: &str, file_key: &str| {
        out_of_scope(key, file_key, shared).map(|err| format!("{what}: {err} ({SHARED_HINT})"))
    };
    for file in &record.files {
        let file_key = mirror.commuting_key(&file.from, &file.path, &file.key)?;
        let from = mirror.local_path(&file.from)?;
        let what = format!("{} `{}` (in {})", file.kind, file.path, from.display());
        plan.refused.extend(out_of_scope(&what, &file_key));
        plan.files.push(ProjectFile {
            local: mirror.local_path(&file.key)?,
            key: file_key,
            size: file.size,
        });
    }
    for file in &record.missing {
        let from = mirror.local_path(&file.from)?;
        let what = format!("{} `{}` (in {})", file.kind, file.path, from.display());
        let there = resolve(&mirror.key_of(&file.from), &file.path);
        if let Some(refusal) = there.as_ref().ok().and_then(|k| out_of_scope(&what, k)) {
            plan.refused.push(refusal);
            continue;
        }
        match (&file.key, there) {
            (_, Err(PathError::Absolute { .. })) => plan.absolute.push(what),
            (_, Err(PathError::AboveRoot { .. })) => plan.missing.push(format!(
                "{what}: climbs above the key `{key}`'s top folder; give --key the project's folders (e.g. --key {}) so every file lands under it",
                mirror.suggested_key(&file.from, &file.path)
            )),
            (Some(local), Ok(_)) if file.reason == MissingReason::NotFound => plan
                .missing
                .push(format!("{what}: {} does not exist", mirror.local_path(local)?.display())),
            (_, _) => plan.missing.push(format!("{what}: {}", file.message)),
        }
    }
    Ok(plan)
}

/// `farm render`'s check: lists missing files (refuses under `strict`). A file the reader
/// cannot read is left to Blender, as the frame range is. Returns the version of the files
/// found ([`LocalDependencies::version`]), which frames rendered now record.
pub async fn check_before_render(scene: &Path, strict: bool) -> anyhow::Result<Option<String>> {
    let path = scene.to_owned();
    let read = tokio::task::spawn_blocking(move || crate::inspect::read_blend(&path))
        .await
        .context("reading the scene")?;
    let Ok(info) = crate::inspect::unless_refused(read)? else {
        return Ok(None);
    };
    let deps = check_local(scene, &info).await?;
    report(&deps, strict)?;
    Ok(deps.version)
}

/// Prints what is missing to stderr; with `strict`, refuses instead.
pub fn report(deps: &LocalDependencies, strict: bool) -> anyhow::Result<()> {
    refuse(&deps.refused)?;
    for warning in &deps.warnings {
        eprintln!("warning: {warning}");
    }
    if deps.missing.is_empty() {
        return Ok(());
    }
    let list = deps
        .missing
        .iter()
        .map(|m| format!("  {m}"))
        .collect::<Vec<_>>()
        .join("\n");
    if strict {
        return Err(anyhow!(
            "{} file(s) the scene needs are missing, so nothing was rendered (--strict): {}; put them where the paths say, or render without --strict to get them magenta",
            deps.missing.len(),
            deps.missing.join("; ")
        ));
    }
    eprintln!(
        "warning: {} file(s) the scene needs are missing; Blender renders them magenta (--strict refuses):\n{list}",
        deps.missing.len()
    );
    Ok(())
}

/// Fails naming every refused path (a URL): `farm render` and `farm submit` never start
/// Blender or upload anything for such a scene, whatever `--strict` or `--missing-ok` say.
pub fn refuse(refused: &[String]) -> anyhow::Result<()> {
    if refused.is_empty() {
        return Ok(());
    }
    Err(anyhow!(
        "{} path(s) in the .blend are refused, so nothing was rendered or uploaded: {}",
        refused.len(),
        refused.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_blend::{BlenderVersion, Compression, ExternalFile, FileKind};

    fn image(path: &str, source: &str, tiles: &[i32]) -> ExternalFile {
        ExternalFile {
            kind: FileKind::Image,
            path: path.to_owned(),
            name: path.to_owned(),
            packed: false,
            source: Some(source.to_owned()),
            tiles: tiles.to_vec(),
            sequence_uses: Vec::new(),
        }
    }

    fn info(files: Vec<ExternalFile>) -> BlendInfo {
        BlendInfo {
            version: BlenderVersion { major: 4, minor: 2 },
            compression: Compression::None,
            scene: None,
            scenes: Vec::new(),
            files,
            cameras: Vec::new(),
        }
    }

    fn library(path: &str) -> ExternalFile {
        ExternalFile {
            kind: FileKind::Library,
            ..image(path, "FILE", &[])
        }
    }

    /// `<tmp>/work/proj/shots/a.blend` with textures beside it and in `../assets`.
    fn project() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("work/proj");
        for (path, body) in [
            ("shots/a.blend", "BLENDER"),
            ("shots/tex/wood.png", "wood"),
            ("shots/tex/skin.1001.png", "1001"),
            ("shots/tex/skin.1002.png", "1002"),
            ("assets/x.png", "x"),
        ] {
            let path = proj.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        (dir, proj)
    }

    fn keys(plan: &ProjectUpload) -> Vec<(&str, PathBuf)> {
        let mut keys: Vec<_> = plan
            .files
            .iter()
            .map(|f| (f.key.as_str(), f.local.clone()))
            .collect();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn the_bucket_mirrors_the_folder_from_the_blends_key() {
        let (_dir, proj) = project();
        let blend = proj.join("shots/a.blend");
        let none = SharedPrefixes::default();
        let files = vec![
            image("//tex/wood.png", "FILE", &[]),
            image("//tex/skin.<UDIM>.png", "TILED", &[1001, 1002]),
            image("//../assets/x.png", "FILE", &[]),
        ];
        // Same folder names as the key: keys as in the folder.
        let plan = plan_upload(
            &blend,
            "proj/shots/a.blend",
            &info(files.clone()),
            &[1],
            &none,
        )
        .await
        .unwrap();
        assert!(
            plan.missing.is_empty() && plan.absolute.is_empty(),
            "{plan:?}"
        );
        assert_eq!(
            keys(&plan),
            vec![
                ("proj/assets/x.png", proj.join("assets/x.png")),
                (
                    "proj/shots/tex/skin.1001.png",
                    proj.join("shots/tex/skin.1001.png")
                ),
                (
                    "proj/shots/tex/skin.1002.png",
                    proj.join("shots/tex/skin.1002.png")
                ),
                ("proj/shots/tex/wood.png", proj.join("shots/tex/wood.png")),
            ]
        );
        assert_eq!(
            plan.files.iter().map(|f| f.size).sum::<u64>(),
            4 + 4 + 4 + 1
        );
        // Other names and more folders: the files follow the .blend's key by position.
        let plan = plan_upload(
            &blend,
            "client/p2/s1/shot.blend",
            &info(files.clone()),
            &[1],
            &none,
        )
        .await
        .unwrap();
        assert_eq!(keys(&plan)[0].0, "client/p2/assets/x.png");
        assert_eq!(keys(&plan)[3].0, "client/p2/s1/tex/wood.png");

        // At the top of the bucket, `//../assets` would climb out of it: missing, with the
        // key that keeps enough folders; and the files in `tex/` are outside what an upload at
        // the root may use (the trigger's scope rule), unless the stack shares `tex/`.
        let plan = plan_upload(&blend, "a.blend", &info(files.clone()), &[1], &none)
            .await
            .unwrap();
        assert_eq!(plan.refused.len(), 3, "{plan:?}");
        assert!(plan.refused.iter().all(|r| r.contains(
            "an upload at the bucket's root may use only files at the root and the shared prefixes (none)"
        ) && r.contains("--shared-prefixes")), "{plan:?}");
        let tex = SharedPrefixes::parse("tex/").unwrap();
        let plan = plan_upload(&blend, "a.blend", &info(files.clone()), &[1], &tex)
            .await
            .unwrap();
        assert_eq!(plan.files.len(), 3, "{plan:?}");
        assert_eq!(plan.missing.len(), 1, "{plan:?}");
        assert!(plan.missing[0].contains("//../assets/x.png"), "{plan:?}");
        assert!(plan.missing[0].contains("--key shots/a.blend"), "{plan:?}");
    }

    #[tokio::test]
    async fn libraries_bring_their_own_files_from_their_own_folder() {
        let (_dir, proj) = project();
        let blend = proj.join("shots/a.blend");
        let none = SharedPrefixes::default();
        // The library is not a readable .blend: the check says so, naming the file.
        std::fs::create_dir_all(proj.join("lib")).unwrap();
        std::fs::write(proj.join("lib/props.blend"), "not a blend").unwrap();
        let plan = plan_upload(
            &blend,
            "proj/shots/a.blend",
            &info(vec![library("//../lib/props.blend")]),
            &[1],
            &none,
        )
        .await
        .unwrap();
        assert_eq!(
            keys(&plan),
            vec![("proj/lib/props.blend", proj.join("lib/props.blend"))]
        );
        assert_eq!(plan.missing.len(), 1, "{plan:?}");
        assert!(plan.missing[0].contains("cannot be read"), "{plan:?}");
    }

    #[tokio::test]
    async fn missing_and_absolute_files_are_named_with_their_local_path() {
        let (_dir, proj) = project();
        let blend = proj.join("shots/a.blend");
        let none = SharedPrefixes::default();
        std::fs::remove_file(proj.join("shots/tex/skin.1002.png")).unwrap();
        let absolute = proj.join("shots/tex/wood.png");
        let files = vec![
            image("//tex/skin.<UDIM>.png", "TILED", &[1001, 1002]),
            image(absolute.to_str().unwrap(), "FILE", &[]),
        ];
        let plan = plan_upload(&blend, "proj/shots/a.blend", &info(files), &[1], &none)
            .await
            .unwrap();
        assert_eq!(plan.missing.len(), 1, "{plan:?}");
        let tile = proj.join("shots/tex/skin.1002.png");
        assert!(
            plan.missing[0].contains(&format!("{} does not exist", tile.display())),
            "{plan:?}"
        );
        assert_eq!(plan.absolute.len(), 1, "{plan:?}");
        assert!(
            plan.absolute[0].contains(absolute.to_str().unwrap()),
            "{plan:?}"
        );
        assert_eq!(
            keys(&plan),
            vec![(
                "proj/shots/tex/skin.1001.png",
                proj.join("shots/tex/skin.1001.png")
            )]
        );
    }

    #[tokio::test]
    async fn a_path_through_a_folder_the_key_renames_is_refused() {
        let (_dir, proj) = project();
        let blend = proj.join("shots/a.blend");
        let none = SharedPrefixes::default();
        // `//../shots/tex/wood.png` climbs out of `shots` and back in by name: uploaded as
        // `p/s/...`, the trigger would look in `p/shots/...`.
        let files = vec![image("//../shots/tex/wood.png", "FILE", &[])];
        let err = plan_upload(&blend, "p/s/a.blend", &info(files.clone()), &[1], &none)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("climbs through a folder --key renames"),
            "{err}"
        );
        assert!(err.contains("--key proj/shots/a.blend"), "{err}");
        let plan = plan_upload(&blend, "p/shots/a.blend", &info(files), &[1], &none)
            .await
            .unwrap();
        assert_eq!(keys(&plan)[0].0, "p/shots/tex/wood.png");
    }

    #[tokio::test]
    async fn missing_files_are_listed_and_strict_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let shots = dir.path().join("proj/shots");
        std::fs::create_dir_all(shots.join("tex")).unwrap();
        std::fs::create_dir_all(dir.path().join("proj/assets")).unwrap();
        std::fs::write(shots.join("a.blend"), b"BLENDER").unwrap();
        std::fs::write(shots.join("tex/wood.png"), b"png").unwrap();
        std::fs::write(shots.join("tex/skin.1001.png"), b"png").unwrap();
        let elsewhere = dir.path().join("absolute.png");
        std::fs::write(&elsewhere, b"png").unwrap();
        let files = vec![
            image("//tex/wood.png", "FILE", &[]),
            image("//tex/skin.<UDIM>.png", "TILED", &[1001, 1002]),
            image("//../assets/x.png", "FILE", &[]),
            image(elsewhere.to_str().unwrap(), "FILE", &[]),
            image("/nowhere/gone.png", "FILE", &[]),
        ];
        let deps = check_local(&shots.join("a.blend"), &info(files))
            .await
            .unwrap();
        assert_eq!(deps.found, 2, "{deps:?}");
        assert_eq!(deps.missing.len(), 3, "{deps:?}");
        for needle in [
            "proj/shots/tex/skin.1002.png",
            "proj/assets/x.png",
            "/nowhere/gone.png",
        ] {
            assert!(
                deps.missing.iter().any(|m| m.contains(needle)),
                "{needle}: {deps:?}"
            );
        }
        assert_eq!(deps.warnings.len(), 1, "{deps:?}");
        assert!(deps.warnings[0].contains("Make Paths Relative"), "{deps:?}");

        report(&deps, false).unwrap();
        let err = report(&deps, true).unwrap_err().to_string();
        assert!(
            err.contains("3 file(s)") && err.contains("--strict"),
            "{err}"
        );
        assert!(err.contains("skin.1002.png"), "{err}");
    }
}
