# shellcheck shell=bash
# Puts the tools scripts/setup.sh installs on PATH. Source it from bash:
#
#   source scripts/env.sh      # then moto_server, aws, cfn-lint, checkov, hadolint, cargo-lambda, zig, ruff
#
# The tools live in a virtual environment outside the repository (FARM_CACHE_DIR, default
# ~/.cache/blender-farm); their bin folder, which holds only these commands (not the
# environment's python3), goes first on PATH. scripts/test.sh and scripts/example.sh source this.
FARM_TOOLS_BIN="${FARM_CACHE_DIR:-$HOME/.cache/blender-farm}/tools/bin"
case ":$PATH:" in
    *":$FARM_TOOLS_BIN:"*) ;;
    *) PATH="$FARM_TOOLS_BIN:$PATH" ;;
esac
export PATH FARM_TOOLS_BIN
