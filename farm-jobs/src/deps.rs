//! The pre-flight check of a project's dependencies, before any job: every file the `.blend`
//! loads that changes pixels (images with every `<UDIM>` tile and sequence file, linked
//! libraries and, recursively, their own files, movie clips, fonts, caches, volumes) must be
//! packed or present in the bucket, where [`farm_core::deps::resolve`] says it lives.
//!
//! A cache folder Blender writes while rendering ([`farm_blend::WRITTEN`]) is not looked for:
//! it is refused unless it lies inside the .blend's own folder ([`written_refusal`]).
//!
//! Sounds never stop a render: a missing one is a warning. Objects are looked up by listing
//! their folder when several are wanted from it (one request per 1,000 keys instead of one per
//! file) and by `HEAD` otherwise, several at once. A linked library is read where it lies
//! ([`crate::blend::read_blend`], ranged reads bound to the ETag just found), and its own paths
//! are resolved from its own key.
//!
//! What is found is bound to the job: [`write_dependency_list`] writes the files with their ETags
//! to an object named by its content, which the renderer downloads from, each file `If-Match`
//! its recorded ETag.

use std::collections::{BTreeMap, HashSet, VecDeque};

use bytes::Bytes;
use farm_blend::{BlendInfo, ExternalFile, FileKind};
use farm_core::deps::{
    out_of_scope, resolve, sequence_keys, tile_keys, written_folder, Dependency, DependencyList,
    DependencyRecord, ImageUser, MissingDependency, MissingReason, PathError, SequencePattern,
    SharedPrefixes,
};
use farm_core::storage::{ObjectMeta, PutOptions, StorageError};
use farm_core::{JobKeys, Storage};

use crate::blend::read_blend;

/// Most linked libraries followed (a guard against hostile or cyclic files).
const MAX_LIBRARIES: usize = 256;

/// The outcome of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Everything that changes pixels is packed or present (or `missing=ok` was given: the
    /// missing files are then in the record's warnings).
    Ready(DependencyRecord),
    /// Files are missing (or paths refused, [`DependencyRecord::refused`], whatever
    /// `missing=ok` says): the request is rejected with [`DependencyRecord::missing_message`].
    Missing(DependencyRecord),
}

/// Checks the dependencies of the `.blend` at `key`, whose reader facts are `info`. An image
/// sequence shown by texture nodes needs the files those nodes load on `frames` (Blender's
/// numbering); without `frames`, or without a node using it, every file of the sequence.
///
/// With `shared`, the bucket is one several uploaders share: a file (of the .blend or of any
/// library it links) outside the upload's own top-level folder and those prefixes is refused
/// ([`out_of_scope`]), never looked for nor read. Without (`farm render` over this machine's
/// folders), any key may be used.
pub async fn check<S: Storage>(
    storage: &S,
    key: &str,
    info: &BlendInfo,
    frames: Option<&[i32]>,
    allow_missing: bool,
    shared: Option<&SharedPrefixes>,
) -> Result<Preflight, StorageError> {
    let upload = key;
    let mut record = DependencyRecord::default();
    let mut found: BTreeMap<String, Dependency> = BTreeMap::new();
    let mut libraries_seen: HashSet<String> = HashSet::from([key.to_owned()]);
    let mut queue: VecDeque<(String, Vec<ExternalFile>)> =
        VecDeque::from([(key.to_owned(), info.files.clone())]);
    while let Some((from, files)) = queue.pop_front() {
        let wanted = wanted_files(&mut record, upload, &from, files, frames, shared);
        let objects = look_up(storage, &wanted).await?;
        for want in wanted {
            let hits: Vec<&ObjectMeta> = match &want.lookup {
                Lookup::Key(key) => objects.get(key).into_iter().collect(),
                Lookup::Sequence(pattern) => objects
                    .range(pattern.head.clone()..)
                    .take_while(|(k, _)| k.starts_with(&pattern.head))
                    .filter(|(k, _)| pattern.number_of(k).is_some())
                    .map(|(_, meta)| meta)
                    .collect(),
            };
            if hits.is_empty() {
                record.add_missing(not_found(&want));
                continue;
            }
            for meta in hits {
                let Some(etag) = meta.etag.clone() else {
                    continue;
                };
                if want.kind == FileKind::Library && libraries_seen.insert(meta.key.clone()) {
                    if libraries_seen.len() > MAX_LIBRARIES {
                        record.add_missing(MissingDependency {
                            key: Some(meta.key.clone()),
                            kind: want.kind.as_str().to_owned(),
                            path: want.path.clone(),
                            from: want.from.clone(),
                            reason: MissingReason::TooManyLibraries,
                            message: format!("more than {MAX_LIBRARIES} linked libraries: the farm does not follow more"),
                        });
                        continue;
                    }
                    let read = read_blend(storage, &meta.key, &etag, meta.size).await?;
                    match read {
                        Ok(library) => queue.push_back((meta.key.clone(), library.files)),
                        Err(reason) => record.add_missing(MissingDependency {
                            key: Some(meta.key.clone()),
                            kind: want.kind.as_str().to_owned(),
                            path: want.path.clone(),
                            from: want.from.clone(),
                            reason: MissingReason::UnreadableLibrary,
                            message: format!("the library cannot be read, so its own files cannot be checked: {reason}"),
                        }),
                    }
                }
                found.entry(meta.key.clone()).or_insert_with(|| Dependency {
                    key: meta.key.clone(),
                    kind: want.kind.as_str().to_owned(),
                    path: want.path.clone(),
                    from: want.from.clone(),
                    etag,
                    size: meta.size,
                });
            }
        }
    }
    record.files = found.into_values().collect();
    Ok(settle(record, allow_missing))
}

/// What the bucket must hold for `files` of the .blend (or library) at `from`: each file's
/// lookups. Packed files are counted, cache folders Blender writes and files that cannot be
/// resolved or lie outside the upload's scope are put on `record` instead.
fn wanted_files(
    record: &mut DependencyRecord,
    upload: &str,
    from: &str,
    files: Vec<ExternalFile>,
    frames: Option<&[i32]>,
    shared: Option<&SharedPrefixes>,
) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    for file in files {
        if file.packed {
            record.packed += 1;
            continue;
        }
        if file.source.as_deref() == Some(farm_blend::WRITTEN) {
            // Written by Blender, never read from the bucket: only where it lies matters.
            record.refused.extend(written_refusal(from, &file));
            continue;
        }
        let key = match resolve(from, &file.path) {
            Ok(key) => key,
            Err(err) => {
                unresolved(record, from, &file, &err);
                continue;
            }
        };
        if let Some(err) = shared.and_then(|shared| out_of_scope(upload, &key, shared)) {
            record.refused.push(MissingDependency {
                key: Some(key),
                kind: file.kind.as_str().to_owned(),
                path: file.path.clone(),
                from: from.to_owned(),
                reason: MissingReason::Path,
                message: err.to_string(),
            });
            continue;
        }
        for lookup in lookups(&file, key, frames) {
            wanted.push(Wanted {
                kind: file.kind,
                path: file.path.clone(),
                from: from.to_owned(),
                lookup,
            });
        }
    }
    wanted
}

/// Why Blender may not write into `file` of the .blend at `from`, when it is a cache folder
/// Blender writes while rendering ([`farm_blend::WRITTEN`]; the rule is [`written_folder`]):
/// `None` for any other file, or when it may. The pre-flight and the renderer (for its own
/// .blend) refuse such a file before Blender starts.
pub fn written_refusal(from: &str, file: &ExternalFile) -> Option<MissingDependency> {
    if file.source.as_deref() != Some(farm_blend::WRITTEN) {
        return None;
    }
    let err = written_folder(&file.path).err()?;
    Some(MissingDependency {
        key: None,
        kind: file.name.clone(),
        path: file.path.clone(),
        from: from.to_owned(),
        reason: MissingReason::Path,
        message: err.to_string(),
    })
}

trait AddMissing {
    fn add_missing(&mut self, missing: MissingDependency);
}

impl AddMissing for DependencyRecord {
    fn add_missing(&mut self, missing: MissingDependency) {
        if missing.kind == FileKind::Sound.as_str() {
            self.warnings.push(format!(
                "{} (sounds do not change the frames)",
                missing.describe()
            ));
        } else {
            self.missing.push(missing);
        }
    }
}

/// Writes the files a job downloads to `<key>/deps/<hash>.json`, named by its content (so it
/// never changes under a job that reads it), and records that key in the record.
pub async fn write_dependency_list<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    record: &mut DependencyRecord,
) -> Result<Option<String>, StorageError> {
    if record.files.is_empty() {
        return Ok(None);
    }
    let list = DependencyList {
        files: record.files.clone(),
    };
    let body = list.to_body().map_err(|source| StorageError::Json {
        key: keys.source().to_owned(),
        source,
    })?;
    let key = keys.dependency_list(&body);
    storage
        .put(
            &key,
            Bytes::from(body),
            &PutOptions::content_type("application/json"),
        )
        .await?;
    record.list = Some(key.clone());
    Ok(Some(key))
}

/// The files a job downloads, from the object [`write_dependency_list`] wrote.
pub async fn read_dependency_list<S: Storage>(
    storage: &S,
    key: &str,
) -> Result<DependencyList, StorageError> {
    farm_core::storage::get_json(storage, key).await
}

struct Wanted {
    kind: FileKind,
    path: String,
    from: String,
    lookup: Lookup,
}

enum Lookup {
    Key(String),
    /// Every file of the sequence in its folder.
    Sequence(SequencePattern),
}

/// Records a path that names no key the farm may look at: refused outright (a URL), or
/// missing (absolute, above the key's top folder).
fn unresolved(record: &mut DependencyRecord, from: &str, file: &ExternalFile, err: &PathError) {
    let missing = MissingDependency {
        key: None,
        kind: file.kind.as_str().to_owned(),
        path: file.path.clone(),
        from: from.to_owned(),
        reason: MissingReason::Path,
        message: err.to_string(),
    };
    if err.is_refused() {
        record.refused.push(missing);
    } else {
        record.add_missing(missing);
    }
}

/// What to look up for one file the .blend loads, at `key`: the key itself, every `<UDIM>` tile,
/// the sequence files texture nodes load on `frames`, or a whole sequence.
fn lookups(file: &ExternalFile, key: String, frames: Option<&[i32]>) -> Vec<Lookup> {
    let sequence = file.source.as_deref() == Some("SEQUENCE");
    let tiled = file.source.as_deref() == Some("TILED");
    if tiled {
        // A tiled image Blender saved without its tile list still loads tile 1001.
        let tiles = if file.tiles.is_empty() {
            vec![1001]
        } else {
            file.tiles.clone()
        };
        tile_keys(&key, &tiles)
            .into_iter()
            .map(Lookup::Key)
            .collect()
    } else if sequence {
        match (SequencePattern::parse(&key), frames) {
            (Some(pattern), Some(frames)) if !file.sequence_uses.is_empty() => {
                let mut keys = std::collections::BTreeSet::new();
                for used in &file.sequence_uses {
                    let user = ImageUser {
                        frame_duration: used.frame_duration,
                        frame_start: used.frame_start,
                        frame_offset: used.frame_offset,
                        cyclic: used.cyclic,
                    };
                    keys.extend(sequence_keys(&pattern, &user, frames.iter().copied()));
                }
                keys.into_iter().map(Lookup::Key).collect()
            }
            (Some(pattern), _) => vec![Lookup::Sequence(pattern)],
            (None, _) => vec![Lookup::Key(key)],
        }
    } else {
        vec![Lookup::Key(key)]
    }
}

/// The record of a wanted file the store does not hold.
fn not_found(want: &Wanted) -> MissingDependency {
    let (key, reason, message) = match &want.lookup {
        Lookup::Key(key) => (
            key.clone(),
            MissingReason::NotFound,
            format!("not found at `{key}`"),
        ),
        Lookup::Sequence(p) => (
            p.key(p.number),
            MissingReason::NoSequenceFile,
            format!(
                "no file of the sequence `{}{}{}` found (looked for `{}`)",
                p.head,
                "#".repeat(p.digits),
                p.tail,
                p.key(p.number)
            ),
        ),
    };
    MissingDependency {
        key: Some(key),
        kind: want.kind.as_str().to_owned(),
        path: want.path.clone(),
        from: want.from.clone(),
        reason,
        message,
    }
}

/// The check's verdict on a complete record: refused paths stop the job whatever `missing=ok`
/// says; missing files stop it unless `allow_missing`, when they become warnings.
fn settle(mut record: DependencyRecord, allow_missing: bool) -> Preflight {
    record.bytes = record.files.iter().map(|f| f.size).sum();
    record.missing.sort();
    record.missing.dedup();
    record.refused.sort();
    record.refused.dedup();
    if !record.refused.is_empty() {
        return Preflight::Missing(record);
    }
    if record.missing.is_empty() {
        return Preflight::Ready(record);
    }
    if allow_missing {
        let missing = std::mem::take(&mut record.missing);
        record.warnings.extend(
            missing
                .iter()
                .map(|m| format!("{} (rendered without it: missing=ok)", m.describe())),
        );
        record.missing = missing;
        return Preflight::Ready(record);
    }
    Preflight::Missing(record)
}

/// The objects of the wanted keys (and of every sequence's folder), by key.
async fn look_up<S: Storage>(
    storage: &S,
    wanted: &[Wanted],
) -> Result<BTreeMap<String, ObjectMeta>, StorageError> {
    let mut keys: Vec<&str> = Vec::new();
    let mut prefixes: Vec<&str> = Vec::new();
    for want in wanted {
        match &want.lookup {
            Lookup::Key(key) => keys.push(key),
            // The sequence's files share its head: list just them.
            Lookup::Sequence(p) => prefixes.push(&p.head),
        }
    }
    crate::lookup::look_up(storage, &keys, &prefixes).await
}
