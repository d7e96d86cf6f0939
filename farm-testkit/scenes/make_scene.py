"""Builds a small test scene whose frames show their own frame number.

Run by farm-testkit's `make_scene`:

    blender -b --factory-startup --python make_scene.py -- '<json options>'

Options (JSON object): output (the .blend to write), start, end, step, width, height, samples,
autorun_marker (a path or null), compress (bool).

Frame code: the world background's red channel is keyframed so that, in the 8-bit PNG, the red
value of a pixel showing only background is `frame + 128` (clamped to 0..255). The view transform
is `Raw` (no tone curve), dithering is off and the keyframes interpolate and extrapolate linearly,
so the value is exact on any frame. The camera sees plain background in the image's corners: the
only object is a small cube in the centre.

With autorun_marker, a registered text block `autorun.py` writes that file when it runs: Blender
runs it on load only when auto-execution is enabled, which is what tests of `--disable-autoexec`
need. Works on Blender 3.4 to 4.x.
"""

import json
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
    for fcurve in world.node_tree.animation_data.action.fcurves:
        fcurve.extrapolation = "LINEAR"
        for point in fcurve.keyframe_points:
            point.interpolation = "LINEAR"


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


def main():
    opts = options()
    scene = bpy.context.scene
    clear_objects()
    add_centre_cube()
    set_frame_code(scene)
    set_render(scene, opts)
    if opts.get("autorun_marker"):
        add_autorun(opts["autorun_marker"])
    bpy.ops.wm.save_as_mainfile(
        filepath=opts["output"], compress=bool(opts.get("compress")), check_existing=False
    )
    print("FARM_SCENE_SAVED " + opts["output"], flush=True)


main()
