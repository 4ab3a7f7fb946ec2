"""Atomic file replacement: write beside the target, fsync, rename over it.

Every file the product writes (photos, model files, checkpoints, reports, recipes, previews,
animations) goes through here, so a crash, a kill or a full disk leaves either the old file or
the complete new one, never a torn file, and no temporary file behind. Callers translate the
OSError they get into their own message.
"""
from __future__ import annotations

import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

# '.NAME.<12 hex>.part' (+ the target's suffix when a writer needs it to choose the format)
TEMP_NAME_RE = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.part(\.[A-Za-z0-9]+)?$")


def temp_path(path, keep_suffix: bool = False) -> Path:
    """A fresh hidden name beside `path` for its temporary file.

    `keep_suffix` appends the target's suffix, for writers (Pillow, ffmpeg) that pick the format
    from the file name.
    """
    p = Path(path)
    return p.with_name(f".{p.name}.{secrets.token_hex(6)}.part" + (p.suffix if keep_suffix else ""))


def fsync_dir(folder) -> None:
    """Flush a folder's entry table so a rename survives a power cut (best effort)."""
    try:
        fd = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _publish(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    fsync_dir(path.parent if str(path.parent) else ".")


@contextmanager
def atomic_file(path) -> Iterator[BinaryIO]:
    """Open a new temporary file beside `path` for binary writing; on a clean exit of the block
    it is fsync'ed and renamed over `path`. On any error it is removed and the error re-raised.

    The file is created with O_EXCL and mode 0o666, so the umask decides its permissions as for
    any new file (mkstemp would force 0600 on an exported photo).
    """
    p = Path(path)
    tmp = temp_path(p)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, p)
    except BaseException:
        _unlink_quietly(tmp)
        raise


@contextmanager
def atomic_path(path, keep_suffix: bool = False) -> Iterator[Path]:
    """Like `atomic_file`, for writers that need a file name: yields the temporary path, which
    the block must create; it is fsync'ed and renamed over `path` when the block succeeds."""
    p = Path(path)
    tmp = temp_path(p, keep_suffix)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _publish(tmp, p)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_bytes_atomic(path, data: bytes) -> None:
    """Replace `path` with `data` atomically (see `atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data)
