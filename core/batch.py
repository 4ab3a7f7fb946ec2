"""Batch export: apply one edit (attribute values) to every image of a folder tree.

Qt-free; the `batch` command and the window's Batch export dialog both call :func:`run_batch`.

Pipeline (why: on a small CPU the model, face detection and JPEG coding each leave cores idle):
reader threads load, detect and align the next photos while the calling thread runs the model on
the faces of several photos in one batch (encode + classifier + one decode for the reconstructions
and the edits together), and a writer thread pastes the edits back and saves atomically. Results
are recorded in input order. Each photo is a core.photo_edit.PhotoEdit: the faces found, the
"changed?" rule and the paste-back are those of `edit` and the window.

Never writes into or over an input: the output tree mirrors the input tree under OUT_DIR and every
output path is checked against every input before anything runs; when OUT_DIR lies inside IN_DIR
that sub-tree is left out of the walk, so a second run never treats its own outputs as inputs.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from .atomic_write import remove_stale_temps, same_file, temp_path, write_bytes_atomic
from .attributes import attribute_code, counted, pure_label
from .edit_session import no_such_face, sure_percent
from .errors import FaderError, NoFaceError, os_reason, without_path
from .image_io import IMAGE_SUFFIXES, Source, export_suffix
from .recipe import make_recipe

if TYPE_CHECKING:  # imported where used: core.photo_edit loads torch
    from .photo_edit import FoundFaces, PhotoEdit

OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif", "tiff": ".tif",
                  "bmp": ".bmp"}
STATUSES = ("ok", "exists", "skipped", "failed", "cancelled")
# the reason of a skipped file whose type is no photo's (a readme.txt): left out, not a failed edit
NOT_AN_IMAGE = "not an image (unsupported file type)"
REPORT_FORMAT = "fader-batch-report"
# the reason of an output --skip-existing leaves as it is; where the earlier report of the batch
# said how it was written, that follows (WRITTEN_BEFORE + its reason then)
EXISTS_REASON = "output exists (--skip-existing)"
WRITTEN_BEFORE = "when written: "
# Decoded photos the pipeline may hold at once (read ahead + waiting to be written), beyond one.
MAX_HELD_BYTES = 768 << 20
MAX_READERS = 64  # reader threads (each a thread and a photo in flight)

ProgressFn = Callable[[int, int, str], None]


def _decoded_bytes(item) -> int:
    """What reading ``item``'s photo will hold, from its header (RGB, 8 bits, and a 16-bit PNG's
    or TIFF's own values, Source.deep); 0 where unreadable (the read reports why)."""
    from PIL import Image

    from .image_io import deep_bytes, keeps_depth
    try:
        with Image.open(item.input) as im:
            w, h = im.size
            deep = deep_bytes(im) if item.output is not None and keeps_depth(item.output) else 0
    except Exception:
        return 0
    return 3 * int(w) * int(h) + deep


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------

@dataclass
class BatchOptions:
    """What to do with every photo. `values` are slider values as in PhotoEdit.set_values."""

    values: dict = field(default_factory=dict)
    aligned: bool = False          # inputs are CelebA-style aligned crops (no detection)
    raw: bool = False              # write the model's own output at model resolution
    face: Optional[int] = None     # edit only this face (0 = the first in reading order); None = every face
    format: Optional[str] = None   # png | jpg | webp; None = the input's own format
    quality: int = 95
    skip_existing: bool = False    # outputs that exist are left as they are (resume)
    overwrite: bool = False        # outputs that exist are replaced (else: refused, see plan_batch)
    keep_exif: bool = True
    find_more_faces: bool = False  # every face search made, whatever the others found (slower; core.faces)
    # how the report's words number faces: 0 as the command line's --face counts, 1 as the
    # window's Face list does (the batch window's details said "face 0" for the window's Face 1)
    first_face: int = 0

    def validate(self) -> None:
        if self.format is not None and self.format.lower() not in OUTPUT_FORMATS:
            raise FaderError(f"unknown output format {self.format!r}; use one of {', '.join(OUTPUT_FORMATS)}")
        if not 1 <= int(self.quality) <= 100:
            raise FaderError(f"--quality must be between 1 and 100, got {self.quality}")
        if self.face is not None and self.face < 0:
            raise FaderError(f"--face must be 0 or more, got {self.face}")
        if self.skip_existing and self.overwrite:
            raise FaderError("--skip-existing and --overwrite exclude each other")
        from .photo_edit import check_face_search
        check_face_search(self.aligned, self.find_more_faces)


# --------------------------------------------------------------------------------------------
# planning: which files, which outputs
# --------------------------------------------------------------------------------------------

@dataclass
class Item:
    """One input file and its fate (one entry of the report)."""

    input: Path
    relative: str
    output: Optional[Path]
    status: str = "pending"
    reason: str = ""
    faces: Optional[int] = None
    changed: Optional[int] = None   # faces the edit changed (0: written as the input, unedited)
    seconds: float = 0.0
    unsure: list = field(default_factory=list)   # edits measured from a reading the classifier was unsure of
    lost: list = field(default_factory=list)     # what the output could not keep (transparency, 16 bits, pages)
    # an output passed over (`exists`) whose unsure readings, losses and reason come from the
    # earlier report of this batch, which wrote it: False where they are not known (not checked again)
    notes_carried: bool = False

    def to_dict(self) -> dict:
        return {"input": str(self.input), "relative": self.relative,
                "output": str(self.output) if self.output is not None and self.status in ("ok", "exists") else None,
                "status": self.status, "reason": self.reason, "faces": self.faces, "changed": self.changed,
                "seconds": round(self.seconds, 4), "unsure": list(self.unsure),
                "lost": list(self.lost), "notes_carried": self.notes_carried}


def is_other_file(it: Item) -> bool:
    """Whether an input is a file that is not an image, left alone by the run."""
    return it.status == "skipped" and it.reason == NOT_AN_IMAGE


def passed_over_reasons(items: list, not_image: tuple = ("not an image", "not images"),
                        rest_said: str = "named at the end") -> list:
    """Why a run passes over `items` (the Items its plan settled, which it reports before the first
    photo; None for one not known, counted with the other skips), counted by why, as its progress
    says it: ['2 outputs already there', '1 not an image', '1 skipped, named at the end'].
    `not_image`: the words for one and for several files that are not images."""
    exists = sum(1 for it in items if it is not None and it.status == "exists")
    others = sum(1 for it in items if it is not None and is_other_file(it))
    rest = len(items) - exists - others
    return ([counted(exists, "output already there", "outputs already there")] if exists else []) + \
        ([counted(others, *not_image)] if others else []) + ([f"{rest} skipped, {rest_said}"] if rest else [])


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolve(p: Path) -> Optional[Path]:
    """The real path of `p`, or None when a link cannot be followed (a symlink loop)."""
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return None


def names_ignore_case(folder: Path) -> bool:
    """Whether file names in `folder` (or its nearest existing parent) ignore case, as on macOS and
    Windows by default: a name found there is looked up in the other case. Nothing is written (the
    folder may be the user's own); where no name can tell, the platform's default is assumed."""
    p = Path(folder)
    while not p.is_dir() and p.parent != p:
        p = p.parent
    try:
        dev = os.stat(p).st_dev
        with os.scandir(p) as entries:
            names = [p / e.name for _, e in zip(range(64), entries)]
    except OSError:
        dev, names = None, []
    for q in names + [p]:
        other = q.with_name(q.name.swapcase())
        if other.name == q.name:
            continue
        try:
            if os.lstat(q).st_dev != dev or os.stat(q.parent).st_dev != dev:
                continue   # another file system mounted there
            a, b = os.lstat(q), os.lstat(other)
            return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        except FileNotFoundError:
            return False   # the name in other case is not there: case counts
        except (OSError, ValueError):
            continue
    return sys.platform in ("win32", "darwin")


class OutputFolderGone(FaderError):
    """The output folder disappeared during the run (deleted, its drive unmounted) or another
    folder took its name: the run stops instead of creating it again."""


def _folder_id(folder) -> Optional[tuple]:
    """(device, inode) of `folder`, None when it is not there (or not reachable any more: a
    network share gone stale, a FUSE mount whose process ended)."""
    try:
        st = os.stat(folder)
    except OSError as e:
        if isinstance(e, (FileNotFoundError, NotADirectoryError)) or e.errno in _GONE_ERRNOS:
            return None
        raise
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _hold_folder(folder) -> tuple:
    """(an open descriptor of `folder` or None where folders cannot be opened (Windows), its
    (device, inode))."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return None, _folder_id(folder)
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    return fd, (st.st_dev, st.st_ino)


_GONE_ERRNOS = {getattr(errno, n) for n in ("ESTALE", "ENOTCONN", "ENODEV", "ENXIO") if hasattr(errno, n)}


class OutputsExist(FaderError):
    """Outputs that would replace files already there, without skip_existing or overwrite."""

    def __init__(self, message: str, paths: list):
        super().__init__(message)
        self.paths = paths


def plan_batch(in_dir, out_dir, fmt: Optional[str] = None, skip_existing: bool = False,
               overwrite: bool = False) -> list:
    """Walk IN_DIR and pair every file with its output path; raises FaderError for usage errors.

    Hidden files and folders (name starting with '.') are left out. Non-image files, links that
    cannot be followed (loops), and images whose output path another input already takes
    (``a.jpg`` and ``a.png`` with ``--format png``), are returned already marked skipped; with
    ``skip_existing`` outputs that exist are marked ``exists``. A folder without any image is an
    error. An output that exists is never replaced unless ``overwrite`` says so: without either
    flag, OutputsExist names them before anything is written.
    """
    src_root, dst_root = Path(in_dir), Path(out_dir)
    if not src_root.exists():
        raise FaderError(f"{src_root}: input folder not found")
    if not src_root.is_dir():
        raise FaderError(f"{src_root}: input must be a folder")
    if dst_root.exists() and not dst_root.is_dir():
        raise FaderError(f"{dst_root}: output exists and is not a folder")
    src_abs, dst_abs = _resolve(src_root), _resolve(dst_root)
    if src_abs is None:
        raise FaderError(f"{src_root}: the input folder cannot be resolved (a symlink loop)")
    if dst_abs is None:
        raise FaderError(f"{dst_root}: the output folder cannot be resolved (a symlink loop)")
    if src_abs == dst_abs or same_file(src_root, dst_root):
        raise FaderError(f"{dst_root}: the output folder is the input folder; choose another so no photo is overwritten")
    if fmt is not None and fmt.lower() not in OUTPUT_FORMATS:
        raise FaderError(f"unknown output format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    # On a file system that ignores case (macOS, Windows) 'A.jpg' and 'a.jpg' are one file: names
    # are compared folded there, so two inputs never make one output unnoticed.
    ignore_case = names_ignore_case(dst_root)

    def fold(p: Optional[Path]) -> Optional[Path]:
        return Path(str(p).casefold()) if ignore_case and p is not None else p
    out_nested = _inside(fold(dst_abs), fold(src_abs))

    items: list[Item] = []
    walk_errors: list = []
    for root, dirs, files in os.walk(src_root, followlinks=False, onerror=walk_errors.append):
        root_p = Path(root)
        if out_nested:  # leave our own output tree out of the walk
            dirs[:] = [d for d in dirs if fold(_resolve(root_p / d)) != fold(dst_abs)]
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue  # hidden: OS metadata (.DS_Store), editors' and our own temp files
            src = root_p / name
            rel = src.relative_to(src_root)
            suffix = src.suffix.lower()
            if _resolve(src) is None or not src.exists():
                why = "a symlink loop" if _resolve(src) is None else "a link to nothing"
                items.append(Item(src, rel.as_posix(), None, "skipped", f"cannot read: {why}"))
                continue
            if suffix not in IMAGE_SUFFIXES:
                items.append(Item(src, rel.as_posix(), None, "skipped", NOT_AN_IMAGE))
                continue
            if not src.is_file():
                # a named pipe or a device with a photo's name: opening it waits for a writer forever
                items.append(Item(src, rel.as_posix(), None, "skipped", "not a regular file (a pipe or a device)"))
                continue
            out_suffix = OUTPUT_FORMATS[fmt.lower()] if fmt else export_suffix(src)
            items.append(Item(src, rel.as_posix(), dst_root / rel.with_suffix(out_suffix)))
    if walk_errors and not items:
        e = walk_errors[0]
        raise FaderError(f"{e.filename or src_root}: cannot read the folder ({os_reason(e)})")
    for e in walk_errors:
        # a sub-folder that cannot be listed: its photos are neither edited nor counted, so it is
        # named among the skipped inputs (the run's exit status says so too)
        folder = Path(e.filename) if e.filename else src_root
        try:
            rel = folder.relative_to(src_root).as_posix() + "/"
        except ValueError:
            rel = str(folder)
        items.append(Item(folder, rel, None, "skipped", f"cannot read the folder ({os_reason(e)}); its photos were left out"))
    if not any(it.input.suffix.lower() in IMAGE_SUFFIXES for it in items):
        found = f" ({counted(len(items), 'other file')})" if items else ""
        raise FaderError(f"{src_root}: no images found{found}; looked for "
                         f"{', '.join(sorted(IMAGE_SUFFIXES))} here and in sub-folders")

    inputs = {fold(_resolve(it.input)) for it in items} - {None}
    input_ids = _file_ids(it.input for it in items)
    taken: dict = {}
    # Where two inputs would make one output, the one whose own name it is keeps it (b.jpg, not
    # b.jpeg, is written as b.jpg with --format jpg); otherwise the first in sorted order.
    def not_own_name(it: Item) -> bool:
        return it.output is None or fold(Path(it.output.name)) != fold(Path(it.input.name))
    for it in sorted(items, key=not_own_name):
        if it.output is None:
            continue
        key = fold(_resolve(it.output))
        if key is None:
            it.status, it.reason, it.output = "skipped", "the output path is a symlink loop", None
            continue
        if (key in inputs or _inside(key, fold(src_abs)) and not out_nested
                or _file_ids([it.output]) & input_ids):   # an input under another name (a hard link)
            # Only reachable through odd layouts (OUT_DIR a parent of IN_DIR); refuse the run
            # rather than risk writing over or among the photos.
            raise FaderError(f"{it.output}: output would be written over or among the input photos "
                             f"(from {it.input}); choose an output folder outside {src_root}")
        if key in taken:
            # --format cannot part them (every output then has its suffix): only another name can
            both = it.output.relative_to(dst_root).as_posix()
            it.status, it.reason = "skipped", (f"same output file as {taken[key]} (both would be written as "
                                               f"{both}); rename one of them to keep both")
            continue
        taken[key] = it.relative
        if skip_existing and it.output.is_file():
            it.status, it.reason = "exists", EXISTS_REASON
        elif skip_existing and it.output.is_symlink() and not it.output.exists():
            # a link whose target is gone is the user's entry all the same (the refusal without a
            # flag counts it among the files there): left as it is, never replaced
            it.status, it.reason = "exists", "a link to a missing file has the output's name; left as it is (--skip-existing)"
        elif skip_existing and os.path.lexists(it.output):
            # a pipe, a device or a folder: not a photo to resume from, nor ours to replace
            it.status, it.reason = "exists", "something other than a file has the output's name; left as it is (--skip-existing)"
    nested = ""
    if out_nested and dst_root.is_dir():
        # The output tree is left out of the inputs. An image in it that no input of this run could
        # have made (same relative name, any image suffix) is the user's own photo, neither edited
        # nor safe to write among: refuse. Same-named files count as earlier outputs.
        made = {fold(Path(it.relative).with_suffix("")) for it in items if it.input.suffix.lower() in IMAGE_SUFFIXES}
        own = sorted(f for root, _d, files in os.walk(dst_root) for f in map(Path(root).joinpath, files)
                     if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
                     and not any(part.startswith(".") for part in f.relative_to(dst_root).parts)
                     and fold(f.relative_to(dst_root).with_suffix("")) not in made)
        if own:
            more = f" and {len(own) - 1} more" if len(own) > 1 else ""
            one = len(own) == 1
            raise FaderError(f"{own[0]}{more}: {counted(len(own), 'photo')} in the output folder {dst_root} "
                             f"{'is not an output' if one else 'are not outputs'} of this batch; it lies inside "
                             f"{src_root}, so {'it' if one else 'they'} would be left out of the inputs: move "
                             f"{'it' if one else 'them'}, or choose an output folder outside the input folder")
        nested = f" (it lies inside {src_root}: the photos there are not inputs)"
    if not skip_existing and not overwrite:
        there = [it.output for it in items if it.output is not None and it.status != "skipped"
                 and (it.output.exists() or it.output.is_symlink())]
        if there:
            more = f" and {len(there) - 1} more" if len(there) > 1 else ""
            raise OutputsExist(f"{there[0]}{more}: {counted(len(there), 'output file')} already "
                               f"{'exists' if len(there) == 1 else 'exist'} in {dst_root}{nested}; "
                               "--skip-existing keeps them (resume), --overwrite replaces them", there)
    return items


def _file_ids(paths) -> set:
    """(device, inode) of those of `paths` that exist: one file under any of its names."""
    ids = set()
    for p in paths:
        try:
            st = os.stat(p)
        except (OSError, ValueError):
            continue
        ids.add((st.st_dev, st.st_ino))
    return ids


def _remove_stale_parts(items) -> None:
    """Delete temp files that killed runs left next to the outputs (never another live run's)."""
    wanted: dict = {}
    for it in items:
        if it.output is not None:
            wanted.setdefault(it.output.parent, set()).add(it.output.name)
    for folder, names in wanted.items():
        remove_stale_temps(folder, names)


def _make_output_folder(out_dir) -> None:
    p = Path(out_dir)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FaderError(f"{p}: cannot create the output folder: a file with that name exists") from None
    except NotADirectoryError:
        blocker = next((q for q in p.parents if q.exists() and not q.is_dir()), None)
        where = f"{blocker} is a file, not a folder" if blocker else "a parent is not a folder"
        raise FaderError(f"{p}: cannot create the output folder: {where}") from None
    except OSError as e:
        raise FaderError(f"{p}: cannot create the output folder: {os_reason(e)}") from None


def _check_writable(folder: Path, what: str) -> None:
    """Create and remove a temporary file in `folder`: a read-only or full disk is found now.
    `what` names the file it is for, or the folder itself ("OUT: cannot write the outputs")."""
    probe = temp_path(folder / "write-test")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        # "OUT: cannot write the outputs: cannot write into OUT" said the folder twice
        where = "" if what.startswith(f"{folder}:") else f": cannot write into {folder}"
        raise FaderError(f"{what}{where} ({os_reason(e)})") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


def _check_report_path(report_path, items, out_dir) -> list:
    """The report must not replace an input, an output or a foreign file, and its folder must
    exist (or lie in the output folder, created with it) and be writable. Returns `items` less an
    earlier report at that path found among the inputs (the report of a run that wrote it into
    IN_DIR): it is this program's own file, replaced by the new report, not an input."""
    p = Path(report_path)
    rp = _resolve(p)
    if rp is None:
        raise FaderError(f"{p}: cannot write the report: the path is a symlink loop")
    if p.is_symlink() and not p.exists():
        # the write would replace the user's link (the target's folder is no report's)
        raise FaderError(f"{p}: is a link to a missing file; refusing to replace it (choose another name for --report)")
    if os.path.lexists(rp) and not rp.is_file() and not rp.is_dir():
        raise FaderError(f"{p}: cannot write the report: it is not a regular file (a pipe or a device)")
    own = None
    for it in items:
        if rp == _resolve(it.input):
            if it.output is None and it.input.suffix.lower() not in IMAGE_SUFFIXES and _is_report(rp):
                own = it
                continue
            raise FaderError(f"{p}: the report would overwrite an input file")
        if it.output is not None and rp == _resolve(it.output):
            raise FaderError(f"{p}: the report would overwrite the output photo of {it.relative}; "
                             "choose another name for --report")
    # the output folder (or one of its sub-folders) does not exist yet: found now, not as a
    # failed report write after every photo was exported
    out_folders = {_resolve(Path(out_dir))} | {_resolve(it.output.parent) for it in items if it.output is not None}
    if rp.is_dir() or any(f is not None and _inside(f, rp) for f in out_folders):
        raise FaderError(f"{p}: cannot write the report: it is a folder")
    if rp.exists() and not _is_report(rp):
        raise FaderError(f"{p}: exists and is not a batch report; refusing to overwrite it "
                         "(choose another name for --report)")
    # found out now, not after hours of work
    if rp.parent.is_dir():
        _check_writable(rp.parent, f"{p}: cannot write the report")
    elif rp.parent.exists() or any(q.exists() and not q.is_dir() for q in rp.parent.parents):
        raise FaderError(f"{p}: cannot write the report: {p.parent} is not a folder")
    elif not _inside(rp.parent, _resolve(Path(out_dir)) or Path(out_dir)):
        raise FaderError(f"{p}: cannot write the report: folder {p.parent} does not exist")
    # else: a sub-folder of the output folder, created (and checked) with it
    return [it for it in items if it is not own]


def _make_report_folder(report_path) -> None:
    folder = Path(report_path).parent
    if not folder.is_dir():
        _make_output_folder(folder)
        _check_writable(folder, f"{report_path}: cannot write the report")


def _is_report(p: Path) -> bool:
    """Whether `p` holds a report this program wrote (which a new report may replace)."""
    return _read_report(p) is not None


def _read_report(p: Path) -> Optional[dict]:
    """The report this program wrote at `p`, None where there is none (or another file)."""
    try:
        if not p.is_file() or p.stat().st_size > 512 << 20:   # a pipe would block the open
            return None
        with open(p, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):   # nested too deeply: no report of ours
        return None
    return data if isinstance(data, dict) and data.get("format") == REPORT_FORMAT else None


def _same_path(a, b) -> bool:
    if not isinstance(a, (str, Path)) or not isinstance(b, (str, Path)):
        return False
    try:
        ra, rb = _resolve(Path(a)), _resolve(Path(b))
    except ValueError:   # a name with a NUL byte, in a report edited by hand
        return False
    return ra is not None and ra == rb


def _carry_earlier_notes(report_path, report: "BatchReport") -> None:
    """A resume (--skip-existing) passes over the outputs an earlier run wrote: where the earlier
    report at `report_path` is this batch's (same folders, model, values and options but the two
    that say what to do with outputs already there), each output it wrote keeps the unsure
    readings, losses and reason that report gave it (`notes_carried`), so that the summary and the
    new report, which replaces it, still name them. An output changed since that report was written
    (newer than it) is not taken for the one it describes."""
    exists = [it for it in report.items if it.status == "exists" and it.reason == EXISTS_REASON]
    if not exists or report_path is None:
        return
    p = Path(report_path)
    data = _read_report(p)
    try:
        written = p.stat().st_mtime
    except OSError:
        return
    if data is None or data.get("model") != report.model or not _same_path(data.get("in_dir"), report.in_dir) \
            or not _same_path(data.get("out_dir"), report.out_dir):
        return
    # the values as the new report will write them (JSON: a tuple is a list)
    if data.get("values") != json.loads(json.dumps(report.values)):
        if isinstance(data.get("values"), dict):
            # the outputs passed over were edited otherwise: the folder would mix two edits unsaid
            report.earlier_values = data["values"]
        return
    before, defaults = data.get("options"), BatchOptions()
    if not isinstance(before, dict):
        return
    for k, v in report.options.items():
        # an option older reports lack was then its default
        if k not in ("skip_existing", "overwrite") and before.get(k, getattr(defaults, k, None)) != v:
            return
    if not isinstance(data.get("items"), list):
        return
    entries = {e["relative"]: e for e in data["items"] if isinstance(e, dict) and isinstance(e.get("relative"), str)}
    carried_prefix = f"{EXISTS_REASON}; {WRITTEN_BEFORE}"
    for it in exists:
        e = entries.get(it.relative)
        # written by that run, or carried by it from the one before
        if e is None or not (e.get("status") == "ok" or e.get("status") == "exists" and e.get("notes_carried") is True):
            continue
        unsure, lost, reason = e.get("unsure"), e.get("lost"), e.get("reason")
        if not (isinstance(unsure, list) and isinstance(lost, list) and isinstance(reason, str)
                and all(isinstance(x, str) for x in unsure + lost)):
            continue
        try:
            if not _same_path(e.get("output"), it.output) or os.stat(it.output).st_mtime > written:
                continue
        except OSError:
            continue
        it.unsure, it.lost, it.notes_carried = list(unsure), list(lost), True
        it.reason = carried_prefix + reason.removeprefix(carried_prefix)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

@dataclass
class BatchReport:
    """Every input with its status; written as JSON by :meth:`write`."""

    in_dir: str
    out_dir: str
    items: list
    model: str = ""
    values: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    started: str = ""
    seconds: float = 0.0
    cancelled: bool = False
    report_error: Optional[str] = None   # why the JSON report could not be written (a full disk)
    error: Optional[str] = None          # why the run stopped before its end (the output folder disappeared)
    # a resume's earlier report at the same path, of the same folders and model, was made with
    # these other values: the outputs it passed over hold another edit (_carry_earlier_notes)
    earlier_values: Optional[dict] = None

    def counts(self) -> dict:
        c = {s: 0 for s in STATUSES}
        for it in self.items:
            c[it.status] = c.get(it.status, 0) + 1
        return c

    @property
    def exit_status(self) -> int:
        """0: every photo written (or already there); 1: some were skipped, failed or not reached, or
        the report could not be written. Files that are not images (a camera's .xmp and .AAE
        sidecars, notes) are left alone without failing the run."""
        ok = all(it.status in ("ok", "exists") or is_other_file(it) for it in self.items)
        return 0 if ok and self.report_error is None and self.error is None else 1

    def problems(self) -> list:
        """(relative path, status, reason) for each image (or folder) that was not written."""
        return [(it.relative, it.status, it.reason) for it in self.items
                if it.status not in ("ok", "exists") and not is_other_file(it)]

    def other_files(self) -> list:
        """The inputs that are not images, left alone."""
        return [it for it in self.items if is_other_file(it)]

    def not_checked_again(self) -> list:
        """The outputs a resume passed over whose notes (unsure readings, losses) are not known: no
        earlier report of this batch was there to carry them from (_carry_earlier_notes)."""
        return [it for it in self.items if it.status == "exists" and not it.notes_carried]

    def search_harder(self) -> list:
        """The photos skipped for want of a face that a thorough search (``find_more_faces``) might
        find one in: none where the run made one, or took the photos as aligned crops."""
        if self.options.get("find_more_faces") or self.options.get("aligned"):
            return []
        return [it for it in self.items if it.status == "skipped" and it.faces == 0 and not is_other_file(it)]

    def to_dict(self) -> dict:
        c = self.counts()
        return {"format": REPORT_FORMAT, "version": 1, "in_dir": self.in_dir, "out_dir": self.out_dir,
                "model": self.model, "values": self.values, "options": self.options,
                "started": self.started, "seconds": round(self.seconds, 3), "cancelled": self.cancelled,
                "error": self.error, "counts": c,
                # of the skipped, the files that are not images (left alone): the summary line says
                # "3 skipped (1 not an image)", so the two agree; `counts` keeps one key per status
                "not_images": len(self.other_files()),
                "images_per_second": round(c["ok"] / self.seconds, 3) if self.seconds > 0 else None,
                "items": [it.to_dict() for it in self.items]}

    def write(self, path) -> None:
        """Write the report atomically (a temp file renamed over `path`)."""
        p = Path(path)
        try:
            write_bytes_atomic(p, (json.dumps(self.to_dict(), indent=1) + "\n").encode("utf-8"))
        except OSError as e:
            raise FaderError(f"{p}: cannot write report ({e.strerror or e})") from None


# --------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------

@dataclass
class _Prepared:
    """A photo read and its faces found by a reader thread; then its document, from the model."""

    item: Item
    image: Optional[np.ndarray] = None
    found: Optional[FoundFaces] = None
    doc: Optional[PhotoEdit] = None
    source: Optional[Source] = None      # what the export keeps of the input (EXIF, profile, grey, alpha)
    error: Optional[BaseException] = None
    seconds: float = 0.0

    @property
    def n_faces(self) -> int:
        return len(self.found.alignments) if self.found is not None else 0

    @property
    def nbytes(self) -> int:
        deep = getattr(self.source, "deep", None)   # a 16-bit photo's own values, kept for its export
        return (self.image.nbytes if self.image is not None else 0) + (deep.nbytes if deep is not None else 0)


class _Stop(Exception):
    """Raised inside the pipeline when the cancel flag is set."""


def run_batch(in_dir, out_dir, engine, options: BatchOptions, *, progress: Optional[ProgressFn] = None,
              cancel: Optional[threading.Event] = None, report_path=None, readers: Optional[int] = None,
              batch_faces: int = 8, detector=None, items: Optional[list] = None) -> BatchReport:
    """Edit every image under IN_DIR into OUT_DIR; returns the report (also written to report_path).

    Usage errors (missing folder, OUT_DIR == IN_DIR, bad values) raise FaderError before anything
    is written. Per-file problems are recorded, never raised. `progress(done, total, path)` is
    called from this thread after each file; setting `cancel` stops after the photo being written
    (outputs are complete files) and marks the rest ``cancelled``. KeyboardInterrupt is
    handled the same way, then re-raised once the report is written (as its `batch_report`).

    `readers`: threads that load, detect and align (default: 2 up to 8 cores, else cores/4).
    `batch_faces`: faces per model batch (a batch takes the photos that are ready, up to this).
    """
    options.validate()
    attribute_code(engine.attributes, [options.values])  # unknown names / bad codes -> FaderError now
    cancel = cancel or threading.Event()
    if items is None:
        items = plan_batch(in_dir, out_dir, options.format, options.skip_existing, options.overwrite)
    if report_path is not None:
        items = _check_report_path(report_path, items, out_dir)
    report = BatchReport(str(in_dir), str(out_dir), items, model=engine.model.name,
                         values=make_recipe(options.values)["values"],
                         options={"aligned": options.aligned, "raw": options.raw, "face": options.face,
                                  "format": options.format, "quality": options.quality,
                                  "skip_existing": options.skip_existing, "overwrite": options.overwrite,
                                  "find_more_faces": options.find_more_faces,
                                  # how faces are numbered in the words (unsure readings), 0 or 1
                                  "first_face": options.first_face},
                         started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    t0 = time.perf_counter()
    total = len(items)
    done = 0

    def finished(it: Item) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, str(it.input))

    todo = [it for it in items if it.status == "pending"]
    out_id = out_fd = None
    if todo:
        _make_output_folder(out_dir)
        _check_writable(Path(out_dir), f"{Path(out_dir)}: cannot write the outputs")
        _remove_stale_parts(todo)
        # the folder the outputs go into: when it is not this one any more (deleted, its drive
        # unmounted) the run stops, rather than create it again and fill the disk beneath the
        # mount. Held open meanwhile, so that a folder made again at its path cannot be given its
        # number (inode) and pass for it
        out_fd, out_id = _hold_folder(out_dir)
    try:
        if report_path is not None:
            _carry_earlier_notes(report_path, report)   # read before the new report replaces it
            _make_report_folder(report_path)
        for it in items:
            if it.status != "pending":
                finished(it)
        pipeline = _Pipeline(engine, options, cancel, readers, batch_faces, detector, finished,
                             out_dir=Path(out_dir), out_id=out_id)
    except BaseException:
        # the open folder would keep its drive from being ejected until the process ends
        if out_fd is not None:
            os.close(out_fd)
        raise
    interrupted = None
    try:
        pipeline.run(todo)
    except KeyboardInterrupt as e:
        interrupted = e
    finally:
        if out_fd is not None:
            os.close(out_fd)
        stopped = "not processed: the run was stopped"
        if pipeline.gone:
            written = sum(1 for it in items if it.status == "ok")
            report.error = (f"the output folder {out_dir} disappeared during the run; {counted(written, 'photo')} "
                            f"{'was' if written == 1 else 'were'} written before")
            stopped = "not processed: the output folder disappeared"
        for it in items:
            if it.status == "pending":
                it.status, it.reason = "cancelled", stopped
        report.cancelled = cancel.is_set() or interrupted is not None
        report.seconds = time.perf_counter() - t0
        if report_path is not None:
            try:
                if pipeline.gone and _inside(Path(os.path.abspath(report_path)), Path(os.path.abspath(out_dir))):
                    # it went with the output folder: neither created again nor written into the
                    # folder now at its path (the empty mount point of a drive unmounted)
                    raise FaderError(f"{report_path}: cannot write the report: the output folder {out_dir} it was to "
                                     "go into disappeared")
                report.write(report_path)
            except FaderError as e:
                # the photos' fate still reaches the user (the summary); the run counts as failed
                report.report_error = str(e)
    if interrupted is not None:
        # the report goes with it, so that an abort can still say what was written and how to go on
        interrupted.batch_report = report
        raise interrupted
    return report


def _one_torch_thread() -> None:
    # Reader threads run the face detector (torch) next to the model: one intra-op thread each,
    # so detection and the model share the cores instead of both spreading over all of them
    # (OpenMP teams on oversubscribed cores wait on each other at every operator).
    import torch
    torch.set_num_threads(1)


class _Pipeline:
    """Readers -> model (this thread) -> writer. Bounded queues keep memory to a few photos."""

    def __init__(self, engine, options: BatchOptions, cancel: threading.Event, readers: int,
                 batch_faces: int, detector, finished: Callable[[Item], None], out_dir: Path,
                 out_id: Optional[tuple]):
        self.engine = engine
        self.opt = options
        self.cancel = cancel
        # the output folder as it was made at the start ((device, inode)); `gone` once it is not
        self.out_dir, self.out_id = out_dir, out_id
        self.gone = False
        from .engine import usable_cores
        cores = usable_cores()
        # Detection costs several times the model per photo (MTCNN ~65 ms vs ~10 ms for a 64 px
        # model, batched, on one core), so even two cores get two readers.
        self.readers = min(MAX_READERS, max(1, int(readers))) if readers else (2 if cores <= 8 else cores // 4)
        # on CPU the model gets the cores the readers leave free (at least one)
        self.model_threads = max(1, cores - self.readers) if engine.device.type == "cpu" else None
        self.batch_faces = max(1, int(batch_faces))
        if detector is None:
            from .photo_edit import face_search
            detector = face_search(options.aligned, options.find_more_faces)
        self.detector = detector
        self.finished = finished
        self.template = engine.model.alignment()
        self.size = engine.image_size
        # Editing nothing never changes a face: the model need not run at all then.
        self.needs_model = options.raw or bool(options.values)

    # -- reader threads ------------------------------------------------------------------------
    def _read(self, it: Item) -> _Prepared:
        from .image_io import keeps_depth, open_photo
        from .photo_edit import find_faces
        t = time.perf_counter()
        p = _Prepared(it)
        try:
            if self.cancel.is_set() or self.gone:
                raise _Stop()
            # the pixels and the Source from one decode; the Source keeps a 16-bit photo's own
            # values only where its output can hold them (a PNG or TIFF, not --raw's crop): for a
            # JPEG they would be held, and dropped at the export
            p.image, p.source = open_photo(it.input, exif=self.opt.keep_exif and not self.opt.raw,
                                           depth=not self.opt.raw and it.output is not None and keeps_depth(it.output))
            # the faces PhotoEdit.open finds, so that a batch output equals what `edit` writes
            p.found = find_faces(p.image, self.template, self.size, self.opt.aligned, self.detector)
            n = p.n_faces
            # without values the photo is only copied (or converted): one without a face too
            if not n and self.needs_model:
                raise NoFaceError(p.found.no_face_message(it.input))
            if self.opt.face is not None and self.opt.face >= n:
                raise NoFaceError(f"{it.input}: {no_such_face(self.opt.face, n)}")
        except Exception as e:  # recorded per file; the run goes on
            p.error = e
            p.image = None
        p.seconds = time.perf_counter() - t
        return p

    def _raw_face(self, doc) -> int:
        """The face --raw writes: --face, else the photo's main face (as the window selects it)."""
        from .photo_edit import main_face
        return self.opt.face if self.opt.face is not None else main_face(doc.faces)

    # -- model (calling thread) ----------------------------------------------------------------
    def _model(self, group: list) -> list:
        """Run the engine on the faces of several photos at once: one encode (and classification)
        and one decode of every edit and reconstruction the group needs. Returns the group, each
        photo with its document (none when nothing needs the model)."""
        from .photo_edit import PhotoEdit, decode_faces
        if not self.needs_model:
            return group
        t = time.perf_counter()
        docs = PhotoEdit.encode_many([(p.image, p.found, p.item.input) for p in group], self.engine)
        faces = []
        for p, doc in zip(group, docs):
            p.doc = doc
            doc.set_values(self.opt.values, face=self.opt.face)
            if self.opt.raw:
                faces.append((doc, self._raw_face(doc)))
            else:
                faces += [(doc, i) for i in doc.edited_faces()]   # the one "changed?" rule
        decode_faces(faces, reconstruction=not self.opt.raw)
        share = (time.perf_counter() - t) / max(1, sum(p.n_faces for p in group))
        for p in group:
            p.seconds += share * p.n_faces
        return group

    # -- writer thread -------------------------------------------------------------------------
    def _write(self, p: _Prepared) -> _Prepared:
        from .image_io import export_photo, save_image, unchanged_wording
        t = time.perf_counter()
        it, doc = p.item, p.doc
        try:
            if self.gone:
                raise _Stop()   # left pending: "not processed"
            self._make_folder(it.output)
            copied = False
            changed = doc.edited_faces() if doc is not None and not self.opt.raw else []
            if self.opt.raw:
                save_image(it.output, doc.render_raw(self._raw_face(doc)), quality=self.opt.quality,
                           exif=p.source.exif, icc_profile=p.source.icc, gray=p.source.gray,
                           replace=self.opt.overwrite)
            else:
                # changed faces were decoded by the model thread: this only pastes back; nothing
                # changed: the input's own bytes where the format allows
                # without --overwrite a file that appeared since the plan (another program, a
                # second batch into the same folder) is never replaced: the plan's check is long past
                rgb = p.image
                if changed:
                    rgb = doc.render()
                    # the photo as read is not needed once the edit is rendered: freed before the
                    # save makes its own copy of the pixels (Pillow's, 4 bytes a pixel), not after
                    # it (a 100 MP photo is 286 MB)
                    p.image = doc.image = None
                copied, it.lost = export_photo(it.input, it.output, rgb, p.source, quality=self.opt.quality,
                                               unchanged=not changed, replace=self.opt.overwrite)
                rgb = None
            it.status = "ok"
            it.faces = p.n_faces
            it.changed = None if self.opt.raw else len(changed)
            if self.opt.raw:
                notes = [f"model output of face {self._raw_face(doc) + self.opt.first_face} of {it.faces}"]
            else:
                notes = [f"{len(changed)} of {counted(it.faces, 'face')} changed" if it.faces else "no face found"]
                if not changed:
                    notes.append(unchanged_wording(it.output, copied, p.source))
                # an edit is measured from the face's reading: name the readings that were guesses,
                # on the faces left unchanged too (a face misread as having the value asked for is
                # not edited at all), as `edit` does
                s = doc.session if doc is not None else None
                asked = [self.opt.face] if self.opt.face is not None else range(it.faces)
                it.unsure = [f"face {i + self.opt.first_face}: {n} read as {pure_label(s.attribute(n), s.own[i][n])} "
                             f"({sure_percent(q)} sure)"
                             for i in (asked if s is not None else ())
                             for n, q in s.unsure_readings(i, self.opt.values).items()]
                if it.unsure:
                    notes.append(("unsure reading: " if len(it.unsure) == 1 else "unsure readings: ") + ", ".join(it.unsure))
                notes += it.lost
            if p.found.fallback:
                notes.append("no face detected: edited as an aligned crop (the image has the model's framing)")
            if p.found.skipped:
                notes.append(f"{counted(len(p.found.skipped), 'face')} too small for the model left unchanged")
            it.reason = "; ".join(notes)
        except _Stop as e:
            p.error = e
        except Exception as e:
            # a write that failed because the output folder went away (FileNotFoundError: its
            # temporary file has no folder any more) is said as that, and stops the run
            p.error = self._gone_error_for(it.output) if not isinstance(e, OutputFolderGone) and self._output_gone() else e
        p.image, p.doc = None, None  # free the photo as soon as it is written
        p.seconds += time.perf_counter() - t
        return p

    def _output_gone(self) -> bool:
        """Whether the output folder is no longer the one the run started with (sets `gone`)."""
        if self.out_id is None:
            return False
        try:
            now = _folder_id(self.out_dir)
        except OSError:
            return False   # e.g. an I/O error: the writes fail with their own reason
        if now != self.out_id:
            self.gone = True
        return self.gone

    def _make_folder(self, output: Path) -> None:
        """Create the sub-folders of the output folder that `output` goes into, one level at a
        time inside the output folder (never the output folder itself, nor its parents): where it
        has disappeared, OutputFolderGone."""
        if self._output_gone():
            raise self._gone_error_for(output)
        try:
            parts = output.parent.relative_to(self.out_dir).parts
        except ValueError:   # items planned into another folder: made as they come
            parts = None
        folders = [output.parent] if parts is None else \
            [self.out_dir.joinpath(*parts[:k]) for k in range(1, len(parts) + 1)]
        for folder in folders:
            try:
                if parts is None:
                    folder.mkdir(parents=True, exist_ok=True)
                else:
                    folder.mkdir(exist_ok=True)
            except OSError as e:
                if isinstance(e, FileNotFoundError) and self._output_gone():
                    raise self._gone_error_for(output) from None
                raise FaderError(f"{output}: cannot create the folder {output.parent} ({os_reason(e)})") from None

    def _gone_error_for(self, output: Path) -> OutputFolderGone:
        return OutputFolderGone(f"{output}: not written: the output folder {self.out_dir} disappeared during the run")

    # -- driver --------------------------------------------------------------------------------
    def _record(self, p: _Prepared, phase: str) -> None:
        it = p.item
        it.seconds = p.seconds
        e = p.error
        if e is None:
            pass
        elif isinstance(e, _Stop):
            return  # left pending: run_batch marks it cancelled
        elif phase == "read" and isinstance(e, FaderError):
            # a problem with the input file itself (unreadable, not an image, no face): skipped
            it.status, it.reason = "skipped", without_path(str(e), it.input)
            it.faces = p.n_faces if isinstance(e, NoFaceError) else None
        else:
            it.status = "failed"
            where = it.output if phase == "write" else it.input
            if isinstance(e, FaderError):
                it.reason = without_path(str(e), where)
            elif isinstance(e, OSError):
                it.reason = os_reason(e)
            else:
                it.reason = f"{type(e).__name__}: {e}"
        self.finished(it)

    def _model_or_fail(self, group: list) -> list:
        try:
            return self._model(group)
        except Exception as e:  # e.g. out of memory on a large batch: those photos fail, the run goes on
            for p in group:
                p.error, p.image, p.doc = e, None, None
                self._record(p, "model")
            return []

    def run(self, todo: list) -> None:
        if not todo:
            return
        window = max(2 * self.batch_faces, 2 * self.readers)  # photos read ahead of the model
        reads: deque = deque()
        writes: deque = deque()
        pending = deque(todo)
        import torch
        rpool = ThreadPoolExecutor(self.readers, thread_name_prefix="batch-read", initializer=_one_torch_thread)
        wpool = ThreadPoolExecutor(1, thread_name_prefix="batch-write")
        prev_threads = torch.get_num_threads()
        if self.model_threads:
            torch.set_num_threads(self.model_threads)
        sizes: dict = {}   # id(item) -> its decoded size, from its header
        try:
            while (pending or reads or writes) and not self.cancel.is_set() and not self.gone:
                # A few big photos are already hundreds of MB: read ahead by count and by size, the
                # reads still running counted by their headers' size (counted only once read, 16
                # photos of 100 MP were read at once: 5.2 GB for 8 of them). Every photo from its
                # read to the end of its write counts: the next is read when it fits in
                # MAX_HELD_BYTES with them; one that does not, only when no other is being read
                # and at most one is being written (a read ahead of one photo: read while the one
                # before is written). 8 photos of 100 MP peaked at 3.5 GB, the read-ahead of two
                # or three and the queue of writes each holding one; one `edit` of such a photo
                # takes 1.9 GB
                held = sum(f.nbytes for f in reads) + sum(w.nbytes for w in writes)
                while pending and len(reads) < window:
                    item = pending[0]
                    if id(item) not in sizes:
                        sizes[id(item)] = _decoded_bytes(item)
                    nbytes = sizes[id(item)]
                    if held + nbytes > MAX_HELD_BYTES and (reads or len(writes) > 1):
                        break
                    pending.popleft()
                    fut = rpool.submit(self._read, item)
                    fut.nbytes = nbytes
                    reads.append(fut)
                    held += nbytes
                group, faces, size = [], 0, 0
                # wait for the next photo in order, then take those that are ready as well (as many
                # as the model takes at once, and no more than MAX_HELD_BYTES of them beyond one)
                while reads and faces < self.batch_faces and (not group or (reads[0].done() and size < MAX_HELD_BYTES)):
                    p = reads.popleft().result()
                    if p.error is not None:
                        self._record(p, "read")
                    else:
                        group.append(p)
                        faces += p.n_faces
                        size += p.nbytes
                if group:
                    for p in self._model_or_fail(group):
                        fut = wpool.submit(self._write, p)
                        fut.nbytes = p.nbytes
                        writes.append(fut)
                # record finished writes in order; a queue bounded by count and size keeps few photos in memory
                while writes and (writes[0].done() or len(writes) > self.batch_faces
                                  or sum(w.nbytes for w in writes) > MAX_HELD_BYTES):
                    self._record(writes.popleft().result(), "write")
                if writes and not reads:
                    # only writes left (or the next photo waits for memory they hold): wait for the
                    # next in short steps, so that its progress is reported when it is written and
                    # a Cancel meanwhile is seen
                    futures_wait([writes[0]], timeout=0.1)
        except BaseException:
            self.cancel.set()  # readers that have not started yet return at once
            raise
        finally:
            # Reads not started are dropped. Stopped (Cancel, Ctrl-C), so are the writes queued but
            # not started: up to batch_faces photos of several seconds each, which a Cancel used to
            # wait for (they stay pending: "not processed"); the one being written finishes (atomic).
            for f in reads:
                f.cancel()
            if self.cancel.is_set() or self.gone:
                for f in writes:
                    f.cancel()
            again = None
            for pool in (rpool, wpool):
                while True:
                    # A second Ctrl-C must not cut this wait short: the writes in flight finish
                    # anyway (the interpreter joins their thread), and the report has to say so.
                    try:
                        pool.shutdown(wait=True, cancel_futures=pool is rpool)
                        break
                    except KeyboardInterrupt as e:
                        self.cancel.set()
                        again = e
            while writes:
                f = writes.popleft()
                if not f.cancelled():
                    self._record(f.result(), "write")
            for f in reads:
                if f.done() and not f.cancelled() and f.result().error is not None:
                    self._record(f.result(), "read")
            torch.set_num_threads(prev_threads)
            if again is not None:
                raise again
