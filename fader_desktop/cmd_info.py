"""`fader-desktop info`: show a model's metadata."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="M", help="model file (.fader); default: the embedded model")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from core.errors import printable as p
    from core.model_file import default_model_path, load_model, model_summary
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
    print(f"  image size: {summary['image_size']} px, {summary['parameters']:,} parameters, "
          f"classifier: {'yes' if summary['has_classifier'] else 'no'}"
          + (", decoded with each face's mirror image" if summary["mirror_decode"] else ""))
    for a in summary["attributes"]:
        print(f"  {p(a['name'])}: values {p(a['values'])}, slider range {a['range'][0]:g} .. {a['range'][1]:g}")
    if summary.get("metrics"):
        print(f"  metrics: {json.dumps(summary['metrics'])}")
    print(f"  licence: {p(summary['license'])}")
    source = summary.get("source")
    if isinstance(source, dict):   # an imported model: what it was made from, to check against the original
        for key, what in ((None, "imported from"), ("classifier", "classifier imported from")):
            s = source.get(key) if key else source
            if isinstance(s, dict) and s.get("file"):
                print(f"  {what}: {p(s['file'])}" + (f" ({p(s['kind'])})" if s.get("kind") else "")
                      + (f", sha256 {p(s['sha256'])}" if s.get("sha256") else ""))
    return 0


def _finite(v):
    """v with NaN and infinities (a model's metrics may hold them) as None: JSON has no such numbers."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v
