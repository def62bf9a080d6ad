#!/usr/bin/env bash
# Start the AI service (8060) and the gateway (8080) on the CPU; Ctrl-C stops both.
set -euo pipefail
BIN=${BIN:-.venv/bin}
export DEVICE=${DEVICE:-cpu}

"$BIN/python" -m mt_photos_ai &
ai=$!
"$BIN/python" -m gateway &
gateway=$!
trap 'kill "$ai" "$gateway" 2>/dev/null; wait' INT TERM EXIT
echo "AI service: http://localhost:${HTTP_PORT:-8060}  gateway: http://localhost:${PORT:-8080}  (Ctrl-C stops both)"
wait -n "$ai" "$gateway"
