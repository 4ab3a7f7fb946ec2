"""What the benchmarks share on the command line: a --help that shows the whole docstring (what each
figure means), one-line errors instead of tracebacks, and outputs checked before the work (a
missing folder was a traceback after minutes of it), never replacing a file already there without
--overwrite (it may be the user's own, or a committed figure), and written atomically."""
from __future__ import annotations

import argparse
import functools
import json
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.errors import FaderError  # noqa: E402

def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser whose --help prints `doc` as written (the figures' meanings included)."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def one_line_errors(prog: str):
    """Decorate a `main(argv)`: a FaderError (an unreadable model or judge file, a missing image,
    a bad output) prints `prog: error: ...` and returns 2, as the app's commands do."""
    def wrap(main):
        @functools.wraps(main)
        def run(argv=None):
            try:
                return main(argv)
            except FaderError as e:
                print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
                return 2
        return run
    return wrap


def add_overwrite(p: argparse.ArgumentParser, what: str = "the output file", help: str | None = None) -> None:
    """The --overwrite option of a benchmark that writes files (`help`: for outputs other than one file)."""
    p.add_argument("--overwrite", action="store_true", help=help or (
        f"replace {what} if it exists (without this, an existing file is refused before the work)"))


def check_output(path, option: str, suffixes=None, *, overwrite: bool, make_folder: bool = False) -> None:
    """Refuse, before any work, a file that could not be written at the end: no such folder (with
    `make_folder`: made, once the rest allows the run), a folder by that name, a folder not
    writable, (with `suffixes`) a type that cannot be written, or, without `overwrite`, a file
    already there (a link too, even a broken one: an entry the user made)."""
    from core.atomic_write import check_writable
    p = Path(path)
    if not overwrite and (p.is_symlink() or p.exists()) and not p.is_dir():
        raise FaderError(f"{option} {path}: the file exists; choose a new file, or give --overwrite to replace it")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        check_writable(path, option, f"it must end in {', '.join(sorted(suffixes))}")
    if make_folder:
        try:   # a file where a folder on the way should be was a FileExistsError traceback
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FaderError(f"{option} {path}: cannot write it ({e.strerror or e})") from None
    check_writable(path, option)


@contextmanager
def written_through(path, option: str, *, overwrite: bool):
    """A temporary path beside `path`, with its suffix, that becomes `path` once written (an image
    writer that takes a file name); a failure to write, or without `overwrite` a file that appeared
    there meanwhile, is one line naming the option."""
    from core.atomic_write import atomic_path
    try:
        with atomic_path(path, keep_suffix=True, replace=overwrite) as part:
            yield part
    except OSError as e:
        raise FaderError(f"{option} {path}: cannot write it ({e.strerror or e})") from None


def check_data(data: Path, *needed: str) -> None:
    """The shared CelebA subset (../shared/data beside the repository, or a --data) must hold `needed`."""
    missing = [n for n in needed if not (Path(data) / n).exists()]
    if missing:
        raise FaderError(f"the CelebA subset is not at {data} (no {missing[0]})")


def judged_names(judge, engine, model) -> list:
    """The attributes both the judge and the model (`engine`'s, file `model`) have, in the judge's
    order; refused in words where they share none (nothing could be judged)."""
    own = [x.name for x in engine.attributes]
    names = [n for n in judge.attributes if n in set(own)]
    if not names:
        raise FaderError(f"{model}: none of its attributes ({', '.join(own)}) "
                         f"is one the judge reads ({', '.join(judge.attributes)})")
    return names


def load_model_copy(path) -> tuple:
    """(model, sha256 of its bytes) read from a copy of the model file in a temporary folder: a
    training run may replace the file (atomically) while a benchmark reads it. Errors name the
    user's path, never the copy's."""
    import hashlib
    import shutil
    import tempfile
    from core.model_file import load_model
    if not Path(path).is_file():
        raise FaderError(f"{path}: no such model file")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "model.fader"
        try:
            shutil.copyfile(path, copy)
        except OSError as e:
            raise FaderError(f"{path}: cannot read it ({e.strerror or e})") from None
        digest = hashlib.sha256(copy.read_bytes()).hexdigest()
        try:
            return load_model(copy), digest
        except FaderError as e:
            raise FaderError(str(e).replace(str(copy), str(path))) from None


def check_crops(folder, option: str, stems, *, overwrite: bool) -> None:
    """Refuse, before any work, a folder of crops that holds a file this run could write there
    (`STEM_....png` for one of the photos' `stems`) without `overwrite`, and a path that is no
    folder. Other files in it are no concern: the run never writes over them."""
    p = Path(folder)
    if (p.exists() or p.is_symlink()) and not p.is_dir():
        raise FaderError(f"{option} {folder}: it is not a folder")
    if overwrite or not p.is_dir():
        return
    stems = set(stems)
    for name in sorted(e.name for e in p.iterdir()):
        if name.lower().endswith(".png") and any(name[:i] in stems for i, c in enumerate(name) if c == "_"):
            raise FaderError(f"{option} {folder}: it holds crops of these photos already (such as {name}); "
                             "choose another folder, or give --overwrite to replace them")


def write_json(path, obj, *, overwrite: bool, option: str = "--json") -> None:
    """Write `obj` as indented JSON, atomically (never a half-written file); without `overwrite`, a
    file that appeared at `path` since check_output is left as it is (a one-line error)."""
    from core.atomic_write import write_bytes_atomic
    try:
        write_bytes_atomic(Path(path), (json.dumps(obj, indent=1) + "\n").encode(), replace=overwrite)
    except OSError as e:
        raise FaderError(f"{option} {path}: cannot write it ({e.strerror or e})") from None

