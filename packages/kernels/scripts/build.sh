#!/usr/bin/env bash
# Build librehyat_ops.so (custom ops; CUDA kernels when nvcc is found) and rehyat_addon.node
# (the Node-API addon) into packages/kernels/build/. Plain g++/nvcc, no install scripts.
#
# Env: ORT_INCLUDE_DIR   ONNX Runtime C/C++ headers (default: .ort-headers/include/onnxruntime,
#                        from scripts/fetch-ort-headers.sh)
#      NODE_API_INCLUDE_DIR  node_api.h (default: the running node's include/node)
#      NVCC              nvcc to use (default: found on PATH or /usr/local/cuda/bin; REHYAT_NO_CUDA=1 skips)
#      CUDA_ARCH         default 90 (sm_90, H100)
#      CUDA_HOME         where lib64/libcudart.so is (default: from nvcc's path, then /usr/local/cuda)
#      REHYAT_TRITON_PTX_HEADER  the generated Triton PTX header to embed (default: the committed
#                        ops/hybrid_attention/hybrid_attention_triton_ptx.h; 'none': CUDA kernels only)
#      REHYAT_BUILD_ONLY=cuda  rebuild only librehyat_ops_cuda.so and kernel_bench (e.g. on the GPU
#                        machine after regenerating the PTX; the addon needs node-addon-api)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$HERE"
OUT=${REHYAT_BUILD_DIR:-$HERE/build}
mkdir -p "$OUT"
ORT_INC=${ORT_INCLUDE_DIR:-$HERE/.ort-headers/include/onnxruntime}
[ -f "$ORT_INC/onnxruntime_c_api.h" ] || {
  echo "build: ONNX Runtime headers not found in $ORT_INC; run: npm run fetch-headers -w @rehyat/kernels" >&2; exit 2; }
CXX=${CXX:-g++}
CXXFLAGS=(-std=c++17 -O3 -fPIC -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter -I"$ORT_INC" -I"$HERE")

# --- custom-op libraries -----------------------------------------------------------------
# librehyat_ops.so: CPU kernels, loads anywhere. librehyat_ops_cuda.so (when nvcc is found): CPU
# and CUDA kernels, needs libcudart.so.13 at load time (sessions on the CUDA provider use it).
printf '{ global: RegisterCustomOps; local: *; };\n' > "$OUT/ops.map"
# -z nodelete: ONNX Runtime dlcloses the library with each session, but keeps the op schemas
# (which point into it) in a process-wide registry: the library must never be unmapped.
LDFLAGS=(-Wl,--version-script="$OUT/ops.map" -Wl,--no-undefined -Wl,-z,nodelete -static-libstdc++ -static-libgcc)
srcs=(ops/hybrid_attention/hybrid_attention_op.cc ops/hybrid_attention/hybrid_attention_ref.cc register.cc)
ONLY=${REHYAT_BUILD_ONLY:-}
if [ "$ONLY" != cuda ]; then
"$CXX" "${CXXFLAGS[@]}" -shared -o "$OUT/librehyat_ops.so" "${srcs[@]}" "${LDFLAGS[@]}"
echo "build: $OUT/librehyat_ops.so (exports: $(nm -D --defined-only "$OUT/librehyat_ops.so" | awk '{print $3}' | tr '\n' ' '))"
fi

NVCC=${NVCC:-$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)}
[ "${REHYAT_NO_CUDA:-0}" = 1 ] && NVCC=
if [ -n "$NVCC" ]; then
  arch=${CUDA_ARCH:-90}
  echo "build: CUDA kernels with $NVCC for sm_$arch"
  "$NVCC" -std=c++17 -O3 -Xcompiler -fPIC,-fvisibility=hidden -gencode "arch=compute_$arch,code=sm_$arch" \
    -Xptxas -warn-spills ${NVCC_EXTRA:-} -I"$ORT_INC" -I"$HERE" -DREHYAT_WITH_CUDA \
    -c ops/hybrid_attention/hybrid_attention.cu -o "$OUT/hybrid_attention_cu.o"
  # the shared CUDA runtime (libcudart.so.13), the one the CUDA execution provider loads too,
  # so that ORT's stream handle and device pointers belong to the same runtime instance
  cudahome=${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "$NVCC")")")}
  cudart=
  for c in "$cudahome/lib64" "$cudahome/targets/x86_64-linux/lib" /usr/local/cuda/lib64; do
    [ -e "$c/libcudart.so" ] && { cudart=$c; break; }
  done
  [ -n "$cudart" ] || { echo "build: libcudart.so not found (set CUDA_HOME)" >&2; exit 2; }
  cudainc=
  for c in "$cudahome/include" "$(dirname "$cudart")/include" "$cudahome/targets/x86_64-linux/include" /usr/local/cuda/include; do
    [ -f "$c/cuda.h" ] && { cudainc=$c; break; }
  done
  [ -n "$cudainc" ] || { echo "build: cuda.h not found (set CUDA_HOME)" >&2; exit 2; }
  # the Triton fast path (hybrid_attention_triton.cc): PTX embedded from the generated header, driver
  # API through dlopen("libcuda.so.1"), so nothing links libcuda
  ptxh=${REHYAT_TRITON_PTX_HEADER:-$HERE/ops/hybrid_attention/hybrid_attention_triton_ptx.h}
  tritonflags=()
  if [ "$ptxh" != none ] && [ -f "$ptxh" ]; then
    tritonflags=(-DREHYAT_TRITON_PTX_HEADER="\"$(readlink -f "$ptxh")\"")
    echo "build: Triton PTX from $ptxh"
  else
    echo "build: no Triton PTX header: CUDA kernels only"
  fi
  "$CXX" "${CXXFLAGS[@]}" -DREHYAT_WITH_CUDA -I"$cudainc" "${tritonflags[@]}" \
    -c ops/hybrid_attention/hybrid_attention_triton.cc -o "$OUT/hybrid_attention_triton.o"
  "$CXX" "${CXXFLAGS[@]}" -DREHYAT_WITH_CUDA -shared -o "$OUT/librehyat_ops_cuda.so" "${srcs[@]}" \
    "$OUT/hybrid_attention_cu.o" "$OUT/hybrid_attention_triton.o" -L"$cudart" -lcudart -ldl "${LDFLAGS[@]}"
  echo "build: $OUT/librehyat_ops_cuda.so"
  # kernel timings without ONNX Runtime (bench/kernel_bench.cu)
  "$NVCC" -std=c++17 -O3 -gencode "arch=compute_$arch,code=sm_$arch" -I"$ORT_INC" -I"$HERE" -DREHYAT_WITH_CUDA \
    bench/kernel_bench.cu "$OUT/hybrid_attention_triton.o" -ldl -o "$OUT/kernel_bench"
  echo "build: $OUT/kernel_bench"
else
  echo "build: nvcc not found: CPU kernels only"
  rm -f "$OUT/librehyat_ops_cuda.so"
fi

# --- Node-API addon ----------------------------------------------------------------------
[ "$ONLY" = cuda ] && exit 0
NAPI_INC=${NODE_API_INCLUDE_DIR:-$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node}
[ -f "$NAPI_INC/node_api.h" ] || NAPI_INC=/usr/include/node
[ -f "$NAPI_INC/node_api.h" ] || { echo "build: node_api.h not found (set NODE_API_INCLUDE_DIR)" >&2; exit 2; }
ADDON_API=${NODE_ADDON_API_DIR:-$(node -p "require('node-addon-api').include_dir" 2>/dev/null || true)}
[ -f "$ADDON_API/napi.h" ] || ADDON_API=$HERE/../../node_modules/node-addon-api
[ -f "$ADDON_API/napi.h" ] || { echo "build: node-addon-api headers not found (set NODE_ADDON_API_DIR)" >&2; exit 2; }
"$CXX" "${CXXFLAGS[@]}" -I"$NAPI_INC" -I"$ADDON_API" -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED \
  -DNAPI_CPP_EXCEPTIONS -fexceptions -shared -o "$OUT/rehyat_addon.node" addon/*.cc \
  -ldl -static-libstdc++ -static-libgcc
echo "build: $OUT/rehyat_addon.node"
