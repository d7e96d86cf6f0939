"""Saves a small Cycles scene rendering with Open Shading Language whose cube's material holds an
OSL script node (internal text, its compiled bytecode stored in the .blend where the Blender has
OSL) that prints `osl script ran` for every shading point, for the hostile tests.

    python -I osl_script.py -- '{"output": "..."}'
"""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import small  # noqa: E402

small.osl_compiler()
options = small.options()
scene = small.scene()
scene.cycles.shading_system = True
text = bpy.data.texts.new("farm.osl")
text.write(
    "shader farm_script(output color out = color(0, 0, 0))\n"
    "{\n"
    "    printf(\"osl script ran\\n\");\n"
    "    out = color(P[0], P[1], 1);\n"
    "}\n"
)
material = bpy.data.materials.new("OSL")
material.use_nodes = True
tree = material.node_tree
script = tree.nodes.new("ShaderNodeScript")
script.mode = "INTERNAL"
script.script = text
# Debian's Blender is built without OSL: the node is saved uncompiled, and no Blender of that
# build can run it.
if not script.bytecode and bpy.app.build_options.cycles_osl:
    sys.exit("the script node's shader did not compile")
emission = tree.nodes.new("ShaderNodeEmission")
if script.outputs:
    tree.links.new(script.outputs["out"], emission.inputs["Color"])
tree.links.new(emission.outputs["Emission"], tree.nodes["Material Output"].inputs["Surface"])
bpy.data.objects["Cube"].data.materials.clear()
bpy.data.objects["Cube"].data.materials.append(material)
bpy.ops.wm.save_as_mainfile(filepath=options["output"], relative_remap=False)
__import__("os")._exit(0)
