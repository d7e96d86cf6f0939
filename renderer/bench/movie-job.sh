#!/usr/bin/env bash
# The cloud's movie job on 250 rendered 1080p PNG frames (BENCHMARKS.md, "movies"): the
# `renderer` told FARM_MOVIE=mkv, as Batch runs it after the zip job, against a moto_server on
# 127.0.0.1 holding the .blend (1920x1080, MKV, H.264, CRF MEDIUM, 24 fps) and the job's frames
# (FFmpeg's testsrc2, with the metadata the renderer gives PNG frames). Times the whole job (scan,
# downloads, Blender's encode, upload) and reads the movie back with ffprobe.
#
#   source scripts/env.sh; cargo build -p renderer; renderer/bench/movie-job.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RENDERER="${CARGO_TARGET_DIR:-$ROOT/target}/debug/renderer"
WORK="$(mktemp -d)"
PORT=$((20000 + RANDOM % 20000))
moto_server -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO=$!
trap 'kill "$MOTO" 2>/dev/null; rm -rf "$WORK"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 50); do curl -s "$AWS_ENDPOINT_URL" >/dev/null && break; sleep 0.2; done
cd "$WORK"
mkdir frames
ffmpeg -v error -f lavfi -i "testsrc2=size=1920x1080:rate=24" -frames:v 250 -start_number 1 frames/%04d.png
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
aws s3 mb s3://bench >/dev/null
aws s3 cp movie.blend s3://bench/shots/movie.blend >/dev/null
aws s3 cp --recursive --quiet --metadata farm-format=PNG --content-type image/png \
  frames s3://bench/shots/movie.blend/frames/
du -sh frames
/usr/bin/time -o job.time -f "movie job: %e s, peak RSS %M KB (its largest process)" \
  env FARM_BUCKET=bench FARM_KEY=shots/movie.blend FARM_FRAMES=1-250 FARM_FORMAT=PNG \
  FARM_MOVIE=mkv FARM_THREADS=2 FARM_LOG_FORMAT=json FARM_WORK_DIR="$WORK/work" "$RENDERER" >job.log 2>&1 ||
  { tail -5 job.log; exit 1; }
cat job.time
grep -o '"seconds":[0-9.]*' job.log | head -1 | sed 's/"seconds":/Blender encode (its log line): /; s/$/ s/'
aws s3 cp --quiet s3://bench/shots/movie.blend/movie.mkv movie.mkv
ls -l movie.mkv
ffprobe -v error -count_frames -show_entries stream=codec_name,nb_read_frames,pix_fmt,r_frame_rate \
  -of compact movie.mkv
