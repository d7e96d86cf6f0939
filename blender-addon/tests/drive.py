"""Drives the Render Farm extension inside the official `bpy` module, for
farm-cli/tests/addon.rs (run by cargo test):

    python drive.py PHASE CONFIG_JSON      (BLENDER_USER_RESOURCES set to a temporary folder)

Phases:
- install: installs the extension zip (as Blender's "Install from Disk" does), checks its
  operators, panel and scene settings register, that disabling it unregisters every one of
  them and its timers and status bar entry, and that enabling it again works.
- submit: opens the project's .blend, changes its frame range without saving and runs the Plan
  operator (farm submit --dry-run, on the scene's range): the plan has the changed range, so
  the file was saved first; changes it again and runs the Submit operator (farm submit; the
  test reads the saved file after); again with "Replace running job" on (farm submit
  --replace); then Submit again with a texture missing: farm's refusal
  comes back as an error report naming the file; then Render Here (farm render); then Submit
  on a file never saved: refused with an error report, nothing run.
- watch: on the submitted job, the Refresh operator (farm status --json), Cancel (farm cancel)
  and Retry (farm retry).
- fetch: Download (farm download --unpack into the scene's output folder) and Contact Sheet
  (farm report --preview, loaded as a Blender image).

Operators start `farm` in the background and return; a Blender timer finishes the runs. The
module has no event loop, so this script calls the timer's function itself until every run
ended. Each phase prints one JSON line, `RESULT {...}`, for the Rust test.
"""

import json
import os
import sys
import time

import bpy

MODULE = "bl_ext.user_default.render_farm"
OPERATORS = (
    "plan",
    "submit",
    "render_here",
    "status",
    "cancel",
    "retry",
    "download",
    "contact_sheet",
    "stop",
    "report",
)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def registered():
    """What the extension registers, as Blender sees it."""
    return {
        "panel": hasattr(bpy.types, "RENDER_PT_render_farm"),
        "operators": [op for op in OPERATORS if hasattr(bpy.types, f"RENDER_FARM_OT_{op}")],
        "settings": hasattr(bpy.types.Scene, "render_farm"),
        "enabled": MODULE in bpy.context.preferences.addons,
    }


def runner():
    return sys.modules[f"{MODULE}.runner"]


def finish_runs(timeout=120):
    """Calls the add-on's timer until no farm run is left; returns what the status bar showed
    of each run on the way (`run.detail()`, when it changed)."""
    deadline = time.monotonic() + timeout
    shown = []
    while True:
        for run, _ in runner().runs.values():
            if not shown or shown[-1] != run.detail():
                shown.append(run.detail())
        if runner().tick() is None:
            return shown
        check(time.monotonic() < deadline, "farm did not finish in time")
        time.sleep(0.1)


def enable():
    bpy.ops.preferences.addon_enable(module=MODULE)


def install(config):
    result = bpy.ops.extensions.package_install_files(
        filepath=config["zip"], repo="user_default", enable_on_install=True
    )
    check(result == {"FINISHED"}, f"install: {result}")
    on = registered()
    check(
        on == {"panel": True, "operators": list(OPERATORS), "settings": True, "enabled": True}, on
    )
    status_bar = bpy.types.STATUSBAR_HT_header
    module = runner()
    check(module.draw_status in status_bar._dyn_ui_initialize(), "in the status bar")
    check(bpy.app.timers.is_registered(module.watch), "the watch timer is registered")
    bpy.ops.preferences.addon_disable(module=MODULE)
    off = registered()
    check(off == {"panel": False, "operators": [], "settings": False, "enabled": False}, off)
    check(not bpy.app.timers.is_registered(module.watch), "the watch timer is gone")
    # The status bar's draw functions (bpy's own list behind append/remove).
    check(module.draw_status not in status_bar._dyn_ui_initialize(), "the status bar entry is gone")
    enable()
    check(registered() == on, "enabled again")
    return {"version": bpy.app.version_string, "registered": on, "unregistered": off}


def open_project(config):
    enable()
    bpy.ops.wm.open_mainfile(filepath=config["blend"])
    settings = bpy.context.scene.render_farm
    settings.stack = config.get("stack", "")
    settings.bucket = config.get("bucket", "")
    settings.project_root = config["root"]
    settings.use_scene_range = False
    settings.frames = "1-2"
    settings.chunk = "auto"
    return settings


def last_message():
    messages = runner().messages
    check(messages, "a report was made")
    return messages[-1]


def run_operator(operator):
    """Runs an operator as a script does (no confirmation dialog), then its farm run; returns
    the operator's result and the report it ended with."""
    result = operator()
    check(result == {"FINISHED"}, f"{operator}: {result}")
    finish_runs()
    return last_message()


def submit(config):
    settings = open_project(config)
    scene = bpy.context.scene
    # Unsaved changes: Plan saves them before farm reads the file (the scene's range, 2-7).
    settings.use_scene_range = True
    scene.frame_start, scene.frame_end = 2, 7
    run_operator(bpy.ops.render_farm.plan)
    plan = runner().results["plan"]
    check(plan is not None, f"a plan: {runner().messages}")
    # Submit saves too (frame_end 9, read by the test from the saved file), and submits 1-2.
    settings.use_scene_range = False
    scene.frame_end = 9
    submitted = run_operator(bpy.ops.render_farm.submit)
    check(submitted[0] == "INFO", submitted)
    key = settings.job_key
    # Replace running job: Submit passes --replace (farm stops the key's running job, if any,
    # instead of refusing); the same request goes again.
    settings.replace_running = True
    check(bpy.ops.render_farm.submit() == {"FINISHED"}, "submit started")
    replace_argv = runner().runs["submit"][0].argv
    finish_runs()
    replaced = last_message()
    check(replaced[0] == "INFO", replaced)
    settings.replace_running = False

    # A refusal: a texture the shot uses is missing.
    texture = os.path.join(os.path.dirname(config["blend"]), "tex", "red.png")
    os.rename(texture, texture + ".away")
    try:
        refusal = run_operator(bpy.ops.render_farm.submit)
    finally:
        os.rename(texture + ".away", texture)
    check(refusal[0] == "ERROR", refusal)
    # The message is a Blender report: an ERROR report raises in its caller.
    try:
        bpy.ops.render_farm.report(level="ERROR", message=refusal[1])
        raised = ""
    except RuntimeError as err:
        raised = str(err)
    # Render here: farm render of frames 1-2, its progress read from farm's progress lines.
    check(bpy.ops.render_farm.render_here() == {"FINISHED"}, "render started")
    shown = finish_runs()
    rendered = last_message()
    check(rendered[0] == "INFO", rendered)
    out = os.path.splitext(config["blend"])[0] + ".farm"

    # A file never saved: Submit refuses (an ERROR report raises here) and starts nothing.
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render_farm.bucket = "any"
    try:
        bpy.ops.render_farm.submit()
        unsaved = ""
    except RuntimeError as err:
        unsaved = str(err)
    check(not runner().runs, "nothing runs for an unsaved file")
    return {
        "rendered": rendered[1],
        "render_progress": shown,
        "frames_here": sorted(os.listdir(os.path.join(out, "frames"))),
        "plan": plan,
        "key": key,
        "submitted": submitted[1],
        "replace_argv": replace_argv,
        "refusal": refusal[1],
        "report_raised": raised,
        "unsaved": unsaved,
    }


def refresh():
    check(bpy.ops.render_farm.status() == {"FINISHED"}, "status started")
    finish_runs()
    parsed = runner().results["status"]
    check(parsed is not None, f"a status: {runner().messages}")
    return {
        "key": parsed.key,
        "state": parsed.state,
        "job_state": parsed.job_state,
        "done": parsed.done,
        "total": parsed.total,
        "summary": parsed.summary(),
    }


def watch(config):
    settings = open_project(config)
    settings.job_key = config["key"]
    status = refresh()
    cancelled = run_operator(bpy.ops.render_farm.cancel)
    retried = run_operator(bpy.ops.render_farm.retry)
    return {"status": status, "cancelled": cancelled, "retried": retried}


def fetch(config):
    settings = open_project(config)
    settings.job_key = config["key"]
    bpy.context.scene.render.filepath = config["out"] + "/shot_####"
    downloaded = run_operator(bpy.ops.render_farm.download)
    sheet = run_operator(bpy.ops.render_farm.contact_sheet)
    images = [
        {"path": bpy.path.abspath(image.filepath), "size": list(image.size)}
        for image in bpy.data.images
        if image.filepath.endswith("preview.jpg")
    ]
    return {"downloaded": downloaded, "sheet": sheet, "images": images, "status": refresh()}


def main():
    phase, config = sys.argv[-2], json.loads(sys.argv[-1])
    phases = {"install": install, "submit": submit, "watch": watch, "fetch": fetch}
    result = phases[phase](config)
    print("RESULT " + json.dumps(result), flush=True)


main()
