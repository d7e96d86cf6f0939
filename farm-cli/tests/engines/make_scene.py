"""Builds a tiny scene set to one render engine and renders Blender's own reference frames.

Run by farm-cli's engine tests through farm_testkit::TestBlender::script:

    blender -b --factory-startup --python make_scene.py -- '<json options>'

Options (JSON object): output (the .blend to write), engine (`eevee`, `workbench` or `cycles`),
frames (the scene's range, [start, end]), reference (a folder: each frame of the range is
rendered there by this Blender, with the scene's own engine, as `<frame>.png`; or null), movie
(optional: {container, codec, crf, audio_codec}: the scene's output becomes that FFmpeg movie,
set after the reference frames are rendered).

The scene: Blender's default cube, camera and light, at 64x36 so EEVEE on llvmpipe stays quick,
the cube turning over the frames; 8-bit RGB PNG output.
"""

import json
import os
import sys

import bpy

OPTS = json.loads(sys.argv[sys.argv.index("--") + 1])
# Blender's identifiers of each engine, by series (EEVEE is BLENDER_EEVEE_NEXT on 4.2 to 4.5).
IDS = {
    "cycles": ["CYCLES"],
    "eevee": ["BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"],
    "workbench": ["BLENDER_WORKBENCH"],
}


def set_engine(scene, name):
    for engine in IDS[name]:
        try:
            scene.render.engine = engine
            return
        except TypeError:
            continue
    raise SystemExit("no engine " + name)


bpy.ops.wm.read_factory_settings(use_empty=False)
scene = bpy.context.scene
set_engine(scene, OPTS["engine"])
scene.render.resolution_x = 64
scene.render.resolution_y = 36
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGB"
scene.render.image_settings.color_depth = "8"
scene.cycles.samples = 4
scene.eevee.taa_render_samples = 4
start, end = OPTS["frames"]
scene.frame_start = start
scene.frame_end = end
cube = bpy.data.objects["Cube"]
cube.rotation_euler = (0.0, 0.0, 0.0)
cube.keyframe_insert("rotation_euler", frame=start)
cube.rotation_euler = (0.0, 0.0, 1.0)
cube.keyframe_insert("rotation_euler", frame=end + 1)
if OPTS.get("reference"):
    for frame in range(start, end + 1):
        scene.frame_set(frame)
        scene.render.filepath = os.path.join(OPTS["reference"], str(frame))
        bpy.ops.render.render(write_still=True)
movie = OPTS.get("movie")
if movie:
    scene.render.image_settings.file_format = "FFMPEG"
    scene.render.ffmpeg.format = movie["container"]
    scene.render.ffmpeg.codec = movie["codec"]
    scene.render.ffmpeg.constant_rate_factor = movie["crf"]
    scene.render.ffmpeg.audio_codec = movie["audio_codec"]
    scene.render.fps = movie["fps"]
scene.render.filepath = "//"
bpy.ops.wm.save_as_mainfile(filepath=OPTS["output"])
sys.stdout.flush()
os._exit(0)
