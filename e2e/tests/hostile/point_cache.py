"""Saves a small Cycles scene whose particle system's point cache is on disk and unbaked, for the
hostile tests: external with the folder given (absolute, or relative as `//cache/`), or, with
`"folder": ""`, not external (Blender's own `blendcache_<file>/` beside the .blend). Blender writes
and clears `escaped_<frame>_00.bphys` files there from the moment it opens the file.

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
if options["folder"]:
    cache.use_external = True
    cache.filepath = options["folder"]
cache.name = "escaped"
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
