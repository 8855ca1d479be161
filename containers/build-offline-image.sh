#!/usr/bin/env bash
# Build the generic sandbox image without any registry: debootstrap a Debian rootfs
# (from Debian's package mirror), `docker import` it, then build containers/Dockerfile
# on top. Used here and in CI; on a normal machine `docker build -f containers/Dockerfile`
# from a registry base image does the same job.
#
#   bash containers/build-offline-image.sh [TAG]        (default codemonkeys-sandbox:latest)
set -euo pipefail
TAG="${1:-codemonkeys-sandbox:latest}"
BASE_TAG="codemonkeys-debian-base:bookworm"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HERE="$(cd "$(dirname "$0")" && pwd)"

if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
  ROOTFS="$(mktemp -d /tmp/codemonkeys-rootfs.XXXXXX)"
  trap 'rm -rf "$ROOTFS"' EXIT
  echo "debootstrap bookworm into $ROOTFS ..."
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,git,patch,procps,ca-certificates,coreutils \
    bookworm "$ROOTFS" "$MIRROR" >/tmp/codemonkeys-debootstrap.log 2>&1 \
    || { tail -30 /tmp/codemonkeys-debootstrap.log; exit 1; }
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$BASE_TAG"
fi
docker build -q -t "$TAG" --build-arg "BASE=$BASE_TAG" -f "$HERE/Dockerfile" "$HERE"
echo "built $TAG"
