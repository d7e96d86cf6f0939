#!/usr/bin/env bash
# Builds the farm's container images from the repository's Dockerfiles.
#
#   infra/images.sh build [--profile P | --binaries DIR] [--blender SERIES]... [--pull]
#       Builds the `renderer` and `zipper` binaries (cargo, profile P, default release; or takes
#       those already built in DIR, as the e2e image test does), then
#       localhost/farm-renderer:dev (Blender 4.2 LTS, the Dockerfile's default) and
#       localhost/farm-zipper:dev into the machine's container storage, where `buildah images` and
#       `podman images` list them. `--blender 4.5` (repeatable; 4.5, 5.0, 5.3) builds
#       localhost/farm-renderer:dev-4.5 as well. Series up to 5.0 run on Debian 12 (bookworm,
#       CPython 3.11), later ones on Debian 13 (trixie, CPython 3.13): bpy's wheels exist for one
#       CPython each.
#       --pull takes the base image from its registry (docker always does): infra/deploy.sh.
#   infra/images.sh binaries [--profile P]
#       Only the binaries, staged in target/images/ (what the Dockerfiles copy).
#   infra/images.sh base [SUITE]
#       Only the base image of SUITE, bookworm (default) or trixie (see below).
#
# Engine: buildah when present, else podman, else docker (FARM_IMAGE_ENGINE overrides).
#
# The binaries are built on the host beforehand, not in a builder stage (ADR 0104): the images
# are Debian 12 (glibc 2.36), and the build refuses a binary that needs a newer glibc.
#
# Base image, TEST-ONLY path: with buildah or podman and without --pull, when
# `debian:<suite>-slim` is not in the container storage (no registry is reachable in this
# project's CI), it is made here with debootstrap from Debian's archive (minbase bookworm or
# trixie, trimmed like Debian's slim images) and tagged docker.io/library/debian:<suite>-slim,
# the name the Dockerfiles use. The root
# filesystem is cached as a tarball under ${FARM_CACHE_DIR:-~/.cache/blender-farm}/images and
# re-made after 7 days (FARM_BASE_MAX_AGE_DAYS). Real deployments pull Debian's own image
# (infra/deploy.sh); nothing else uses this one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CACHE="${FARM_CACHE_DIR:-$HOME/.cache/blender-farm}"
# The binaries run on both suites: they may need no newer glibc than bookworm's.
BASE_GLIBC=2.36
DEFAULT_SERIES=4.2
SUPPORTED_SERIES=(4.2 4.5 5.0 5.3)
STAGE=target/images

log() { printf 'images.sh: %s\n' "$*" >&2; }
die() {
  printf 'images.sh: %s\n' "$*" >&2
  exit 1
}

# The Debian suite whose python3 a series' bpy wheel is built for.
suite_of() {
  case "$1" in
    [0-4].* | 5.0) echo bookworm ;;
    *) echo trixie ;;
  esac
}

base_image() { echo "docker.io/library/debian:$1-slim"; }

engine() {
  if [[ -n "${FARM_IMAGE_ENGINE:-}" ]]; then
    echo "$FARM_IMAGE_ENGINE"
  elif command -v buildah >/dev/null 2>&1; then
    echo buildah
  elif command -v podman >/dev/null 2>&1; then
    echo podman
  elif command -v docker >/dev/null 2>&1; then
    echo docker
  else
    die "no container engine: install buildah (apt-get install buildah), podman or docker"
  fi
}

# The newest GLIBC_x.y symbol version a binary needs.
glibc_needed() {
  objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1
}

# ---------------------------------------------------------------- binaries
# binaries PROFILE [DIR]: builds with cargo (or takes the binaries already built in DIR) and
# stages them.
binaries() {
  local profile="$1" dir="${2:-}"
  [[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] ||
    die "the images run linux/amd64 binaries: build them on x86_64 Linux (this is $(uname -s)-$(uname -m))"
  if [[ -z "$dir" ]]; then
    case "$profile" in
      dev | test) dir=target/debug ;;
      *) dir="target/$profile" ;;
    esac
    log "cargo build --locked --profile $profile -p renderer -p zipper"
    cargo build --quiet --locked --profile "$profile" -p renderer -p zipper
  fi
  mkdir -p "$STAGE"
  for bin in renderer zipper; do
    local built="$dir/$bin" needed
    [[ -x "$built" ]] || die "cargo did not build $built"
    needed="$(glibc_needed "$built")"
    if [[ "$(printf '%s\n%s\n' "$needed" "$BASE_GLIBC" | sort -V | tail -n 1)" != "$BASE_GLIBC" ]]; then
      die "$built needs glibc $needed, the images have $BASE_GLIBC (Debian 12): build on Debian 12 or older"
    fi
    # Copied, not linked: the build context must hold the file itself.
    cp -f "$built" "$STAGE/$bin.tmp"
    mv -f "$STAGE/$bin.tmp" "$STAGE/$bin"
  done
  log "staged $STAGE/renderer and $STAGE/zipper from $dir (glibc <= $BASE_GLIBC)"
}

# ---------------------------------------------------------------- base image (test-only path)
has_image() {
  local engine="$1" name="$2"
  case "$engine" in
    buildah) buildah inspect --type image "$name" >/dev/null 2>&1 ;;
    podman | docker) "$engine" image inspect "$name" >/dev/null 2>&1 ;;
  esac
}

base() {
  local engine="$1" suite="${2:-bookworm}" image
  [[ "$suite" == bookworm || "$suite" == trixie ]] || die "base: unknown suite $suite (bookworm or trixie)"
  image="$(base_image "$suite")"
  if has_image "$engine" "$image"; then
    return
  fi
  [[ "$engine" != docker ]] ||
    die "$image is missing: docker pulls it itself (docker pull $image)"
  local tarball="$CACHE/images/debian-$suite-slim.tar"
  local max_age="${FARM_BASE_MAX_AGE_DAYS:-7}"
  if [[ -f "$tarball" ]] && [[ -n "$(find "$tarball" -mtime "-$max_age")" ]]; then
    log "base image from the cached $tarball"
  else
    make_base_tarball "$tarball" "$suite"
  fi
  local container
  container="$(buildah from scratch)"
  buildah add --quiet "$container" "$tarball" / >/dev/null
  buildah config --cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label org.opencontainers.image.description="debootstrap $suite minbase made by infra/images.sh (test-only)" \
    "$container"
  buildah commit --quiet --rm "$container" "$image" >/dev/null
  log "tagged $image (debootstrap, test-only)"
}

make_base_tarball() {
  local tarball="$1" suite="$2" rootfs
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is required (apt-get install debootstrap)"
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
  mkdir -p "$(dirname "$tarball")"
  rootfs="$(mktemp -d "${TMPDIR:-/var/tmp}/farm-rootfs.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the trap must remove this rootfs
  trap "rm -rf '$rootfs'" EXIT
  log "debootstrap --variant=minbase $suite (about 80 s)"
  debootstrap --variant=minbase "$suite" "$rootfs" http://deb.debian.org/debian >/dev/null
  # What Debian's slim images leave out, and the package sources they have.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,groff,lintian,linda}/* \
    "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/*
  : >"$rootfs/etc/hostname"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" .
  mv -f "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
  trap - EXIT
  log "cached the root filesystem as $tarball ($(du -h "$tarball" | cut -f1))"
}

# ---------------------------------------------------------------- images
# Extra arguments for buildah/podman builds: pip's download cache, kept outside the repository
# (${FARM_CACHE_DIR}/pip), and a TLS-intercepting proxy's CA bundle for pip in RUN steps (FARM_BUILD_CA_BUNDLE, default $PIP_CERT), bind-mounted with a pip.conf naming it, so it
# never lands in an image layer.
build_mounts() {
  mkdir -p "$CACHE/pip"
  printf '%s\n' --volume "$CACHE/pip:/root/.cache/pip"
  local bundle="${FARM_BUILD_CA_BUNDLE:-${PIP_CERT:-}}"
  [[ -n "$bundle" ]] || return 0
  [[ -f "$bundle" ]] || die "FARM_BUILD_CA_BUNDLE/PIP_CERT $bundle is not a file"
  local conf="$CACHE/images/pip-build.conf"
  mkdir -p "$(dirname "$conf")"
  printf '[global]\ncert = /etc/farm-build-ca.crt\n' >"$conf"
  printf '%s\n' --volume "$bundle:/etc/farm-build-ca.crt:ro" --volume "$conf:/etc/pip.conf:ro"
}

build_image() {
  local engine="$1" dockerfile="$2" tag="$3" mounts=()
  shift 3
  log "$engine build -f $dockerfile -t $tag $*"
  if [[ "$engine" != docker ]]; then mapfile -t mounts < <(build_mounts); fi
  case "$engine" in
    buildah)
      # --layers: unchanged steps (the bpy install above all) are reused from the last build.
      # Docker's image format keeps SHELL (OCI's drops it); host network for RUN steps.
      buildah build --quiet --layers "--pull=${PULL:+true}${PULL:-false}" --format docker --network host \
        ${mounts[@]+"${mounts[@]}"} -f "$dockerfile" -t "$tag" "$@" . >/dev/null ;;
    podman)
      podman build --quiet --layers "--pull=${PULL:+newer}${PULL:-missing}" --format docker --network host \
        ${mounts[@]+"${mounts[@]}"} -f "$dockerfile" -t "$tag" "$@" . >/dev/null ;;
    docker)
      DOCKER_BUILDKIT=1 docker build --quiet --pull --platform linux/amd64 -f "$dockerfile" -t "$tag" "$@" . >/dev/null ;;
  esac
}

build() {
  local profile=release prebuilt="" series=() engine
  PULL=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --pull) PULL=1; shift ;;
      --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
      --binaries) prebuilt="${2:?--binaries needs a folder}"; shift 2 ;;
      --blender)
        local want="${2:?--blender needs a series, e.g. 4.5}" ok=""
        for s in "${SUPPORTED_SERIES[@]}"; do [[ "$s" == "$want" ]] && ok=1; done
        [[ -n "$ok" ]] || die "--blender $want: supported are ${SUPPORTED_SERIES[*]}"
        series+=("$want"); shift 2 ;;
      *) die "build: unknown argument $1 (usage: infra/images.sh build [--profile P | --binaries DIR] [--blender SERIES]... [--pull])" ;;
    esac
  done
  engine="$(engine)"
  binaries "$profile" "$prebuilt"
  if [[ -z "$PULL" && "$engine" != docker ]]; then
    base "$engine" bookworm
    for s in ${series[@]+"${series[@]}"}; do base "$engine" "$(suite_of "$s")"; done
  fi
  local started=$SECONDS
  build_image "$engine" Dockerfile.renderer localhost/farm-renderer:dev \
    --build-arg "BLENDER_SERIES=$DEFAULT_SERIES"
  for s in ${series[@]+"${series[@]}"}; do
    [[ "$s" == "$DEFAULT_SERIES" ]] && continue
    build_image "$engine" Dockerfile.renderer "localhost/farm-renderer:dev-$s" \
      --build-arg "BLENDER_SERIES=$s" --build-arg "DEBIAN_SUITE=$(suite_of "$s")"
  done
  build_image "$engine" Dockerfile.zipper localhost/farm-zipper:dev
  log "built in $((SECONDS - started)) s:"
  "$engine" images --filter reference='localhost/farm-*' >&2
}

command="${1:-}"
[[ $# -gt 0 ]] && shift
case "$command" in
  build) build "$@" ;;
  binaries)
    profile=release
    if [[ "${1:-}" == --profile ]]; then profile="${2:?--profile needs a value}"; fi
    binaries "$profile" ;;
  base) base "$(engine)" "${1:-bookworm}" ;;
  *) die "usage: infra/images.sh build [--profile P | --binaries DIR] [--blender SERIES]... [--pull] | binaries [--profile P] | base [SUITE]" ;;
esac
