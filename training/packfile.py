"""The training pack file (.fpack): crops at the model's resolution as JPEG bytes, with their
labels, CelebA splits and names, in a safetensors container (tensors + JSON metadata: nothing in it
can execute). Written by `python -m training.pack` (training/pack.py), read by the datasets and the
preprocessing cache (an image inside a pack is named PACK.fpack#name).
"""
from __future__ import annotations

import json
import os
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


def split_member(path) -> Optional[tuple]:
    """(pack file, member name) of an image inside a pack (PACK.fpack#name), else None. Split after
    the first ".fpack#": the pack's folder may hold a '#', and so may a member's name."""
    s = str(path)
    i = s.lower().find(PACK_SUFFIX + MEMBER_SEP)
    return None if i < 0 else (s[:i + len(PACK_SUFFIX)], s[i + len(PACK_SUFFIX) + len(MEMBER_SEP):])


def is_member(path: str) -> bool:
    """Whether `path` names an image inside a pack (PACK.fpack#name)."""
    return split_member(path) is not None


def member_file(path: str) -> str:
    """The pack file a member path lives in (the path itself for ordinary files)."""
    parts = split_member(path)
    return str(path) if parts is None else parts[0]
