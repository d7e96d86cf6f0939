"""Saves a small Cycles scene (shading system SVM, no script node) whose camera is a Blender 4.5+
custom camera: OSL bytecode stored in the .blend that prints `custom camera ran` for every camera
ray it makes, for the hostile tests.

    python -I custom_camera.py -- '{"output": "..."}'
"""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import small  # noqa: E402

small.osl_compiler()
options = small.options()
scene = small.scene()
scene.cycles.shading_system = False
text = bpy.data.texts.new("camera.osl")
text.write(
    "shader farm_camera(output point position = point(0, 0, 0),\n"
    "                   output vector direction = vector(0, 0, -1),\n"
    "                   output color throughput = color(1, 1, 1))\n"
    "{\n"
    "    printf(\"custom camera ran\\n\");\n"
    "}\n"
)
camera = scene.camera.data
camera.type = "CUSTOM"
camera.custom_mode = "INTERNAL"
camera.custom_shader = text
if not camera.custom_bytecode:
    sys.exit("the custom camera's shader did not compile")
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
__import__("os")._exit(0)
