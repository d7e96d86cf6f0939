"""Draws the Render Farm panel in Blender's own UI and saves it as a PNG, for the README:

    blender-addon/screenshot.sh [OUT.png]      (runs this in Blender under a virtual X server)

Run by Blender with a saved .blend: enables the add-on as a legacy add-on (its bl_info; Blender
before 4.2 cannot install the extension), fills the scene's farm settings as an artist would,
shows Render properties in the window's largest area with the panel open (the other Render
panels unregistered, so it is the only one), saves that area with `screenshot_area` and crops
the empty rows below the panel. Output path: the argument after `--`.
"""

import sys

import addon_utils
import bpy

OUT = sys.argv[sys.argv.index("--") + 1]
# Seconds between the steps: Blender draws the window between two of them.
STEP = 1.0
# Rows above the area's bottom edge taken as its empty background, and kept below the panel.
EDGE, MARGIN = 20, 12


def largest_area():
    window = bpy.context.window_manager.windows[0]
    return window, max(window.screen.areas, key=lambda a: a.width * a.height)


def setup():
    addon_utils.enable("render_farm", default_set=True, handle_error=None)
    panel = bpy.types.RENDER_PT_render_farm
    # Open, as after the artist's first click (it is closed by default).
    bpy.utils.unregister_class(panel)
    panel.bl_options = set()
    bpy.utils.register_class(panel)
    others = [
        cls
        for cls in bpy.types.Panel.__subclasses__()
        if getattr(cls, "bl_context", "") == "render"
        and getattr(cls, "bl_space_type", "") == "PROPERTIES"
        and cls is not panel
        # The engine selector stays: the panel's context (and Cycles removes a draw function
        # from it when it is unregistered at exit).
        and cls.__name__ != "RENDER_PT_context"
    ]
    for cls in others:
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
    settings = bpy.context.scene.render_farm
    settings.stack = "my-farm"
    settings.project_root = "//.."
    settings.chunk = "auto"
    settings.blender = "4.5"
    settings.job_key = "shots/shot.blend"
    _, area = largest_area()
    area.type = "PROPERTIES"


def show_render():
    _, area = largest_area()
    area.spaces.active.context = "RENDER"


def shot():
    window, area = largest_area()
    region = next(r for r in area.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.screen.screenshot_area(filepath=OUT)
    crop(OUT)


def crop(path):
    """Drops the empty rows below the panel: those like a row near the bottom (above the area's
    edge), compared over the middle of the width (the editor's tab bar has icons further down)."""
    image = bpy.data.images.load(path)
    width, height = image.size
    pixels = [0.0] * (width * height * 4)
    image.pixels.foreach_get(pixels)
    row = width * 4

    def band(y):  # rows count from the bottom
        return pixels[y * row + 4 * (4 * width // 10) : y * row + 4 * (8 * width // 10)]

    background = band(EDGE)
    bottom = next(y for y in range(EDGE, height) if band(y) != background)
    keep = height - max(0, bottom - MARGIN)
    cropped = bpy.data.images.new("panel", width, keep)
    cropped.pixels.foreach_set(pixels[(height - keep) * row :])
    cropped.filepath_raw = path
    cropped.file_format = "PNG"
    cropped.save()
    print(f"screenshot: {path} ({width}x{keep})")


def quit_blender():
    bpy.ops.wm.quit_blender()


for step, function in enumerate((setup, show_render, shot, quit_blender)):
    bpy.app.timers.register(function, first_interval=STEP * (step + 1))
