#!/usr/bin/env bash
# Train the release on the GPU machine(s), split over device calls (each call <= 10 min), one PHASE per call.
# Usage on the GPU machine (repo root), writing $OUT/{checkpoint.pt,metrics.json,train.log}:
#   PHASE=vae-teacher bash training/scripts/gpu_train.sh
#   PHASE=teacher  RESUME=training/runs/a/checkpoint.pt bash training/scripts/gpu_train.sh
#   PHASE=student  RESUME=training/runs/b/checkpoint.pt bash training/scripts/gpu_train.sh   (+ evaluation;
#                  STAGE2_LONG=FRAMES:VIDEOS alternates stage 2 with long clips, STAGE1_S / STAGE2_S budgets;
#                  EVAL=0 skips the in-process evaluation, e.g. for gpu_eval.sh over every GPU afterwards)
# FM_OBJECT_WEIGHT=W (any phase) overrides the preset's object weight of the flow-matching loss (0: plain MSE).
# Between calls, copy the returned checkpoint.pt into training/runs/<x>/ here (git-ignored) and
# name that folder in the next call's carry. The teacher's cosine schedule spans both of its calls
# (TEACHER_A + TEACHER_B seconds). PHASE=all runs the single-call recipe of rehyat-1 (preset full).
#
# Data-parallel: NPROC=N (e.g. 2 or 4 on nvidia-h100-x2 / -x4; default: every visible GPU) starts N
# ranks with torchrun (LAUNCHER=rehyat: the repo's own launcher, same environment). Per-rank batch =
# the preset's, global batch = N x it, learning rates x sqrt(N) unless LR_SCALE=<multiplier>. With N > 1
# the student phase skips the rank-0-only (Tc, To) sweep (measured for rehyat-2) unless STUDENT_STAGES
# says otherwise. training/README.md has the device-time arithmetic.
set -euo pipefail
OUT="${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
TEACHER_A=${TEACHER_A:-330}
TEACHER_B=${TEACHER_B:-480}   # 0: the whole teacher in the first call (one cosine over TEACHER_A)
TOTAL=$((TEACHER_A + TEACHER_B))
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
NPROC=${NPROC:-${NGPU:-1}}
[ "$NPROC" -ge 1 ] 2>/dev/null || NPROC=1
# NVLink multicast stays off on shared hosts (device README); the launch keeps these for every rank
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1
if [ "$NPROC" -gt 1 ]; then export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}; fi  # torchrun would say 1
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU (CPU run)"; } | tee "$OUT/gpu.txt"
echo "nproc $NPROC" | tee -a "$OUT/gpu.txt"
EXTRA=()
if [ -n "${LR_SCALE:-}" ]; then EXTRA+=(--lr-scale "$LR_SCALE"); fi
if [ -n "${STAGE2_LONG:-}" ]; then EXTRA+=(--stage2-long "$STAGE2_LONG"); fi   # FRAMES:VIDEOS, student phase
if [ -n "${FM_OBJECT_WEIGHT:-}" ]; then EXTRA+=(--fm-object-weight "$FM_OBJECT_WEIGHT"); fi   # every phase (0: plain MSE)
run() {
  if [ "$NPROC" -gt 1 ]; then
    if [ "${LAUNCHER:-torchrun}" = rehyat ]; then
      launch=(python3 -m rehyat.launch --nproc "$NPROC" -m rehyat.train)
    else
      launch=(python3 -m torch.distributed.run --nnodes 1 --nproc_per_node "$NPROC" --master_addr 127.0.0.1
              --master_port "${MASTER_PORT:-29531}" -m rehyat.train)
    fi
  else
    launch=(python3 -m rehyat.train)
  fi
  "${launch[@]}" "$@" ${EXTRA[@]+"${EXTRA[@]}"} --out "$OUT" 2>&1 | tee -a "$OUT/train.log"
}
if [ "$NPROC" -gt 1 ]; then STUDENT_STAGES=${STUDENT_STAGES:-stage1,stage2}; else STUDENT_STAGES=${STUDENT_STAGES:-sweep,stage1,stage2}; fi
case "${PHASE:?PHASE must be vae-teacher, teacher, student or all}" in
  vae-teacher) run --preset ${PRESET:-long} --seed 0 --stages vae,teacher --budget vae=${VAE_S:-150} --budget teacher=$TEACHER_A \
                   --sched teacher=0:$TOTAL ${COMPILE:+--compile $COMPILE} ;;
  teacher)     run --preset ${PRESET:-long} --seed 1 --resume "../${RESUME:?}" --stages teacher \
                   --budget teacher=$TEACHER_B --sched teacher=$TEACHER_A:$TOTAL ;;
  student)     run --preset ${PRESET:-long} --seed 2 --resume "../${RESUME:?}" --stages "$STUDENT_STAGES" \
                   --budget stage1=${STAGE1_S:-60} --budget stage2=${STAGE2_S:-300} --compile ${COMPILE:-1} \
                   $([ "${EVAL:-1}" = 1 ] && echo --eval --deadline-s "${DEADLINE_S:-540}") ;;
  all)         run --preset full --eval --deadline-s 500 ;;
  *) echo "unknown PHASE $PHASE" >&2; exit 2 ;;
esac
