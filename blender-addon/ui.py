"""The "Render Farm" panel in Render properties."""

import time

import bpy

from . import farm, ops, runner


def human_bytes(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class RENDER_PT_render_farm(bpy.types.Panel):
    bl_label = "Render Farm"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        runner.panel_seen[0] = time.monotonic()
        layout = self.layout
        layout.use_property_split = True
        settings = context.scene.render_farm
        layout.prop(settings, "stack")
        row = layout.row()
        row.enabled = not settings.stack.strip()
        row.prop(settings, "bucket")
        layout.prop(settings, "project_root")
        if bpy.data.filepath:
            try:
                layout.label(text=f"Key: {ops.job_key(settings)}")
            except ValueError as err:
                layout.label(text=str(err), icon="ERROR")
        else:
            layout.label(text="Save the .blend to submit it", icon="INFO")
        layout.prop(settings, "use_scene_range")
        row = layout.row()
        row.enabled = not settings.use_scene_range
        row.prop(settings, "frames")
        layout.prop(settings, "chunk")
        layout.prop(settings, "blender")
        layout.prop(settings, "replace_running")

        row = layout.row(align=True)
        row.operator("render_farm.plan", icon="VIEWZOOM")
        row.operator("render_farm.submit", icon="EXPORT")
        row.operator("render_farm.render_here", icon="RENDER_ANIMATION")
        self.draw_runs(layout)
        self.draw_plan(layout)
        self.draw_job(layout, settings)
        for level, text in runner.messages[-3:]:
            layout.label(text=text, icon="ERROR" if level == "ERROR" else "INFO")

    @staticmethod
    def draw_runs(layout):
        for kind, (run, _) in runner.runs.items():
            row = layout.row()
            detail = run.detail()
            row.label(text=f"{run.title} {farm.format_seconds(run.elapsed())} {detail[:60]}")
            row.operator("render_farm.stop", text="", icon="CANCEL").kind = kind

    @staticmethod
    def draw_plan(layout):
        plan = runner.results["plan"]
        if not plan:
            return
        box = layout.box()
        box.label(text=f"Plan for {runner.results['plan_of']}", icon="VIEWZOOM")
        up, held = plan["upload"], plan["in_bucket"]
        box.label(text=f"Upload {up['files']} file(s), {human_bytes(up['bytes'])}")
        box.label(
            text=f"Already in the bucket: {held['files']} file(s), {human_bytes(held['bytes'])}"
        )
        tasks = plan["tasks"] if plan["tasks"] is not None else "auto"
        box.label(text=f"Frames {plan['frames']} ({plan['frame_count']}), tasks: {tasks}")
        box.label(text="Tags: " + ", ".join(f"{t['key']}={t['value']}" for t in plan["tags"]))
        box.label(text=f"Blender: {plan['blender'] or 'the farm default'}")
        for line in plan["notes"]:
            box.label(text=line, icon="INFO")
        for line in plan["warnings"]:
            box.label(text=line, icon="ERROR")

    @staticmethod
    def draw_job(layout, settings):
        if not settings.job_key:
            return
        box = layout.box()
        box.label(text=f"Job {settings.job_key}", icon="RENDERLAYERS")
        status = runner.results["status"]
        if status is not None and status.key == settings.job_key:
            box.label(text=status.summary())
        else:
            box.label(text="Not read yet: Refresh")
        row = box.row(align=True)
        row.operator("render_farm.status", icon="FILE_REFRESH")
        row.operator("render_farm.cancel", icon="CANCEL")
        row.operator("render_farm.retry", icon="RECOVER_LAST")
        row = box.row(align=True)
        row.operator("render_farm.download", icon="IMPORT")
        row.operator("render_farm.contact_sheet", icon="IMAGE_DATA")


classes = (RENDER_PT_render_farm,)
