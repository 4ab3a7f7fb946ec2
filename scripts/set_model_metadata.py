"""Set the slider ranges and descriptive metadata stored in a .fader model (before shipping it).

    python scripts/set_model_metadata.py MODEL.fader [--range Smiling=-1:2 ...] [--name N]
        [--description D] [--card PATH] [--training-data TEXT] [--classifier OTHER.fader]
        [--mirror-decode on|off] [--out OUT.fader] [--half]

Writes OUT (default: MODEL itself, replaced atomically) with the same networks and the changed
metadata. The recommended slider ranges (the window's and the command line's fader limits) are
chosen from measurements (`python -m training.evaluation --strength S`) and sweeps
(`fader-desktop sweep`), see resources/models/default.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import FaderError  # noqa: E402
from core.model_file import load_model, save_model  # noqa: E402


def parse_range(spec: str) -> tuple:
    name, sep, rng = spec.partition("=")
    lo, sep2, hi = rng.partition(":")
    if not (sep and sep2 and name):
        raise FaderError(f"{spec!r}: expected NAME=LO:HI, e.g. Smiling=-1:2")
    try:
        return name, (float(lo), float(hi))
    except ValueError:
        raise FaderError(f"{spec!r}: LO and HI must be numbers") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--range", action="append", default=[], metavar="NAME=LO:HI", dest="ranges",
                   help="recommended slider range of an attribute (repeatable)")
    p.add_argument("--name", help="the model's display name")
    p.add_argument("--description", help="one-paragraph description")
    p.add_argument("--card", help="path of its model card (informative)")
    p.add_argument("--training-data", help="replace the training data description")
    p.add_argument("--classifier", help="take the evaluation classifier (and its validation figures) of this "
                                        "model instead (same attributes and image size)")
    p.add_argument("--mirror-decode", choices=("on", "off"),
                   help="decode each face with its mirror image and average the two (on: for models "
                        "whose attributes look the same in a mirror; the default model's figures are "
                        "measured so), or not (off)")
    p.add_argument("--out", help="output model (default: replace MODEL)")
    p.add_argument("--half", action="store_true", help="store float tensors as float16")
    a = p.parse_args(argv)
    try:
        model = load_model(a.model)
        by_name = {x.name: i for i, x in enumerate(model.attributes)}
        for spec in a.ranges:
            name, rng = parse_range(spec)
            if name not in by_name:
                raise FaderError(f"{a.model}: no attribute {name!r} (has {', '.join(by_name)})")
            i = by_name[name]
            model.attributes[i] = dataclasses.replace(model.attributes[i], range=rng)
        for key in ("name", "description", "card"):
            if getattr(a, key) is not None:
                model.meta[key] = getattr(a, key)
        if a.classifier:
            other = load_model(a.classifier)
            if other.classifier is None:
                raise FaderError(f"{a.classifier}: has no classifier")
            if [(x.name, x.values) for x in other.attributes] != [(x.name, x.values) for x in model.attributes] \
                    or other.image_size != model.image_size:
                raise FaderError(f"{a.classifier}: its classifier reads other attributes or another image size")
            model = dataclasses.replace(model, classifier=other.classifier, classifier_config=other.classifier_config)
            if "classifier" in other.meta:
                model.meta["classifier"] = dict(other.meta["classifier"], source=f"{a.classifier}")
        if a.mirror_decode is not None:
            model.meta["mirror_decode"] = a.mirror_decode == "on"
        if a.training_data is not None:
            model.meta.setdefault("training", {})["data"] = a.training_data
        save_model(model, a.out or a.model, half=a.half)
    except FaderError as e:
        print(f"set_model_metadata: error: {e}", file=sys.stderr)
        return 2
    print(f"{a.out or a.model}: {model.meta.get('name')}; ranges "
          + ", ".join(f"{x.name} {x.range[0]:g}..{x.range[1]:g}" for x in model.attributes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
