#!/usr/bin/env bash
# The slower check of the Blender series CI leaves out (CI runs Debian's 3.4 executable, bpy
# 4.2.23 and bpy 5.0.1; see README, "Blender series in the tests"): the hostile-file tests and
# the test kit's scene tests on each bpy of FARM_TEST_BPY, default 4.5.15 and 5.3.0.
#
#   scripts/test-series.sh
#   FARM_TEST_BPY="5.3.0" PYTHON=python3.13 scripts/test-series.sh
#   scripts/test-series.sh --images     also the renderer image of each series of
#                                       FARM_TEST_IMAGE_SERIES (default 5.3), built beforehand
#                                       with `infra/images.sh build --blender 5.3`: a file saved
#                                       by the image's own Blender rendered as Batch runs it
#
# bpy 5.1 and later exist for CPython 3.13 only: scripts/bpy-venv.sh needs a python3.13 (PYTHON,
# or Debian 13's python3); the venvs are cached, so only the first run downloads them.
set -euo pipefail
cd "$(dirname "$0")/.."
export FARM_TEST_BPY="${FARM_TEST_BPY:-4.5.15 5.3.0}"
for version in $FARM_TEST_BPY; do
    scripts/bpy-venv.sh "$version" >/dev/null
done
cargo test --locked -p farm-e2e --test hostile
cargo test --locked -p farm-testkit --test scenes
if [[ "${1:-}" == --images ]]; then
    cargo test --locked -p farm-e2e --test images -- --ignored each_series_image
fi
