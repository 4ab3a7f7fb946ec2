"""`fader-desktop edit`: edit one photo from the command line."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path


EXAMPLES = """examples:
  fader-desktop edit photo.jpg -o smiling.jpg --set Smiling=1
  fader-desktop edit group.jpg -o out.jpg --face 1 --set Eyeglasses=1 --set Young=0
  fader-desktop edit photo.jpg -o out.png --recipe my_edit.json   (saved by the window: File > Save edit as recipe)
  fader-desktop edit photo.jpg -o out.jpg --own Young=no --set Young=1   (where the model misread the face as young)
  fader-desktop info   (the model's attributes, values and slider ranges)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fader_desktop.cli import add_model_arguments, add_overwrite_argument
    p.add_argument("image", help="input photo")
    p.add_argument("-o", "--output", required=True, help="output file (.png, .jpg, .webp, …); never the input")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="attribute value: a number (slider position: 0 = the first value, 1 = the second) or "
                        "a value label (Smiling=yes); the names, values and slider ranges: `fader-desktop "
                        "info`; repeatable")
    p.add_argument("--recipe", metavar="R.json",
                   help="recipe saved by the window (Save edit as recipe…), as batch takes it; --set overrides it")
    p.add_argument("--own", action="append", default=[], metavar="NAME=VALUE",
                   help="correct a face's own value where the model misread it (0 or 1, or a value label: "
                        "Young=no), on the face given with --face, else on every face; --set edits are "
                        "measured from it; repeatable")
    p.add_argument("--face", type=int, metavar="N",
                   help="edit only face N (0 = the first in reading order: top row, leftmost); default: every face (with --raw, which writes one "
                        "face's crop: the main face, the first unless another is at least twice its size)")
    p.add_argument("--aligned", action="store_true", help="the input is already a CelebA-style aligned crop")
    p.add_argument("--find-more-faces", action="store_true",
                   help="make every face search, whatever the others found: finds a person lying down beside "
                        "others and small faces in a big photo (several times slower; the window's View ▸ "
                        "Find more faces)")
    p.add_argument("--raw", action="store_true",
                   help="write the model's own output at model resolution: one face's crop (--face, default the "
                        "main face)")
    p.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality, 1..100 (default 95)")
    add_overwrite_argument(p)
    add_model_arguments(p)


def run(args) -> int:
    from core.attributes import label_text, pure_label
    from core.edit_session import sure_percent
    from core.errors import FaderError, printable
    from core.image_io import (check_save_path, export_photo, export_suffix, keeps_depth, open_photo, save_image,
                               unchanged_wording)
    from core.photo_edit import PhotoEdit, aligned_shape_note, check_face_search, face_search, main_face
    from fader_desktop.cli import FIND_MORE_HINT, PROG, build_values, check_output, hint_find_more_faces, load_engine, parse_sets
    src, dst = Path(args.image), Path(args.output)
    if not args.output.strip() or args.output.endswith(("/", os.sep)):
        raise FaderError(f"-o {args.output!r}: give an output file name (.png, .jpg, .webp, …)")
    try:
        is_folder = dst.is_dir()
    except OSError:   # a name too long to look at: check_save_path below says so in words
        is_folder = False
    if is_folder:
        # without this, the folder's missing suffix was reported as "unsupported file type '(none)'"
        example = shlex.quote(str(dst / f"{src.stem}_edited{export_suffix(src)}"))
        raise FaderError(f"{dst}: the output is an existing folder; give a file name (e.g. -o {example})")
    # the output's problems before the model loads and the faces are found (seconds)
    try:
        check_output(dst, [src], True, args.model)
    except OSError:   # as above
        check_save_path(dst)
        raise
    check_save_path(dst)
    if not 1 <= args.quality <= 100:
        raise FaderError(f"--quality must be between 1 and 100, got {args.quality}")
    check_face_search(args.aligned, args.find_more_faces)
    engine = load_engine(args)
    values = build_values(engine, args.recipe, args.set)
    owns = parse_sets(engine, args.own, "--own")
    # an existing output after the options: a rerun with a typo must name the typo, not the
    # output the first run wrote
    check_output(dst, [src], args.overwrite, args.model)
    # nothing to edit (no value, no reading to correct): a photo without a face is copied as one
    # with a face is, rather than refused
    copy_only = not values and not owns and not args.raw
    # the photo and its Source from one decode (the pixels keep the photo's colour space, so the
    # file says which: its ICC profile). Through the model run the Source holds what the export
    # writes and no more of the decode: a 16-bit photo's own values only for a PNG or TIFF output
    image, source = open_photo(src, exif=not args.raw, depth=not args.raw and keeps_depth(dst))
    with hint_find_more_faces(args):
        doc = PhotoEdit.open(image, engine, aligned=args.aligned, require_face=not copy_only,
                             detector=face_search(args.aligned, args.find_more_faces), path=src)
    if doc.fallback:
        sys.stderr.write(f"{PROG}: note: no face detected in {printable(src)}; edited as an aligned crop "
                         "(the image has the model's framing)\n")
    if args.aligned and (note := aligned_shape_note(doc.image, engine.model.alignment())):
        sys.stderr.write(f"{PROG}: note: {printable(src)}: {note}\n")
    if args.face is not None and args.face >= len(doc.faces) and not (args.find_more_faces or args.aligned):
        from core.edit_session import no_such_face
        raise FaderError(f"{printable(src)}: {no_such_face(args.face, len(doc.faces))}; {FIND_MORE_HINT}")
    for name, own in owns.items():
        doc.set_own(name, own, face=args.face)
    doc.set_values(values, face=args.face)
    if args.raw:
        raw_face = main_face(doc.faces) if args.face is None else args.face
        save_image(dst, doc.render_raw(raw_face), quality=args.quality, icc_profile=source.icc, gray=source.gray,
                   replace=args.overwrite)
        if args.face is None and len(doc.faces) > 1:
            # --raw writes one crop: without this, the other faces were left out silently
            sys.stderr.write(f"{PROG}: note: {printable(src)} has {len(doc.faces)} faces; --raw wrote face {raw_face} "
                             "(the main face: the first, unless another is at least twice its size); "
                             "--face N writes another\n")
        said = f"face {raw_face}'s crop at the model's {engine.image_size} px"
    else:
        # nothing to change: the input's own bytes (same format), else its exact pixels
        _copied, lost = export_photo(src, dst, doc.render() if doc.is_modified() else doc.image, source,
                                     quality=args.quality, unchanged=not doc.is_modified(),
                                     replace=args.overwrite)   # nor one that appeared since check_output
        if lost:
            sys.stderr.write(f"{PROG}: note: {printable(dst)}: " + "; ".join(lost) + "\n")
        asked = ", ".join(f"{n}={v:g}" if isinstance(v, (int, float)) else f"{n}={v}" for n, v in values.items())
        if values and doc.faces and not doc.is_modified():
            # every face already has the values asked for (as the model reads it): a silent copy
            # looked like an edit that failed
            which = f"face {args.face}" if args.face is not None else "every face"
            sys.stderr.write(f"{PROG}: note: nothing changed: {which} already has {asked} as the model reads it; "
                             + unchanged_wording(dst, _copied, source) + "\n")
        if not doc.faces:
            sys.stderr.write(f"{PROG}: note: no face found in {printable(src)}; "
                             + unchanged_wording(dst, _copied, source) + "\n")
        edited, n = len(doc.edited_faces()), len(doc.faces)
        said = ("unchanged" if not edited else ("edited the face" if n == 1 else f"edited {edited} of {n} faces")
                + (f": {asked}" if asked else ""))
    # an edit is measured from the face's reading: say (in one line) where that reading was a guess
    # (not for --raw: the model's output at the values given does not start from the reading)
    unsure = []
    written = [] if args.raw else [args.face] if args.face is not None else range(len(doc.faces))
    for i in written:
        for name, p in doc.session.unsure_readings(i, [n for n in values if n not in owns]).items():
            a, own = doc.session.attribute(name), float(doc.session.own[i][name])
            # quoted as one shell word: names and labels may hold spaces ("Mouth slightly open")
            fix = shlex.quote(f"{name}={label_text(a, int(round(min(1.0, max(0.0, 1 - own)))))}")
            unsure.append(f"face {i} {name} read as {pure_label(a, own)} ({sure_percent(p)} sure; else --own {fix}"
                          + (f" --face {i})" if len(doc.faces) > 1 and args.face is None else ")"))
    if unsure:
        sys.stderr.write(f"{PROG}: note: the edit starts from {'a reading' if len(unsure) == 1 else 'readings'} "
                         "the model was unsure of: "
                         + "; ".join(unsure[:3]) + (f"; and {len(unsure) - 3} more" if len(unsure) > 3 else "") + "\n")
    # a confirmation on stdout (the notes go to stderr): the command runs for seconds, and a
    # silent end read as nothing done
    print(f"{PROG}: wrote {printable(dst)} ({said})")
    return 0
