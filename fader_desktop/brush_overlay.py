"""The edit brush's overlay: where the faces' edits are erased, as a translucent red image over
the photo (shown while the brush is on, as a photo editor shows a layer mask)."""
from __future__ import annotations

import sys
from typing import Sequence

import cv2
import numpy as np
from PySide6.QtGui import QImage

from core.alignment import crop_corners, region_matrix
from core.edit_mask import crop_scale

COLOR = (235, 64, 52)     # RGB
OPACITY = 0.25     # light enough to judge the photo under it
TINT_PER_CROP_PIXEL = 4   # the tint's pixels per pixel of a mask, at least (it is smoothed when drawn)


def erased_overlay(faces: Sequence, masks: Sequence, width: int, height: int) -> tuple:
    """(QImage or None, x, y, step): the erased parts of every face (FaceInfo with its alignment,
    and its EditMask or None) over the smallest rectangle of the photo that holds them, from photo
    pixel (x, y), one image pixel per step x step photo pixels.

    The masks have the crop's resolution, so the image needs no more than TINT_PER_CROP_PIXEL of
    its pixels per crop pixel: at the photo's resolution, the tint of a face filling an 8000x6000
    photo took a second to build, on every mouse move of a stroke."""
    boxes = []
    for f, m in zip(faces, masks):
        if m is None or f.matrix is None or not f.crop_size:
            continue
        pts = crop_corners(f.matrix, f.crop_size)
        x0, y0 = (max(0, int(np.floor(v))) for v in pts.min(0))
        x1, y1 = min(width, int(np.ceil(pts[:, 0].max())) + 1), min(height, int(np.ceil(pts[:, 1].max())) + 1)
        if x1 > x0 and y1 > y0:
            boxes.append((f, m, x0, y0, x1, y1))
    if not boxes:
        return None, 0, 0, 1
    step = max(1, int(min(1 / (TINT_PER_CROP_PIXEL * crop_scale(f.matrix)) for f, *_ in boxes)))
    X0, Y0 = min(b[2] for b in boxes), min(b[3] for b in boxes)
    X1, Y1 = max(b[4] for b in boxes), max(b[5] for b in boxes)
    alpha = np.zeros((-(-(Y1 - Y0) // step), -(-(X1 - X0) // step)), np.float32)
    for f, m, x0, y0, x1, y1 in boxes:
        # image pixel (u, v) of this part is the centre of its step x step photo pixels
        u0, v0 = (x0 - X0) // step, (y0 - Y0) // step
        u1, v1 = -(-(x1 - X0) // step), -(-(y1 - Y0) // step)
        r = region_matrix(f.matrix, X0 + u0 * step + (step - 1) / 2, Y0 + v0 * step + (step - 1) / 2)
        r[:, :2] *= step
        erased = 1.0 - m.in_frame(f.matrix, f.crop_size).array
        w = cv2.warpAffine(erased, r, (u1 - u0, v1 - v0), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        region = alpha[v0:v1, u0:u1]
        np.maximum(region, w, out=region)
    return _premultiplied(alpha * OPACITY), X0, Y0, step


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
