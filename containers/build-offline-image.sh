#!/usr/bin/env bash
# Build the generic sandbox image without any registry: debootstrap a Debian rootfs
# (from a Debian package mirror), `docker import` it, then build containers/Dockerfile
# on top. Used here and in CI; on a normal machine `docker build -f containers/Dockerfile`
# from a registry base image does the same job.
#
#   bash containers/build-offline-image.sh [--mirror URL] [TAG]   (default codemonkeys-sandbox:latest)
#   bash containers/build-offline-image.sh --print-mirror         (the mirror it would use)
#
# The Debian mirror is, in order: --mirror URL, $DEBIAN_MIRROR, else the one this host's apt
# uses (the first Debian "main" entry of /etc/apt/sources.list, sources.list.d/*.list or
# deb822 sources.list.d/*.sources; $APT_ETC_DIR overrides /etc/apt).
set -euo pipefail
TAG="codemonkeys-sandbox:latest"
MIRROR="${DEBIAN_MIRROR:-}"
PRINT_MIRROR=0
while [ $# -gt 0 ]; do
  case "$1" in
    --mirror) MIRROR="${2:?--mirror needs a URL}"; shift 2 ;;
    --mirror=*) MIRROR="${1#--mirror=}"; shift ;;
    --print-mirror) PRINT_MIRROR=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) TAG="$1"; shift ;;
  esac
done
BASE_TAG="codemonkeys-debian-base:bookworm"
HERE="$(cd "$(dirname "$0")" && pwd)"

host_apt_mirror() {
  # The URI of the first enabled Debian archive entry (a release suite with "main") in the
  # host's apt configuration, one-line and deb822 formats.
  python3 - "${APT_ETC_DIR:-/etc/apt}" <<'PY'
import re, sys
from pathlib import Path

etc = Path(sys.argv[1])
RELEASES = {"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
            "oldoldstable", "oldstable", "stable", "testing", "unstable"}

def debian(uri, suites, components):
    return uri.startswith(("http://", "https://", "file:/")) and "main" in components and any(
        s in RELEASES for s in suites)

def one_line(text):
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # [signed-by=... arch=...]
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "deb":
            yield parts[1], parts[2:3], parts[3:]

def deb822(text):
    for stanza in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split(), fields.get("components", "").split()

files = [etc / "sources.list"]
parts = etc / "sources.list.d"
if parts.is_dir():
    files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
for f in files:
    if not f.is_file():
        continue
    entries = deb822 if f.suffix == ".sources" else one_line
    for uri, suites, components in entries(f.read_text(errors="replace")):
        if debian(uri, suites, components):
            print(uri.rstrip("/"))
            sys.exit(0)
sys.exit(1)
PY
}

resolve_mirror() {
  [ -n "$MIRROR" ] && return 0
  MIRROR="$(host_apt_mirror)" || {
    echo "no Debian mirror found in ${APT_ETC_DIR:-/etc/apt} (sources.list, sources.list.d);" \
      "pass --mirror URL or set DEBIAN_MIRROR" >&2
    exit 2
  }
}
if [ "$PRINT_MIRROR" = 1 ]; then
  resolve_mirror
  echo "$MIRROR"
  exit 0
fi

if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  resolve_mirror
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
  ROOTFS="$(mktemp -d /tmp/codemonkeys-rootfs.XXXXXX)"
  trap 'rm -rf "$ROOTFS"' EXIT
  echo "debootstrap bookworm from $MIRROR into $ROOTFS ..."
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
