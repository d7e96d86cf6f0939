"""Builds the reader's test files with Blender itself, then reopens them and prints what Blender
sees, as JSON between markers, for the Rust test to compare with the reader.

Runs in Debian's `blender -b --python make_fixture.py -- '<json>'` and in a `bpy` module's
Python (`python make_fixture.py '<json>'`). The JSON: {"dir": folder, "compress": bool}.

Writes <dir>/lib/lib.blend (a library) and <dir>/shot.blend:
- scenes `Alpha` (first in the file, not active), `Shot` (active), `Eevee`, `Bench`: stepped
  ranges, odd resolutions and percentages, fractional fps, each engine, several formats;
- images: relative, absolute, missing, packed, a `<UDIM>` set, a sequence; a movie clip from an
  image sequence; a sound (WAV); a volume (VDB path); a font; an object linked from lib.blend;
- `Shot`: timeline markers bound to cameras, three view layers (one not rendered); `Eevee`: no
  camera, a sequencer image strip; `Alpha`: a strip with the sequencer off; `Bench`: compositing
  nodes.
"""

import json
import os
import struct
import sys
import wave

import bpy


def args():
    argv = sys.argv
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    else:
        argv = argv[1:]
    return json.loads(argv[0])


def set_engine(scene, names):
    for name in names:
        try:
            scene.render.engine = name
            return
        except TypeError:
            continue
    raise RuntimeError("none of the engines %r exists" % (names,))


def write_png(path, size=4):
    img = bpy.data.images.new("tmp_png", size, size)
    img.filepath_raw = path
    img.file_format = "PNG"
    img.save()
    bpy.data.images.remove(img)


def write_wav(path):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", (i % 40) * 500) for i in range(800)))


def make_library(directory):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    mesh = bpy.data.meshes.new("LibMesh")
    obj = bpy.data.objects.new("LibCube", mesh)
    scene = bpy.data.scenes[0] if bpy.data.scenes else bpy.data.scenes.new("Scene")
    scene.collection.objects.link(obj)
    os.makedirs(os.path.join(directory, "lib"), exist_ok=True)
    path = os.path.join(directory, "lib", "lib.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    return path


def make(config):
    directory = config["dir"]
    lib_path = make_library(directory)

    bpy.ops.wm.read_factory_settings(use_empty=False)
    for sub in ("tex", "seq", "audio"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    shot_path = os.path.join(directory, "shot.blend")
    # Save once so that `//` paths resolve against the folder.
    bpy.ops.wm.save_as_mainfile(filepath=shot_path)

    shot = bpy.context.scene
    shot.name = "Shot"
    set_engine(shot, ["CYCLES"])
    shot.frame_start = 3
    shot.frame_end = 41
    shot.frame_step = 4
    shot.render.fps = 30
    shot.render.fps_base = 1.001
    shot.render.resolution_x = 641
    shot.render.resolution_y = 359
    shot.render.resolution_percentage = 37
    shot.render.image_settings.file_format = "OPEN_EXR"
    shot.render.filepath = "//render/shot_"
    cam_data = bpy.data.cameras.new("CamData")
    cam = bpy.data.objects.new("Hero Cam", cam_data)
    shot.collection.objects.link(cam)
    shot.camera = cam

    alpha = bpy.data.scenes.new("Alpha")
    set_engine(alpha, ["BLENDER_WORKBENCH"])
    alpha.frame_start = 0
    alpha.frame_end = 10
    alpha.frame_step = 3
    alpha.render.fps = 25
    alpha.render.fps_base = 1.0
    alpha.render.resolution_x = 1001
    alpha.render.resolution_y = 7
    alpha.render.resolution_percentage = 150
    alpha.render.image_settings.file_format = "JPEG"
    # Multiview: `Shot` saves left and right as individual files (and has a third view, which
    # the stereo setup does not render); `Alpha` has custom views, one of them off, combined
    # side by side in one image.
    shot.render.use_multiview = True
    shot.render.views_format = "STEREO_3D"
    shot.render.image_settings.views_format = "INDIVIDUAL"
    extra = shot.render.views.new("centre")
    extra.file_suffix = "_C"
    alpha.render.use_multiview = True
    alpha.render.views_format = "MULTIVIEW"
    alpha.render.views["right"].use = False
    alpha.render.views["left"].file_suffix = "-left"
    alpha.render.views.new("top").file_suffix = "_top"
    alpha.render.image_settings.views_format = "STEREO_3D"
    alpha.render.image_settings.stereo_3d_format.display_mode = "SIDEBYSIDE"
    other_cam = bpy.data.objects.new("Side Cam", bpy.data.cameras.new("SideData"))
    alpha.collection.objects.link(other_cam)
    alpha.camera = other_cam

    eevee = bpy.data.scenes.new("Eevee")
    set_engine(eevee, ["BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"])
    eevee.frame_start = 100
    eevee.frame_end = 100
    eevee.frame_step = 1
    eevee.render.fps = 24
    eevee.render.resolution_x = 4096
    eevee.render.resolution_y = 2160
    eevee.render.resolution_percentage = 1
    eevee.render.image_settings.file_format = "TIFF"

    bench = bpy.data.scenes.new("Bench")
    set_engine(bench, ["CYCLES"])
    bench.frame_start = 1
    bench.frame_end = 250
    bench.frame_step = 7
    bench.render.fps = 60
    bench.render.resolution_x = 33
    bench.render.resolution_y = 4097
    bench.render.resolution_percentage = 100
    try:
        bench.render.image_settings.file_format = "OPEN_EXR_MULTILAYER"
    except TypeError:
        # Blender 5.0: multilayer EXR is a media type of OPEN_EXR.
        bench.render.image_settings.media_type = "MULTI_LAYER_IMAGE"

    # Images.
    wood = os.path.join(directory, "tex", "wood.png")
    write_png(wood)
    img = bpy.data.images.load(wood)
    img.name = "wood"
    img.filepath = "//tex/wood.png"
    img.use_fake_user = True

    absolute = os.path.join(directory, "tex", "absolute.png")
    write_png(absolute)
    img = bpy.data.images.load(absolute)
    img.name = "absolute"
    img.use_fake_user = True

    img = bpy.data.images.load(wood, check_existing=False)
    img.name = "missing"
    img.filepath = "/nonexistent/textures/missing.png"
    img.use_fake_user = True

    packed_src = os.path.join(directory, "tex", "packed.png")
    write_png(packed_src)
    img = bpy.data.images.load(packed_src)
    img.name = "packed"
    img.filepath = "//tex/packed.png"
    img.pack()
    img.use_fake_user = True
    os.remove(packed_src)

    for tile in (1001, 1002):
        write_png(os.path.join(directory, "tex", "udim.%d.png" % tile))
    img = bpy.data.images.new("udim", 4, 4, tiled=True)
    img.tiles.new(tile_number=1002)
    img.source = "TILED"
    img.filepath = "//tex/udim.<UDIM>.png"
    img.use_fake_user = True

    for frame in (1, 2, 3):
        write_png(os.path.join(directory, "seq", "frame_%04d.png" % frame))
    img = bpy.data.images.load(os.path.join(directory, "seq", "frame_0001.png"))
    img.name = "sequence"
    img.source = "SEQUENCE"
    img.filepath = "//seq/frame_0001.png"
    img.use_fake_user = True
    # Shown by a texture node that decides which file each frame loads.
    material = bpy.data.materials.new("SequenceMaterial")
    material.use_nodes = True
    material.use_fake_user = True
    node = material.node_tree.nodes.new("ShaderNodeTexImage")
    node.image = img
    node.image_user.frame_duration = 3
    node.image_user.frame_start = 5
    node.image_user.frame_offset = 7
    node.image_user.use_cyclic = True

    # A movie clip made of the image sequence.
    clip = bpy.data.movieclips.load(os.path.join(directory, "seq", "frame_0001.png"))
    clip.name = "plate"
    clip.filepath = "//seq/frame_0001.png"
    clip.use_fake_user = True

    # A sound.
    wav = os.path.join(directory, "audio", "beep.wav")
    write_wav(wav)
    sound = bpy.data.sounds.load(wav)
    sound.name = "beep"
    sound.filepath = "//audio/beep.wav"
    sound.use_fake_user = True

    # A volume (the path is kept whether or not the file exists).
    volume = bpy.data.volumes.new("smoke")
    volume.filepath = "//vdb/smoke.vdb"
    volume.use_fake_user = True

    # A font shipped with Blender, if this build can load one.
    fonts = bpy.utils.system_resource("DATAFILES", path="fonts")
    for name in sorted(os.listdir(fonts)) if fonts and os.path.isdir(fonts) else []:
        try:
            font = bpy.data.fonts.load(os.path.join(fonts, name))
        except (RuntimeError, OSError):
            continue
        font.use_fake_user = True
        break

    # A linked object from the library, relative to this file.
    with bpy.data.libraries.load(lib_path, link=True, relative=True) as (src, dst):
        dst.objects = ["LibCube"]
    for obj in dst.objects:
        shot.collection.objects.link(obj)

    # Camera switches on timeline markers, and view layers.
    for name, frame, camera in (("start", 3, cam), ("side", 20, other_cam), ("plain", 30, None)):
        marker = shot.timeline_markers.new(name, frame=frame)
        marker.camera = camera
    shot.view_layers[0].name = "Main"
    shot.view_layers.new("Background")
    shot.view_layers.new("Unused").use = False

    # Sequencer strips: shown by `Eevee` (no camera), not by `Alpha` (its sequencer is off).
    for scene, on in ((eevee, True), (alpha, False)):
        editor = scene.sequence_editor_create()
        strips = editor.strips if hasattr(editor, "strips") else editor.sequences
        strips.new_image("plate", os.path.join(directory, "seq", "frame_0001.png"), 1, 1)
        scene.render.use_sequencer = on

    # Compositing nodes.
    if hasattr(bench, "compositing_node_group"):  # Blender 5.0
        bench.compositing_node_group = bpy.data.node_groups.new("Comp", "CompositorNodeTree")
    else:
        bench.use_nodes = True
    bench.render.use_compositing = True

    # Caches Blender writes while rendering (farm_blend::WRITTEN): an unbaked external point cache
    # on disk at an absolute folder, and a Mantaflow domain in Replay mode; and one it does not
    # report, a disk cache beside the .blend. Disk caches need a saved file.
    bpy.context.window.scene = shot
    bpy.ops.wm.save_as_mainfile(filepath=shot_path, relative_remap=False)
    emitter = bpy.data.objects.new("Emitter", bpy.data.meshes.new("Emitter"))
    shot.collection.objects.link(emitter)
    for name, external in (("outside", True), ("beside", False)):
        system = emitter.modifiers.new(name, "PARTICLE_SYSTEM").particle_system
        system.point_cache.use_disk_cache = True
        if external:
            system.point_cache.use_external = True
            system.point_cache.filepath = "/farm-test/escaped/"
    domain = bpy.data.objects.new("Domain", bpy.data.meshes.new("Domain"))
    shot.collection.objects.link(domain)
    fluid = domain.modifiers.new("Fluid", "FLUID")
    fluid.fluid_type = "DOMAIN"
    fluid.domain_settings.cache_type = "REPLAY"
    fluid.domain_settings.cache_directory = "//fluid_cache/"

    bpy.ops.wm.save_as_mainfile(
        filepath=shot_path, compress=config["compress"], relative_remap=False
    )
    return shot_path


def main():
    config = args()
    path = make(config)
    print("FIXTURE=" + path, flush=True)
    # The bpy module's teardown can abort once a fluid domain has run (seen on 4.2).
    os._exit(0)


if __name__ == "__main__":
    main()
