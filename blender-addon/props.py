"""The add-on's preferences and each scene's farm settings."""

import bpy
from bpy.props import BoolProperty, StringProperty


class RenderFarmPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    farm_path: StringProperty(
        name="farm binary",
        description="Path of the farm command; empty: `farm` on PATH",
        subtype="FILE_PATH",
        default="",
    )

    def draw(self, _context):
        self.layout.prop(self, "farm_path")
        self.layout.label(
            text="AWS credentials and region come from farm's own AWS configuration (~/.aws, AWS_*)"
        )


class RenderFarmSettings(bpy.types.PropertyGroup):
    stack: StringProperty(
        name="Stack",
        description=(
            "The farm's CloudFormation stack: farm reads its bucket from the stack's outputs "
            "(farm --stack). Used instead of the bucket when set"
        ),
        default="",
    )
    bucket: StringProperty(
        name="Bucket",
        description="The farm's bucket (the stack's BucketName output), when no stack is set",
        default="",
    )
    project_root: StringProperty(
        name="Project root",
        description=(
            "Folder the project's files are kept under; the .blend's key is its path from "
            "here. Empty: the .blend's own folder"
        ),
        subtype="DIR_PATH",
        default="",
    )
    use_scene_range: BoolProperty(
        name="Scene range",
        description="Render the scene's frame range and step (read from the saved .blend)",
        default=True,
    )
    frames: StringProperty(
        name="Frames",
        description="Frames to render: 1-24, 1-100:10, several separated by spaces",
        default="",
    )
    chunk: StringProperty(
        name="Chunk",
        description="Frames per task, or auto: as few tasks as keep the farm's task slots busy",
        default="auto",
    )
    blender: StringProperty(
        name="Blender series",
        description="Blender LTS series to render with (e.g. 4.5); empty: the farm's default",
        default="",
    )
    replace_running: BoolProperty(
        name="Replace running job",
        description=(
            "Submit even while this file's last job still runs: farm stops that job and starts "
            "the new one (farm submit --replace). Off: farm refuses, naming the running job"
        ),
        default=False,
    )
    job_key: StringProperty(
        name="Job",
        description="Key of this file's last submitted job",
        default="",
    )


classes = (RenderFarmPreferences, RenderFarmSettings)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.render_farm = bpy.props.PointerProperty(type=RenderFarmSettings)


def unregister():
    del bpy.types.Scene.render_farm
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
