"""Opens a .blend in Blender and prints what Blender itself sees, in the shape farm-blend reports,
as one JSON line after `FACTS=`.

`blender -b FILE --python dump_facts.py` (Blender opened the file, as for a render), or
`python dump_facts.py FILE` in a `bpy` module's Python.
"""

import json
import sys

import bpy


def output_format(settings):
    # Blender 5.0 names a multilayer EXR `OPEN_EXR` with media type `MULTI_LAYER_IMAGE`; the
    # file still stores the multilayer format code, which the reader names as earlier versions
    # did.
    if getattr(settings, "media_type", None) == "MULTI_LAYER_IMAGE":
        return "OPEN_EXR_MULTILAYER"
    return settings.file_format


def has_strips(scene):
    editor = scene.sequence_editor
    if editor is None:
        return False
    return len(editor.strips if hasattr(editor, "strips") else editor.sequences) > 0


def uses_nodes(scene):
    if hasattr(scene, "compositing_node_group"):  # Blender 5.0
        return scene.compositing_node_group is not None
    return bool(scene.use_nodes and scene.node_tree is not None)


def multiview(render):
    if not render.use_multiview:
        return None
    image = render.image_settings
    return {
        "setup": render.views_format,
        "image_views": image.views_format,
        "stereo_mode": image.stereo_3d_format.display_mode if image.views_format == "STEREO_3D" else None,
        "views": [{"name": v.name, "suffix": v.file_suffix, "enabled": v.use} for v in render.views],
    }


def main():
    if bpy.app.background and "--" not in sys.argv and len(sys.argv) > 1 and sys.argv[-1].endswith(".blend") and not bpy.data.filepath:
        bpy.ops.wm.open_mainfile(filepath=sys.argv[-1])
    scenes = []
    for scene in bpy.data.scenes:
        render = scene.render
        scenes.append(
            {
                "name": scene.name,
                "frame_start": scene.frame_start,
                "frame_end": scene.frame_end,
                "frame_step": scene.frame_step,
                "fps": render.fps / render.fps_base,
                "resolution": [render.resolution_x, render.resolution_y],
                "resolution_percentage": render.resolution_percentage,
                "engine": render.engine,
                "output_format": output_format(render.image_settings),
                "camera": scene.camera.name if scene.camera else None,
                "marker_cameras": sorted({m.camera.name for m in scene.timeline_markers if m.camera}),
                "sequencer": render.use_sequencer and has_strips(scene),
                "compositor": render.use_compositing and uses_nodes(scene),
                "view_layers": [layer.name for layer in scene.view_layers if layer.use],
                "multiview": multiview(render),
            }
        )
    files = []

    def add(kind, path, packed, source=None, tiles=(), uses=()):
        if path:
            files.append({"kind": kind, "path": path, "packed": packed, "source": source,
                          "tiles": sorted(tiles), "sequence_uses": sorted(set(uses))})

    def sequence_uses(image):
        found = []
        trees = [m.node_tree for m in bpy.data.materials if m.node_tree]
        trees += [w.node_tree for w in bpy.data.worlds if w.node_tree]
        trees += list(bpy.data.node_groups)
        for tree in trees:
            for node in tree.nodes:
                if node.type in {"TEX_IMAGE", "TEX_ENVIRONMENT"} and node.image == image:
                    u = node.image_user
                    found.append((u.frame_duration, u.frame_start, u.frame_offset,
                                  bool(u.use_cyclic)))
        return found

    for img in bpy.data.images:
        if img.library or img.source in {"GENERATED", "VIEWER"}:
            continue
        tiles = [t.number for t in img.tiles] if img.source == "TILED" else []
        uses = sequence_uses(img) if img.source == "SEQUENCE" else []
        add("image", img.filepath, bool(img.packed_files), img.source, tiles, uses)
    for lib in bpy.data.libraries:
        add("library", lib.filepath, lib.packed_file is not None)
    for sound in bpy.data.sounds:
        if not sound.library:
            add("sound", sound.filepath, sound.packed_file is not None)
    for clip in bpy.data.movieclips:
        if not clip.library:
            add("movie", clip.filepath, False, clip.source)
    for font in bpy.data.fonts:
        if not font.library and font.filepath != "<builtin>":
            add("font", font.filepath, font.packed_file is not None)
    for cache in bpy.data.cache_files:
        if not cache.library:
            add("cache", cache.filepath, False)
    # Cache folders Blender writes while rendering, as Blender sees them.
    for obj in bpy.data.objects:
        if obj.library:
            continue
        for system in obj.particle_systems:
            for cache in system.point_cache.point_caches:
                if cache.use_disk_cache and cache.use_external and not cache.is_baked:
                    add("cache", cache.filepath, False, "WRITTEN")
        for modifier in obj.modifiers:
            domain = getattr(modifier, "domain_settings", None)
            if modifier.type == "FLUID" and modifier.fluid_type == "DOMAIN":
                if domain.cache_type == "REPLAY" or not domain.has_cache_baked_any:
                    add("cache", domain.cache_directory, False, "WRITTEN")
    for volume in bpy.data.volumes:
        if not volume.library:
            add("volume", volume.filepath, volume.packed_file is not None,
                "SEQUENCE" if volume.is_sequence else None)
    facts = {
        "version": "%d.%d" % bpy.data.version[:2],
        "scene": bpy.context.scene.name,
        "scenes": scenes,
        "files": files,
        "cameras": sorted(o.name for o in bpy.data.objects if o.type == "CAMERA" and o.library is None),
    }
    print("FACTS=" + json.dumps(facts), flush=True)
    # The bpy module's teardown can abort once a fluid domain has run (seen on 4.2).
    __import__("os")._exit(0)


main()
