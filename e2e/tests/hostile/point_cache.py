"""Saves a small Cycles scene whose particle system's point cache is external, on disk, unbaked,
with an absolute folder (Blender writes and clears `escaped_<frame>_00.bphys` files there from the
moment it opens the file), for the hostile tests.

    blender -b --factory-startup --python point_cache.py -- '{"output": "...", "folder": "/abs/"}'
"""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import small  # noqa: E402

options = small.options()
scene = small.scene(end=3)
cube = bpy.data.objects["Cube"]
modifier = cube.modifiers.new("particles", "PARTICLE_SYSTEM")
settings = modifier.particle_system.settings
settings.count = 10
settings.frame_start = 1
settings.frame_end = 2
# Disk caches need a saved file.
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
cache = modifier.particle_system.point_cache
cache.use_disk_cache = True
cache.use_external = True
cache.filepath = options["folder"]
cache.name = "escaped"
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
