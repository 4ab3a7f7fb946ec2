"""The README figure: real validation faces, original, reconstruction, each attribute edited.

Faces: CelebA validation images (split 1 of ``list_eval_partition.txt``) present in
``../shared/data/celeba/img_align_celeba``, cropped with the model's template
(``core.alignment.aligned_crop``, the app's ``--aligned`` path). Unless ``--ids`` names them, they
are chosen by a fixed rule on their TRUE labels only (never on the model's output), walking the
split-1 files in name order and taking the first not yet chosen image that matches each pattern in
turn: woman smiling, man not smiling, woman not smiling, man smiling, someone wearing glasses,
someone not young (patterns repeat when ``--n`` is larger).

Columns: original crop, reconstruction (the model's decode at the face's own values), then one
column per attribute with that attribute switched to the value the face does not have (the face's
own value is the model classifier's reading, as in the app). This is ``core.sweep.sweep_grid``
(``mode="flip"``); ``--mode push`` instead moves the slider to the END of its recommended range in
that direction (e.g. Smiling 0 -> 2), which shows the direction of the edit more strongly, and
``--mode ends`` is ``sweep_grid``'s two columns (low end, high end) per attribute. Each edited cell
carries a caption naming the value it was moved to.

    python bench/readme_figure.py --model runs/default64/model.fader -o docs/figure.png --overwrite
    python bench/readme_figure.py --model M -o fig.png --n 4 --mode push --cell 160

The figure is a generated file made from CelebA images (non-commercial research only).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_cli import (add_overwrite, check_data, check_output, load_model_copy, one_line_errors, parser,  # noqa: E402
                       written_through)
from core.errors import FaderError  # noqa: E402

DEFAULT_DATA = (ROOT / ".." / "shared" / "data").resolve()

# Words for the captions of the attributes CelebA has (value 0, value 1); others use "name=value".
WORDS = {
    "Smiling": ("not smiling", "smiling"),
    "Male": ("female", "male"),
    "Young": ("older", "young"),
    "Eyeglasses": ("no glasses", "glasses"),
    "Mouth_Slightly_Open": ("mouth closed", "mouth open"),
    "Bangs": ("no bangs", "bangs"),
    "No_Beard": ("beard", "no beard"),
    "Heavy_Makeup": ("no makeup", "makeup"),
    "Blond_Hair": ("not blond", "blond"),
    "Black_Hair": ("not black hair", "black hair"),
}
SHORT = {"Mouth_Slightly_Open": "Mouth open", "Eyeglasses": "Glasses"}

PATTERNS = [
    {"Male": 0, "Smiling": 1},
    {"Male": 1, "Smiling": 0},
    {"Male": 0, "Smiling": 0},
    {"Male": 1, "Smiling": 1},
    {"Eyeglasses": 1},
    {"Young": 0},
]


def choose_faces(data: Path, n: int) -> list:
    """The first split-1 images (by name) matching each label pattern in turn (see the docstring)."""
    folder = data / "celeba" / "img_align_celeba"
    with open(data / "list_eval_partition.txt") as fh:
        val = {a for a, b in (line.split() for line in fh if line.strip()) if b == "1"}
    files = sorted(p.name for p in folder.glob("*.jpg") if p.name in val)
    if not files:
        raise FaderError(f"no split-1 images in {folder}")
    wanted = set(files)
    labels = {}
    with open(data / "list_attr_celeba.txt") as fh:
        fh.readline()
        header = fh.readline().split()
        for line in fh:
            parts = line.split()
            if parts and parts[0] in wanted:
                labels[parts[0]] = {h: int(v == "1") for h, v in zip(header, parts[1:])}
    chosen = []
    for k in range(n):
        pat = PATTERNS[k % len(PATTERNS)]
        for name in files:
            if name not in chosen and all(labels[name].get(a) == v for a, v in pat.items()):
                chosen.append(name)
                break
        else:
            rest = [f for f in files if f not in chosen]
            if not rest:
                raise FaderError(f"--n {n}: {folder} has only {len(files)} split-1 images")
            chosen.append(rest[0])
    return [folder / c for c in chosen]


def _caption(attr, value) -> str:
    v = float(value)
    words = WORDS.get(attr.name)
    k = 1 if v >= 0.5 else 0
    base = words[k] if words else f"{attr.name}={attr.values[k]}"
    return base if v in (0.0, 1.0) else f"{base} ({v:g})"


def _font(size: int):
    from PIL import ImageFont
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "Arial.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


@one_line_errors("readme_figure")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--model", required=True, type=Path, help="the .fader model")
    ap.add_argument("-o", "--out", required=True, type=Path, help="output PNG (or .jpg, .webp, ...)")
    add_overwrite(ap, "the figure")
    ap.add_argument("--n", type=int, default=6, help="number of faces (rows), default 6")
    ap.add_argument("--ids", default=None, help="comma-separated file names (e.g. 182638.jpg,...) instead of the rule")
    ap.add_argument("--mode", choices=("flip", "push", "ends"), default="flip",
                    help="flip: switch to the other value (default); push: to the range end in that "
                         "direction; ends: both range ends")
    ap.add_argument("--cell", type=int, default=128, help="cell size in pixels (default 128)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args(argv)
    if args.n < 1 or args.cell < 16:
        raise FaderError("--n must be at least 1 and --cell at least 16")
    from core.image_io import SAVE_FORMATS
    check_output(args.out, "-o", suffixes=set(SAVE_FORMATS), overwrite=args.overwrite, make_folder=True)
    check_data(args.data.resolve(), "list_eval_partition.txt", "list_attr_celeba.txt", "celeba/img_align_celeba")

    import torch
    torch.set_num_threads(max(1, args.threads))
    from PIL import Image, ImageDraw
    from core.attributes import value_to_code
    from core.engine import Engine, Latent
    from core.sweep import compose, open_faces, sweep_grid

    data = args.data.resolve()
    if args.ids:
        folder = data / "celeba" / "img_align_celeba"
        paths = [folder / s.strip() for s in args.ids.split(",") if s.strip()]
        for p in paths:
            if not p.exists():
                raise FaderError(f"{p} does not exist")
    else:
        paths = choose_faces(data, args.n)
    model, _ = load_model_copy(args.model)   # the model file may be replaced while we read it
    engine = Engine(model, device="cpu", threads=max(1, args.threads))
    attrs = list(engine.attributes)
    faces = open_faces(paths, engine, aligned=True)
    cell, margin = args.cell, max(3, args.cell // 32)

    # Per row: the values each edited column was decoded at (for the captions).
    col_values = []
    for f in faces:
        row = []
        for a in attrs:
            own = int(np.argmax(value_to_code(a, f.own[a.name])))
            if args.mode == "flip":
                row.append((a, float(1 - own) if a.is_binary else None))
            elif args.mode == "push":
                row.append((a, float(a.range[1] if own == 0 else a.range[0])))
            else:
                row += [(a, float(a.range[0])), (a, float(a.range[1]))]
        col_values.append(row)

    if args.mode in ("flip", "ends"):
        grid = sweep_grid(faces, engine, mode=args.mode, cell=cell, margin=margin, labels=False)
    else:
        rows = []
        for f, row in zip(faces, col_values):
            lat = Latent.cat([f.latent] * len(row))
            out = engine.decode_float(lat, [{**f.own, a.name: v} for a, v in row])
            rows.append([f.crop, f.reconstruction, *out])
        grid = compose(rows, cell, margin)

    # Header (attribute names) on top; under each edited cell a caption naming the value it shows.
    n_rows, n_cols = len(faces), 2 + len(col_values[0])
    f_head, f_cap = _font(max(11, cell // 9)), _font(max(9, cell // 11))
    head = f_head.size + 3 * margin
    cap_h = f_cap.size + 2 * margin if args.mode != "ends" else 0
    pitch = cell + cap_h + margin
    canvas = np.full((head + n_rows * pitch, grid.shape[1], 3), 255, np.uint8)
    for r in range(n_rows):
        src = margin + r * (cell + margin)
        dst = head + r * pitch
        canvas[dst:dst + cell] = grid[src:src + cell]
    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    titles = ["original", "reconstruction"]
    for a, v in col_values[0]:
        name = SHORT.get(a.name, a.name.replace("_", " "))
        titles.append(name if args.mode != "ends" else f"{name} {v:g}")
    for c, t in enumerate(titles):
        x0 = margin + c * (cell + margin)
        while draw.textlength(t, font=f_head) > cell and len(t) > 2:
            t = t[:-2] + "…"
        tw = draw.textlength(t, font=f_head)
        draw.text((x0 + (cell - tw) / 2, margin), t, fill=(20, 20, 20), font=f_head)
    for r, row in enumerate(col_values):
        y = head + r * pitch + cell + margin // 2
        for j, (a, v) in enumerate(row):
            if v is None or not cap_h:
                continue
            t = _caption(a, v)
            x0 = margin + (2 + j) * (cell + margin)
            while draw.textlength(t, font=f_cap) > cell and len(t) > 2:
                t = t[:-2] + "…"
            tw = draw.textlength(t, font=f_cap)
            draw.text((x0 + (cell - tw) / 2, y), t, fill=(90, 90, 90), font=f_cap)
    # a thin rule separates the inputs from the edits
    xs = 2 * (cell + margin) + margin // 2
    draw.line([(xs, head), (xs, canvas.shape[0] - margin)], fill=(170, 170, 170), width=1)
    with written_through(args.out, "-o", overwrite=args.overwrite) as tmp:
        im.save(tmp, optimize=True)
    print(f"{args.out}: {im.size[0]}x{im.size[1]}, {len(faces)} faces ({', '.join(p.name for p in paths)}), "
          f"{n_cols} columns, mode {args.mode}, model step "
          f"{(model.meta.get('metrics') or {}).get('step')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
