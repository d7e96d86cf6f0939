#!/usr/bin/env bash
# `farm render` benchmark (issue 5, "Speed"): 24 frames of the bundled example scene on this
# machine, plain `blender -b scene.blend -s 1 -e 24 -a` against `farm render` (release build)
# with several --workers/--chunk combinations, all in the same hyperfine run.
# Every farm run starts from an empty output folder (no resume) and includes everything the
# command does: asking Blender for the frame range, rendering, and writing frames.zip.
# Usage: farm-cli/bench/render.sh [runs]   (needs blender and hyperfine: scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
command -v hyperfine >/dev/null || { echo "bench: hyperfine not found: apt-get install -y hyperfine" >&2; exit 1; }
cargo build --release --locked -p farm-cli >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
blender -b --factory-startup --python examples/make_example.py -- "$work/scene.blend" >/dev/null 2>&1
farm="$PWD/target/release/farm"

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(blender --version 2>/dev/null | head -1)"
echo "scene: examples/make_example.py (24 frames, 160x90, Cycles 8 samples)"

combos=("1 24" "2 12" "2 6" "2 4" "2 1" "3 8" "4 6")
args=()
for combo in "${combos[@]}"; do
    read -r workers chunk <<<"$combo"
    args+=(-n "farm render --workers $workers --chunk $chunk"
        "$farm render $work/scene.blend --out $work/farm --workers $workers --chunk $chunk")
done
hyperfine --warmup 1 --runs "$runs" --style basic --export-markdown "$work/render.md" \
    --prepare "rm -rf $work/plain $work/farm" \
    -n "blender -b scene.blend -s 1 -e 24 -a" \
    "blender -b $work/scene.blend -o $work/plain/frame_# -s 1 -e 24 -a" \
    -n "farm render (defaults)" \
    "$farm render $work/scene.blend --out $work/farm" \
    "${args[@]}"
cat "$work/render.md"
