#!/usr/bin/env bash
# Train the default model (issue 4) on the CelebA subset in ../shared/data, on CPU, in the background.
#
#   scripts/train_default_model.sh            # start (or, if the run folder has a checkpoint, resume)
#   tail -f runs/default64/train.log          # progress; one summary line per evaluation
#
# Data: the 89x109 aligned set (ids 1-10000, all CelebA split 0) plus the split-0 images of the
# 178x218 aligned set; validation = up to 500 split-1 images of the 178x218 set (other people).
# The best model by mean swap accuracy is exported to runs/default64/model.fader at every evaluation
# that improves it; the run stops by itself after MAX_MINUTES with the best model exported.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/default64}
MAX_MINUTES=${MAX_MINUTES:-75}
THREADS=${THREADS:-2}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
ARGS=(--data "$DATA/celeba/img_align_celeba_89x109" --data "$DATA/celeba/img_align_celeba"
      --attr Smiling,Male,Young,Eyeglasses,Mouth_Slightly_Open
      --img-size 64 --n-layers 4 --init-fm 32 --max-fm 256 --n-skip 0
      --steps 40000 --max-minutes "$MAX_MINUTES" --lambda-schedule 3000
      --classifier-steps 600 --val-size 500 --eval-every 400 --ckpt-every 100
      --threads "$THREADS" --device cpu --out "$OUT")
if [ -f "$OUT/checkpoint_last.pt" ]; then ARGS+=(--resume); fi
OMP_WAIT_POLICY=PASSIVE nohup "$PY" -m training.cli "${ARGS[@]}" >>"$OUT/train.log" 2>&1 &
echo "started pid $! -> $OUT (log: $OUT/train.log)"
