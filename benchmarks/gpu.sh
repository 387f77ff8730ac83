#!/usr/bin/env bash
# One-GPU throughput check (< 5 min on an H100): training tokens/s, MFU estimate, scoring
# solutions/s in bf16, on the synthetic world and a mid-size Llama built from a config.
# Nothing is downloaded. Smoke check without a GPU:  benchmarks/gpu.sh --device cpu --tiny
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
exec "$PY" -m training.prm.throughput "$@"
