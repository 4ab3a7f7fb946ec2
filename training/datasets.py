"""Training data sources: labeled folders, CSV label tables and CelebA's attribute file.

`open_dataset` turns one or more `--data` paths into a `Dataset`: a list of `Item`s (image path,
one value index per attribute, CelebA split or -1), the `core.attributes.Attribute` list and a
description. `split_dataset` gives train/validation indices. `load_training_crop` reads one image
and returns the model-size crop the trainer sees (or None with a reason when it must be skipped).
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.attributes import Attribute, counted, did_you_mean, listed, quoted
from core.errors import FaderError, ModelFileError, os_reason
from core.image_io import DEFAULT_MAX_PIXELS

# Larger images are skipped ("over 210 megapixels"), as the app refuses them: a user's labeled folder of
# phone photos (108 and 200 MP) trains as it opens in the window.
MAX_TRAINING_PIXELS = DEFAULT_MAX_PIXELS
CELEBA_ATTR_FILE = "list_attr_celeba.txt"
CELEBA_PARTITION_FILE = "list_eval_partition.txt"
CELEBA_IMAGE_DIRS = ("img_align_celeba", "img_align_celeba_89x109")
# CelebA's aligned frame is 178x218; the reference code keeps rows 20..198 (a 178x178 square).
CELEBA_FRAME = (178, 218)
CELEBA_CROP = (0, 20, 178, 198)
# How far (h / w) an image's aspect may be from a framing's to be taken as framed so (framing_of)
FRAMING_TOLERANCE = 0.03
# Value folder names that mean "absent" go first, so alpha=0 is "no" and alpha=1 is "yes". Other
# languages' "no" too: a German ja/nein folder pair had "nein" as 1, so the slider's "yes" removed.
NEGATIVE_NAMES = {"no", "non", "not", "without", "false", "off", "0", "none", "negative", "absent", "-1", "n",
                  "nein", "nej", "nee", "niet", "ei", "não", "nao", "nie", "nei", "ne", "nope"}
NEGATIVE_WORDS = ("no", "not", "non", "without", "nicht", "kein", "keine", "ohne", "sans", "sin", "sem", "senza",
                  "zonder", "geen", "utan", "uten")
NEGATIVE_PREFIX = re.compile(r"(%s)[ _-]" % "|".join(NEGATIVE_WORDS), re.IGNORECASE)
# "NoBangs", "NotSmiling": a capital after the word (so "Normal", "Nose", "Notebook" are not)
NEGATIVE_CAMEL = re.compile(r"(No|Not|Non|Without|Nicht|Kein|Ohne)[A-ZÄÖÜ]")
POSITIVE_NAMES = {"yes", "true", "1", "y", "on", "with", "positive", "present", "ja", "oui", "si", "sí", "sim",
                  "jo", "ok", "yep"}
# Folders that file managers, NAS boxes and archivers make: never a value, never searched.
JUNK_FOLDERS = {"@eadir", "__macosx", "#recycle", "#snapshot", "$recycle.bin", "system volume information",
                "lost+found", "@recycle", "@tmp"}


def _junk_folder(name: str) -> bool:
    return name.startswith(".") or name.lower() in JUNK_FOLDERS


# load_training_crop's reason for an image that is neither a CelebA-framed nor a square crop (the
# command line counts it: a folder of whole photos given without --align is refused)
NOT_ALIGNED = "not aligned (use --align)"

# Recommended slider ranges for CelebA attributes, as the reference's interpolation used them.
CELEBA_RANGES = {"Young": (-4.0, 5.0), "Male": (-1.0, 2.0), "Eyeglasses": (-1.0, 2.0)}


@dataclass
class Item:
    """One training image: its path, a value index per attribute and its CelebA split (-1 if none)."""

    path: str
    labels: tuple
    split: int = -1


@dataclass
class Dataset:
    """Items plus their attributes; `framing` says how crops are made ('celeba' aligned or 'photo')."""

    kind: str
    roots: list
    attributes: list
    items: list
    description: str = ""
    notes: list = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.asarray([it.labels for it in self.items], dtype=np.int64).reshape(len(self.items), len(self.attributes))


def _err(msg: str):
    raise FaderError(msg)


def _is_image(p: Path) -> bool:
    from core.image_io import IMAGE_SUFFIXES  # the app's photos, HEIC included
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _list_images(folder: Path) -> list:
    """Image files under `folder`, recursively; symlinked folders are followed, each real folder
    once (a link to `folder`, to an ancestor of it or a second link to a folder adds nothing)."""
    out, seen, top = [], set(), os.path.realpath(folder)
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if dirpath != str(folder) and (real in seen or (top + os.sep).startswith(real.rstrip(os.sep) + os.sep)):
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not _junk_folder(d))
        for f in sorted(filenames):
            p = Path(dirpath) / f
            if _is_image(p):
                out.append(p)
    return out


def _squash(v: str) -> str:
    return re.sub(r"[ _-]", "", v).lower()


def _negative(values) -> list:
    """The values that mean "absent": a name in NEGATIVE_NAMES, one starting with a NEGATIVE_WORDS
    word and a space, '_' or '-' (`no glasses`, `without_glasses`), "No" + a capital (`NoBangs`), or
    a negative word run together with another of `values` (`noglasses` beside `glasses`)."""
    others = {_squash(v) for v in values}
    out = []
    for v in values:
        low = v.lower()
        joined = any(low.startswith(w) and low[len(w):] and _squash(v[len(w):]) in others - {_squash(v)}
                     for w in NEGATIVE_WORDS)
        if low in NEGATIVE_NAMES or NEGATIVE_PREFIX.match(v) or NEGATIVE_CAMEL.match(v) or joined:
            out.append(v)
    return out


def _positive(v: str) -> bool:
    return v.lower() in POSITIVE_NAMES


def _order_values(values: Sequence[str]) -> list:
    """Values sorted case-insensitively (numerically when all are numbers), with the one that means
    "absent" (`_negative`) first: value 0. Words that merely begin with those letters (`normal`,
    `nose`, `nonsmoker`) do not count; `none` does, as a name of its own."""
    try:
        return sorted(values, key=float)
    except ValueError:
        pass
    vals = sorted(values, key=lambda s: s.lower())
    neg = _negative(vals)
    if len(neg) == 1:
        vals.remove(neg[0])
        vals.insert(0, neg[0])
    return vals


def _polarity_note(name: str, values: Sequence[str], fix: str) -> Optional[str]:
    """A warning for a two-valued attribute none (or both) of whose values reads as "absent": which
    one was taken as 0 and which as 1, and `fix`, how to choose (None when the order is clear)."""
    if len(values) != 2 or len(_negative(values)) == 1 or (_positive(values[1]) and not _positive(values[0])):
        return None
    return (f"{name}: neither value reads as 'no', so {values[0]!r} is taken as 0 (the slider's left end) and "
            f"{values[1]!r} as 1 (alphabetical order); if that is the wrong way round, {fix}")


def parse_attr_spec(spec: Optional[str]) -> Optional[list]:
    """`A,B,C` -> ['A','B','C']; '*' or None -> None (all); raises FaderError on empty/duplicate names."""
    if spec is None or spec.strip() == "*":
        return None
    names = [s.strip() for s in spec.split(",")]
    if any(not n for n in names):
        _err(f"bad --attr {spec!r}: empty attribute name")
    if len(set(names)) != len(names):
        _err(f"bad --attr {spec!r}: duplicate attribute names")
    return names


# ----------------------------------------------------------------------------------------------
# labeled folders

def _open_folders(root: Path, wanted: Optional[list]) -> Dataset:
    """DATA/<value>/…images: one attribute named after DATA. DATA/<attr>/<value>/…images (no value
    folder holding an image itself, and one of them holding a "no"-like sub-folder, as
    Eyeglasses/{no,yes} or Glasses/{glasses,noglasses}) is refused with the hint to give one
    attribute folder per run; sub-folders such as DATA/yes/batch1 are still searched. Hidden and
    NAS/archiver folders (@eaDir, __MACOSX) are no values."""
    name = root.resolve().name
    subs = sorted([d for d in root.iterdir() if d.is_dir() and not _junk_folder(d.name)], key=lambda d: d.name)
    per_value = {d.name: _list_images(d) for d in subs}
    per_value = {k: v for k, v in per_value.items() if v}
    inner = {k: sorted({p.relative_to(root / k).parts[0] for p in v if p.parent != root / k}) for k, v in per_value.items()}
    direct = any(p.parent == root / k for k, v in per_value.items() for p in v)
    looks_like_attributes = [k for k, sub in inner.items() if _negative(sub)]
    if looks_like_attributes and not direct:
        first = looks_like_attributes[0]
        _err(f"{root}: {quoted(per_value)} {'holds' if len(per_value) == 1 else 'hold'} no images directly, only "
             "value-like sub-folders "
             f"({first}/{{{','.join(inner[first])}}}); a labeled folder is one attribute whose sub-folders are its "
             f"values, so give one attribute folder per run, e.g. --data {root / first} (several attributes at once "
             f"need a CSV table)")
    if wanted is not None and wanted != [name]:
        _err(f"{root}: a labeled folder defines one attribute named after the folder ({name!r}); --attr "
             f"{','.join(wanted)} does not match" + _did_you_mean([a for a in wanted if a != name], [name]))
    loose = [p for p in root.iterdir() if p.is_file() and _is_image(p)]
    if len(per_value) < 2:
        found = (f"found one: {quoted(per_value)}" if per_value else "found none") \
            + (f", and {counted(len(loose), 'image')} directly in it" if loose else "")
        meant = _attribute_folder_inside(root, per_value, inner, direct) or \
            _attribute_folder_above(root, bool(loose) and not per_value)
        _err(f"{root}: a labeled folder needs at least 2 value subfolders with images ({found}). " + (meant or
             f"Put the images in one subfolder per value of the attribute the folder is named after, e.g. "
             f"{root / 'yes'} and {root / 'no'}, or give the labels as a CSV table (file,{name}: one row per "
             f"image, values 0/1)"))
    folded = {}
    for v in per_value:   # as in a CSV table: on a case-insensitive disk these would be one folder
        if v.lower() in folded:
            _err(f"{root}: value folders {folded[v.lower()]!r} and {v!r} differ only in letter case and would be two "
                 "values; merge them into one folder")
        folded[v.lower()] = v
    twice = _one_image_in_two_values(root, per_value)
    values = _order_values(list(per_value))
    attr = Attribute(name, tuple(values))
    items = [Item(str(p), (vi,)) for vi, v in enumerate(values) for p in per_value[v]]
    counts = ", ".join(f"{v}: {len(per_value[v])}" for v in values)
    notes = [twice] if twice else []
    note = _polarity_note(name, values, f"rename the folders to no_{name} and yes_{name} (or no/yes), or give "
                                        f"the labels as a CSV table with 0/1")
    if note:
        notes.append(note)
    if loose:   # beside the value folders they have no label
        notes.append(f"{counted(len(loose), 'image')} directly in {root} (e.g. {loose[0].name}) are in no value folder and "
                     "are not used; move them into the folder of their value" if len(loose) > 1 else
                     f"1 image directly in {root} ({loose[0].name}) is in no value folder and is not used; move it "
                     "into the folder of its value")
    return Dataset("folders", [str(root)], [attr], items, f"labeled folders {root} ({counts})", notes)


def _value_like(name: str) -> bool:
    return bool(_negative([name])) or _positive(name)


def _attribute_folder_inside(root: Path, per_value: dict, inner: dict, direct: bool) -> Optional[str]:
    """The hint for DATA/<attr>/<value>/… given as the parent of one attribute folder
    (bad_one/Smiling/yes): its only sub-folder, not named like a value, holds no images itself,
    only sub-folders named like values (or two or more), so the user meant that folder. None
    otherwise (DATA/yes/{2019,2020} is one value folder of batches)."""
    if len(per_value) != 1 or direct:
        return None
    (k, subs), = inner.items()
    if _value_like(k) or not subs or not (len(subs) >= 2 or any(_value_like(v) for v in subs)):
        return None
    meant = root / k
    text = (f"{k!r} holds no images itself, only the sub-folder{'s' if len(subs) > 1 else ''} {quoted(subs)}: it "
            f"looks like an attribute folder, so did you mean {meant}? Give it as --data {meant}")
    if len(subs) > 1:
        return text
    other = "yes" if _negative(subs) else "no"
    return f"{text}, with a folder per value inside it, e.g. {meant / subs[0]} and {meant / other}"


def _attribute_folder_above(root: Path, has_images: bool) -> Optional[str]:
    """The hint for DATA/<attr>/<value> given as the labeled folder (Smiling/yes): it holds images
    directly and no folder of images (`has_images`), and its parent holds 2 or more folders of
    images (the value folders, `root` among them), so the user meant the parent. None otherwise
    (Smiling/yes/{2019,2020} given as Smiling is one value of batches: the hint is to add others)."""
    parent = root.resolve().parent
    if not has_images or parent == root.resolve():
        return None
    try:
        values = sorted(d.name for d in parent.iterdir() if d.is_dir() and not _junk_folder(d.name) and _has_image(d))
    except OSError:
        return None
    if len(values) < 2:
        return None
    above = root.parent if root.name not in ("", "..") else parent   # as given (relative stays relative)
    return (f"{root} holds the images of one value ({parent.name} has the value folders {quoted(values, most=6)}); "
            f"give its attribute folder: --data {shlex.quote(str(above))}")


def _has_image(folder: Path) -> bool:
    """Whether `folder` holds an image file, at any depth (the walk stops at the first)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not _junk_folder(d)]
        if any(_is_image(Path(dirpath) / f) for f in filenames):
            return True
    return False


def hash_file(f, algorithm: str = "sha1"):
    """The hashlib object of what is left of the open binary file `f`, read 1 MiB at a time: as
    hashlib.file_digest, which Python 3.10 lacks."""
    h = hashlib.new(algorithm)
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return h


def _digest(p, limit: Optional[int] = None) -> Optional[str]:
    """SHA-1 of the file ``p`` (of its first ``limit`` bytes); None where it cannot be read."""
    try:
        with open(p, "rb") as f:
            return (hashlib.sha1(f.read(limit)) if limit else hash_file(f)).hexdigest()
    except OSError:
        return None


def _one_image_in_two_values(root: Path, per_value: dict) -> Optional[str]:
    """The same file (a link) under two values would be trained with contradictory labels: an
    error, as a CSV table listing an image twice is. An identical copy under two values is
    returned as a warning (found by size first; only files of equal size are hashed)."""
    seen, by_size = {}, {}
    for v, paths in per_value.items():
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            # (device, inode): a symbolic or a hard link to one file
            other = seen.setdefault((st.st_dev, st.st_ino), (v, p))
            if other[0] != v:
                _err(f"{root}: {other[1]} ({other[0]}) and {p} ({v}) are the same file: it would be trained as "
                     f"both values; keep it in the folder of its one value")
            by_size.setdefault(st.st_size, []).append((v, p))
    copies = []
    for group in by_size.values():
        # uncompressed formats (BMP, PPM) of one size share a file size: hashing them all would read
        # the whole data set at every start, so such large groups are left unchecked
        if len({v for v, _ in group}) < 2 or len(group) > 1000:
            continue
        # the first 4 KB first: small JPEGs often share a size (2,448 of 5,371 CelebA crops split
        # in two folders), rarely their first bytes; only those read whole
        heads = {}
        for v, p in group:
            heads.setdefault(_digest(p, 4096), []).append((v, p))
        for key, same_head in heads.items():
            if key is None or len({v for v, _ in same_head}) < 2:
                continue
            digests = {}
            for v, p in same_head:
                d = _digest(p)
                if d is None:
                    continue
                other = digests.setdefault(d, (v, p))
                if other[0] != v:
                    copies.append((other, (v, p)))
    if not copies:
        return None
    (v1, p1), (v2, p2) = copies[0]
    if len(copies) == 1:
        return (f"1 image is an identical copy under two values: {p1} ({v1}) and {p2} ({v2}); it is trained as "
                "both; keep it in the folder of its one value")
    return (f"{len(copies)} images are identical copies under two values, e.g. {p1} ({v1}) and {p2} ({v2}): "
            "they are trained as both; keep each in the folder of its one value")


# ----------------------------------------------------------------------------------------------
# CSV label tables

def _column_attribute(name: str, raw: list, table: Path, lines: list) -> tuple:
    """(Attribute, value index per row) of one column; `lines` are the rows' line numbers. Empty
    cells, labels spelled in two letter cases and words among numbers are errors naming a line."""
    if "" in raw:
        _err(f"{table}: column {name!r} line {lines[raw.index('')]} is empty; every image needs a value")
    vals = sorted(set(raw))
    if len(vals) < 2:
        _err(f"{table}: column {name!r} has only one value ({vals[0] if vals else 'none'}); an attribute needs 2 or more")
    def is_number(v):
        try:
            float(v)
        except ValueError:
            return False
        return True
    numbers = [v for v in vals if is_number(v)]
    if numbers and len(numbers) < len(vals):
        # a typo in a 0/1 column would otherwise silently become a value of its own
        line, bad = next((n, v) for n, v in zip(lines, raw) if not is_number(v))
        shown = "/".join(sorted(numbers, key=float)[:4]) + ("/…" if len(numbers) > 4 else "")
        _err(f"{table}: column {name!r} line {line}: {bad!r} is not a number, but the column's other values "
             f"are ({shown}); use numbers or labels throughout")
    numeric = len(numbers) == len(vals)
    nums = sorted({float(v) for v in vals}) if numeric else []
    if numeric and nums in ([0.0, 1.0], [-1.0, 1.0]):
        index = {v: int(float(v) > 0) for v in vals}
        return Attribute(name, ("no", "yes")), [index[v] for v in raw]
    spelled = {}
    for v in vals:
        other = spelled.setdefault(v.lower(), v)
        if other != v:
            _err(f"{table}: column {name!r} has {other!r} (line {lines[raw.index(other)]}) and {v!r} "
                 f"(line {lines[raw.index(v)]}); labels differing only in letter case would be two values, use one spelling")
    labels = _order_values(vals)
    index = {v: i for i, v in enumerate(labels)}
    return Attribute(name, tuple(labels)), [index[v] for v in raw]


# A column with more values than this is taken only when --attr names it: extra columns of a table
# (a person's id, an age) became attributes of dozens of values, each value a few images.
MAX_UNCHOSEN_VALUES = 6


# The column that lists the images, by its name (letter case, spaces, '_' and '-' aside): image_id is
# the CelebA table's as Kaggle spreads it. A table naming none of these takes the first column whose
# first row names an image (else its first column: the error then says which column it read).
FILE_COLUMNS = ("file", "filename", "filepath", "image", "imagefile", "imagename", "imagepath", "imageid",
                "img", "path", "photo")
FILE_COLUMN_HINT = ("file", "filename", "image", "path")


def _names_image(table: Path, cell: str) -> bool:
    """Whether a table cell names an existing image file (relative to the table's folder)."""
    cell = cell.strip()
    if not cell:
        return False
    p = Path(cell) if Path(cell).is_absolute() else table.parent / cell
    try:
        return _is_image(p) and p.is_file()
    except (OSError, ValueError):   # a name too long, or with a NUL
        return False


def _column_letter(j: int) -> str:
    """A spreadsheet's name of the column j (0-based): A, B, …, Z, AA, AB, …"""
    out = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        out = chr(ord("A") + r) + out
    return out


def _named_columns(table: Path, header: list, rows: list, lines: list) -> tuple:
    """(header, rows) without the columns empty in the header and in every row (Excel writes a
    trailing empty column once a cell there was touched) and without empty cells past the header's
    end. A column with values but no name, a name given twice, or a row of another length is an
    error naming the column or the line."""
    body = rows[1:]
    keep = [j for j, h in enumerate(header) if h or any(j < len(r) and r[j].strip() for r in body)]
    for j in keep:
        if not header[j]:
            n, v = next((n, r[j].strip()) for n, r in zip(lines[1:], body) if j < len(r) and r[j].strip())
            _err(f"{table}: column {j + 1} ({_column_letter(j)}) has no name in the header line but holds values "
                 f"(line {n}: {v!r}); name it in the header line, or delete the column")
    seen = {}
    for j in keep:
        other = seen.setdefault(header[j], j)
        if other != j:
            _err(f"{table}: columns {other + 1} ({_column_letter(other)}) and {j + 1} ({_column_letter(j)}) are "
                 f"both named {header[j]!r}; give each column its own name")
    if len(keep) < 2:
        _err(f"{table}: the header line names {counted(len(keep), 'column')}"
             + (f" ({quoted(header[j] for j in keep)})" if keep else "") + "; a "
             "label table needs the images' column and at least one attribute: 'file,attr1,attr2,...'")
    out = [[header[j] for j in keep]]
    for n, r in zip(lines[1:], body):
        if any(c.strip() for c in r[len(header):]) or keep[-1] >= len(r):
            _err(f"{table}: line {n} has {len(r)} fields, the header has {len(header)}")
        out.append([r[j] for j in keep])
    return out[0], out


def _file_column(table: Path, header: list, body: list) -> int:
    """The index of the column listing the images: the one named file/filename/image/path (or a
    kin of them, FILE_COLUMNS); among several, the first whose first row names an existing image;
    with none so named, the first column whose first row does, else the first column."""
    named = [j for j, h in enumerate(header) if _squash(h) in FILE_COLUMNS]
    candidates = named or list(range(len(header)))
    first = body[0] if body else []
    return next((j for j in candidates if j < len(first) and _names_image(table, first[j])), candidates[0])


def _open_csv(table: Path, wanted: Optional[list], every_column: bool = False) -> Dataset:
    try:
        with open(table, "rb") as f:
            head = f.read(2)
        # Excel's "Unicode text" and some editors write UTF-16 with its byte-order mark
        encoding = "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
        with open(table, newline="", encoding=encoding) as f:
            reader = csv.reader(f)
            numbered = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
    except OSError as e:
        _err(f"{table}: cannot read label table ({os_reason(e)})")
    except UnicodeDecodeError as e:
        # Excel's plain "CSV" is the system's code page (Windows-1252 in Western Europe), not UTF-8
        _err(f"{table}: the label table is not UTF-8 text (byte {e.start + 1} is not UTF-8: {e.object[e.start:e.start + 1]!r}); "
             "save it as UTF-8 (Excel: File ▸ Save As ▸ 'CSV UTF-8'; LibreOffice: character set Unicode (UTF-8))")
    lines, rows = [n for n, _ in numbered], [r for _, r in numbered]
    if len(rows) < 2:
        _err(f"{table}: label table needs a header line (file,attr1,...) and at least one row")
    header = [h.strip() for h in rows[0]]
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        sep = "';'" if ";" in header[0] else "tabs"
        _err(f"{table}: the table must be comma-separated (its header line {header[0]!r} uses {sep})")
    listed_image = next((h for h in header if _names_image(table, h)), None)
    if listed_image is not None:
        expected = ",".join(["file"] + [f"attr{i}" for i in range(1, len(header))])
        _err(f"{table}: no header row (line {lines[0]} lists the image {listed_image!r}); "
             f"add a first line '{expected}' naming the attributes")
    header, rows = _named_columns(table, header, rows, lines)
    fc = _file_column(table, header, rows[1:])
    cols = header[:fc] + header[fc + 1:]
    chosen = wanted is not None or every_column
    wanted, _ = _columns(cols, wanted, f"{table}: unknown attribute", f" in --attr; the table has {quoted(cols)}")
    base = table.parent
    paths, absent, first_row = [], [], {}
    for i, r in zip(lines[1:], rows[1:]):
        p = Path(r[fc].strip())
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            absent.append(r[fc].strip())
        elif first_row.setdefault(os.path.realpath(p), i) != i:  # a second row would weigh it double
            _err(f"{table}: {r[fc].strip()!r} is listed twice (lines {first_row[os.path.realpath(p)]} and {i}); list each image once")
        paths.append(str(p))
    if absent:
        _err(f"{table}: {counted(len(absent), 'listed file')} not found next to the table"
             + (f": {absent[0]!r}" if len(absent) == 1 else f", e.g. {absent[0]!r}")
             + ("" if _squash(header[fc]) in FILE_COLUMNS else
                f" (no column is named {'/'.join(FILE_COLUMN_HINT)}, so column {fc + 1}, {header[fc]!r}, was taken "
                "as the images' column; name the column that lists the images 'file')"))
    if not chosen:
        many = {a: len({r[header.index(a)].strip() for r in rows[1:]}) for a in wanted}
        many = {a: n for a, n in many.items() if n > MAX_UNCHOSEN_VALUES}
        rest = [a for a in wanted if a not in many]
        if many and rest:   # a table of one such column alone is meant so
            _err(f"{table}: {'column' if len(many) == 1 else 'columns'} "
                 + listed(f"{a!r} ({n} values)" for a, n in many.items())
                 + f" {'looks' if len(many) == 1 else 'look'} like data, not labels (an attribute has a few values, such as 0/1); choose the label "
                 f"columns with --attr {','.join(rest)} (a column named in --attr is trained "
                 f"whatever its number of values)")
    attrs, per_attr, notes = [], [], []
    for a in wanted:
        j = header.index(a)
        attr, idx = _column_attribute(a, [r[j].strip() for r in rows[1:]], table, lines[1:])
        attrs.append(attr)
        per_attr.append(idx)
        note = _column_note(table, attr)
        if note:
            notes.append(note)
    items = [Item(p, tuple(int(per_attr[k][i]) for k in range(len(attrs)))) for i, p in enumerate(paths)]
    return Dataset("csv", [str(table)], attrs, items, f"label table {table} ({len(items)} images)", notes)


def _column_note(table: Path, attr: Attribute) -> Optional[str]:
    """A label table's note on a column whose values' order is a guess (`_polarity_note`), else None."""
    note = _polarity_note(attr.name, attr.values,
                          f"write the column as 0/1 (1 = has {attr.name}) or name its values no/yes")
    return f"{table}: column {note}" if note else None


def select_attributes(ds: Dataset, names: Sequence[str]) -> Dataset:
    """`ds` with the attributes `names` alone, in that order: the data as `open_dataset` opens them with
    those attributes (a table's notes of the others dropped), without opening them again."""
    cols = [[a.name for a in ds.attributes].index(n) for n in names]
    attrs = [ds.attributes[c] for c in cols]
    items = [Item(it.path, tuple(it.labels[c] for c in cols), it.split) for it in ds.items]
    # a table's notes are its columns' (the others' notes are of the data as a whole)
    notes = [n for a in attrs if (n := _column_note(Path(ds.roots[0]), a))] if ds.kind == "csv" else list(ds.notes)
    return Dataset(ds.kind, ds.roots, attrs, items, ds.description, notes)


# ----------------------------------------------------------------------------------------------
# CelebA

def _find_celeba_attr_file(path: Path) -> Optional[Path]:
    if path.is_file() and path.name == CELEBA_ATTR_FILE:
        return path
    for p in (path, *list(path.parents)[:2]):
        if (p / CELEBA_ATTR_FILE).is_file():
            return p / CELEBA_ATTR_FILE
    return None


def _celeba_image_dirs(path: Path, attr_file: Path) -> list:
    if path.is_dir() and path.name.startswith(CELEBA_IMAGE_DIRS[0]):
        return [path]
    base = attr_file.parent
    found = []
    for b in (base, base / "celeba"):
        for d in CELEBA_IMAGE_DIRS:
            if (b / d).is_dir():
                found.append(b / d)
    return found


class CelebaRows(Mapping):
    """{file name: its row's values, as strings} of list_attr_celeba.txt, a row split when it is
    read: the file has 202,599 rows and a run reads only those of the images it has."""

    __slots__ = ("_lines",)

    def __init__(self, lines: dict):
        self._lines = lines   # file name -> its whole line

    def __getitem__(self, name: str) -> list:
        return self._lines[name].split()[1:]

    def __contains__(self, name) -> bool:
        return name in self._lines

    def __iter__(self):
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


# Which characters up to the space str.split() separates fields at (tab, form feed, the file
# separators, ...): any of the others is part of a field, which the counting below cannot tell.
_SPLIT_SPACE = np.array([chr(i).isspace() for i in range(33)])


def _field_counts(text: str, start: int, n_lines: int) -> Optional[np.ndarray]:
    """The number of fields str.split() finds on each of the `n_lines` lines of `text[start:]`,
    counted in one pass of numpy; None for a text this count cannot read as str.split() does: not
    ASCII (str.split() separates at Unicode spaces too), or with a control character that is
    no space."""
    if not text.isascii():
        return None
    b = np.frombuffer(text.encode("ascii"), np.uint8)[start:]
    counts = np.zeros(n_lines, np.int64)
    if not len(b):
        return counts
    if not _SPLIT_SPACE[b[b < 32]].all():
        return None
    word = b > 32
    first = np.empty(len(b), np.uint8)   # a field's first character
    first[0] = word[0]
    np.greater(word[1:], word[:-1], out=first[1:].view(bool))
    ends = np.flatnonzero(b == 10)
    starts = np.concatenate(([0], ends + 1))
    starts = starts[starts < len(b)]   # a last, empty line after the final newline holds nothing
    counts[:len(starts)] = np.add.reduceat(first, starts, dtype=np.int32)
    return counts


def read_celeba_attributes(attr_file: Path) -> tuple:
    """(attribute names, CelebaRows: {file name: its values as strings}) from list_attr_celeba.txt.
    Every line is checked: the first whose field count is not the header's plus one is refused,
    naming its file. The counts are taken in one pass of numpy (splitting the file's 8 million
    fields took 1.3 s at each opening); a text they cannot be taken of, or with a malformed line,
    is checked line by line as before."""
    try:
        with open(attr_file, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        _err(f"{attr_file}: cannot read ({e.strerror or e})")
    except UnicodeDecodeError:   # a binary file or another encoding: a traceback before
        _err(f"{attr_file}: not a CelebA attribute file (it is not text)")
    lines = text.split("\n")   # as the file's lines read (universal newlines: a \r\n is a \n here)
    first, header, body = lines[0], (lines[1] if len(lines) > 1 else ""), lines[2:]
    del lines
    names = header.split()
    counts = _field_counts(text, len(first) + len(header) + 2, len(body)) if body else None
    rows = {}
    if counts is not None and not ((counts != 0) & (counts != len(names) + 1)).any():
        rows = {line.split(None, 1)[0]: line for line, k in zip(body, counts.tolist()) if k}
    else:   # line by line: the first malformed line is the one named
        for line in body:
            parts = line.split()
            if not parts:
                continue
            if len(parts) != len(names) + 1:
                _err(f"{attr_file}: malformed line for {parts[0]!r} ({len(parts) - 1} values, {len(names)} attributes)")
            rows[parts[0]] = line
    if not first.strip().isdigit() or not names:
        _err(f"{attr_file}: not a CelebA attribute file (expected a count line and a header of names)")
    return names, CelebaRows(rows)


def _did_you_mean(unknown: Sequence[str], names: Sequence[str]) -> str:
    """The message's ending "; did you mean 'Smiling'?", naming the closest of `names` to each of
    `unknown` (letter case aside); "" when none is close."""
    import difflib
    lower = {n.lower(): n for n in names}  # case-insensitive: 'smiling' suggests 'Smiling'
    close = [lower[m] for a in unknown for m in difflib.get_close_matches(a.lower(), list(lower), 1, 0.7)]
    return f"; did you mean {', '.join(map(repr, dict.fromkeys(close)))}?" if close else ""


def _columns(names: list, wanted: Optional[list], unknown_msg: str, hint: str = "") -> tuple:
    """(wanted attribute names, their columns among `names`); all of them when `wanted` is None.
    An unknown name is refused as "`unknown_msg` 'smiling' (did you mean 'Smiling'?)`hint`", the
    message's "attribute" made "attributes" for several."""
    if wanted is None:
        wanted = names
    unknown = [a for a in wanted if a not in names]
    if unknown:
        msg = unknown_msg.replace("attribute", "attributes") if len(unknown) > 1 else unknown_msg
        _err(f"{msg} {listed(f'{a!r}{did_you_mean(a, names)}' for a in unknown)}{hint}")
    return wanted, [names.index(a) for a in wanted]


def _open_celeba(paths: list, wanted: Optional[list]) -> Dataset:
    attr_file = _find_celeba_attr_file(paths[0])
    names, table = read_celeba_attributes(attr_file)
    wanted, cols = _columns(names, wanted, f"{attr_file}: unknown CelebA attribute")
    partition = {}
    pfile = attr_file.parent / CELEBA_PARTITION_FILE
    if pfile.is_file():
        with open(pfile) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    partition[parts[0]] = int(parts[1])
    dirs = []
    for p in paths:
        for d in _celeba_image_dirs(p, attr_file):
            if d not in dirs:
                dirs.append(d)
    if not dirs:
        _err(f"{paths[0]}: no CelebA image folder ({' or '.join(CELEBA_IMAGE_DIRS)}) found")
    # The same id may exist in several folders: keep the largest version (listed first here).
    dirs.sort(key=lambda d: (d.name != "img_align_celeba", str(d)))
    chosen = {}
    for d in dirs:
        for entry in sorted(os.listdir(d)):
            if entry in table and entry not in chosen:
                chosen[entry] = d / entry
    if not chosen:
        _err(f"{dirs[0]}: none of the images listed in {attr_file.name} exist here")
    attrs = [Attribute(a, ("no", "yes"), CELEBA_RANGES.get(a, (-1.0, 2.0))) for a in wanted]
    items = []
    for fname in sorted(chosen):
        row = table[fname]
        items.append(Item(str(chosen[fname]), tuple(int(row[c] == "1") for c in cols), partition.get(fname, -1)))
    items = [it for it in items if it.split != 2]  # never train or select on the official test split
    desc = f"CelebA {attr_file} with {', '.join(str(d) for d in dirs)} ({len(items)} of {len(table)} listed images present)"
    return Dataset("celeba", [str(attr_file)] + [str(d) for d in dirs], attrs, items, desc)


# ----------------------------------------------------------------------------------------------

def _open_pack(path: Path, wanted: Optional[list]) -> Dataset:
    from .packfile import MEMBER_SEP, open_pack
    pack = open_pack(path)
    names = [a.name for a in pack.attributes]
    wanted, cols = _columns(names, wanted, f"{path}: the pack has no attribute", f" (it has {quoted(names)})")
    items = [Item(f"{path}{MEMBER_SEP}{n}", tuple(int(v) for v in pack.labels[i, cols]), int(pack.splits[i]))
             for i, n in enumerate(pack.names)]
    desc = f"pack {path} ({len(items)} crops at {pack.size} px; {pack.description})"
    return Dataset("packed", [str(path)], [pack.attributes[c] for c in cols], items, desc)


def _kind(path: Path) -> str:
    if not path.exists():
        _err(f"{path}: no such file or folder")
    if not path.is_file() and not path.is_dir():   # a fifo or a device
        _err(f"{path}: not a regular file or folder")
    if path.is_file():
        if path.name == CELEBA_ATTR_FILE:
            return "celeba"
        if path.suffix.lower() == ".fpack":
            return "packed"
        if path.suffix.lower() == ".csv":
            return "csv"
        _err(f"{path}: not a data source (give a labeled folder, a .csv label table or {CELEBA_ATTR_FILE})")
    if path.name.startswith(CELEBA_IMAGE_DIRS[0]) or (path / CELEBA_ATTR_FILE).is_file():
        if _find_celeba_attr_file(path):
            return "celeba"
    csvs = sorted(path.glob("*.csv"))
    if len(csvs) == 1 and not _names_images(csvs[0]) and _value_folders_with_images(path):
        return "folders"   # a notes.csv beside the value folders: no label table
    if len(csvs) == 1:
        return "csv"
    if len(csvs) > 1:
        _err(f"{path}: several .csv tables here ({', '.join(c.name for c in csvs)}); give one with --data")
    return "folders"


def _value_folders_with_images(path: Path) -> bool:
    """Whether `path` has at least two sub-folders with an image in them (a labeled folder)."""
    subs = [d for d in path.iterdir() if d.is_dir() and not _junk_folder(d.name)]
    return sum(1 for d in subs if next(iter(_list_images(d)), None) is not None) >= 2


def _names_images(table: Path) -> bool:
    """Whether a .csv names an existing image file in any column (a label table, not notes)."""
    try:
        with open(table, newline="", encoding="utf-8-sig", errors="replace") as f:
            for i, row in enumerate(csv.reader(f)):
                if i > 1000:
                    break
                if any(_names_image(table, cell) for cell in row):
                    return True
    except (OSError, csv.Error):
        return True   # the table's own reader says what is wrong with it
    return False


def _data_paths(data: Sequence) -> list:
    # Absolute paths: the cache key and the run's file lists must not depend on the working folder.
    return [Path(os.path.abspath(Path(p).expanduser())) for p in ([data] if isinstance(data, (str, os.PathLike)) else data)]


def _sources(data: Sequence, attr_spec: Optional[str]) -> tuple:
    """(absolute paths, wanted attribute names or None, their kind) of `--data` and `--attr`."""
    paths = _data_paths(data)
    if not paths:
        _err("no --data given")
    wanted = parse_attr_spec(attr_spec)
    kinds = {_kind(p) for p in paths}
    if len(kinds) > 1:
        _err(f"--data mixes different kinds of sources ({', '.join(sorted(kinds))})")
    return paths, wanted, kinds.pop()


def open_dataset(data: Sequence, attr_spec: Optional[str] = None, every_column: bool = False,
                 model_limits: bool = True) -> Dataset:
    """Open one or more `--data` paths of the same kind; raises FaderError with a one-line message.
    ``every_column``: a label table's columns of many values are taken too (a resumed or continued
    run then keeps the model's own attributes of them), not refused as data. ``model_limits=False``
    leaves out check_model_limits, which loads torch (fader-train opens the data before it and
    checks the limits where it did)."""
    paths, wanted, kind = _sources(data, attr_spec)
    if kind == "celeba":
        ds = _open_celeba(paths, wanted)
    elif kind == "packed":
        if len(paths) > 1:
            _err(f"--data: one pack at a time (got {len(paths)})")
        ds = _open_pack(paths[0], wanted)
    else:
        if len(paths) > 1:
            what = {"folders": "labeled folders", "csv": "label tables"}.get(kind, f"{kind} sources")
            _err(f"--data: only CelebA image folders can be combined (got {len(paths)} {what}); for several "
                 "attributes, give one label table (CSV: file,Attr1,Attr2,…)")
        p = paths[0]
        ds = (_open_csv(p if p.is_file() else sorted(p.glob("*.csv"))[0], wanted, every_column) if kind == "csv"
              else _open_folders(p, wanted))
    if not ds.items:
        _err(f"{paths[0]}: no images found")
    if model_limits:
        check_model_limits(ds, data)
    return ds


def check_model_limits(ds: Dataset, data: Sequence) -> None:
    """FaderError unless the attributes of `ds` (opened from `data`) are within what a model file
    holds: found now, not when the trained model is refused by every loader."""
    from core.model_file import MAX_ATTRIBUTES, MAX_LABEL_CHARS, MAX_VALUES, check_attributes  # loads torch
    try:
        check_attributes(ds.attributes, _data_paths(data)[0])
    except ModelFileError as e:
        _err(f"{e} (a model file holds at most {MAX_ATTRIBUTES} attributes of {MAX_VALUES} values, "
             f"labels of {MAX_LABEL_CHARS} characters)")


def check_sources(data: Sequence, attr_spec: Optional[str] = None) -> None:
    """What open_dataset checks of the `--data` paths and the `--attr` list before it reads any
    data: each path exists and is a data source, all of one kind; the list's form."""
    _sources(data, attr_spec)


def exclude_images(ds: Dataset, sources: Sequence) -> tuple:
    """(dataset without the excluded images, how many were dropped). Each source is a folder (the
    names of the images in it) or a text file (one name or path per line); an image is excluded
    when its `split_key` or its file name is listed, e.g. a held-out photo set that shares ids."""
    names = set()
    for src in sources:
        p = Path(src).expanduser()
        if p.is_dir():
            names.update(e.name for e in _list_images(p))
        elif p.is_file():
            try:
                text = p.read_text(errors="replace")
            except OSError as e:
                _err(f"{p}: cannot read the exclusion list ({e.strerror or e})")
            names.update(line.strip() for line in text.splitlines() if line.strip())
        else:
            what = "not a regular file or folder" if p.exists() else "no such file or folder"
            _err(f"{p}: --exclude needs a folder of images or a text file of names; {what}")
    keep = [it for it in ds.items if split_key(ds, it.path) not in names and Path(it.path).name not in names]
    dropped = len(ds.items) - len(keep)
    if not keep:
        _err("--exclude leaves no images to train on")
    return Dataset(ds.kind, ds.roots, ds.attributes, keep, ds.description, list(ds.notes)), dropped


def split_key(ds: Dataset, path: str) -> str:
    """What names an image for the validation split: its path inside the data (labeled folders:
    relative to DATA; tables: relative to the table's folder; CelebA: the file name, its id), so that
    moving, copying or re-mounting the data keeps the same split."""
    p = Path(path)
    if ds.kind == "celeba":
        return p.name
    if ds.kind == "packed":
        from .packfile import split_member
        return split_member(path)[1]
    base = Path(ds.roots[0]) if ds.kind == "folders" else Path(ds.roots[0]).parent
    try:
        return p.relative_to(base).as_posix()
    except ValueError:  # a table row naming an image outside the table's folder
        return p.name


# How a user's data (labeled folders, CSV tables) is split, recorded in each run (training.split_rule)
# so that a resumed run keeps its own rule. SPLIT_BY_HASH: one hold-out of all images by hash, the
# rule of runs started before SPLIT_BY_VALUE (it left a value of 20 out of 40 images without any).
# CelebA's official partition and packs take neither.
SPLIT_BY_HASH = "hash"
SPLIT_BY_VALUE = "by value"
# Under SPLIT_BY_VALUE a value without a share of the hold-out is given one validation image where it
# has at least this many (so it keeps 2 to train on), while these extra images take the hold-out at
# most _extra_allowed(N) over N: a minimum of one for every value of 2 images held out 30 of 60
# images (30 values of 2), 10 of 30 where N was 3 (10 values of 3).
GUARANTEE_MIN_IMAGES = 3


def _extra_allowed(k: int) -> int:
    return max(2, k // 4)


def user_data(ds: Dataset) -> bool:
    """Whether `ds` is a user's labeled folders or CSV table: the data SPLIT_BY_VALUE applies to,
    every image of which trains or validates (CelebA's files and packs keep their own split and
    hold images of other splits)."""
    return ds.kind in ("folders", "csv")


def recorded_split_rule(training: Optional[dict]) -> str:
    """The split rule a run's metadata (`training`) records; none: SPLIT_BY_HASH, the rule of the
    runs started before it was recorded."""
    rule = (training or {}).get("split_rule")
    return rule if rule in (SPLIT_BY_HASH, SPLIT_BY_VALUE) else SPLIT_BY_HASH


@dataclass(frozen=True)
class SplitParams:
    """What draws a run's split again: its rule, its seed (fader-train's --seed, which a --continue
    run's recipe seed is not) and --val-size as given (None: the default share)."""
    rule: str
    seed: int
    val_size: Optional[int]

    def record(self) -> dict:
        """The entries of a run's metadata `training` that `recorded_split_params` reads back."""
        return {"split_rule": self.rule, "split_seed": int(self.seed), "val_size": self.val_size}


def recorded_split_params(training: Optional[dict]) -> Optional[SplitParams]:
    """The split parameters a run's metadata (`training`) records; None for a run that records
    no split seed (one started before they were recorded)."""
    tr = training or {}
    seed, size = tr.get("split_seed"), tr.get("val_size")

    def whole(x) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)
    if not whole(seed) or "val_size" not in tr or not (size is None or (whole(size) and size > 0)):
        return None
    return SplitParams(recorded_split_rule(tr), seed, size)


def used_description(ds: Dataset, used) -> str:
    """The data as a model records it (its training.data): `ds.description` with the counts of the
    images `used` (trained on or validated on), not of every file found: an unreadable image, one
    without a face, or one --exclude left out is in neither. Labeled folders count each value's;
    a CSV table its images; CelebA and packs say how many of theirs were used."""
    used = np.asarray(used, dtype=np.int64)
    if ds.kind == "folders":
        x = ds.attributes[0]
        per = np.bincount(ds.labels[used, 0], minlength=x.n) if len(used) else np.zeros(x.n, np.int64)
        return f"labeled folders {ds.roots[0]} ({', '.join(f'{v}: {int(c)}' for v, c in zip(x.values, per))})"
    if ds.kind == "csv":
        return f"label table {ds.roots[0]} ({counted(len(used), 'image')})"
    if len(used) == len(ds.items):
        return ds.description
    return f"{ds.description}; {counted(len(used), 'image')} used"


def split_description(ds: Dataset, val_idx, rule: str) -> str:
    """What a split's validation images are, in words (a model's training.validation, the
    evaluation's "split")."""
    if len(val_idx) and {ds.items[i].split for i in val_idx} == {1}:
        return "CelebA split 1 (validation) images"
    if rule == SPLIT_BY_VALUE and user_data(ds):
        return "deterministic hold-out of each value's share of the usable images (hash of the paths inside the data)"
    return "deterministic hold-out (hash of the paths inside the data)"


def check_val_size(ds: Dataset, val_size: Optional[int], usable: Optional[np.ndarray] = None) -> None:
    """Refuse a --val-size that leaves too few images to train on under SPLIT_BY_VALUE: at least 2
    (the hold-out by hash refused '1 train' too) and one of each value of each attribute (the split
    keeps those, so that it held out 38 of 40 images for --val-size 100 and trained on 2).
    `usable`: a mask of the images preprocessing did not skip (None: all)."""
    if val_size is None or not user_data(ds):
        return
    idx = np.flatnonzero(usable) if usable is not None else np.arange(len(ds.items))
    labels = ds.labels[idx]   # a property that builds the whole array: once, not per attribute
    present = [(int((np.bincount(labels[:, j], minlength=x.n) > 0).sum()), x.name)
               for j, x in enumerate(ds.attributes)]
    n_values, name = max(present, default=(0, ""))
    need = max(2, n_values)
    if len(idx) - val_size >= need:
        return
    most = len(idx) - need
    _err(f"{ds.roots[0]}: --val-size {val_size} leaves too few images to train on: of the "
         f"{counted(len(idx), 'usable image' if usable is not None else 'image')} at least {need} must train"
         + (f" (one of each value of {name})" if n_values == need else "")
         + (f"; give --val-size {most} or less" if most >= 1 else "; add images"))


def split_dataset(ds: Dataset, val_size: Optional[int] = None, seed: int = 0, usable: Optional[np.ndarray] = None,
                  rule: str = SPLIT_BY_VALUE) -> tuple:
    """(train indices, val indices). CelebA: split 0 trains and split 1 validates when present;
    otherwise a deterministic hold-out (by a hash of `split_key`, so adding images elsewhere or
    moving the data does not reshuffle it) of `val_size` images (default 10%, at most 500).
    Labeled folders and CSV tables under SPLIT_BY_VALUE: the hold-out is drawn value by value
    (_hold_out_by_value), among the `usable` images (a mask; the others are in neither part; give
    it wherever images can be skipped, or a rare value's validation image may be a skipped one);
    an error where no image can be held out without a value losing its only training image."""
    n = len(ds.items)
    splits = _official_splits(ds)
    if splits is not None:
        train = np.flatnonzero(splits == 0)
        val = np.flatnonzero(splits == 1)
        if val_size is not None and val_size < len(val):
            val = np.sort(_hash_order(ds, val, seed)[:val_size])
        return train, val
    by_value = rule == SPLIT_BY_VALUE and user_data(ds)
    idx = np.flatnonzero(usable) if by_value and usable is not None else np.arange(n)
    if len(idx) < 2:
        if usable is not None and by_value:
            return idx, idx[:0]   # the caller names the skipped images with its "too few usable images"
        _err(f"{ds.roots[0]}: need at least 2 images to hold one out for validation (have {n})")
    k = val_size if val_size is not None else min(500, max(1, len(idx) // 10))
    k = max(1, min(k, len(idx) - 1))
    order = _hash_order(ds, idx, seed)
    if not by_value:
        return np.sort(order[k:]), np.sort(order[:k])
    labels = ds.labels
    chosen = _hold_out_by_value(labels, [x.n for x in ds.attributes], order, k)
    if not len(chosen):
        _err(_nothing_to_hold_out(ds, idx, usable is not None))
    val = np.sort(order[chosen])
    return np.setdiff1d(idx, val), val


def _nothing_to_hold_out(ds: Dataset, idx: np.ndarray, usable: bool) -> str:
    """Why no image of `idx` can be held out: each is the only image of one of its values."""
    what = "usable image" if usable else "image"
    parts, labels = [], ds.labels[idx]   # built once (a property), not per attribute
    for j, x in enumerate(ds.attributes):
        c = np.bincount(labels[:, j], minlength=x.n)
        ones, present = int((c == 1).sum()), int((c > 0).sum())
        if ones:
            parts.append(f"each of the {present} values of {x.name} has a single {what}" if ones == present
                         else f"{ones} of the {present} values of {x.name} have a single {what}")
    return (f"{ds.roots[0]}: no image can be held out for validation without taking the only training image of a "
            f"value ({'; '.join(parts)}); add more images of those values")


def _hold_out_by_value(labels: np.ndarray, n_values: Sequence[int], order: np.ndarray, k: int) -> np.ndarray:
    """Positions in `order` (image indices in hash order) of about `k` validation images such that
    each value of each attribute has validation images in proportion to its count (largest
    remainders), one where it has none by that and GUARANTEE_MIN_IMAGES or more (within
    _extra_allowed(k) over `k`), and keeps at least one training image: a value of 20 in 40 images
    gets 2 of 4. Several attributes (a CSV table) are met together as far as the images allow:
    images are taken in hash order where all their values still want validation images, then a
    value still short (rarest first) takes its next images, then any up to `k`."""
    lab = labels[order]
    m = lab.shape[1]
    counts = [np.bincount(lab[:, j], minlength=n_values[j]) for j in range(m)]
    # ties between values go to the one whose first image comes first in hash order (not the first name)
    first = [np.asarray([int(np.argmax(lab[:, j] == v)) if c[v] else len(order) for v in range(len(c))])
             for j, c in enumerate(counts)]
    quota = [_apportion(k, c, f) for c, f in zip(counts, first)]
    room = [np.maximum(c - 1, 0) for c in counts]   # each value keeps a training image
    taken = [np.zeros_like(c) for c in counts]
    chosen = np.zeros(len(order), bool)
    total = 0

    def fits(i, limit) -> bool:
        return all(taken[j][lab[i, j]] < limit[j][lab[i, j]] for j in range(m))

    def take(i) -> None:
        nonlocal total
        chosen[i] = True
        total += 1
        for j in range(m):
            taken[j][lab[i, j]] += 1
    wanted = sum(int(q.sum()) for q in quota)
    for i in range(len(order)):
        if fits(i, quota):
            take(i)
            if m == 1 and total == wanted:
                break   # one attribute: every quota is met
    # several attributes: an image's other values may be full already; a value still short takes its
    # own next images (the rarest values first), where each of their values keeps a training image
    short = sorted(((int(counts[j][v]), j, v) for j in range(m) for v in range(len(counts[j]))
                    if taken[j][v] < quota[j][v]))
    for _, j, v in short:
        for i in np.flatnonzero((lab[:, j] == v) & ~chosen):
            if taken[j][v] >= quota[j][v]:
                break
            if fits(i, room):
                take(i)
    for i in range(len(order)):
        if total >= k:
            break
        if not chosen[i] and fits(i, room):
            take(i)
    return np.flatnonzero(chosen)


def _apportion(k: int, counts: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Validation images per value: `k` shared in proportion to `counts` by largest remainders (a
    tie to the smaller `first`), at most all but one of a value's images; then, rarest value first,
    one for a value left without any that has GUARANTEE_MIN_IMAGES or more, the values furthest
    over their share giving one back where they can, while the total stays within
    _extra_allowed(k) over `k`."""
    n = int(counts.sum())
    share = k * counts / max(n, 1)
    q = np.floor(share).astype(np.int64)
    for v in np.lexsort((first, -(share - q)))[:k - int(q.sum())]:
        q[v] += 1
    q = np.minimum(q, np.maximum(counts - 1, 0))
    limit = k + _extra_allowed(k)
    for v in np.lexsort((first, counts)):
        if counts[v] < GUARANTEE_MIN_IMAGES or q[v]:
            continue
        q[v] = 1
        if q.sum() > k and (q > 1).any():
            over = np.where(q > 1, q - share, -np.inf)
            q[int(np.argmax(over))] -= 1
        if q.sum() > limit:   # the rest would add as much: the hold-out stays near k
            q[v] = 0
            break
    return q


def recorded_split(ds: Dataset, recorded: Sequence[str]) -> Optional[tuple]:
    """(train, val) indices with `recorded` (a run's val_files.txt: paths as that run saw them,
    wherever the data lay then) as the validation images, for a resumed run to keep its own
    validation set; None if none of them is in the data."""
    suffixes = set()
    for line in recorded:
        parts = Path(line.strip()).as_posix().split("/") if line.strip() else []
        suffixes.update("/".join(parts[i:]) for i in range(len(parts)))
    in_val = np.asarray([split_key(ds, it.path) in suffixes for it in ds.items], dtype=bool)
    if not in_val.any():
        return None
    splits = _official_splits(ds)
    trainable = splits == 0 if splits is not None else np.ones(len(ds.items), bool)
    return np.flatnonzero(trainable & ~in_val), np.flatnonzero(in_val)


def _official_splits(ds: Dataset) -> Optional[np.ndarray]:
    """Each item's CelebA split when the data has both a training (0) and a validation (1) part,
    which then decide the split; else None."""
    splits = np.asarray([it.split for it in ds.items])
    return splits if (splits == 1).any() and (splits == 0).any() else None


def listed_keys(ds: Dataset, lines: Sequence[str], known: Optional[set] = None) -> list:
    """Each line of an image list as the data's image key (`split_key`): a key as it is, a path (a
    run's val_files.txt or train_files.txt, written where the data lay then) as its longest ending
    that names an image of the data; a line that names none, stripped. `known`: the data's keys,
    where the caller has them."""
    keys = known if known is not None else {split_key(ds, it.path) for it in ds.items}
    out = []
    for name in lines:
        name = name.strip()
        parts = Path(name).as_posix().split("/") if name and name not in keys else []
        out.append(next(("/".join(parts[i:]) for i in range(len(parts)) if "/".join(parts[i:]) in keys), name))
    return out


def listed_indices(ds: Dataset, lines: Sequence[str], what: str) -> np.ndarray:
    """Indices of the images an image list names (`what`: e.g. a model card's validation ids, a run's
    val_files.txt), each line read by `listed_keys`. Every listed image must be in the data: one that
    is not is an error with an example and the forms a line takes (a list of bare file names was
    told only '4 of its 4 images are not in the data')."""
    keys = [split_key(ds, it.path) for it in ds.items]
    known = set(keys)
    named = [(n.strip(), k) for n, k in zip(lines, listed_keys(ds, lines, known)) if n.strip()]
    wanted = {k for _, k in named}
    missing = [(n, k) for n, k in named if k not in known]
    if missing:
        example = keys[0]
        if ds.kind == "celeba":
            forms = f"by its file name (e.g. {example})"
        elif ds.kind == "packed":
            forms = f"by its name in the pack (e.g. {example})"
        else:
            base = ds.roots[0] if ds.kind == "folders" else str(Path(ds.roots[0]).parent)
            forms = (f"by its path relative to {base} (e.g. {example}) or by its full path, as a run's "
                     f"val_files.txt lists it (e.g. {ds.items[0].path})")
        _err(f"{what}: {len({k for _, k in missing})} of its {len(wanted)} images are not in the data "
             f"(e.g. {missing[0][0]}); name each image {forms}")
    return np.asarray([i for i, k in enumerate(keys) if k in wanted], dtype=np.int64)


def _hash_order(ds: Dataset, idx: np.ndarray, seed: int) -> np.ndarray:
    # surrogateescape: a file name that is not UTF-8 hashes as its own bytes (UTF-8 ones as before)
    keys = [hashlib.sha1(f"{seed}:{split_key(ds, ds.items[i].path)}".encode("utf-8", "surrogateescape")).hexdigest()
            for i in idx]
    return np.asarray(idx)[np.argsort(keys, kind="stable")]


# ----------------------------------------------------------------------------------------------
# crops

def read_file_bytes(path: str) -> np.ndarray:
    """The bytes of an image file (uint8), empty for what is not a readable regular file (the app's
    loader then says why)."""
    try:
        # a pipe would block the read for ever: the app's loader refuses it (not a regular file)
        return np.fromfile(path, dtype=np.uint8) if stat.S_ISREG(os.stat(path).st_mode) else np.zeros(0, np.uint8)
    except OSError:
        return np.zeros(0, np.uint8)


def read_rgb(path: str, data: Optional[np.ndarray] = None) -> tuple:
    """(uint8 RGB image or None, skip reason or None) for an image file, as the app reads photos:
    EXIF orientation applied, grey and 16-bit images as 8-bit RGB, transparency over white.
    OpenCV decodes (it releases the GIL, so the cache's threads decode in parallel); images with
    an alpha channel, and those OpenCV cannot decode, go through the app's own loader
    (core.image_io), whose compositing OpenCV lacks and whose error says why a file is unreadable
    (empty, truncated, not an image). Images over MAX_TRAINING_PIXELS are refused from their
    header, before any decoding. `data`: the file's bytes, when already read (read_file_bytes)."""
    import cv2
    if data is None:
        data = read_file_bytes(path)
    pixels, alpha = _header(data) if data.size else (None, False)
    if pixels is not None and pixels > MAX_TRAINING_PIXELS:
        return None, f"over {MAX_TRAINING_PIXELS // 10 ** 6} megapixels"
    bgr = cv2.imdecode(data, _decode_flag(pixels)) if data.size and not alpha else None
    if bgr is not None and bgr.ndim == 3:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    else:
        rgb, reason = _app_loader(path)
        if rgb is None:
            return None, reason
    if min(rgb.shape[:2]) < 8:
        return None, "too small (under 8 pixels across)"   # one reason for all: the counts add up
    return rgb, None


# A big photo is decoded reduced (JPEG at 1/2, 1/4, 1/8 scale as it decodes, others resized): training
# crops are at most 256 px, and each preprocessing thread decoding a 200 MP photo whole held 1.2 GB.
# Never below this many pixels, so that --align's face search sees the face as in the photo.
DECODE_PIXELS = 12_000_000


def _decode_flag(pixels) -> int:
    """cv2.imdecode's flag for an image of `pixels` (None: unknown): the strongest reduction that
    keeps DECODE_PIXELS."""
    import cv2
    for k, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if pixels is not None and pixels / (k * k) >= DECODE_PIXELS:
            return flag
    return cv2.IMREAD_COLOR


def _app_loader(path: str) -> tuple:
    """(RGB image or None, reason or None) from core.image_io.load_image; the reason is its
    ImageError's text without the path, which skipped.txt lists beside it."""
    from core.errors import ImageError, without_path
    from core.image_io import load_image
    try:
        return load_image(path, max_pixels=MAX_TRAINING_PIXELS), None
    except ImageError as e:
        return None, without_path(str(e), Path(path)) or "unreadable"


def _header(data: np.ndarray) -> tuple:
    """(width x height, has transparency) from the file header (Pillow reads only the header
    here); (None, False) where Pillow cannot tell, and OpenCV decides."""
    import io
    import warnings
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data.tobytes())) as im:
                w, h = im.size
                alpha = im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info
    except Image.DecompressionBombError:
        return 2 ** 62, False
    except Exception:
        return None, False
    return w * h, alpha


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2
    interp = cv2.INTER_AREA if img.shape[0] >= size else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


def celeba_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """The reference crop of a CelebA-framed image (any resolution): the central rows 20..198 of
    178x218, scaled to the image, resized to `size`."""
    h, w = rgb.shape[:2]
    sx, sy = w / CELEBA_FRAME[0], h / CELEBA_FRAME[1]
    x0, y0, x1, y1 = (int(round(CELEBA_CROP[0] * sx)), int(round(CELEBA_CROP[1] * sy)),
                      int(round(CELEBA_CROP[2] * sx)), int(round(CELEBA_CROP[3] * sy)))
    return _resize(np.ascontiguousarray(rgb[y0:y1, x0:x1]), size)


def _alignment_module():
    try:
        from core import alignment
    except ImportError:
        return None
    return alignment


def load_training_crop(path: str, size: int, align: bool = False, data: Optional[np.ndarray] = None) -> tuple:
    """(crop uint8 (size,size,3) or None, skip reason or None) for one image.

    Aligned mode: CelebA-framed images (aspect 178:218, any size) get the reference crop; square
    images are taken as already-cropped faces. `align=True`: detect the face and align it to the
    CelebA template (the first / largest face); images without a face are skipped. `data`: the
    file's bytes, when the caller has read them already (the cache hashes them first).
    """
    from .packfile import open_pack, split_member
    member = split_member(path)
    if member is not None:  # a crop already made at the pack's resolution
        crop = open_pack(member[0]).crop(member[1])
        if crop is None:
            return None, "unreadable pack entry"
        return (crop if crop.shape[0] == size else _resize(crop, size)), None
    rgb, reason = read_rgb(path, data)
    if rgb is None:
        return None, reason
    if align:
        alignment = _alignment_module()
        from core.faces import detect_faces
        faces = detect_faces(rgb)
        if not faces:
            return None, "no face"
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return alignment.align_face(rgb, face.landmarks, alignment.CELEBA_TEMPLATE, size).crop, None
    framing = framing_of(*rgb.shape[1::-1])
    if framing == "celeba":
        alignment = _alignment_module()
        if alignment is not None and hasattr(alignment, "aligned_crop"):
            return alignment.aligned_crop(rgb, alignment.CELEBA_TEMPLATE, size).crop, None
        return celeba_crop(rgb, size), None
    if framing == "square":
        return _resize(rgb, size), None
    return None, NOT_ALIGNED


def framing_of(w: int, h: int) -> Optional[str]:
    """How load_training_crop takes a w x h image without --align, by its aspect (within
    FRAMING_TOLERANCE): "celeba", framed like CelebA's aligned 178x218 images (a 4:5 portrait,
    1080x1350, is within it too), "square", an already-cropped face, or None (skipped)."""
    if w <= 0 or h <= 0:
        return None
    if abs(h / w - CELEBA_FRAME[1] / CELEBA_FRAME[0]) < FRAMING_TOLERANCE:
        return "celeba"
    if abs(h / w - 1.0) < FRAMING_TOLERANCE:
        return "square"
    return None


def align_available() -> bool:
    """Whether face detection + alignment (core.faces, core.alignment) can be used for --align."""
    try:
        from core import alignment, faces  # noqa: F401
    except ImportError:
        return False
    return hasattr(alignment, "align_face") and hasattr(faces, "detect_faces")


def train_files_sha1(paths, train_idx) -> str:
    """SHA-1 of the training files' sorted names: the run's data by name, whatever their file times
    (recorded by fader-train; the evaluation finds a run's split again by it)."""
    return hashlib.sha1("\n".join(sorted(Path(paths[i]).name for i in train_idx)).encode("utf-8", "surrogateescape")).hexdigest()


def spelling_key(name: str) -> str:
    """An attribute name as spellings of it compare: 'Mouth slightly open', 'mouth-slightly_open' and
    'Mouth_Slightly_Open' are one name (the window shows the last as the first)."""
    return re.sub(r"[\s_-]+", "_", name.strip()).lower()


def model_spelling(attrs, model_names, whose: str, say) -> list:
    """The data's attributes, each named as the model names it where the two differ only in letter
    case and in spaces, hyphens or underscores between words (a folder `smiling` for a model's
    `Smiling`, a column `Mouth slightly open` for `Mouth_Slightly_Open` would otherwise become a
    second attribute). `say` is told each so taken, in a sentence."""
    from dataclasses import replace
    folded = {spelling_key(n): n for n in model_names}
    out = []
    for x in attrs:
        own = folded.get(spelling_key(x.name))
        if own is not None and own != x.name and own not in {y.name for y in attrs}:
            say(f"the data's attribute {x.name!r} is the {whose}'s {own!r}")
            x = replace(x, name=own)
        out.append(x)
    return out
