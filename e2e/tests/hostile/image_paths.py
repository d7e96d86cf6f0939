"""Saves a small Cycles scene holding one image per path given (relative paths kept as given), for
the hostile tests.

    blender -b --factory-startup --python image_paths.py -- '{"output": "...", "paths": ["//a.png"]}'
"""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import small  # noqa: E402

options = small.options()
small.scene()
for index, path in enumerate(options["paths"]):
    image = bpy.data.images.new("image_%d" % index, 4, 4)
    image.source = "FILE"
    image.filepath = path
    image.use_fake_user = True
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
