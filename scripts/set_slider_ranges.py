"""Set the recommended slider ranges stored in a .fader model (the window's and CLI's slider limits).

    python scripts/set_slider_ranges.py MODEL.fader Smiling=-1:2 Young=-1.5:2.5 ... [--out OUT.fader] [--half]

Writes OUT (default: MODEL itself, replaced atomically) with the same networks and metadata and the
new ranges. Ranges are chosen from measurements (`python -m training.evaluation --strength S`) and
sweeps (`fader-desktop sweep`), see resources/models/default.md.
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
    p.add_argument("ranges", nargs="+", metavar="NAME=LO:HI")
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
        save_model(model, a.out or a.model, half=a.half)
    except FaderError as e:
        print(f"set_slider_ranges: error: {e}", file=sys.stderr)
        return 2
    print(", ".join(f"{x.name} {x.range[0]:g}..{x.range[1]:g}" for x in model.attributes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
