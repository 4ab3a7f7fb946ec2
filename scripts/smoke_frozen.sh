#!/usr/bin/env bash
# Smoke test of the packaged app (or of the source tree, for comparison).
#
#   scripts/smoke_frozen.sh dist/FaderDesktop/FaderDesktop [--model M]
#   scripts/smoke_frozen.sh --source [--model M]          # the same checks on `python -m fader_desktop.frozen_entry`
#
# Checks, each printing one "smoke:" line (exit status 1 at the first failure):
#   info --json        the model loads (the embedded default, else --model); its path is inside the bundle
#   <cmd> --help       every sub-command's module is in the bundle (edit, info, batch, sweep, import-reference, train)
#   edit               a real photo (../shared/data/celeba/img_celeba, else a generated aligned face with --aligned)
#   edit of a HEIC     tests/data/astronaut_phone.heic, a phone's photo: upright, its colour profile kept
#   sample photo       resources/samples/astronaut.jpg beside the embedded model (Help ▸ Open sample photo)
#   batch              a folder of two photos
#   train              a few training steps on a tiny labeled folder, then `info` on the exported model
#   window             QT_QPA_PLATFORM=offscreen --smoke-test PHOTO: painted, model loaded, photo open, then quits;
#                      again without a photo, and under Xvfb with the xcb platform when xvfb-run exists
# and finally the start-up times of the window (seconds from process start, see frozen_entry.py).
# Environment: PYTHON (for --source and for making test images; default .venv/bin/python), PHOTO (a photo to
# use), SMOKE_TIMEOUT (seconds per window run, default 300), NICE (default 15; the machine is shared).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
NICE="${NICE:-15}"

if [ "${1:-}" = "--source" ]; then
    EXE=("$PY" -m fader_desktop.frozen_entry); KIND=source; shift
else
    [ $# -ge 1 ] && [ -x "$1" ] || { echo "usage: $0 EXECUTABLE|--source [--model M]" >&2; exit 2; }
    EXE=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); KIND=frozen; shift
fi
MODEL_ARGS=()
if [ "${1:-}" = "--model" ]; then MODEL_ARGS=(--model "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fader-smoke.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# A clean user: settings, log, caches of this run only. The frozen app runs from a foreign folder.
export XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/data" XDG_CACHE_HOME="$WORK/cache"
export FADER_CACHE_DIR="$WORK/cache/training" OMP_WAIT_POLICY=PASSIVE
if [ "$KIND" = frozen ]; then cd "$WORK"; else cd "$ROOT"; fi

run() { nice -n "$NICE" "${EXE[@]}" "$@"; }
ok() { echo "smoke: ok    $*"; }
fail() { echo "smoke: FAIL  $*" >&2; exit 1; }

# ---- test images: real photos if the shared data is there, else generated aligned faces
SHARED="$ROOT/../shared/data/celeba"
PHOTOS=(); ALIGNED=()
if [ -n "${PHOTO:-}" ]; then
    PHOTOS=("$PHOTO")
elif compgen -G "$SHARED/img_celeba/*.jpg" >/dev/null; then
    mapfile -t PHOTOS < <(ls "$SHARED"/img_celeba/*.jpg | head -2)
fi
mkdir -p "$WORK/data/Smiling/no" "$WORK/data/Smiling/yes" "$WORK/in"
if compgen -G "$SHARED/img_align_celeba/*.jpg" >/dev/null; then
    mapfile -t A < <(ls "$SHARED"/img_align_celeba/*.jpg | head -24)
    for i in "${!A[@]}"; do cp "${A[$i]}" "$WORK/data/Smiling/$([ $((i % 2)) = 0 ] && echo no || echo yes)/"; done
else
    "$PY" - "$WORK/data/Smiling" <<'EOF'
import sys, numpy as np
from pathlib import Path
from PIL import Image, ImageDraw
root = Path(sys.argv[1]); rng = np.random.default_rng(0)
for i in range(24):
    im = Image.new("RGB", (178, 218), tuple(int(c) for c in rng.integers(60, 200, 3)))
    d = ImageDraw.Draw(im)
    d.ellipse((44, 50, 134, 170), fill=(224, 180, 150)); d.ellipse((65, 95, 80, 105), fill=(40, 30, 30))
    d.ellipse((98, 95, 113, 105), fill=(40, 30, 30))
    d.arc((70, 120, 108, 150 if i % 2 else 135), 0, 180, fill=(150, 40, 40), width=3)
    im.save(root / ("yes" if i % 2 else "no") / f"{i:03d}.jpg", quality=92)
EOF
fi
if [ ${#PHOTOS[@]} -eq 0 ]; then
    mapfile -t PHOTOS < <(ls "$WORK"/data/Smiling/*/*.jpg | head -2); ALIGNED=(--aligned)
fi
cp "${PHOTOS[@]}" "$WORK/in/"
echo "smoke: $KIND ${EXE[*]} (photo ${PHOTOS[0]}${ALIGNED[*]:+, aligned})"

# ---- info --json
run info "${MODEL_ARGS[@]}" --json > "$WORK/info.json" || fail "info --json"
ATTR="$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["attributes"][0]["name"])' "$WORK/info.json")"
# the slider's low end: far from the photo's own value for most faces (a smiling face stays one at 1)
VALUE="$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["attributes"][0]["range"][0])' "$WORK/info.json")"
MPATH="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' "$WORK/info.json")"
if [ "$KIND" = frozen ] && [ ${#MODEL_ARGS[@]} -eq 0 ]; then
    case "$MPATH" in "$(dirname "${EXE[0]}")"/*) ;; *) fail "info: the embedded model $MPATH is not inside the bundle";; esac
fi
ok "info --json: $(head -c 240 "$WORK/info.json")"

# ---- the sample photo (Help ▸ Open sample photo) ships beside the embedded model
if [ ${#MODEL_ARGS[@]} -eq 0 ]; then
    SAMPLE="$(dirname "$(dirname "$MPATH")")/samples/astronaut.jpg"
    [ -f "$SAMPLE" ] || fail "the sample photo $SAMPLE is not there"
    run edit "$SAMPLE" -o "$WORK/sample.jpg" --set "$ATTR=$VALUE" > /dev/null 2>&1 || fail "edit of the sample photo"
    ok "sample photo: $SAMPLE, edited"
fi

# ---- every sub-command is there
for c in edit info batch sweep import-reference train; do
    run "$c" --help > /dev/null || fail "$c --help"
done
ok "--help of edit, info, batch, sweep, import-reference, train"

# ---- edit
run edit "${PHOTOS[0]}" -o "$WORK/edited.jpg" --set "$ATTR=$VALUE" "${ALIGNED[@]}" "${MODEL_ARGS[@]}" || fail "edit"
# a real (embedded) model must change the face; a tiny random test model may not
"$PY" - "${PHOTOS[0]}" "$WORK/edited.jpg" "$ATTR=$VALUE" "${#MODEL_ARGS[@]}" <<'EOF' || fail "edit: output"
import sys, numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert("RGB"), np.int16) for p in sys.argv[1:3])
assert a.shape == b.shape, (a.shape, b.shape)
diff = np.abs(a - b).max(2)
changed, peak = float((diff > 8).mean()), int(diff.max())
print(f"smoke: ok    edit --set {sys.argv[3]}: {b.shape[1]}x{b.shape[0]} written, {changed:.2%} of the pixels "
      f"changed by more than 8/255 (at most {peak}/255)")
assert sys.argv[4] != "0" or changed > 0, "the embedded model changed nothing"
EOF

# ---- a phone's HEIC photo (pi-heif and its libheif/libde265 in the bundle), stored on its side
run edit "$ROOT/tests/data/astronaut_phone.heic" -o "$WORK/phone.jpg" --set "$ATTR=$VALUE" "${MODEL_ARGS[@]}" \
    || fail "edit of a HEIC photo"
"$PY" - "$WORK/phone.jpg" <<'EOF' || fail "edit of a HEIC photo: output"
import sys
from PIL import Image
with Image.open(sys.argv[1]) as im:
    assert im.size == (384, 512), im.size  # upright
    assert im.info.get("icc_profile"), "the photo's Display P3 profile was dropped"
print("smoke: ok    edit of a HEIC photo: upright 384x512 JPEG with its colour profile")
EOF

# ---- batch
run batch "$WORK/in" -o "$WORK/out" --set "$ATTR=1" "${ALIGNED[@]}" "${MODEL_ARGS[@]}" > "$WORK/batch.log" 2>&1 \
    || { cat "$WORK/batch.log" >&2; fail "batch"; }
n_out=$(find "$WORK/out" -type f -name '*.jpg' | wc -l)
[ "$n_out" -ge 1 ] || { cat "$WORK/batch.log" >&2; fail "batch: no output"; }
ok "batch: $n_out image(s) written"

# ---- train (a few steps; the point is that the trainer runs frozen, not the model)
run train --data "$WORK/data/Smiling" --out "$WORK/run" --steps 4 --img-size 32 --batch-size 4 --init-fm 8 \
    --max-fm 32 --hid-dim 16 --classifier-steps 2 --eval-every 4 --ckpt-every 4 --val-size 4 --device cpu \
    --threads 1 --quiet > "$WORK/train.log" 2>&1 || { tail -20 "$WORK/train.log" >&2; fail "train"; }
[ -f "$WORK/run/model.fader" ] || { tail -20 "$WORK/train.log" >&2; fail "train: no model.fader"; }
run info --model "$WORK/run/model.fader" --json > /dev/null || fail "info on the trained model"
ok "train: 4 steps, $(du -k "$WORK/run/model.fader" | cut -f1) KiB model.fader exported and readable"

# ---- the window, offscreen: painted, model loaded, photo open, then it quits by itself
window() {  # prints the JSON line; exit status of the app
    local st=0
    QT_QPA_PLATFORM=offscreen FADER_SMOKE_TIMEOUT="${SMOKE_TIMEOUT:-300}" run --smoke-test "${MODEL_ARGS[@]}" "$@" \
        > "$WORK/window.out" 2> "$WORK/window.err" || st=$?
    grep '^{"smoke"' "$WORK/window.out" | tail -1
    return $st
}
st=0; W="$(window "${PHOTOS[0]}")" || st=$?
[ $st = 0 ] && echo "$W" | grep -q '"smoke": "ok"' || { tail -30 "$WORK/window.err" >&2; fail "window: exit status $st: $W"; }
ok "window: $W"
st=0; W2="$(window)" || st=$?
[ $st = 0 ] && echo "$W2" | grep -q '"smoke": "ok"' || { tail -30 "$WORK/window.err" >&2; fail "window (no photo): exit status $st: $W2"; }
ok "window, no photo (start-up): $W2"
# ---- and on a real X server (the xcb platform plugin and its libraries), when Xvfb is installed
if command -v xvfb-run >/dev/null; then
    st=0
    W3="$(QT_QPA_PLATFORM=xcb FADER_SMOKE_TIMEOUT="${SMOKE_TIMEOUT:-300}" nice -n "$NICE" xvfb-run -a -s "-screen 0 1280x800x24" \
        "${EXE[@]}" --smoke-test "${MODEL_ARGS[@]}" "${PHOTOS[0]}" 2> "$WORK/window.err" | grep '^{"smoke"' | tail -1)" || st=$?
    [ $st = 0 ] && echo "$W3" | grep -q '"smoke": "ok"' || { tail -30 "$WORK/window.err" >&2; fail "window under Xvfb: exit status $st: $W3"; }
    ok "window under Xvfb (xcb): $W3"
else
    echo "smoke: skip  window under Xvfb (xvfb-run is not installed)"
fi
echo "smoke: all checks passed ($KIND)"
