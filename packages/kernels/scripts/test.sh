#!/usr/bin/env bash
# Tests of @rehyat/kernels: builds the native parts when missing, then node:test via tsx.
# Needs: g++, the ONNX Runtime headers (scripts/fetch-ort-headers.sh, run here if missing),
# onnxruntime-node 1.29.0 installed, python3 with the onnx package (builds the test models).
# REHYAT_TEST_CUDA=1 adds the CUDA cases (needs a GPU, `npm run gpu:install` and a CUDA build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -f build/librehyat_ops.so ] || [ ! -f build/rehyat_addon.node ]; then
  [ -n "${ORT_INCLUDE_DIR:-}" ] || bash scripts/fetch-ort-headers.sh
  bash scripts/build.sh
fi
exec npx tsx --conditions=development --test test/*.test.ts
