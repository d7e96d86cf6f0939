#!/usr/bin/env bash
# Persistent data benchmark (issue 27, ADR 0015): `farm render` (one worker, one chunk, so Cycles
# keeps its scene between frames) against `blender -b scene.blend -a` and against
# `farm render --no-persistent`, on the scenes of farm-testkit/scenes/persistent_scenes.sh
# (heavy, light, deforming).
# Usage: farm-cli/bench/persistent.sh [runs] [frames] [scene...]   (needs blender, hyperfine:
#   scripts/setup.sh). On a machine shared with other work, `nice -n -15` (as root) keeps the
#   benchmark ahead of it.
# FARM: the farm binary (default: the debug build under $CARGO_TARGET_DIR or ./target).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-2}
frames=${2:-12}
shift 2 2>/dev/null || shift $#
scenes=("$@")
[ ${#scenes[@]} -gt 0 ] || scenes=(heavy light deforming)
farm=${FARM:-${CARGO_TARGET_DIR:-$PWD/target}/debug/farm}
# Both sides run the same Blender: without BLENDER, `farm render` would pick the farm's own bpy
# for these files (`blender=auto`) while `blender -a` runs Debian's.
export BLENDER=${BLENDER:-$(command -v blender)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) CPUs, $("$BLENDER" --version 2>/dev/null | head -1) ($BLENDER), farm: $farm, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
source farm-testkit/scenes/persistent_scenes.sh
for scene in "${scenes[@]}"; do
    blend="$work/$scene.blend"
    make_persistent_scene "$scene" "$frames" "$blend"
    hyperfine --runs "$runs" --style basic --export-markdown "$work/$scene.md" \
        --prepare "rm -rf $work/out" \
        -n "$scene: blender -b scene.blend -a" "$BLENDER -b $blend -o $work/out/frame_# -t $(nproc) -a" \
        -n "$scene: farm render" "$farm render $blend --out $work/out" \
        -n "$scene: farm render --no-persistent" "$farm render $blend --out $work/out --no-persistent"
    cat "$work/$scene.md"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
