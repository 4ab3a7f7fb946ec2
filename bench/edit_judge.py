"""Edits judged on what the user gets, by a judge that took no part in making the model (issue 15).

The judge is `training/judge.py`'s ResNet-18 (trained from scratch on augmented CelebA training
crops, never used in training or checkpoint selection). For each face and each attribute the
slider is set to the value the face does not have (alpha = 1 - y, y = CelebA's true label; the
other sliders at the face's own values, as the app opens a photo), then:

* ``exported`` (validation faces, CelebA split 1 of img_align_celeba, the model card's ids): the
  aligned 178x218 image opened as the app's ``--aligned`` mode does, the edit rendered at full
  resolution (decode + paste-back), **saved as JPEG (quality 95) and read back** through the app's
  own image I/O, then cropped to CelebA's framing and judged;
* ``raw``: the model's own output at model resolution (no paste-back), judged;
* ``photos``: whole photos of ``img_celeba/`` (held out of all training): detect, align, edit the
  largest face, render, save as JPEG and read back, detect again, align the face nearest the
  original one and judge it.

Flip = the judge now reads the requested value. "Others unchanged" = the judge's reading of each
other attribute equals its reading of the unedited photo (exported, photos) or of the plain
reconstruction (raw); ``exported_moved`` / ``raw_moved`` count only the edits whose slider
actually moved (the face's own reading, where its slider starts, was not already the requested
value: a misread face is not edited at all, its exported photo is the original while its raw
reconstruction already shows the misread value); ``others_changed`` breaks it down: for each edited attribute, the fraction
of its edits that changed the reading of each other one. ``range_ends`` repeats ``exported`` with
the slider at the end of its range on the requested side. ``colour_shift``: per edit, the 99th
percentile over the face crop of the CIELAB chroma change (sqrt(da^2 + db^2), after a small blur,
at the judge's resolution) between the exported photo and the original: a colour blotch makes it
large (a neutral edit stays under ~5). The model's own classifier reads the same exported and raw
crops for comparison (``own``).

Prints the model card's table on stdout (its rows' and columns' names; "-" where an attribute had
no edit), progress on stderr; ``--json`` writes every figure above.

    python bench/edit_judge.py --model resources/models/default.fader --judge runs/judge/judge.safetensors
    python bench/edit_judge.py --model M --judge J --faces 200 --photos 100 --json out.json
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_cli import (add_overwrite, check_data, check_output, judged_names, one_line_errors,  # noqa: E402
                       parser, write_json)
from core.errors import FaderError  # noqa: E402

DATA = (ROOT / ".." / "shared" / "data").resolve()
VAL_IDS = ROOT / "docs" / "default_model" / "val_ids.txt"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_labels(names: set, attrs: list) -> dict:
    from photo_swap_eval import read_table
    return read_table(DATA / "list_attr_celeba.txt", names, attrs)


def export_roundtrip(rgb: np.ndarray, folder: Path) -> np.ndarray:
    """What the user gets: the photo saved as the app exports a JPEG, then read back."""
    from core.image_io import load_image, save_image
    path = folder / "export.jpg"
    save_image(path, rgb, quality=95)
    return load_image(path)


def colour_shift(a: np.ndarray, b: np.ndarray) -> float:
    """99th percentile of the CIELAB chroma change between two crops (blurred a little)."""
    import cv2
    la = cv2.cvtColor(cv2.GaussianBlur(a, (5, 5), 1.2), cv2.COLOR_RGB2LAB).astype(np.float32)
    lb = cv2.cvtColor(cv2.GaussianBlur(b, (5, 5), 1.2), cv2.COLOR_RGB2LAB).astype(np.float32)
    d = np.hypot(la[..., 1] - lb[..., 1], la[..., 2] - lb[..., 2])
    return float(np.percentile(d, 99))


class Counts:
    """Flip / others-unchanged tallies per attribute."""

    def __init__(self, names):
        self.names = names
        self.n = {a: 0 for a in names}
        self.flip = {a: 0 for a in names}
        self.others = {a: 0 for a in names}
        self.shift = {a: [] for a in names}
        self.changed = {a: {b: 0 for b in names if b != a} for a in names}

    def add(self, attr, flipped, others, shift=None, changed=()):
        """One edit of `attr`: flipped?, all others unchanged?, colour shift, the names of the
        other attributes whose reading changed."""
        self.n[attr] += 1
        self.flip[attr] += int(flipped)
        self.others[attr] += int(others)
        for b in changed:
            self.changed[attr][b] += 1
        if shift is not None:
            self.shift[attr].append(shift)

    def result(self) -> dict:
        r = lambda a, b: round(a / b, 4) if b else None  # noqa: E731
        flip = {a: r(self.flip[a], self.n[a]) for a in self.names}
        others = {a: r(self.others[a], self.n[a]) for a in self.names}
        vals = [v for v in flip.values() if v is not None]
        out = {"n": self.n[self.names[0]], "n_each": dict(self.n), "flip": flip,
               "flip_mean": round(float(np.mean(vals)), 4) if vals else None,
               "flip_min": min(vals) if vals else None, "others_unchanged": others,
               "others_unchanged_mean": round(float(np.mean([v for v in others.values() if v is not None])), 4)
               if vals else None,
               # which other attribute's reading an edit changed, as a fraction of that attribute's edits
               "others_changed": {a: {b: r(c, self.n[a]) for b, c in row.items()}
                                  for a, row in self.changed.items()}}
        if any(self.shift.values()):
            out["colour_shift_p99_median"] = {a: round(float(np.median(v)), 2) if v else None
                                              for a, v in self.shift.items()}
            out["colour_shift_over_10"] = {a: round(float(np.mean(np.asarray(v) > 10)), 4) if v else None
                                           for a, v in self.shift.items()}
        return out


def own_reading(engine, crops: np.ndarray) -> np.ndarray:
    """The model's own classifier: P(second value) per binary attribute, (N, k)."""
    probs = engine.predict_probabilities(crops)
    return np.asarray([[p[a.name][1] for a in engine.attributes] for p in probs])


def eval_aligned(files, labels, engine, judge, names, tmp: Path, at_ends: bool) -> dict:
    """exported / raw (and own-classifier) flips on CelebA-aligned validation faces."""
    from core.alignment import CELEBA_TEMPLATE, aligned_crop
    from core.photo_edit import PhotoEdit
    attrs = {a.name: a for a in engine.attributes}
    tallies = {k: Counts(names) for k in ("exported", "raw", "exported_own", "raw_own",
                                          "exported_moved", "raw_moved")}
    jsize, msize = judge.size, engine.image_size
    t0 = time.time()
    for i, f in enumerate(files):
        doc = PhotoEdit.open(f, engine, aligned=True)
        face = doc.faces[0]
        base_crop = aligned_crop(doc.image, CELEBA_TEMPLATE, jsize).crop
        base_j = judge.predict(base_crop[None])[0] > 0.5
        recon_j = judge.predict(np.rint(face.reconstruction).astype(np.uint8)[None])[0] > 0.5
        recon_o = own_reading(engine, np.rint(face.reconstruction).astype(np.uint8)[None])[0] > 0.5
        base_o = own_reading(engine, aligned_crop(doc.image, CELEBA_TEMPLATE, msize).crop[None])[0] > 0.5
        ex_crops, ex_small, raws, asked, moved = [], [], [], [], []
        for a in names:
            want = 1 - labels[f.name][a]
            doc.reset()
            at = attrs[a]
            doc.set_value(a, float(at.range[1] if want else at.range[0]) if at_ends else float(want))
            moved.append(doc.faces[0].values[a] != face.own_values[a])
            out = export_roundtrip(doc.render(), tmp)
            ex_crops.append(aligned_crop(out, CELEBA_TEMPLATE, jsize).crop)
            ex_small.append(aligned_crop(out, CELEBA_TEMPLATE, msize).crop)
            raws.append(doc.render_raw(0))
            asked.append(want)
        ej = judge.predict(np.stack(ex_crops)) > 0.5
        rj = judge.predict(np.stack(raws)) > 0.5
        eo = own_reading(engine, np.stack(ex_small)) > 0.5
        ro = own_reading(engine, np.stack(raws)) > 0.5
        for k, a in enumerate(names):
            others = [j for j in range(len(names)) if j != k]
            shift = colour_shift(base_crop, ex_crops[k])
            for key, read, base in (("exported", ej, base_j), ("raw", rj, recon_j),
                                    ("exported_own", eo, base_o), ("raw_own", ro, recon_o)):
                changed = [names[j] for j in others if read[k, j] != base[j]]
                tallies[key].add(a, read[k, k] == asked[k], not changed,
                                 shift if key == "exported" else None, changed)
                if moved[k] and key in ("exported", "raw"):
                    tallies[key + "_moved"].add(a, read[k, k] == asked[k], not changed, None, changed)
        if (i + 1) % 25 == 0:
            log(f"  {'range ends' if at_ends else 'alpha = 1 - y'}: {i + 1}/{len(files)} faces, "
                f"{time.time() - t0:.0f} s")
    return {k: t.result() for k, t in tallies.items()}


def eval_photos(files, labels, engine, judge, names, tmp: Path) -> dict:
    """The whole pipeline on unaligned photos, judged after re-detection in the exported photo."""
    from core.alignment import CELEBA_TEMPLATE, align_face
    from core.errors import FaderError
    from core.faces import FaceDetector
    from core.photo_edit import PhotoEdit
    from photo_swap_eval import _match, main_face
    det = FaceDetector()
    tally, own = Counts(names), Counts(names)
    skipped = {"no face": 0, "not found again": 0}
    t0 = time.time()
    jsize, msize = judge.size, engine.image_size
    for i, f in enumerate(files):
        try:
            doc = PhotoEdit.open(f, engine, detector=det)
        except FaderError:
            skipped["no face"] += 1
            continue
        main = main_face(doc)
        base_j = judge.predict(align_face(doc.image, main.landmarks, CELEBA_TEMPLATE, jsize).crop[None])[0] > 0.5
        base_o = own_reading(engine, main.aligned.crop[None])[0] > 0.5
        crops, small, asked = [], [], []
        for a in names:
            want = 1 - labels[f.name][a]
            doc.reset()
            doc.set_value(a, float(want), face=main.index)
            out = export_roundtrip(doc.render(), tmp)
            again, _ = _match(det.detect(out), main.landmarks)
            if again is None:
                skipped["not found again"] += 1
                crops.append(None)
                small.append(None)
            else:
                crops.append(align_face(out, again.landmarks, CELEBA_TEMPLATE, jsize).crop)
                small.append(align_face(out, again.landmarks, CELEBA_TEMPLATE, msize).crop)
            asked.append(want)
        ok = [k for k in range(len(names)) if crops[k] is not None]
        if ok:
            pj = judge.predict(np.stack([crops[k] for k in ok])) > 0.5
            po = own_reading(engine, np.stack([small[k] for k in ok])) > 0.5
            for row, k in enumerate(ok):
                others = [j for j in range(len(names)) if j != k]
                for t, read, base in ((tally, pj, base_j), (own, po, base_o)):
                    changed = [names[j] for j in others if read[row, j] != base[j]]
                    t.add(names[k], read[row, k] == asked[k], not changed, changed=changed)
        if (i + 1) % 25 == 0:
            log(f"  photos: {i + 1}/{len(files)}, {time.time() - t0:.0f} s")
    return {"judge": tally.result(), "own": own.result(), "skipped": skipped, "n_photos": len(files)}


@one_line_errors("edit_judge")
def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="the .fader model whose edits are judged")
    p.add_argument("--judge", required=True, help="judge file from python -m training.judge")
    p.add_argument("--faces", type=int, default=200, help="validation faces (first N of the model card's ids)")
    p.add_argument("--photos", type=int, default=100, help="img_celeba photos (first N by name; 0 = skip)")
    p.add_argument("--no-range-ends", action="store_true", help="leave out the range_ends pass")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the result here")
    add_overwrite(p, "the --json file")
    a = p.parse_args(argv)
    if a.faces < 1 or a.photos < 0:
        raise FaderError("--faces must be at least 1 and --photos at least 0")
    if a.json:
        check_output(a.json, "--json", overwrite=a.overwrite)
    import torch
    torch.set_num_threads(a.threads)
    from core.engine import Engine
    from core.model_file import load_model
    from training.judge import load_judge
    check_data(DATA, "list_attr_celeba.txt", "celeba/img_align_celeba")
    judge = load_judge(a.judge)
    model = load_model(a.model)
    if model.classifier is None:
        raise FaderError(f"{a.model}: has no classifier (the sliders start at its readings, and it reads "
                         "the edits beside the judge)")
    engine = Engine(model, device="cpu", threads=a.threads)
    names = judged_names(judge, engine, a.model)
    ids = [x.strip() for x in VAL_IDS.read_text().split() if x.strip()][: a.faces]
    faces = [DATA / "celeba" / "img_align_celeba" / x for x in ids]
    photos = sorted((DATA / "celeba" / "img_celeba").glob("*.jpg"))[: a.photos]
    labels = read_labels({f.name for f in faces + photos}, names)
    res = {"bench": "edit_judge", "model": str(a.model), "judge": str(a.judge),
           "judge_validation": judge.meta.get("validation"), "attributes": names,
           "image_size": engine.image_size}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        log(f"edit_judge: {len(faces)} validation faces, {len(photos)} photos, model {a.model}")
        res["aligned"] = eval_aligned(faces, labels, engine, judge, names, Path(tmp), at_ends=False)
        if not a.no_range_ends:
            res["range_ends"] = eval_aligned(faces, labels, engine, judge, names, Path(tmp), at_ends=True)
        if photos:
            res["photos"] = eval_photos(photos, labels, engine, judge, names, Path(tmp))
    res["seconds"] = round(time.time() - t0, 1)
    print(table(res))
    if a.json:
        write_json(a.json, res, overwrite=a.overwrite)
    return 0


SHORT = {"Mouth_Slightly_Open": "Mouth open"}   # the model card's column names


def table(res: dict) -> str:
    """The model card's table: its rows' and columns' names, flip rates per attribute, their mean
    and the share of edits that left the judge's reading of every other attribute unchanged."""
    names = res["attributes"]
    rows = [("flip rate", *[SHORT.get(n, n) for n in names], "mean", "others unchanged")]
    num = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731 - an attribute with no edit

    def row(label, r):
        if r is None:
            return
        rows.append((label, *[num(r["flip"][n], ".2f") for n in names],
                     num(r["flip_mean"], ".3f"), num(r["others_unchanged_mean"], ".3f")))
    al = res["aligned"]
    size = res.get("image_size")
    row("exported photo, judge", al["exported"])
    if "photos" in res:
        ph = res["photos"]
        n_photos = ph.get("n_photos", 0) - ph["skipped"]["no face"]
        row(f"whole pipeline on {n_photos} img_celeba/ photos, judge", ph["judge"])
    if "range_ends" in res:
        row("exported, slider at the range end, judge", res["range_ends"]["exported"])
    row(f"raw model output ({size} px), judge" if size else "raw model output, judge", al["raw"])
    row("exported, only edits whose slider moved, judge", al.get("exported_moved"))
    row("raw, only edits whose slider moved, judge", al.get("raw_moved"))
    row("exported photo, own classifier", al["exported_own"])
    row("raw output, own classifier", al["raw_own"])
    if "photos" in res:
        row("whole pipeline, own classifier", res["photos"]["own"])
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = f"{al['exported']['n']} validation faces, flip at alpha = 1 - y\n"
    out += "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows)
    oc = al["exported"].get("others_changed") or {}
    changed = [f"{a}: " + ", ".join(f"{b} {v:.2f}" for b, v in row.items() if v)
               for a, row in oc.items() if any(row.values())]
    if changed:
        out += "\nothers changed on the exported photo (edited: other attribute's reading changed): " + "; ".join(changed)
    cs = al["exported"].get("colour_shift_p99_median")
    if cs:
        out += "\ncolour shift (p99 chroma change, median over faces): " + ", ".join(f"{n} {cs[n]}" for n in names)
    if "range_ends" in res and res["range_ends"]["exported"].get("colour_shift_p99_median"):
        cs = res["range_ends"]["exported"]["colour_shift_p99_median"]
        out += "\ncolour shift at range ends: " + ", ".join(f"{n} {cs[n]}" for n in names)
    return out


if __name__ == "__main__":
    sys.exit(main())
