#!/usr/bin/env bash
# For users online: fetch the Immich release sources the end-to-end tests build (the pinned
# release commit) into DEST (default .immich-sources, where the tests look), as the archive
# scripts/build-immich.sh reads. The download is checked: the sha256 of the files the build
# depends on (Immich's pnpm lock file and server manifest). pgvector is in third_party/.
#
#   scripts/fetch-immich.sh VERSION [DEST]      VERSION: 3.1.0 or 2.7.5
set -euo pipefail
VERSION=${1:?usage: scripts/fetch-immich.sh 3.1.0|2.7.5 [DEST]}
DEST=${2:-$(cd "$(dirname "$0")/.." && pwd)/.immich-sources}
case "$VERSION" in
  3.1.0) COMMIT=8aa95c67470a02a8ddedf03c2e52963af33065ff
    LOCK=ee263bbe6b9250a2861e3bc585f80ebc171d1a96c6c1e6bac26b98c481d5c4e4
    MANIFEST=3bb4204e3d413fa688b5135718f5dd9d39f30137d5dbedcdb6d6d5534404fd31 ;;
  2.7.5) COMMIT=95e57a24cb11b4bcff39b770ae2d81443434c210
    LOCK=26380e9d47bbcd5869f82d8f0d0a2d81da2af4926fb3960407231985b2b14d83
    MANIFEST=5a956ec4a6d1eb90d08689f83016a740f42ee21e8f8c58904979b14b6b1af19a ;;
  *) echo "unknown VERSION $VERSION (3.1.0 or 2.7.5)" >&2; exit 2 ;;
esac
mkdir -p "$DEST"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check() { # FILE SHA256
  echo "$2  $1" | sha256sum -c --quiet - || { echo "sha256 mismatch: $1" >&2; exit 1; }
}

curl -fsSL "https://github.com/immich-app/immich/archive/$COMMIT.tar.gz" -o "$work/immich.tar.gz"
tar -xzf "$work/immich.tar.gz" -C "$work"
check "$work/immich-$COMMIT/pnpm-lock.yaml" "$LOCK"
check "$work/immich-$COMMIT/server/package.json" "$MANIFEST"
mv "$work/immich.tar.gz" "$DEST/immich-v$VERSION.tar.gz"

echo "Immich $VERSION sources in $DEST: the end-to-end tests find them there (or set IMMICH_SOURCES=$DEST)"
