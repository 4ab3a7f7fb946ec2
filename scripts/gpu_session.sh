#!/usr/bin/env bash
# The GPU recipe, prepared for a lent machine that answers one command of at most 10 minutes and
# sends back only what the command leaves under $OUT (files of at most 16 MiB each).
#
# Here, once (the pack is 35.6 MiB at quality 83; with the 26.5 MiB working tree it must stay under
# the 64 MiB that travels):
#   .venv/bin/python -m training.pack --data ../shared/data/celeba/img_align_celeba \
#       --data ../shared/data/celeba/img_align_celeba_from_wild --exclude ../shared/data/celeba/img_celeba \
#       --attr Smiling,Male,Young,Eyeglasses,Mouth_Slightly_Open --img-size 128 --quality 83 -o runs/faces128.fpack
# There (the `run` tool, carry ["runs/faces128.fpack"], timeout_s 590):
#   bash scripts/gpu_session.sh runs/faces128.fpack 6
# The machine's own python3 holds torch with CUDA (not this project's .venv, which does not travel);
# the training code needs only torch, numpy, opencv, safetensors and tqdm, which it has.
# MINUTES (default 6) is the training budget: the cache, the evaluation classifier, the evaluations
# and the two exports need about 2 more minutes, and the command is killed at the tool's limit.
# Back here: judge $OUT's model_last.fader with bench/edit_judge.py against the shipped model.
set -euo pipefail
PACK=${1:?usage: gpu_session.sh PACK [MINUTES] [-- fader-train options]}
MINUTES=${2:-6}
shift $(( $# < 2 ? $# : 2 ))
OUT=${OUT:-runs/gpu_out}
PY=${PY:-python3}
RUN=${RUN:-runs/gpu128}
DEVICE=${DEVICE:-cuda}   # cpu: the same plumbing on a CPU (how the test suite checks this script)
mkdir -p "$OUT"
DEVICE="$DEVICE" "$PY" - <<'EOF'
import os, sys, torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, available {torch.cuda.is_available()}", flush=True)
if os.environ["DEVICE"] == "cuda":
    if not torch.cuda.is_available():
        sys.exit("gpu_session: no CUDA device")
    print(torch.cuda.get_device_name(0), f"bf16 {torch.cuda.is_bf16_supported()}", flush=True)
EOF
status=0
# The model files are copied back even when the run stops early (what was exported still counts).
"$PY" -m training.gpu_recipe --pack "$PACK" --out "$RUN" --device "$DEVICE" --minutes "$MINUTES" "$@" 2>&1 \
    | tee "$OUT/gpu_recipe.txt" | tail -n 60 || status=$?
# The discriminator files beside the models let `fader-train --continue` go on from them faithfully.
for f in model_last.fader model.fader model_last.discriminators.safetensors model.discriminators.safetensors \
         log.jsonl fader-run.json; do
    [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"
done
latest=$(ls -t "$RUN"/*.png 2>/dev/null | head -n 1 || true)
[ -n "$latest" ] && cp "$latest" "$OUT/"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv > "$OUT/nvidia-smi.csv" 2>/dev/null || true
ls -la "$OUT"
exit "$status"
