"""`fader-desktop info`: show a model's metadata."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from core.figures import split_circular


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
    for line in training_lines(summary.get("training")) + metrics_lines(summary.get("metrics"), summary.get("training")):
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


def _count(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _names(v) -> list:
    return [str(x) for x in v] if isinstance(v, list) else []


def training_lines(training) -> list:
    """What a model was trained on, from its metadata's `training`: the data (its description names
    the source and its kind), the numbers of training, validation, skipped and excluded images, and the
    model it was fine-tuned (--init) or continued (--continue) from. [] for a model without it."""
    if not isinstance(training, dict) or not isinstance(training.get("data"), str):
        return []
    said = [training["data"]]
    n_train, n_val = _count(training.get("n_train")), _count(training.get("n_val"))
    if n_train is not None and n_val is not None:
        counts = f"{n_train:,d} training / {n_val:,d} validation images"
        left = []
        skipped = training.get("skipped")
        n_skipped = sum(_count(x) or 0 for x in skipped.values()) if isinstance(skipped, dict) else 0
        if n_skipped:
            left.append(f"{n_skipped:,d} skipped")
        excluded = training.get("excluded")
        if isinstance(excluded, dict) and _count(excluded.get("images")):
            left.append(f"{excluded['images']:,d} excluded")
        said.append(counts + (f" ({', '.join(left)})" if left else ""))
    lines = [f"trained on: {', '.join(said)}"]
    init, cont = training.get("init"), training.get("continued_from")
    if isinstance(init, str) and init:
        pseudo = _names(training.get("pseudo_labelled"))
        lines.append(f"fine-tuned from {init}" + (f"; {', '.join(pseudo)} labelled by its classifier, not by the data"
                                                 if pseudo else ""))
    elif isinstance(cont, dict) and isinstance(cont.get("model"), str):
        step = _count(cont.get("step"))
        lines.append(f"continued from {cont['model']}" + (f" (at step {step:,d})" if step is not None else ""))
    return lines


def metrics_lines(metrics, training=None) -> list:
    """A model's training figures in a few readable lines (every figure: --json). The trainer's
    own (step, validation PSNR, swap accuracy and its lowest attribute, others unchanged) by name;
    a file made elsewhere: its top-level numbers. A raw JSON dump of ~1,000 characters was shown.
    A fine-tune's attributes its data did not label (`training`'s pseudo_labelled) were labelled by
    its --init model's classifier, so their swap accuracy is circular (1.000): the swap figure is
    the others' and says so."""
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
    pseudo = _names((training or {}).get("pseudo_labelled")) if isinstance(training, dict) else []
    per = val.get("swap_accuracy")
    per = per if isinstance(per, dict) and per and all(_number(x, "g") for x in per.values()) else None
    own, _, own_mean = split_circular(per, pseudo) if per and pseudo else (None, None, None)
    if own:   # a fine-tune: the data's own attributes only
        low = min(own, key=own.get)
        figures.append(f"swap accuracy {own_mean:.3f} on {', '.join(own)}"
                       + (f", lowest {low} {own[low]:.2f}" if len(own) > 1 else "")
                       # all of them: a trainer that leaves their figures out saves none of them
                       + f" ({', '.join(pseudo)}: not measured, labelled by the classifier it was fine-tuned from)")
    elif _number(val.get("swap_mean"), ".3f"):
        swap = f"swap accuracy {val['swap_mean']:.3f}"
        if per:
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
