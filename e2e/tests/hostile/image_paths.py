"""Saves a small Cycles scene holding one image per path given (relative paths kept as given), for
the hostile tests.

    blender -b --factory-startup --python image_paths.py -- '{"output": "...", "paths": ["//a.png"]}'
"""

import json
import sys

import bpy

options = json.loads(sys.argv[sys.argv.index("--") + 1])
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.frame_start = 1
scene.frame_end = 1
for index, path in enumerate(options["paths"]):
    image = bpy.data.images.new("image_%d" % index, 4, 4)
    image.source = "FILE"
    image.filepath = path
    image.use_fake_user = True
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
