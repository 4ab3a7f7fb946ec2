"""Where a face's edit applies: a mask the user paints with the window's edit brush.

The model's edits carry what the attribute does and, on some faces, what it should not (a light
patch on the forehead for "no glasses", a dark cheek for "older"). The edit brush lets the user
erase the edit where it is wrong and bring it back, as a photo editor's layer mask does. The mask
lives in the face's aligned crop (the model's S x S frame), where the paste-back already weights
the edit by its feathered crop mask, so a painted mask costs nothing to apply and follows the face
through every export: where it is 0 the photo's own pixels stay bit-identical.

Masks are immutable (painting returns a new one), so that an undo step or a render request can
hold one the way it holds slider values. A mask painted in the window remembers the alignment of
the crop it was painted in, so that after a switch to a model with another alignment template (or
resolution) it is carried into the new crop (``in_frame``) and stays where it was painted on the
face, for undo steps too.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

# The brush's soft edge: full strength out to this fraction of its radius, then a smooth fall to 0.
_HARD_CORE = 0.5
# The smallest brush, in crop pixels. The mask is smoothly upsampled to the photo, so a stroke
# through crop pixels whose centres miss its hard core left most of the edit under its path
# (a 24 px brush at 800 % zoom erased 60 %); from 2.0 every photo pixel on the path is.
MIN_RADIUS = 2.0


class EditMask:
    """A face's edit mask: float32 (S, S) in 0..1 in its aligned crop (1: the edit applies)."""

    __slots__ = ("_array", "_matrix")

    def __init__(self, array: np.ndarray, matrix: np.ndarray | None = None):
        """``matrix``: the 2x3 alignment (photo -> crop pixels) of the crop the mask is painted
        in; None: a mask that belongs to whatever crop it is applied to."""
        a = np.array(array, dtype=np.float32)   # a copy: nobody else can change it
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
            raise ValueError(f"an edit mask is a square (S, S) array, got {a.shape}")
        np.clip(a, 0.0, 1.0, out=a)
        a.setflags(write=False)
        self._array = a
        self._matrix = None
        if matrix is not None:
            m = np.array(matrix, np.float64).reshape(2, 3)
            if not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-12:
                raise ValueError("an edit mask's alignment must be a finite, invertible 2x3 matrix")
            m.setflags(write=False)
            self._matrix = m

    @classmethod
    def full(cls, size: int, matrix: np.ndarray | None = None) -> "EditMask":
        """The edit everywhere (what a face has before it is painted)."""
        return cls(np.ones((size, size), np.float32), matrix)

    @property
    def matrix(self) -> np.ndarray | None:
        """The alignment of the crop the mask was painted in (None: not recorded)."""
        return self._matrix

    @property
    def array(self) -> np.ndarray:
        """The mask itself (read-only)."""
        return self._array

    @property
    def size(self) -> int:
        return self._array.shape[0]

    def is_full(self) -> bool:
        return bool(self._array.min() >= 1.0)

    def resized(self, size: int) -> "EditMask":
        """The same mask for another crop size (a model of another resolution)."""
        if size == self.size:
            return self
        import cv2
        return EditMask(cv2.resize(self._array, (int(size), int(size)), interpolation=cv2.INTER_LINEAR))

    def in_frame(self, matrix: np.ndarray | None, size: int) -> "EditMask":
        """The same mask for the crop of alignment ``matrix`` (photo -> crop) and ``size``: where
        the mask recorded the crop it was painted in and that crop differs (another model's
        template or resolution), it is carried over through the photo, so every stroke stays on
        the same part of the face; parts of the new crop outside the old one keep the edit."""
        size = int(size)
        if self._matrix is None or matrix is None:
            return self.resized(size)
        new = np.asarray(matrix, np.float64).reshape(2, 3)
        if size == self.size and np.allclose(new, self._matrix, rtol=0, atol=1e-6):
            return self
        import cv2
        # new crop -> photo -> old crop (3x3 homogeneous), the map warpAffine samples the old mask through
        old_from_new = (np.vstack([self._matrix, (0, 0, 1)]) @ np.linalg.inv(np.vstack([new, (0, 0, 1)])))[:2]
        warped = cv2.warpAffine(self._array, old_from_new, (size, size), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
        return EditMask(warped, new)

    def painted(self, points: Sequence[tuple] | Iterable[tuple], radius: float, erase: bool = True) -> "EditMask":
        """A new mask with a brush stroke through ``points`` ((x, y) in crop pixels, pixel centres
        at integers) of ``radius`` crop pixels: erasing the edit there (toward 0) or bringing it
        back (toward 1). A soft round brush; consecutive points are joined. Points far outside the
        crop change nothing."""
        pts = np.asarray(list(points), np.float64).reshape(-1, 2)
        r = float(radius)
        if not len(pts) or not r > 0 or not np.isfinite(pts).all():
            return self
        r = max(r, MIN_RADIUS)
        s = self.size
        # stamp along the path every quarter radius, so a fast stroke leaves no gaps
        stamps = [pts[0]]
        for p, q in zip(pts[:-1], pts[1:]):
            n = int(np.ceil(np.hypot(*(q - p)) / max(r / 4, 0.25)))
            stamps.extend(p + (q - p) * t for t in np.linspace(0, 1, n + 1)[1:])
        stamps = np.asarray(stamps)
        x0 = int(max(0, np.floor(stamps[:, 0].min() - r)))
        y0 = int(max(0, np.floor(stamps[:, 1].min() - r)))
        x1 = int(min(s, np.ceil(stamps[:, 0].max() + r) + 1))
        y1 = int(min(s, np.ceil(stamps[:, 1].max() + r) + 1))
        if x1 <= x0 or y1 <= y0:
            return self
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        dist = np.full(yy.shape, np.inf)
        for cx, cy in stamps:
            np.minimum(dist, np.hypot(xx - cx, yy - cy), out=dist)
        # 1 inside the hard core, a smoothstep down to 0 at the radius
        t = np.clip((r - dist) / (r * (1 - _HARD_CORE)), 0.0, 1.0)
        brush = (t * t * (3 - 2 * t)).astype(np.float32)
        out = self._array.copy()
        region = out[y0:y1, x0:x1]
        region[...] = np.minimum(region, 1 - brush) if erase else np.maximum(region, brush)
        return EditMask(out, self._matrix)


def to_crop(matrix: np.ndarray, points: Iterable[tuple]) -> np.ndarray:
    """Photo pixel coordinates -> the face's aligned-crop coordinates (its alignment matrix)."""
    m = np.asarray(matrix, np.float64).reshape(2, 3)
    p = np.asarray(list(points), np.float64).reshape(-1, 2)
    return p @ m[:, :2].T + m[:, 2]


def crop_scale(matrix: np.ndarray) -> float:
    """Crop pixels per photo pixel of an alignment (a similarity: the same in every direction)."""
    m = np.asarray(matrix, np.float64).reshape(2, 3)
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
