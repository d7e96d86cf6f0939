#!/usr/bin/env bash
# EEVEE Next, Cycles and Workbench frame times in one bpy 4.2.23 process each (BENCHMARKS.md,
# "EEVEE and Workbench"): the default cube, 320x180, 16 samples, 2 threads, 6 frames with the
# cube turning, Mesa's shader cache cold (a fresh XDG_CACHE_HOME, as each farm chunk has), a
# cleared environment as the farm gives Blender.
#
#   renderer/bench/engines.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="$("$ROOT/scripts/bpy-venv.sh" 4.2.23)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/run.py" <<'PY'
import os, sys, time
import bpy
engine, out = sys.argv[sys.argv.index("--") + 1:]
s = bpy.context.scene
s.render.engine = engine
s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = 320, 180, 100
s.cycles.samples = 16; s.cycles.use_denoising = False; s.cycles.device = "CPU"
s.eevee.taa_render_samples = 16
s.render.threads_mode = "FIXED"; s.render.threads = 2
cube = bpy.data.objects["Cube"]
for f in range(1, 7):
    cube.rotation_euler = (0, 0, 0.1 * f)
    t = time.time()
    s.frame_set(f)
    s.render.filepath = os.path.join(out, "%s_%d" % (engine, f))
    bpy.ops.render.render(write_still=True)
    print("FRAMETIME", engine, f, round(time.time() - t, 2), flush=True)
os._exit(0)
PY
for engine in BLENDER_EEVEE_NEXT CYCLES BLENDER_WORKBENCH; do
  rm -rf "$WORK/cache"
  start=$SECONDS
  env -i PATH=/usr/bin:/bin HOME="$WORK" TMPDIR="$WORK" XDG_CACHE_HOME="$WORK/cache" \
    "$PYTHON" -I "$WORK/run.py" -- "$engine" "$WORK" 2>&1 | grep FRAMETIME
  echo "process $engine: $((SECONDS - start)) s"
done
