#!/usr/bin/env bash
# Train the release on the H100, split over device calls (each call <= 10 min), one PHASE per call.
# Usage on the GPU machine (repo root), writing $OUT/{checkpoint.pt,metrics.json,train.log}:
#   PHASE=vae-teacher bash training/scripts/gpu_train.sh
#   PHASE=teacher  RESUME=training/runs/a/checkpoint.pt bash training/scripts/gpu_train.sh
#   PHASE=student  RESUME=training/runs/b/checkpoint.pt bash training/scripts/gpu_train.sh   (+ evaluation)
# Between calls, copy the returned checkpoint.pt into training/runs/<x>/ here (git-ignored) and
# name that folder in the next call's carry. The teacher's cosine schedule spans both of its calls
# (TEACHER_A + TEACHER_B seconds). PHASE=all runs the single-call recipe of rehyat-1 (preset full).
set -euo pipefail
OUT="${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
TEACHER_A=${TEACHER_A:-330}
TEACHER_B=${TEACHER_B:-480}
TOTAL=$((TEACHER_A + TEACHER_B))
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
run() { PYTHONUNBUFFERED=1 python3 -m rehyat.train "$@" --out "$OUT" 2>&1 | tee -a "$OUT/train.log"; }
case "${PHASE:?PHASE must be vae-teacher, teacher, student or all}" in
  vae-teacher) run --preset long --seed 0 --stages vae,teacher --budget teacher=$TEACHER_A --sched teacher=0:$TOTAL ;;
  teacher)     run --preset long --seed 1 --resume "../${RESUME:?}" --stages teacher \
                   --budget teacher=$TEACHER_B --sched teacher=$TEACHER_A:$TOTAL ;;
  student)     run --preset long --seed 2 --resume "../${RESUME:?}" --stages sweep,stage1,stage2 \
                   --budget stage2=${STAGE2_S:-300} --compile ${COMPILE:-1} --eval --deadline-s ${DEADLINE_S:-540} ;;
  all)         run --preset full --eval --deadline-s 500 ;;
  *) echo "unknown PHASE $PHASE" >&2; exit 2 ;;
esac
