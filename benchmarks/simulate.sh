#!/usr/bin/env bash
# Active learning vs uniform selection with the synthetic oracle (BENCHMARKS.md, "Simulation").
# The baseline is the uniform arm of the same run: same pool, same per-round budget, same seed.
# Outputs: benchmarks/results/simulation/simulation.{csv,md,json,png}
set -euo pipefail
cd "$(dirname "$0")/.."
exec python manage.py simulate_rounds \
  --oracle synthetic --seed 0 \
  --rounds 5 --per-round 30 --pool-problems 100 --samples-per-problem 8 --heldout-problems 40 \
  --backbone-hidden 64 --backbone-layers 2 --epochs 4 --learning-rate 3e-3 --threads 2 \
  --out benchmarks/results/simulation "$@"
