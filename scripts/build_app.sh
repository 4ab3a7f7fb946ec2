#!/usr/bin/env bash
# Build the packaged app with PyInstaller (installer.spec) and smoke-test it.
#
#   scripts/build_app.sh                      # full build (CUDA torch) -> dist/FaderDesktop/FaderDesktop
#   scripts/build_app.sh --cpu-only           # CPU-only build         -> dist/cpu/FaderDesktop/FaderDesktop
#
# Options:
#   --new-venv       create the build venv first (build/venv, or build/venv-cpu with --cpu-only) and install
#                    the dependencies from pyproject.toml plus PyInstaller; a fresh clone needs this (or --python)
#   --python PY      build with this interpreter (default: the venv of --new-venv, else .venv/bin/python)
#   --model M        smoke-test with this model when resources/models/default.fader is absent
#   --no-smoke       build only;  --smoke-only: test an existing build
#   --no-timing      skip the start-up timing of the source tree
# Environment: NICE (default 15: the build is a background job on a shared machine), CPU_TORCH (default
# torch==2.13.0), PIP_CPU_ARGS (default --index-url https://download.pytorch.org/whl/cpu plus PyPI as extra
# index; set it to "" where pip already finds a CPU wheel, e.g. a local wheel folder).
#
# Not run in CI: a build takes 15-40 minutes and writes 1-5 GB; run it before every release (docs/packaging.md).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
NICE="${NICE:-15}"
CPU_ONLY=0; NEW_VENV=0; PY=""; MODEL=""; BUILD=1; SMOKE=1; TIMING=1
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-only) CPU_ONLY=1 ;;
        --new-venv) NEW_VENV=1 ;;
        --python) PY="$2"; shift ;;
        --model) MODEL="$2"; shift ;;
        --no-smoke) SMOKE=0 ;;
        --smoke-only) BUILD=0 ;;
        --no-timing) TIMING=0 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "build_app.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -z "$MODEL" ] || MODEL="$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")"
if [ $CPU_ONLY = 1 ]; then VARIANT=cpu; DIST=dist/cpu; WORK=build/cpu; VENV=build/venv-cpu
else VARIANT=full; DIST=dist; WORK=build/full; VENV=build/venv; fi
EXE="$DIST/FaderDesktop/FaderDesktop"
log() { echo "build_app: $*"; }

# ---- the build environment
if [ $NEW_VENV = 1 ]; then
    PY="${PY:-python3}"
    log "creating $VENV with $("$PY" --version)"
    rm -rf "$VENV" && "$PY" -m venv "$VENV"
    PY="$VENV/bin/python"
    nice -n "$NICE" "$PY" -m pip install --quiet --upgrade pip
    # the runtime dependencies from pyproject.toml (+ PyInstaller); the CPU variant swaps torch for a CPU
    # build and drops torchvision (not used since core/faces.py has its own NMS)
    mapfile -t DEPS < <("$PY" - "$CPU_ONLY" <<'EOF'
import sys, tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = list(p["dependencies"]) + [d for d in p["optional-dependencies"]["build"]]
if sys.argv[1] == "1":
    deps = [d for d in deps if not d.replace(" ", "").startswith(("torch==", "torch>", "torch<", "torchvision"))
            and d.strip() not in ("torch", "torchvision")]
print("\n".join(deps))
EOF
)
    if [ $CPU_ONLY = 1 ]; then
        read -r -a CPU_ARGS <<< "${PIP_CPU_ARGS---index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple}"
        log "installing ${CPU_TORCH:-torch==2.13.0} (CPU) ${CPU_ARGS[*]}"
        nice -n "$NICE" "$PY" -m pip install --quiet "${CPU_TORCH:-torch==2.13.0}" "${CPU_ARGS[@]}"
    fi
    log "installing ${DEPS[*]}"
    nice -n "$NICE" "$PY" -m pip install --quiet "${DEPS[@]}"
fi
PY="${PY:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || { echo "build_app.sh: no Python at $PY (use --new-venv or --python)" >&2; exit 2; }
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
read -r TORCH_VERSION CUDA <<< "$(nice -n "$NICE" "$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)')"
log "$VARIANT build with $("$PY" --version), torch $TORCH_VERSION (CUDA $CUDA), $PY"
if [ $CPU_ONLY = 1 ] && [ "$CUDA" != None ]; then
    echo "build_app.sh: --cpu-only needs a CPU build of torch; this one is built for CUDA $CUDA (use --new-venv)" >&2; exit 2
fi

# ---- build
if [ $BUILD = 1 ]; then
    log "PyInstaller -> $EXE (log: $WORK.log)"
    mkdir -p build
    start=$(date +%s)
    FADER_CPU_ONLY=$CPU_ONLY nice -n "$NICE" "$PY" -m PyInstaller --noconfirm --log-level WARN \
        --distpath "$DIST" --workpath "$WORK" installer.spec > "$WORK.log" 2>&1 \
        || { tail -40 "$WORK.log" >&2; echo "build_app.sh: PyInstaller failed (full log: $WORK.log)" >&2; exit 1; }
    log "built in $(( $(date +%s) - start )) s"
fi
[ -x "$EXE" ] || { echo "build_app.sh: $EXE is missing" >&2; exit 1; }

# ---- what is in it
du_mb() { du -sm "$1" 2>/dev/null | cut -f1; }
INTERNAL="$DIST/FaderDesktop/_internal"
log "size: $(du_mb "$DIST/FaderDesktop") MB  (torch $(du_mb "$INTERNAL/torch") MB, nvidia $(du_mb "$INTERNAL/nvidia" || echo 0) MB, \
Qt/PySide6 $(du_mb "$INTERNAL/PySide6") MB, cv2 $(( $(du_mb "$INTERNAL/cv2") + $(du_mb "$INTERNAL/opencv_python_headless.libs" || echo 0) )) MB, \
resources $(du_mb "$INTERNAL/resources") MB)"
for bad in triton torchvision tkinter _tkinter pytest PySide6/Qt/qml "cv2/qt" "PySide6/Qt/lib/libQt6Qml.so.6" "PySide6/Qt/lib/libQt6Pdf.so.6"; do
    if [ -e "$INTERNAL/$bad" ] || compgen -G "$INTERNAL/$bad*" >/dev/null; then echo "build_app.sh: $bad is in the bundle" >&2; exit 1; fi
done
if [ $CPU_ONLY = 1 ] && find "$INTERNAL" -name 'libcudart*' -o -name 'libtorch_cuda*' | grep -q .; then
    echo "build_app.sh: CUDA libraries in the CPU-only build" >&2; exit 1
fi
missing="$(find "$INTERNAL" -name '*.so*' -type f -print0 | LD_LIBRARY_PATH= xargs -0 -r ldd 2>/dev/null \
    | grep 'not found' | sort -u || true)"
[ -z "$missing" ] || log "note: unresolved library references (plugins for absent system libraries are fine): $(echo "$missing" | tr -s ' \n' ' ')"

[ $SMOKE = 1 ] || exit 0

# ---- smoke test: the embedded model if there is one, else --model (or a tiny random model)
SMOKE_MODEL=()
if [ -f "$INTERNAL/resources/models/default.fader" ]; then
    log "smoke test with the embedded model"
elif [ -n "$MODEL" ]; then
    SMOKE_MODEL=(--model "$MODEL")
else
    MODEL="$ROOT/build/smoke-tiny.fader"
    "$PY" -c "import sys; sys.path[:0] = ['$ROOT', '$ROOT/tests']; from conftest import make_tiny_model; \
from pathlib import Path; make_tiny_model(Path('$MODEL'))"
    SMOKE_MODEL=(--model "$MODEL")
    log "no embedded model (resources/models/default.fader): smoke test with a tiny random model"
fi
NICE="$NICE" PYTHON="$PY" scripts/smoke_frozen.sh "$EXE" "${SMOKE_MODEL[@]}"

# ---- start-up to a painted window: frozen vs source (3 runs each, no photo, the smoke test's model)
if [ $TIMING = 1 ]; then
    T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
    timing() {
        for i in 1 2 3; do
            env XDG_CONFIG_HOME="$T/c$i" XDG_DATA_HOME="$T/d$i" QT_QPA_PLATFORM=offscreen \
                nice -n "$NICE" "$@" --smoke-test "${SMOKE_MODEL[@]}" 2>/dev/null | grep '^{"smoke"' \
                | "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d.get("window_painted_s"), d.get("model_loaded_s"))'
        done | sort -n | sed -n 2p  # the median of 3
    }
    read -r f_paint f_model <<< "$(cd "$T" && timing "$ROOT/$EXE")"
    read -r s_paint s_model <<< "$(timing "$PY" -m fader_desktop.frozen_entry)"
    log "start-up (median of 3, seconds from process start): window painted frozen $f_paint / source $s_paint; \
model loaded frozen $f_model / source $s_model"
fi
log "done: $EXE"
