//! Where a folder Blender writes while it renders may lie.
//!
//! Blender writes and clears (deletes the files of later frames, or whole sub-folders for a
//! Mantaflow cache) the folder of an unbaked point cache on disk and of a Mantaflow cache in
//! Replay mode or with nothing baked, from the moment it opens the file, before any script the
//! farm runs can move it. So such a folder must already be inside the .blend's own folder: in the
//! renderer that is inside the job's work folder (the project is mirrored under it), under `farm
//! render` inside the scene's folder. Its name is held to plain characters as well: Blender writes
//! a Mantaflow cache folder into the Python it generates for Mantaflow.

use super::{url_scheme, PathError};

/// Whether Blender may write into the cache folder `path` (as stored in the .blend) while it
/// renders: relative to the .blend (`//`), never climbing out of its folder, letters, digits,
/// `_ - .`, spaces and `/` only. Refused otherwise ([`PathError::is_refused`]), `missing=ok` or
/// not.
pub fn written_folder(path: &str) -> Result<(), PathError> {
    if let Some(scheme) = url_scheme(path) {
        return Err(PathError::Url {
            path: path.to_owned(),
            scheme: scheme.to_owned(),
        });
    }
    let refuse = |reason: &'static str| {
        Err(PathError::Written {
            path: path.to_owned(),
            reason,
        })
    };
    let unified = path.replace('\\', "/");
    let Some(relative) = unified
        .strip_prefix("//")
        .filter(|_| !path.starts_with("\\\\"))
    else {
        return refuse("it is not relative to the .blend (`//...`)");
    };
    if !relative
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/'))
    {
        return refuse("it holds characters other than letters, digits, `_ - .`, spaces and `/`");
    }
    let mut depth = 0usize;
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return refuse("it climbs out of the .blend's folder"),
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    if depth == 0 {
        return refuse("it is the .blend's folder itself");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &str) -> String {
        match written_folder(path) {
            Err(err @ PathError::Written { .. }) => {
                assert!(err.is_refused(), "{path}");
                err.to_string()
            }
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn folders_inside_the_blends_folder_are_allowed() {
        for path in [
            "//cache/",
            "//cache_fluid_a1b2",
            "//a/../b",
            "//./x y/z-1.2",
            "//sim\\c",
        ] {
            assert_eq!(written_folder(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn absolute_climbing_odd_and_url_folders_are_refused_naming_why() {
        for path in [
            "/tmp/escaped/",
            "C:\\cache",
            "\\\\server\\share\\c",
            "cache/",
            "",
        ] {
            assert!(
                reason(path).contains("not relative to the .blend"),
                "{path}"
            );
        }
        for path in ["//../cache", "//a/../../cache", "//a/../.."] {
            assert!(reason(path).contains("climbs out"), "{path}");
        }
        for path in ["//", "//.", "//a/.."] {
            assert!(reason(path).contains("folder itself"), "{path}");
        }
        for path in ["//c'+__import__('os')+'", "//c\"", "//c\n", "//c$x"] {
            assert!(reason(path).contains("characters other than"), "{path:?}");
        }
        let message = reason("/tmp/escaped/");
        assert!(
            message.contains("`/tmp/escaped/`") && message.contains("bake"),
            "{message}"
        );
        assert!(matches!(
            written_folder("http://example.com/c/"),
            Err(PathError::Url { .. })
        ));
    }
}
