#!/usr/bin/env bash
# Draws the Render Farm panel in Blender's own UI and saves it as a PNG (the README's picture):
#
#   blender-addon/screenshot.sh [OUT.png]     (default: blender-addon/panel.png)
#
# Needs `blender` (Debian's 3.4 is enough: the add-on also registers as a legacy add-on) and
# `xvfb-run` (Debian package xvfb): Blender draws into a virtual X server, and
# blender-addon/screenshot.py saves the Render properties area with the panel open.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$(realpath -m "${1:-$HERE/panel.png}")"
command -v blender >/dev/null || { echo "screenshot.sh: blender is not on PATH" >&2; exit 1; }
command -v xvfb-run >/dev/null || {
  echo "screenshot.sh: xvfb-run is not installed (apt-get install xvfb xauth)" >&2
  exit 1
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# The add-on as a legacy add-on of a scripts folder of its own; a saved scene (no splash).
mkdir -p "$WORK/scripts/addons" "$WORK/proj/shots"
ln -s "$HERE" "$WORK/scripts/addons/render_farm"
blender -b --factory-startup \
  --python-expr "import bpy; bpy.ops.wm.save_as_mainfile(filepath='$WORK/proj/shots/shot.blend')" \
  >"$WORK/save.log" 2>&1 || { cat "$WORK/save.log" >&2; exit 1; }

BLENDER_USER_SCRIPTS="$WORK/scripts" timeout 120 \
  xvfb-run -a -s "-screen 0 1000x760x24" \
  blender --factory-startup "$WORK/proj/shots/shot.blend" \
  --python "$HERE/screenshot.py" -- "$OUT" >"$WORK/blender.log" 2>&1 || {
  cat "$WORK/blender.log" >&2
  exit 1
}
grep -q "^screenshot: " "$WORK/blender.log" || {
  cat "$WORK/blender.log" >&2
  echo "screenshot.sh: Blender wrote no screenshot" >&2
  exit 1
}
grep "^screenshot: " "$WORK/blender.log"
