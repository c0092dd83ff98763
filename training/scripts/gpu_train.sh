#!/usr/bin/env bash
# One device call: train every stage of the full model, evaluate, write checkpoint + metrics to $OUT.
# Usage on the GPU machine (repo root): bash training/scripts/gpu_train.sh
set -euo pipefail
OUT="${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
PYTHONUNBUFFERED=1 python3 -m rehyat.train --preset full --out "$OUT" --eval --deadline-s 500 2>&1 | tee "$OUT/train.log"
