#!/usr/bin/env bash
# Persistent data through the cloud path (issue 27, ADR 0015): the renderer rendering one chunk
# of every frame against moto_server (download, render, upload, task record), with persistent
# data (the default) and with FARM_PERSISTENT=off, next to `blender -b scene.blend -a` on local
# files, on the scenes of farm-cli/bench/persistent.sh (farm-testkit/scenes/persistent_scenes.sh).
# Usage: renderer/bench/persistent.sh [runs] [frames] [scenes...]
#   (needs blender, moto_server, aws, hyperfine: scripts/setup.sh; source scripts/env.sh). On a
#   machine shared with other work, `nice -n -15` (as root) keeps the benchmark ahead of it.
# RENDERER: the renderer binary (default: the debug build under $CARGO_TARGET_DIR or ./target).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-2}
frames=${2:-24}
shift 2 2>/dev/null || shift $#
scenes=("$@")
[ ${#scenes[@]} -gt 0 ] || scenes=(heavy light deforming)
renderer=${RENDERER:-${CARGO_TARGET_DIR:-$PWD/target}/debug/renderer}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 50); do curl -fs "$AWS_ENDPOINT_URL/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
aws s3api create-bucket --bucket bench >/dev/null
echo "machine: $(nproc) CPUs, $(blender --version 2>/dev/null | head -1), renderer: $renderer, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
threads=$(nproc)
source farm-testkit/scenes/persistent_scenes.sh
for scene in "${scenes[@]}"; do
    make_persistent_scene "$scene" "$frames" "$work/$scene.blend"
    aws s3 cp --quiet "$work/$scene.blend" "s3://bench/$scene.blend"
    chunk="env BLENDER=$(command -v blender) FARM_BUCKET=bench FARM_KEY=$scene.blend FARM_FRAMES=1-$frames FARM_CHUNK=$frames FARM_WORK_DIR=$work/w FARM_THREADS=$threads"
    hyperfine --runs "$runs" --style basic --export-markdown "$work/$scene.md" \
        --prepare "rm -rf $work/out $work/w; aws s3 rm --quiet --recursive s3://bench/$scene.blend/" \
        -n "$scene: blender -b scene.blend -a" "blender -b $work/$scene.blend -o $work/out/frame_# -t $threads -a" \
        -n "$scene: renderer chunk via moto" "$chunk $renderer" \
        -n "$scene: renderer chunk, FARM_PERSISTENT=off" "$chunk FARM_PERSISTENT=off $renderer"
    cat "$work/$scene.md"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
