//! The block walk and the facts read from the kept blocks.

use std::collections::HashMap;

use crate::blocks::{io_error, read_bhead, read_header, HeadKind};
use crate::names::{engine_as_opened, image_source_name, output_format_name};
use crate::sdna::{Sdna, View};
use crate::source::Source;
use crate::{
    BlendError, BlendInfo, BlenderVersion, Compression, ExternalFile, FileKind, Scene, SequenceUse,
};

/// The largest struct catalogue we accept (Blender 5.0's is about 100 KiB).
const MAX_DNA: u64 = 16 << 20;
/// Bytes kept of one ID block: its struct (a scene is about 10 KiB; the rest of a block, if
/// any, is never needed).
const MAX_ID_KEPT: u64 = 256 << 10;
/// Bytes kept of an object block: enough for its `ID` header (about 300 bytes in 5.0).
const OBJECT_KEPT: u64 = 2 << 10;
/// Bytes kept of a small data block that follows an image (its `ImageTile`s are among them).
const IMAGE_DATA_KEPT: u64 = 1 << 10;
/// Bytes kept of a small data block of a node tree's owner (material, world, light, node
/// group): the image texture nodes and their `ImageUser`s are among them.
const NODE_DATA_KEPT: u64 = 2 << 10;
/// All node data kept together; past this, image sequences are read without their users (the
/// farm then takes every file of a sequence).
const NODE_DATA_BUDGET: usize = 32 << 20;
/// Bytes kept of a small data block of a scene: its timeline markers, sequencer (`Editing`)
/// and view layers are among them.
const SCENE_DATA_KEPT: u64 = 4 << 10;
/// All scene data kept together; past this a scene's later data blocks are not read.
const SCENE_DATA_BUDGET: usize = 16 << 20;
/// `RenderData.scemode` bits: render the sequencer, and composite.
const R_DOSEQ: i64 = 1 << 0;
const R_DOCOMP: i64 = 1 << 6;
/// `Object.type` of a camera.
const OB_CAMERA: i64 = 11;
/// `ViewLayer.flag`: rendered; `SceneRenderLayer.layflag` (before 2.80): disabled.
const VIEW_LAYER_RENDER: i64 = 1 << 0;
const SCE_LAY_DISABLE: i64 = 1 << 17;
/// Bytes kept of a small data block of an object: its point caches and fluid domain settings
/// (about 1.4 and 3 KiB) are among them.
const OBJECT_DATA_KEPT: u64 = 16 << 10;
/// All object data kept together; past this an object's cache folders are not read.
const OBJECT_DATA_BUDGET: usize = 32 << 20;
/// Bytes kept of the file globals.
const GLOB_KEPT: u64 = 64 << 10;
/// All kept bytes together; past this the file is refused rather than filling memory.
const MAX_KEPT_TOTAL: usize = 256 << 20;

struct Block {
    code: [u8; 4],
    sdna: usize,
    old: u64,
    data: Vec<u8>,
}

/// Reads the file forward once, keeping only what the facts need, then reads the facts.
pub(crate) fn walk(
    src: &mut impl Source,
    compression: Compression,
) -> Result<BlendInfo, BlendError> {
    let header = read_header(src)?;
    let mut dna: Option<Vec<u8>> = None;
    let mut kept: Vec<Block> = Vec::new();
    let mut kept_bytes = 0usize;
    let mut data_of = DataOf::default();
    loop {
        let head = read_bhead(src, header.head)?;
        if &head.code != b"DATA" {
            data_of.owner = head.code;
        }
        let keep = match &head.code {
            b"ENDB" => break,
            b"DNA1" => {
                if head.len > MAX_DNA {
                    return Err(BlendError::Corrupt(format!(
                        "its struct catalogue claims {} bytes",
                        head.len
                    )));
                }
                let data = src
                    .read_vec(head.len)
                    .map_err(|e| io_error(e, "the struct catalogue"))?;
                dna = Some(data);
                continue;
            }
            b"GLOB" => GLOB_KEPT,
            [b'O', b'B', 0, 0] => OBJECT_KEPT,
            [b'S', b'C', 0, 0]
            | [b'I', b'M', 0, 0]
            | [b'L', b'I', 0, 0]
            | [b'S', b'O', 0, 0]
            | [b'M', b'C', 0, 0]
            | [b'V', b'F', 0, 0]
            | [b'C', b'F', 0, 0]
            | [b'V', b'O', 0, 0] => MAX_ID_KEPT,
            b"DATA" => data_of.keep(head.len),
            _ => 0,
        };
        let take = head.len.min(keep);
        let data = if take > 0 {
            src.read_vec(take)
                .map_err(|e| io_error(e, "a data-block"))?
        } else {
            Vec::new()
        };
        src.skip(head.len - take)
            .map_err(|e| io_error(e, "a data-block"))?;
        if take > 0 {
            kept_bytes += data.len();
            if kept_bytes > MAX_KEPT_TOTAL {
                return Err(BlendError::Corrupt(format!(
                    "it holds more than {} MiB of scene, object and file data-blocks",
                    MAX_KEPT_TOTAL >> 20
                )));
            }
            kept.push(Block {
                code: head.code,
                sdna: head.sdna,
                old: head.old,
                data,
            });
        }
    }
    let dna =
        dna.ok_or_else(|| BlendError::Corrupt("it has no struct catalogue (DNA1 block)".into()))?;
    let pointer_size = match header.head {
        HeadKind::Small4 => 4,
        HeadKind::Small | HeadKind::Large => 8,
    };
    let sdna = Sdna::parse(&dna, pointer_size)?;
    Facts { sdna: &sdna }.read(header.version, compression, &kept)
}

/// Whose data blocks are being read (Blender writes an ID's data right after it), and how much
/// of them is kept: an image's (its `<UDIM>` tile numbers), a node tree owner's (material,
/// node group, world, light: a texture node's image user), a scene's (markers, sequencer, view
/// layers) and an object's (modifiers, particle systems, point caches), each kind within a
/// budget.
#[derive(Default)]
struct DataOf {
    owner: [u8; 4],
    node_bytes: usize,
    scene_bytes: usize,
    object_bytes: usize,
}

impl DataOf {
    /// Bytes to keep of a `DATA` block of `len` bytes: all of it or nothing.
    fn keep(&mut self, len: u64) -> u64 {
        let (kept, budget, used) = match &self.owner {
            [b'I', b'M', 0, 0] => {
                return if len <= IMAGE_DATA_KEPT {
                    IMAGE_DATA_KEPT
                } else {
                    0
                }
            }
            [b'M', b'A', 0, 0] | [b'N', b'T', 0, 0] | [b'W', b'O', 0, 0] | [b'L', b'A', 0, 0] => {
                (NODE_DATA_KEPT, NODE_DATA_BUDGET, &mut self.node_bytes)
            }
            [b'S', b'C', 0, 0] => (SCENE_DATA_KEPT, SCENE_DATA_BUDGET, &mut self.scene_bytes),
            [b'O', b'B', 0, 0] => (OBJECT_DATA_KEPT, OBJECT_DATA_BUDGET, &mut self.object_bytes),
            _ => return 0,
        };
        if len > kept || *used >= budget {
            return 0;
        }
        *used += usize::try_from(len).unwrap_or(usize::MAX);
        kept
    }
}

struct Facts<'a> {
    sdna: &'a Sdna,
}

/// The `ID` header of a data-block: its name without the two-letter code, and whether it is
/// linked from a library.
struct IdHeader {
    name: String,
    linked: bool,
}

impl<'a> Facts<'a> {
    fn view(&self, block: &'a Block, expect: &[&str]) -> Result<View<'a>, BlendError> {
        let view = self.sdna.view(block.sdna, &block.data);
        match view.struct_name() {
            Some(name) if expect.contains(&name) => Ok(view),
            other => Err(BlendError::Corrupt(format!(
                "a `{}` block holds a `{}`, not a {}",
                String::from_utf8_lossy(&block.code).trim_end_matches('\0'),
                other.unwrap_or("struct that does not exist"),
                expect.join(" or ")
            ))),
        }
    }

    fn id(&self, view: &View<'a>) -> Result<IdHeader, BlendError> {
        let id = view.sub("id").ok_or_else(|| {
            BlendError::Corrupt(format!(
                "its {} has no ID header",
                view.struct_name().unwrap_or("data-block")
            ))
        })?;
        let name = id
            .bytes_str("name")
            .ok_or_else(|| BlendError::Corrupt("a data-block's ID has no name".into()))?;
        let name = String::from_utf8_lossy(name.get(2..).unwrap_or_default()).into_owned();
        Ok(IdHeader {
            name,
            linked: id.pointer("lib").is_some_and(|p| p != 0),
        })
    }

    fn read(
        &self,
        version: BlenderVersion,
        compression: Compression,
        blocks: &'a [Block],
    ) -> Result<BlendInfo, BlendError> {
        let (objects, current) = self.objects_and_current_scene(blocks)?;
        let mut scenes = Vec::new();
        let mut active = None;
        let mut files = Vec::new();
        // The image whose data blocks follow, if it was kept as a file.
        let mut image: Option<usize> = None;
        // Images kept as files, by their address in the file.
        let mut images: HashMap<u64, usize> = HashMap::new();
        // Texture nodes: (image address, storage address); storages' image users by address.
        let mut nodes: Vec<(u64, u64)> = Vec::new();
        let mut users: HashMap<u64, SequenceUse> = HashMap::new();
        // The scene whose data blocks follow, and whether it renders its sequencer's strips.
        let mut scene: Option<(usize, bool)> = None;
        // The object or scene whose data blocks follow (their caches), by name.
        let mut owner: Option<String> = None;
        for block in blocks {
            if &block.code == b"DATA" {
                if let Some((index, sequencer_on)) = scene {
                    self.scene_data(block, &mut scenes[index], sequencer_on, &objects);
                }
                if let Some(owner) = &owner {
                    let view = self.sdna.view(block.sdna, &block.data);
                    files.extend(crate::caches::written_folder(&view, owner));
                }
                if let Some(tile) = image.and_then(|_| self.tile_number(block)) {
                    let file: &mut ExternalFile = &mut files[image.unwrap_or_default()];
                    file.tiles.push(tile);
                }
                self.node_facts(block, &mut nodes, &mut users);
                continue;
            }
            image = None;
            scene = None;
            owner = None;
            match &block.code {
                [b'S', b'C', 0, 0] => {
                    let (read, scemode) = self.scene(block, &objects)?;
                    owner = Some(read.name.clone());
                    if current == Some(block.old) {
                        active = Some(read.name.clone());
                    }
                    scene = Some((scenes.len(), scemode & R_DOSEQ != 0));
                    scenes.push(read);
                }
                [b'O', b'B', 0, 0] => {
                    owner = self.object_name(Some(block.old), &objects);
                }
                b"GLOB" => {}
                _ => {
                    if let Some(file) = self.file(block)? {
                        if file.kind == FileKind::Image && file.source.as_deref() == Some("TILED") {
                            image = Some(files.len());
                        }
                        if file.kind == FileKind::Image {
                            images.insert(block.old, files.len());
                        }
                        files.push(file);
                    }
                }
            }
        }
        finish_files(&mut files, &nodes, &images, &users);
        for scene in &mut scenes {
            scene.marker_cameras.sort_unstable();
            scene.marker_cameras.dedup();
        }
        let cameras = self.cameras(&objects);
        // A file without a `curscene` still opens on its first scene.
        if active.is_none() && current.is_none() {
            active = scenes.first().map(|s| s.name.clone());
        }
        Ok(BlendInfo {
            version,
            compression,
            scene: active,
            scenes,
            files,
            cameras,
        })
    }

    /// The file's objects by address, and the address of its current scene (`curscene`).
    fn objects_and_current_scene(
        &self,
        blocks: &'a [Block],
    ) -> Result<(HashMap<u64, &'a Block>, Option<u64>), BlendError> {
        let mut objects: HashMap<u64, &Block> = HashMap::new();
        let mut current = None;
        for block in blocks {
            match &block.code {
                [b'O', b'B', 0, 0] => {
                    objects.insert(block.old, block);
                }
                b"GLOB" => {
                    let view = self.view(block, &["FileGlobal"])?;
                    current = view.pointer("curscene").filter(|&p| p != 0);
                }
                _ => {}
            }
        }
        Ok((objects, current))
    }

    /// The names of the file's own camera objects, sorted.
    fn cameras(&self, objects: &HashMap<u64, &'a Block>) -> Vec<String> {
        let mut cameras: Vec<String> = objects
            .values()
            .filter_map(|block| {
                let view = self.view(block, &["Object"]).ok()?;
                let id = self.id(&view).ok()?;
                (view.int("type") == Some(OB_CAMERA) && !id.linked).then_some(id.name)
            })
            .collect();
        cameras.sort_unstable();
        cameras
    }

    /// The scene's settings, and its `RenderData.scemode`.
    fn scene(
        &self,
        block: &'a Block,
        objects: &HashMap<u64, &Block>,
    ) -> Result<(Scene, i64), BlendError> {
        let view = self.view(block, &["Scene"])?;
        let id = self.id(&view)?;
        let missing = |field: &str| {
            BlendError::Corrupt(format!(
                "scene `{}` has no `{field}` in this file's struct catalogue",
                id.name
            ))
        };
        let r = view.sub("r").ok_or_else(|| missing("r"))?;
        let int = |field: &str| -> Result<i32, BlendError> {
            r.int(field)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| missing(&format!("r.{field}")))
        };
        let fps = f64::from(int("frs_sec")?);
        // Files from before 2.45 may lack the base: Blender reads it as 0 and makes it 1.
        let fps_base = r.float("frs_sec_base").unwrap_or(0.0);
        // Blender 2.62 moved the output format into `im_format`.
        let imtype = r
            .sub("im_format")
            .and_then(|f| f.int("imtype"))
            .or_else(|| r.int("imtype"))
            .ok_or_else(|| missing("r.im_format.imtype"))?;
        let camera = self.object_name(view.pointer("camera"), objects);
        let scemode = r.int("scemode").unwrap_or(0);
        // Before 2.80 a scene kept render layers (2.42+); one with none opens with the single
        // view layer `Viewport` that Blender's 2.80 versioning adds (`versioning_280`).
        let default_layer = view.sub("view_layers").is_none()
            && r.sub("layers")
                .and_then(|layers| layers.pointer("first"))
                .is_none_or(|first| first == 0);
        let scene = Scene {
            frame_start: int("sfra")?,
            frame_end: int("efra")?,
            // Files from before 2.50 have no step: Blender opens them with a step of 1.
            frame_step: match r.int("frame_step") {
                None => 1,
                Some(_) => int("frame_step")?,
            },
            fps: if fps_base > 0.0 { fps / fps_base } else { fps },
            resolution: [int("xsch")?, int("ysch")?],
            resolution_percentage: int("size")?,
            engine: engine_as_opened(r.string("engine").as_deref()),
            output_format: output_format_name(imtype),
            output_path: r.string("pic").unwrap_or_default(),
            camera,
            marker_cameras: Vec::new(),
            sequencer: false,
            compositor: scemode & R_DOCOMP != 0
                && (view
                    .pointer("compositing_node_group")
                    .is_some_and(|p| p != 0)
                    || (view.pointer("nodetree").is_some_and(|p| p != 0)
                        && view.int("use_nodes").is_some_and(|u| u != 0))),
            view_layers: if default_layer {
                vec!["Viewport".to_owned()]
            } else {
                Vec::new()
            },
            movie: crate::movie::movie(&r),
            multiview: crate::views::multiview(&r),
            name: id.name,
        };
        Ok((scene, scemode))
    }

    /// The name of the object a pointer member points at (`None`: null, or not an object of
    /// this file).
    fn object_name(&self, pointer: Option<u64>, objects: &HashMap<u64, &Block>) -> Option<String> {
        let block = objects.get(&pointer.filter(|&p| p != 0)?)?;
        let view = self.view(block, &["Object"]).ok()?;
        self.id(&view).ok().map(|id| id.name)
    }

    /// What a data block of a scene adds to it: a timeline marker's camera, the sequencer's
    /// strips, a rendered view layer (`SceneRenderLayer` before 2.80).
    fn scene_data(
        &self,
        block: &'a Block,
        scene: &mut Scene,
        sequencer_on: bool,
        objects: &HashMap<u64, &Block>,
    ) {
        let view = self.sdna.view(block.sdna, &block.data);
        match view.struct_name() {
            Some("TimeMarker") => {
                let camera = self.object_name(view.pointer("camera"), objects);
                scene.marker_cameras.extend(camera);
            }
            Some("Editing") => {
                let strips = view
                    .sub("seqbase")
                    .and_then(|list| list.pointer("first"))
                    .is_some_and(|p| p != 0);
                scene.sequencer |= strips && sequencer_on;
            }
            Some("ViewLayer") if view.int("flag").unwrap_or(0) & VIEW_LAYER_RENDER != 0 => {
                scene.view_layers.extend(view.string("name"));
            }
            Some("SceneRenderLayer") if view.int("layflag").unwrap_or(0) & SCE_LAY_DISABLE == 0 => {
                scene.view_layers.extend(view.string("name"));
            }
            Some("SceneRenderView") => {
                if let Some(multiview) = scene.multiview.as_mut() {
                    multiview.views.extend(crate::views::render_view(&view));
                }
            }
            _ => {}
        }
    }

    /// A texture node (`bNode` with an image and storage) or an image texture node's storage
    /// (`NodeTexImage`, `NodeTexEnvironment`: its `ImageUser`).
    fn node_facts(
        &self,
        block: &'a Block,
        nodes: &mut Vec<(u64, u64)>,
        users: &mut HashMap<u64, SequenceUse>,
    ) {
        let view = self.sdna.view(block.sdna, &block.data);
        match view.struct_name() {
            Some("bNode") => {
                let id = view.pointer("id").unwrap_or(0);
                let storage = view.pointer("storage").unwrap_or(0);
                if id != 0 && storage != 0 {
                    nodes.push((id, storage));
                }
            }
            Some("NodeTexImage" | "NodeTexEnvironment") => {
                let Some(user) = view.sub("iuser") else {
                    return;
                };
                let int = |name: &str| {
                    user.int(name)
                        .and_then(|v| i32::try_from(v).ok())
                        .unwrap_or(0)
                };
                users.insert(
                    block.old,
                    SequenceUse {
                        frame_duration: int("frames"),
                        frame_start: int("sfra"),
                        frame_offset: int("offset"),
                        cyclic: int("cycl") != 0,
                    },
                );
            }
            _ => {}
        }
    }

    /// The tile number of an `ImageTile` block (`1001`...), if the block is one.
    fn tile_number(&self, block: &'a Block) -> Option<i32> {
        let view = self.sdna.view(block.sdna, &block.data);
        if view.struct_name() != Some("ImageTile") {
            return None;
        }
        view.int("tile_number").and_then(|n| i32::try_from(n).ok())
    }

    fn file(&self, block: &'a Block) -> Result<Option<ExternalFile>, BlendError> {
        let (kind, structs): (FileKind, &[&str]) = match &block.code[..2] {
            b"IM" => (FileKind::Image, &["Image"]),
            b"LI" => (FileKind::Library, &["Library"]),
            b"SO" => (FileKind::Sound, &["bSound"]),
            b"MC" => (FileKind::Movie, &["MovieClip"]),
            b"VF" => (FileKind::Font, &["VFont"]),
            b"CF" => (FileKind::Cache, &["CacheFile"]),
            b"VO" => (FileKind::Volume, &["Volume"]),
            _ => return Ok(None),
        };
        let view = self.view(block, structs)?;
        let id = self.id(&view)?;
        if id.linked {
            // Its path belongs to the library it comes from.
            return Ok(None);
        }
        let path = path_member(&view, kind).unwrap_or_default();
        let mut source = None;
        match kind {
            FileKind::Image => {
                let code = view.int("source").unwrap_or(1);
                match image_source_name(code) {
                    // Made inside Blender: nothing to load.
                    Some("GENERATED" | "VIEWER") => return Ok(None),
                    name => source = name.map(str::to_owned),
                }
            }
            FileKind::Movie => {
                source = match view.int("source") {
                    Some(1) => Some("SEQUENCE".to_owned()),
                    Some(2) => Some("MOVIE".to_owned()),
                    _ => None,
                }
            }
            FileKind::Volume if view.int("is_sequence").is_some_and(|v| v != 0) => {
                source = Some("SEQUENCE".to_owned());
            }
            FileKind::Font if path == b"<builtin>" => return Ok(None),
            _ => {}
        }
        if path.is_empty() {
            return Ok(None);
        }
        let packed = view.pointer("packedfile").is_some_and(|p| p != 0)
            || view
                .sub("packedfiles")
                .and_then(|list| list.pointer("first"))
                .is_some_and(|p| p != 0);
        Ok(Some(ExternalFile {
            kind,
            path: String::from_utf8_lossy(path).into_owned(),
            name: id.name,
            packed,
            source,
            tiles: Vec::new(),
            sequence_uses: Vec::new(),
        }))
    }
}

/// The stored path of an ID. Blender keeps the old member names in files when it renames
/// members in code (`Image.name` is `Image.filepath` in code), so both are looked up; a
/// `Library`'s `filepath` was, until the rename, the absolute path made when loading.
fn path_member<'a>(view: &View<'a>, kind: FileKind) -> Option<&'a [u8]> {
    let order: &[&str] = match kind {
        FileKind::Library
        | FileKind::Image
        | FileKind::Sound
        | FileKind::Movie
        | FileKind::Font => &["name", "filepath"],
        FileKind::Cache | FileKind::Volume => &["filepath", "name"],
    };
    order.iter().find_map(|m| view.bytes_str(m))
}

/// The external files as reported: each image sequence with the frames its texture nodes use
/// (`nodes`: image and storage addresses; `images`: file index by image address; `users`: a
/// storage's image user), then in order ([`ExternalFile::tidy`]).
fn finish_files(
    files: &mut [ExternalFile],
    nodes: &[(u64, u64)],
    images: &HashMap<u64, usize>,
    users: &HashMap<u64, SequenceUse>,
) {
    for (image, storage) in nodes {
        if let (Some(&index), Some(user)) = (images.get(image), users.get(storage)) {
            let file: &mut ExternalFile = &mut files[index];
            if file.source.as_deref() == Some("SEQUENCE") {
                file.sequence_uses.push(*user);
            }
        }
    }
    ExternalFile::tidy(files);
}
