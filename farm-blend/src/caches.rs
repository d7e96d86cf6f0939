//! The caches Blender writes while it renders, found in an object's or a scene's data blocks.
//!
//! Blender writes (and clears: it deletes the files of later frames) the folder of a point cache
//! that is on disk or external and not baked (particles, cloth, soft body, dynamic paint, rigid
//! body worlds, smoke before Mantaflow), from the moment the file is opened, and a Mantaflow
//! domain's cache directory in Replay mode or with nothing baked (Mantaflow frees it
//! recursively). Both are reported as [`FileKind::Cache`] files whose `source` is
//! [`WRITTEN`], so the pre-flight can refuse a folder outside the .blend's own before Blender
//! starts. A disk point cache that is not external writes `blendcache_<file name>/` beside the
//! .blend, which needs no report. Everything else (Alembic and USD caches, volumes, baked point
//! caches, baked Mantaflow caches, ocean bakes, geometry-node bakes) is only read while
//! rendering.

use crate::sdna::View;
use crate::{ExternalFile, FileKind};

/// The `source` of a cache folder Blender writes into while rendering.
pub const WRITTEN: &str = "WRITTEN";

/// `PointCache.flag`: baked, on disk, external (DNA_pointcache_types.h).
const PTCACHE_BAKED: i64 = 1 << 0;
const PTCACHE_DISK_CACHE: i64 = 1 << 6;
const PTCACHE_EXTERNAL: i64 = 1 << 9;
/// `FluidDomainSettings.cache_type` Replay (DNA_fluid_types.h).
const FLUID_DOMAIN_CACHE_REPLAY: i64 = 0;
/// `FluidDomainSettings.cache_flag`: any of the five `FLUID_DOMAIN_BAKED_*` bits.
const FLUID_DOMAIN_BAKED_ANY: i64 = (1 << 1) | (1 << 3) | (1 << 5) | (1 << 7) | (1 << 9);

/// The folder a data block of `owner` (an object's or scene's name) makes Blender write while
/// rendering, if it is a point cache or fluid domain that does.
pub(crate) fn written_folder(view: &View<'_>, owner: &str) -> Option<ExternalFile> {
    let (path, what) = match view.struct_name()? {
        "PointCache" => {
            let flag = view.int("flag")?;
            let on_disk = flag & PTCACHE_DISK_CACHE != 0;
            let external = flag & PTCACHE_EXTERNAL != 0;
            if flag & PTCACHE_BAKED != 0 || !on_disk || !external {
                // Baked: only read. In memory: no file. On disk but not external: beside the
                // .blend.
                return None;
            }
            (view.bytes_str("path")?, "point cache")
        }
        "FluidDomainSettings" => {
            let replay = view.int("cache_type")? == FLUID_DOMAIN_CACHE_REPLAY;
            let baked = view.int("cache_flag").unwrap_or(0) & FLUID_DOMAIN_BAKED_ANY != 0;
            if !replay && baked {
                return None;
            }
            (view.bytes_str("cache_directory")?, "fluid cache")
        }
        _ => return None,
    };
    if path.is_empty() {
        return None;
    }
    Some(ExternalFile {
        kind: FileKind::Cache,
        path: String::from_utf8_lossy(path).into_owned(),
        name: format!("{what} of {owner}"),
        packed: false,
        source: Some(WRITTEN.to_owned()),
        tiles: Vec::new(),
        sequence_uses: Vec::new(),
    })
}
