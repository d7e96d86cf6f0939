#!/usr/bin/env bash
# `farm render` benchmark (issue 5, "Speed"): 24 frames of the bundled example scene on this
# machine, plain `blender -b scene.blend -s 1 -e 24 -a` against `farm render` (release build)
# with several --workers/--chunk combinations, all in the same run.
#
# Rounds are interleaved (every command once per round, in a rotating order), so load from
# other work on the machine spreads over all commands alike. Every farm run starts from an empty
# output folder (no resume) and includes everything the command does: hashing the scene,
# rendering, and writing frames.zip; `--frames 1-24` matches the plain command's `-s 1 -e 24`,
# and the run without it reads the scene's frame range from the .blend (farm-blend, no Blender start).
# On a shared machine the runs go at the highest priority (nice -19, when root) so that other
# work disturbs them less; the load average is printed before and after.
# Then a paired check of the defaults: [pairs] times plain Blender then `farm render --frames 1-24`
# back to back, and the median of the differences.
# Usage: farm-cli/bench/render.sh [rounds] [pairs]   (needs blender and python3: scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" = 0 ] && [ "${FARM_BENCH_NICED:-}" != 1 ]; then
    FARM_BENCH_NICED=1 exec nice -n -19 "$0" "$@"
fi
rounds=${1:-7}
pairs=${2:-16}
# `farm render` needs no AWS: the local build, what scripts/example.sh installs.
cargo build --release --locked -p farm-cli --no-default-features >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
blender -b --factory-startup --python examples/make_example.py -- "$work/scene.blend" >/dev/null 2>&1
farm="${CARGO_TARGET_DIR:-$PWD/target}/release/farm"
# The same Blender on both sides: farm render runs this one, not the farm's own bpy build.
BLENDER="$(command -v blender)"
export BLENDER
scene="$work/scene.blend"

echo "machine: $(nproc) CPUs, nice $(nice), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
    "$(blender --version 2>/dev/null | head -1), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "scene: examples/make_example.py (24 frames, 160x90, Cycles 8 samples); $rounds interleaved rounds"

names=(
    "blender -b scene.blend -s 1 -e 24 -a"
    "farm render scene.blend (defaults; range read from the .blend)"
    "farm render --frames 1-24 (defaults: 1 worker, chunk 24)"
    "farm render --frames 1-24 --workers 1 --chunk 6"
    "farm render --frames 1-24 --workers 2 --chunk 12"
    "farm render --frames 1-24 --workers 2 --chunk 6"
    "farm render --frames 1-24 --workers 2 --chunk 12 --threads 2"
    "farm render --frames 1-24 --workers 3 --chunk 8"
    "farm render --frames 1-24 --workers 4 --chunk 6"
)
commands=(
    "blender -b $scene -o $work/out/frame_# -s 1 -e 24 -a"
    "$farm render $scene --out $work/out"
    "$farm render $scene --out $work/out --frames 1-24"
    "$farm render $scene --out $work/out --frames 1-24 --workers 1 --chunk 6"
    "$farm render $scene --out $work/out --frames 1-24 --workers 2 --chunk 12"
    "$farm render $scene --out $work/out --frames 1-24 --workers 2 --chunk 6"
    "$farm render $scene --out $work/out --frames 1-24 --workers 2 --chunk 12 --threads 2"
    "$farm render $scene --out $work/out --frames 1-24 --workers 3 --chunk 8"
    "$farm render $scene --out $work/out --frames 1-24 --workers 4 --chunk 6"
)
count=${#commands[@]}
: >"$work/times"
for round in $(seq 0 "$rounds"); do
    for k in $(seq 0 $((count - 1))); do
        i=$(((k + round) % count))
        rm -rf "$work/out"
        start=$(date +%s.%N)
        ${commands[$i]} >/dev/null 2>&1
        end=$(date +%s.%N)
        # Round 0 is the warm-up.
        [ "$round" -gt 0 ] && echo "$i $start $end" >>"$work/times"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${names[@]}" >"$work/names"
python3 - "$work/times" "$work/names" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    i, start, end = line.split()
    times.setdefault(int(i), []).append(float(end) - float(start))
names = open(sys.argv[2]).read().splitlines()
base = statistics.median(times[0])
print("| Command | Median [s] | Mean ± σ [s] | Min [s] | Max [s] | Median vs plain Blender |")
print("|:---|---:|---:|---:|---:|---:|")
for i, name in enumerate(names):
    t = times[i]
    print(f"| `{name}` | {statistics.median(t):.2f} | {statistics.mean(t):.2f} ± {statistics.stdev(t):.2f} "
          f"| {min(t):.2f} | {max(t):.2f} | {statistics.median(t) / base:.2f}x |")
PY

echo "== paired: plain blender, then farm render --frames 1-24 (defaults), $pairs pairs"
: >"$work/pairs"
for _ in $(seq "$pairs"); do
    rm -rf "$work/out"
    start=$(date +%s.%N); ${commands[0]} >/dev/null 2>&1; end=$(date +%s.%N)
    plain=$(python3 -c "print($end - $start)")
    rm -rf "$work/out"
    start=$(date +%s.%N); ${commands[2]} >/dev/null 2>&1; end=$(date +%s.%N)
    echo "$plain $(python3 -c "print($end - $start)")" >>"$work/pairs"
done
python3 - "$work/pairs" <<'PY'
import statistics, sys
pairs = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
diffs = [f - p for p, f in pairs]
print(f"farm faster in {sum(d < 0 for d in diffs)} of {len(diffs)} pairs; "
      f"median difference {statistics.median(diffs):+.2f} s; "
      f"plain {min(p for p, _ in pairs):.2f}-{max(p for p, _ in pairs):.2f} s, "
      f"farm {min(f for _, f in pairs):.2f}-{max(f for _, f in pairs):.2f} s")
PY
