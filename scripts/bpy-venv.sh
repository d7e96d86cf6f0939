#!/usr/bin/env bash
# Makes (once) a virtual environment holding the Blender Foundation's official `bpy` module from
# PyPI and prints the path of its Python, in which `import bpy` works:
#
#   scripts/bpy-venv.sh 4.2.23      # -> ~/.cache/blender-farm/bpy-4.2.23/bin/python
#
# bpy wheels exist for one CPython each (manylinux_2_28): 3.11 up to bpy 5.0, 3.13 from bpy 5.1
# (PYTHON overrides the choice; with pyenv, PYENV_VERSION=3.13.x works). The environments live outside the
# repository (FARM_CACHE_DIR, default ~/.cache/blender-farm) so CI can cache them; a finished
# environment is marked by a stamp file, so an interrupted install is redone, never half used.
set -euo pipefail

version=${1:?usage: scripts/bpy-venv.sh <bpy version, e.g. 4.2.23>}
cache=${FARM_CACHE_DIR:-"$HOME/.cache/blender-farm"}
venv="$cache/bpy-$version"
stamp="$venv/.farm-ready"

if [ ! -f "$stamp" ]; then
    case "$version" in
        [0-4].* | 5.0.*) want=python3.11 ;;
        *) want=python3.13 ;;
    esac
    python=${PYTHON:-$want}
    "$python" -c 'import venv' 2>/dev/null || { echo "bpy-venv: $python not found (bpy $version needs CPython ${want#python})" >&2; exit 1; }
    rm -rf "$venv"
    mkdir -p "$cache"
    "$python" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "bpy==$version" >&2
    "$venv/bin/python" -c 'import bpy' >&2
    touch "$stamp"
fi
echo "$venv/bin/python"
