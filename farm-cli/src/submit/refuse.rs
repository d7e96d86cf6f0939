//! What `farm submit` refuses to upload besides bad requests and missing files: a .blend the
//! farm cannot read (unless `--force`) and, with `--strict`, any warning.

use anyhow::bail;

use crate::cli::SubmitArgs;

/// Refuses a .blend the farm cannot read (unless `--force`) and, with `--strict`, any warning.
pub(super) fn refuse_unchecked_or_warned(
    args: &SubmitArgs,
    unchecked: Option<&str>,
    warnings: &[String],
) -> anyhow::Result<()> {
    if let Some(reason) = unchecked.filter(|_| !args.force) {
        bail!(
            "the farm cannot read {} ({reason}), so it cannot check the files it uses or its frames; nothing was uploaded. Save it again with Blender, or add --force to upload it unchecked",
            args.scene.display()
        );
    }
    if args.strict && !warnings.is_empty() {
        bail!(
            "--strict: {} warning(s), so nothing was uploaded: {}",
            warnings.len(),
            warnings.join("; ")
        );
    }
    Ok(())
}
