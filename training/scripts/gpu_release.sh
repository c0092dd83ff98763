#!/usr/bin/env bash
# The whole release recipe as ONE background job on a one-GPU machine, so that training runs on
# across device calls (each call <= 10 min) with no restart: VAE + teacher (one cosine), then
# stage 1 + stage 2 + evaluation, into $RUN_DIR (default /tmp/rehyat-release): a/ and b/ each with
# checkpoint.pt, metrics.json, train.log; pipeline.log; DONE (exit status) when finished.
#   start (first call):  bash training/scripts/gpu_release.sh start
#   every call:          bash training/scripts/gpu_release.sh poll SECONDS   (waits <= SECONDS or until
#                        DONE, then copies the results so far into $OUT and prints the log tails)
# PRESET (long3: the rehyat-3 experiment; long: rehyat-2's recipe). Budgets (seconds of training, env): VAE_S (180), TEACHER_S (660), STAGE2_S (200); DEADLINE_S (460):
# the student call's evaluation skips what would start later than this after its launch.
# A call must follow the previous one within the machine's idle window (30 s) or the job is lost.
set -uo pipefail
cd "$(dirname "$0")/../.."
R=${RUN_DIR:-/tmp/rehyat-release}
case "${1:?start or poll}" in
  start)
    mkdir -p "$R/a" "$R/b" training/runs/release-a
    [ -f "$R/started" ] && { echo "already started"; exit 0; }
    date +%s > "$R/started"
    setsid nohup bash -c "
      PRESET=${PRESET:-long3} OUT=$R/a PHASE=vae-teacher VAE_S=${VAE_S:-180} TEACHER_A=${TEACHER_S:-660} TEACHER_B=0 \
        bash training/scripts/gpu_train.sh &&
      cp $R/a/checkpoint.pt training/runs/release-a/checkpoint.pt &&
      PRESET=${PRESET:-long3} OUT=$R/b PHASE=student RESUME=training/runs/release-a/checkpoint.pt STUDENT_STAGES=stage1,stage2 \
        STAGE2_S=${STAGE2_S:-200} DEADLINE_S=${DEADLINE_S:-460} bash training/scripts/gpu_train.sh
      echo \$? > $R/DONE" > "$R/pipeline.log" 2>&1 < /dev/null &
    echo "started: $R" ;;
  poll)
    end=$(( $(date +%s) + ${2:-540} ))
    while [ ! -f "$R/DONE" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 5; done
    O=${OUT:-/tmp/out}; mkdir -p "$O"
    for x in a b; do
      for f in checkpoint.pt metrics.json train.log; do
        [ -f "$R/$x/$f" ] && cp "$R/$x/$f" "$O/$x-$f"
      done
    done
    cp "$R/pipeline.log" "$O/" 2>/dev/null
    echo "elapsed $(( $(date +%s) - $(cat "$R/started") )) s; DONE: $(cat "$R/DONE" 2>/dev/null || echo no)"
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
    grep -E "^\[|step|loss|PSNR|error|Error|compile" "$R/pipeline.log" | tail -n 40 ;;
esac
