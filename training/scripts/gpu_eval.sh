#!/usr/bin/env bash
# Evaluate one checkpoint on the GPUs at once (with fewer GPUs they are shared, round robin):
#   GPU 0 / 1: rehyat.eval.run at guidance GUIDANCE_A / GUIDANCE_B (the evaluation's fixed prompt sets)
#   GPU 2 / 3: rehyat.eval.sweep of the student / the teacher on VALIDATION prompt sets (seeds VAL_SEEDS),
#              from which the sampler's settings are chosen; the fixed sets then only report them.
#   bash training/scripts/gpu_eval.sh CHECKPOINT DIR   -> DIR/eval-g*.json, DIR/sweep-{student,teacher}.json,
#                                                         their logs, DIR/eval-status.txt (one exit line each)
# Env: GUIDANCE_A (4), GUIDANCE_B (2.5), VAL_SEEDS (2024,2025), SWEEP_GUIDANCE (1.5,2.5,4), SWEEP_STEPS (16),
# EVAL_ARGS, SWEEP_ARGS (extra flags). Exit status: 0 when every evaluation exited 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
C=${1:?checkpoint}; R=${2:?output folder}
case "$C" in /*) ;; *) C=$PWD/$C ;; esac   # relative paths are from the repo root
case "$R" in /*) ;; *) R=$PWD/$R ;; esac
mkdir -p "$R"
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "${NGPU:-0}" -ge 1 ] 2>/dev/null || NGPU=1
export PYTHONUNBUFFERED=1
: > "$R/eval-status.txt"
ev() {  # gpu, name, command...
  local g=$1 n=$2; shift 2
  (cd training && CUDA_VISIBLE_DEVICES=$(( g % NGPU )) "$@" > "$R/$n.log" 2>&1; echo "$n exit $?" >> "$R/eval-status.txt") &
}
GA=${GUIDANCE_A:-4}; GB=${GUIDANCE_B:-2.5}
ev 0 eval-g$GA python3 -m rehyat.eval.run --checkpoint "$C" --out "$R/eval-g$GA.json" --guidance "$GA" ${EVAL_ARGS:-}
ev 1 eval-g$GB python3 -m rehyat.eval.run --checkpoint "$C" --out "$R/eval-g$GB.json" --guidance "$GB" ${EVAL_ARGS:-}
g=2
for m in student teacher; do
  ev $g sweep-$m python3 -m rehyat.eval.sweep --checkpoint "$C" --model $m \
    --out "$R/sweep-$m.json" --seeds "${VAL_SEEDS:-2024,2025}" --guidance "${SWEEP_GUIDANCE:-1.5,2.5,4}" \
    --steps "${SWEEP_STEPS:-16}" ${SWEEP_ARGS:-}
  g=$((g + 1))
done
wait
cat "$R/eval-status.txt"
! grep -qv " exit 0$" "$R/eval-status.txt"
