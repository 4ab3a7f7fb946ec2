"""Where the sliders start: how often a photo's faders open at the face's true value.

When a photo is opened, the model's stored classifier reads each face's own values and every
slider starts there. A misread face starts with its slider at the wrong end, and moving the slider
to the value the face "does not have" then changes nothing. This counts, per attribute, the faces
whose slider starts at CelebA's true label:

* ``aligned``: validation faces (CelebA split 1, the model card's ids), opened as the app's
  ``--aligned`` mode does;
* ``photos``: whole photos of ``img_celeba/`` (held out of all training): detect, align, read the
  largest face.

    python bench/slider_start.py --model resources/models/default.fader [--faces 500] [--photos 300]
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_cli import add_overwrite, check_data, check_output, one_line_errors, parser, write_json  # noqa: E402
from core.errors import FaderError  # noqa: E402
from edit_judge import DATA, VAL_IDS, log, read_labels  # noqa: E402
from photo_swap_eval import main_face  # noqa: E402


def starts(files, engine, aligned: bool) -> tuple:
    """(file name, {attribute: the slider's starting value}) for each file with a face."""
    from core.errors import FaderError
    from core.photo_edit import PhotoEdit
    out = []
    t0 = time.time()
    for i, f in enumerate(files):
        if i and i % 50 == 0:
            log(f"  {'validation faces' if aligned else 'photos'}: {i}/{len(files)}, {time.time() - t0:.0f} s")
        try:
            doc = PhotoEdit.open(f, engine, aligned=aligned)
        except FaderError:
            continue
        if not doc.faces:
            continue
        out.append((f.name, dict((doc.faces[0] if aligned else main_face(doc)).own_values)))
    return out


def tally(read: list, labels: dict, names: list) -> dict:
    """Share of faces whose slider starts at the true label, per attribute, and their mean (None
    for no faces)."""
    if not read:
        return {"n": 0, "starts_at_true_value": {n: None for n in names}, "mean": None}
    right = {n: float(np.mean([round(float(v[n])) == labels[f][n] for f, v in read])) for n in names}
    return {"n": len(read), "starts_at_true_value": {n: round(x, 4) for n, x in right.items()},
            "mean": round(float(np.mean(list(right.values()))), 4)}


@one_line_errors("slider_start")
def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="the .fader model (it must hold a classifier)")
    p.add_argument("--faces", type=int, default=500, help="validation faces (first N of the model card's ids; "
                                                          "default 500)")
    p.add_argument("--photos", type=int, default=300, help="img_celeba photos (first N by name; 0 = none; "
                                                           "default 300)")
    p.add_argument("--json", default=None, help="also write the figures here")
    add_overwrite(p, "the --json file")
    a = p.parse_args(argv)
    if a.faces < 0 or a.photos < 0:
        raise FaderError("--faces and --photos must be at least 0")
    if a.json:
        check_output(a.json, "--json", overwrite=a.overwrite)
    check_data(DATA, "list_attr_celeba.txt", "celeba/img_align_celeba", "celeba/img_celeba")
    import torch
    torch.set_num_threads(1)
    from core.engine import Engine
    from core.model_file import load_model
    engine = Engine(load_model(a.model), device="cpu", threads=1)
    if engine.model.classifier is None:
        raise FaderError(f"{a.model}: the model has no classifier; every slider starts at its first value")
    names = [x.name for x in engine.attributes if x.n == 2]
    ids = [x.strip() for x in VAL_IDS.read_text().split() if x.strip()][: a.faces]
    faces = [DATA / "celeba" / "img_align_celeba" / x for x in ids]
    photos = sorted((DATA / "celeba" / "img_celeba").glob("*.jpg"))[: a.photos]
    labels = read_labels({f.name for f in faces} | {f.name for f in photos}, names)
    res = {"bench": "slider_start", "model": a.model,
           "aligned": tally(starts(faces, engine, True), labels, names),
           "photos": tally(starts(photos, engine, False), labels, names)}
    for k in ("aligned", "photos"):
        r = res[k]
        if r["n"]:
            print(f"{k:8s} n={r['n']:4d}  " + "  ".join(f"{n} {v:.3f}" for n, v in r["starts_at_true_value"].items())
                  + f"  mean {r['mean']:.3f}", file=sys.stderr)
    print(json.dumps(res))
    if a.json:
        write_json(a.json, res, overwrite=a.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
