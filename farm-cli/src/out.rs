//! The output folder `farm render` and `farm download` write into.

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

/// Creates the output folder and checks a file can be written in it.
pub async fn prepare_out(out: &Path) -> anyhow::Result<()> {
    let shown = out.display();
    let advice = "choose another folder with --out";
    if tokio::fs::metadata(out).await.is_ok_and(|m| !m.is_dir()) {
        bail!("output folder {shown} is a file: {advice}");
    }
    tokio::fs::create_dir_all(out)
        .await
        .map_err(|e| anyhow!("cannot create the output folder {shown}: {e}; {advice}"))?;
    let probe = out.join(format!(".farm-write-test-{}", std::process::id()));
    tokio::fs::write(&probe, b"")
        .await
        .map_err(|e| anyhow!("cannot write in the output folder {shown}: {e}; {advice}"))?;
    let _ = tokio::fs::remove_file(&probe).await;
    Ok(())
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
}
