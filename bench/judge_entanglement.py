"""How much the judge's reading of one attribute depends on another, on real faces (issue 15).

``bench/edit_judge.py`` counts an edit of attribute A as "others unchanged" when the judge still
reads every other attribute B as it did on the original photo. A judge trained on CelebA can read
B differently on real faces that differ only in A: if real people labelled young who wear glasses
are read as young less often than those without, even a perfect glasses edit changes the judge's
Young reading. This script measures that on unedited real faces the judge never saw in training:
the validation split of ``img_align_celeba/`` and the photos of ``img_celeba/`` (detected and
aligned as the app does; the judge's training leaves them out with ``--exclude``).

For each pair (A, B) and true labels (a, b) it estimates q(a, b) = P(judge reads B = 1 | true A = a,
true B = b). The **real-face change** of the cell A -> B is the mean over ``edit_judge``'s
validation faces of |q(a, b) - q(1 - a, b)|: the share of B readings that would change if each
face's A were flipped into a real face with the other A and the same B, judged by this judge.
``edit_judge``'s ``others_changed`` cell is to be read against it: a cell below it does not mean
the edit is cleaner than a real face, but a cell far above it does mean the edit changes B. The
product of (1 - real-face change) over a row is the "others unchanged" such faithful edits would
read, were the other readings to change independently. Likewise ``flip_reference``: the flip
edit_judge would read for edits as faithful as real faces, the judge's hit rate on real faces that
have the requested value.

    python bench/judge_entanglement.py --judge runs/judge/judge.safetensors [--photos 1500] [--json OUT]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_cli import add_overwrite, check_data, check_output, one_line_errors, parser, write_json  # noqa: E402
from core.errors import FaderError  # noqa: E402
from edit_judge import DATA, VAL_IDS, log, read_labels  # noqa: E402
from photo_swap_eval import read_partition  # noqa: E402

ATTRS = ["Smiling", "Male", "Young", "Eyeglasses", "Mouth_Slightly_Open"]


def real_faces(judge, photos: int) -> tuple:
    """Judge crops of unedited held-out faces: validation-split aligned images, then photos."""
    from core.alignment import CELEBA_TEMPLATE, align_face, aligned_crop
    from core.errors import FaderError
    from core.faces import FaceDetector
    from core.image_io import load_image
    part = read_partition(DATA / "list_eval_partition.txt")
    aligned = [p for p in sorted((DATA / "celeba" / "img_align_celeba").glob("*.jpg")) if part.get(p.name) == 1]
    names, crops = [], []
    for p in aligned:
        names.append(p.name)
        crops.append(aligned_crop(load_image(p), CELEBA_TEMPLATE, judge.size).crop)
    det, t0, n_photos = FaceDetector(), time.time(), 0
    for i, p in enumerate(sorted((DATA / "celeba" / "img_celeba").glob("*.jpg"))[:photos]):
        try:
            rgb = load_image(p)
            faces = det.detect(rgb)
        except FaderError:
            continue
        if not faces:
            continue
        main = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))  # CelebA labels it
        names.append(p.name)
        crops.append(align_face(rgb, main.landmarks, CELEBA_TEMPLATE, judge.size).crop)
        n_photos += 1
        if (i + 1) % 250 == 0:
            log(f"  photos: {i + 1}, {time.time() - t0:.0f} s")
    return names, np.stack(crops), len(aligned), n_photos


def real_face_change(true: np.ndarray, read: np.ndarray, edited: np.ndarray, attrs: list) -> tuple:
    """(change, cells) from real faces' true labels and judge readings (N, K) of 0/1, and the
    edited faces' true labels (M, K). change[A][B] = mean over the edited faces of
    |q(a, b) - q(1 - a, b)|, q(a, b) = P(read B = 1 | true A = a, true B = b)."""
    cells, change = {}, {}
    for i, A in enumerate(attrs):
        cells[A], change[A] = {}, {}
        for j, B in enumerate(attrs):
            if i == j:
                continue
            q, n = np.full((2, 2), np.nan), np.zeros((2, 2), int)
            for x in (0, 1):
                for y in (0, 1):
                    m = (true[:, i] == x) & (true[:, j] == y)
                    n[x, y] = int(m.sum())
                    if m.any():
                        q[x, y] = read[m, j].mean()
            per_face = np.abs(q[edited[:, i], edited[:, j]] - q[1 - edited[:, i], edited[:, j]])
            change[A][B] = round(float(np.nanmean(per_face)), 4) if np.isfinite(per_face).any() else None
            cells[A][B] = {f"A={x},B={y}": {"n": int(n[x, y]),
                                             "reads_B": None if np.isnan(q[x, y]) else round(float(q[x, y]), 4)}
                           for x in (0, 1) for y in (0, 1)}
    return change, cells


@one_line_errors("judge_entanglement")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--judge", required=True, help="judge file from python -m training.judge")
    ap.add_argument("--photos", type=int, default=1500, help="img_celeba photos (first N by name)")
    ap.add_argument("--faces", type=int, default=200,
                    help="edit_judge's validation faces the figures are averaged over")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the figures here")
    add_overwrite(ap, "the --json file")
    a = ap.parse_args(argv)
    if a.photos < 0 or a.faces < 1:
        raise FaderError("--photos must be at least 0 and --faces at least 1")
    if a.json:
        check_output(a.json, "--json", overwrite=a.overwrite)
    check_data(DATA, "list_attr_celeba.txt", "list_eval_partition.txt", "celeba/img_align_celeba",
               "celeba/img_celeba")
    import torch
    torch.set_num_threads(a.threads)
    from training.judge import load_judge
    judge = load_judge(a.judge)
    attrs = [n for n in ATTRS if n in judge.attributes]
    names, crops, n_aligned, n_photos = real_faces(judge, a.photos)
    col = [judge.attributes.index(n) for n in attrs]
    read = np.concatenate([judge.predict(crops[i:i + 64]) for i in range(0, len(crops), 64)])[:, col] > 0.5
    ids = [x.strip() for x in VAL_IDS.read_text().split() if x.strip()][: a.faces]
    lab = read_labels(set(names) | set(ids), attrs)  # one pass over the 202,599-row attribute file
    true = np.array([[lab[n][x] for x in attrs] for n in names])
    edited = np.array([[lab[n][x] for x in attrs] for n in ids])
    change, cells = real_face_change(true, read, edited, attrs)
    # what edit_judge's "others unchanged" would read for edits as faithful as real faces, if the
    # other readings changed independently of each other
    reference = {A: round(float(np.prod([1 - f for f in change[A].values() if f is not None])), 4) for A in attrs}
    reference["mean"] = round(float(np.mean([reference[A] for A in attrs])), 4)
    # the flip a faithful edit would read: for each validation face, how often the judge reads real
    # faces that truly have the requested value (1 - y) as having it
    flip_reference = {}
    for i, A in enumerate(attrs):
        hit = {v: float((read[true[:, i] == v, i] == v).mean()) for v in (0, 1) if (true[:, i] == v).any()}
        flip_reference[A] = round(float(np.mean([hit[1 - y] for y in edited[:, i]])), 4)
    flip_reference["mean"] = round(float(np.mean([flip_reference[A] for A in attrs])), 4)
    res = {"bench": "judge_entanglement", "judge": str(a.judge), "faces": len(names),
           "aligned_validation": n_aligned, "photos": n_photos, "real_face_change": change,
           "others_unchanged_reference": reference, "flip_reference": flip_reference, "cells": cells}
    width = max(len(x) for x in attrs)
    print(f"judge {a.judge}: {len(names)} real faces ({n_aligned} validation crops, {n_photos} photos)")
    print("real-face change (edited -> other), to read others_changed against: the share of the "
          "other's readings a real face with the edited attribute flipped would change")
    print(" " * (width + 2) + "  ".join(f"{b[:8]:>8}" for b in attrs))
    for A in attrs:
        cells_text = (f"{change[A][B]:8.3f}" if B != A and change[A][B] is not None else f"{'-':>8}" for B in attrs)
        print(f"{A:<{width + 2}}" + "  ".join(cells_text))
    print("others unchanged that such faithful edits would read (independence assumed): "
          + ", ".join(f"{A} {reference[A]:.3f}" for A in attrs) + f"; mean {reference['mean']:.3f}")
    print("flip (alpha = 1 - y) that such faithful edits would read: "
          + ", ".join(f"{A} {flip_reference[A]:.3f}" for A in attrs) + f"; mean {flip_reference['mean']:.3f}")
    if a.json:
        write_json(a.json, res, overwrite=a.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
