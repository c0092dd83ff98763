#!/usr/bin/env bash
# Install the CUDA execution provider of ONNX Runtime 1.29.0 beside onnxruntime-node's
# libonnxruntime.so.1, without NuGet: from the npm package
# com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (ORT 1.29.0 built for CUDA 13), which holds
# Plugins/Linux/x64/libonnxruntime_providers_{cuda,shared}.so. Needs only the npm registry.
# The provider needs at run time: CUDA 13 runtime, cuBLAS(Lt) 13, cuFFT, cuRAND and cuDNN 9 on
# the library path (the nvidia/cuda:13 cudnn runtime images, or the pip nvidia-* wheels).
#
# Usage: npm run gpu:install   (from the repo root; idempotent)
#   EP_PACKAGE_TGZ=/path/to/com.github.asus4...-0.4.9.tgz   use a local tarball (offline hosts)
#   ORT_EP_TARGET_DIR=/dir   install there instead of beside onnxruntime-node's libonnxruntime.so.1
set -euo pipefail
EP_PACKAGE=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$HERE"
if [ -n "${ORT_EP_TARGET_DIR:-}" ]; then dir=$ORT_EP_TARGET_DIR; else
dir=$(node -e "
const {createRequire}=require('module');const path=require('path');const fs=require('fs');
const r=createRequire(path.join(process.cwd(),'package.json'));
let p=path.dirname(r.resolve('onnxruntime-node'));while(!fs.existsSync(path.join(p,'package.json')))p=path.dirname(p);
const v=require(path.join(p,'package.json')).version;
if(v!=='1.29.0'){console.error('gpu:install: onnxruntime-node '+v+' found, 1.29.0 expected');process.exit(3)}
console.log(path.join(fs.realpathSync(p),'bin','napi-v6',process.platform,process.arch))")
fi
[ -n "${ORT_EP_TARGET_DIR:-}" ] || [ -f "$dir/libonnxruntime.so.1" ] || {
  echo "gpu:install: $dir/libonnxruntime.so.1 missing" >&2; exit 2; }
if [ -f "$dir/libonnxruntime_providers_cuda.so" ] && [ -f "$dir/libonnxruntime_providers_shared.so" ]; then
  echo "gpu:install: CUDA execution provider already in $dir"; exit 0
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ -n "${EP_PACKAGE_TGZ:-}" ]; then
  cp "$EP_PACKAGE_TGZ" "$work/ep.tgz"
else
  (cd "$work" && npm pack --silent "$EP_PACKAGE" >/dev/null && mv ./*.tgz ep.tgz)
fi
src=package/Plugins/Linux/x64
tar xzf "$work/ep.tgz" -C "$work" "$src/libonnxruntime_providers_cuda.so" "$src/libonnxruntime_providers_shared.so"
install -m 0755 "$work/$src/libonnxruntime_providers_shared.so" "$dir/"
install -m 0755 "$work/$src/libonnxruntime_providers_cuda.so" "$dir/"
echo "gpu:install: CUDA execution provider ($EP_PACKAGE) -> $dir"
