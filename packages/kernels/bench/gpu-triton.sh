#!/usr/bin/env bash
# The Triton half of a GPU round for @rehyat/kernels (run from the repo root on the device machine,
# python3 with torch + Triton there; no Node needed): checks the Triton kernels against float64 and
# times a sweep of tile configurations (bench/triton_check.py, with PyTorch SDPA on the same card),
# regenerates the PTX header from the fastest correct configurations, rebuilds the CUDA op library
# and kernel_bench with it, and runs kernel_bench (Triton path vs the hand-written kernels: agreement
# and timings). At most 8 files in $OUT (or /tmp/out); the new header is $OUT/hybrid_attention_triton_ptx.h
# (commit it as ops/hybrid_attention/hybrid_attention_triton_ptx.h). Then bench/gpu-run.sh (Node).
# Expects packages/kernels/build with librehyat_ops.so and rehyat_addon.node when gpu-run.sh follows,
# and ORT headers (ORT_INCLUDE_DIR, or packages/kernels/.ort-headers).
set -uo pipefail
export PYTHONUNBUFFERED=1
K=packages/kernels
O=${OUT:-/tmp/out}
mkdir -p "$O" "$K/build/triton-gen"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
  python3 -c "import triton, torch; print('triton', triton.__version__, 'torch', torch.__version__)"; } > "$O/machine.txt" 2>&1
cat "$O/machine.txt"
echo "== triton_check (correctness vs float64, config sweep, SDPA)"
timeout "${CHECK_TIMEOUT_S:-240}" python3 $K/bench/triton_check.py /tmp/triton-check ${CHECK_MODE:-} > "$O/triton_check.log" 2>&1
echo "triton_check rc=$?"
cp /tmp/triton-check/tuned.json "$O/" 2>/dev/null
H=$(pwd)/$K/build/triton-gen/hybrid_attention_triton_ptx.h
cfg=()
[ -f /tmp/triton-check/tuned.json ] && cfg=(--configs /tmp/triton-check/tuned.json)
timeout "${GEN_TIMEOUT_S:-150}" python3 $K/scripts/gen-triton-ptx.py --out "$H" "${cfg[@]}" --meta "$O/triton-meta.json" > "$O/gen.log" 2>&1
echo "gen rc=$?"; tail -8 "$O/gen.log"
cp "$H" "$O/" 2>/dev/null
REHYAT_TRITON_PTX_HEADER=$H REHYAT_BUILD_ONLY=cuda bash $K/scripts/build.sh > "$O/build.log" 2>&1
echo "build rc=$?"; grep "build:" "$O/build.log"
echo "== kernel_bench"
timeout 90 $K/build/kernel_bench > "$O/kernels.log" 2>&1
echo "kernel_bench rc=$?"
cat "$O/kernels.log"
sed -n '/== summary/,$p' "$O/triton_check.log"
