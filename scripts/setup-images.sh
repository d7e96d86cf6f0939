#!/usr/bin/env bash
# Set-up for building and running the container images (infra/images.sh, the e2e image test);
# scripts/setup.sh calls it. Idempotent.
#
# - buildah (builds the Dockerfiles without a daemon), podman (runs the images), debootstrap
#   (makes the base image from Debian's archive when no registry is reachable), runc and the
#   CNI plugins (what buildah's RUN steps and podman's containers run on).
# - The container runtime is runc: Debian 12's default, crun 1.8, refuses machines whose cgroups
#   are in hybrid v1/v2 mode (this one and CI's), runc runs on both.
set -euo pipefail

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(buildah podman debootstrap runc containernetworking-plugins uidmap)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-images: installing ${missing[*]} with apt-get"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

conf=/etc/containers/containers.conf
if [ ! -f "$conf" ]; then
    echo "setup-images: $conf: runtime runc"
    sudo_if_needed mkdir -p /etc/containers
    printf '[engine]\nruntime = "runc"\n' | sudo_if_needed tee "$conf" >/dev/null
elif ! grep -q '^runtime *= *"runc"' "$conf"; then
    echo "setup-images: $conf exists and does not choose runc; left as it is" >&2
fi
echo "setup-images: $(buildah --version), $(podman --version), storage driver $(buildah info --format '{{.store.GraphDriverName}}' 2>/dev/null || echo '?')"
