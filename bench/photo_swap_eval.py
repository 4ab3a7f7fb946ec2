"""Swap accuracy through the whole photo pipeline vs on CelebA's aligned crops (issue 5).

Photo pipeline, per unaligned photo of ``../shared/data/celeba/img_celeba`` (all train split 0;
true attributes from ``list_attr_celeba.txt`` by file name):

1. ``PhotoEdit.open(photo)``: detect, align the faces to the model's template, encode once; the
   photo's *main* face is the one with the largest detection box (CelebA labels that face);
2. with no slider moved, ``render()`` must return the input photo bit for bit (counted);
3. per attribute: reset, set that attribute of the main face to the flip of the photo's TRUE label
   (binary: alpha = 1 - y), ``render()`` the full-resolution photo (decode + paste-back);
4. detect the faces of the rendered photo again, take the one whose landmarks are nearest the
   original ones, align it again (``align_face``) and ask the model's stored classifier
   (``Engine.predict_probabilities``) whether it now sees the requested value ("swap accuracy");
   "others unchanged": the classifier's predictions of all other attributes on that crop equal its
   predictions on the unedited photo's crop.

The same model on aligned crops, same flip protocol: ``PhotoEdit.open(img, aligned=True)`` (the
CelebA crop via ``core.alignment.aligned_crop``), set the flipped value, decode directly at model
resolution (``render_raw``) and classify; "others unchanged" against the plain reconstruction.
Two aligned sets are measured:

* ``paired``: CelebA's own aligned crops of the SAME images as the photos evaluated, where the
  shared data has them (``img_align_celeba/`` 178x218 preferred, else ``img_align_celeba_89x109/``);
  the photo pipeline figures are also given restricted to exactly those photos;
* ``sample``: the first N files by name of the ``--aligned-split`` split (default 0, the photos'
  split) of ``img_align_celeba/``, N = the number of photos evaluated.

A third column separates the two sources of loss: ``photo_crop_raw`` classifies the model's own
output on the photo's aligned crop (no paste-back, no re-detection).

In both protocols the attributes not being flipped keep the face's own values (the classifier's
reading of the face, as the app does), so when the classifier already disagrees with the true label
the "flip" asks for the value the face is already read as; those cases are counted
(``flip_equals_own``), and ``swap_accuracy_true_flips`` gives the accuracy on the other cases only.

``--push`` moves each slider to the end of its recommended range on the requested side instead of
alpha = 1 - y (all protocols). ``--diagnose`` adds variants of the paste-back that show where the
pipeline loses swaps (the difference through the whole crop square instead of the feathered mask;
the decode replacing the photo's own face detail instead of being added as a difference; the
rendered photo read without re-detection; the raw decode resampled 4x up and back down).

    python bench/photo_swap_eval.py --model runs/default64/model.fader            # 200 photos
    python bench/photo_swap_eval.py --model M --limit 50 --json
    python bench/photo_swap_eval.py --model M --photos paired   # only photos with an aligned crop
    python bench/photo_swap_eval.py --model M --limit 100 --diagnose

Human-readable progress goes to stderr; the result to stdout (a table, or one JSON object with
``--json``).
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

from bench_cli import load_model_copy, one_line_errors, parser  # noqa: E402
from core.errors import FaderError  # noqa: E402

DEFAULT_DATA = (ROOT / ".." / "shared" / "data").resolve()


# ----------------------------------------------------------------------------------------------
# data

def main_face(doc):
    """The photo's main face: the one with the largest detection box (the face CelebA labels)."""
    return max(doc.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def read_table(path: Path, names: set | None = None, columns: list | None = None) -> dict:
    """CelebA's attribute file (count line, header, rows) -> {file: {attr: 0/1}} for `names`."""
    out = {}
    with open(path) as fh:
        fh.readline()
        header = fh.readline().split()
        idx = [header.index(c) for c in columns] if columns else list(range(len(header)))
        for line in fh:
            parts = line.split()
            if not parts or (names is not None and parts[0] not in names):
                continue
            out[parts[0]] = {header[i]: int(parts[1 + i] == "1") for i in idx}
    return out


def read_partition(path: Path) -> dict:
    with open(path) as fh:
        return {a: int(b) for a, b in (line.split() for line in fh if line.strip())}


def aligned_source(data: Path, name: str) -> Path | None:
    """CelebA's own aligned crop of an image id, if the shared data has it (178x218 first)."""
    for folder in ("img_align_celeba", "img_align_celeba_89x109"):
        p = data / "celeba" / folder / name
        if p.exists():
            return p
    return None


# ----------------------------------------------------------------------------------------------
# helpers

def _argmax(probs: dict, attrs) -> dict:
    return {a.name: int(np.argmax(probs[a.name])) for a in attrs}


class Tally:
    """Per-attribute swap / others-unchanged counters."""

    def __init__(self, attrs):
        self.names = [a.name for a in attrs]
        z = lambda: {n: 0 for n in self.names}  # noqa: E731
        self.n, self.ok, self.others_ok = z(), z(), z()
        self.true_n, self.true_ok, self.flip_own = z(), z(), z()

    def add(self, name: str, swapped: bool, others: bool, flip_equals_own: bool) -> None:
        self.n[name] += 1
        self.ok[name] += int(swapped)
        self.others_ok[name] += int(others)
        if flip_equals_own:
            self.flip_own[name] += 1
        else:
            self.true_n[name] += 1
            self.true_ok[name] += int(swapped)

    def result(self) -> dict:
        r = lambda a, b: round(a / b, 4) if b else None  # noqa: E731
        swap = {n: r(self.ok[n], self.n[n]) for n in self.names}
        others = {n: r(self.others_ok[n], self.n[n]) for n in self.names}
        true = {n: r(self.true_ok[n], self.true_n[n]) for n in self.names}
        mean = lambda d: round(float(np.mean([v for v in d.values() if v is not None])), 4) if any(  # noqa: E731
            v is not None for v in d.values()) else None
        return {"n_faces": self.n[self.names[0]] if self.names else 0,
                "swap_accuracy": swap, "swap_mean": mean(swap),
                "others_unchanged": others, "others_unchanged_mean": mean(others),
                "swap_accuracy_true_flips": true, "swap_true_flips_mean": mean(true),
                "flip_equals_own": dict(self.flip_own)}


def _match(faces, landmarks: np.ndarray):
    """The detected face whose landmarks are nearest `landmarks`; None if none is close."""
    if not faces:
        return None, None
    eye = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    d = [float(np.linalg.norm(f.landmarks - landmarks, axis=1).mean()) for f in faces]
    k = int(np.argmin(d))
    return (faces[k], d[k]) if d[k] < 0.3 * max(eye, 1.0) else (None, d[k])


def _p(values, q):
    return round(float(np.percentile(values, q)), 1) if values else None


# ----------------------------------------------------------------------------------------------
# the two protocols

DIAGNOSTICS = {
    # name: (what is added to the photo, mask over the crop) -- see --diagnose; the photo is then
    # re-detected and re-aligned like the pipeline's
    "difference_whole_crop": ("difference", "ones"),
    "decode_replaces_face": ("decode", "face"),
    "decode_replaces_whole_crop": ("decode", "ones"),
    # the pipeline's rendered photo read through the ORIGINAL face's alignment (no re-detection)
    "pipeline_without_redetection": (None, None),
    # the raw decode enlarged 4x (bilinear) and shrunk back (INTER_AREA): the resampling alone
    "raw_decode_resampled": (None, None),
}


def _slider(attr, want: int, push: bool) -> float:
    """The slider value asking for value `want`: alpha = want, or the end of the attribute's
    recommended range on that side with --push."""
    if not push:
        return float(want)
    return float(attr.range[1] if want == 1 else attr.range[0])


def eval_photos(files, labels, engine, detector, progress=None, diagnose: bool = False,
                push: bool = False) -> dict:
    """The whole photo pipeline on unaligned photos (see the module docstring)."""
    import cv2

    from core.alignment import align_face, face_mask, paste_back
    from core.errors import NoFaceError
    from core.photo_edit import PhotoEdit
    attrs = engine.attributes
    template = engine.model.alignment()
    size = engine.image_size
    pipe, raw = Tally(attrs), Tally(attrs)
    diag = {name: Tally(attrs) for name in DIAGNOSTICS} if diagnose else {}
    per_photo = {}
    found, identical, not_found, lost = 0, 0, [], 0
    small_only = 0
    t_open, t_render, t_detect, shifts = [], [], [], []
    for k, path in enumerate(files):
        y = labels[path.name]
        t0 = time.perf_counter()
        try:
            doc = PhotoEdit.open(path, engine, detector=detector)
        except NoFaceError:
            not_found.append(path.name)
            small_only += int(bool(_skipped_only(path, engine, detector)))
            continue
        t_open.append((time.perf_counter() - t0) * 1e3)
        found += 1
        identical += int(np.array_equal(doc.render(), doc.image))
        main = main_face(doc)
        ref = _argmax(engine.predict_probabilities(main.aligned.crop)[0], attrs)
        rec = _argmax(engine.predict_probabilities(np.rint(main.reconstruction).astype(np.uint8))[0], attrs)
        rows = {}
        crops, raws, valid = [], [], []
        diag_ok = {name: [] for name in diag}
        for a in attrs:
            want = 1 - y[a.name]
            doc.reset()
            doc.set_value(a.name, _slider(a, want, push), face=main.index)
            t1 = time.perf_counter()
            out = doc.render()
            t_render.append((time.perf_counter() - t1) * 1e3)
            raws.append(doc.render_raw(main.index))
            t2 = time.perf_counter()
            again, dist = _match(detector.detect(out), main.landmarks)
            t_detect.append((time.perf_counter() - t2) * 1e3)
            if again is None:
                lost += 1
                valid.append(False)
                crops.append(np.zeros((size, size, 3), np.uint8))
            else:
                shifts.append(dist)
                valid.append(True)
                crops.append(align_face(out, again.landmarks, template, size).crop)
            for name in diag:
                what, where = DIAGNOSTICS[name]
                if name == "pipeline_without_redetection":
                    pr = engine.predict_probabilities(align_face(out, main.landmarks, template, size).crop)[0]
                    diag_ok[name].append(int(np.argmax(pr[a.name])) == want)
                    continue
                if name == "raw_decode_resampled":
                    big = cv2.resize(raws[-1], (4 * size, 4 * size), interpolation=cv2.INTER_LINEAR)
                    pr = engine.predict_probabilities(cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA))[0]
                    diag_ok[name].append(int(np.argmax(pr[a.name])) == want)
                    continue
                base = main.reconstruction if what == "difference" else main.aligned.crop.astype(np.float32)
                mask = np.ones((size, size), np.float32) if where == "ones" else face_mask(size)
                alt = paste_back(doc.image, doc.render_face_crop(main.index), base, main.aligned.matrix, mask=mask)
                hit, _ = _match(detector.detect(alt), main.landmarks)
                if hit is None:
                    diag_ok[name].append(False)
                else:
                    pr = engine.predict_probabilities(align_face(alt, hit.landmarks, template, size).crop)[0]
                    diag_ok[name].append(int(np.argmax(pr[a.name])) == want)
        preds = [_argmax(p, attrs) for p in engine.predict_probabilities(np.stack(crops))]
        preds_raw = [_argmax(p, attrs) for p in engine.predict_probabilities(np.stack(raws))]
        for j, a in enumerate(attrs):
            want = 1 - y[a.name]
            own = int(np.argmax(_code(a, main.own_values[a.name])))
            others = [b.name for b in attrs if b.name != a.name]
            ok = valid[j] and preds[j][a.name] == want
            oth = valid[j] and all(preds[j][b] == ref[b] for b in others)
            pipe.add(a.name, ok, oth, own == want)
            ok_r = preds_raw[j][a.name] == want
            oth_r = all(preds_raw[j][b] == rec[b] for b in others)
            raw.add(a.name, ok_r, oth_r, own == want)
            rows[a.name] = [int(ok), int(ok_r)]
            for name in diag:
                diag[name].add(a.name, diag_ok[name][j], False, own == want)
        per_photo[path.name] = rows
        if progress:
            progress(k + 1, len(files))
    return {"photos": len(files), "face_found": found, "no_face": not_found,
            "no_face_but_too_small": small_only,
            "identity_bit_identical": identical, "identity_checked": found,
            "face_lost_after_edit": lost, "pipeline": pipe.result(), "photo_crop_raw": raw.result(),
            "landmark_shift_px": {"mean": round(float(np.mean(shifts)), 2) if shifts else None,
                                  "median": round(float(np.median(shifts)), 2) if shifts else None,
                                  "p90": round(float(np.percentile(shifts, 90)), 2) if shifts else None},
            "ms": {"open_p50": _p(t_open, 50), "render_p50": _p(t_render, 50), "render_p90": _p(t_render, 90),
                   "redetect_p50": _p(t_detect, 50)},
            "diagnostics": {name: {k: v for k, v in t.result().items() if not k.startswith("others")}
                            for name, t in diag.items()},
            "_per_photo": per_photo}


def _skipped_only(path, engine, detector) -> int:
    from core.photo_edit import PhotoEdit
    doc = PhotoEdit.open(path, engine, detector=detector, require_face=False)
    return len(doc.skipped)


def _code(attr, value):
    from core.attributes import value_to_code
    return value_to_code(attr, value)


def eval_aligned(files, labels, engine, progress=None, push: bool = False) -> dict:
    """The same flip protocol on CelebA-aligned crops, decoded at model resolution."""
    from core.photo_edit import PhotoEdit
    attrs = engine.attributes
    tally = Tally(attrs)
    per_image = {}
    for k, path in enumerate(files):
        y = labels[path.name]
        doc = PhotoEdit.open(path, engine, aligned=True)
        f = doc.faces[0]
        rec = _argmax(engine.predict_probabilities(np.rint(f.reconstruction).astype(np.uint8))[0], attrs)
        outs = []
        for a in attrs:
            doc.reset()
            doc.set_value(a.name, _slider(a, 1 - y[a.name], push))
            outs.append(doc.render_raw(0))
        preds = [_argmax(p, attrs) for p in engine.predict_probabilities(np.stack(outs))]
        rows = {}
        for j, a in enumerate(attrs):
            want = 1 - y[a.name]
            own = int(np.argmax(_code(a, f.own_values[a.name])))
            ok = preds[j][a.name] == want
            oth = all(preds[j][b.name] == rec[b.name] for b in attrs if b.name != a.name)
            tally.add(a.name, ok, oth, own == want)
            rows[a.name] = int(ok)
        per_image[path.name] = rows
        if progress:
            progress(k + 1, len(files))
    res = tally.result()
    res["images"] = len(files)
    res["_per_image"] = per_image
    return res


def _image_means(per: dict, attrs, col=None, names=None) -> list:
    """Per image: the share of its attribute flips that succeeded (0..1)."""
    keys = sorted(per) if names is None else sorted(n for n in names if n in per)
    return [float(np.mean([per[k][a.name] if col is None else per[k][a.name][col] for a in attrs])) for k in keys]


def _se_points(a: list, b: list | None = None) -> float | None:
    """Standard error (points) of mean(a) - mean(b) for independent samples (or of mean(a))."""
    if len(a) < 2 or (b is not None and len(b) < 2):
        return None
    v = np.var(a, ddof=1) / len(a) + (np.var(b, ddof=1) / len(b) if b is not None else 0.0)
    return round(100 * float(np.sqrt(v)), 1)


def _subset_tally(per_photo: dict, names: set, attrs, col: int) -> dict:
    out = {}
    for a in attrs:
        v = [per_photo[n][a.name][col] for n in names if n in per_photo]
        out[a.name] = round(float(np.mean(v)), 4) if v else None
    vals = [v for v in out.values() if v is not None]
    return {"swap_accuracy": out, "swap_mean": round(float(np.mean(vals)), 4) if vals else None}


# ----------------------------------------------------------------------------------------------
# main

def _model_info(path: Path, model, digest: str) -> dict:
    meta = model.meta or {}
    tr = meta.get("training", {}) if isinstance(meta.get("training"), dict) else {}
    met = meta.get("metrics", {}) if isinstance(meta.get("metrics"), dict) else {}
    st = path.stat()
    return {"path": str(path), "sha256_12": digest[:12],
            "mtime": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(st.st_mtime)),
            "name": meta.get("name"), "step": met.get("step", tr.get("steps")),
            "training_seconds": tr.get("seconds"), "image_size": model.image_size,
            "validation_swap_mean": (met.get("validation") or {}).get("swap_mean")}


@one_line_errors("photo_swap_eval")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--model", required=True, type=Path, help="the .fader model (it must hold a classifier)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (default ../shared/data)")
    ap.add_argument("--limit", type=int, default=200, help="photos to evaluate (default 200)")
    ap.add_argument("--photos", choices=("first", "paired"), default="first",
                    help="first: the first LIMIT photos by name; paired: only photos whose aligned crop "
                         "the shared data has (first LIMIT of those)")
    ap.add_argument("--aligned-split", type=int, default=0, choices=(0, 1),
                    help="split of the img_align_celeba sample (default 0, the photos' split)")
    ap.add_argument("--diagnose", action="store_true",
                    help="also measure variants of the paste-back (where the pipeline loses swaps): the "
                         "difference through the whole crop square instead of the feathered face mask, and "
                         "the decode itself replacing the face (default mask / whole crop)")
    ap.add_argument("--push", action="store_true",
                    help="move the slider to the end of the attribute's recommended range on the requested "
                         "side (e.g. -1 or 2) instead of alpha = 1 - y, in every protocol")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)

    import cv2
    import torch
    torch.set_num_threads(max(1, args.threads))
    cv2.setNumThreads(max(1, args.threads))
    from core.engine import Engine
    from core.faces import FaceDetector

    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    data = args.data.resolve()
    wild = data / "celeba" / "img_celeba"
    if not wild.is_dir():
        raise FaderError(f"{wild} does not exist")
    # The model file may be replaced while we run (a training run exports atomically): work on a copy.
    model, digest = load_model_copy(args.model)
    if model.classifier is None:
        raise FaderError(f"{args.model} has no classifier")
    for a in model.attributes:
        if not a.is_binary:
            raise FaderError(f"attribute {a.name} is not binary (CelebA labels are)")
    engine = Engine(model, device="cpu", threads=max(1, args.threads))
    detector = FaceDetector()
    attrs = engine.attributes
    names = [a.name for a in attrs]

    partition = read_partition(data / "list_eval_partition.txt")
    all_wild = sorted(p for p in wild.glob("*.jpg"))
    if args.photos == "paired":
        all_wild = [p for p in all_wild if aligned_source(data, p.name) is not None]
    photos = all_wild[:args.limit]
    align_dir = data / "celeba" / "img_align_celeba"
    sample = sorted(p for p in align_dir.glob("*.jpg") if partition.get(p.name) == args.aligned_split)[:len(photos)]
    paired = {p.name: aligned_source(data, p.name) for p in photos}
    paired = {k: v for k, v in paired.items() if v is not None}
    need = {p.name for p in photos} | {p.name for p in sample}
    labels = read_table(data / "list_attr_celeba.txt", need, names)
    missing = [n for n in need if n not in labels]
    if missing:
        raise FaderError(f"{data / 'list_attr_celeba.txt'} has no labels for {len(missing)} of the images "
                         f"(e.g. {', '.join(sorted(missing)[:3])})")
    splits = sorted({partition.get(p.name) for p in photos})

    def bar(tag):
        def f(i, n):
            if i == n or i % 20 == 0:
                say(f"  {tag}: {i}/{n}")
        return f

    t0 = time.time()
    say(f"photo pipeline on {len(photos)} photos ({photos[0].name} .. {photos[-1].name}) ...")
    res_photos = eval_photos(photos, labels, engine, detector, bar("photos"), args.diagnose, args.push)
    t_photos = time.time() - t0
    say(f"CelebA aligned crops of the same ids: {len(paired)} ...")
    res_paired = eval_aligned(sorted(paired.values()), labels, engine, bar("paired"), args.push)
    say(f"img_align_celeba split-{args.aligned_split} sample: {len(sample)} ...")
    res_sample = eval_aligned(sample, labels, engine, bar("sample"), args.push)
    wall = time.time() - t0

    per_photo = res_photos.pop("_per_photo")
    per_paired = res_paired.pop("_per_image")
    per_sample = res_sample.pop("_per_image")
    se_sample = _se_points(_image_means(per_photo, attrs, 0), _image_means(per_sample, attrs))
    # same ids: paired per-image differences (photo pipeline - CelebA's aligned crop of that image)
    by_id = {p.name: _image_means({p.name: per_paired[p.name]}, attrs)[0]
             for p in paired.values() if p.name in per_paired}
    pairs = [(_image_means(per_photo, attrs, 0, {n})[0], by_id[n]) for n in sorted(paired) if n in per_photo and n in by_id]
    se_paired = _se_points([x - y for x, y in pairs]) if pairs else None
    paired_names = set(paired)
    res_paired["ids"] = sorted(paired_names)
    res_paired["photo_pipeline_same_photos"] = _subset_tally(per_photo, paired_names, attrs, 0)
    res_paired["photo_crop_raw_same_photos"] = _subset_tally(per_photo, paired_names, attrs, 1)
    res_paired["from_folders"] = sorted({p.parent.name for p in paired.values()})
    res_sample.update({"folder": str(align_dir), "split": args.aligned_split,
                       "first": sample[0].name if sample else None, "last": sample[-1].name if sample else None})

    pipe = res_photos["pipeline"]
    diff = {n: (round(100 * (pipe["swap_accuracy"][n] - res_sample["swap_accuracy"][n]), 1)
                if pipe["swap_accuracy"][n] is not None and res_sample["swap_accuracy"][n] is not None else None)
            for n in names}
    diff_mean = (round(100 * (pipe["swap_mean"] - res_sample["swap_mean"]), 1)
                 if pipe["swap_mean"] is not None and res_sample["swap_mean"] is not None else None)
    pp = res_paired["photo_pipeline_same_photos"]
    diff_paired = (round(100 * (pp["swap_mean"] - res_paired["swap_mean"]), 1)
                   if pp["swap_mean"] is not None and res_paired["swap_mean"] is not None else None)
    out = {
        "model": _model_info(args.model, model, digest),
        "photos": {"folder": str(wild), "selection": args.photos, "count": len(photos),
                   "first": photos[0].name, "last": photos[-1].name, "splits": splits},
        "photo_pipeline": res_photos,
        "aligned_same_ids": res_paired,
        "aligned_sample": res_sample,
        "difference_points_pipeline_minus_sample": diff,
        "difference_points_pipeline_minus_sample_mean": diff_mean,
        "difference_points_pipeline_minus_sample_mean_se": se_sample,
        "difference_points_pipeline_minus_aligned_same_ids_mean": diff_paired,
        "difference_points_pipeline_minus_aligned_same_ids_mean_se": se_paired,
        "slider": "range end on the requested side (--push)" if args.push else "alpha = 1 - y",
        "seconds": {"photos": round(t_photos, 1), "total": round(wall, 1)},
        "threads": args.threads, "torch": torch.__version__,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(out, sort_keys=False))
    else:
        print(_table(out, names))
    return 0


def _fmt(v):
    return "  -  " if v is None else f"{100 * v:5.1f}"


def _table(o: dict, names: list) -> str:
    p = o["photo_pipeline"]
    lines = [f"model: {o['model']['path']} (step {o['model']['step']}, file time {o['model']['mtime']}, "
             f"sha256 {o['model']['sha256_12']})",
             f"slider: {o['slider']}",
             f"photos: {o['photos']['count']} ({o['photos']['first']} .. {o['photos']['last']}), "
             f"face found {p['face_found']}/{p['photos']} ({100 * p['face_found'] / max(1, p['photos']):.1f} %); "
             f"identity (no slider moved) bit-identical {p['identity_bit_identical']}/{p['identity_checked']}; "
             f"edited face lost on re-detection {p['face_lost_after_edit']}; "
             f"landmark shift after edit mean {p['landmark_shift_px']['mean']} px",
             "",
             f"{'swap accuracy %':42s}" + "".join(f"{n[:12]:>13s}" for n in names) + f"{'mean':>8s}"]

    def row(label, r):
        return f"{label:42s}" + "".join(f"{_fmt(r['swap_accuracy'][n]):>13s}" for n in names) + f"{_fmt(r['swap_mean']):>8s}"
    s, a = o["aligned_sample"], o["aligned_same_ids"]
    lines += [row("photo pipeline", p["pipeline"]), row("photo crop, raw decode", p["photo_crop_raw"]),
              row(f"aligned split-{s['split']} sample", s),
              *[row(f"diag: {name}", r) for name, r in p["diagnostics"].items()],
              f"{'diff pipeline - sample (points)':42s}" + "".join(f"{(o['difference_points_pipeline_minus_sample'][n] or 0):13.1f}" for n in names)
              + f"{o['difference_points_pipeline_minus_sample_mean'] or 0:8.1f}"
              + f"  (+- {o['difference_points_pipeline_minus_sample_mean_se']} s.e.)",
              row("photo pipeline, true flips only", {"swap_accuracy": p["pipeline"]["swap_accuracy_true_flips"],
                                                      "swap_mean": p["pipeline"]["swap_true_flips_mean"]}),
              row("aligned sample, true flips only", {"swap_accuracy": s["swap_accuracy_true_flips"],
                                                       "swap_mean": s["swap_true_flips_mean"]}),
              "",
              f"same ids ({len(a['ids'])} photos with an aligned crop):",
              row("  photo pipeline", a["photo_pipeline_same_photos"]),
              row("  aligned crops", a),
              f"  diff (points) mean {o['difference_points_pipeline_minus_aligned_same_ids_mean']} "
              f"(+- {o['difference_points_pipeline_minus_aligned_same_ids_mean_se']} s.e., paired by image)", "",
              f"{'others unchanged %':42s}" + "".join(f"{n[:12]:>13s}" for n in names) + f"{'mean':>8s}"]

    def orow(label, r):
        return f"{label:42s}" + "".join(f"{_fmt(r['others_unchanged'][n]):>13s}" for n in names) + f"{_fmt(r['others_unchanged_mean']):>8s}"
    lines += [orow("photo pipeline", p["pipeline"]), orow(f"aligned split-{s['split']} sample", s), "",
              f"flip already equals the face's own (classifier) value: photos {sum(p['pipeline']['flip_equals_own'].values())}, "
              f"of {p['pipeline']['n_faces'] * len(names)} flips; aligned sample {sum(s['flip_equals_own'].values())} "
              f"of {s['n_faces'] * len(names)}", "",
              f"timing (ms, 1 photo): open (load+detect+align+encode) p50 {p['ms']['open_p50']}, "
              f"slider change render p50 {p['ms']['render_p50']} / p90 {p['ms']['render_p90']}, "
              f"re-detect p50 {p['ms']['redetect_p50']}; total {o['seconds']['total']} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
