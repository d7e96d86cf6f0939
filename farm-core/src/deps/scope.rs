//! Whose files an upload may use: its own top-level folder and the prefixes the stack shares.
//!
//! A bucket may hold several teams' projects, one top-level folder each (`alice/...`,
//! `bob/...`). A `.blend` names its files by relative paths, which can climb into another
//! team's folder (`//../../bob/secret.png`); the trigger would bind that file to the job and the
//! renderer would download it into the uploader's frames. So a dependency must lie under the
//! upload's own top-level folder, or under a prefix the stack shares on purpose (its
//! `SharedPrefixes` parameter, e.g. `library/`). An upload at the bucket's root has no folder
//! of its own: it may use only files at the root (keys without a folder) and the shared
//! prefixes; a project with folders goes under a folder of its own (`--key proj/shot.blend`).

use super::PathError;

/// The prefixes every upload may use besides its own top-level folder: `library/`, `team/x/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedPrefixes(Vec<String>);

/// A shared prefix that names no folder of the bucket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shared prefix `{0}` is not a folder of the bucket: give folder names separated by commas, e.g. `library/,textures/` (no leading `/`, no `.` or `..`, no empty folder)")]
pub struct PrefixError(pub String);

impl SharedPrefixes {
    /// Reads a comma-separated list (`library/,textures`); a missing final `/` is added, blanks
    /// are ignored.
    pub fn parse(list: &str) -> Result<Self, PrefixError> {
        let mut prefixes = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let folder = item.trim_end_matches('/');
            let bad = folder.is_empty()
                || folder
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == ".." || s.contains('\\'));
            if bad {
                return Err(PrefixError(item.to_owned()));
            }
            prefixes.push(format!("{folder}/"));
        }
        prefixes.sort();
        prefixes.dedup();
        Ok(Self(prefixes))
    }

    /// The prefixes, each ending in `/`, sorted.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for SharedPrefixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.0.join(", "))
    }
}

/// Why the upload at `upload_key` may not use the file at `key` (both bucket keys, `key` as
/// [`super::resolve`] made it): `None` when it may.
pub fn out_of_scope(upload_key: &str, key: &str, shared: &SharedPrefixes) -> Option<PathError> {
    if shared.0.iter().any(|p| key.starts_with(p.as_str())) {
        return None;
    }
    let own = upload_key.split_once('/').map(|(top, _)| format!("{top}/"));
    let allowed = match &own {
        Some(own) => key.starts_with(own.as_str()),
        None => !key.contains('/'),
    };
    if allowed {
        return None;
    }
    Some(PathError::OutOfScope {
        key: key.to_owned(),
        rule: match own {
            Some(own) => format!(
                "an upload under `{own}` may use only files under `{own}` and the shared prefixes ({shared})"
            ),
            None => format!(
                "an upload at the bucket's root may use only files at the root and the shared prefixes ({shared}); upload a project with folders under a folder of its own (`--key proj/shot.blend`)"
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(list: &str) -> SharedPrefixes {
        SharedPrefixes::parse(list).unwrap()
    }

    #[test]
    fn shared_prefixes_are_folders() {
        assert_eq!(
            shared(" library , textures/x/,,library/").as_slice(),
            ["library/", "textures/x/"]
        );
        assert_eq!(shared("").as_slice(), [] as [String; 0]);
        for bad in ["/", "/abs", "a//b", "../up", "a/./b", "a\\b"] {
            assert!(SharedPrefixes::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_upload_uses_its_own_top_level_folder_and_the_shared_prefixes() {
        let lib = shared("library/");
        for key in ["alice/tex/a.png", "alice/x.png", "library/wood.png"] {
            assert_eq!(
                out_of_scope("alice/shots/a.blend", key, &lib),
                None,
                "{key}"
            );
        }
        for key in [
            "bob/secret.png",
            "alicex/a.png",
            "top.png",
            "librarian/a.png",
        ] {
            let err = out_of_scope("alice/shots/a.blend", key, &lib).expect(key);
            assert!(err.is_refused());
            let message = err.to_string();
            assert!(message.contains(&format!("`{key}`")), "{message}");
            assert!(
                message.contains("upload under `alice/` may use only files under `alice/`")
                    && message.contains("(library/)"),
                "{message}"
            );
        }
    }

    #[test]
    fn an_upload_at_the_root_uses_root_files_and_the_shared_prefixes() {
        let lib = shared("library");
        assert_eq!(out_of_scope("a.blend", "wood.png", &lib), None);
        assert_eq!(out_of_scope("a.blend", "library/wood.png", &lib), None);
        let message = out_of_scope("a.blend", "tex/wood.png", &SharedPrefixes::default())
            .unwrap()
            .to_string();
        assert!(
            message.contains("`tex/wood.png`")
                && message.contains("at the bucket's root may use only files at the root")
                && message.contains("(none)"),
            "{message}"
        );
    }
}
