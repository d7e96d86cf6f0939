//! The output folders: `farm render` writes into `<scene>.farm/`, `farm download` into
//! `<scene>.cloud/`, so cloud results never land on a local render's files by default.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};

/// Suffix of the default output folder: `shot.blend` renders into `shot.farm/`.
pub const OUT_SUFFIX: &str = "farm";

/// The default output folder: `<scene stem>.farm/` beside the scene.
pub fn default_out(scene: &Path) -> PathBuf {
    let stem = scene
        .file_stem()
        .map_or_else(|| "scene".into(), |s| s.to_string_lossy());
    scene
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(format!("{stem}.{OUT_SUFFIX}"))
}

/// Suffix of the default download folder: the job of `shot.blend` downloads into `shot.cloud/`.
pub const DOWNLOAD_SUFFIX: &str = "cloud";

/// The default download folder: `<stem of the key's file name>.cloud/` in the current folder,
/// beside (never inside) the folder `farm render` uses.
pub fn download_out(key: &str) -> PathBuf {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = Path::new(name)
        .file_stem()
        .map_or_else(|| "scene".into(), |s| s.to_string_lossy());
    PathBuf::from(format!("{stem}.{DOWNLOAD_SUFFIX}"))
}

/// Creates the output folder and checks a file can be written in it. A folder that is a
/// symbolic link, or holds one (its `frames/`, say), is refused naming the link: a project
/// shipping `shot.farm -> elsewhere` would otherwise get the frames, the archive and the records
/// written wherever the link points.
pub async fn prepare_out(out: &Path) -> anyhow::Result<()> {
    let shown = out.display();
    let advice = "choose another folder with --out";
    refuse_link(out, advice).await?;
    if tokio::fs::metadata(out).await.is_ok_and(|m| !m.is_dir()) {
        bail!("output folder {shown} is a file: {advice}");
    }
    tokio::fs::create_dir_all(out)
        .await
        .map_err(|e| anyhow!("cannot create the output folder {shown}: {e}; {advice}"))?;
    let mut entries = tokio::fs::read_dir(out)
        .await
        .map_err(|e| anyhow!("cannot read the output folder {shown}: {e}; {advice}"))?;
    while let Ok(Some(entry)) = entries.next_entry().await {
        refuse_link(
            &entry.path(),
            "remove it, or choose another folder with --out",
        )
        .await?;
    }
    let probe = out.join(format!(".farm-write-test-{}", std::process::id()));
    tokio::fs::write(&probe, b"")
        .await
        .map_err(|e| anyhow!("cannot write in the output folder {shown}: {e}; {advice}"))?;
    let _ = tokio::fs::remove_file(&probe).await;
    Ok(())
}

/// Fails when `path` is a symbolic link, naming it and its target.
async fn refuse_link(path: &Path, advice: &str) -> anyhow::Result<()> {
    let Ok(meta) = tokio::fs::symlink_metadata(path).await else {
        return Ok(());
    };
    if !meta.file_type().is_symlink() {
        return Ok(());
    }
    let target = tokio::fs::read_link(path)
        .await
        .map_or_else(|_| "?".to_owned(), |t| t.display().to_string());
    bail!(
        "{} is a symbolic link (to {target}): the farm writes its output only into real folders, never through a link; {advice}",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_folder_sits_beside_the_scene() {
        assert_eq!(
            default_out(Path::new("examples/bounce.blend")),
            PathBuf::from("examples/bounce.farm")
        );
        assert_eq!(default_out(Path::new("a.blend")), PathBuf::from("a.farm"));
    }

    #[test]
    fn downloads_land_beside_the_local_renders_folder() {
        assert_eq!(download_out("shots/s01.blend"), PathBuf::from("s01.cloud"));
        assert_eq!(download_out("a b.blend"), PathBuf::from("a b.cloud"));
    }

    #[tokio::test]
    async fn an_output_folder_that_is_or_holds_a_link_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let out = dir.path().join("a.farm");
        std::os::unix::fs::symlink(&elsewhere, &out).unwrap();
        let err = prepare_out(&out).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{} is a symbolic link", out.display())),
            "{err}"
        );
        assert!(err.contains("--out"), "{err}");
        std::fs::remove_file(&out).unwrap();
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("frames")).unwrap();
        let err = prepare_out(&out).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{} is a symbolic link",
                out.join("frames").display()
            )),
            "{err}"
        );
        std::fs::remove_file(out.join("frames")).unwrap();
        prepare_out(&out).await.unwrap();
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}
