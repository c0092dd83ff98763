#!/usr/bin/env bash
# The H100 generation benchmark in one device call (bench/results/h100.md says how it was run).
# From the repo root, with /opt/rt/env.sh sourced (node, onnxruntime-node + CUDA EP, ORT_INCLUDE_DIR,
# NODE_API_INCLUDE_DIR) and .gpubench/ from bench/gpu-bundle.sh. Builds @rehyat/kernels there
# (nvcc, sm_90) in the background while the onnxruntime-node cases run; each case is one process
# under its own time limit, with nvidia-smi polling memory.used every 50 ms for its peak.
# Env: DEVICE (cuda), CASES ("name:seconds:limit_s:warmup_s ..."), BUDGET_S (330: later cases are
# skipped once this many seconds have passed). Output in $OUT (or /tmp/out): log, results.jsonl,
# machine.txt, kbuild.log.
set -uo pipefail
B=.gpubench
O=${OUT:-/tmp/out}
mkdir -p "$O"
DEVICE=${DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-330}
CASES=${CASES:-"student-ort:10:60:1 student-kernels:10:60:1 teacher:10:60:1 student-ort:60:90:1 student-kernels:60:90:1 teacher:32:90:1 teacher:60:45:0 student-ort:120:90:1 student-kernels:120:90:1"}
exec > >(tee -a "$O/log") 2>&1
SMI=0; command -v nvidia-smi >/dev/null && SMI=1
{ [ $SMI = 1 ] && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv; \
  echo "node $(node --version), $(nproc) CPUs, $(date -u +%FT%TZ)"; } | tee "$O/machine.txt"

KB=$B/kbuild-here
if [ "$DEVICE" = cuda ]; then
  ( REHYAT_BUILD_DIR=/tmp/kb NODE_ADDON_API_DIR=$PWD/$B/node-addon-api timeout 200 bash packages/kernels/scripts/build.sh > "$O/kbuild.log" 2>&1
    echo "build rc=$?" >> "$O/kbuild.log" ) &
  BUILD_PID=$!
fi
: > "$O/results.jsonl"
i=0
for c in $CASES; do
  IFS=: read -r name secs limit warm <<< "$c"
  i=$((i + 1))
  if [ "$SECONDS" -gt "$BUDGET_S" ]; then echo "== skip $name $secs s (budget)"; echo "{\"case\":\"$name\",\"seconds\":$secs,\"error\":\"not run (call budget)\"}" >> "$O/results.jsonl"; continue; fi
  if [ "$name" = student-kernels ] && [ -n "${BUILD_PID:-}" ]; then
    wait "$BUILD_PID"; BUILD_PID=
    tail -3 "$O/kbuild.log"
    if [ -f /tmp/kb/rehyat_addon.node ] && [ -f /tmp/kb/librehyat_ops_cuda.so ]; then KB=/tmp/kb; fi
    echo "== kernels build used: $KB"; ldd $KB/librehyat_ops_cuda.so | grep -E "cudart|not found"
  fi
  echo "== $i $name $secs s (limit $limit s, warm-up $warm s)"
  base=0; [ $SMI = 1 ] && base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  sp=
  if [ $SMI = 1 ]; then nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > /tmp/mem.$i & sp=$!; fi
  REHYAT_KERNELS_BUILD_DIR=$(realpath $KB) timeout "$limit" node --max-old-space-size=8192 $B/generate-gpu.mjs case models "$name" "$secs" "$warm" "$DEVICE" > /tmp/case.$i 2>&1
  rc=$?
  [ -n "$sp" ] && kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
  peak=0; [ $SMI = 1 ] && peak=$(sort -n /tmp/mem.$i | tail -1)
  grep -v "E:onnxruntime" /tmp/case.$i | tail -20
  line=$(grep '^RESULT ' /tmp/case.$i | tail -1 | sed 's/^RESULT //')
  [ -n "$line" ] || line="{\"case\":\"$name\",\"seconds\":$secs}"
  node -e 'const r=JSON.parse(process.argv[1]);Object.assign(r,{rc:+process.argv[2],baseMiB:+process.argv[3],peakMiB:+process.argv[4]});console.log(JSON.stringify(r))' "$line" "$rc" "$base" "${peak:-0}" >> "$O/results.jsonl"
  echo "rc=$rc base=${base}MiB peak=${peak}MiB elapsed=${SECONDS}s"
done
[ -n "${BUILD_PID:-}" ] && wait "$BUILD_PID"
node $B/generate-gpu.mjs report "$O/results.jsonl" "$O/machine.txt" | tee "$O/table.md"
