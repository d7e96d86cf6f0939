#!/usr/bin/env bash
# Writes the hash-pinned lock of one Blender LTS series, which Dockerfile.renderer installs with
# `pip install --require-hashes`:
#
#   infra/bpy/lock.sh 4.2.23    # -> infra/bpy/4.2.txt
#   infra/bpy/lock.sh 4.5.15    # -> infra/bpy/4.5.txt
#
# It downloads the `bpy==<version>` wheel for CPython 3.11 on manylinux_2_28 x86_64 (Debian
# 12's Python and the image's platform) from PyPI with pip, and records its SHA-256 (`pip hash`).
# Only bpy: its declared dependencies (numpy, requests, zstandard, cython) serve add-ons and
# scripts, and the renderer runs neither (scripts are disabled for uploaded files); `import bpy`
# and a Cycles render need none of them, which the image build checks by rendering, and leaving
# them out saves about 140 MB per image. Review the diff of the lock like code. Downloads are
# kept in ${FARM_CACHE_DIR:-~/.cache/blender-farm}/wheels.
set -euo pipefail

version=${1:?usage: infra/bpy/lock.sh <bpy version, e.g. 4.2.23>}
[[ "$version" =~ ^([0-9]+\.[0-9]+)\.[0-9]+$ ]] || { echo "lock.sh: '$version' is not X.Y.Z" >&2; exit 2; }
series=${BASH_REMATCH[1]}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache=${FARM_CACHE_DIR:-"$HOME/.cache/blender-farm"}
wheels="$cache/wheels/bpy-$version"
python=${PYTHON:-python3.11}

mkdir -p "$wheels"
"$python" -m pip download --disable-pip-version-check --quiet --dest "$wheels" \
  --no-deps --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux_2_28_x86_64 "bpy==$version" >&2

out="$here/$series.txt"
tmp="$(mktemp)"
{
  echo "# bpy $version (Blender $series LTS), the Blender Foundation's build from PyPI, for CPython"
  echo "# 3.11 on manylinux_2_28 x86_64, without its add-on dependencies (see the script). Made by"
  echo "# infra/bpy/lock.sh $version; Dockerfile.renderer installs it with pip --require-hashes --no-deps."
  for wheel in "$wheels"/bpy-"$version"-*.whl; do
    name="$(basename "$wheel")"
    dist="${name%%-*}"
    rest="${name#*-}"
    ver="${rest%%-*}"
    printf '%s %s %s\n' "$(echo "$dist" | tr '[:upper:]_' '[:lower:]-')" "$ver" "$wheel"
  done | sort | while read -r dist ver wheel; do
    hash="$("$python" -m pip hash --algorithm sha256 "$wheel" | sed -n 's/^--hash=//p')"
    printf '%s==%s \\\n    --hash=%s\n' "$dist" "$ver" "$hash"
  done
} >"$tmp"
mv "$tmp" "$out"
echo "$out"
