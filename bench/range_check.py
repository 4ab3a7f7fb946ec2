"""Slider range ends: how far each fader can go before the face stops looking like a face.

For each attribute and each candidate end value, the validation faces that do not have the
attribute's target value are edited to that slider value (high ends: faces without the attribute,
low ends: faces with it; other sliders at the face's own values), rendered and exported as the app
does (JPEG round trip, `bench/edit_judge.py`), then:

* ``flip``: the independent judge reads the requested value;
* ``others``: the judge's reading of the other attributes is unchanged;
* ``shift``: the colour-shift figure (99th percentile of the CIELAB chroma change over the face
  crop, median over faces) -- colour blotches make it large;
* ``shift_p90``: its 90th percentile over faces (the worst tenth of the photos).

The recommended range ends are the furthest candidates whose ``shift_p90`` stays within
``--max-shift``; look at the flips there (the target is at least 0.95) and at the pictures.

    python bench/range_check.py --model M --judge runs/judge/judge.safetensors [--faces 100]
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_cli import (add_overwrite, check_data, check_output, judged_names, one_line_errors,  # noqa: E402
                       parser, write_json)
from core.errors import FaderError  # noqa: E402
from edit_judge import DATA, VAL_IDS, colour_shift, export_roundtrip, read_labels  # noqa: E402

HIGH = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
LOW = (0.0, -0.25, -0.5, -1.0, -1.5, -2.0)


@one_line_errors("range_check")
def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--judge", required=True)
    p.add_argument("--faces", type=int, default=100)
    p.add_argument("--max-shift", type=float, default=12.0, help="largest acceptable shift_p90 (CIELAB chroma)")
    p.add_argument("--json", default=None)
    add_overwrite(p, "the --json file")
    a = p.parse_args(argv)
    if a.faces < 1:
        raise FaderError("--faces must be at least 1")
    if a.json:
        check_output(a.json, "--json", overwrite=a.overwrite)
    check_data(DATA, "list_attr_celeba.txt", "celeba/img_align_celeba")
    import torch
    torch.set_num_threads(1)
    from core.alignment import CELEBA_TEMPLATE, aligned_crop
    from core.engine import Engine
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    from training.judge import load_judge
    judge = load_judge(a.judge)
    engine = Engine(load_model(a.model), device="cpu", threads=1)
    names = judged_names(judge, engine, a.model)
    ids = [x.strip() for x in VAL_IDS.read_text().split() if x.strip()][: a.faces]
    faces = [DATA / "celeba" / "img_align_celeba" / x for x in ids]
    labels = read_labels({f.name for f in faces}, names)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        docs = [PhotoEdit.open(f, engine, aligned=True) for f in faces]
        base = [aligned_crop(d.image, CELEBA_TEMPLATE, judge.size).crop for d in docs]
        base_j = judge.predict(np.stack(base)) > 0.5
        for k, attr in enumerate(names):
            res[attr] = {}
            for side, values in (("high", HIGH), ("low", LOW)):
                want = 1 if side == "high" else 0
                sel = [i for i, f in enumerate(faces) if labels[f.name][attr] != want]
                if not sel:  # none of the --faces lacks the value (few faces, a rare attribute)
                    print(f"{attr:20s} {side} end: no face to edit (none of the {len(faces)} faces "
                          f"{'lacks' if want else 'has'} it)", file=sys.stderr, flush=True)
                    continue
                for v in values:
                    crops, shifts = [], []
                    for i in sel:
                        d = docs[i]
                        d.reset()
                        d.set_value(attr, v)
                        out = export_roundtrip(d.render(), Path(tmp))
                        c = aligned_crop(out, CELEBA_TEMPLATE, judge.size).crop
                        crops.append(c)
                        shifts.append(colour_shift(base[i], c))
                    pj = judge.predict(np.stack(crops)) > 0.5
                    others = [j for j in range(len(names)) if j != k]
                    r = {"n": len(sel), "flip": round(float((pj[:, k] == want).mean()), 3),
                         "others": round(float((pj[:, others] == base_j[sel][:, others]).all(1).mean()), 3),
                         "shift": round(float(np.median(shifts)), 2), "shift_p90": round(float(np.percentile(shifts, 90)), 2)}
                    res[attr][f"{v:g}"] = r
                    print(f"{attr:20s} {v:5g}: flip {r['flip']:.3f} others {r['others']:.3f} shift {r['shift']:5.2f} "
                          f"p90 {r['shift_p90']:5.2f} (n {r['n']})", file=sys.stderr, flush=True)
            for d in docs:
                d.reset()
    rec = {}
    for attr in names:
        ends = []
        for values in (LOW, HIGH):
            measured = [v for v in values if f"{v:g}" in res[attr]]
            ok = [v for v in measured if res[attr][f"{v:g}"]["shift_p90"] <= a.max_shift]
            # the furthest end that stays clean; None where no face could be edited that way
            ends.append((ok or [values[0]])[-1] if measured else None)
        rec[attr] = ends
    out = {"model": a.model, "max_shift": a.max_shift, "candidates": res, "recommended": rec}
    print(json.dumps(out["recommended"]))
    if a.json:
        write_json(a.json, out, overwrite=a.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
