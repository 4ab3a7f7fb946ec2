"""fader-train's check that square and CelebA-framed images are face crops (training/cli.py
_check_framed_photos): how it judges real aligned crops and whole photos, and what one check costs.

Sets made from ../shared/data/celeba (in a temporary folder). Square:
  al178/al256/al1024  img_align_celeba 178x218 crops cut to their square (rows 20..198, as the
                      training does), as they are and enlarged to 256 and 1024 px (JPEG 92)
  fw178/fw256/fw1024  the same from img_align_celeba_from_wild
  wildown/wild1080    img_celeba whole photos centre-cropped square, at their size and at 1080 px
  mixK                30 images: 30-K of al256 and K of wild1080
CelebA's 178x218 framing (which the training crops as CelebA's aligned images, rows 20..198 scaled;
a 4:5 portrait is within its aspect tolerance):
  cf178/cf356/cf1080  img_align_celeba as they are, and enlarged to 356x436 and 1080x1322
  cw178/cw1080        the same from img_align_celeba_from_wild
  p45own/p45_1080     img_celeba whole photos centre-cropped 4:5, at their size and at 1080x1350
  half45              half-body portraits, 1080x1350: the img_celeba photo placed so that its largest
                      face's box is a fifth of the width, centred, its top at 12 % of the height
                      (borders reflected); photos without a face found are left out
  mix45_K             30 images: 30-K of cf356 and K of half45
Every image is classified (face where an aligned crop has it / elsewhere / none found: what the
check's sample sees), and each set is checked in samples of 30 (the check's own sample size) as
fader-train does without --align: how many samples were refused, warned about or passed, and the
median seconds of one check (it looks at 10 images where those settle it, else up to 30), per set
and over all. Against a version without the CelebA-framing check, its sets are checked (all pass)
but not classified.

  python bench/training_framing.py [--count 300] [--wild 500] [--threads 1] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CELEBA = REPO.parent / "shared" / "data" / "celeba"


def _spread(files: list, n: int) -> list:
    return files[::max(1, len(files) // n)][:n]


def make_sets(root: Path, count: int, wild: int) -> dict:
    import cv2
    sets = {}
    for name, folder in (("al", "img_align_celeba"), ("fw", "img_align_celeba_from_wild")):
        files = _spread(sorted((CELEBA / folder).glob("*.jpg")), count)
        for size in (178, 256, 1024):
            out = root / f"{name}{size}"
            out.mkdir(parents=True)
            for f in files:
                sq = cv2.imread(str(f))[20:198]
                if size != 178:
                    sq = cv2.resize(sq, (size, size), interpolation=cv2.INTER_CUBIC)
                cv2.imwrite(str(out / f.name), sq, [cv2.IMWRITE_JPEG_QUALITY, 92])
            sets[out.name] = sorted(str(p) for p in out.iterdir())
    for name in ("wildown", "wild1080"):
        (root / name).mkdir()
    for f in _spread(sorted((CELEBA / "img_celeba").glob("*.jpg")), wild):
        im = cv2.imread(str(f))
        h, w = im.shape[:2]
        s = min(h, w)
        sq = im[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        cv2.imwrite(str(root / "wildown" / f.name), sq, [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(root / "wild1080" / f.name), cv2.resize(sq, (1080, 1080), interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
    for name in ("wildown", "wild1080"):
        sets[name] = sorted(str(p) for p in (root / name).iterdir())
    for k in (3, 6, 10, 15):
        n_mix = min(len(sets["al256"]) // (30 - k), len(sets["wild1080"]) // k)
        sets[f"mix{k}"] = [p for i in range(n_mix) for p in sets["al256"][i * (30 - k):(i + 1) * (30 - k)]
                           + sets["wild1080"][i * k:(i + 1) * k]]
    sets.update(make_celeba_framed_sets(root, count, wild))
    return sets


def _half_body(im, box):
    """A 1080x1350 portrait of `im` with the face `box` a fifth of the width, centred, its top at
    12 % of the height (borders reflected)."""
    import cv2
    k = 216.0 / max(box[2] - box[0], 1.0)
    cx = (box[0] + box[2]) / 2
    m = np.array([[k, 0.0, 540.0 - k * cx], [0.0, k, 162.0 - k * box[1]]])
    return cv2.warpAffine(im, m, (1080, 1350), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


def make_celeba_framed_sets(root: Path, count: int, wild: int) -> dict:
    import cv2
    from core.faces import detect_faces
    sets = {}
    for name, folder in (("cf", "img_align_celeba"), ("cw", "img_align_celeba_from_wild")):
        files = _spread(sorted((CELEBA / folder).glob("*.jpg")), count)
        for size in ((178, 356, 1080) if name == "cf" else (178, 1080)):
            out = root / f"{name}{size}"
            out.mkdir(parents=True)
            for f in files:
                im = cv2.imread(str(f))
                if size != 178:
                    im = cv2.resize(im, (size, round(size * 218 / 178)), interpolation=cv2.INTER_CUBIC)
                cv2.imwrite(str(out / f.name), im, [cv2.IMWRITE_JPEG_QUALITY, 92])
            sets[out.name] = sorted(str(p) for p in out.iterdir())
    for name in ("p45own", "p45_1080", "half45"):
        (root / name).mkdir()
    for f in _spread(sorted((CELEBA / "img_celeba").glob("*.jpg")), wild):
        im = cv2.imread(str(f))
        h, w = im.shape[:2]
        cw, ch = (w, w * 5 // 4) if w * 5 // 4 <= h else (h * 4 // 5, h)
        p = im[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
        cv2.imwrite(str(root / "p45own" / f.name), p, [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(root / "p45_1080" / f.name), cv2.resize(p, (1080, 1350), interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        faces = detect_faces(np.ascontiguousarray(im[:, :, ::-1]))
        if faces:
            face = max(faces, key=lambda x: (x.box[2] - x.box[0]) * (x.box[3] - x.box[1]))
            cv2.imwrite(str(root / "half45" / f.name), _half_body(im, face.box), [cv2.IMWRITE_JPEG_QUALITY, 92])
    for name in ("p45own", "p45_1080", "half45"):
        sets[name] = sorted(str(p) for p in (root / name).iterdir())
    for k in (3, 6, 10, 15):
        n_mix = min(len(sets["cf356"]) // (30 - k), len(sets["half45"]) // k)
        sets[f"mix45_{k}"] = [p for i in range(n_mix) for p in sets["cf356"][i * (30 - k):(i + 1) * (30 - k)]
                              + sets["half45"][i * k:(i + 1) * k]]
    return sets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=300, help="aligned crops per source (default 300)")
    ap.add_argument("--wild", type=int, default=500, help="whole photos (default 500)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="only the JSON line on stdout")
    a = ap.parse_args()
    if a.count < 30 or a.wild < 30:   # the check is timed on 30 images at a time
        print("training_framing: error: --count and --wild must be at least 30", file=sys.stderr)
        return 2
    if not CELEBA.is_dir():
        print(f"{CELEBA} is absent", file=sys.stderr)
        return 1
    import torch
    from core.errors import FaderError
    from training import cli
    torch.set_num_threads(a.threads)
    result = {"threads": a.threads, "sets": {}}
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sets = make_sets(Path(tmp), a.count, a.wild)
        print(f"sets made in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        framed = getattr(cli, "_framed_faces", None)   # None: a version that looks at square images only
        check = getattr(cli, "_check_framed_photos", None) or cli._check_square_photos
        for name, files in sets.items():
            verdicts = {"refused": 0, "warned": 0, "passed": 0}
            at = elsewhere = none = 0
            square = name.startswith(("al", "fw", "wild", "mix")) and not name.startswith("mix45")
            for i in range(0, len(files), 10):   # 10 at a time: all are looked at
                chunk = files[i:i + 10]
                if framed is not None:
                    looked, off, faceless = framed(chunk, "square" if square else "celeba")
                elif square:
                    looked, off, faceless = cli._square_faces(chunk)
                else:
                    continue
                at += len(looked) - len(off) - len(faceless)
                elsewhere += len(off)
                none += len(faceless)
            first = len(seconds)
            for i in range(0, len(files) - 29, 30):
                chunk = files[i:i + 30]
                said = []
                t = time.perf_counter()
                try:
                    check(SimpleNamespace(align=False, data=[name]), chunk, said.append)
                    verdicts["warned" if said else "passed"] += 1
                except FaderError:
                    verdicts["refused"] += 1
                seconds.append(time.perf_counter() - t)
            result["sets"][name] = {"files": len(files), "images": at + elsewhere + none, "face_where_aligned": at,
                                    "face_elsewhere": elsewhere, "no_face": none, **verdicts,
                                    "check_seconds_p50": round(float(np.median(seconds[first:])), 3)
                                    if seconds[first:] else None}
            print(name, result["sets"][name], file=sys.stderr)
    result["check_seconds_p50"] = round(float(np.median(seconds)), 3)
    result["check_seconds_max"] = round(float(np.max(seconds)), 3)
    result["loadavg_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
