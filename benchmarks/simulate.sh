#!/usr/bin/env bash
# Active learning vs uniform selection with the synthetic oracle (BENCHMARKS.md, "Simulation"):
# twenty paired seeds, a control arm (wrong answers in random order), and the bootstrap interval of
# the data-efficiency ratio over the seeds. The baseline is the uniform arm of the same seed: same
# pool, same round-1 batch, same per-round budget. The arms run on the platform's own selection
# SQL and training-data builder, in a scratch database the command creates and drops.
# Outputs: benchmarks/results/simulation/{summary.md,summary.json,seed-N/simulation.*}
set -euo pipefail
cd "$(dirname "$0")/.."
exec python manage.py simulate_rounds \
  --oracle synthetic --seeds $(seq -s " " 0 19) --control \
  --rounds 5 --per-round 30 --pool-problems 100 --samples-per-problem 8 --heldout-problems 40 \
  --backbone-hidden 64 --backbone-layers 2 --epochs 4 --learning-rate 3e-3 --threads 1 \
  --out benchmarks/results/simulation "$@"
