//! `farm submit`'s project root: the one folder whose files may go to the bucket.
//!
//! The root is `--project DIR`, or by default the current folder when the .blend lies below it
//! (`cd proj && farm submit shots/a.blend`), else the .blend's own folder. A file the .blend
//! (or a library) uses is sent only when its real path (symlinks resolved) lies under the root
//! and no folder or file on its way from the root is hidden (`.aws`, `.ssh`, `.git`, dot-files)
//! unless `--include-hidden` names it. Everything else is refused, each path named with the
//! flag that widens the root, before anything is uploaded.

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context};

use crate::project::ProjectFile;

/// The folder `farm submit` may upload from, and the hidden paths asked for by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRoot {
    /// The root as given or chosen, absolute.
    pub root: PathBuf,
    /// The root with symlinks resolved.
    real: PathBuf,
    /// Hidden paths asked for by name, relative to the root.
    hidden: Vec<PathBuf>,
    /// How the root was chosen, for messages.
    pub chosen: &'static str,
}

impl ProjectRoot {
    /// The root for the .blend at `scene`: `project` if given, else `cwd` when `scene` lies
    /// below it, else the .blend's folder. The .blend must lie under it.
    pub fn choose(
        scene: &Path,
        project: Option<&Path>,
        cwd: &Path,
        include_hidden: &[PathBuf],
    ) -> anyhow::Result<Self> {
        let scene = real(&cwd.join(scene))?;
        let (root, chosen) = match project {
            Some(dir) => (cwd.join(dir), "--project"),
            None if scene.starts_with(real(cwd)?) => (cwd.to_owned(), "the current folder"),
            None => (
                scene
                    .parent()
                    .ok_or_else(|| anyhow!("{} has no folder", scene.display()))?
                    .to_owned(),
                "the .blend's folder",
            ),
        };
        let real_root = real(&root)?;
        if !real_root.is_dir() {
            bail!("--project {} is not a folder", root.display());
        }
        if !scene.starts_with(&real_root) {
            bail!(
                "{} is not inside the project {}: pass --project with a folder holding the .blend and every file it uses",
                scene.display(),
                root.display()
            );
        }
        let mut hidden = Vec::new();
        for path in include_hidden {
            let relative = if path.is_absolute() {
                path.strip_prefix(&real_root)
                    .or_else(|_| path.strip_prefix(&root))
                    .map(Path::to_owned)
                    .map_err(|_| {
                        anyhow!(
                            "--include-hidden {} is not inside the project {}",
                            path.display(),
                            root.display()
                        )
                    })?
            } else {
                path.clone()
            };
            if relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                bail!(
                    "--include-hidden {} must name a path inside the project, without `..`",
                    path.display()
                );
            }
            hidden.push(relative);
        }
        Ok(Self {
            root,
            real: real_root,
            hidden,
            chosen,
        })
    }

    /// Why `file` may not leave this machine, if it may not.
    fn refusal(&self, file: &ProjectFile) -> Option<String> {
        let local = &file.local;
        let target = match real(local) {
            Ok(target) => target,
            Err(err) => return Some(format!("{}: {err:#}", local.display())),
        };
        let Ok(inside) = target.strip_prefix(&self.real) else {
            let how = if local.starts_with(&self.root) || local.starts_with(&self.real) {
                format!("a symlink to {}", target.display())
            } else {
                "climbs out of it".to_owned()
            };
            return Some(format!(
                "{} is outside the project ({how}); widen it with --project DIR",
                local.display()
            ));
        };
        // The path as reached (a link's own name) and as resolved: neither may be hidden.
        let reached = local
            .strip_prefix(&self.root)
            .or_else(|_| local.strip_prefix(&self.real))
            .unwrap_or(inside);
        for relative in [reached, inside] {
            if let Some(name) = hidden_component(relative) {
                if !self.hidden.iter().any(|h| relative.starts_with(h)) {
                    return Some(format!(
                        "{} is hidden (`{name}`); name it with --include-hidden {} if it belongs to the project",
                        local.display(),
                        relative.display()
                    ));
                }
            }
        }
        None
    }

    /// Refuses, naming each one, the files that lie outside the project or are hidden.
    pub fn check(&self, files: &[ProjectFile]) -> anyhow::Result<()> {
        let refused: Vec<String> = files.iter().filter_map(|f| self.refusal(f)).collect();
        if refused.is_empty() {
            return Ok(());
        }
        bail!(
            "{} file(s) the .blend uses may not leave the project {} ({}), so nothing was uploaded:\n  {}",
            refused.len(),
            self.root.display(),
            self.chosen,
            refused.join("\n  ")
        )
    }
}

/// The first hidden name (starting with `.`) on `relative`.
fn hidden_component(relative: &Path) -> Option<String> {
    relative.components().find_map(|c| match c {
        Component::Normal(name) if name.to_string_lossy().starts_with('.') => {
            Some(name.to_string_lossy().into_owned())
        }
        _ => None,
    })
}

fn real(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("cannot resolve {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(local: PathBuf) -> ProjectFile {
        ProjectFile {
            local,
            key: "k".into(),
            size: 1,
        }
    }

    /// `<tmp>/proj/shots/a.blend`, `<tmp>/proj/tex/x.png`, `<tmp>/outside.png`,
    /// `<tmp>/proj/.git/x.png`.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        for path in [
            "proj/shots/a.blend",
            "proj/tex/x.png",
            "outside.png",
            "proj/.git/x.png",
        ] {
            let path = base.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        (dir, base)
    }

    #[test]
    fn the_default_root_is_the_current_folder_above_the_blend_else_its_folder() {
        let (_dir, base) = tree();
        let proj = base.join("proj");
        let root = ProjectRoot::choose(Path::new("shots/a.blend"), None, &proj, &[]).unwrap();
        assert_eq!(
            (root.root.as_path(), root.chosen),
            (proj.as_path(), "the current folder")
        );
        let elsewhere = base.join("proj/tex");
        let root = ProjectRoot::choose(&proj.join("shots/a.blend"), None, &elsewhere, &[]).unwrap();
        assert_eq!(root.root, proj.join("shots"));
        assert_eq!(root.chosen, "the .blend's folder");
        let err = ProjectRoot::choose(
            &proj.join("shots/a.blend"),
            Some(Path::new("tex")),
            &proj,
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is not inside the project"), "{err}");
    }

    #[test]
    fn files_outside_or_hidden_are_refused_by_name() {
        let (_dir, base) = tree();
        let proj = base.join("proj");
        std::os::unix::fs::symlink(base.join("outside.png"), proj.join("tex/link.png")).unwrap();
        std::os::unix::fs::symlink(proj.join("tex/x.png"), proj.join("tex/inner.png")).unwrap();
        let root = ProjectRoot::choose(Path::new("shots/a.blend"), None, &proj, &[]).unwrap();
        let ok = [
            file(proj.join("tex/x.png")),
            file(proj.join("tex/inner.png")),
        ];
        root.check(&ok).unwrap();
        let err = root
            .check(&[
                file(proj.join("tex/x.png")),
                file(proj.join("tex/link.png")),
                file(base.join("outside.png")),
                file(proj.join(".git/x.png")),
            ])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("3 file(s)"), "{err}");
        assert!(err.contains("nothing was uploaded"), "{err}");
        assert!(
            err.contains(&format!(
                "a symlink to {}",
                base.join("outside.png").display()
            )),
            "{err}"
        );
        assert!(err.contains("climbs out of it"), "{err}");
        assert!(err.contains("--project DIR"), "{err}");
        assert!(err.contains("hidden (`.git`)"), "{err}");
        assert!(err.contains("--include-hidden .git/x.png"), "{err}");
        // Named, a hidden path goes; a symlink out of the project never does.
        let root = ProjectRoot::choose(
            Path::new("shots/a.blend"),
            None,
            &proj,
            &[PathBuf::from(".git")],
        )
        .unwrap();
        root.check(&[file(proj.join(".git/x.png"))]).unwrap();
        let err = ProjectRoot::choose(
            Path::new("shots/a.blend"),
            None,
            &proj,
            &[PathBuf::from("../x")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("without `..`"), "{err}");
    }
}
