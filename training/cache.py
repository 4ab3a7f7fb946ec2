"""Preprocessing cache: every training crop once, as a uint8 memory-mapped (N, S, S, 3) array.

A 200k-image dataset at 256 px is 39 GB as float32 (the reference loads it all into RAM); as a
uint8 memmap it is 39 GB on disk and only the pages being read are in memory. The cache folder is
keyed by the file list (path, size, mtime), the crop size and the alignment mode, so a second run
on the same data opens it instantly. Labels are not part of the key (they come from the dataset),
so one cache serves any choice of attributes.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import FaderError

from .datasets import load_training_crop
from .progress import progress_bar

CACHE_VERSION = 3  # 2: transparency over white, images over 100 MP skipped; 3: the limit is 210 MP
CHUNK = 256


def default_cache_dir() -> Path:
    """$FADER_CACHE_DIR, else ~/.cache/fader-desktop/training."""
    env = os.environ.get("FADER_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fader-desktop" / "training"


@dataclass
class ImageCache:
    """An opened cache: `images` (memmap, N x S x S x 3 uint8) and `valid` (N bools) in item order."""

    path: Path
    key: str
    images: np.ndarray
    valid: np.ndarray
    skipped: dict
    size: int
    reused: bool

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())


def cache_key(paths, size: int, align: bool) -> str:
    """Hash of (file list with sizes and mtimes, crop size, alignment mode, cache format)."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "size": size, "align": bool(align)}).encode())
    from .packfile import member_file
    for p in paths:
        try:
            st = os.stat(member_file(p))  # a pack's members share the pack file's signature
            sig = f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n"
        except OSError:
            sig = f"{p}\0missing\n"
        h.update(sig.encode("utf-8", "surrogateescape"))  # a non-UTF-8 file name as its bytes
    return h.hexdigest()[:24]


def _crop_one(args):
    path, size, align = args
    try:
        crop, reason = load_training_crop(path, size, align)
    except Exception as e:  # a broken file must never stop a long preprocessing run
        return None, f"error: {type(e).__name__}"
    return crop, reason


def open_cache(paths, size: int, align: bool = False, cache_dir=None, workers: Optional[int] = None,
               progress: bool = True) -> ImageCache:
    """Open the cache for these files, building it first if needed (threads; cv2 releases the GIL)."""
    paths = [str(p) for p in paths]
    key = cache_key(paths, size, align)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / key
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            return _open(folder, key, size, reused=True)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(folder, ignore_errors=True)  # damaged: rebuild below
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FaderError(f"{root}: cannot create the preprocessing cache folder ({e.strerror or e})") from None
    _remove_dead_partials(root, key)
    tmp = root / f".{key}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    n = len(paths)
    try:
        tmp.mkdir(parents=True)
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        _reserve(tmp / "images.npy")
        valid = np.zeros(n, dtype=bool)
        skipped: dict = {}
        from core.engine import usable_cores
        workers = max(1, workers or usable_cores())
        bar = None
        if progress:
            bar = progress_bar(n, f"preprocessing {size}px", "img")
        t0 = time.time()
        with ThreadPoolExecutor(workers) as pool:
            # Chunks bound the memory in flight: only CHUNK crops exist outside the memmap at once.
            for start in range(0, n, CHUNK):
                stop = min(n, start + CHUNK)
                for i, (crop, reason) in enumerate(pool.map(_crop_one, [(p, size, align) for p in paths[start:stop]]), start):
                    if crop is None:
                        skipped[reason] = skipped.get(reason, 0) + 1
                    else:
                        images[i] = crop
                        valid[i] = True
                if bar is not None:
                    bar.update(stop - start)
        if bar is not None:
            bar.close()
        images.flush()
        del images
        np.save(tmp / "valid.npy", valid)
        info = {"version": CACHE_VERSION, "key": key, "n": n, "size": size, "align": bool(align),
                "n_valid": int(valid.sum()), "skipped": skipped, "seconds": round(time.time() - t0, 1),
                "first": paths[0] if paths else None}
        with open(tmp / "manifest.json", "w") as f:
            json.dump(info, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / "files.txt", "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("\n".join(paths))
        try:
            os.replace(tmp, folder)
        except OSError:
            # Another process finished the same cache first: use theirs.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            need = n * size * size * 3 / 2 ** 20
            need_s = f"{need / 1024:.1f} GB" if need >= 1024 else f"{need:.1f} MB"
            raise FaderError(f"{root}: cannot write the preprocessing cache ({e.strerror or e}; it needs "
                             f"{need_s}): free space there or give --cache-dir on another disk") from None
        raise
    return _open(folder, key, size, reused=False)


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


def _remove_dead_partials(root: Path, key: str) -> None:
    """Delete half-built copies of this cache left by processes that no longer run (killed, crashed)."""
    for p in root.glob(f".{key}.*.partial"):
        try:
            pid = int(p.name.split(".")[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, OSError):
            continue  # not ours to judge (alive, another user's, or a strange name)


def _open(folder: Path, key: str, size: int, reused: bool) -> ImageCache:
    with open(folder / "manifest.json") as f:
        info = json.load(f)
    if info.get("version") != CACHE_VERSION or info.get("key") != key or info.get("size") != size:
        raise ValueError("stale cache")
    images = np.load(folder / "images.npy", mmap_mode="r")
    valid = np.load(folder / "valid.npy")
    if images.shape != (info["n"], size, size, 3) or valid.shape != (info["n"],):
        raise ValueError("cache shape mismatch")
    return ImageCache(folder, key, images, valid, dict(info.get("skipped", {})), size, reused)

