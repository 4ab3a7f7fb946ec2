"""`fader-desktop info`: show a model's metadata."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


EXAMPLES = """examples:
  fader-desktop info
  fader-desktop info --model runs/r1/model.fader --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="M", help="model file (.fader); default: the embedded model")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from core.errors import printable as p
    from core.model_file import default_model_path, load_model, model_summary, size_text
    path = Path(args.model) if args.model else default_model_path()
    model = load_model(path)
    summary = model_summary(model)
    summary["path"] = str(path)
    summary = _finite(summary)
    if args.json:
        print(json.dumps(summary, allow_nan=False))  # JSON escapes control characters itself
        return 0
    # the model file's strings are shown, never sent to the terminal raw (escape sequences)
    print(f"{p(summary['name'])}  ({p(path)})")
    print(f"  image size: {summary['image_size']} px"
          + (", decoded with each face's mirror image" if summary["mirror_decode"] else ""))
    print(f"  model size: {size_text(summary)}")
    for a in summary["attributes"]:
        values = ", ".join(p(v) for v in a["values"])
        print(f"  {p(a['name'])}: values {values}, slider range {a['range'][0]:g} .. {a['range'][1]:g}")
    for line in metrics_lines(summary.get("metrics")):
        print(f"  {p(line)}")
    print(f"  licence: {p(summary['license'])}")
    source = summary.get("source")
    if isinstance(source, dict):   # an imported model: what it was made from, to check against the original
        for key, what in ((None, "imported from"), ("classifier", "classifier imported from")):
            s = source.get(key) if key else source
            if isinstance(s, dict) and s.get("file"):
                print(f"  {what}: {p(s['file'])}" + (f" ({p(s['kind'])})" if s.get("kind") else "")
                      + (f", sha256 {p(s['sha256'])}" if s.get("sha256") else ""))
    return 0


def _number(v, fmt: str) -> str | None:
    return format(v, fmt) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def metrics_lines(metrics) -> list:
    """A model's training figures in a few readable lines (every figure: --json). The trainer's
    own (step, validation PSNR, swap accuracy and its lowest attribute, others unchanged) by name;
    a file made elsewhere: its top-level numbers. A raw JSON dump of ~1,000 characters was shown."""
    if not isinstance(metrics, dict) or not metrics:
        return []
    val = metrics.get("validation") if isinstance(metrics.get("validation"), dict) else {}
    said = []
    step = metrics.get("step")
    if isinstance(step, int) and not isinstance(step, bool):
        said.append(f"step {step:,d}")
    figures = []
    if _number(val.get("psnr"), ".2f"):
        figures.append(f"PSNR {val['psnr']:.2f} dB")
    if _number(val.get("swap_mean"), ".3f"):
        swap = f"swap accuracy {val['swap_mean']:.3f}"
        per = val.get("swap_accuracy")
        if isinstance(per, dict) and per and all(_number(x, "g") for x in per.values()):
            low = min(per, key=per.get)
            swap += f" (lowest {low} {per[low]:.2f})"
        figures.append(swap)
    if _number(val.get("others_unchanged_mean"), ".3f"):
        figures.append(f"others unchanged {val['others_unchanged_mean']:.3f}")
    if figures:
        n = f" on {val['n_images']:,d} images" if isinstance(val.get("n_images"), int) else ""
        said.append(f"validation{n}: " + ", ".join(figures))
    if not said:   # not the trainer's layout: its top-level numbers
        said = [f"{k} {_number(v, 'g')}" for k, v in metrics.items() if _number(v, "g")][:8]
    return [f"training: {'; '.join(said)} (every figure: --json)"] if said else ["training figures: see --json"]


def _finite(v):
    """v with NaN and infinities (a model's metrics may hold them) as None: JSON has no such numbers."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v
