"""Saves a small Cycles scene holding an image whose path is a URL (a movie, which Blender opens
with FFmpeg), for the hostile tests.

    blender -b --factory-startup --python url_image.py -- '{"output": "...", "url": "http://..."}'
"""

import json
import sys

import bpy

options = json.loads(sys.argv[sys.argv.index("--") + 1])
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.cycles.use_denoising = False
scene.render.resolution_x = 16
scene.render.resolution_y = 16
scene.frame_start = 1
scene.frame_end = 1
image = bpy.data.images.new("remote", 4, 4)
image.filepath = options["url"]
image.source = "MOVIE"
image.use_fake_user = True
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
