#!/usr/bin/env bash
# Renders the bundled example animation on this machine, no AWS needed: installs Blender if it is
# missing, builds `farm`, makes examples/bounce.blend with Blender, and runs `farm render` on it.
# Frames land in examples/bounce.farm/frames/ and the archive in examples/bounce.farm/frames.zip.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v blender >/dev/null 2>&1; then
    echo "example: installing blender with apt-get"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends blender
fi
command -v cargo >/dev/null || { echo "example: cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }

cargo build --release --locked -p farm-cli
if [ ! -f examples/bounce.blend ]; then
    blender -b --factory-startup --python examples/make_example.py -- "$PWD/examples/bounce.blend" >/dev/null
fi
target/release/farm render examples/bounce.blend "$@"
