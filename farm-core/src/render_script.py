# The farm's only Python inside Blender. It runs in the Blender executable
# (`blender -b --factory-startup --disable-autoexec --python-expr <this> -- <json>`) or in a Python
# where `import bpy` works (`python -I -c <this> -- <json>`), opens the .blend with its scripts
# disabled, makes every known way a .blend runs code or writes files harmless (or refuses the
# file) and then renders each frame to an exact path, or reports the scene's settings.
#
# Lines it prints (the renderer reads them; see farm_core::blender):
#   FARM_REFUSED <reason>    the file asks for something the farm will not do; exit code 3
#   FARM_NOTE <text>         something was changed to keep the file harmless, or persistent data on
#   FARM_FRAME <n>           frame n starts; later lines belong to it
#   FARM_SCENE_INFO <json>   the scene's range and format (mode "info")
#
# Mode "movie" writes the movie a scene set to FFmpeg output asks for from frames already
# rendered (a second Blender step: the sequencer shows them, nothing is rendered again).
#
# Vectors and what happens to them (RELIABILITY.md, "Hostile .blend", has the tests):
# - registered text blocks (`use_module`) and the handlers they would add: need auto-execution,
#   which is off (`use_scripts=False`, `--disable-autoexec`); text blocks are also unregistered.
# - driver expressions: with auto-execution off Blender evaluates only simple expressions
#   (no Python) and ones its restricted check allows (no import, no attribute access); left to
#   it so images match Blender's own, and listed in the log.
# - Freestyle in Python scripting mode runs its style modules even with auto-execution off:
#   refused when Freestyle would run on that view layer; otherwise switched to the parameter
#   editor; every style module is detached from its text (ADR 0005).
# - OSL script nodes (OSL can write files with fprintf): a scene using OSL with script nodes is
#   refused; OSL without script nodes is switched to SVM (same image). With SVM no script node
#   runs.
# - custom cameras (Blender 4.5+): OSL bytecode in the .blend that Cycles runs even with SVM: any
#   camera of type CUSTOM is refused.
# - compositor File Output nodes: redirected into <outputs>/<node>/ with plain file names.
# - scene output path: set per frame to <out>/frame_<n>.
# - caches Blender writes while rendering (unbaked point caches on disk or external: particles,
#   cloth, soft body, dynamic paint, rigid body, smoke; Mantaflow replay or unbaked caches):
#   moved into <caches>/ or memory without touching their folders; baked caches are only read.
import ctypes
import json
import os
import re
import sys
import traceback

import bpy

CONFIG = json.loads(sys.argv[sys.argv.index("--") + 1])
REFUSED_EXIT = 3


def say(kind, text):
    print("FARM_" + kind + " " + text, flush=True)


def refuse(reason):
    say("REFUSED", reason)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(REFUSED_EXIT)


def flush_c_stdout():
    # The bpy module leaves C's stdout block-buffered on a pipe; Blender's own lines (`Saved:`)
    # must reach the renderer when they are printed.
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def safe_name(name):
    """A file or folder name with no path in it: letters, digits, `_ - . #` (frame number)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.#-]", "_", name or "").lstrip(".")
    return cleaned[:100] or "_"


def quoted(id_block):
    return json.dumps(id_block.name, ensure_ascii=False)


def all_ids():
    seen = set()
    for attr in dir(bpy.data):
        collection = getattr(bpy.data, attr, None)
        if not isinstance(collection, bpy.types.bpy_prop_collection):
            continue
        for item in collection:
            if isinstance(item, bpy.types.ID) and item.as_pointer() not in seen:
                seen.add(item.as_pointer())
                yield item
                # Node trees of materials, worlds, scenes, lights... are not in bpy.data.
                tree = getattr(item, "node_tree", None)
                if isinstance(tree, bpy.types.ID) and tree.as_pointer() not in seen:
                    seen.add(tree.as_pointer())
                    yield tree


def freestyle_would_run(scene, layer):
    return scene.render.use_freestyle and layer.use_freestyle


def neutralise_freestyle():
    for scene in bpy.data.scenes:
        for layer in scene.view_layers:
            settings = layer.freestyle_settings
            if settings.mode == "SCRIPT" and freestyle_would_run(scene, layer):
                refuse(
                    "Freestyle on view layer %s of scene %s is in Python Scripting mode, and the "
                    "farm runs no Python stored in a .blend: switch that view layer's Freestyle to "
                    "Parameter Editor (View Layer Properties > Freestyle) or turn Freestyle off, "
                    "and save the file" % (json.dumps(layer.name), quoted(scene))
                )
            try:
                if settings.mode == "SCRIPT":
                    settings.mode = "EDITOR"
                    say("NOTE", "Freestyle on view layer %s of scene %s (off) switched from "
                        "Python Scripting to Parameter Editor" % (json.dumps(layer.name), quoted(scene)))
                for module in settings.modules:
                    module.use = False
                    module.script = None
            except (AttributeError, TypeError, RuntimeError) as error:
                refuse("Freestyle style modules of view layer %s of scene %s cannot be disabled "
                       "(%s): make the scene local instead of linked"
                       % (json.dumps(layer.name), quoted(scene), json.dumps(str(error))))


def neutralise_texts():
    # Registered text blocks run on load only with auto-execution on, which it is not; they
    # are unregistered as well, so nothing later (a reload) could run them.
    for text in bpy.data.texts:
        if text.use_module and text.library is None:
            text.use_module = False


def report_python_drivers():
    # With auto-execution off Blender evaluates a driver expression only when it is a simple
    # expression (no Python at all) or passes Blender's restricted check (a whitelist of names
    # and operations: no import, no attribute access, no calls but math). Both give the image
    # Blender itself renders, so the expressions are left as they are, and listed.
    for block in all_ids():
        animation = getattr(block, "animation_data", None)
        for fcurve in getattr(animation, "drivers", []):
            driver = fcurve.driver
            if driver.type == "SCRIPTED" and not driver.is_simple_expression:
                say("NOTE", "driver on %s of %s is a Python expression: Blender evaluates it "
                    "only if its restricted check allows it (auto-execution is off)"
                    % (json.dumps(fcurve.data_path), quoted(block)))


def uses_osl(scene):
    cycles = getattr(scene, "cycles", None)
    return bool(cycles is not None and getattr(cycles, "shading_system", False))


def refuse_custom_cameras():
    # Blender 4.5+ custom cameras are OSL bytecode stored in the .blend (or an .osl/.oso file it
    # names), which Cycles runs for every camera ray whatever the shading system: no switch
    # keeps the image and stops the code, so the scene is refused.
    for camera in bpy.data.cameras:
        if getattr(camera, "type", None) == "CUSTOM":
            refuse(
                "camera %s is a custom camera: Open Shading Language code stored in the .blend, "
                "which Cycles runs even with SVM, and the farm runs no code stored in a .blend; set "
                "its Type (Camera Properties > Lens) to Perspective, Orthographic or Panoramic, "
                "and save the file" % quoted(camera)
            )


def neutralise_osl():
    refuse_custom_cameras()
    scripts = [
        (tree, node)
        for tree in all_ids()
        if isinstance(tree, bpy.types.NodeTree)
        for node in getattr(tree, "nodes", [])
        if node.bl_idname == "ShaderNodeScript"
    ]
    for scene in bpy.data.scenes:
        if not uses_osl(scene):
            continue
        if scripts:
            tree, node = scripts[0]
            refuse(
                "scene %s renders with Open Shading Language and node tree %s has an OSL script "
                "node %s: the farm runs no code stored in a .blend (OSL can write files); switch "
                "Cycles' Open Shading Language off or remove the script node"
                % (quoted(scene), quoted(tree), json.dumps(node.name))
            )
        scene.cycles.shading_system = False
        say("NOTE", "scene %s: Open Shading Language switched off (no script nodes: same image)"
            % quoted(scene))


def redirect_file_outputs(outputs):
    # A scene's compositor is its `node_tree` up to Blender 4.x and a node group
    # (`compositing_node_group`, also in bpy.data.node_groups) from 5.0.
    trees = [getattr(scene, "node_tree", None) for scene in bpy.data.scenes]
    trees += [tree for tree in bpy.data.node_groups if tree.bl_idname == "CompositorNodeTree"]
    trees = list({tree.as_pointer(): tree for tree in trees if tree is not None}.values())
    used = set()
    for tree in trees:
        for node in tree.nodes:
            if node.bl_idname != "CompositorNodeOutputFile":
                continue
            folder = safe_name(node.name)
            while folder in used:
                folder += "_"
            used.add(folder)
            target = os.path.join(outputs, folder)
            try:
                if hasattr(node, "base_path"):  # Blender 3.x and 4.x
                    node.base_path = target + os.sep
                    for slot in getattr(node, "file_slots", []):
                        slot.path = safe_name(slot.path)
                    for slot in getattr(node, "layer_slots", []):
                        slot.name = safe_name(slot.name)
                elif hasattr(node, "directory"):  # Blender 5.x
                    node.directory = target + os.sep
                    if hasattr(node, "file_name"):
                        node.file_name = safe_name(node.file_name)
                    for item in getattr(node, "file_output_items", []):
                        item.name = safe_name(item.name)
                else:
                    raise AttributeError("unknown File Output node")
            except (AttributeError, TypeError, RuntimeError) as error:
                refuse("File Output node %s of %s cannot be redirected into the job's folder (%s)"
                       % (json.dumps(node.name), quoted(tree), json.dumps(str(error))))
            say("NOTE", "File Output node %s of %s writes into %s" % (json.dumps(node.name), quoted(tree), target))


def point_caches():
    """Every point cache of the file: particles, cloth, soft body, dynamic paint surfaces, smoke
    before Mantaflow, rigid body worlds; each owner's whole list (`point_caches`), not only its
    active cache."""
    owners = []
    for obj in bpy.data.objects:
        for modifier in obj.modifiers:
            owners.append(getattr(modifier, "point_cache", None))
            owners.append(getattr(getattr(modifier, "domain_settings", None), "point_cache", None))
            canvas = getattr(modifier, "canvas_settings", None)
            owners += [s.point_cache for s in getattr(canvas, "canvas_surfaces", [])]
        owners += [s.point_cache for s in getattr(obj, "particle_systems", [])]
    owners += [s.rigidbody_world.point_cache for s in bpy.data.scenes if s.rigidbody_world]
    seen = set()
    for owner in owners:
        for cache in getattr(owner, "point_caches", [owner] if owner is not None else []):
            if cache.as_pointer() not in seen:
                seen.add(cache.as_pointer())
                yield cache


def redirect_point_cache(cache, folder):
    # An unbaked cache on disk (or external) is written and cleared as frames are set: Blender
    # deletes the files of later frames in its folder (the external path, or `blendcache_<file>`
    # beside the .blend). Each step below touches only files in `folder`: the cache becomes
    # external (reading its stored folder's listing, nothing written), then points into `folder`,
    # then moves to memory (its disk files, now in `folder`, are cleared), then stops being
    # external. Switching the disk cache off first would clear the original folder.
    if not cache.use_external:
        cache.use_external = True
    cache.filepath = folder
    if cache.use_disk_cache:
        cache.use_disk_cache = False
    cache.use_external = False


def redirect_caches(caches):
    for index, cache in enumerate(point_caches()):
        if cache.is_baked or not (cache.use_disk_cache or cache.use_external):
            # Memory caches write nothing; a baked cache is only read (its folder was checked
            # before the render: farm_blend reports it).
            continue
        folder = os.path.join(caches, "point_%d" % index)
        try:
            redirect_point_cache(cache, folder)
        except (AttributeError, TypeError, RuntimeError) as error:
            refuse("point cache %s cannot be kept in memory (%s)"
                   % (json.dumps(cache.name), json.dumps(str(error))))
        say("NOTE", "unbaked point cache %s kept in memory (it would write beside the .blend or "
            "in its external folder)" % json.dumps(cache.name))
    for obj in bpy.data.objects:
        for modifier in obj.modifiers:
            domain = getattr(modifier, "domain_settings", None)
            if modifier.type != "FLUID" or domain is None or domain.cache_directory == "":
                continue
            # Replay caches are written (and freed) while rendering, as are caches with nothing
            # baked; a baked Modular or All cache is only read (farm_blend reports its folder).
            if domain.cache_type != "REPLAY" and getattr(domain, "has_cache_baked_any", False):
                continue
            try:
                domain.cache_directory = os.path.join(caches, "fluid_" + safe_name(obj.name))
            except (AttributeError, TypeError, RuntimeError):
                refuse("the fluid cache of object %s cannot be redirected into the job's folder"
                       % quoted(obj))


def open_blend():
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False
    bpy.ops.wm.open_mainfile(filepath=CONFIG["blend"], load_ui=False, use_scripts=False)
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False


def set_format(image_settings, name):
    # Blender 5 lists the formats of one media type at a time: multilayer EXR is the only format
    # of MULTI_LAYER_IMAGE, the others are IMAGE's.
    if hasattr(image_settings, "media_type"):
        multilayer = name == "OPEN_EXR_MULTILAYER"
        image_settings.media_type = "MULTI_LAYER_IMAGE" if multilayer else "IMAGE"
    image_settings.file_format = name


def info():
    scene = bpy.context.scene
    say("SCENE_INFO", json.dumps(dict(
        start=scene.frame_start, end=scene.frame_end, step=scene.frame_step,
        format=scene.render.image_settings.file_format, engine=scene.render.engine,
        scene=scene.name)))


def set_engine(settings, ids):
    # The engine is the farm's choice (farm_core::engine); `ids` are Blender's names for it, by
    # series (EEVEE is BLENDER_EEVEE_NEXT on 4.2 to 4.5): the first one this Blender has is set.
    for engine in ids:
        try:
            settings.engine = engine
            return
        except TypeError:
            continue
    refuse("this Blender has none of the render engines %s" % json.dumps(ids))


def check_denoiser(scene):
    # A Blender built without OpenImageDenoise (Debian's 3.4) fails at the first frame of a scene
    # that denoises; refused before anything renders, saying what to do.
    if scene.render.engine != "CYCLES":
        return
    import _cycles
    if getattr(_cycles, "with_openimagedenoise", True):
        return
    layers = [layer for layer in scene.view_layers if layer.use
              and getattr(getattr(layer, "cycles", None), "use_denoising", True)]
    if scene.cycles.use_denoising and layers:
        refuse("scene %s denoises with OpenImageDenoise and this Blender %s was built without "
               "it: render with an official Blender build (farm render installs and uses one "
               "unless --blender, --blender-python or BLENDER names another), or switch "
               "denoising off in the scene's render settings"
               % (quoted(scene), bpy.app.version_string))


def render():
    neutralise_freestyle()
    neutralise_texts()
    report_python_drivers()
    neutralise_osl()
    redirect_file_outputs(CONFIG["outputs"])
    redirect_caches(CONFIG["caches"])
    scene = bpy.context.scene
    settings = scene.render
    set_engine(settings, CONFIG["engine"])
    check_denoiser(scene)
    settings.threads_mode = "FIXED"
    settings.threads = max(1, int(CONFIG["threads"]))
    settings.use_file_extension = True
    settings.use_placeholder = False
    settings.use_overwrite = True
    if CONFIG.get("format"):
        set_format(settings.image_settings, CONFIG["format"])
    if CONFIG.get("resolution_percent"):
        # The estimate's profile pass (ADR 0016): fewer pixels, every animated setting as it is.
        percent = settings.resolution_percentage * int(CONFIG["resolution_percent"]) // 100
        settings.resolution_percentage = max(1, percent)
    # A chunk of several frames keeps Cycles' scene between them and syncs only what changed
    # (ADR 0015); the Rust side decides (farm_core::blender::RenderCommand::persistent_data).
    settings.use_persistent_data = bool(CONFIG.get("persistent"))
    if settings.use_persistent_data:
        say("NOTE", "Cycles persistent data on for the chunk's %d frames" % len(CONFIG["frames"]))
    for frame in CONFIG["frames"]:
        say("FRAME", str(frame))
        scene.frame_set(frame)
        settings.filepath = os.path.join(CONFIG["out"], "frame_" + str(frame))
        bpy.ops.render.render(write_still=True)
        flush_c_stdout()


def movie():
    # The movie the scene asks for, from the frames already rendered (never a second render):
    # the sequencer shows them as one image strip, with the scene's own sound strips, and Blender
    # writes them with the scene's FFmpeg settings (container, codecs, quality, fps, size).
    # Every other strip goes: its picture is in the frames already.
    scene = bpy.context.scene
    settings = scene.render
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    for strip in list(strips):
        if strip.type != "SOUND":
            strips.remove(strip)
    first, frames = CONFIG["first"], CONFIG["frames"]
    folder = os.path.dirname(frames[0])
    image = strips.new_image("farm frames", frames[0], 1 + max((s.channel for s in strips), default=0), first)
    for path in frames[1:]:
        image.elements.append(os.path.basename(path))
    image.directory = folder + os.sep
    scene.frame_start = first
    scene.frame_end = first + len(frames) - 1
    scene.frame_step = 1
    settings.use_sequencer = True
    settings.use_compositing = False
    # The frames carry the scene's view transform already; the sequencer would apply it again.
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    settings.threads_mode = "FIXED"
    settings.threads = max(1, int(CONFIG["threads"]))
    settings.filepath = os.path.join(CONFIG["out"], "movie")
    settings.use_file_extension = True
    bpy.ops.render.render(animation=True)
    flush_c_stdout()


def main():
    open_blend()
    if CONFIG["mode"] == "info":
        info()
    elif CONFIG["mode"] == "movie":
        movie()
    else:
        render()


try:
    main()
except Exception as error:
    # Left to Blender, a failure prints the traceback and then this whole script ("script
    # failed, expr: '...'"), where a line of the script could pass for Blender's error. The
    # traceback and Blender's own message (an operator's RuntimeError reads "Error: <what>")
    # go out here instead, and Blender leaves with exit code 1 as it would.
    traceback.print_exc()
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0] if lines else type(error).__name__
    print("Error: %s" % re.sub(r"^(Error: )+", "", message))
    flush_c_stdout()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)
flush_c_stdout()
sys.stdout.flush()
sys.stderr.flush()
# Nothing is left to do: leave without Blender's teardown, which can crash the bpy module
# (seen on 4.2.23 with a scene holding drivers) and would turn a finished chunk into a failure.
os._exit(0)
