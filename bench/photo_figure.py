"""The README's photo figure: whole photos (not aligned crops) exported with one attribute flipped.

Six photos of ``../shared/data/celeba/img_celeba/`` (held out of all training), each edited with
the app's own command, ``fader-desktop edit PHOTO -o OUT.jpg --set ATTR=VALUE --face N`` (N = the
largest face; VALUE = the value the face does not have by CelebA's true label), then the original
and the exported JPEG are cropped around that face at photo resolution and shown side by side.
The photos are chosen by a fixed rule on true labels only (never on the model's output): walking
the photos in name order, for each attribute in turn (Smiling, Male, Young, Eyeglasses,
Mouth_Slightly_Open, then Eyeglasses again), the first photo not yet chosen whose largest face is
at least ``--min-face`` pixels wide, alternating the direction of the flip (to / from the attribute)
where the data allow.

    python bench/photo_figure.py --model resources/models/default.fader -o docs/photo_figure.jpg --overwrite
    python bench/photo_figure.py --model M -o more.jpg --start 150     # six other photos, same rule

The figure is made from CelebA images (non-commercial research only).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_cli import add_overwrite, check_data, check_output, one_line_errors, parser  # noqa: E402
from core.errors import FaderError  # noqa: E402

DATA = (ROOT / ".." / "shared" / "data").resolve()
ORDER = ["Smiling", "Male", "Young", "Eyeglasses", "Mouth_Slightly_Open", "Eyeglasses"]
WORDS = {"Smiling": ("not smiling", "smiling"), "Male": ("female", "male"), "Young": ("older", "young"),
         "Eyeglasses": ("no glasses", "glasses"), "Mouth_Slightly_Open": ("mouth closed", "mouth open")}


def face_box(doc, idx):
    f = doc.faces[idx]
    return f.box


def square_around(box, shape, grow: float = 1.9):
    """A square of `grow` times the face box's larger side around its centre, kept in the photo."""
    x0, y0, x1, y1 = box
    side = grow * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0)  # a little more hair than neck
    h, w = shape[:2]
    side = min(side, h, w)
    left = int(round(min(max(cx - side / 2, 0), w - side)))
    top = int(round(min(max(cy - side / 2, 0), h - side)))
    return left, top, int(side)


@one_line_errors("photo_figure")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--model", required=True, help="the .fader model; it must have the attributes flipped "
                                                   "(Smiling, Male, Young, Eyeglasses, Mouth_Slightly_Open)")
    ap.add_argument("-o", "--out", required=True, help="the figure (.jpg, .png, .webp, ...)")
    add_overwrite(ap, "the figure")
    ap.add_argument("--cell", type=int, default=256, help="each crop is shown at this size")
    ap.add_argument("--min-face", type=int, default=110, help="smallest face box width in the photo (px)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--start", type=int, default=0,
                    help="begin the walk at this photo (in name order): other photos, chosen by the same rule")
    a = ap.parse_args(argv)
    from core.image_io import SAVE_FORMATS
    check_output(a.out, "-o", suffixes=set(SAVE_FORMATS), overwrite=a.overwrite)
    check_data(DATA, "list_attr_celeba.txt", "celeba/img_celeba")
    import cv2
    import torch
    from PIL import Image, ImageDraw
    torch.set_num_threads(a.threads)
    from core.engine import Engine
    from core.image_io import load_image
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    from fader_desktop.cli import main as app_main
    from photo_swap_eval import read_table
    from readme_figure import _font
    photos = sorted((DATA / "celeba" / "img_celeba").glob("*.jpg"))[max(0, a.start):]
    labels = read_table(DATA / "list_attr_celeba.txt", {p.name for p in photos}, sorted(set(ORDER)))
    engine = Engine(load_model(a.model), device="cpu", threads=a.threads)
    missing = [n for n in dict.fromkeys(ORDER) if n not in {x.name for x in engine.attributes}]
    if missing:
        raise FaderError(f"{a.model}: the figure flips {', '.join(dict.fromkeys(ORDER))}; the model lacks "
                         f"{', '.join(missing)}")
    chosen, pairs = set(), []
    direction = {}
    font = _font(max(12, a.cell // 14))
    with tempfile.TemporaryDirectory() as tmp:
        for attr in ORDER:
            want_first = direction.get(attr, 1)  # first time: towards the attribute; then away
            picked = None
            for want in (want_first, 1 - want_first):
                for p in photos:
                    if p.name in chosen or labels[p.name][attr] != 1 - want:
                        continue
                    try:
                        doc = PhotoEdit.open(p, engine)
                    except Exception:
                        continue
                    idx = max(range(len(doc.faces)), key=lambda i: doc.faces[i].box[2] - doc.faces[i].box[0])
                    if doc.faces[idx].box[2] - doc.faces[idx].box[0] < a.min_face:
                        continue
                    picked = (p, doc, idx, want)
                    break
                if picked:
                    break
            if picked is None:
                continue
            p, doc, idx, want = picked
            chosen.add(p.name)
            direction[attr] = 1 - want
            out = Path(tmp) / f"{p.stem}_{attr}.jpg"
            code = app_main(["edit", str(p), "-o", str(out), "--set", f"{attr}={want}", "--face", str(idx),
                             "--model", str(a.model), "--device", "cpu"])
            if code not in (0, None):
                print(f"photo_figure: editing {p.name} failed", file=sys.stderr)
                return 2
            original, exported = load_image(p), load_image(out)
            left, top, side = square_around(doc.faces[idx].box, original.shape)
            cells = []
            for img, text in ((original, f"{p.name}"), (exported, WORDS[attr][want])):
                crop = img[top:top + side, left:left + side]
                crop = cv2.resize(crop, (a.cell, a.cell), interpolation=cv2.INTER_AREA if side > a.cell else cv2.INTER_CUBIC)
                im = Image.fromarray(crop)
                d = ImageDraw.Draw(im)
                d.rectangle([0, a.cell - font.size - 8, a.cell, a.cell], fill=(0, 0, 0))
                d.text((6, a.cell - font.size - 6), text, fill=(255, 255, 255), font=font)
                cells.append(np.asarray(im))
            pairs.append(np.concatenate(cells, 1))
            print(f"photo_figure: {p.name} face {idx} ({side} px crop): {attr} -> {want}", file=sys.stderr)
    if not pairs:
        print("photo_figure: no photo found", file=sys.stderr)
        return 2
    gap = np.full((a.cell, 8, 3), 255, np.uint8)
    rows = []
    for r in range(0, len(pairs), 3):
        row = []
        for k, pr in enumerate(pairs[r:r + 3]):
            row += ([gap] if k else []) + [pr]
        rows.append(np.concatenate(row, 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    grid = np.concatenate([x for r in rows for x in (r, np.full((8, width, 3), 255, np.uint8))][:-1], 0)
    from core.image_io import save_image
    save_image(Path(a.out), grid, quality=92, replace=a.overwrite)
    print(f"photo_figure: wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
