#!/usr/bin/env bash
# One-GPU throughput check, sized for a 15-minute device slot (about 5 minutes of work on an H100):
# training tokens/s and MFU in bf16, and scoring solutions/s, on the synthetic world with
#   1. a Llama hidden 768 x 12 layers built from a config, and
#   2. the real SmolLM2-135M-Instruct directory (SMOLLM2_DIR, default
#      var/models/smollm2-135m-instruct), when it is there.
# One JSON report per model on stdout; nothing is downloaded.
#
#   benchmarks/gpu.sh                       # both models on the GPU
#   benchmarks/gpu.sh --synthetic-only      # only the 768 x 12 Llama
#   benchmarks/gpu.sh --device cpu --tiny   # smoke check without a GPU (SmolLM2 on 2 problems)
# Other flags go to `python -m training.prm.throughput` (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
SMOLLM2_DIR="${SMOLLM2_DIR:-var/models/smollm2-135m-instruct}"

args=()
real=1
tiny=0
for arg in "$@"; do
    case "$arg" in
        --synthetic-only) real=0 ;;
        --tiny) tiny=1; args+=("$arg") ;;
        *) args+=("$arg") ;;
    esac
done

echo "== synthetic Llama" >&2
"$PY" -m training.prm.throughput "${args[@]}"

if [ "$real" = 1 ]; then
    if [ -f "$SMOLLM2_DIR/config.json" ]; then
        echo "== $SMOLLM2_DIR" >&2
        extra=()
        # 135M parameters on a CPU: a couple of problems are enough to see it run.
        if [ "$tiny" = 1 ]; then extra=(--problems 2); fi
        "$PY" -m training.prm.throughput --base-model "$SMOLLM2_DIR" "${args[@]}" "${extra[@]}"
    else
        echo "== $SMOLLM2_DIR not found: SmolLM2 run skipped (set SMOLLM2_DIR)" >&2
    fi
fi
