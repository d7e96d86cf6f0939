"""Saves a small Cycles scene holding an image whose path is a URL (a movie, which Blender opens
with FFmpeg), for the hostile tests.

    blender -b --factory-startup --python url_image.py -- '{"output": "...", "url": "http://..."}'
"""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import small  # noqa: E402

options = small.options()
small.scene()
image = bpy.data.images.new("remote", 4, 4)
image.filepath = options["url"]
image.source = "MOVIE"
image.use_fake_user = True
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
