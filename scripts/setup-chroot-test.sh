#!/usr/bin/env bash
# Proves scripts/setup.sh works on a stock Debian 12: runs `scripts/setup.sh --tools-only` as root
# in a fresh Debian 12 (bookworm, minbase) root made with debootstrap, then checks from there that
# moto_server, aws, cfn-lint, checkov, hadolint and cargo-lambda (with its zig) run.
#
#   scripts/setup-chroot-test.sh      # needs root (or sudo), chroot and mount; installs debootstrap
#
# The debootstrapped root is cached as a tarball, and apt's and pip's downloads are kept, all under
# FARM_CACHE_DIR (default ~/.cache/blender-farm), so a rerun (and CI with that folder cached)
# neither debootstraps nor downloads the packages again. The root itself is fresh every run.
# The chroot gets the host's DNS, CA bundle and apt network settings (Acquire::*), nothing more;
# the Rust toolchain is not installed there, so `cargo lambda` runs as `cargo-lambda lambda`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    exec sudo --preserve-env=FARM_CACHE_DIR,PIP_CERT,PIP_INDEX_URL "HOME=$HOME" "$0" "$@"
fi

cache=${FARM_CACHE_DIR:-"$HOME/.cache/blender-farm"}
tarball="$cache/debian12-minbase.tar.gz"
pip_cache="$cache/chroot-pip-cache"
apt_cache="$cache/chroot-apt-archives"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { echo "setup-chroot-test: $*" >&2; }
fail() {
    log "FAILED: $*"
    exit 1
}

mkdir -p "$cache" "$pip_cache" "$apt_cache/partial"
if [ ! -f "$tarball" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
    fi
    build=$(mktemp -d)
    log "debootstrap --variant=minbase bookworm (once; cached as $tarball)"
    debootstrap --variant=minbase bookworm "$build/root" "$mirror" >"$build/debootstrap.log" 2>&1 ||
        { tail -n 30 "$build/debootstrap.log" >&2; rm -rf "$build"; fail "debootstrap failed"; }
    tar -C "$build/root" -czf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$build"
fi

root=$(mktemp -d /tmp/farm-chroot.XXXXXX)
mounted=()
cleanup() {
    local status=$? i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -l "${mounted[$i]}" 2>/dev/null || true
    done
    # Only remove the root once nothing of the host is mounted inside it.
    if ! grep -q " $root/" /proc/mounts; then rm -rf "$root"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -C "$root" -xzf "$tarball"
mount_in() { # type-or-bind, source, target inside the root
    mkdir -p "$root$3"
    if [ "$1" = bind ]; then mount --bind "$2" "$root$3"; else mount -t "$1" "$2" "$root$3"; fi
    mounted+=("$root$3")
}
mount_in proc proc /proc
mount_in bind /dev /dev
mount_in bind /dev/pts /dev/pts
mount_in bind "$apt_cache" /var/cache/apt/archives
mount_in bind "$pip_cache" /var/cache/farm-pip
mkdir -p "$root/opt/farm/scripts"
cp scripts/setup.sh scripts/env.sh "$root/opt/farm/scripts/"
# The host's network settings: DNS, apt's Acquire options (e.g. a proxy), its CA bundle.
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
apt-config dump Acquire >"$root/etc/apt/apt.conf.d/99host-network" 2>/dev/null || true
chroot_env=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    PIP_CACHE_DIR=/var/cache/farm-pip)
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/host-ca.crt"
    chroot_env+=(PIP_CERT=/etc/host-ca.crt)
fi
for var in PIP_INDEX_URL http_proxy https_proxy no_proxy; do
    if [ -n "${!var:-}" ]; then chroot_env+=("$var=${!var}"); fi
done

in_root() { chroot "$root" /usr/bin/env -i "${chroot_env[@]}" "$@"; }

started=$SECONDS
in_root /bin/bash /opt/farm/scripts/setup.sh --tools-only || fail "scripts/setup.sh --tools-only failed in the Debian 12 root"
log "setup.sh --tools-only took $((SECONDS - started)) s in the Debian 12 root"

# No pyenv, no pip outside the environment: the system Python is Debian's own.
# shellcheck disable=SC2016 # these run in the root's shell
in_root /bin/bash -c '! command -v pyenv && [ "$(command -v python3)" = /usr/bin/python3 ]' >/dev/null ||
    fail "the Debian 12 root has a Python other than Debian's"
# shellcheck disable=SC2016
in_root /bin/bash -c '
    set -euo pipefail
    source /opt/farm/scripts/env.sh
    for tool in moto_server aws cfn-lint checkov hadolint cargo-lambda zig ruff; do
        path=$(command -v "$tool") || { echo "$tool is not on PATH" >&2; exit 1; }
        case "$path" in "$FARM_TOOLS_BIN"/*) ;; *) echo "$tool is $path, not in $FARM_TOOLS_BIN" >&2; exit 1 ;; esac
    done
    moto_server --help >/dev/null
    aws --version
    cfn-lint --version
    echo "checkov $(checkov --version)"
    hadolint --version
    cargo-lambda lambda --version
    echo "zig $(zig version)"
    ruff --version
' || fail "a tool does not run in the Debian 12 root"
log "ok: moto_server, aws, cfn-lint, checkov, hadolint, cargo-lambda, zig and ruff run on a stock Debian 12"
