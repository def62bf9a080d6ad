#!/usr/bin/env bash
# Build the PostgreSQL extensions the tests use from third_party/ and install them into the local
# PostgreSQL server (the newest in /usr/lib/postgresql): zhparser with SCWS (the production
# tokenizer of the word index; db/Dockerfile builds the same sources) and pgvector (Immich's
# vector type: the real Immich of tests/e2e, and smart search with `ocr`).
#
#   scripts/build-pg-extensions.sh          build what is missing (~10 s zhparser, ~40 s pgvector)
#   scripts/build-pg-extensions.sh --check  exit 0 when both are installed
#
# Needs root (apt-get for the build tools and server headers, `make install` into PostgreSQL's
# directories). Idempotent. Builds in $BUILD (default: a temporary folder).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=$ROOT/third_party
PGVECTOR_VERSION=$(sed -nE "s/^default_version = '(.*)'/\1/p" "$SRC/pgvector/vector.control")

major=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
[ -n "$major" ] || { echo "no PostgreSQL server found in /usr/lib/postgresql" >&2; exit 1; }
PG_CONFIG=/usr/lib/postgresql/$major/bin/pg_config
installed() {
  case $1 in
    zhparser) [ -f "$("$PG_CONFIG" --sharedir)/extension/zhparser.control" ] && [ -f "$("$PG_CONFIG" --pkglibdir)/zhparser.so" ] ;;
    pgvector) grep -qx "default_version = '$PGVECTOR_VERSION'" "$("$PG_CONFIG" --sharedir)/extension/vector.control" 2>/dev/null &&
      [ -f "$("$PG_CONFIG" --pkglibdir)/vector.so" ] ;;
  esac
}
if [ "${1:-}" = "--check" ]; then installed zhparser && installed pgvector; exit; fi
missing=()
for extension in zhparser pgvector; do installed "$extension" || missing+=("$extension"); done
if ((${#missing[@]} == 0)); then echo "zhparser and pgvector $PGVECTOR_VERSION are installed (PostgreSQL $major)"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "installing ${missing[*]} into PostgreSQL $major needs root" >&2; exit 1; }

need=()
for package in autoconf automake libtool make gcc pkg-config "postgresql-server-dev-$major"; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
BUILD=${BUILD:-$(mktemp -d)}
mkdir -p "$BUILD"
run() {  # run a build step quietly; on failure show the end of its log
  local log=$BUILD/$1.log; shift
  "$@" >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
}

if ! installed zhparser; then
  rm -rf "$BUILD/scws" "$BUILD/zhparser" && cp -r "$SRC/scws" "$SRC/zhparser" "$BUILD/"
  cd "$BUILD/scws"
  # SCWS's Makefile.am carries maintainer-only rules that current automake refuses.
  sed -i '/^sync-web:/,$d' Makefile.am
  touch README INSTALL
  run scws sh -c 'libtoolize --copy --force && aclocal && autoheader && automake --add-missing --copy --force && autoconf'
  run scws ./configure --prefix="$BUILD/scws-root"
  run scws make -j"$(nproc)"
  run scws make install
  # The dictionary from SCWS's own word list, made as db/Dockerfile makes it.
  python3 "$ROOT/db/scws_dictionary.py" dev/dict/w.txt "$BUILD/dict.txt"
  "$BUILD/scws-root/bin/scws-gen-dict" -c utf8 -i "$BUILD/dict.txt" -o "$BUILD/zhparser/dict.utf8.xdb" >/dev/null
  cd "$BUILD/zhparser"
  libdir=$("$PG_CONFIG" --pkglibdir)
  cp "$BUILD"/scws-root/lib/libscws.so* "$libdir/"
  run zhparser make PG_CONFIG="$PG_CONFIG" SCWS_HOME="$BUILD/scws-root" SHLIB_LINK="-L$BUILD/scws-root/lib -lscws -Wl,-rpath,$libdir"
  run zhparser make PG_CONFIG="$PG_CONFIG" SCWS_HOME="$BUILD/scws-root" install
  echo "zhparser installed into PostgreSQL $major"
fi
if ! installed pgvector; then
  rm -rf "$BUILD/pgvector" && cp -r "$SRC/pgvector" "$BUILD/"
  run pgvector make -C "$BUILD/pgvector" PG_CONFIG="$PG_CONFIG" -j"$(nproc)"
  run pgvector make -C "$BUILD/pgvector" PG_CONFIG="$PG_CONFIG" install
  echo "pgvector $PGVECTOR_VERSION installed into PostgreSQL $major"
fi
