#!/usr/bin/env bash
# Writes the hash-pinned lock of one Blender series, which Dockerfile.renderer installs with
# `pip install --require-hashes`:
#
#   infra/bpy/lock.sh 4.2.23    # -> infra/bpy/4.2.txt
#   infra/bpy/lock.sh 4.5.15    # -> infra/bpy/4.5.txt
#   infra/bpy/lock.sh 5.0.1     # -> infra/bpy/5.0.txt
#   infra/bpy/lock.sh 5.3.0     # -> infra/bpy/5.3.txt
#
# It downloads the `bpy==<version>` wheel for its CPython on manylinux_2_28 x86_64 from PyPI with
# pip, and records its SHA-256 (`pip hash`): CPython 3.11 (Debian 12's) up to bpy 5.0, 3.13
# (Debian 13's) from bpy 5.1, the only ones the Blender Foundation builds them for. pip only
# downloads for the other Python, so any Python with pip runs this script.
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
python=${PYTHON:-python3}
case "$series" in
    [0-4].* | 5.0) cpython=3.11 ;;
    *) cpython=3.13 ;;
esac

mkdir -p "$wheels"
"$python" -m pip download --disable-pip-version-check --quiet --dest "$wheels" \
  --no-deps --only-binary=:all: --python-version "$cpython" --implementation cp \
  --abi "cp${cpython/./}" --platform manylinux_2_28_x86_64 "bpy==$version" >&2

out="$here/$series.txt"
tmp="$(mktemp)"
{
  echo "# bpy $version (Blender $series), the Blender Foundation's build from PyPI, for CPython"
  echo "# $cpython on manylinux_2_28 x86_64, without its add-on dependencies (see the script). Made by"
  echo "# infra/bpy/lock.sh $version; Dockerfile.renderer installs it with pip --require-hashes --no-deps."
  for wheel in "$wheels"/bpy-"$version"-*.whl; do
    echo "# download: $(stat -c %s "$wheel") bytes (the wheel)"
  done
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
