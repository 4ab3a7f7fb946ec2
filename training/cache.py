"""Preprocessing cache: every training crop once, as a uint8 memory-mapped (N, S, S, 3) array.

A 200k-image dataset at 256 px is 39 GB as float32 (the reference loads it all into RAM); as a
uint8 memmap it is 39 GB on disk and only the pages being read are in memory. The cache folder is
keyed by the file list (path, size, mtime), the crop size, the alignment mode and what else decides
the crops (crop_fingerprint: the face detector's weights and code, the alignment template and
code), so a second run on the same data opens it instantly, and a new detector or alignment makes
new crops. Labels are not part of the key (they come from the dataset), so one cache serves any
choice of attributes.

Each folder also records every image's signature (file size, mtime, a hash of its bytes) and what
became of it (a crop, or the reason it was skipped), in `rows.npy` and `reasons.json`. A new
folder (the data changed) takes the crops and skips of unchanged images from the earlier folders
of the same settings (crop fingerprint included), found by path and signature, else by content (a
copied or moved folder), and preprocesses only the rest. A build is written in place in
`.KEY.partial`: stopped, it keeps what it finished and the next build of the same key goes on from
there (or reuses it like a folder).

Folders are shared between processes through a `lock` file in each: a process reading a cache
holds a shared flock on it for as long as it uses the cache (the lock lives with the memmap), a
builder or a remover holds it exclusively. A stopped build whose crops another build takes is held
exclusively by that build only while it reads its rows and copies crops (_Source.held), so that
a run continuing it does not wait for the other build to end. A folder is removed, when no process uses it, once it
is unused for MAX_IDLE_DAYS or superseded: a newer folder of the same settings shares images with
it and holds every image of it that is still on disk unchanged (the old version of a folder that
gained, lost or changed images; a subset's cache does not supersede the whole set's).
"""
from __future__ import annotations

import errno
try:
    import fcntl
except ImportError:   # Windows: no flock; caches are then neither waited for nor removed while unsure
    fcntl = None
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.attributes import counted, quoted
from core.errors import FaderError

from .datasets import hash_file, load_training_crop, read_file_bytes
from .progress import progress_bar

CACHE_VERSION = 3  # 2: transparency over white, images over 100 MP skipped; 3: the limit is 210 MP
LAYOUT = 2         # 2: rows.npy and reasons.json (what a later build reuses), a lock file
CHUNK = 256
# A cache folder nobody opened for this long is removed (a 10k-image folder at 128 px is 0.5 GB;
# rebuilding it, mostly from the crops of another folder, is the cost of a wrong guess).
MAX_IDLE_DAYS = 30
LOCK = "lock"

# One row per image: its file's signature when it was preprocessed and what became of it.
ROW = np.dtype([("size", "<i8"), ("mtime", "<i8"), ("hash", "S16"), ("state", "i1"), ("reason", "<i2")])
TODO, CROP, SKIP = 0, 1, 2

_FINAL = re.compile(r"^[0-9a-f]{24}$")
_PARTIAL = re.compile(r"^\.([0-9a-f]{24})\.partial$")
_OLD_PARTIAL = re.compile(r"^\.([0-9a-f]{24})\.(\d+)\.partial$")   # an earlier version's, per process
# where there is no flock (Windows), each build in a folder of its own (_claim_own)
_OWN_PARTIAL = re.compile(r"^\.([0-9a-f]{24})\.p(\d+)\.partial$")
# what _remove_locked and _remove_dead_partials rename a folder to before removing it: .deleting.NAME.MYPID
# of a final (KEY), shared (.KEY.partial), own (.KEY.pPID.partial) or earlier per-process (.KEY.PID.partial) one
_DELETING = re.compile(r"^\.deleting\.[0-9a-f]{24}(\.p?\d+)?(\.partial)?\.\d+$")


def default_cache_dir() -> Path:
    """$FADER_CACHE_DIR, else ~/.cache/fader-desktop/training."""
    env = os.environ.get("FADER_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fader-desktop" / "training"


@dataclass
class ImageCache:
    """An opened cache: `images` (memmap, N x S x S x 3 uint8) and `valid` (N bools) in item order.
    `reasons`: why each skipped image was skipped (None for a folder of an earlier version, which
    kept counts only); `n_reused`: images this build did not preprocess (taken from earlier
    folders or from the interrupted build it continued)."""

    path: Path
    key: str
    images: np.ndarray
    valid: np.ndarray
    skipped: dict
    size: int
    reused: bool
    reasons: Optional[dict] = None
    n_reused: int = 0
    _lock: object = None

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())


def _signatures(paths) -> tuple:
    """(sizes, mtimes in ns) of the files (-1, 0 for a missing one); a pack's members share the
    pack file's signature."""
    from .packfile import member_file
    sizes = np.full(len(paths), -1, np.int64)
    mtimes = np.zeros(len(paths), np.int64)
    seen: dict = {}
    for i, p in enumerate(paths):
        f = member_file(p)
        st = seen.get(f)
        if st is None:
            try:
                st = os.stat(f)
            except OSError:
                st = False
            if f != p:
                seen[f] = st
        if st:
            sizes[i], mtimes[i] = st.st_size, st.st_mtime_ns
    return sizes, mtimes


def _code_digest(source: str) -> str:
    """SHA-1 of Python source without its blank and comment lines (a reworded comment does not make
    every --align cache be preprocessed again; tokenizing, which would also leave out comments
    after code, took 0.25 s for core/faces.py)."""
    h = hashlib.sha1()
    for line in source.splitlines():
        line = line.rstrip()
        if line and not line.lstrip().startswith("#"):
            h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()[:16]


@lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int, source: bool) -> str:
    """SHA-1 of a file (`source`: of its Python tokens, _code_digest); the signature keys the memo."""
    try:
        if source:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                return _code_digest(f.read())
        with open(path, "rb") as f:
            return hash_file(f).hexdigest()[:16]
    except OSError:
        return "unreadable"


def _digest_of(path, source: bool = False) -> str:
    try:
        st = os.stat(path)
    except (OSError, TypeError):
        return "missing"
    return _file_digest(str(path), st.st_size, st.st_mtime_ns, source)


def _app_version() -> str:
    try:
        from importlib.metadata import version
        return version("fader-desktop")
    except Exception:   # not installed (a source checkout) or no metadata in the bundle
        return "development"


def _code_digest_of(code) -> str:
    """SHA-1 of a code object, wherever its file lies (its name is left out). marshal version 2
    writes no back-references, whose use depends on reference counts: the same code gives the same
    bytes in every process."""
    import marshal
    import types

    def placeless(c):
        return c.replace(co_filename="", co_consts=tuple(placeless(k) if isinstance(k, types.CodeType) else k
                                                         for k in c.co_consts))
    return "code " + hashlib.sha1(marshal.dumps(placeless(code), 2)).hexdigest()[:16]


@lru_cache(maxsize=8)
def _compiled_module_digest(module) -> str:
    """Digest of a module whose source file is absent (in a PyInstaller bundle __file__ names a .py
    that is not on disk: the code is in the bundle's archive): of its code object as its loader
    gives it, else of the app's version."""
    try:
        code = module.__loader__.get_code(module.__name__)
        if code is not None:
            return _code_digest_of(code)
    except Exception:   # a loader without get_code, or one that fails: the version still follows the app
        pass
    return "version " + _app_version()


def _module_digest(module) -> str:
    """_code_digest of a module's source file (its compiled file's bytes where there is no source;
    its code object where there is no file: _compiled_module_digest)."""
    path = getattr(module, "__file__", None) or ""
    if not os.path.isfile(path):
        return _compiled_module_digest(module)
    return _digest_of(path, source=path.endswith(".py"))


def _function_digest(fn) -> str:
    """_code_digest of one function's source (its code object's digest where there is no source
    file)."""
    import inspect
    module = inspect.getmodule(fn)
    path = getattr(module, "__file__", None) or ""
    try:
        st = os.stat(path)
    except OSError:
        code = getattr(fn, "__code__", None)
        return _code_digest_of(code) if code is not None else _module_digest(module)
    return _source_digest(fn, path, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _source_digest(fn, path: str, size: int, mtime_ns: int) -> str:
    import inspect
    try:
        return _code_digest(inspect.getsource(fn))
    except (OSError, TypeError):
        return _digest_of(path)


def crop_fingerprint(align: bool) -> str:
    """What decides the crops besides the files and the size, held in core/ (so this module's
    CACHE_VERSION does not follow it): the CelebA template and the alignment code and, with
    --align, the face detector's code and weights files (those beside faces.DEFAULT_WEIGHTS). Part
    of the cache key and of each folder's record, so that neither a cache nor crops reused from
    another outlive a change of the detector or the alignment. Files are hashed once per process
    (about 20 ms for the detector's 2 MB and two modules), then only looked at (stat)."""
    try:
        from core import alignment
    except ImportError:   # a build without it crops CelebA-framed images with datasets.celeba_crop
        return "no-alignment"
    t = alignment.CELEBA_TEMPLATE
    parts: dict = {"template": [list(t.frame), list(t.crop_box)]}
    if align:
        from core import faces
        weights = Path(faces.DEFAULT_WEIGHTS)
        parts["template"].append(np.asarray(t.landmarks, np.float64).round(4).tolist())
        parts["code"] = [_module_digest(alignment), _module_digest(faces)]
        try:
            names = sorted(f.name for f in weights.parent.iterdir()
                           if f.is_file() and not f.name.upper().startswith(("LICENSE", "README", "NOTICE"))
                           and f.suffix.lower() not in (".md", ".txt"))
        except OSError:
            names = []
        parts["weights"] = {n: _digest_of(weights.parent / n) for n in sorted(set(names) | {weights.name})}
    else:   # a crop is core.alignment.aligned_crop's cut of a CelebA-framed image, or a plain resize
        parts["code"] = [_function_digest(alignment.aligned_crop)]
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cache_key(paths, size: int, align: bool, signatures=None) -> str:
    """Hash of (file list with sizes and mtimes, crop size, alignment mode, cache format, what decides
    the crops: crop_fingerprint)."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "size": size, "align": bool(align),
                         "crops": crop_fingerprint(align)}).encode())
    sizes, mtimes = signatures if signatures is not None else _signatures(paths)
    for p, s, m in zip(paths, sizes.tolist(), mtimes.tolist()):
        sig = f"{p}\0missing\n" if s < 0 else f"{p}\0{s}\0{m}\n"
        h.update(sig.encode("utf-8", "surrogateescape"))  # a non-UTF-8 file name as its bytes
    return h.hexdigest()[:24]


def _crop_one(args):
    path, size, align = args[:3]
    try:
        crop, reason = load_training_crop(path, size, align, *args[3:])
    except Exception as e:  # a broken file must never stop a long preprocessing run
        return None, f"error: {type(e).__name__}"
    return crop, reason


def _digest(data: np.ndarray) -> bytes:
    """16 bytes of the SHA-1 of a file's bytes (about 1 GB/s: 5 ms for a 5 MB photo), as stored in
    an S16 field (which drops trailing zero bytes)."""
    return hashlib.sha1(memoryview(data)).digest()[:16].rstrip(b"\0")


def _work(path: str, size: int, align: bool, by_content: dict, gone=()) -> tuple:
    """(hash, crop, skip reason, (source, row) holding the same file's outcome, or None); a
    source in `gone` is not named."""
    from .packfile import split_member
    if split_member(path) is not None:   # read from its pack, which the signature covers
        return (b"", *_crop_one((path, size, align)), None)
    data = read_file_bytes(path)
    digest = _digest(data) if data.size else b""
    if digest:
        hit = by_content.get((int(data.size), digest))
        if hit is not None and hit[0] not in gone:
            return digest, None, None, hit
    return (digest, *_crop_one((path, size, align, data)), None)


class _Lock:
    """flock on a cache folder's lock file: shared by the processes that read the cache, exclusive
    for the one that builds it or removes it. The kernel drops it when the process ends."""

    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path

    @staticmethod
    def open(folder: Path, must: bool = False) -> Optional["_Lock"]:
        path = folder / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            try:
                fd = os.open(path, os.O_RDONLY)   # a cache folder we may read but not write
            except OSError:
                if must and folder.is_dir():
                    raise
                return None
        return _Lock(fd, path)

    def take(self, exclusive: bool, wait: bool, unsure: bool) -> bool:
        """Whether the lock is held now; `unsure`: the answer where the file system has no flock."""
        if fcntl is None:
            return unsure
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            return False
        except OSError:
            return unsure

    def still_at(self, path: Path) -> bool:
        """Whether the locked file is still `path` (not a removed or renamed folder's)."""
        try:
            a, b = os.stat(path), os.fstat(self.fd)
        except OSError:
            return False
        return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)

    def mark(self, holder: bool = False) -> None:
        """Record a use now (the file's mtime) and, for a builder, who holds it."""
        try:
            if holder:
                os.ftruncate(self.fd, 0)
                os.lseek(self.fd, 0, os.SEEK_SET)
                os.write(self.fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            os.utime(self.path)   # by name: Windows sets no times through a descriptor
        except OSError:
            pass   # a folder we may only read: the use goes unrecorded

    def holder(self) -> str:
        try:
            os.lseek(self.fd, 0, os.SEEK_SET)
            return os.read(self.fd, 200).decode(errors="replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        """Let the flock go, keeping the file open (to take it again)."""
        if fcntl is not None and self.fd >= 0:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            except OSError:
                pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)   # closing drops the flock
            self.fd = -1

    def __del__(self):
        self.close()


def build_progress(cache_dir) -> Optional[tuple]:
    """(images done, images) of a build under way, or stopped, in `cache_dir`; None: none there."""
    for d in Path(cache_dir).glob(".*.partial"):
        try:
            rows = np.load(d / "rows.npy", mmap_mode="r")
            return int((rows["state"] != 0).sum()), len(rows)
        except (OSError, ValueError):
            pass
    return None


def _hold(cache: ImageCache, lock: Optional[_Lock]) -> ImageCache:
    """Keep the folder's shared lock for as long as the cache or its memmap (or a view) lives."""
    if lock is not None:
        lock.mark()
        cache._lock = lock
        try:
            cache.images._fader_cache_lock = lock
        except AttributeError:   # an empty cache is not a memmap
            pass
    return cache


def open_cache(paths, size: int, align: bool = False, cache_dir=None, workers: Optional[int] = None,
               progress: bool = True, log: Optional[Callable[[str], None]] = None) -> ImageCache:
    """Open the cache for these files, building it first if needed (threads; cv2 releases the GIL)
    from what earlier builds made; `log` is told what was reused. Then remove the folders that are
    unused for long or superseded."""
    paths = [str(p) for p in paths]
    signatures = _signatures(paths)
    key = cache_key(paths, size, align, signatures)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / key
    say = log or (lambda s: None)
    used: set = set()
    for _ in range(5):   # another process may finish, or remove, the folder in between
        cache = _open_final(folder, key, size)
        if cache is not None:
            break
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FaderError(f"{root}: cannot create the preprocessing cache folder ({e.strerror or e})") from None
        _remove_dead_partials(root)
        cache = _build(root, key, paths, signatures, size, align, workers, progress, say, used)
        if cache is not None:
            break
    else:
        raise FaderError(f"{folder}: the preprocessing cache could not be opened (other processes kept changing "
                         "it); try again")
    try:
        _tidy(root, cache, paths, size, align, used)
    except OSError:
        pass   # tidying is a courtesy: a folder that cannot be read now is looked at next time
    return cache


def _open_final(folder: Path, key: str, size: int) -> Optional[ImageCache]:
    """The finished cache, holding its lock shared; None where there is none (or it was damaged and
    is removed)."""
    if not (folder / "manifest.json").is_file():
        return None
    lock = _Lock.open(folder)
    if lock is not None:
        lock.take(False, wait=True, unsure=True)   # exclusive only while renamed away or renamed in
        if not lock.still_at(folder / LOCK):
            lock.close()
            return None
    try:
        return _hold(_open(folder, key, size, reused=True), lock)
    except (OSError, ValueError, KeyError, TypeError):
        if lock is not None:
            lock.close()
        if not _remove(folder):   # damaged: built again
            raise FaderError(f"{folder}: the preprocessing cache there is damaged and cannot be removed (in use by "
                             "another process, or read-only): remove the folder, or give --cache-dir") from None
        return None


def _open(folder: Path, key: str, size: int, reused: bool) -> ImageCache:
    with open(folder / "manifest.json") as f:
        info = json.load(f)
    if info.get("version") != CACHE_VERSION or info.get("key") != key or info.get("size") != size:
        raise ValueError("stale cache")
    images = np.load(folder / "images.npy", mmap_mode="r")
    valid = np.load(folder / "valid.npy")
    if images.shape != (info["n"], size, size, 3) or valid.shape != (info["n"],):
        raise ValueError("cache shape mismatch")
    reasons = None
    if info.get("layout", 1) >= LAYOUT:
        rows = np.load(folder / "rows.npy", mmap_mode="r")
        names = _read_reasons(folder)
        if rows.shape != valid.shape or rows.dtype != ROW:
            raise ValueError("cache rows mismatch")
        skipped_rows = np.flatnonzero(~valid)
        reasons = {int(i): names[k] if 0 <= k < len(names) else "skipped"
                   for i, k in zip(skipped_rows.tolist(), rows["reason"][skipped_rows].tolist())}
    return ImageCache(folder, key, images, valid, dict(info.get("skipped", {})), size, reused, reasons,
                      int(info.get("reused", 0)) if not reused else 0)


def _read_reasons(folder: Path) -> list:
    with open(folder / "reasons.json", encoding="utf-8") as f:
        names = json.load(f)
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise ValueError("cache reasons")
    return names


def _write_json(path: Path, obj) -> None:
    """Atomically (a half-written reasons.json would lose a build's skips), synced."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _claim(partial: Path, final: Path, say) -> Optional[_Lock]:
    """The exclusive lock of the build folder `partial`, new or left by a stopped build; None once
    another process has finished the cache. While another process builds it, wait for it."""
    told = created = False
    tries = 0
    try:
        while True:
            if (final / "manifest.json").is_file():
                return None
            # None until mkdir answers: a signal handled as it returns (before `created` is set) left
            # the folder made here behind, and 'nothing was saved' stood beside it
            created = None
            try:
                partial.mkdir()
                created = True
            except FileExistsError:
                created = False
            lock = _Lock.open(partial, must=True)
            if lock is None:   # removed in between
                continue
            if lock.take(True, wait=False, unsure=True):
                if lock.still_at(partial / LOCK):
                    lock.mark(holder=True)
                    return lock
                lock.close()
                continue
            created = False   # another process's now
            if tries < 6:   # or a build copying crops out of it, for a moment (_Source.held): not said
                tries += 1
                lock.close()
                time.sleep(0.05)
                continue
            if not told:
                who = lock.holder()
                say(f"waiting for another process{f' ({who})' if who else ''} that is preprocessing the same images")
                told = True
            lock.close()
            time.sleep(0.5)
    except BaseException:
        # Stopped (Ctrl-C, SIGTERM) before the folder made here held anything: not left behind. Stopped
        # around the mkdir, the folder is removed if empty: empty, it holds nothing, whoever made it (a
        # process that made it a moment ago finds it gone and makes it again).
        leftovers = ((partial / LOCK, os.unlink), (partial, os.rmdir)) if created else \
            ((partial, os.rmdir),) if created is None else ()
        for leftover, remove in leftovers:
            try:
                remove(leftover)
            except OSError:
                pass
        raise


def _claim_own(root: Path, key: str, final: Path) -> Optional[tuple]:
    """(lock, build folder) where there is no flock (Windows), so that two processes building the
    same images do not write into one folder (each wiped or renamed it under the other: one of them
    failed, "cannot write the preprocessing cache"): the build's own `.KEY.p<PID>.partial`, a stopped
    build of the key taken over where there is one (renamed to it: Windows renames no folder that a
    running build has a file open in, so a build under way is never taken), else new. Concurrent
    builds of the same images both preprocess them; the one that finishes second removes its own
    folder and opens the other's cache. None: the cache is finished."""
    if (final / "manifest.json").is_file():
        return None
    mine = root / f".{key}.p{os.getpid()}.partial"
    if not mine.is_dir():
        for name in sorted(os.listdir(root)):
            m = _PARTIAL.match(name) or _OWN_PARTIAL.match(name)
            if m is None or m.group(1) != key or m.re is _OWN_PARTIAL and _known_alive(int(m.group(2))):
                continue
            try:
                os.rename(root / name, mine)
                break
            except OSError:
                continue   # in use by its build (or taken over by another process first)
    mine.mkdir(exist_ok=True)
    lock = _Lock.open(mine, must=True)
    lock.mark(holder=True)
    return lock, mine


def _known_alive(pid: int) -> bool:
    """Whether process `pid` is known to run: by os.kill(pid, 0) on POSIX. On Windows never (signal 0
    is CTRL_C_EVENT there: os.kill would interrupt a process group); a rename of its folder, which
    Windows refuses while it has a file open inside, tells there."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, OverflowError):
        return True   # another user's, or not ours to judge
    return True


def _build_info(key: str, n: int, size: int, align: bool) -> dict:
    """What a build folder's build.json records: a stopped build of the same is continued."""
    return {"version": CACHE_VERSION, "layout": LAYOUT, "key": key, "n": n, "size": size, "align": bool(align),
            "crops": crop_fingerprint(align)}


def _stopped_build(partial: Path, info: dict, mode: str = "r+") -> Optional[tuple]:
    """(images, rows) memmaps of the stopped build of `info` in the build folder; None: none there,
    or not whole."""
    n, size = info["n"], info["size"]
    try:
        with open(partial / "build.json") as f:
            if json.load(f) != info:
                return None
        images = np.load(partial / "images.npy", mmap_mode=mode)
        rows = np.load(partial / "rows.npy", mmap_mode=mode)
        _read_reasons(partial)
    except (OSError, ValueError, TypeError):
        return None
    if images.shape == (n, size, size, 3) and rows.shape == (n,) and rows.dtype == ROW:
        return images, rows
    return None


def _prepare(partial: Path, key: str, paths: list, signatures, size: int, align: bool) -> tuple:
    """(images, rows) memmaps of the build folder, as a stopped build left them when it built the
    same key, else new: every row to do."""
    n = len(paths)
    info = _build_info(key, n, size, align)
    stopped = _stopped_build(partial, info)
    if stopped is not None:
        return stopped
    for x in partial.iterdir():   # a build of another state of the same key, or half made
        if x.name != LOCK:
            shutil.rmtree(x) if x.is_dir() and not x.is_symlink() else x.unlink()
    with open(partial / "files.txt", "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(paths))
    images = np.lib.format.open_memmap(partial / "images.npy", mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    _reserve(partial / "images.npy")
    rows = np.lib.format.open_memmap(partial / "rows.npy", mode="w+", dtype=ROW, shape=(n,))
    _reserve(partial / "rows.npy")
    rows["size"], rows["mtime"], rows["reason"] = signatures[0], signatures[1], -1
    rows.flush()
    _write_json(partial / "reasons.json", [])
    _write_json(partial / "build.json", info)   # last: the folder is complete once it is there
    return images, rows


def _passing(reason: str) -> bool:
    """Whether a skip's reason may not last: an exception while preprocessing (out of memory), or
    a file that could not be read then (permissions, an I/O error); a file that is no image stays."""
    low = reason.lower()
    return reason.startswith("error:") or any(w in low for w in ("permission", "i/o error", "input/output error"))


@dataclass
class _Source:
    """An earlier folder of the same settings whose crops a build takes. A finished folder is held
    shared for the whole build, as any reader holds it. A stopped build (`partial`) is held
    exclusively only while it is looked at and while crops are copied from it (`held`), so that a
    run that wants to continue it is not kept waiting for the whole of this build; its rows are
    read once, under that lock: a build never rewrites a row it has done, so what is copied later
    is what was looked at, as long as the folder is still there unchanged (a removal or a fresh
    start takes the same exclusive lock, and replaces the files)."""
    folder: Path
    lock: _Lock
    paths: list
    rows: np.ndarray
    images: np.ndarray
    reasons: list
    partial: bool = False
    files: tuple = ()    # (inode, device) of rows.npy and images.npy as they were read (partial)
    gone: bool = False   # a partial that could not be held again: nothing more is taken from it

    def lasting(self) -> np.ndarray:
        """The rows whose outcome a later build takes: done, but for skips whose reason may not
        last (out of memory, permissions since fixed, a read error of a network share), which are
        tried again rather than carried into every later cache."""
        passing = [k for k, why in enumerate(self.reasons) if _passing(str(why))]
        return (self.rows["state"] != TODO) & ~((self.rows["state"] == SKIP) & np.isin(self.rows["reason"], passing))

    @contextmanager
    def held(self):
        """Whether its crops may be read now: for a stopped build, its exclusive lock taken again
        (a few short tries: another process may be copying from it too) with the folder and its
        files still those read; released after."""
        if not self.partial:
            yield True
            return
        ok = False
        if not self.gone:
            if _take_soon(self.lock):
                ok = self.lock.still_at(self.folder / LOCK) and _file_ids(self.folder) == self.files
                if not ok:
                    self.lock.release()
            self.gone = not ok
        try:
            yield ok
        finally:
            if ok:
                self.lock.release()


def _take_soon(lock: _Lock) -> bool:
    """The exclusive lock of a stopped build, in a few short tries (0.15 s in all): another build
    may be copying crops out of it for a moment. Never where there is no flock (Windows)."""
    for k in range(5 if fcntl is not None else 0):
        if lock.take(True, wait=False, unsure=False):
            return True
        time.sleep(0.01 * (k + 1))
    return False


def _file_ids(folder: Path) -> tuple:
    try:
        return tuple((st.st_ino, st.st_dev) for st in (os.stat(folder / x) for x in ("rows.npy", "images.npy")))
    except OSError:
        return ()


def _sources(root: Path, key: str, size: int, align: bool) -> list:
    """The finished folders and stopped builds of the same settings, but `key`'s, that record their
    rows and whose crops the same detector and alignment made (crop_fingerprint); a stopped build
    that another process continues is left alone."""
    found = []
    crops = crop_fingerprint(align)
    for name in sorted(os.listdir(root)):
        m = _PARTIAL.match(name)
        if m is None and not _FINAL.match(name) or name == key or (m and m.group(1) == key):
            continue
        folder = root / name
        try:
            with open(folder / ("build.json" if m else "manifest.json")) as f:
                info = json.load(f)
        except (OSError, ValueError):
            continue
        # crops of another detector or alignment (or of a version that did not record them) are not taken
        settings = (info.get("version"), info.get("layout", 1), info.get("size"), info.get("align"), info.get("crops")) \
            if isinstance(info, dict) else None
        if settings != (CACHE_VERSION, LAYOUT, size, bool(align), crops):
            continue
        lock = _Lock.open(folder)
        if lock is None or not (_take_soon(lock) if m else lock.take(False, wait=False, unsure=True)):
            if lock is not None:
                lock.close()
            continue
        try:
            if not lock.still_at(folder / LOCK):
                raise OSError("moved")
            files = _file_ids(folder) if m else ()
            paths = (folder / "files.txt").read_bytes().decode("utf-8", "surrogateescape").split("\n")
            rows = np.load(folder / "rows.npy", mmap_mode="r")
            images = np.load(folder / "images.npy", mmap_mode="r")
            reasons = _read_reasons(folder)
            n = int(info.get("n", -1))
            if len(paths) != n or rows.shape != (n,) or rows.dtype != ROW or images.shape != (n, size, size, 3):
                raise ValueError("mismatch")
            if m:   # read now, under the lock; let go until crops are copied (_Source.held)
                rows = np.array(rows)
                if _file_ids(folder) != files or not files:
                    raise OSError("replaced")
                lock.release()
        except (OSError, ValueError):
            lock.close()
            continue
        found.append(_Source(folder, lock, paths if n else [], rows, images, reasons, bool(m), files))
    return found


def _build(root: Path, key: str, paths: list, signatures, size: int, align: bool, workers, progress: bool,
           say, used: set) -> Optional[ImageCache]:
    """Build the cache in `.KEY.partial` from the rows a stopped build finished, the crops of
    earlier folders and the images preprocessed now; rename it to KEY. None: another process
    finished it meanwhile. `used`: the names of the folders crops were taken from."""
    n = len(paths)
    partial, final = root / f".{key}.partial", root / key
    sizes, mtimes = signatures
    lock = None
    images = rows = None
    sources: list = []
    try:
        if fcntl is None:
            lock, partial = _claim_own(root, key, final) or (None, partial)
        else:
            lock = _claim(partial, final, say)
        if lock is None:
            return None
        t0 = time.time()
        images, rows = _prepare(partial, key, paths, signatures, size, align)
        reasons = _read_reasons(partial)
        index = {r: i for i, r in enumerate(reasons)}

        def reason_index(text: str) -> int:
            if text not in index:   # saved before a row names it
                index[text] = len(reasons)
                reasons.append(text)
                _write_json(partial / "reasons.json", reasons)
            return index[text]

        todo = np.flatnonzero(rows["state"] == TODO)
        resumed = n - len(todo)
        if resumed:
            say(f"continuing the preprocessing that was stopped: {resumed} of {n} images were done")
        sources = _sources(root, key, size, align) if len(todo) else []

        def copy(dst: np.ndarray, s: _Source, src: np.ndarray, digests=None) -> None:
            """Rows dst take rows src of source s: the crop first, then the row that says it is done."""
            remap = np.array([reason_index(x) for x in s.reasons] + [-1], np.int16)
            for c in range(0, len(dst), CHUNK):
                d, r = dst[c:c + CHUNK], src[c:c + CHUNK]
                images[d] = s.images[r]
                got = s.rows[r]
                part = np.empty(len(d), ROW)
                part["size"], part["mtime"] = sizes[d], mtimes[d]
                part["hash"] = got["hash"] if digests is None else digests
                part["state"], part["reason"] = got["state"], remap[got["reason"]]
                rows[d] = part
            used.add(s.folder.name)

        # Unchanged files (same path, size and mtime) take what an earlier folder made of them.
        want = {paths[i]: i for i in todo.tolist() if sizes[i] >= 0}
        by_path = 0
        for s in sources:
            done = s.lasting()
            s_sizes, s_mtimes = s.rows["size"].tolist(), s.rows["mtime"].tolist()
            dst, src = [], []
            for r, p in enumerate(s.paths):
                i = want.get(p)
                if i is not None and done[r] and s_sizes[r] == sizes[i] and s_mtimes[r] == mtimes[i]:
                    dst.append(i)
                    src.append(r)
            if dst:
                with s.held() as ok:
                    if ok:
                        copy(np.array(dst), s, np.array(src))
                        by_path += len(dst)
                        for r in src:
                            want.pop(s.paths[r], None)
        if by_path:
            say(f"reused the preprocessing of {by_path} of {n} images (unchanged files) from earlier caches")
        rest = np.flatnonzero(rows["state"] == TODO)
        # The others are read, and those whose bytes an earlier folder has seen (a copied or moved
        # file) take its outcome too; only the rest is preprocessed.
        by_content: dict = {}
        if len(rest):
            for k, s in enumerate(sources):
                if s.gone:
                    continue
                ok = np.flatnonzero(s.lasting() & (s.rows["hash"] != b""))
                for r, sz, h in zip(ok.tolist(), s.rows["size"][ok].tolist(), s.rows["hash"][ok].tolist()):
                    by_content.setdefault((sz, h), (k, r))
        from core.engine import usable_cores
        workers = max(1, workers or usable_cores())
        bar = progress_bar(n, f"preprocessing {size}px", "img", initial=n - len(rest)) if progress else None
        by_hash = 0

        gone: set = set()   # stopped builds not there to copy from any more (removed, or continued elsewhere)

        def take(i: int, digest: bytes, crop, reason, hit) -> None:
            nonlocal by_hash
            if hit is not None:
                with sources[hit[0]].held() as ok:
                    if ok:
                        copy(np.array([i]), sources[hit[0]], np.array([hit[1]]), digests=[digest])
                        by_hash += 1
                        return
                gone.add(hit[0])
                crop, reason = _crop_one((paths[i], size, align))
            if crop is None:
                rows[i] = (sizes[i], mtimes[i], digest, SKIP, reason_index(reason or "skipped"))
            else:
                images[i] = crop
                rows[i] = (sizes[i], mtimes[i], digest, CROP, -1)

        try:
            with _stops_deferred() as stops, ThreadPoolExecutor(workers) as pool:
                # A window of work in flight bounds the memory (crops outside the memmap) and what a
                # stop waits for: the images being read now, not a whole chunk.
                pending: deque = deque()

                def take_next() -> None:
                    j, f = pending.popleft()
                    while True:
                        try:
                            result = f.result(timeout=0.05)
                            break
                        except FutureTimeout:
                            stops.check()
                    take(j, *result)
                    if bar is not None:
                        bar.update(1)
                    stops.check()

                try:
                    for i in rest.tolist():
                        pending.append((i, pool.submit(_work, paths[i], size, align, by_content, gone)))
                        if len(pending) >= 4 * workers:
                            take_next()
                    while pending:
                        take_next()
                except BaseException:
                    for _, f in pending:
                        f.cancel()
                    raise
        finally:
            # on a stop too: its line is the count reached (the window showed "0 of 200 images" after
            # a stop with 79 done)
            if bar is not None:
                bar.close()
        n_reused = resumed + by_path + by_hash
        if by_hash:
            say(f"reused the preprocessing of {counted(by_hash, ('more ' if by_path else '') + 'image')} found by their content "
                "(copied or moved files)")
        images.flush()
        rows.flush()
        valid = rows["state"] == CROP
        np.save(partial / "valid.npy", valid)
        skipped = Counter(reasons[k] if k >= 0 else "skipped" for k in rows["reason"][~valid].tolist())
        info = {"version": CACHE_VERSION, "layout": LAYOUT, "key": key, "n": n, "size": size, "align": bool(align),
                "crops": crop_fingerprint(align), "n_valid": int(valid.sum()), "skipped": dict(skipped),
                "seconds": round(time.time() - t0, 1), "reused": n_reused, "first": paths[0] if paths else None}
        _write_json(partial / "manifest.json", info)
        del images, rows
        images = rows = None
        if fcntl is None:   # Windows renames no folder with a file open inside it (there is no flock to keep)
            lock.close()
        try:
            os.rename(partial, final)
            if fcntl is None:
                lock = _Lock.open(final) or lock
        except OSError:
            if not (final / "manifest.json").is_file():
                raise
            _remove_locked(partial, lock)   # another process (an earlier version) finished the same cache first
            return None
        cache = _open(final, key, size, reused=False)   # mapped before the lock is let down to shared
        lock.take(False, wait=True, unsure=True)   # from now on a reader of it, like the others
        _hold(cache, lock)
        lock = None
        return cache
    except BaseException as e:
        done = 0
        if rows is not None:
            done = int((rows["state"] != TODO).sum())
            try:
                images.flush()
                rows.flush()
            except (OSError, ValueError):
                pass
        elif lock is not None:
            # stopped inside _prepare: the rows a stopped build finished are on disk (taken for none,
            # they were removed with its folder)
            there = _stopped_build(partial, _build_info(key, n, size, align), "r")
            done = 0 if there is None else int((there[1]["state"] != TODO).sum())
            there = None   # unmapped: Windows removes no folder with a file open in it
        images = rows = None
        if lock is not None:
            if done == 0 and partial.is_dir():
                _remove_locked(partial, lock)   # holds nothing: nothing to continue
            elif isinstance(e, KeyboardInterrupt):
                e.preprocessing_kept = (done, n)   # said by the caller (training/cli.py)
        if isinstance(e, OSError):
            need = n * size * size * 3 / 2 ** 20
            need_s = f"{need / 1024:.1f} GB" if need >= 1024 else f"{need:.1f} MB"
            stopped = [p for p in root.glob(".*.partial") if p != partial]
            held = (f"; {counted(len(stopped), 'stopped earlier preprocessing folder')} there "
                    f"({quoted((p.name for p in stopped), most=2)}) {'takes' if len(stopped) == 1 else 'take'} "
                    "space too and may be removed" if stopped else "")
            raise FaderError(f"{root}: cannot write the preprocessing cache ({e.strerror or e}; it needs "
                             f"{need_s}{held}): free space there or give --cache-dir on another disk") from None
        raise
    finally:
        for s in sources:
            s.lock.close()
        if lock is not None:
            lock.close()


class _Stops:
    """Ctrl-C and SIGTERM recorded by _stops_deferred, raised by `check` through the handlers they
    were sent to."""

    def __init__(self):
        self.handlers: dict = {}
        self.pending: list = []

    def record(self, signum, frame) -> None:
        self.pending.append((signum, frame))

    def check(self) -> None:
        while self.pending:
            signum, frame = self.pending.pop(0)
            self.handlers[signum](signum, frame)   # raises KeyboardInterrupt (or the CLI's Terminated)


@contextmanager
def _stops_deferred():
    """While the preprocessing's threads run, Ctrl-C and SIGTERM (where a Python handler takes them)
    are recorded and raised where `check()` is called, once a crop has been taken or while waiting
    for one. Raised where the signal landed, a KeyboardInterrupt inside a future's or the pool's lock
    code (just after `with lock` took it) left the lock held: the worker that needed it waited
    forever, and so did the process (1 of 65 runs stopped at a random moment)."""
    stops = _Stops()
    if threading.current_thread() is threading.main_thread():   # handlers run in the main thread only
        for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
            handler = signal.getsignal(s) if s is not None else None
            if callable(handler):   # an ignored Ctrl-C stays ignored, a default SIGTERM ends the process
                stops.handlers[s] = handler
                signal.signal(s, stops.record)
    try:
        yield stops
    finally:
        for s, handler in stops.handlers.items():
            signal.signal(s, handler)
    stops.check()   # a stop that came as the threads ended


def _reserve(path: Path) -> None:
    """Allocate the memmap's disk blocks now. The file is sparse: on a full disk the first write
    into an unbacked page would kill the process with SIGBUS instead of raising ENOSPC here."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                return  # a file system without fallocate: fall back to writing into the sparse file
            raise


def _remove_dead_partials(root: Path) -> None:
    """Delete half-built caches of an earlier version (one per process, never continued), and the
    build folders of their own (Windows: _claim_own) of caches finished since, whose process no
    longer runs (killed, crashed). Renamed away first: on Windows, where that is the test (a running
    build's folder cannot be renamed), os.kill(pid, 0) would send a Ctrl-C."""
    for name in os.listdir(root):
        m = _OLD_PARTIAL.match(name)
        own = _OWN_PARTIAL.match(name)
        if own is not None and (root / own.group(1) / "manifest.json").is_file():
            m = own
        if m is None:
            continue
        try:
            if _known_alive(int(m.group(2))):
                continue
        except ValueError:
            continue
        gone = root / f".deleting.{name.lstrip('.')}.{os.getpid()}"
        try:
            os.rename(root / name, gone)
        except OSError:
            continue   # in use (Windows), or removed by another process
        shutil.rmtree(gone, ignore_errors=True)


def _remove_locked(folder: Path, lock: _Lock) -> None:
    """Remove a folder whose lock this process holds exclusively: renamed away first, so that no
    process opens it half deleted."""
    gone = folder.parent / f".deleting.{folder.name.lstrip('.')}.{os.getpid()}"
    if fcntl is None:
        lock.close()   # Windows renames no folder with a file open inside it (there is no flock to keep)
    try:
        os.rename(folder, gone)
    except OSError:
        return
    finally:
        lock.close()
    shutil.rmtree(gone, ignore_errors=True)


def _remove(folder: Path) -> bool:
    """Remove a cache folder unless a process uses it (holds its lock); whether it is gone."""
    lock = _Lock.open(folder)
    if lock is None:
        return not folder.exists()
    if not lock.take(True, wait=False, unsure=False) or not lock.still_at(folder / LOCK):
        lock.close()
        return False
    _remove_locked(folder, lock)
    return not folder.exists()


def _last_used(folder: Path) -> float:
    """When a process last opened the folder (its lock file's mtime). An earlier version's folder
    has no lock file: its clock starts now (its build time says nothing of when it was last used)."""
    try:
        return os.stat(folder / LOCK).st_mtime
    except OSError:
        pass
    try:
        os.close(os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError:   # a folder we may not write: judged by when it was built
        for name in ("manifest.json", "build.json"):
            try:
                return os.stat(folder / name).st_mtime
            except OSError:
                continue
        return os.stat(folder).st_mtime
    return time.time()


def _tidy(root: Path, keep: ImageCache, paths: list, size: int, align: bool, used: set) -> None:
    """Remove the cache folders (only those this program made: named by their key, with a manifest
    or build record of that key) that no process uses and that are unused for MAX_IDLE_DAYS or
    superseded by `keep`; and what an interrupted removal left."""
    now = time.time()
    mine = None
    for name in sorted(os.listdir(root)):
        folder = root / name
        if name == keep.path.name:
            continue
        if _DELETING.match(name):
            shutil.rmtree(folder, ignore_errors=True)
            continue
        part = _PARTIAL.match(name)
        if part is None and not _FINAL.match(name):
            continue
        try:
            with open(folder / ("build.json" if part else "manifest.json")) as f:
                info = json.load(f)
            if not isinstance(info, dict) or info.get("key") != (part.group(1) if part else name):
                continue
        except (OSError, ValueError):
            if part is None or not folder.is_dir() or any(x != LOCK for x in os.listdir(folder)):
                continue   # not known to be ours
            info = None    # a build stopped before it began: it holds nothing
        try:
            old = now - _last_used(folder) > MAX_IDLE_DAYS * 86400
        except OSError:
            continue
        if not old and info is not None:
            if (info.get("version"), info.get("size"), info.get("align")) != (CACHE_VERSION, size, bool(align)):
                continue
            if mine is None:
                mine = set(paths)
            if not _superseded(folder, info, mine, name in used):
                continue
        _remove(folder)


def _superseded(folder: Path, info: dict, newer: set, shared: bool) -> bool:
    """Whether the newer cache of these paths holds every image of `folder` still on disk unchanged
    and shares images with it (`shared`: crops were taken from it). A folder of an earlier version
    records no signatures: any file of it still there counts."""
    from .packfile import member_file
    try:
        files = (folder / "files.txt").read_bytes().decode("utf-8", "surrogateescape").split("\n")
        rows = np.load(folder / "rows.npy", mmap_mode="r") if info.get("layout", 1) >= LAYOUT else None
    except (OSError, ValueError):
        return False
    if rows is not None and rows.shape != (len(files),):
        return False
    done = (rows["state"] != TODO).tolist() if rows is not None else None
    for r, p in enumerate(files):
        if done is not None and not done[r]:
            continue
        if p in newer:
            shared = True
            continue
        try:
            st = os.stat(member_file(p))
        except OSError:
            continue   # gone: nothing of it to keep
        if rows is None or (st.st_size, st.st_mtime_ns) == (int(rows["size"][r]), int(rows["mtime"][r])):
            return False
    return shared
