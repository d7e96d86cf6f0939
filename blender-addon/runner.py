"""The add-on's background runs of `farm`: started by operators, polled by a Blender timer,
shown in the status bar, ended with a Blender report in farm's own words."""

import time

import bpy

from . import farm

# Seconds between two polls of the running processes.
TICK = 0.25
# While the panel was drawn in the last PANEL_OPEN seconds, the job's status is refreshed every
# WATCH_EVERY seconds.
WATCH_EVERY = 20.0
PANEL_OPEN = 30.0
# Messages kept for the panel.
MAX_MESSAGES = 8

# kind -> (farm.Run, on_done(run, exit_code))
runs = {}
# The last plan (farm submit --dry-run --json) and status (farm.Status), with what they were of.
results = {"plan": None, "plan_of": None, "status": None}
# (level, text), newest last.
messages = []
# When the panel was last drawn (time.monotonic()).
panel_seen = [0.0]


def preferences():
    addon = bpy.context.preferences.addons.get(__package__)
    return addon.preferences if addon else None


def farm_binary():
    prefs = preferences()
    return farm.find_farm(prefs.farm_path if prefs else "")


def start(kind, args, title, on_done):
    """Runs `farm ARGS` in the background; `on_done(run, code)` is called once it ended.
    Raises farm.FarmNotFound, or RuntimeError while a run of the same kind is going."""
    if kind in runs:
        raise RuntimeError(f"{runs[kind][0].title} is still running")
    run = farm.Run(farm_binary(), args, title)
    runs[kind] = (run, on_done)
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK)
    redraw()
    return run


def tick():
    """The timer: finishes the runs that ended. Returns None (stop) when none is left."""
    for kind, (run, on_done) in list(runs.items()):
        code = run.poll()
        if code is None:
            continue
        del runs[kind]
        try:
            on_done(run, code)
        except Exception as err:  # noqa: BLE001 - shown to the user, not lost in a timer
            report("ERROR", f"{run.title}: {err}")
    redraw()
    return TICK if runs else None


def stop(kind):
    if kind in runs:
        runs[kind][0].stop()


def report(level, text):
    """A Blender report (status bar and Info log), kept for the panel too."""
    messages.append((level, text))
    del messages[:-MAX_MESSAGES]
    try:
        bpy.ops.render_farm.report(level=level, message=text)
    except RuntimeError:
        # An ERROR report raises in whoever called the operator: here, after it was reported.
        pass


def failed(run, code):
    """Reports a failed run with farm's own words."""
    report("ERROR", f"{run.title} failed (exit code {code}): {run.error()}")


def watch():
    """The watch timer: refreshes the job's status while the panel is open."""
    scene = bpy.context.scene
    if scene is not None and time.monotonic() - panel_seen[0] < PANEL_OPEN:
        settings = scene.render_farm
        if settings.job_key and (settings.stack or settings.bucket) and "status" not in runs:
            try:
                start_status(settings)
            except (farm.FarmNotFound, RuntimeError):
                pass
    return WATCH_EVERY


def start_status(settings):
    """Runs `farm status --json` for the scene's job."""

    def done(run, code):
        if code != 0:
            failed(run, code)
            return
        results["status"] = farm.Status.parse(run.output())

    return start(
        "status",
        farm.job_args(
            "status", settings.job_key, farm.target_args(settings.stack, settings.bucket), "--json"
        ),
        "Render Farm: status",
        done,
    )


def draw_status(self, _context):
    """The status bar: each running `farm`, its time and progress."""
    for run, _ in runs.values():
        text = f"{run.title} {farm.format_seconds(run.elapsed())}"
        detail = run.detail()
        if detail:
            text += f": {detail[:80]}"
        self.layout.label(text=text, icon="RENDER_ANIMATION")


def redraw():
    window_manager = bpy.context.window_manager
    if window_manager is None:
        return
    for window in window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"PROPERTIES", "STATUSBAR"}:
                area.tag_redraw()


def register():
    bpy.types.STATUSBAR_HT_header.append(draw_status)
    bpy.app.timers.register(watch, first_interval=WATCH_EVERY, persistent=True)


def unregister():
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
    for timer in (watch, tick):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
    for kind in list(runs):
        stop(kind)
    runs.clear()
