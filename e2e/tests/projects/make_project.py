"""Builds a small Blender project whose files live in folders beside the shot, as artists keep
them, for the dependency tests.

    blender -b --factory-startup --python make_project.py -- '{"dir": "<folder>"}'

Writes, under <dir>/proj:
- shared/green.png: a solid green texture, used by the library below;
- lib/props.blend: a library with one plane (right half of the shot's view) whose emission
  shader shows `//../shared/green.png`;
- shots/tex/red.png: a solid red texture;
- shots/tex/skin.1001.png, skin.1002.png: a `<UDIM>` set (an image kept with a fake user);
- shots/seq/f_0001.png .. f_0003.png: an image sequence, shown by an unwired texture node of
  the shot's material (scene frame N loads f_000N);
- shots/shot.blend: Cycles, 32x24, 2 samples, no denoising, Raw view; an orthographic camera
  looking down at a plane (left half) whose emission shader shows `//tex/red.png`, and the
  library's plane linked from `//../lib/props.blend`. Every path is relative;
- shots/absolute.blend: the shot with the red texture's path made absolute;
- shots/climbs.blend: the shot with the red texture's path `//../../.aws/credentials`, out of
  the project into a hidden folder beside it (`farm submit` must not send it).

Emission shaders and pure colours make the rendered pixels exact: a missing texture renders
Cycles' magenta instead.
"""

import json
import os
import sys

import bpy


def options():
    return json.loads(sys.argv[sys.argv.index("--") + 1])


def write_png(path, rgba):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = bpy.data.images.new("tmp_png", 4, 4)
    img.pixels = list(rgba) * 16
    img.filepath_raw = path
    img.file_format = "PNG"
    img.save()
    bpy.data.images.remove(img)


def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 2
    scene.cycles.use_denoising = False
    if hasattr(scene.cycles, "use_preview_denoising"):
        scene.cycles.use_preview_denoising = False
    for layer in scene.view_layers:
        layer.cycles.use_denoising = False
    scene.view_settings.view_transform = "Raw"
    scene.render.dither_intensity = 0.0
    scene.render.resolution_x = 32
    scene.render.resolution_y = 24
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.frame_start = 1
    scene.frame_end = 3
    world = bpy.data.worlds.new("World")
    world.color = (0.0, 0.0, 0.0)
    scene.world = world
    return scene


def textured_plane(name, x0, x1, image_path, blend_dir):
    """A plane from x0 to x1 (y from -2 to 2) showing the image through an emission shader."""
    mesh = bpy.data.meshes.new(name + "Mesh")
    mesh.from_pydata([(x0, -2, 0), (x1, -2, 0), (x1, 2, 0), (x0, 2, 0)], [], [(0, 1, 2, 3)])
    mesh.uv_layers.new()
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    material = bpy.data.materials.new(name + "Material")
    material.use_nodes = True
    nodes = material.node_tree.nodes
    links = material.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    emission = nodes.new("ShaderNodeEmission")
    texture = nodes.new("ShaderNodeTexImage")
    image = bpy.data.images.load(os.path.join(blend_dir, image_path.lstrip("/")))
    image.filepath = image_path
    texture.image = image
    links.new(texture.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], out.inputs["Surface"])
    mesh.materials.append(material)
    return obj, image


def save(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=path, relative_remap=False)


def main():
    root = os.path.join(options()["dir"], "proj")
    shots = os.path.join(root, "shots")
    lib_dir = os.path.join(root, "lib")
    write_png(os.path.join(root, "shared", "green.png"), (0.0, 1.0, 0.0, 1.0))
    write_png(os.path.join(shots, "tex", "red.png"), (1.0, 0.0, 0.0, 1.0))
    for tile in (1001, 1002):
        write_png(os.path.join(shots, "tex", "skin.%d.png" % tile), (0.0, 0.0, 1.0, 1.0))
    for frame in (1, 2, 3):
        write_png(os.path.join(shots, "seq", "f_%04d.png" % frame), (1.0, 1.0, 1.0, 1.0))

    # The library: its own texture is found from its own folder.
    scene = empty_scene()
    plane, _ = textured_plane("LibPlane", 0.0, 2.5, "//../shared/green.png", lib_dir)
    scene.collection.objects.link(plane)
    lib_path = os.path.join(lib_dir, "props.blend")
    save(lib_path)

    red_paths = (
        ("shot", "//tex/red.png"),
        ("absolute", os.path.join(shots, "tex", "red.png")),
        ("climbs", "//../../.aws/credentials"),
    )
    for name, red_path in red_paths:
        scene = empty_scene()
        save(os.path.join(shots, name + ".blend"))
        cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
        cam.data.type = "ORTHO"
        cam.data.ortho_scale = 4.0
        cam.location = (0.0, 0.0, 10.0)
        scene.collection.objects.link(cam)
        scene.camera = cam
        plane, image = textured_plane("ShotPlane", -2.5, 0.0, "//tex/red.png", shots)
        image.filepath = red_path
        scene.collection.objects.link(plane)

        udim = bpy.data.images.new("skin", 4, 4, tiled=True)
        udim.tiles.new(tile_number=1002)
        udim.source = "TILED"
        udim.filepath = "//tex/skin.<UDIM>.png"
        udim.use_fake_user = True

        seq = bpy.data.images.load(os.path.join(shots, "seq", "f_0001.png"))
        seq.name = "sequence"
        seq.source = "SEQUENCE"
        seq.filepath = "//seq/f_0001.png"
        seq.use_fake_user = True
        # A texture node shows it (not wired to the output, so the pixels stay red): scene frame
        # N loads f_000N.
        node = plane.data.materials[0].node_tree.nodes.new("ShaderNodeTexImage")
        node.image = seq
        node.image_user.frame_duration = 3
        node.image_user.frame_start = 1
        node.image_user.frame_offset = 0

        with bpy.data.libraries.load(lib_path, link=True, relative=True) as (src, dst):
            dst.objects = ["LibPlane"]
        for obj in dst.objects:
            scene.collection.objects.link(obj)
        save(os.path.join(shots, name + ".blend"))
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".blend1"):
                os.remove(os.path.join(folder, name))
    print("PROJECT=" + root)


main()
