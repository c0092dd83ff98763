#!/usr/bin/env bash
# Everything the GPU machine runs for @rehyat/kernels in one go (the device call's command):
# CUDA-vs-naive/CPU tests (fp32, fp16, outputs poisoned with NaN first; again with the float16
# Triton path off), the long run with the state on the GPU, the kernel timings, the benchmark, the
# op on the CUDA kernels alone (REHYAT_TRITON=0) and the PyTorch SDPA reference. Logs go to $OUT (or /tmp/out).
# Expects, from the repo root: /opt/rt/env.sh sourced (node, onnxruntime-node + CUDA EP),
# packages/kernels/build (librehyat_ops{,_cuda}.so, rehyat_addon.node) and
# packages/kernels/.gpu-bundle (scripts/gpu-bundle.sh), python3 with onnx and torch.
set -uo pipefail
K=packages/kernels
O=${OUT:-/tmp/out}
mkdir -p "$O"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv; node --version; } 2>&1 | tee "$O/machine.txt"
ldd $K/build/librehyat_ops_cuda.so | grep "not found" && echo "missing libraries for the CUDA op" | tee -a "$O/machine.txt"
python3 $K/scripts/make-test-models.py /tmp/tm && python3 $K/bench/make-bench-models.py /tmp/bm 64:4:32 1560:12:128 || exit 3
if [ "${SKIP_TESTS:-0}" != 1 ]; then
echo "== tests (REHYAT_TEST_CUDA=1, REHYAT_CUDA_POISON=1)"
REHYAT_TEST_MODELS_DIR=/tmp/tm REHYAT_TEST_CUDA=1 REHYAT_CUDA_POISON=1 timeout ${TEST_TIMEOUT_S:-240} \
  node --test --test-reporter=spec $K/.gpu-bundle/*.test.mjs > "$O/tests.log" 2>&1
echo "tests rc=$?"
# the same CUDA cases on the hand-written CUDA kernels (the float16 Triton path off)
REHYAT_TRITON=0 REHYAT_TEST_MODELS_DIR=/tmp/tm REHYAT_TEST_CUDA=1 REHYAT_CUDA_POISON=1 timeout ${TEST_TIMEOUT_S:-240} \
  node --test --test-reporter=spec $K/.gpu-bundle/hybrid-attention.test.mjs $K/.gpu-bundle/cuda-long.test.mjs > "$O/tests-cuda-kernels.log" 2>&1
echo "tests (REHYAT_TRITON=0) rc=$?"; grep -E "^ℹ (tests|pass|fail)" "$O/tests-cuda-kernels.log"
grep -E "^ℹ (tests|pass|fail)|✖" "$O/tests.log" | head -40
fi
echo "== kernel timings (no ONNX Runtime)"
[ -x $K/build/kernel_bench ] && $K/build/kernel_bench 2>&1 | tee "$O/kernels.log"
echo "== benchmark"
timeout ${BENCH_TIMEOUT_S:-300} env ${BENCH_ENV:-} node --max-old-space-size=8192 $K/.gpu-bundle/bench.mjs /tmp/bm "${BENCH_MODE:-full}" ${BENCH_ONLY:-} 2>&1 | grep -v "E:onnxruntime" | tee "$O/bench.log" | grep -E "check|^\|"
if [ "${SKIP_BEFORE:-0}" != 1 ]; then
echo "== the op on the hand-written CUDA kernels (REHYAT_TRITON=0), Wan geometry: before/after on this card"
timeout ${BENCH_TIMEOUT_S:-300} env REHYAT_TRITON=0 node --max-old-space-size=8192 $K/.gpu-bundle/bench.mjs /tmp/bm full Wan op-only 2>&1 | grep -v "E:onnxruntime" | tee "$O/bench-cuda-kernels.log" | grep -E "^\|"
fi
[ "${SKIP_SDPA:-0}" = 1 ] && exit 0
echo "== PyTorch SDPA"
timeout ${SDPA_TIMEOUT_S:-120} python3 $K/bench/sdpa.py 2>&1 | tee "$O/sdpa.log"
