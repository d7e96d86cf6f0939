"""Builds a scene whose cost is geometry: the persistent-data tests and benchmarks (issue 27).

Run by farm-testkit's `make_geometry_scene`:

    blender -b --factory-startup --python geometry_scene.py -- '<json options>'

Options (JSON object): output (the .blend to write), kind, end (frames 1..end), width, height,
samples, objects (how many subdivided monkeys), levels (their render subdivision level).

Kinds:
- `static`: the monkeys never change; a small cube moves, the camera moves, Cycles' seed is
  animated (each frame's noise differs): the geometry Cycles could keep between frames.
- `deforming`: the monkeys are bent by an animated Simple Deform modifier and a Wave modifier
  every frame, the camera moves and motion blur is on: nothing can be kept.
- `spike`: `static`, but frame `end // 2` renders with 8x the samples (an expensive frame).
- `rising`: `static`, with samples rising linearly from `samples` on frame 1 to 4x on the last.

Cycles on the CPU, no denoising, `Standard` view, fixed seed, PNG output. Works on Blender 3.4
to 4.x.
"""

import json
import math
import sys

import bpy


def options():
    argv = sys.argv
    return json.loads(argv[argv.index("--") + 1])


def clear():
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)


def monkeys(opts, deforming):
    count = int(opts["objects"])
    for i in range(count):
        angle = 2.0 * math.pi * i / max(1, count)
        bpy.ops.mesh.primitive_monkey_add(size=0.8, location=(2.2 * math.cos(angle), 2.2 * math.sin(angle), 0.0))
        obj = bpy.context.active_object
        subsurf = obj.modifiers.new("Subdivision", "SUBSURF")
        subsurf.levels = 1
        subsurf.render_levels = int(opts["levels"])
        if deforming:
            bend = obj.modifiers.new("Bend", "SIMPLE_DEFORM")
            bend.deform_method = "BEND"
            for frame, value in ((1, 0.0), (int(opts["end"]), 1.2)):
                bend.angle = value
                bend.keyframe_insert("angle", frame=frame)
            wave = obj.modifiers.new("Wave", "WAVE")
            wave.height = 0.1
            wave.width = 0.8
            wave.speed = 0.3


def camera(scene, opts):
    data = bpy.data.cameras.new("Camera")
    cam = bpy.data.objects.new("Camera", data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.rotation_euler = (math.radians(60.0), 0.0, 0.0)
    for frame, x in ((1, -0.8), (int(opts["end"]), 0.8)):
        cam.location = (x, -7.5, 4.5)
        cam.keyframe_insert("location", frame=frame)


def light(scene):
    data = bpy.data.lights.new("Sun", "SUN")
    data.energy = 3.0
    sun = bpy.data.objects.new("Sun", data)
    sun.rotation_euler = (math.radians(40.0), math.radians(20.0), 0.0)
    scene.collection.objects.link(sun)


def moving_cube(opts):
    bpy.ops.mesh.primitive_cube_add(size=0.5, location=(0.0, 0.0, 0.0))
    cube = bpy.context.active_object
    for frame, z in ((1, -0.5), (int(opts["end"]), 1.5)):
        cube.location = (0.0, 0.0, z)
        cube.keyframe_insert("location", frame=frame)


def samples(scene, opts, kind):
    base = int(opts["samples"])
    cycles = scene.cycles
    cycles.samples = base
    end = int(opts["end"])
    if kind == "spike":
        spike = max(1, end // 2)
        for frame, value in ((spike - 1, base), (spike, base * 8), (spike + 1, base)):
            cycles.samples = value
            cycles.keyframe_insert("samples", frame=frame)
        for fcurve in scene.animation_data.action.fcurves:
            for point in fcurve.keyframe_points:
                point.interpolation = "CONSTANT"
    elif kind == "rising":
        for frame, value in ((1, base), (end, base * 4)):
            cycles.samples = value
            cycles.keyframe_insert("samples", frame=frame)
        for fcurve in scene.animation_data.action.fcurves:
            for point in fcurve.keyframe_points:
                point.interpolation = "LINEAR"


def render_settings(scene, opts, kind):
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.seed = 7
    scene.cycles.use_animated_seed = True
    scene.render.resolution_x = int(opts["width"])
    scene.render.resolution_y = int(opts["height"])
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.use_motion_blur = kind == "deforming"
    scene.view_settings.view_transform = "Standard"
    scene.frame_start = 1
    scene.frame_end = int(opts["end"])
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.05, 0.05, 0.08)


def main():
    opts = options()
    kind = opts["kind"]
    if kind not in ("static", "deforming", "spike", "rising"):
        raise SystemExit("geometry_scene.py: unknown kind %r" % kind)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    clear()
    monkeys(opts, kind == "deforming")
    moving_cube(opts)
    camera(scene, opts)
    light(scene)
    render_settings(scene, opts, kind)
    samples(scene, opts, kind)
    bpy.ops.wm.save_as_mainfile(filepath=opts["output"], compress=False)


main()
