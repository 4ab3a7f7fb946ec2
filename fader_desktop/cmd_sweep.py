"""`fader-desktop sweep`: the paper's interpolation figure, as an image, a GIF or an MP4."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from core.errors import FaderError

STILL = (".png", ".jpg", ".jpeg", ".webp")
ANIMATED = (".gif", ".mp4")


EXAMPLES = """examples:
  fader-desktop sweep photo.jpg -o strip.png --attr Smiling --labels
  fader-desktop sweep photo.jpg -o smile.gif --attr Smiling --steps 12 --fps 10
  fader-desktop sweep a.jpg b.jpg -o grid.png --grid --labels   (every attribute flipped, one row per photo)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fader_desktop.cli import add_model_arguments, add_overwrite_argument
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos; each gives one row")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="OUT.png/.jpg/.webp (figure), OUT.gif or OUT.mp4 (animation across the values)")
    p.add_argument("--attr", action="append", default=[], metavar="NAME[=VALUE]",
                   help="attribute to sweep (for one with more than two values: NAME=TARGET); "
                        "with --grid repeatable, default every attribute")
    # argparse reads "-1e3" or "-.5e1" as an option ("expected 2 arguments"): it takes only -1 and -1.5
    # for negative numbers (Python 3.11). This parser has no option that looks like a number.
    p._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
    p.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"),
                   help="slider values of the first and last column (default: the attribute's range)")
    p.add_argument("--steps", type=int, default=8, metavar="N", help="interpolated values (default 8)")
    p.add_argument("--grid", action="store_true",
                   help="one column per attribute, flipped to its other value (see --ends), instead of a sweep")
    p.add_argument("--ends", action="store_true", help="with --grid: two columns per attribute, at both ends of its range")
    p.add_argument("--cell-size", type=int, metavar="PX", help="cell size in pixels (default: the model's resolution)")
    p.add_argument("--margin", type=int, metavar="PX", help="space between cells (default: cell/32, at least 2)")
    p.add_argument("--labels", action="store_true", help="write column labels above the cells")
    p.add_argument("--fps", type=float, default=8.0, help="animation frames per second (default 8)")
    p.add_argument("--face", type=int, metavar="N",
                   help="which face of each photo (0 = the first in reading order: top row, leftmost); default: its main face, as the window selects "
                        "it first (the first, unless another is at least twice its size)")
    p.add_argument("--aligned", action="store_true", help="the inputs are CelebA-style aligned crops")
    p.add_argument("--find-more-faces", action="store_true",
                   help="make every face search on each photo, whatever the others found (a person lying down, "
                        "a small face in a big photo; slower), as edit --find-more-faces")
    add_overwrite_argument(p)
    add_model_arguments(p)


def run(args) -> int:
    from core.attributes import counted
    from core.image_io import check_output_folder, save_image
    from core.sweep import (animation_frames, cell_and_margin, check_figure_size, check_fps, find_attribute,
                            grid_columns, open_faces, save_animation, strip_columns, sweep_frames, sweep_grid,
                            sweep_strip, sweep_values)
    from core.errors import printable
    from core.photo_edit import check_face_search, face_search
    from fader_desktop.cli import PROG, check_output, hint_find_more_faces, load_engine

    def note(text: str) -> None:
        sys.stderr.write(f"{PROG}: note: {printable(text)}\n")
    out = Path(args.output)
    suffix = out.suffix.lower()
    check_face_search(args.aligned, args.find_more_faces)
    if suffix not in STILL + ANIMATED:
        raise FaderError(f"{out}: output must be one of {', '.join(STILL + ANIMATED)}")
    if args.grid:
        if suffix in ANIMATED:
            raise FaderError(f"{out}: --grid makes a still figure; write .png, .jpg or .webp")
        if args.range is not None or args.steps != 8:
            raise FaderError("--range and --steps apply to a sweep of one attribute, not to --grid")
    else:
        if args.ends:
            raise FaderError("--ends applies to --grid")
        if len(args.attr) != 1:
            raise FaderError("give exactly one --attr NAME to sweep (or --grid for several attributes)")
        if args.steps < 2 or args.steps > 64:
            raise FaderError(f"--steps must be between 2 and 64, got {args.steps}")
    if args.face is not None and args.face < 0:
        raise FaderError(f"--face must be 0 or more, got {args.face}")
    # everything that can be refused is refused before the photos are read and the model run:
    # with many photos that work takes minutes, and a typo should not cost them. The options before
    # the output file: a rerun with a typo must name the typo, not the figure the first run wrote
    if suffix in ANIMATED:
        check_fps(out, args.fps)
    engine = load_engine(args)   # the attribute names and the model's size (a fraction of a second)
    lo, hi = args.range if args.range else (None, None)
    chosen = [find_attribute(engine, a) for a in args.attr]
    cell, margin = cell_and_margin(engine, args.cell_size, args.margin)
    rows = len(args.images)
    if args.grid:
        n = len(chosen) if chosen else len(engine.attributes)
        check_figure_size(out, rows, grid_columns(n, "ends" if args.ends else "flip"), cell, margin, args.labels)
    else:
        a, target = chosen[0]
        sweep_values(a, a.range[0] if lo is None else lo, a.range[1] if hi is None else hi, args.steps,
                     None, target)   # the range and the target, checked once for all photos
        if suffix in ANIMATED:
            check_figure_size(out, rows, 2, cell, margin, args.labels, frames=animation_frames(args.steps))
        else:
            check_figure_size(out, rows, strip_columns(args.steps), cell, margin, args.labels)
    check_output(out, args.images, args.overwrite, args.model)
    check_output_folder(out, "cannot save" if suffix in ANIMATED else "cannot save image")
    if suffix == ".mp4":
        from core.sweep import require_mp4
        require_mp4(out)
    if suffix not in ANIMATED and args.fps != 8.0:
        note(f"--fps applies to an animation (.gif, .mp4); {out.name} is a still figure")
    with hint_find_more_faces(args):
        faces = open_faces(args.images, engine, aligned=args.aligned, face=args.face,
                           detector=face_search(args.aligned, args.find_more_faces), note=note)
    if args.grid:
        img = sweep_grid(faces, engine, attrs=args.attr or None, mode="ends" if args.ends else "flip",
                         cell=args.cell_size, margin=args.margin, labels=args.labels)
    elif suffix in ANIMATED:
        frames = sweep_frames(faces, engine, args.attr[0], lo, hi, args.steps, cell=args.cell_size,
                              margin=args.margin, labels=args.labels)
        save_animation(out, frames, fps=args.fps, replace=args.overwrite)
    else:
        img = sweep_strip(faces, engine, args.attr[0], lo, hi, args.steps, cell=args.cell_size,
                          margin=args.margin, labels=args.labels)
    if suffix not in ANIMATED:
        save_image(out, img, replace=args.overwrite)
    # a confirmation on stdout, as edit gives (the notes go to stderr)
    what = "a grid" if args.grid else f"{chosen[0][0].name} in {args.steps} steps"
    print(f"{PROG}: wrote {printable(out)} ({what}, {counted(len(faces), 'face')})")
    return 0
