"""Atomic file replacement: write beside the target, check every byte landed, fsync, rename.

Every file the product writes (photos, model files, checkpoints, reports, recipes, previews,
animations) goes through here, so a crash, a kill or a full disk leaves either the old file or
the complete new one, never a torn file, and no temporary file behind. Callers translate the
OSError they get into their own message.

Writers get a file object without a file descriptor (`fileno()` is unsupported): encoders that
would otherwise write to the descriptor themselves (Pillow's JPEG/PNG/TIFF coders) go through
Python's `write`, which raises on a short or failed write instead of ignoring it, and the size
on disk is compared with what was written before the rename. The one exception is asked for by
name (`atomic_file(..., descriptor=True)`): a coder that checks each of its own writes (libtiff: a
short write fails the encode) may get the descriptor, so that it can encode with Python's lock
released (core.image_io's TIFF export).

Temporary names carry the writing process's id (`.NAME.<pid>-<12 hex>.part`): a run removes only
the temporary files of processes that no longer exist (`remove_stale_temps`), never those of
another run writing into the same folder.
"""
from __future__ import annotations

import errno
import io
import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Optional

# '.NAME.<pid>-<12 hex>.part' (+ the target's suffix when a writer needs it to choose the format);
# names without a pid were left by versions before temporary files had owners.
TEMP_NAME_RE = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[0-9a-f]{12}\.part(\.[A-Za-z0-9]+)?$")


def temp_path(path, keep_suffix: bool = False) -> Path:
    """A fresh hidden name beside `path` for its temporary file, owned by this process.

    `keep_suffix` appends the target's suffix, for writers (Pillow, ffmpeg) that pick the format
    from the file name.
    """
    p = Path(path)
    tail = f".{os.getpid()}-{secrets.token_hex(6)}.part" + (p.suffix if keep_suffix else "")
    return p.with_name("." + _fit_name(p.name, _NAME_MAX - 1 - len(os.fsencode(tail))) + tail)


# A file name's limit in bytes on Linux, macOS and Windows file systems; the temporary name adds
# about 26 bytes to its target's, so a long target name (a valid file name of 230-255 bytes) is
# shortened in it, or the write failed with "file name too long".
_NAME_MAX = 255


def _fit_name(name: str, limit: int) -> str:
    """``name`` cut (at a character boundary) to at most ``limit`` bytes in the file system's encoding."""
    while len(os.fsencode(name)) > limit:
        name = name[:-1]
    return name


def _temp_of(temp_name: str, wanted: set) -> bool:
    """Whether a temporary file's name part (TEMP_NAME_RE's "name") is that of one of ``wanted``,
    whole or as temp_path shortened it."""
    # only a name of over 200 bytes can have been shortened (the tail is under 40)
    return temp_name in wanted or any(len(os.fsencode(w)) > _NAME_MAX - 40 and w.startswith(temp_name)
                                      and len(os.fsencode(temp_name)) > _NAME_MAX - 56 for w in wanted)


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


# what a write that must not replace anything says when something appeared at its path meanwhile
APPEARED = "another file appeared there while this one was being written; it was left as it is"


def _publish(tmp: Path, path: Path, replace: bool = True) -> None:
    """Rename ``tmp`` to ``path``. ``replace=False``: only where nothing is at ``path`` at that
    very moment (a file, a link, a folder), checked by the file system itself, so that a file
    created after the caller's "does it exist?" check (another program, a second run writing into
    the same folder) is never replaced; raises FileExistsError (APPEARED) instead."""
    if replace:
        os.replace(tmp, path)
    elif os.name == "nt":
        try:
            os.rename(tmp, path)   # Windows' rename never replaces
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, APPEARED, str(path)) from None
    else:
        try:
            os.link(tmp, path)     # fails with EEXIST on anything there, a dangling link too
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, APPEARED, str(path)) from None
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK,
                               errno.EXDEV, errno.EACCES):
                raise
            # a file system without hard links (FAT, some network shares): checked, then renamed
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, APPEARED, str(path)) from None
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    fsync_dir(path.parent if str(path.parent) else ".")


def _incomplete(path: Path, written: int, on_disk: int) -> OSError:
    return OSError(errno.ENOSPC if on_disk < written else errno.EIO,
                   f"only {on_disk:,} of {written:,} bytes reached the disk (disk full?)", str(path))


class _CheckedWriter(io.BufferedIOBase):
    """A write-only view of a file that hides its descriptor (unless ``descriptor``) and remembers
    how far it wrote."""

    def __init__(self, f: BinaryIO, descriptor: bool = False):
        super().__init__()
        self._f = f
        self._descriptor = descriptor
        self.end = 0  # the furthest byte written (writers such as TIFF seek back to patch headers)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        n = self._f.write(data)
        if n is not None and n != size:
            raise OSError(errno.ENOSPC, "short write (disk full?)")
        self.end = max(self.end, self._f.tell())
        return size

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def flush(self) -> None:
        if not self._f.closed:
            self._f.flush()

    def fileno(self) -> int:
        if self._descriptor:   # asked for by a caller whose coder checks its own writes
            self._f.flush()
            return self._f.fileno()
        raise io.UnsupportedOperation("fileno")  # so that encoders call write(), which checks


@contextmanager
def atomic_file(path, replace: bool = True, descriptor: bool = False) -> Iterator[BinaryIO]:
    """Open a new temporary file beside `path` for binary writing; on a clean exit of the block
    it is flushed, checked to hold every byte written, fsync'ed and renamed over `path`. On any
    error (a failed or short write: disk full, quota, I/O) it is removed and the error re-raised,
    so `path` keeps its old contents or does not appear. `replace=False`: a file at `path` by then
    is left alone and FileExistsError raised (see `_publish`).

    `descriptor=True`: the file object's `fileno()` gives the descriptor (it raises otherwise), for
    a coder that writes to it itself and fails on a short write of its own (libtiff does; Pillow's
    JPEG and PNG coders ignore one, so never for them): what it writes there is not counted in the
    size check, which covers only what goes through `write()`.

    The file is created with O_EXCL and mode 0o666, so the umask decides its permissions as for
    any new file (mkstemp would force 0600 on an exported photo).
    """
    p = Path(path)
    tmp = temp_path(p)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            w = _CheckedWriter(f, descriptor)
            yield w
            f.flush()
            os.fsync(f.fileno())
            on_disk = os.fstat(f.fileno()).st_size
            if on_disk < w.end:
                raise _incomplete(p, w.end, on_disk)
        _publish(tmp, p, replace)
    except BaseException:
        _unlink_quietly(tmp)
        raise


@contextmanager
def atomic_path(path, keep_suffix: bool = False, replace: bool = True) -> Iterator[Path]:
    """Like `atomic_file`, for writers that need a file name (ffmpeg): yields the temporary path,
    which the block must create; it is fsync'ed and renamed over `path` when the block succeeds.
    Such writers report their own write errors (the block must raise on them); prefer
    `atomic_file`, which checks the bytes itself."""
    p = Path(path)
    tmp = temp_path(p, keep_suffix)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
            if os.fstat(f.fileno()).st_size == 0:
                raise OSError(errno.EIO, "the writer produced an empty file", str(p))
        _publish(tmp, p, replace)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_bytes_atomic(path, data: bytes, replace: bool = True) -> None:
    """Replace `path` with `data` atomically (see `atomic_file`)."""
    with atomic_file(path, replace) as f:
        f.write(data)


def copy_file_atomic(src, path, chunk: int = 1 << 20, replace: bool = True) -> None:
    """Replace `path` with a byte-for-byte copy of `src` atomically (see `atomic_file`)."""
    with open(src, "rb") as fin, atomic_file(path, replace) as f:
        for block in iter(lambda: fin.read(chunk), b""):
            f.write(block)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (True when that cannot be told)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. another user's process: alive
    return True


def remove_stale_temps(folder, names: Iterable[str] | None = None) -> int:
    """Delete temporary files in `folder` that killed writers left behind; returns how many.

    Only files whose owner process no longer runs (and those of older versions, whose names name
    no owner) are removed: another process writing into the same folder keeps its own. With
    `names`, only temporary files of those targets are considered.
    """
    wanted = set(names) if names is not None else None
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    removed = 0
    for e in entries:
        m = TEMP_NAME_RE.match(e.name)
        if not m or (wanted is not None and not _temp_of(m.group("name"), wanted)):
            continue
        pid = m.group("pid")
        if pid is not None and pid_alive(int(pid)):
            continue
        try:
            os.unlink(e.path)
            removed += 1
        except OSError:
            pass
    return removed


def same_file(a, b) -> bool:
    """Whether two paths name the same existing file (also through links)."""
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and (a.samefile(b) or a.resolve() == b.resolve())
    except (OSError, RuntimeError):
        return False


def unwritable_reason(path) -> Optional[str]:
    """Why a file could not be written at `path` in words ("it is a folder", "there is no folder
    X", "X is not a folder", "the folder X cannot be written"), None where it can: the commands
    that write at the end of their work ask it before they start (a traceback after minutes of it)."""
    p = Path(path)
    parent = p.parent
    if p.is_dir():
        return "it is a folder"
    if not parent.exists():
        return f"there is no folder {parent}"
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the folder {parent} cannot be written"
    return None


def check_writable(path, option: str, why: Optional[str] = None) -> None:
    """Refuse (FaderError "OPTION PATH: cannot write it (WHY)") a file a command is to write at the
    end of its work, before the work: `why` given, or unwritable_reason's."""
    from .errors import FaderError
    why = why or unwritable_reason(path)
    if why:
        raise FaderError(f"{option} {path}: cannot write it ({why})")
