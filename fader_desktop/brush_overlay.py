"""The edit brush's overlay: where the faces' edits are erased, as a translucent red image over
the photo (shown while the brush is on, as a photo editor shows a layer mask)."""
from __future__ import annotations

import sys
from typing import Sequence

import cv2
import numpy as np
from PySide6.QtGui import QImage

from core.alignment import crop_corners, region_matrix

COLOR = (235, 64, 52)     # RGB
OPACITY = 0.25     # light enough to judge the photo under it


def erased_overlay(faces: Sequence, masks: Sequence, width: int, height: int) -> tuple:
    """(QImage or None, x, y): the erased parts of every face (FaceInfo with its alignment, and
    its EditMask or None) in photo pixels, over the smallest rectangle that holds them."""
    parts = []
    for f, m in zip(faces, masks):
        if m is None or f.matrix is None or not f.crop_size:
            continue
        s = f.crop_size
        pts = crop_corners(f.matrix, s)
        x0, y0 = (max(0, int(np.floor(v))) for v in pts.min(0))
        x1, y1 = min(width, int(np.ceil(pts[:, 0].max())) + 1), min(height, int(np.ceil(pts[:, 1].max())) + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        erased = 1.0 - m.in_frame(f.matrix, s).array
        w = cv2.warpAffine(erased, region_matrix(f.matrix, x0, y0), (x1 - x0, y1 - y0), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        parts.append((x0, y0, w))
    if not parts:
        return None, 0, 0
    X0, Y0 = min(p[0] for p in parts), min(p[1] for p in parts)
    X1 = max(p[0] + p[2].shape[1] for p in parts)
    Y1 = max(p[1] + p[2].shape[0] for p in parts)
    alpha = np.zeros((Y1 - Y0, X1 - X0), np.float32)
    for x, y, w in parts:
        region = alpha[y - Y0:y - Y0 + w.shape[0], x - X0:x - X0 + w.shape[1]]
        np.maximum(region, w, out=region)
    return _premultiplied(alpha * OPACITY), X0, Y0


def _premultiplied(alpha: np.ndarray) -> QImage:
    """A QImage (ARGB32, premultiplied) of COLOR at the given opacity per pixel."""
    h, w = alpha.shape
    img = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
    buf = np.frombuffer(img.bits(), dtype=np.uint8, count=h * img.bytesPerLine()).reshape(h, img.bytesPerLine())
    px = buf[:, : 4 * w].reshape(h, w, 4)
    a = np.clip(alpha, 0.0, 1.0)
    r, g, b = (np.rint(c * a).astype(np.uint8) for c in COLOR)
    a8 = np.rint(a * 255).astype(np.uint8)
    if sys.byteorder == "little":
        px[..., 0], px[..., 1], px[..., 2], px[..., 3] = b, g, r, a8
    else:
        px[..., 0], px[..., 1], px[..., 2], px[..., 3] = a8, r, g, b
    return img
