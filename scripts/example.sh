#!/usr/bin/env bash
# Renders the bundled example animation on this machine, no AWS needed: installs Blender if it is
# missing, installs `farm` for this machine with `cargo install --path farm-cli --locked
# --no-default-features` (no AWS SDK, so it compiles in a fraction of the time; into ~/.cargo/bin,
# which rustup puts on PATH; FARM_INSTALL_ROOT=DIR installs into DIR/bin instead), makes
# examples/bounce.blend with Blender, and runs `farm render` on it with the farm's own Blender
# (the official 4.2 LTS the cloud runs for this file: `farm` installs it on this first render, a
# download of about 350 MB, into ~/.cache/blender-farm; it runs on python3.11 with its venv
# module, which this script installs on Debian 12; where there is no python3.11, as on Ubuntu
# 24.04, the example renders with the distribution's Blender instead, and says so). Frames land
# in examples/bounce.farm/frames/ and the archive in examples/bounce.farm/frames.zip.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    echo "example: installing $* with apt-get"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
command -v blender >/dev/null 2>&1 || apt_install blender
if command -v python3.11 >/dev/null 2>&1 && ! python3.11 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
fi
blender=()
if ! python3.11 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "example: no python3.11 with venv here, which the farm's Blender 4.2 runs on: rendering with $(command -v blender) instead"
    blender=(--blender "$(command -v blender)")
fi
command -v cargo >/dev/null || { echo "example: cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }

root=${FARM_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}
# With --path, cargo builds in the workspace's target/, so a rerun compiles nothing again.
cargo install --path farm-cli --locked --no-default-features --root "$root"
farm="$root/bin/farm"
if [ "$(command -v farm || true)" = "$farm" ]; then
    echo "example: installed farm as $farm (on your PATH)"
else
    echo "example: installed farm as $farm; add $root/bin to your PATH to type \`farm\`:"
    echo "    export PATH=\"$root/bin:\$PATH\""
fi
if [ ! -f examples/bounce.blend ]; then
    blender -b --factory-startup --python examples/make_example.py -- "$PWD/examples/bounce.blend" >/dev/null
fi
"$farm" render examples/bounce.blend ${blender[@]+"${blender[@]}"} "$@"
