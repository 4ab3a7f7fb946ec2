"""Why the judge reads other attributes as changed after an edit: per-face judge probabilities.

For each validation face and each attribute flipped (α = 1 − y, as ``bench/edit_judge.py``), the
judge reads the original crop, the exported edit and, as a control, the face exported with no
slider moved (the app's own JPEG path). It prints, per (edited → other) pair, how often the other
reading changed, what share of those changes started near the judge's threshold (0.35–0.65) and the
median starting probability: changes that start far from 0.5 are edits the judge really reads as
the other attribute, not the judge wavering.

    python bench/others_changed.py --model resources/models/default.fader \
        --judge runs/judge/judge.safetensors [--faces 200] [--json OUT]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_cli import (add_overwrite, check_data, check_output, judged_names, one_line_errors,  # noqa: E402
                       parser, write_json)
from core.errors import FaderError  # noqa: E402
from edit_judge import DATA, VAL_IDS, export_roundtrip, log, read_labels  # noqa: E402


@one_line_errors("others_changed")
def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="the .fader model whose edits are read")
    p.add_argument("--judge", required=True, help="judge file from python -m training.judge")
    p.add_argument("--faces", type=int, default=200, help="validation faces (first N of the model card's ids; "
                                                          "default 200)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the figures here")
    add_overwrite(p, "the --json file")
    a = p.parse_args(argv)
    if a.faces < 1:
        raise FaderError("--faces must be at least 1")
    if a.json:
        check_output(a.json, "--json", overwrite=a.overwrite)
    import torch
    torch.set_num_threads(a.threads)
    from core.alignment import CELEBA_TEMPLATE, aligned_crop
    from core.engine import Engine
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    from training.judge import load_judge
    check_data(DATA, "list_attr_celeba.txt", "celeba/img_align_celeba")
    judge = load_judge(a.judge)
    engine = Engine(load_model(a.model), device="cpu", threads=a.threads)
    names = judged_names(judge, engine, a.model)
    jcol = [judge.attributes.index(n) for n in names]
    ids = [x for x in VAL_IDS.read_text().split() if x][: a.faces]
    files = [DATA / "celeba" / "img_align_celeba" / x for x in ids]
    labels = read_labels({f.name for f in files}, names)
    read = lambda img: judge.predict(aligned_crop(img, CELEBA_TEMPLATE, judge.size).crop[None])[0][jcol]  # noqa: E731
    base, plain, edited = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        for i, f in enumerate(files):
            if i and i % 25 == 0:
                log(f"  {i}/{len(files)} faces, {time.time() - t0:.0f} s")
            doc = PhotoEdit.open(f, engine, aligned=True)
            base.append(read(doc.image))
            rows = []
            for n in names:
                doc.reset()
                doc.set_value(n, float(1 - labels[f.name][n]))
                rows.append(read(export_roundtrip(doc.render(), Path(tmp))))
            edited.append(rows)
            doc.reset()
            plain.append(read(export_roundtrip(doc.render(), Path(tmp))))
    B, P, E = np.array(base), np.array(plain), np.array(edited)
    res = {"bench": "others_changed", "model": a.model, "judge": a.judge, "faces": len(files),
           "unedited_export_changed": {n: float(((P[:, j] > .5) != (B[:, j] > .5)).mean()) for j, n in enumerate(names)},
           "pairs": {}}
    print("unedited export, share of readings changed: "
          + ", ".join(f"{n} {v:.3f}" for n, v in res["unedited_export_changed"].items()))
    for i, a_name in enumerate(names):
        for j, b_name in enumerate(names):
            ch = (E[:, i, j] > .5) != (B[:, j] > .5)
            if i == j or not ch.any():
                continue
            near = float((np.abs(B[ch, j] - .5) < .15).mean())
            row = {"changed": round(float(ch.mean()), 4), "near_threshold": round(near, 3),
                   "median_start": round(float(np.median(B[ch, j])), 3)}
            res["pairs"][f"{a_name} -> {b_name}"] = row
            print(f"{a_name} -> {b_name}: changed {row['changed']:.3f}, started near 0.5 {near:.2f}, "
                  f"median start {row['median_start']:.2f}")
    if a.json:
        write_json(a.json, res, overwrite=a.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
