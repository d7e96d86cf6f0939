"""Render Farm: submit and watch blender-farm jobs from Blender's Render properties.

The add-on drives the `farm` command (on PATH, or set in the preferences) in the background;
it holds no AWS credentials and makes no AWS call itself.
"""

import bpy

from . import ops, props, runner, ui

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
