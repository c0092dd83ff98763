#!/usr/bin/env bash
# The whole release recipe as ONE background job on a GPU machine, so that training runs on across
# device calls (each call <= 10 min) with no restart:
#   A. VAE + teacher (one cosine), data-parallel over every GPU of the machine (gpu_train.sh NPROC);
#      if the data-parallel launch dies within its first 3 minutes it is rerun on one GPU;
#   B. from that teacher, one student per VARIANTS entry (stage 1 + stage 2 + evaluation), each on
#      its own GPU (round robin: with one GPU they share it), all at once; and, when SWEEP=1, the
#      teacher's sampler sweep (rehyat.eval.sweep) beside them.
# Into $RUN_DIR (default /tmp/rehyat-release): a/, b0/, b1/, ... each with checkpoint.pt,
# metrics.json, train.log; sweep.json; pipeline.log; DONE (exit status) when finished.
#   start (first call):  bash training/scripts/gpu_release.sh start
#   every call:          bash training/scripts/gpu_release.sh poll SECONDS   (waits <= SECONDS or until
#                        DONE, then copies into $OUT what exists: the students' checkpoints (or the
#                        teacher's while there are none) and results.tgz with every log and metrics
#                        file; at most 8 files, as the device tool returns)
# Env: PRESET (long4); VAE_S (180), TEACHER_S (600), STAGE1_S (35), STAGE2_S (240): seconds of training;
# DEADLINE_S (420): a student's evaluation skips what would start later than this after its launch;
# VARIANTS: space-separated NAME=STAGE2_LONG ("short= mixed512=512:2048 mixed256=256:4096": stage 2 on
# 4 s clips only, or alternating with 32 s / 16 s clips, see rehyat.train --stage2-long); SWEEP (1);
# STUDENT_COMPILE (0: stage 2 eager, as its two clip shapes would recompile); SWEEP_ARGS (extra rehyat.eval.sweep flags); NPROC (every GPU) and LR_SCALE (gpu_train.sh) for part A only.
# STUDENT_NPROC (1): above 1, part B is instead ONE student (VARIANTS' first entry, default mixed512=512:2048),
# data-parallel over that many GPUs (lr x STUDENT_LR_SCALE, default 1), then gpu_eval.sh on it over every GPU
# (into b0/: eval-g*.json, sweep-student.json, sweep-teacher.json; its env: GUIDANCE_A, SWEEP_STEPS, ...).
# FM_OBJECT_WEIGHT (gpu_train.sh, both parts): e.g. 0 with PRESET=long4 is the ablation of the object-weighted loss.
# A call must follow the previous one within the machine's idle window (30 s) or the job is lost.
set -uo pipefail
cd "$(dirname "$0")/../.."
R=${RUN_DIR:-/tmp/rehyat-release}
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "${NGPU:-0}" -ge 1 ] 2>/dev/null || NGPU=1

job() {
  set -u
  local preset=${PRESET:-long4} t0 rc i=0 name spec pids=()
  t0=$(date +%s)
  part_a() {  # NPROC
    PRESET=$preset OUT=$R/a PHASE=vae-teacher VAE_S=${VAE_S:-180} TEACHER_A=${TEACHER_S:-600} TEACHER_B=0 \
      NPROC=$1 bash training/scripts/gpu_train.sh
  }
  part_a "${NPROC:-$NGPU}"; rc=$?
  if [ $rc -ne 0 ] && [ "${NPROC:-$NGPU}" -gt 1 ] && [ $(( $(date +%s) - t0 )) -lt 180 ]; then
    echo "[release] data-parallel part A failed early (exit $rc): rerunning it on one GPU"
    mv "$R/a" "$R/a-failed-ddp"; mkdir -p "$R/a"
    part_a 1; rc=$?
  fi
  [ $rc -eq 0 ] || return $rc
  cp "$R/a/checkpoint.pt" training/runs/release-a/checkpoint.pt || return 1
  echo "[release] part A done after $(( $(date +%s) - t0 )) s; students: ${VARIANTS:-short= mixed512=512:2048 mixed256=256:4096}"
  if [ "${STUDENT_NPROC:-1}" -gt 1 ]; then  # one student over several GPUs, then gpu_eval.sh over all
    v=${VARIANTS:-mixed512=512:2048}; v=${v%% *}; name=${v%%=*}; spec=${v#*=}
    mkdir -p "$R/b0"; echo "$name $spec (data-parallel over $STUDENT_NPROC GPUs)" > "$R/b0/variant.txt"
    NPROC=$STUDENT_NPROC LR_SCALE=${STUDENT_LR_SCALE:-1} COMPILE=${STUDENT_COMPILE:-0} PRESET=$preset OUT=$R/b0 \
      PHASE=student RESUME=training/runs/release-a/checkpoint.pt STUDENT_STAGES=stage1,stage2 STAGE2_LONG=$spec \
      STAGE1_S=${STAGE1_S:-35} STAGE2_S=${STAGE2_S:-240} EVAL=0 MASTER_PORT=29532 \
      bash training/scripts/gpu_train.sh > "$R/b0/stdout.log" 2>&1 || return $?
    echo "[release] student done after $(( $(date +%s) - t0 )) s; evaluating"
    bash training/scripts/gpu_eval.sh "$R/b0/checkpoint.pt" "$R/b0"; rc=$?
    echo "[release] all done after $(( $(date +%s) - t0 )) s (evaluation exit: $rc)"
    return $rc
  fi
  for v in ${VARIANTS:-short= mixed512=512:2048 mixed256=256:4096}; do
    name=${v%%=*}; spec=${v#*=}
    mkdir -p "$R/b$i"; echo "$name $spec" > "$R/b$i/variant.txt"
    CUDA_VISIBLE_DEVICES=$(( i % NGPU )) NPROC=1 LR_SCALE= COMPILE=${STUDENT_COMPILE:-0} PRESET=$preset OUT=$R/b$i PHASE=student \
      RESUME=training/runs/release-a/checkpoint.pt STUDENT_STAGES=stage1,stage2 STAGE2_LONG=$spec \
      STAGE1_S=${STAGE1_S:-35} STAGE2_S=${STAGE2_S:-240} DEADLINE_S=${DEADLINE_S:-420} \
      bash training/scripts/gpu_train.sh > "$R/b$i/stdout.log" 2>&1 &
    pids+=($!); i=$((i + 1))
  done
  if [ "${SWEEP:-1}" = 1 ]; then
    (cd training && CUDA_VISIBLE_DEVICES=$(( i % NGPU )) PYTHONUNBUFFERED=1 python3 -m rehyat.eval.sweep \
       --checkpoint runs/release-a/checkpoint.pt --out "$R/sweep.json" ${SWEEP_ARGS:-} > "$R/sweep.log" 2>&1) &
    pids+=($!)
  fi
  rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  echo "[release] all done after $(( $(date +%s) - t0 )) s (last failure exit: $rc)"
  return $rc
}

case "${1:?start or poll}" in
  start)
    mkdir -p "$R/a" training/runs/release-a
    [ -f "$R/started" ] && { echo "already started"; exit 0; }
    date +%s > "$R/started"
    export -f job; export R NGPU
    setsid nohup bash -c 'job; echo $? > "$R/DONE"' > "$R/pipeline.log" 2>&1 < /dev/null &
    echo "started: $R ($NGPU GPU(s))" ;;
  poll)
    end=$(( $(date +%s) + ${2:-540} ))
    while [ ! -f "$R/DONE" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 5; done
    O=${OUT:-/tmp/out}; mkdir -p "$O"
    n=0
    for d in "$R"/b*/; do
      [ -f "$d/checkpoint.pt" ] && [ $n -lt 6 ] && { cp "$d/checkpoint.pt" "$O/$(basename "$d")-checkpoint.pt"; n=$((n + 1)); }
    done
    [ $n -eq 0 ] && [ -f "$R/a/checkpoint.pt" ] && cp "$R/a/checkpoint.pt" "$O/a-checkpoint.pt"
    (cd "$R" && find . -name '*.json' -o -name '*.log' -o -name '*.txt' | tar czf "$O/results.tgz" -T -)
    echo "elapsed $(( $(date +%s) - $(cat "$R/started") )) s; DONE: $(cat "$R/DONE" 2>/dev/null || echo no)"
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
    grep -E "^\[|Error|error" "$R/pipeline.log" | tail -n 12
    for d in "$R"/b*/; do
      [ -d "$d" ] && { echo "== $(basename "$d") $(cat "$d/variant.txt")"; grep -E "^\[|Error" "$d/stdout.log" | tail -n 8; }
    done
    if [ -f "$R/sweep.log" ]; then echo "== sweep"; tail -n 3 "$R/sweep.log" | cut -c1-400; fi ;;
esac
