#!/usr/bin/env bash
# One device call: continue stage 2 of a checkpoint's student, data-parallel over every GPU of the
# machine (gpu_train.sh's launch), then evaluate it on the GPUs at once (gpu_eval.sh: two guidances
# on the evaluation's fixed prompt sets, the student's and the teacher's sampler sweeps on validation sets).
#   CK=training/runs/x/checkpoint.pt bash training/scripts/gpu_continue.sh     (writes $OUT)
# Env: RUN_DIR (/tmp/rehyat-continue), PRESET (long4), STAGE2_S (270), STAGE2_LONG (512:2048), LR_SCALE (1), NPROC (every GPU),
# FM_OBJECT_WEIGHT (the preset's), and gpu_eval.sh's (GUIDANCE_A, GUIDANCE_B, VAL_SEEDS, SWEEP_GUIDANCE, SWEEP_STEPS, EVAL_ARGS, SWEEP_ARGS).
# $OUT: c-checkpoint.pt (the continued model) and results.tgz (metrics, logs, eval-*.json, sweep-*.json).
set -uo pipefail
cd "$(dirname "$0")/../.."
CK=${CK:?CK must name the checkpoint to continue}
case "$CK" in /*) ;; *) CK=$PWD/$CK ;; esac   # relative paths are from the repo root
O=${OUT:?}
R=${RUN_DIR:-/tmp/rehyat-continue}
mkdir -p "$R/c"
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "${NGPU:-0}" -ge 1 ] 2>/dev/null || NGPU=1
NP=${NPROC:-$NGPU}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
train() {
  local np=$1
  if [ "$np" -gt 1 ]; then
    launch=(python3 -m torch.distributed.run --nnodes 1 --nproc_per_node "$np" --master_addr 127.0.0.1
            --master_port "${MASTER_PORT:-29533}" -m rehyat.train)
  else
    launch=(python3 -m rehyat.train)
  fi
  (cd training && "${launch[@]}" --preset "${PRESET:-long4}" --seed 3 --resume "$CK" --stages stage2 \
     --budget stage2="${STAGE2_S:-270}" --compile 0 --stage2-long "${STAGE2_LONG:-512:2048}" \
     --lr-scale "${LR_SCALE:-1}" ${FM_OBJECT_WEIGHT:+--fm-object-weight "$FM_OBJECT_WEIGHT"} --out "$R/c") 2>&1 | tee -a "$R/c/train.log"
}
t0=$(date +%s)
train "$NP"; rc=$?
if [ $rc -ne 0 ] && [ "$NP" -gt 1 ] && [ $(( $(date +%s) - t0 )) -lt 90 ]; then
  echo "[continue] data-parallel stage 2 failed early (exit $rc): one GPU"; train 1; rc=$?
fi
[ $rc -eq 0 ] && [ -f "$R/c/checkpoint.pt" ] || { echo "[continue] training failed (exit $rc)"; exit 1; }
echo "[continue] stage 2 done after $(( $(date +%s) - t0 )) s; evaluating"
bash training/scripts/gpu_eval.sh "$R/c/checkpoint.pt" "$R"
echo "[continue] all done after $(( $(date +%s) - t0 )) s"
mkdir -p "$O"
cp "$R/c/checkpoint.pt" "$O/c-checkpoint.pt"
(cd "$R" && find . -name '*.json' -o -name '*.log' -o -name '*.txt' | tar czf "$O/results.tgz" -T -)
for f in "$R"/*.log; do echo "== $(basename "$f")"; grep -E "^\[|Error" "$f" | tail -n 8 | cut -c1-330; done
