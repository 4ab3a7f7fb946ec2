"""Packed training data: every training crop at the model's resolution in one small file.

A machine lent for minutes (a cloud GPU) should not spend them reading 8,000 JPEGs of 178x218 and
cropping them, nor need the dataset's folder layout. A pack holds the crops already made at the
training resolution as JPEG bytes, with their labels, CelebA splits and names, in a safetensors
container (tensors + JSON metadata: nothing in it can execute). `fader-train --data FILE.fpack`
trains on it like on the original folders (same validation split, by the same names).

    python -m training.pack --data ../shared/data/celeba/img_align_celeba \
        --data ../shared/data/celeba/img_align_celeba_from_wild --exclude ../shared/data/celeba/img_celeba \
        --attr Smiling,Male,Young,Eyeglasses,Mouth_Slightly_Open --img-size 128 -o faces128.fpack
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import FaderError

PACK_FORMAT = "fader-pack"
PACK_SUFFIX = ".fpack"
MEMBER_SEP = "#"
MAX_PACK_BYTES = 4 << 30
MAX_IMAGES = 5_000_000


def write_pack(path, crops: np.ndarray, names, labels: np.ndarray, splits, attributes, description: str,
               quality: int = 85) -> dict:
    """JPEG-encode `crops` (uint8 (N, S, S, 3) RGB) and write the pack atomically; returns a summary."""
    import cv2
    from safetensors.numpy import save
    from core.atomic_write import write_bytes_atomic
    blobs, offsets = [], [0]
    for c in crops:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(c[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise FaderError("cannot JPEG-encode a crop")
        blobs.append(buf.ravel())
        offsets.append(offsets[-1] + buf.size)
    tensors = {"jpeg": np.concatenate(blobs) if blobs else np.zeros(0, np.uint8),
               "offsets": np.asarray(offsets, np.int64),
               "labels": np.asarray(labels, np.int16).reshape(len(crops), len(attributes)),
               "split": np.asarray(splits, np.int8)}
    meta = {"format": PACK_FORMAT, "version": "1", "size": str(int(crops.shape[1])),
            "attributes": json.dumps([a.to_dict() for a in attributes]), "names": json.dumps(list(names)),
            "description": description, "quality": str(int(quality))}
    data = save(tensors, metadata=meta)
    write_bytes_atomic(Path(path), data)
    return {"images": len(crops), "bytes": len(data), "size": int(crops.shape[1])}


class Pack:
    """An opened pack: names, labels, splits, attributes and a decoder for its crops."""

    def __init__(self, path):
        from safetensors.numpy import load
        from core.attributes import Attribute
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            if size > MAX_PACK_BYTES:
                raise FaderError(f"{self.path}: {size / 2**30:.1f} GB is more than a pack may hold")
            raw = self.path.read_bytes()
            head_len = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
            if not 0 < head_len <= min(len(raw) - 8, 64 << 20):
                raise ValueError("no safetensors header")
            head = json.loads(raw[8:8 + head_len]).get("__metadata__") or {}
            if head.get("format") != PACK_FORMAT:
                raise ValueError("not a fader pack")
            t = load(raw)
            names = json.loads(head["names"])
            attrs = [Attribute.from_dict(a) for a in json.loads(head["attributes"])]
            img_size = int(head["size"])
        except FaderError:
            raise
        except OSError as e:
            raise FaderError(f"{self.path}: cannot read ({e.strerror or e})") from None
        except Exception as e:
            raise FaderError(f"{self.path}: not a readable {PACK_FORMAT} file ({str(e).splitlines()[0][:100]})") from None
        n = len(names)
        ok = (0 < n <= MAX_IMAGES and 16 <= img_size <= 1024 and t["offsets"].shape == (n + 1,)
              and t["labels"].shape == (n, len(attrs)) and t["split"].shape == (n,)
              and t["offsets"][0] == 0 and t["offsets"][-1] == t["jpeg"].size and np.all(np.diff(t["offsets"]) > 0))
        if not ok:
            raise FaderError(f"{self.path}: inconsistent {PACK_FORMAT} file (counts or offsets do not match)")
        self.names, self.attributes, self.size = list(names), attrs, img_size
        self.description = head.get("description", "")
        self.labels, self.splits = t["labels"].astype(np.int64), t["split"].astype(np.int64)
        self._jpeg, self._off = t["jpeg"], t["offsets"]
        self._index = {name: i for i, name in enumerate(self.names)}

    def crop(self, name: str) -> Optional[np.ndarray]:
        """The RGB crop stored under `name` (None if the pack lacks it or it does not decode)."""
        import cv2
        i = self._index.get(name)
        if i is None:
            return None
        img = cv2.imdecode(self._jpeg[self._off[i]:self._off[i + 1]], cv2.IMREAD_COLOR)
        return None if img is None or img.shape[:2] != (self.size, self.size) else np.ascontiguousarray(img[..., ::-1])


_open_packs: dict = {}
_lock = threading.Lock()


def open_pack(path) -> Pack:
    """A shared, lazily opened Pack per file (the cache builder decodes from several threads)."""
    key = os.path.abspath(path)
    with _lock:
        p = _open_packs.get(key)
        if p is None:
            p = _open_packs[key] = Pack(key)
        return p


def is_member(path: str) -> bool:
    """Whether `path` names an image inside a pack (PACK.fpack#name)."""
    head, sep, _ = str(path).partition(MEMBER_SEP)
    return bool(sep) and head.endswith(PACK_SUFFIX)


def member_file(path: str) -> str:
    """The pack file a member path lives in (the path itself for ordinary files)."""
    return str(path).partition(MEMBER_SEP)[0] if is_member(path) else str(path)


def main(argv: Optional[list] = None) -> int:
    """`python -m training.pack`: crop, JPEG-encode and pack the training and validation images."""
    p = argparse.ArgumentParser(prog="python -m training.pack", description=__doc__.split("\n")[0])
    p.add_argument("--data", action="append", required=True, help="data source, as for fader-train (repeatable)")
    p.add_argument("--exclude", action="append", default=None, help="folder or list of images to leave out")
    p.add_argument("--attr", default=None, help="attributes (default: all)")
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--quality", type=int, default=85, help="JPEG quality (85 keeps 7,800 128 px faces under 40 MB)")
    p.add_argument("--align", action="store_true", help="detect and align faces (unaligned photos)")
    p.add_argument("-o", "--out", required=True, help="pack file to write (.fpack)")
    a = p.parse_args(argv)
    from .cache import open_cache
    from .datasets import exclude_images, open_dataset
    try:
        if not str(a.out).endswith(PACK_SUFFIX):
            raise FaderError(f"-o: a pack file name ends in {PACK_SUFFIX}")
        if not 32 <= a.img_size <= 256 or not 30 <= a.quality <= 100:
            raise FaderError("--img-size must be 32..256 and --quality 30..100")
        ds = open_dataset(a.data, a.attr)
        if a.exclude:
            ds, _ = exclude_images(ds, a.exclude)
        keep = [i for i, it in enumerate(ds.items) if it.split in (0, 1)] if ds.kind == "celeba" else list(range(len(ds.items)))
        cache = open_cache([ds.items[i].path for i in keep], a.img_size, a.align, progress=True)
        ok = [k for k in range(len(keep)) if cache.valid[k]]
        items = [ds.items[keep[k]] for k in ok]
        from .datasets import split_key
        names = [split_key(ds, it.path) for it in items]
        if len(set(names)) != len(names):
            raise FaderError("two images share a name; a pack needs unique names")
        summary = write_pack(a.out, np.asarray(cache.images)[ok], names, ds.labels[[keep[k] for k in ok]],
                             [it.split for it in items], ds.attributes, f"packed from {ds.description}", a.quality)
    except FaderError as e:
        print(f"pack: error: {e}", file=sys.stderr)
        return 2
    print(f"pack: wrote {a.out}: {summary['images']} crops at {summary['size']} px, "
          f"{summary['bytes'] / 2**20:.1f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
