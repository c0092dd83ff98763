#!/usr/bin/env bash
# Prepare what the GPU machine needs for bench/gpu-run.sh, under .gpubench/ at the repo root (ignored):
# generate-gpu.mjs (esbuild bundle, onnxruntime-node external), the node-addon-api headers (to build
# @rehyat/kernels there) and a copy of packages/kernels/build made here (fallback if that build fails).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
B=.gpubench
rm -rf "$B" && mkdir -p "$B"
npx esbuild packages/pipeline/bench/generate-gpu.ts --bundle --platform=node --format=esm --target=node20 \
  --conditions=development --external:onnxruntime-node --log-level=warning \
  '--banner:js=import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);' \
  --outfile="$B/generate-gpu.mjs"
mkdir -p "$B/node-addon-api" && cp node_modules/node-addon-api/*.h "$B/node-addon-api/"
# the call carries at most 64 MiB: only the libraries and the addon of the local build
mkdir -p "$B/kbuild-here" && cp packages/kernels/build/*.so packages/kernels/build/*.node "$B/kbuild-here/"
du -sh "$B"
