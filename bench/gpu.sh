#!/usr/bin/env bash
# CLIP on a CUDA device (bench/gpu.py): throughput with and without micro-batching, fp16 vs fp32.
# On a bare machine with a GPU: installs the project (pip takes a CUDA build of torch), then runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ ! -x .venv-gpu/bin/python ]; then
  python3 -m venv .venv-gpu
  .venv-gpu/bin/pip install --quiet -e ".[ai]"
fi
command -v fc-list >/dev/null && fc-list | grep -qiE 'wqy|noto sans cjk' || echo "note: no CJK font; the test image needs fonts-wqy-microhei" >&2
.venv-gpu/bin/python -m bench.gpu
