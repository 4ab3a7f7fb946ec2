"""What *Find more faces* (``FaceDetector.detect(..., thorough=True)``) finds that the ordinary
search does not, what it finds that is no face, and what it costs. On ``img_celeba/`` photos
(first N by name, odd numbers by default: the thresholds of core/faces.py were chosen on even ones):

* ``lying``: rows of two upright photos beside a third turned a quarter (every other row the other
  way), each scaled to ``--row-height`` px high: a person lying beside people sitting up;
* ``small``: a photo enlarged to about ``--megapixels`` MP with three other photos pasted in its
  corners at ``--small-height`` px high (their faces 40-80 px): a group photo with people in the back;
* ``as_they_are``: the photos themselves: every detection the thorough search adds there is
  either a face the ordinary search missed or a false face (``--crops DIR`` writes them to look at;
  a folder that already holds crops of these photos is refused unless ``--overwrite`` is given);
* ``faceless``: each photo's largest band clear of every face (bench/faces_eval.py's
  ``faceless_band``): every detection there is a false face;
* ``marked``: Mark a missed face (``FaceDetector.face_in_box``) on the ``small`` photos with the
  corner photos ``--tiny-height`` px high (faces mostly under the 40 px any search looks for), each
  marked with a box drawn around its landmarks as a user would.

A face counts as found where a detection's box holds its nose, and as good where every landmark
lies within a quarter of the eye distance of where the photo searched alone put it. Times are
medians per composed photo, one thread, the two searches alternating on each photo.

    python bench/find_more_faces.py                  # 150 odd photos: 50 rows, 50 big photos
    python bench/find_more_faces.py --limit 300 --json
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.faces import FaceDetector  # noqa: E402
from core.image_io import load_image  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from bench_cli import add_overwrite, check_crops, one_line_errors, parser  # noqa: E402
from faces_eval import faceless_band, photos as celeba_photos  # noqa: E402

DEFAULT_DATA = ROOT / ".." / "shared" / "data"


def _truth(detector: FaceDetector, rgb: np.ndarray):
    """The landmarks (5, 2) of the largest face found in ``rgb`` alone, or None."""
    faces = detector.detect(rgb)
    return max(faces, key=lambda f: f.size).landmarks.astype(np.float64) if faces else None


def _placed(points: np.ndarray, scale: float, x: float, y: float) -> np.ndarray:
    """Pixel-centre landmarks of an image scaled by ``scale`` and placed at (x, y)."""
    return (points + 0.5) * scale - 0.5 + (x, y)


def _turned(points: np.ndarray, k: int, w: int, h: int) -> np.ndarray:
    """Landmarks of a w x h image in ``np.rot90(image, k)`` (k = 1 or 3)."""
    x, y = points[:, 0], points[:, 1]
    return np.stack([y, w - 1 - x], 1) if k == 1 else np.stack([h - 1 - y, x], 1)


def _score(faces, truths) -> tuple[int, int]:
    """(found, good) over the true landmark sets ``truths``."""
    found = good = 0
    for t in truths:
        eye = float(np.linalg.norm(t[1] - t[0]))
        on = [f for f in faces if f.box[0] <= t[2, 0] <= f.box[2] and f.box[1] <= t[2, 1] <= f.box[3]]
        found += bool(on)
        good += any(np.linalg.norm(f.landmarks - t, axis=1).max() <= 0.25 * eye for f in on)
    return found, good


def lying_rows(photos, detector, height: int):
    """Yield (image, upright truths, lying truths) rows of three photos, the third turned."""
    for r in range(len(photos) // 3):
        parts, upright, lying, x = [], [], [], 0
        for j, (rgb, t) in enumerate(photos[3 * r:3 * r + 3]):
            k = (1 if r % 2 == 0 else 3) if j == 2 else 0
            if k:
                h0, w0 = rgb.shape[:2]
                t = _turned(t, k, w0, h0)
                rgb = np.ascontiguousarray(np.rot90(rgb, k))
            s = height / rgb.shape[0]
            part = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), height), interpolation=cv2.INTER_AREA)
            (lying if k else upright).append(_placed(t, part.shape[1] / rgb.shape[1], x, 0))
            parts.append(part)
            x += part.shape[1]
        yield np.ascontiguousarray(np.concatenate(parts, axis=1)), upright, lying


def small_faces(photos, megapixels: float, small: int):
    """Yield (image, big face's truth, small faces' truths): the first photo of each four enlarged
    to about ``megapixels`` MP, the three others ``small`` px high in its corners away from its face."""
    for r in range(len(photos) // 4):
        (rgb, t), rest = photos[4 * r], photos[4 * r + 1:4 * r + 4]
        h0, w0 = rgb.shape[:2]
        s = float(np.sqrt(megapixels * 1e6 / (h0 * w0)))
        big = cv2.resize(rgb, (round(w0 * s), round(h0 * s)), interpolation=cv2.INTER_LANCZOS4)
        main = _placed(t, s, 0, 0)
        H, W = big.shape[:2]
        nose = main[2]
        corners = sorted(((0, 0), (W, 0), (0, H), (W, H)), key=lambda c: -np.hypot(c[0] - nose[0], c[1] - nose[1]))
        truths = []
        for (cx, cy), (p, pt) in zip(corners, rest):
            k = small / p.shape[0]
            part = cv2.resize(p, (max(1, round(p.shape[1] * k)), small), interpolation=cv2.INTER_AREA)
            x = 0 if cx == 0 else W - part.shape[1]
            y = 0 if cy == 0 else H - part.shape[0]
            if x < 0 or y < 0:
                continue
            big[y:y + part.shape[0], x:x + part.shape[1]] = part
            truths.append(_placed(pt, part.shape[1] / p.shape[1], x, y))
        yield big, [main], truths


def _drawn_box(t: np.ndarray) -> tuple:
    """The box a user would draw around a face with landmarks ``t``: from a little above the eyes
    to a little below the mouth, as wide as it is tall, centred between eyes and mouth."""
    eyes, mouth = t[:2].mean(0), t[3:].mean(0)
    side = 2.6 * float(np.linalg.norm(mouth - eyes))
    cx, cy = 0.5 * (eyes + mouth)
    return (cx - side / 2, cy - 0.55 * side, cx + side / 2, cy + 0.45 * side)


def marked(detector, photos, megapixels: float, tiny: int) -> dict:
    """Mark a missed face: the small-faces photos again, the three corner photos ``tiny`` px high
    (faces of about 20-35 px, under the 40 px any search looks for), each marked with the box
    :func:`_drawn_box` gives: found (a face returned whose box holds the nose) and good."""
    faces = found = good = missed_by_thorough = 0
    times = []
    for img, _big, truths in small_faces(photos, megapixels, tiny):
        thorough = detector.detect(img, thorough=True)
        for t in truths:
            faces += 1
            missed_by_thorough += not _score(thorough, [t])[0]
            f, dt = _timed(lambda: detector.face_in_box(img, _drawn_box(t)))
            times.append(dt)
            a, b = _score([f] if f is not None else [], [t])
            found += a
            good += b
    return {"faces": faces, "missed_by_thorough": missed_by_thorough, "found": found, "good": good,
            "tiny_height": tiny, "ms_median": round(1000 * statistics.median(times), 1) if times else None}


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def photo_files(data: Path, limit: int, half: str) -> list:
    """faces_eval's photos, ``half`` "all" for every one."""
    return celeba_photos(data, limit, None if half == "all" else half)


def run(data: Path, limit: int, half: str, row_height: int, megapixels: float, small: int,
        crops: Path | None, tiny: int = 90, overwrite: bool = False) -> dict:
    from core.image_io import save_image
    detector = FaceDetector()
    files = photo_files(data, limit, half)
    if not files:
        raise SystemExit(f"find_more_faces: error: no photos in {data / 'celeba' / 'img_celeba'}")
    photos = []
    for f in files:
        rgb = load_image(f)
        t = _truth(detector, rgb)
        if t is not None:
            photos.append((rgb, t))
    ordinary = detector.detect
    thorough = lambda rgb: detector.detect(rgb, thorough=True)  # noqa: E731
    out: dict = {"photos": len(files), "with_a_face": len(photos), "half": half}

    def compare(name, cases, groups):
        tally = {m: {g: [0, 0, 0] for g in groups} for m in ("ordinary", "thorough")}
        times = {"ordinary": [], "thorough": []}
        detections = {"ordinary": 0, "thorough": 0}
        for i, (img, *truths) in enumerate(cases):
            order = ("ordinary", "thorough") if i % 2 == 0 else ("thorough", "ordinary")
            for m in order:
                faces, dt = _timed(lambda: (ordinary if m == "ordinary" else thorough)(img))
                times[m].append(dt)
                detections[m] += len(faces)
                for g, ts in zip(groups, truths):
                    f, good = _score(faces, ts)
                    tally[m][g][0] += len(ts)
                    tally[m][g][1] += f
                    tally[m][g][2] += good
        out[name] = {
            "cases": len(times["ordinary"]),
            **{m: {**{g: {"faces": a, "found": b, "good": c} for g, (a, b, c) in tally[m].items()},
                   "detections": detections[m],
                   "ms_median": round(1000 * statistics.median(times[m]), 1) if times[m] else None}
               for m in tally},
            "time_ratio_median": round(statistics.median(b / a for a, b in zip(times["ordinary"], times["thorough"])), 2)
            if times["ordinary"] else None,
        }

    compare("lying", lying_rows(photos, detector, row_height), ("upright", "lying"))
    compare("small", small_faces(photos, megapixels, small), ("big", "small"))
    out["marked"] = marked(detector, photos, megapixels, tiny)

    # the photos as they are: what the thorough search adds, and faceless bands
    added, bands, band_hits, band_hits_ordinary, times = [], 0, [], [], {"ordinary": [], "thorough": []}
    if crops:
        crops.mkdir(parents=True, exist_ok=True)
    for f in files:
        rgb = load_image(f)
        a, ta = _timed(lambda: ordinary(rgb))
        b, tb = _timed(lambda: thorough(rgb))
        times["ordinary"].append(ta)
        times["thorough"].append(tb)
        new = [g for g in b if not any(h.box[0] <= g.center_x <= h.box[2] and h.box[1] <= g.center_y <= h.box[3]
                                       for h in a)]
        for j, g in enumerate(new):
            added.append({"photo": f.name, "box": [round(v) for v in g.box], "score": round(g.score, 3),
                          "quarter_turns": g.quarter_turns})
            if crops:
                x0, y0, x1, y1 = (int(round(v)) for v in g.box)
                m = int(0.5 * g.size)
                crop = rgb[max(0, y0 - m):y1 + m, max(0, x0 - m):x1 + m]
                if crop.size:   # atomically, and over a file there only with --overwrite
                    save_image(crops / f"{f.stem}_{j}.png", np.ascontiguousarray(crop), replace=overwrite)
        band = faceless_band(rgb, b) if b else None
        if band is not None:
            bands += 1
            if thorough(band):
                band_hits.append(f.name)
            if ordinary(band):
                band_hits_ordinary.append(f.name)
    out["as_they_are"] = {"photos": len(files), "added": len(added), "added_detections": added,
                          "ordinary_ms_median": round(1000 * statistics.median(times["ordinary"]), 1),
                          "thorough_ms_median": round(1000 * statistics.median(times["thorough"]), 1)}
    out["faceless"] = {"bands": bands, "bands_with_a_detection": band_hits,
                       "bands_with_a_detection_ordinary": band_hits_ordinary}
    return out


@one_line_errors("find_more_faces")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    ap.add_argument("--limit", type=int, default=300, help="photos to take (first N by name, before --half)")
    ap.add_argument("--half", choices=("even", "odd", "all"), default="odd")
    ap.add_argument("--row-height", type=int, default=400)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--small-height", type=int, default=220, help="height of the photos pasted in a big one")
    ap.add_argument("--tiny-height", type=int, default=90,
                    help="height of the photos pasted in a big one for Mark a missed face (faces under 40 px)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crops", type=Path, default=None, help="write what the thorough search adds here")
    add_overwrite(ap, help="write over crops of the same photos already in the --crops folder (without this, "
                            "such a folder is refused before the work)")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args(argv)
    if args.crops:   # before the work (minutes of it), not when the first crop is written
        check_crops(args.crops, "--crops", [f.stem for f in photo_files(args.data, args.limit, args.half)],
                    overwrite=args.overwrite)
    import torch
    torch.set_num_threads(args.threads)
    res = run(args.data, args.limit, args.half, args.row_height, args.megapixels, args.small_height, args.crops,
              args.tiny_height, args.overwrite)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    for name, groups in (("lying", ("upright", "lying")), ("small", ("big", "small"))):
        r = res[name]
        print(f"{name}: {r['cases']} photos")
        for m in ("ordinary", "thorough"):
            parts = ", ".join(f"{g} {r[m][g]['found']}/{r[m][g]['faces']} found ({r[m][g]['good']} good)" for g in groups)
            print(f"  {m:9s} {parts}; {r[m]['detections']} detections; {r[m]['ms_median']} ms")
        print(f"  time ratio (median per photo) {r['time_ratio_median']}")
    m = res["marked"]
    print(f"marked: {m['faces']} faces {m['tiny_height']} px photos pasted in big ones ({m['missed_by_thorough']} "
          f"missed by the thorough search): {m['found']} found ({m['good']} good) in a drawn box; {m['ms_median']} ms")
    a = res["as_they_are"]
    print(f"as they are: {a['photos']} photos; thorough adds {a['added']} detections; "
          f"{a['ordinary_ms_median']} -> {a['thorough_ms_median']} ms")
    for d in a["added_detections"]:
        print(f"  + {d['photo']} {d['box']} {d['score']} turns {d['quarter_turns']}")
    fl = res["faceless"]
    print(f"faceless bands: {len(fl['bands_with_a_detection'])} of {fl['bands']} with a detection "
          f"{fl['bands_with_a_detection']} (ordinary search: {len(fl['bands_with_a_detection_ordinary'])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
