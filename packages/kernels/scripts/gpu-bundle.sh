#!/usr/bin/env bash
# Bundle the tests and the benchmark into plain ESM files (onnxruntime-node external) under
# packages/kernels/.gpu-bundle/, for a GPU host that has Node and onnxruntime-node but not this
# repo's node_modules (the device machine). Run there from the repo root, e.g.
#   REHYAT_TEST_CUDA=1 node --test packages/kernels/.gpu-bundle/*.test.mjs
#   node packages/kernels/.gpu-bundle/bench.mjs /tmp/models
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rm -rf .gpu-bundle && mkdir -p .gpu-bundle
common=(--bundle --platform=node --format=esm --target=node20 --external:onnxruntime-node --log-level=warning
  '--banner:js=import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);')
for t in test/*.test.ts; do
  npx esbuild "$t" "${common[@]}" --outfile=".gpu-bundle/$(basename "${t%.ts}").mjs"
done
npx esbuild bench/bench.ts "${common[@]}" --outfile=.gpu-bundle/bench.mjs
ls .gpu-bundle
