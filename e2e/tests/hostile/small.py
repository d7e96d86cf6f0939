"""What every hostile test scene starts from: the options after `--` and Blender's default scene
made small (Cycles, 1 sample, no denoising, 16 x 12 pixels, frames 1 to `end`)."""

import glob
import json
import os
import sys

import bpy


def options():
    return json.loads(sys.argv[sys.argv.index("--") + 1])


def scene(end=1):
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.render.resolution_x = 16
    scene.render.resolution_y = 12
    scene.frame_start = 1
    scene.frame_end = end
    return scene


def osl_compiler():
    """Puts Cycles' `oslquery` (which compiling an OSL shader needs), which the bpy wheel ships
    off `sys.path`, on it."""
    sys.path += glob.glob(os.path.join(bpy.utils.resource_path("LOCAL"), "python", "lib",
                                       "python3*", "site-packages"))
