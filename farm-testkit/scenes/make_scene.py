"""Builds a small test scene whose frames show their own frame number.

Run by farm-testkit's `make_scene`:

    blender -b --factory-startup --python make_scene.py -- '<json options>'

Options (JSON object): output (the .blend to write), start, end, step, width, height, samples,
autorun_marker, freestyle_marker, driver_marker (paths or null), file_outputs (a list of
{base_path, slot}), compress (bool).

The hostile options are the ways a .blend has of running code or writing files that the farm must
close: a registered text block (autorun_marker), Freestyle in Python Scripting mode whose style
module writes the environment it sees (freestyle_marker), a Python driver expression
(driver_marker), compositor File Output nodes writing wherever their path says (file_outputs).

Frame code: the world background's red channel is keyframed so that, in the 8-bit PNG, the red
value of a pixel showing only background is `frame + 128` (clamped to 0..255). The view transform
is `Raw` (no tone curve), dithering is off and the keyframes interpolate and extrapolate linearly,
so the value is exact on any frame. The camera sees plain background in the image's corners: the
only object is a small cube in the centre.

With autorun_marker, a registered text block `autorun.py` writes that file when it runs: Blender
runs it on load only when auto-execution is enabled, which is what tests of `--disable-autoexec`
need. Works on Blender 3.4 to 5.x (5.0 made actions layered and the compositor a node group).
"""

import json
import os
import sys

import bpy

# Linear background value of frame 0; each frame adds one 8-bit step.
CODE_OFFSET = 128.0
GREEN = 64.0 / 255.0
BLUE = 192.0 / 255.0


def options():
    argv = sys.argv
    if "--" not in argv:
        raise SystemExit("make_scene.py: expected '-- <json options>' after the script")
    return json.loads(argv[argv.index("--") + 1])


def clear_objects():
    for obj in list(bpy.data.objects):
        if obj.type not in {"CAMERA", "LIGHT"}:
            bpy.data.objects.remove(obj, do_unlink=True)


def add_centre_cube():
    bpy.ops.mesh.primitive_cube_add(size=0.6, location=(0.0, 0.0, 0.0))


def set_frame_code(scene):
    world = scene.world
    if world is None:
        world = bpy.data.worlds.new("World")
        scene.world = world
    world.use_nodes = True
    nodes = world.node_tree.nodes
    background = next((n for n in nodes if n.type == "BACKGROUND"), None)
    if background is None:
        background = nodes.new("ShaderNodeBackground")
        output = next(n for n in nodes if n.type == "OUTPUT_WORLD")
        world.node_tree.links.new(background.outputs[0], output.inputs[0])
    background.inputs["Strength"].default_value = 1.0
    colour = background.inputs["Color"]
    for frame in (0, 100):
        colour.default_value = ((CODE_OFFSET + frame) / 255.0, GREEN, BLUE, 1.0)
        colour.keyframe_insert("default_value", frame=frame)
    for fcurve in fcurves(world.node_tree):
        fcurve.extrapolation = "LINEAR"
        for point in fcurve.keyframe_points:
            point.interpolation = "LINEAR"


def fcurves(id_block):
    action = id_block.animation_data.action
    if hasattr(action, "fcurves"):  # before Blender 5.0
        return action.fcurves
    from bpy_extras import anim_utils

    slot = id_block.animation_data.action_slot
    return anim_utils.action_get_channelbag_for_slot(action, slot).fcurves


def set_render(scene, opts):
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = int(opts["samples"])
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    if hasattr(scene.cycles, "use_preview_denoising"):
        scene.cycles.use_preview_denoising = False
    for layer in scene.view_layers:
        if hasattr(layer, "cycles"):
            layer.cycles.use_denoising = False
    scene.cycles.max_bounces = 2
    scene.render.resolution_x = int(opts["width"])
    scene.render.resolution_y = int(opts["height"])
    scene.render.resolution_percentage = 100
    scene.render.dither_intensity = 0.0
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Raw"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    settings = scene.render.image_settings
    settings.file_format = "PNG"
    settings.color_mode = "RGB"
    settings.color_depth = "8"
    # Blender cannot store frames below 0 in a scene's range: it clamps them.
    scene.frame_start = int(opts["start"])
    scene.frame_end = int(opts["end"])
    scene.frame_step = int(opts["step"])
    scene.frame_set(scene.frame_start)
    scene.render.filepath = "//frames/"


def add_autorun(marker):
    text = bpy.data.texts.new("autorun.py")
    text.write(
        "import pathlib\n"
        f"pathlib.Path({json.dumps(marker)}).write_text('autorun ran\\n')\n"
    )
    text.use_module = True


def add_freestyle_script(scene, marker):
    text = bpy.data.texts.new("style_module.py")
    text.write(
        "import os, pathlib\n"
        f"pathlib.Path({json.dumps(marker)}).write_text(repr(sorted(os.environ.items())))\n"
        "from freestyle.types import Operators\n"
        "from freestyle.predicates import QuantitativeInvisibilityUP1D, TrueUP1D\n"
        "from freestyle.chainingiterators import ChainSilhouetteIterator\n"
        "from freestyle.shaders import ConstantThicknessShader\n"
        "Operators.select(QuantitativeInvisibilityUP1D(0))\n"
        "Operators.bidirectional_chain(ChainSilhouetteIterator())\n"
        "Operators.create(TrueUP1D(), [ConstantThicknessShader(2)])\n"
    )
    scene.render.use_freestyle = True
    for layer in scene.view_layers:
        layer.use_freestyle = True
        layer.freestyle_settings.mode = "SCRIPT"
        module = layer.freestyle_settings.modules.new()
        module.script = text


def add_python_driver(marker):
    cube = next(obj for obj in bpy.data.objects if obj.type == "MESH")
    fcurve = cube.driver_add("location", 2)
    fcurve.driver.type = "SCRIPTED"
    fcurve.driver.expression = (
        f"__import__('pathlib').Path({json.dumps(marker)}).write_text('driver ran') and 0.0"
    )


def compositor(scene):
    """The scene's compositor node tree and its Render Layers node, made if need be."""
    if not hasattr(scene, "compositing_node_group"):  # before Blender 5.0
        scene.use_nodes = True
        tree = scene.node_tree
        return tree, next(n for n in tree.nodes if n.bl_idname == "CompositorNodeRLayers")
    # Blender 5: a node group whose Group Output is the composited image.
    tree = bpy.data.node_groups.new("Compositor", "CompositorNodeTree")
    scene.compositing_node_group = tree
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    layers = tree.nodes.new("CompositorNodeRLayers")
    output = tree.nodes.new("NodeGroupOutput")
    tree.links.new(layers.outputs["Image"], output.inputs[0])
    return tree, layers


def add_file_outputs(scene, outputs):
    tree, layers = compositor(scene)
    # The nodes get the inverted image, so a file of theirs taken for a frame shows.
    invert = tree.nodes.new("CompositorNodeInvert")
    tree.links.new(layers.outputs["Image"], invert.inputs["Color"])
    for index, spec in enumerate(outputs):
        node = tree.nodes.new("CompositorNodeOutputFile")
        node.name = node.label = "File Output %d" % index
        if hasattr(node.format, "media_type"):  # Blender 5: multilayer EXR by default
            node.format.media_type = "IMAGE"
        node.format.file_format = "PNG"
        if hasattr(node, "base_path"):  # before Blender 5.0
            node.base_path = spec["base_path"]
            node.file_slots[0].path = spec["slot"]
        else:
            node.directory = spec["base_path"]
            node.file_name = spec["slot"]
            node.file_output_items.new("RGBA", "Image")
        tree.links.new(invert.outputs["Color"], node.inputs[0])


def add_camera_switch(scene, frame):
    """Timeline markers bind the scene's camera from its first frame and, from `frame` on, a
    second camera at the same place looking the other way (no cube in the centre)."""
    ahead = scene.camera
    away = bpy.data.objects.new("Away", ahead.data.copy())
    scene.collection.objects.link(away)
    away.matrix_world = ahead.matrix_world.copy()
    away.rotation_mode = "XYZ"
    away.rotation_euler.z += 3.14159265
    for name, at, camera in (("ahead", scene.frame_start, ahead), ("away", frame, away)):
        marker = scene.timeline_markers.new(name, frame=at)
        marker.camera = camera


def main():
    opts = options()
    scene = bpy.context.scene
    clear_objects()
    add_centre_cube()
    set_frame_code(scene)
    set_render(scene, opts)
    if opts.get("autorun_marker"):
        add_autorun(opts["autorun_marker"])
    if opts.get("freestyle_marker"):
        add_freestyle_script(scene, opts["freestyle_marker"])
    if opts.get("driver_marker"):
        add_python_driver(opts["driver_marker"])
    if opts.get("file_outputs"):
        add_file_outputs(scene, opts["file_outputs"])
    if opts.get("camera_switch_at") is not None:
        add_camera_switch(scene, int(opts["camera_switch_at"]))
    if opts.get("movie_fps"):
        scene.render.image_settings.file_format = "FFMPEG"
        scene.render.ffmpeg.format = "MKV"
        scene.render.ffmpeg.codec = "H264"
        scene.render.ffmpeg.constant_rate_factor = "HIGH"
        scene.render.fps = int(opts["movie_fps"])
    if opts.get("stereo"):
        scene.render.use_multiview = True
        scene.render.views_format = "STEREO_3D"
        scene.render.image_settings.views_format = "INDIVIDUAL"
    if opts.get("no_camera"):
        for obj in [o for o in bpy.data.objects if o.type == "CAMERA"]:
            bpy.data.objects.remove(obj, do_unlink=True)
    bpy.ops.wm.save_as_mainfile(
        filepath=opts["output"], compress=bool(opts.get("compress")), check_existing=False
    )
    print("FARM_SCENE_SAVED " + opts["output"], flush=True)


main()
# The bpy module can crash while tearing down (seen with drivers on 4.2.23); the work is done.
sys.stdout.flush()
os._exit(0)
