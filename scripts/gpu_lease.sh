#!/usr/bin/env bash
# One lent GPU call (the `run` tool: one command of at most 10 minutes, 15 minutes of device time in
# all, at most 8 files back from $OUT), spent on three trainings that share the GPU at once:
#   A  the GPU recipe from scratch (scripts/gpu_session.sh: training.gpu_recipe, batch 256),
#   B  the committed CPU run (docs/default_model/replica/, with its critic) continued at batch 256,
#      learning rate 4e-4, warm restart then a linear decay to 0 by the clock,
#   C  the same continuation at the CPU recipe's own batch 32 and rate 2e-4 (stage F unchanged,
#      only faster).
# Each is one small model whose steps leave most of an H200 idle (kernel launches), so three at once
# cost each less than a third of the GPU. Every job is stopped by SIGINT (checkpoint kept, model
# exported) before the call's limit, and each run's end state is exported as NAME_model_last.fader
# with its discriminators, so that `fader-train --continue` goes on from it here.
#
# Here, once: the pack (35.6 MiB at quality 83: with the 26.5 MiB working tree under the 64 MiB that
# travels):
#   .venv/bin/python -m training.pack --data ../shared/data/celeba/img_align_celeba \
#       --data ../shared/data/celeba/img_align_celeba_from_wild --exclude ../shared/data/celeba/img_celeba \
#       --attr Smiling,Male,Young,Eyeglasses,Mouth_Slightly_Open --img-size 128 --quality 83 -o runs/faces128.fpack
# There (carry ["runs/faces128.fpack"], timeout_s 590):
#   bash scripts/gpu_lease.sh runs/faces128.fpack
# Back here: judge the three model_last files with bench/edit_judge.py against the shipped model.
# DEVICE=cpu MINUTES=... STOP_AFTER=... TINY="fader-train options" run the same plumbing on a CPU.
set -uo pipefail
PACK=${1:?usage: gpu_lease.sh PACK}
OUT=${OUT:-runs/gpu_out}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-6}          # each job's training budget (its learning rate decays by this clock)
STOP_AFTER=${STOP_AFTER:-525}  # seconds: SIGINT to any job still running (the call ends at 590)
RUNS=${RUNS:-runs/lease}
POLL=${FADER_LEASE_POLL_S:-15}  # seconds between looks at the jobs (and nvidia-smi samples)
REPLICA=${REPLICA:-docs/default_model/replica/model.fader}
read -r -a TINY <<< "${TINY:-}"
AMP=bf16; [ "$DEVICE" = cpu ] && AMP=off
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
"$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, available {torch.cuda.is_available()}", flush=True)
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), f"bf16 {torch.cuda.is_bf16_supported()}", flush=True)
EOF
t0=$(date +%s)
# job NAME CMD...: runs CMD in the background, logged to RUNS/NAME.log, stopped by SIGINT at STOP_AFTER;
# a job that fails in its first 2 minutes (say bf16 on this device) is started once more without autocast.
job() {
  local name=$1; shift
  (
    s=$(date +%s)
    timeout -s INT -k 40 $(( STOP_AFTER - (s - t0) )) "$@" > "$RUNS/$name.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $(( $(date +%s) - s )) -lt 120 ] && [ "$AMP" != off ]; then
      echo "== $name: exit $rc early; again with --amp off" >> "$RUNS/$name.retry.log"
      cat "$RUNS/$name.log" >> "$RUNS/$name.retry.log"
      rm -rf "$RUNS/$name"
      timeout -s INT -k 40 $(( STOP_AFTER - ($(date +%s) - t0) )) "$@" --amp off > "$RUNS/$name.log" 2>&1
      rc=$?
    fi
    echo "== $name: exit $rc after $(( $(date +%s) - s )) s" >> "$RUNS/$name.log"
  ) &
}
COMMON=(--data "$PACK" --device "$DEVICE" --amp "$AMP" --data-on-device --threads 4 --steps 1000000
        --max-minutes "$MINUTES" --val-size 300 --classifier-steps 400 --classifier-max-fm 256 --half-export --quiet)
# A: the recipe (its own minutes: the cache, classifier and two exports come on top)
job A "$PY" -m training.gpu_recipe --pack "$PACK" --out "$RUNS/A" --device "$DEVICE" --minutes "$MINUTES" \
    -- --threads 4 "${TINY[@]}"
job B "$PY" -m training.cli --continue "$REPLICA" --out "$RUNS/B" "${COMMON[@]}" --batch-size 256 --lr 4e-4 \
    --lr-decay-minutes "$("$PY" -c "print($MINUTES * 0.6)")" --eval-every 1000 --ckpt-every 1000 "${TINY[@]}"
job C "$PY" -m training.cli --continue "$REPLICA" --out "$RUNS/C" "${COMMON[@]}" --batch-size 32 --lr 2e-4 \
    --lr-decay-minutes "$("$PY" -c "print($MINUTES * 0.5)")" --eval-every 3000 --ckpt-every 3000 "${TINY[@]}"
while [ -n "$(jobs -r)" ]; do
  sleep "$POLL"
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> "$RUNS/nvidia-smi.log" 2>/dev/null
done
wait
echo "all jobs done after $(( $(date +%s) - t0 )) s"
# each run's end state, without its evaluation classifier (3 MiB instead of 11: 8 files of at most
# 64 MiB together come back; a continuation trains its own classifier in a minute); one process for
# the three (each Python that imports torch costs seconds of the lease), each run's own log
"$PY" - "$RUNS" "$OUT" A B C <<'PYEOF'
import contextlib
import sys
import traceback
from pathlib import Path
from training.trainer import CHECKPOINT_NAME, export_checkpoint
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
for name in sys.argv[3:]:
    ck = runs / name / CHECKPOINT_NAME
    if not ck.is_file():
        continue
    with open(runs / f"{name}.export.log", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            export_checkpoint(ck, out / f"{name}_model_last.fader", half=True, classifier=False)
            ok = True
        except Exception:
            traceback.print_exc()
            ok = False
    if not ok:
        print(f"{name}: export failed (see {name}.export.log)", flush=True)
PYEOF
for name in A B C; do
  run="$RUNS/$name"
  tail -n 3 "$RUNS/$name.log"
  [ -f "$run/log.jsonl" ] && tail -n 1 "$run/log.jsonl" | cut -c1-400
done
[ -f "$RUNS/A/model.fader" ] && cp "$RUNS/A/model.fader" "$OUT/A_model.fader"
# logs, evaluations and the last previews in one file (8 files at most come back)
( cd "$RUNS" && tar czf - --exclude='*.pt' --exclude='*.fader' --exclude='*.safetensors' --exclude='*.fpack' \
    --exclude='cache' --exclude='preview_0*' --exclude='train_files.txt' . ) > "$OUT/logs.tgz"
ls -la "$OUT"
echo "gpu_lease: $(( $(date +%s) - t0 )) s in all"
