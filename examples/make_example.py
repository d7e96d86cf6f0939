"""Builds examples/bounce.blend: a ball bouncing on a floor, 24 frames, small and quick to render.

Run with: blender -b --factory-startup --python examples/make_example.py -- examples/bounce.blend
"""
import math
import sys

import bpy

out = sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else "bounce.blend"

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 8
scene.cycles.use_denoising = False  # Debian's Blender has no OpenImageDenoise
scene.render.resolution_x = 160
scene.render.resolution_y = 90
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
scene.frame_start = 1
scene.frame_end = 24

world = bpy.data.worlds.new("World")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.07, 0.12, 1.0)
scene.world = world

bpy.ops.mesh.primitive_plane_add(size=20)
floor = bpy.context.object
floor_material = bpy.data.materials.new("Floor")
floor_material.use_nodes = True
floor_material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.8, 0.8, 0.75, 1.0)
floor.data.materials.append(floor_material)

bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, segments=32, ring_count=16)
ball = bpy.context.object
bpy.ops.object.shade_smooth()
ball_material = bpy.data.materials.new("Ball")
ball_material.use_nodes = True
ball_material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.9, 0.25, 0.1, 1.0)
ball.data.materials.append(ball_material)
for frame in range(scene.frame_start, scene.frame_end + 1):
    t = (frame - 1) / 23.0
    ball.location = (-6.0 + 12.0 * t, 0.0, 1.0 + 3.0 * abs(math.sin(t * 2.0 * math.pi)))
    ball.keyframe_insert(data_path="location", frame=frame)

bpy.ops.object.light_add(type="SUN", location=(4.0, -4.0, 10.0))
bpy.context.object.data.energy = 4.0
bpy.context.object.rotation_euler = (0.6, 0.2, 0.8)

bpy.ops.object.camera_add(location=(0.0, -22.0, 4.5), rotation=(math.radians(84), 0.0, 0.0))
scene.camera = bpy.context.object

bpy.ops.wm.save_as_mainfile(filepath=out, compress=True)
