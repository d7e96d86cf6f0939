# shellcheck shell=bash
# The persistent-data benchmarks' scenes (issue 27, ADR 0015), sourced by
# farm-cli/bench/persistent.sh and renderer/bench/persistent.sh: one table, made by
# farm-testkit/scenes/geometry_scene.py with Debian's `blender`.
#   heavy     static geometry: 6 monkeys at render subdivision 4, moving cube and camera
#   light     static geometry: 6 monkeys at render subdivision 1, moving cube and camera
#   deforming 6 monkeys at subdivision 3 bent and waved every frame, motion blur

# make_persistent_scene NAME FRAMES OUT.blend
make_persistent_scene() {
    local kind levels
    case $1 in
        heavy) kind=static levels=4 ;;
        light) kind=static levels=1 ;;
        deforming) kind=deforming levels=3 ;;
        *) echo "unknown scene $1 (heavy, light, deforming)" >&2; return 2 ;;
    esac
    blender -b --factory-startup --python farm-testkit/scenes/geometry_scene.py -- \
        "{\"output\": \"$3\", \"kind\": \"$kind\", \"end\": $2, \"width\": 160, \"height\": 90, \"samples\": 8, \"objects\": 6, \"levels\": $levels}" >/dev/null 2>&1
}
