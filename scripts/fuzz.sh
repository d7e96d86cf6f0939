#!/usr/bin/env bash
# Fuzzes the .blend reader (farm-blend) for a bounded time: `scripts/fuzz.sh [seconds]`
# (default 60). Needs the nightly toolchain (`rustup toolchain install nightly`); uses
# `cargo fuzz` when installed, else builds the same libFuzzer target with cargo-fuzz's flags.
#
# The corpus starts from fuzz/seeds (small files saved by Blender 5.0, odd headers) plus a
# file saved now by Debian's Blender 3.4 when `blender` is on PATH; findings go to
# fuzz/artifacts/ and fail the run.
set -euo pipefail

seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
corpus="$fuzz/corpus/blend_read"
mkdir -p "$corpus" "$fuzz/artifacts/blend_read"
cp -n "$fuzz"/seeds/* "$corpus"/

if command -v blender >/dev/null && [ ! -f "$corpus/v304-empty.blend" ]; then
    blender -b --factory-startup --python-expr \
        "import bpy; bpy.ops.wm.read_factory_settings(use_empty=True); bpy.data.scenes.new('S'); bpy.ops.wm.save_as_mainfile(filepath='$corpus/v304-empty.blend')" \
        >/dev/null 2>&1 || echo "fuzz: could not make a Blender 3.4 seed; going on with the others" >&2
fi

if cargo +nightly fuzz --version >/dev/null 2>&1; then
    cd "$fuzz"
    exec cargo +nightly fuzz run blend_read "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -max_len=1048576
fi

# cargo-fuzz's own flags, so the same target builds without it.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the flags off build scripts and proc macros, as cargo-fuzz does.
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
cargo +nightly build --release --manifest-path "$fuzz/Cargo.toml" --bin blend_read --target "$host" >&2
exec "$fuzz/target/$host/release/blend_read" "$corpus" \
    -artifact_prefix="$fuzz/artifacts/blend_read/" \
    -max_total_time="$seconds" -rss_limit_mb=512 -max_len=1048576
