#!/usr/bin/env bash
# More stage 2 for a RELEASED model whose checkpoint is gone, as ONE background job on a GPU machine
# (training runs on across device calls, each <= 10 min). CK is a checkpoint recovered from the release
# here (python3 -m rehyat.export.recover, with the torch that exported it), carried to the machine:
#   1. GPU 0 refits the VAE encoder to the released decoder (rehyat.train --stages encoder; skipped with
#      ENCODER_S=0, when no variant encodes videos) while GPU 1 (GPU 0 too on a one-GPU machine)
#      evaluates the release as it is: base/eval-g4.json, the baseline of the variants, from the same
#      evaluation code and machine (BASE_EVAL=0 skips it);
#   2. one continued student per VARIANTS entry, round robin over the GPUs, at most PER_GPU at a time on
#      each (the others wait for a slot): stage 2 from the release's student for STAGE2_S seconds, then
#      rehyat.eval.run at guidance 4; rehyat.eval.compare then compares, video by video, each variant's
#      student with its teacher (vs-teacher: within 3 points?) and with the release (vs-base).
# Into $RUN_DIR (default /tmp/rehyat-refit): enc/, base/, v0/, v1/, ... (checkpoint.pt, metrics.json,
# train.log, eval-g4.json, vs-teacher.txt/.json, vs-base.txt/.json, variant.txt); pipeline.log; DONE (exit
# status) when finished.
#   start (first call):  CK=training/runs/rec/checkpoint.pt bash training/scripts/gpu_refit_variants.sh start
#   every call:          bash training/scripts/gpu_refit_variants.sh poll SECONDS   (waits <= SECONDS or until
#                        DONE, then copies into $OUT the variants' checkpoints and results.tgz)
# Env: PRESET (long4: the release's preset); ENCODER_S (150), STAGE2_S (600): seconds of training;
# ENCODER_CYCLE (the preset's 0): weight of the refit's latent cycle on the teacher's samples
# (rehyat.train --encoder-cycle);
# VARIANTS: space-separated NAME=SPEC, SPEC one of
#   W             stage 2 on encoded videos, flow matching plus the teacher's velocity on each short clip's
#                 first 2 s at weight W (0: flow matching only; rehyat.train --stage2-distill W);
#   traj:teacher  stage 2's short steps on the teacher's sampling trajectories, traj:student on the
#                 student's own (rehyat.train --stage2-traj); TRAJ_PROMPTS (the preset's 4096) trajectories;
#   traj:WHO:W    the same, and the long clips add W x the teacher's velocity on their first 2 s
#                 (rehyat.train --stage2-traj WHO --stage2-distill W; needs the encoder refit);
#   traj:WHO:W:A  the same, and the long clips add A x the area term (rehyat.train --stage2-area A);
#   traj:WHO:W:A:S  the same, and every other long step takes the student's own long trajectories
#                 with S x the self-consistency term (rehyat.train --stage2-self S; A = 0: no area
#                 term); SELF_PROMPTS (the preset's 256) long trajectories;
# default "fm=0 kd=1". STAGE2_LONG (512:2048, rehyat.train --stage2-long; a traj variant without the
# encoder refit runs without long clips); LR_SCALE (1); PER_GPU (2: three long-clip stage-2 runs of long4
# ran out of an 80 GB H100's memory; 1 when any variant is traj:*, as two long4 trajectory runs beside the
# baseline evaluation did too: each holds its trajectories, then ~24 GB of teacher activations; two
# trajectory runs alone did as well, both sampling at once, so PER_GPU > 1 with traj:* variants is
# refused on GPUs under 120,000 MiB);
# EVAL_ARGS (extra rehyat.eval.run flags; the variants' teacher is the release's, so they sample it at 1x
# only unless EVAL_ARGS says otherwise; with --teacher-lengths= they sample no teacher and get no vs-teacher:
# compare them with a base evaluation's teacher, rehyat.eval.compare --base-model teacher).
# A call must follow the previous one within the machine's idle window (30 s) or the job is lost.
set -uo pipefail
cd "$(dirname "$0")/../.."
R=${RUN_DIR:-/tmp/rehyat-refit}
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "${NGPU:-0}" -ge 1 ] 2>/dev/null || NGPU=1

variant_flags() {  # SPEC -> rehyat.train flags (see VARIANTS above)
  local spec=$1 long=${STAGE2_LONG:-512:2048}
  case "$spec" in
    traj:teacher|traj:student|traj:teacher:*|traj:student:*)
      local who=${spec#traj:} kd= w a sw
      if [[ "$who" == *:* ]]; then  # traj:WHO:W[:A[:S]]: the teacher's velocity (the area, self terms) on the long clips
        w=${who#*:}; a= sw=
        [[ "$w" == *:* ]] && { a=${w#*:}; w=${w%%:*}; }
        [[ "$a" == *:* ]] && { sw=${a#*:}; a=${a%%:*}; [ -n "$sw" ] || sw=bad; }
        [[ "$w" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "bad variant spec: $spec" >&2; return 1; }
        [ -z "$a" ] || [[ "$a" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "bad variant spec: $spec" >&2; return 1; }
        [ -z "$sw" ] || [[ "$sw" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "bad variant spec: $spec" >&2; return 1; }
        [ "${ENCODER_S:-150}" = 0 ] && { echo "variant $spec weighs the teacher on long clips: it needs the encoder refit (ENCODER_S > 0)" >&2; return 1; }
        [ "$a" = 0 ] && a=
        kd="--stage2-distill $w ${a:+--stage2-area $a }${sw:+--stage2-self $sw }${sw:+${SELF_PROMPTS:+--stage2-self-prompts $SELF_PROMPTS }}"; who=${who%%:*}
      fi
      [ "${ENCODER_S:-150}" = 0 ] && long=0:0
      echo "--stage2-traj $who --stage2-long $long $kd${TRAJ_PROMPTS:+--stage2-traj-prompts $TRAJ_PROMPTS}" ;;
    *)
      [[ "$spec" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "bad variant spec: $spec" >&2; return 1; }
      [ "${ENCODER_S:-150}" = 0 ] && { echo "variant $spec encodes videos: it needs the encoder refit (ENCODER_S > 0)" >&2; return 1; }
      echo "--stage2-distill $spec --stage2-long $long" ;;
  esac
}

job() {
  set -u
  local preset=${PRESET:-long4} t0 rc i=0 name spec flags pids=() base_gpu base_pid= resume=$CK per=${PER_GPU:-}
  t0=$(date +%s)
  if [ -z "$per" ]; then per=2; [[ " ${VARIANTS:-} " == *=traj:* ]] && per=1; fi
  export PYTHONUNBUFFERED=1
  base_gpu=$(( 1 % NGPU ))
  evaluate() {  # gpu, checkpoint, out json, log, extra flags...
    local g=$1 c=$2 o=$3 l=$4; shift 4
    (cd training && CUDA_VISIBLE_DEVICES=$g python3 -m rehyat.eval.run --checkpoint "$c" --out "$o" --guidance 4 \
       "$@" ${EVAL_ARGS:-}) > "$l" 2>&1
  }
  compare() {  # base json, new json, out stem (.txt table, .json rows), extra flags...: rehyat.eval.compare
    local a=$1 b=$2 o=$3; shift 3
    (cd training && python3 -m rehyat.eval.compare "$a" "$b" --out "$o.json" "$@") > "$o.txt" 2>&1
  }
  for v in ${VARIANTS:-fm=0 kd=1}; do variant_flags "${v#*=}" > /dev/null || return 2; done
  # two trajectory runs side by side ran an 80 GB H100 out of memory (2026-12-07): one held 58 GB when
  # the other, decoding its trajectories' final latents 256 at a time, asked for 8 GB more. The cache
  # now decodes 16 at a time (bench/vae_decode_memory.py) and stage 2's metrics record each run's
  # peak (peak_gpu_mib); until a run shows two fit, refuse here
  local mib
  mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -n 1 | tr -dc 0-9)
  if [ "$per" -gt 1 ] && [[ " ${VARIANTS:-} " == *=traj:* ]] && [ -n "$mib" ] && [ "$mib" -lt 120000 ]; then
    echo "PER_GPU=$per with trajectory variants needs more than ${mib} MiB per GPU (two ran out of an 80 GB H100): use PER_GPU=1" >&2
    return 2
  fi
  # the baseline evaluation runs beside the refit: on GPU 1, or on a one-GPU machine on the same GPU
  if [ "${BASE_EVAL:-1}" != 0 ]; then
    evaluate $base_gpu "$CK" "$R/base/eval-g4.json" "$R/base/eval.log" & base_pid=$!
  fi
  if [ "${ENCODER_S:-150}" != 0 ]; then
    (cd training && CUDA_VISIBLE_DEVICES=0 python3 -m rehyat.train --preset "$preset" --seed 11 --resume "$CK" \
       --stages encoder --budget encoder="${ENCODER_S:-150}" ${ENCODER_CYCLE:+--encoder-cycle $ENCODER_CYCLE} \
       --out "$R/enc") > "$R/enc/train.log" 2>&1; rc=$?
    [ $rc -eq 0 ] && [ -f "$R/enc/checkpoint.pt" ] || { echo "[refit] encoder refit failed (exit $rc)"; return 1; }
    echo "[refit] encoder refit done after $(( $(date +%s) - t0 )) s: $(grep '^\[encoder\] recon' "$R/enc/train.log")"
    resume=$R/enc/checkpoint.pt
    if [ -n "$base_pid" ]; then wait "$base_pid"; echo "[refit] baseline evaluation exit $? after $(( $(date +%s) - t0 )) s"; base_pid=; fi
  fi
  echo "[refit] variants: ${VARIANTS:-fm=0 kd=1} (at most $per per GPU at once)"
  for v in ${VARIANTS:-fm=0 kd=1}; do
    name=${v%%=*}; spec=${v#*=}; flags=$(variant_flags "$spec")
    mkdir -p "$R/v$i"; echo "$name $spec: $flags" > "$R/v$i/variant.txt"
    while [ "$(jobs -rp | wc -l)" -ge $(( per * NGPU + (${#base_pid} > 0 ? 1 : 0) )) ]; do sleep 5; done
    (
      g=$(( i % NGPU ))
      echo "[refit] v$i ($name) starts on GPU $g after $(( $(date +%s) - t0 )) s"
      (cd training && CUDA_VISIBLE_DEVICES=$g python3 -m rehyat.train --preset "$preset" --seed $((21 + i)) \
         --resume "$resume" --stages stage2 --budget stage2="${STAGE2_S:-600}" --compile 0 \
         $flags --lr-scale "${LR_SCALE:-1}" --out "$R/v$i") > "$R/v$i/train.log" 2>&1 || exit $?
      evaluate $g "$R/v$i/checkpoint.pt" "$R/v$i/eval-g4.json" "$R/v$i/eval.log" --teacher-lengths 1; rc=$?
      # video by video: the variant's student against its teacher (within 3 points?), same evaluation
      if [ $rc -eq 0 ] && grep -q '"teacher":' "$R/v$i/eval-g4.json"; then
        compare "$R/v$i/eval-g4.json" "$R/v$i/eval-g4.json" "$R/v$i/vs-teacher" --base-model teacher --within 3 || rc=$?
      elif [ $rc -eq 0 ]; then echo "[refit] v$i ($name): no teacher sampled (EVAL_ARGS), no vs-teacher"; fi
      echo "[refit] v$i ($name) done after $(( $(date +%s) - t0 )) s (exit $rc)"
      exit $rc
    ) &
    pids+=($!); i=$((i + 1))
  done
  rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  if [ -n "$base_pid" ]; then wait "$base_pid" || rc=$?; fi
  # each variant against the release, video by video (same prompts and noise: a paired comparison)
  if [ -f "$R/base/eval-g4.json" ]; then
    for d in "$R"/v*/; do
      [ -f "$d/eval-g4.json" ] && { compare "$R/base/eval-g4.json" "$d/eval-g4.json" "$d/vs-base" || rc=$?; }
    done
  fi
  echo "[refit] all done after $(( $(date +%s) - t0 )) s (last failure exit: $rc)"
  return $rc
}

case "${1:?start or poll}" in
  start)
    CK=${CK:?CK must name the recovered checkpoint}
    case "$CK" in /*) ;; *) CK=$PWD/$CK ;; esac   # relative paths are from the repo root
    [ -f "$CK" ] || { echo "no checkpoint at $CK"; exit 1; }
    [ -f "$R/started" ] && { echo "already started"; exit 0; }
    mkdir -p "$R/enc" "$R/base"
    date +%s > "$R/started"
    export -f job variant_flags; export R NGPU CK
    setsid nohup bash -c 'job; echo $? > "$R/DONE"' > "$R/pipeline.log" 2>&1 < /dev/null &
    echo "started: $R ($NGPU GPU(s))" ;;
  poll)
    # a machine given back between calls lost the job: say so at once rather than wait for it
    [ -f "$R/started" ] || { echo "no run at $R: not started on this machine (a fresh one: the job was lost)"; exit 3; }
    end=$(( $(date +%s) + ${2:-540} ))
    while [ ! -f "$R/DONE" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 5; done
    O=${OUT:-/tmp/out}; mkdir -p "$O"
    n=0
    for d in "$R"/v*/; do
      [ -f "$d/checkpoint.pt" ] && [ $n -lt 6 ] && { cp "$d/checkpoint.pt" "$O/$(basename "$d")-checkpoint.pt"; n=$((n + 1)); }
    done
    (cd "$R" && find . -name '*.json' -o -name '*.log' -o -name '*.txt' | tar czf "$O/results.tgz" -T -)
    echo "elapsed $(( $(date +%s) - $(cat "$R/started") )) s; DONE: $(cat "$R/DONE" 2>/dev/null || echo no)"
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
    grep -E "^\[|Error|error" "$R/pipeline.log" | tail -n 12
    for f in "$R"/enc/train.log "$R"/base/eval.log "$R"/v*/train.log "$R"/v*/eval.log; do
      [ -f "$f" ] && { echo "== ${f#$R/}"; grep -E "^\[|Error" "$f" | tail -n 6 | cut -c1-400; }
    done
    for f in "$R"/v*/vs-base.txt; do  # the rows that moved beyond the noise
      [ -f "$f" ] && { echo "== ${f#$R/} (beyond the noise)"; grep -E "better|worse|higher|lower|Error|error" "$f" | head -n 20; }
    done
    true ;;
esac
