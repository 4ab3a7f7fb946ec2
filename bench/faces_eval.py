"""Face detection and alignment figures on the shared CelebA subset.

Default run (evaluation) on the first ``--limit`` photos, sorted by file name, of
``../shared/data/celeba/img_celeba`` (unaligned photos, train split):

* share of photos where at least one face is found;
* alignment consistency: each photo's main face (largest box) is aligned onto ``CELEBA_TEMPLATE``
  in a 178x218 frame, the detector is run again on that aligned image, and the distance (frame
  pixels) between the re-detected landmarks and the template is recorded (mean over the 5 points);
* detection time per photo (median, CPU), plus a 2-megapixel timing of detect / align / paste-back;
* the number of detections, and the photos with more than one (``--crops DIR`` writes each such
  photo's other detections as PNG, the box drawn in twice its size, to look at the non-faces; a
  folder that already holds crops of these photos is refused unless ``--overwrite`` is given).

``--megapixels MP`` enlarges each photo (INTER_LANCZOS4) to about MP megapixels first, as
docs/faces.md's tables of big photos do; ``--half even|odd`` takes only the photos whose CelebA
number is even or odd (choose a threshold on one half, report on the other). ``--grey`` makes
each photo black and white first (Rec. 601 luma in all three channels), ``--tilt DEG`` turns each
by DEG degrees on a canvas that holds it (clockwise for every other photo), as a scan or a tilted
head would be.

With ``--tilt``, each photo is also searched upright, and the report says in how many tilted
photos the face the window selects first (``core.photo_edit.main_face``) is the upright photo's
main face (its nose mapped through the turn), and how many detections lie on no face found
upright (false faces). ``--faceless`` instead searches the largest band of each photo that is
clear of every face found in it (each box grown by half its size on all sides, at least 48 px
across), made grey or tilted as asked: every detection there is a false face.

``--measure-template`` instead runs the detector on the first ``--template-count`` aligned CelebA
images (178x218) and prints the mean landmark positions that ``core/alignment.py`` hard-codes.

    python bench/faces_eval.py                 # evaluation, 300 photos
    python bench/faces_eval.py --json          # same, machine-readable
    python bench/faces_eval.py --limit 1500 --megapixels 25 --no-timing --crops /tmp/crops
    python bench/faces_eval.py --limit 600 --half odd --grey --tilt 35 --no-timing
    python bench/faces_eval.py --limit 600 --half odd --tilt 60 --faceless --no-timing
    python bench/faces_eval.py --measure-template --template-count 500
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
sys.path.insert(0, str(ROOT / "bench"))

from bench_cli import add_overwrite, check_crops, one_line_errors, parser  # noqa: E402
from core.alignment import (CELEBA_TEMPLATE, Template, align_face, face_mask,  # noqa: E402
                            paste_back)
from core.faces import LANDMARK_NAMES, FaceDetector, _tilt  # noqa: E402
from core.image_io import gray_rgb, load_image  # noqa: E402
from core.photo_edit import main_face  # noqa: E402

DEFAULT_DATA = ROOT / ".." / "shared" / "data"


def _central_face(faces, w, h):
    """The face whose box centre is nearest the image centre (aligned images: the subject)."""
    if not faces:
        return None
    return min(faces, key=lambda f: (f.center_x - w / 2) ** 2 + ((f.box[1] + f.box[3]) / 2 - h / 2) ** 2)


def measure_template(data: Path, count: int, detector: FaceDetector) -> dict:
    folder = data / "celeba" / "img_align_celeba"
    files = sorted(folder.glob("*.jpg"))[:count]
    if not files:
        raise SystemExit(f"faces_eval: error: no images in {folder}")
    points, missed = [], []
    for f in files:
        rgb = load_image(f)
        face = _central_face(detector.detect(rgb, min_size=40), rgb.shape[1], rgb.shape[0])
        if face is None:
            missed.append(f.name)
        else:
            points.append(face.landmarks)
    pts = np.stack(points).astype(np.float64)
    # baseline for the evaluation figure: how far CelebA's own alignment leaves each face from the
    # mean (distance averaged over the 5 points, frame pixels)
    spread = np.linalg.norm(pts - pts.mean(0), axis=2).mean(1)
    return {
        "folder": str(folder), "images": len(files), "first": files[0].name, "last": files[-1].name,
        "detected": len(points), "missed": missed,
        "mean": np.round(pts.mean(0), 2).tolist(),
        "median": np.round(np.median(pts, 0), 2).tolist(),
        "std": np.round(pts.std(0), 2).tolist(),
        "distance_to_mean_px": {"mean": round(float(spread.mean()), 3),
                                "median": round(float(np.median(spread)), 3)},
    }


def _frame_view(template: Template) -> tuple[Template, float]:
    """A square template covering the whole frame (plus side margins): aligning to it yields the
    full 178x218 frame, so landmarks can be re-detected with the same context as the template."""
    fw, fh = template.frame
    side = max(fw, fh)
    dx = (side - fw) / 2
    return Template(template.frame, (-dx, 0.0, fw + dx, float(side)), template.landmarks), dx


def enlarged(rgb: np.ndarray, megapixels: float) -> np.ndarray:
    """``rgb`` resized (INTER_LANCZOS4, aspect ratio kept) to about ``megapixels`` million pixels."""
    import cv2

    h, w = rgb.shape[:2]
    k = (megapixels * 1e6 / (h * w)) ** 0.5
    return cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_LANCZOS4)


def _write_crops(folder: Path, name: str, rgb: np.ndarray, faces, main, replace: bool = False) -> None:
    """PNG crops (128 px) of the detections other than ``main``, each box drawn in a square twice
    its side, named PHOTO_N_RATIO_SCORE (ratio: its size over the main face's); a file already
    there is replaced only with ``replace``."""
    import cv2

    from core.image_io import save_image

    for i, f in enumerate(faces):
        if f is main:
            continue
        s = int(round(f.size))
        x0, y0 = int(round(f.center_x)) - s, int(round(f.center_y)) - s
        pad = np.pad(rgb[max(0, y0): y0 + 2 * s, max(0, x0): x0 + 2 * s],
                     ((max(0, -y0), 0), (max(0, -x0), 0), (0, 0)))
        square = np.zeros((2 * s, 2 * s, 3), np.uint8)
        square[: pad.shape[0], : pad.shape[1]] = pad[: 2 * s, : 2 * s]
        crop = cv2.resize(square, (128, 128), interpolation=cv2.INTER_AREA)
        cv2.rectangle(crop, (32, 32), (95, 95), (0, 255, 0), 1)
        save_image(folder / f"{Path(name).stem}_{i}_{f.size / main.size:.2f}_{f.score:.2f}.png", crop,
                   replace=replace)


def photos(data: Path, limit: int, half: str | None = None) -> list:
    """The first ``limit`` photos of img_celeba/ by name, then the even- or odd-numbered half."""
    files = sorted((data / "celeba" / "img_celeba").glob("*.jpg"))[:limit]
    return [f for f in files if int(f.stem) % 2 == (half == "odd")] if half else files


def evaluate(data: Path, limit: int, detector: FaceDetector, template: Template,
             megapixels: float | None = None, half: str | None = None, crops: Path | None = None,
             grey_copy: bool = False, tilt: float = 0.0, overwrite: bool = False) -> dict:
    folder = data / "celeba" / "img_celeba"
    files = photos(data, limit, half)
    if not files:
        raise SystemExit(f"faces_eval: error: no images in {folder}")
    if crops:
        crops.mkdir(parents=True, exist_ok=True)
    view, dx = _frame_view(template)
    side = int(round(view.crop_box[2] - view.crop_box[0]))
    found, times, cpu, dists, per_point, sizes, redetect_missed, not_found = 0, [], [], [], [], [], [], []
    detections, several, selected_right, off_face, selected_wrong = 0, {}, 0, [], []
    for i, f in enumerate(files):
        rgb = load_image(f)
        if megapixels:
            rgb = enlarged(rgb, megapixels)
        if grey_copy:
            rgb = gray_rgb(rgb)   # as a grey export writes it (ITU-R 601 luma)
        noses = None
        if tilt:
            upright = detector.detect(rgb)
            rgb, back = _tilt(rgb, tilt if i % 2 == 0 else -tilt)
            ahead = cv2.invertAffineTransform(back)
            # each upright face's nose where the turn puts it; the first is the main face's
            noses = [ahead[:, :2] @ g.landmarks[2] + ahead[:, 2]
                     for g in sorted(upright, key=lambda g: -g.size)]
        sizes.append(rgb.shape[0] * rgb.shape[1])
        t, c = time.perf_counter(), time.process_time()
        faces = detector.detect(rgb)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        detections += len(faces)
        if not faces:
            not_found.append(f.name)
            continue
        found += 1
        main = max(faces, key=lambda fc: fc.size)
        if noses is not None:
            on = lambda p, g: g.box[0] <= p[0] <= g.box[2] and g.box[1] <= p[1] <= g.box[3]  # noqa: E731
            off_face += [f.name for g in faces if not any(on(p, g) for p in noses)]
            if noses and on(noses[0], faces[main_face(faces)]):
                selected_right += 1
            elif noses:
                selected_wrong.append(f.name)
        if len(faces) > 1:
            several[f.name] = len(faces)
            if crops:
                _write_crops(crops, f.name, rgb, faces, main, replace=overwrite)
        aligned = align_face(rgb, main.landmarks, view, side)
        again = _central_face(detector.detect(aligned.crop, min_size=40), side, side)
        if again is None:
            redetect_missed.append(f.name)
            continue
        lm = again.landmarks.astype(np.float64) - (dx, 0.0)  # back to frame coordinates
        d = np.linalg.norm(lm - template.landmarks, axis=1)
        dists.append(float(d.mean()))
        per_point.append(d)
    pp = np.mean(per_point, axis=0) if per_point else np.zeros(5)
    return {
        "folder": str(folder), "photos": len(files), "first": files[0].name, "last": files[-1].name,
        "median_megapixels": round(statistics.median(sizes) / 1e6, 3), "half": half or "all",
        "grey": grey_copy, "tilt": tilt,
        "detections": detections, "several_faces": several,
        "selected_upright_main_face": selected_right if tilt else None, "selected_other": selected_wrong,
        "detections_off_upright_faces": len(off_face), "off_upright_faces": off_face,
        "found": found, "found_share": round(found / len(files), 4), "not_found": not_found,
        "aligned_redetected": len(dists), "redetect_missed": redetect_missed,
        "landmark_error_mean_px": round(float(np.mean(dists)), 3) if dists else None,
        "landmark_error_median_px": round(float(np.median(dists)), 3) if dists else None,
        "landmark_error_p90_px": round(float(np.percentile(dists, 90)), 3) if dists else None,
        "landmark_error_per_point_px": dict(zip(LANDMARK_NAMES, np.round(pp, 3).tolist())),
        "detect_ms_median": round(1000 * statistics.median(times), 1),
        "detect_ms_p90": round(1000 * float(np.percentile(times, 90)), 1),
        "detect_cpu_ms_median": round(1000 * statistics.median(cpu), 1),
    }


def faceless_band(rgb: np.ndarray, faces, min_px: int = 48):
    """The largest band across the whole photo (top, bottom, left or right) clear of every face
    box grown by half its size on all sides, or None where none is ``min_px`` across."""
    h, w = rgb.shape[:2]
    grown = [(f.box[0] - 0.5 * f.size, f.box[1] - 0.5 * f.size, f.box[2] + 0.5 * f.size, f.box[3] + 0.5 * f.size)
             for f in faces]
    top = int(max(0, min(b[1] for b in grown)))
    bottom = int(min(h, np.ceil(max(b[3] for b in grown))))
    left = int(max(0, min(b[0] for b in grown)))
    right = int(min(w, np.ceil(max(b[2] for b in grown))))
    bands = [(top * w, rgb[:top]), ((h - bottom) * w, rgb[bottom:]),
             (left * h, rgb[:, :left]), ((w - right) * h, rgb[:, right:])]
    bands = [(a, b) for a, b in bands if min(b.shape[:2]) >= min_px]
    return np.ascontiguousarray(max(bands, key=lambda ab: ab[0])[1]) if bands else None


def faceless(data: Path, limit: int, detector: FaceDetector, megapixels: float | None = None,
             half: str | None = None, grey_copy: bool = False, tilt: float = 0.0) -> dict:
    """Detections in each photo's largest faceless band (:func:`faceless_band`), made grey and
    tilted as asked (every other one the other way): each is a false face."""
    files = sorted((data / "celeba" / "img_celeba").glob("*.jpg"))[:limit]
    if half:
        files = [f for f in files if int(f.stem) % 2 == (half == "odd")]
    bands, with_face, detections = 0, [], 0
    for i, f in enumerate(files):
        rgb = load_image(f)
        if megapixels:
            rgb = enlarged(rgb, megapixels)
        faces = detector.detect(rgb)
        band = faceless_band(rgb, faces) if faces else None   # a photo with no face found: unknown
        if band is None:
            continue
        if grey_copy:
            band = gray_rgb(band)
        if tilt:
            band = _tilt(band, tilt if i % 2 == 0 else -tilt)[0]
        bands += 1
        n = len(detector.detect(band))
        detections += n
        if n:
            with_face.append(f.name)
    return {"photos": len(files), "half": half or "all", "grey": grey_copy, "tilt": tilt,
            "bands": bands, "bands_with_a_detection": with_face, "detections": detections}


def timing_2mp(data: Path, detector: FaceDetector, template: Template, size: int = 256,
               repeats: int = 5) -> dict:
    """Detect / align / paste-back on the first photo (by name) whose face is still found after
    enlarging it to about 2 megapixels (aspect ratio kept)."""
    import cv2

    for f in sorted((data / "celeba" / "img_celeba").glob("*.jpg")):
        rgb = load_image(f)
        k = (2.0e6 / (rgb.shape[0] * rgb.shape[1])) ** 0.5
        big = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
        faces = detector.detect(big)
        if faces:
            break
    else:
        return {}

    def best(fn):
        """Median wall-clock and process-CPU milliseconds (CPU time is the steadier figure on a
        shared machine)."""
        fn()
        ts, cs = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            fn()
            ts.append(time.perf_counter() - t)
            cs.append(time.process_time() - c)
        return {"wall": round(1000 * statistics.median(ts), 2), "cpu": round(1000 * statistics.median(cs), 2)}

    face = max(faces, key=lambda fc: fc.size)
    aligned = align_face(big, face.landmarks, template, size)
    edited = np.clip(aligned.crop.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    out = big.copy()
    # the same edit with the face scaled to a 400 px crop square (a typical portrait in a 2 MP photo)
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    k = size / 400.0
    m400 = np.array([[k, 0.0, size / 2 - k * cx], [0.0, k, size / 2 - k * cy]])
    return {
        "photo": f.name, "size": f"{big.shape[1]}x{big.shape[0]}", "crop": size,
        "face_px": round(face.size),
        "detect_ms": best(lambda: detector.detect(big)),
        "align_ms": best(lambda: align_face(big, face.landmarks, template, size)),
        "paste_back_ms": best(lambda: paste_back(big, edited, aligned.crop, aligned.matrix, out=out)),
        "paste_back_400px_ms": best(lambda: paste_back(big, edited, aligned.crop, m400, out=out)),
        "mask_ms": best(lambda: face_mask(size)),
    }


def _half_note(res: dict) -> str:
    """The half --half took (', odd numbers'); nothing for all the photos."""
    return "" if res["half"] == "all" else f", {res['half']} numbers"


def _copy_note(res: dict) -> str:
    """The copies the photos were looked at in (', grey', ', tilted 35 degrees'); nothing for none."""
    return (", grey" if res["grey"] else "") + (f", tilted {res['tilt']:g} degrees" if res["tilt"] else "")


@one_line_errors("faces_eval")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    ap.add_argument("--limit", type=int, default=300, help="photos to evaluate (first N by name)")
    ap.add_argument("--measure-template", action="store_true",
                    help="measure the mean landmarks on aligned CelebA images instead")
    ap.add_argument("--template-count", type=int, default=500)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--no-timing", action="store_true", help="skip the 2-megapixel timing")
    ap.add_argument("--megapixels", type=float, default=None,
                    help="enlarge each photo (Lanczos) to about this many megapixels first")
    ap.add_argument("--half", choices=("even", "odd"), default=None,
                    help="only the photos whose CelebA number is even / odd")
    ap.add_argument("--grey", action="store_true", help="make each photo black and white first")
    ap.add_argument("--tilt", type=float, default=0.0, help="turn each photo by this many degrees (every other one clockwise)")
    ap.add_argument("--faceless", action="store_true",
                    help="search each photo's largest band clear of faces instead (every detection is false)")
    ap.add_argument("--crops", type=Path, default=None,
                    help="write PNG crops of every detection but each photo's largest into this folder")
    add_overwrite(ap, help="write over crops of the same photos already in the --crops folder (without this, "
                            "such a folder is refused before the work)")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args(argv)
    if args.megapixels is not None and not 0 < args.megapixels <= 200:
        ap.error(f"--megapixels must be above 0 and at most 200, got {args.megapixels:g}")
    if args.threads:
        import cv2
        import torch
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    data = args.data.resolve()
    if args.crops and not (args.measure_template or args.faceless):   # before the work, not after it
        check_crops(args.crops, "--crops", [f.stem for f in photos(data, args.limit, args.half)],
                    overwrite=args.overwrite)
    detector = FaceDetector()
    if args.measure_template:
        res = measure_template(data, args.template_count, detector)
        if args.json:
            print(json.dumps(res, indent=2))
            return 0
        print(f"{res['detected']}/{res['images']} aligned images with a face "
              f"({res['first']} .. {res['last']} in {res['folder']})")
        for name, m, md, sd in zip(LANDMARK_NAMES, res["mean"], res["median"], res["std"]):
            print(f"  {name:12s} mean ({m[0]:7.2f}, {m[1]:7.2f})  median ({md[0]:7.2f}, {md[1]:7.2f})"
                  f"  std ({sd[0]:5.2f}, {sd[1]:5.2f})")
        dm = res["distance_to_mean_px"]
        print(f"distance of each image's landmarks to the mean (5-point average, px): "
              f"mean {dm['mean']}, median {dm['median']}")
        return 0
    if args.faceless:
        res = faceless(data, args.limit, detector, args.megapixels, args.half, args.grey, args.tilt)
        if args.json:
            print(json.dumps(res, indent=2))
            return 0
        print(f"faceless bands: {res['bands']} of {res['photos']} photos{_half_note(res)}{_copy_note(res)}")
        print(f"bands with a detection: {len(res['bands_with_a_detection'])} "
              f"({', '.join(res['bands_with_a_detection']) or '-'}); detections: {res['detections']}")
        return 0
    timing = {} if args.no_timing else timing_2mp(data, detector, CELEBA_TEMPLATE)
    res = evaluate(data, args.limit, detector, CELEBA_TEMPLATE, args.megapixels, args.half, args.crops,
                   args.grey, args.tilt, args.overwrite)
    res["torch_threads"] = __import__("torch").get_num_threads()
    if timing:
        res["timing_2mp"] = timing
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"photos: {res['photos']} ({res['first']} .. {res['last']} of {res['folder']}{_half_note(res)}), "
          f"median {res['median_megapixels']} MP{_copy_note(res)}")
    print(f"face found: {res['found']}/{res['photos']} = {100 * res['found_share']:.1f}%"
          f"   not found: {', '.join(res['not_found']) or '-'}")
    print(f"detections: {res['detections']}; photos with more than one: {len(res['several_faces'])}")
    if res["tilt"]:
        print(f"the face selected first is the upright photo's main face in {res['selected_upright_main_face']}"
              f"/{res['found']}   (other: {', '.join(res['selected_other']) or '-'})")
        print(f"detections on no face found upright: {res['detections_off_upright_faces']}"
              f" ({', '.join(res['off_upright_faces']) or '-'})")
    print(f"aligned + re-detected: {res['aligned_redetected']}/{res['found']}"
          f"   (missed: {', '.join(res['redetect_missed']) or '-'})")
    print(f"landmark distance to template (178x218 frame px): mean {res['landmark_error_mean_px']}, "
          f"median {res['landmark_error_median_px']}, p90 {res['landmark_error_p90_px']}")
    print("  per point: " + ", ".join(f"{k} {v}" for k, v in res["landmark_error_per_point_px"].items()))
    print(f"detection time per photo ({res['torch_threads']} torch threads): median "
          f"{res['detect_ms_median']} ms wall (p90 {res['detect_ms_p90']}), "
          f"{res['detect_cpu_ms_median']} ms CPU")
    if res.get("timing_2mp"):
        t = res["timing_2mp"]
        print(f"2 MP ({t['photo']} enlarged to {t['size']}, face {t['face_px']} px, crop {t['crop']}), "
              "median ms wall / CPU:")
        for key in ("detect_ms", "align_ms", "paste_back_ms", "paste_back_400px_ms"):
            print(f"  {key[:-3]:18s} {t[key]['wall']:8.2f} / {t[key]['cpu']:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
