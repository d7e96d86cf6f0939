#!/usr/bin/env bash
# Estimate error benchmark (issue 27, ADR 0016): `farm estimate` (the profile pass over every
# frame at 25 % resolution, then first, middle and last at full quality and any frame the
# profile finds unlike its neighbours) against what `farm render` then measures, on three scenes
# of farm-testkit/scenes/geometry_scene.py with different frame costs: uniform (`static`),
# `rising` (samples 1x to 4x) and `spike` (one frame of 8x the samples). Both on this machine,
# one task (one chunk of every frame, persistent data on as the farm's chunks), the same threads:
# predicted task seconds = Blender start-up + (the first frame's extra + every frame's seconds)
# (farm estimate's figures are scaled to a 4-vCPU task: x 4 / threads); measured = the
# receipt's task time of `farm render --workers 1`. `estimate s` is farm estimate's own wall
# time (profile, samples, two Blender start-ups).
# Usage: farm-cli/bench/estimate.sh [frames]   (needs blender, python3)
# WIDTH, HEIGHT, SAMPLES: the scenes' size and base samples (default 320x180, 32); frames of a
# second or less leave the task to Blender's start-up and load, whose noise then dominates.
set -euo pipefail
cd "$(dirname "$0")/../.."
frames=${1:-12}
threads=2
farm=${FARM:-${CARGO_TARGET_DIR:-$PWD/target}/debug/farm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) CPUs, $(blender --version 2>/dev/null | head -1), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| scene | sampled (s; * placed by the profile) | estimate s | predicted task s | measured task s | error |"
echo "|---|---|---|---|---|---|"
for kind in static rising spike; do
    blender -b --factory-startup --python farm-testkit/scenes/geometry_scene.py -- \
        "{\"output\": \"$work/$kind.blend\", \"kind\": \"$kind\", \"end\": $frames, \"width\": ${WIDTH:-320}, \"height\": ${HEIGHT:-180}, \"samples\": ${SAMPLES:-32}, \"objects\": 3, \"levels\": 2}" >/dev/null 2>&1
    start=$(date +%s.%N)
    "$farm" estimate "$work/$kind.blend" --threads $threads --json >"$work/$kind.json" 2>/dev/null
    took=$(echo "$(date +%s.%N) - $start" | bc)
    "$farm" render "$work/$kind.blend" --workers 1 --threads $threads --chunk "$frames" --out "$work/$kind.out" >"$work/$kind.txt"
    python3 - "$work/$kind.json" "$work/$kind.txt" "$kind" $threads "$took" <<'PY'
import json, re, sys
estimate = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
threads = int(sys.argv[4])
def secs(s):
    m = re.match(r"(?:(\d+) min )?([\d.]+) s", s)
    return float(m.group(1) or 0) * 60 + float(m.group(2))
measured = secs(re.search(r"to the end, (.+?) of task time", text).group(1))
predicted = estimate["blender_startup_seconds"] + (
    estimate.get("first_frame_extra_seconds", 0) + estimate["frame_seconds_total"]) * 4 / threads
sampled = " ".join("%d%s: %.1f" % (s["frame"], "*" if s.get("placed_by_profile") else "", s["seconds"])
                   for s in estimate["sampled"])
print("| %s | %s | %.1f | %.1f | %.1f | %+.0f %% |" % (sys.argv[3], sampled, float(sys.argv[5]), predicted,
                                                     measured, (predicted / measured - 1) * 100))
PY
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
