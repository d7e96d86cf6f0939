"""Render Farm: submit and watch blender-farm jobs from Blender's Render properties.

The add-on drives the `farm` command (on PATH, or set in the preferences) in the background;
it holds no AWS credentials and makes no AWS call itself.
"""

import bpy

from . import ops, props, runner, ui

# For Blender before 4.2, which installs it as a legacy add-on (a folder or zip in
# scripts/addons); 4.2+ installs the extension and reads blender_manifest.toml instead.
bl_info = {
    "name": "Render Farm",
    "author": "blender-farm",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Properties > Render > Render Farm",
    "description": "Submit, watch and fetch blender-farm jobs from Blender",
    "category": "Render",
}

classes = ops.classes + ui.classes


def register():
    props.register()
    for cls in classes:
        bpy.utils.register_class(cls)
    runner.register()


def unregister():
    runner.unregister()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    props.unregister()
