#!/usr/bin/env bash
# Renderer benchmark (issue 3):
#  1. wall time of the renderer rendering a 24-frame chunk of the example scene against moto_server,
#     next to plain `blender -b scene.blend -s 1 -e 24 -a` on local files, in the same run;
#  2. peak memory (VmHWM) of the renderer process itself, Blender excluded, while it downloads a
#     200 MiB .blend and uploads 24 frames.
# Usage: renderer/bench/bench.sh   (needs blender, moto_server, aws, hyperfine: scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p renderer >/dev/null

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 50); do curl -fs "$AWS_ENDPOINT_URL/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done

blender -b --factory-startup --python examples/make_example.py -- "$work/compressed.blend" >/dev/null 2>&1
blender -b "$work/compressed.blend" --python-expr \
    "import bpy; bpy.ops.wm.save_as_mainfile(filepath='$work/scene.blend', compress=False)" >/dev/null 2>&1
aws s3api create-bucket --bucket bench >/dev/null
aws s3 cp --quiet "$work/scene.blend" s3://bench/scene.blend
threads=$(nproc)
renderer="$PWD/target/release/renderer"

echo "== 24-frame chunk: renderer via moto vs plain blender on local files"
hyperfine --warmup 1 --runs 5 --style basic --export-markdown "$work/time.md" \
    --prepare "rm -rf $work/plain $work/w; aws s3 rm --quiet --recursive s3://bench/scene.blend/frames/" \
    -n "blender -b scene.blend -s 1 -e 24 -a" \
    "blender -b $work/scene.blend -o $work/plain/frame_# -s 1 -e 24 -t $threads -a" \
    -n "renderer (FARM_FRAMES=1-24 FARM_CHUNK=24, moto)" \
    "env FARM_BUCKET=bench FARM_KEY=scene.blend FARM_FRAMES=1-24 FARM_CHUNK=24 FARM_WORK_DIR=$work/w FARM_THREADS=$threads $renderer"
cat "$work/time.md"

echo "== peak memory of the renderer process with a 200 MiB .blend"
cp "$work/scene.blend" "$work/big.blend"
# Blender stops reading at the ENDB block: the padding is downloaded but never parsed.
head -c $((200 * 1024 * 1024)) /dev/urandom >>"$work/big.blend"
aws s3 cp --quiet "$work/big.blend" s3://bench/big.blend
env FARM_BUCKET=bench FARM_KEY=big.blend FARM_FRAMES=1-24 FARM_CHUNK=24 FARM_WORK_DIR="$work/wb" \
    FARM_THREADS="$threads" "$renderer" 2>"$work/big.log" &
pid=$!
hwm=0
while kill -0 "$pid" 2>/dev/null; do
    kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$kb" ] && [ "$kb" -gt "$hwm" ] && hwm=$kb
    sleep 0.05
done
wait "$pid"
frames=$(aws s3 ls s3://bench/big.blend/frames/ | wc -l)
echo "blend: $(du -m "$work/big.blend" | cut -f1) MiB, frames uploaded: $frames, renderer peak RSS (VmHWM): $((hwm / 1024)) MiB"
