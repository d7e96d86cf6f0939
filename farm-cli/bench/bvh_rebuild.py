"""What repeats per frame with persistent data (issue 27, ADR 0015): renders frames 1..N of a
scene in one Blender with Cycles' persistent data, as the farm's chunk does, and prints each
frame's seconds; `still` first removes the animation of the object named by `--still NAME`.

    blender -b heavy.blend --python farm-cli/bench/bvh_rebuild.py -- OUT N [NAME]

Made for farm-testkit/scenes/geometry_scene.py's `static` scenes (NAME `Cube`: the moving cube).
"""

import os
import sys
import time

import bpy

args = sys.argv[sys.argv.index("--") + 1:]
out, frames = args[0], int(args[1])
still = args[2] if len(args) > 2 else None
scene = bpy.context.scene
settings = scene.render
settings.threads_mode = "FIXED"
settings.threads = 2
settings.use_persistent_data = True
if still:
    bpy.data.objects[still].animation_data_clear()
for frame in range(1, frames + 1):
    started = time.time()
    scene.frame_set(frame)
    settings.filepath = os.path.join(out, "frame_" + str(frame))
    bpy.ops.render.render(write_still=True)
    print("BVH-BENCH frame %d %.2f s" % (frame, time.time() - started), flush=True)
