"""The add-on's operators: plan, submit, watch (status, cancel, retry, download, contact
sheet) and render here. Each starts `farm` in the background (runner) and returns at once."""

import json
import os
import sys

import bpy
from bpy.props import EnumProperty, StringProperty

from . import farm, runner


def frames_of(settings):
    return None if settings.use_scene_range else settings.frames


def job_key(settings):
    """The key of the saved .blend under the project root."""
    root = bpy.path.abspath(settings.project_root) if settings.project_root else ""
    return farm.key_for(bpy.data.filepath, root)


def has_target(settings):
    """Whether a stack or a bucket is set (farm.target_args says which is used)."""
    return bool(settings.stack.strip() or settings.bucket.strip())


def output_folder(scene):
    return farm.output_folder(bpy.path.abspath(scene.render.filepath))


class FarmOperator:
    """Shared: the checks before starting farm, and errors as reports."""

    needs_job = False

    @classmethod
    def poll(cls, context):
        settings = context.scene.render_farm
        if cls.needs_job:
            return bool(settings.job_key and has_target(settings))
        return True

    def launch(self, kind, args, title, on_done):
        try:
            runner.start(kind, args, title, on_done)
        except (farm.FarmNotFound, RuntimeError, OSError) as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{title}: started")
        return {"FINISHED"}


class SavedFileOperator(FarmOperator):
    """An operator on the saved .blend: saves it first (farm reads the file on disk), asking
    first when Blender knows of unsaved changes."""

    def invoke(self, context, event):
        if bpy.data.is_dirty and bpy.data.filepath:
            return context.window_manager.invoke_confirm(self, event)
        return self.execute(context)

    def saved(self):
        """Saves the file; False (reported) when it was never saved. Saves even when Blender
        does not flag it dirty: a change made through Python (a script, another add-on) is not
        flagged, and farm must read what the artist sees."""
        if not bpy.data.filepath:
            self.report(
                {"ERROR"}, "Save the .blend first (File > Save As): farm reads the saved file"
            )
            return False
        bpy.ops.wm.save_mainfile()
        return True

    def submit_args(self, context, dry_run):
        """Saves the file and returns the key and `farm submit`'s arguments; None (reported)
        when the file or the settings are not ready."""
        if not self.saved():
            return None
        settings = context.scene.render_farm
        try:
            target = farm.target_args(settings.stack, settings.bucket)
            key = job_key(settings)
        except ValueError as err:
            self.report({"ERROR"}, str(err))
            return None
        args = farm.submit_args(
            bpy.data.filepath,
            target,
            key,
            frames=frames_of(settings),
            chunk=settings.chunk,
            blender=settings.blender,
            dry_run=dry_run,
            project=bpy.path.abspath(settings.project_root) if settings.project_root else "",
            replace=settings.replace_running,
        )
        return key, args


class RENDER_FARM_OT_plan(SavedFileOperator, bpy.types.Operator):
    """Show what a submit would upload and render (farm submit --dry-run): uploads nothing"""

    bl_idname = "render_farm.plan"
    bl_label = "Plan"

    def execute(self, context):
        command = self.submit_args(context, dry_run=True)
        if command is None:
            return {"CANCELLED"}
        key, args = command

        def done(run, code):
            if code != 0:
                runner.results["plan"] = None
                runner.failed(run, code)
                return
            runner.results["plan"] = json.loads(run.output())
            runner.results["plan_of"] = key
            plan = runner.results["plan"]
            files, frames = plan["upload"]["files"], plan["frame_count"]
            runner.report("INFO", f"Plan: {files} file(s) to upload, {frames} frame(s)")

        return self.launch("plan", args, "Render Farm: plan", done)


class RENDER_FARM_OT_submit(SavedFileOperator, bpy.types.Operator):
    """Save the file and submit it to the farm (farm submit), in the background"""

    bl_idname = "render_farm.submit"
    bl_label = "Submit"

    def execute(self, context):
        command = self.submit_args(context, dry_run=False)
        if command is None:
            return {"CANCELLED"}
        key, args = command
        scene_name = context.scene.name

        def done(run, code):
            if code != 0:
                runner.failed(run, code)
                return
            scene = bpy.data.scenes.get(scene_name)
            if scene is not None:
                scene.render_farm.job_key = key
                runner.results["status"] = None
            started = [line for line in run.output().splitlines() if "starts the job" in line]
            runner.report("INFO", f"Submitted {key}: {started[-1] if started else run.last_line()}")

        return self.launch("submit", args, "Render Farm: submit", done)


class RENDER_FARM_OT_render_here(SavedFileOperator, bpy.types.Operator):
    """Render this file on this machine with the farm's pipeline (farm render), in the background"""

    bl_idname = "render_farm.render_here"
    bl_label = "Render Here"

    def execute(self, context):
        if not self.saved():
            return {"CANCELLED"}
        settings = context.scene.render_farm
        blend = bpy.data.filepath
        out = farm.default_render_out(blend)

        def done(run, code):
            if code != 0:
                runner.failed(run, code)
                return
            runner.report("INFO", f"Rendered here into {out}: {run.last_line()}")

        # This Blender renders, the one that saved the file: its executable, or in the `bpy`
        # module (no executable) the Python running it.
        args = farm.render_args(
            blend,
            frames_of(settings),
            bpy.app.binary_path,
            "" if bpy.app.binary_path else sys.executable,
        )
        return self.launch("render", args, "Render Farm: render here", done)


class RENDER_FARM_OT_status(FarmOperator, bpy.types.Operator):
    """Refresh this file's job (farm status --json)"""

    bl_idname = "render_farm.status"
    bl_label = "Refresh"
    needs_job = True

    def execute(self, context):
        try:
            runner.start_status(context.scene.render_farm)
        except (farm.FarmNotFound, RuntimeError, OSError) as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        return {"FINISHED"}


class JobCommand(FarmOperator):
    """A farm command on this file's job (`farm VERB KEY --stack S|--bucket B ...`), reported
    when done."""

    needs_job = True
    verb = ""
    done_text = ""

    def extra_args(self, _context):
        return ()

    def execute(self, context):
        s = context.scene.render_farm
        target = farm.target_args(s.stack, s.bucket)
        args = farm.job_args(self.verb, s.job_key, target, *self.extra_args(context))
        # The operator is gone when farm ends: keep what the report needs.
        done_text = self.done_text

        def done(run, code):
            if code != 0:
                runner.failed(run, code)
                return
            said = "; ".join(line.strip() for line in run.output().splitlines() if line.strip())
            runner.report("INFO", f"{done_text}: {said or run.last_line()}")

        return self.launch(self.verb, args, f"Render Farm: {self.verb}", done)


class RENDER_FARM_OT_cancel(JobCommand, bpy.types.Operator):
    """Stop this file's job on the farm (farm cancel)"""

    bl_idname = "render_farm.cancel"
    bl_label = "Cancel Job"
    verb, done_text = "cancel", "Cancelled"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)


class RENDER_FARM_OT_retry(JobCommand, bpy.types.Operator):
    """Render again the frames of this file's job that are missing (farm retry)"""

    bl_idname = "render_farm.retry"
    bl_label = "Retry Missing"
    verb, done_text = "retry", "Retry"


class RENDER_FARM_OT_download(JobCommand, bpy.types.Operator):
    """Download the job's frames (unpacked) and its movie to the output folder (farm download)"""

    bl_idname = "render_farm.download"
    bl_label = "Download Frames"
    verb, done_text = "download", "Downloaded"

    def extra_args(self, context):
        return ("--out", output_folder(context.scene), "--unpack")


class RENDER_FARM_OT_contact_sheet(FarmOperator, bpy.types.Operator):
    """Fetch the job's contact sheet (farm report --preview) and show it in an Image Editor"""

    bl_idname = "render_farm.contact_sheet"
    bl_label = "Contact Sheet"
    needs_job = True

    def execute(self, context):
        s = context.scene.render_farm
        path = os.path.join(output_folder(context.scene), "preview.jpg")
        target = farm.target_args(s.stack, s.bucket)
        args = farm.job_args("report", s.job_key, target, "--preview", path)

        def done(run, code):
            if code != 0:
                runner.failed(run, code)
                return
            image = bpy.data.images.load(path, check_existing=True)
            image.reload()
            show_image(image)
            runner.report("INFO", f"Contact sheet: {path}")

        return self.launch("preview", args, "Render Farm: contact sheet", done)


def show_image(image):
    """Shows `image` in an Image Editor: an open one, else Blender's render view."""
    window_manager = bpy.context.window_manager
    if window_manager is None or not window_manager.windows:
        return
    editors = [
        area.spaces.active
        for window in window_manager.windows
        for area in window.screen.areas
        if area.type == "IMAGE_EDITOR"
    ]
    if not editors:
        bpy.ops.render.view_show("INVOKE_DEFAULT")
        editors = [
            area.spaces.active
            for window in window_manager.windows
            for area in window.screen.areas
            if area.type == "IMAGE_EDITOR"
        ]
    for space in editors[:1]:
        space.image = image


class RENDER_FARM_OT_stop(bpy.types.Operator):
    """Stop a farm command the add-on started (its uploads are aborted, whole frames kept)"""

    bl_idname = "render_farm.stop"
    bl_label = "Stop"

    kind: StringProperty()

    def execute(self, _context):
        runner.stop(self.kind)
        return {"FINISHED"}


class RENDER_FARM_OT_report(bpy.types.Operator):
    """Shows a message of a farm run as a Blender report"""

    bl_idname = "render_farm.report"
    bl_label = "Render Farm Report"
    bl_options = {"INTERNAL"}

    level: EnumProperty(items=[(x, x, "") for x in ("INFO", "WARNING", "ERROR")])
    message: StringProperty()

    def execute(self, _context):
        self.report({self.level}, self.message)
        return {"FINISHED"}


classes = (
    RENDER_FARM_OT_plan,
    RENDER_FARM_OT_submit,
    RENDER_FARM_OT_render_here,
    RENDER_FARM_OT_status,
    RENDER_FARM_OT_cancel,
    RENDER_FARM_OT_retry,
    RENDER_FARM_OT_download,
    RENDER_FARM_OT_contact_sheet,
    RENDER_FARM_OT_stop,
    RENDER_FARM_OT_report,
)
