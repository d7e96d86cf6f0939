#!/usr/bin/env bash
# Reading a .blend without Blender: farm-blend against Blender Studio's asset tracer BAT 1.x.
#
#   scripts/bench-inspect.sh [runs]     (default 5 runs of each, best wall time and max RSS)
#
# Makes (once, cached in ~/.cache/blender-farm/bench) a large uncompressed scene and the same
# scene saved with zstd, with Debian's Blender; installs BAT (`blender-asset-tracer<2` and
# `zstandard`) in a venv under ~/.cache/blender-farm/bat; builds the release `farm` and the
# reader-only example. Then times, on each file: `farm inspect --json`, the reader alone
# (`blend_facts`), and `bat list`.
set -euo pipefail

runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${FARM_CACHE_DIR:-"$HOME/.cache/blender-farm"}
bench="$cache/bench"
mkdir -p "$bench"

if [ ! -f "$bench/big-zstd.blend" ]; then
    blender -b --factory-startup --python-expr "
import bpy
bpy.ops.mesh.primitive_grid_add(x_subdivisions=1800, y_subdivisions=1800, size=10)
bpy.ops.wm.save_as_mainfile(filepath='$bench/big.blend')
bpy.ops.wm.save_as_mainfile(filepath='$bench/big-zstd.blend', compress=True)
" >/dev/null
fi
if [ ! -x "$cache/bat/bin/bat" ]; then
    python3.11 -m venv "$cache/bat"
    "$cache/bat/bin/pip" install -q 'blender-asset-tracer<2' zstandard
fi
# `farm inspect` needs no AWS: the local build (what scripts/example.sh installs) is enough.
target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release -p farm-cli --no-default-features >&2 &&
    cargo build --release -p farm-blend --example blend_facts >&2)

measure() { # prints "best_seconds max_rss_mib" of `runs` runs of the command
    local best=999 rss=0
    for _ in $(seq "$runs"); do
        local out
        out=$( { /usr/bin/time -f '%e %M' "$@" >/dev/null 2>/dev/null; } 2>&1 | tail -1)
        local t=${out% *} m=${out#* }
        best=$(python3 -c "print(min($best, $t))")
        rss=$(( m > rss ? m : rss ))
    done
    echo "$best $((rss / 1024))"
}

printf '%-22s %-26s %8s %8s\n' file command seconds "RSS MiB"
for file in big.blend big-zstd.blend; do
    size=$(du -m "$bench/$file" | cut -f1)
    for cmd in "farm inspect --json" "blend_facts" "bat list"; do
        case $cmd in
            "farm inspect --json") argv=("$target/release/farm" inspect --json "$bench/$file") ;;
            blend_facts) argv=("$target/release/examples/blend_facts" "$bench/$file") ;;
            "bat list") argv=("$cache/bat/bin/bat" list "$bench/$file") ;;
        esac
        read -r t m < <(measure "${argv[@]}")
        printf '%-22s %-26s %8s %8s\n' "$file (${size} MB)" "$cmd" "$t" "$m"
    done
done
