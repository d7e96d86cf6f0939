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
use farm_core::deps::{DependencyRecord, ABSOLUTE_HINT};
use farm_io::LocalStorage;
use farm_jobs::deps::{check, Preflight};

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDependencies {
    /// Files that change pixels and are missing here, one line each.
    pub missing: Vec<String>,
    /// What does not stop a render (missing sounds, absolute paths that exist here).
    pub warnings: Vec<String>,
    /// The files found and their total size.
    pub found: usize,
    pub bytes: u64,
}

/// Checks the dependencies of the .blend at `scene`, read as `info`.
pub async fn check_local(scene: &Path, info: &BlendInfo) -> anyhow::Result<LocalDependencies> {
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
    let record = match check(&storage, &key, info, None, true).await {
        Ok(Preflight::Ready(record) | Preflight::Missing(record)) => record,
        Err(err) => return Err(anyhow!("checking the scene's files: {err}")),
    };
    Ok(summarise(&record))
}

fn filesystem_root(path: &Path) -> PathBuf {
    path.ancestors()
        .last()
        .map_or_else(|| PathBuf::from("/"), Path::to_owned)
}

fn summarise(record: &DependencyRecord) -> LocalDependencies {
    let mut missing = Vec::new();
    let mut warnings: Vec<String> = record
        .warnings
        .iter()
        .filter(|w| !w.ends_with("(rendered without it: missing=ok)"))
        .cloned()
        .collect();
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
        missing,
        warnings,
        found: record.files.len(),
        bytes: record.bytes,
    }
}

/// `farm render`'s check: lists missing files (refuses under `strict`). A file the reader
/// cannot read is left to Blender, as the frame range is.
pub async fn check_before_render(scene: &Path, strict: bool) -> anyhow::Result<()> {
    let path = scene.to_owned();
    let read = tokio::task::spawn_blocking(move || crate::inspect::read_blend(&path))
        .await
        .context("reading the scene")?;
    let Ok(info) = read else {
        return Ok(());
    };
    report(&check_local(scene, &info).await?, strict)
}

/// Prints what is missing to stderr; with `strict`, refuses instead.
pub fn report(deps: &LocalDependencies, strict: bool) -> anyhow::Result<()> {
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
        }
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
