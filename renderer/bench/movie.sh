#!/usr/bin/env bash
# Writing a movie from 250 rendered 1080p PNG frames (BENCHMARKS.md, "movies"): the farm's way
# (Debian's Blender runs farm-core/src/render_script.py in mode `movie`: the sequencer shows the
# frames, Blender encodes with the scene's settings, here MKV, H.264, CRF MEDIUM = 23) against the
# FFmpeg CLI (libx264, CRF 23, yuv420p) on the same frames, 2 threads each; then ffprobe on both.
#
#   renderer/bench/movie.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
mkdir frames blender-out
ffmpeg -v error -f lavfi -i "testsrc2=size=1920x1080:rate=24" -frames:v 250 -start_number 1 frames/%04d.png
du -sh frames
blender -b --factory-startup --python-expr "
import bpy
s = bpy.context.scene
s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = 1920, 1080, 100
s.render.fps = 24
s.render.image_settings.file_format = 'FFMPEG'
s.render.ffmpeg.format = 'MKV'
s.render.ffmpeg.codec = 'H264'
s.render.ffmpeg.constant_rate_factor = 'MEDIUM'
s.frame_start, s.frame_end = 1, 250
bpy.ops.wm.save_as_mainfile(filepath='$WORK/movie.blend')
" >/dev/null
python3 - "$WORK" > config.json <<'PY'
import json, sys
work = sys.argv[1]
frames = ["%s/frames/%04d.png" % (work, f) for f in range(1, 251)]
print(json.dumps({"mode": "movie", "blend": work + "/movie.blend", "frames": frames,
                  "first": 1, "threads": 2, "out": work + "/blender-out"}))
PY
/usr/bin/time -o blender.time -f "blender sequencer movie: %e s, peak RSS %M KB" \
  blender -b --factory-startup --disable-autoexec --threads 2 \
  --python-expr "$(cat "$ROOT/farm-core/src/render_script.py")" -- "$(cat config.json)" >blender.log 2>&1
cat blender.time
/usr/bin/time -f "ffmpeg CLI: %e s, peak RSS %M KB" \
  ffmpeg -v error -threads 2 -framerate 24 -start_number 1 -i frames/%04d.png \
  -c:v libx264 -crf 23 -pix_fmt yuv420p ffmpeg.mkv
ls -l blender-out ffmpeg.mkv
for movie in blender-out/* ffmpeg.mkv; do
  ffprobe -v error -count_frames -show_entries stream=codec_name,nb_read_frames,pix_fmt,r_frame_rate \
    -of compact "$movie"
done
