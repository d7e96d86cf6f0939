"""Builds a tiny stereo scene and renders Blender's own animation of it as the reference.

Run by farm-cli's multiview tests through farm_testkit::TestBlender::script:

    blender -b --factory-startup --python make_scene.py -- '<json options>'

Options (JSON object): output (the .blend to write), views (`INDIVIDUAL`: a file per view, or
`SIDEBYSIDE` / `ANAGLYPH`: the views combined in one image), reference (a folder: Blender renders
the scene's animation there, `bpy.ops.render.render(animation=True)`, as `blender -b scene.blend
-a` does, before the output path is set back to `//`).

The scene: Blender's default cube, camera and light, Stereoscopy on (the stereo 3D setup: left
and right), Cycles at 32x18 with 2 samples and no denoising (Debian's Blender has no
OpenImageDenoise), frames 1-2 with the cube turning; 8-bit RGB PNG output.
"""

import json
import os
import sys

import bpy

OPTS = json.loads(sys.argv[sys.argv.index("--") + 1])

bpy.ops.wm.read_factory_settings(use_empty=False)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 2
scene.cycles.use_denoising = False
scene.render.resolution_x = 32
scene.render.resolution_y = 18
scene.render.resolution_percentage = 100
settings = scene.render.image_settings
settings.file_format = "PNG"
settings.color_mode = "RGB"
settings.color_depth = "8"
scene.frame_start = 1
scene.frame_end = 2
cube = bpy.data.objects["Cube"]
cube.rotation_euler = (0.0, 0.0, 0.0)
cube.keyframe_insert("rotation_euler", frame=1)
cube.rotation_euler = (0.0, 0.0, 1.0)
cube.keyframe_insert("rotation_euler", frame=3)
scene.render.use_multiview = True
scene.render.views_format = "STEREO_3D"
if OPTS["views"] == "INDIVIDUAL":
    settings.views_format = "INDIVIDUAL"
else:
    settings.views_format = "STEREO_3D"
    settings.stereo_3d_format.display_mode = OPTS["views"]
scene.render.filepath = OPTS["reference"] + os.sep
bpy.ops.render.render(animation=True)
scene.render.filepath = "//"
bpy.ops.wm.save_as_mainfile(filepath=OPTS["output"])
sys.stdout.flush()
os._exit(0)
