"""Face detection with five landmarks: a compact MTCNN (Zhang et al., IEEE SPL 2016).

The three cascaded networks (P-Net, R-Net, O-Net) are re-implemented here; their weights are the
ones facenet-pytorch 2.6.0 ships (MIT licence), converted once to
``resources/detectors/mtcnn.safetensors`` so that nothing pickled is ever loaded (see
``resources/detectors/LICENSE`` and ``docs/faces.md``).

Coordinates: ``Face.box`` is ``(x0, y0, x1, y1)`` in pixel *edges* (a box covering a W x H photo is
``(0, 0, W, H)``); landmarks are at pixel *centres* as OpenCV uses them (pixel (i, j) is at x=i,
y=j), in the order ``left_eye, right_eye, nose, mouth_left, mouth_right`` with "left" = smaller x
as the face is seen upright: smaller x in the photo, larger x for a face found upside down
(``Face.upside_down``), whose landmarks are its own (eyes on its eyes), and likewise for a face
found on its side (``Face.quarter_turns``).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from core.errors import ModelFileError

__all__ = ["Face", "FaceDetector", "ThoroughDetector", "detect_faces", "shared_detector", "LANDMARK_NAMES", "DEFAULT_WEIGHTS"]

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "resources" / "detectors" / "mtcnn.safetensors"
# The SHA-256 of each detector file the app ships, by its path: the file carries no checksum of
# its own, and a flipped byte in a tensor loaded without a word and found faces badly. A file
# loaded from any other path (a test's, a new version's) is not checked (docs/faces.md)
SHIPPED_WEIGHTS_SHA256 = {DEFAULT_WEIGHTS: "4a329a7154bdac6dee551524e3e7912a0c23edf0c2d17c55e159a1dc0dc9fb03"}
# A crop O-Net doubts (score at least MIRROR_DOUBT, below the threshold) is a face when its
# mirror image scores above MIRROR_SURE; chosen on CelebA photos (docs/faces.md)
MIRROR_DOUBT, MIRROR_SURE = 0.4, 0.9
# ... and a crop O-Net passes but is not sure of (below MIRROR_UNSURE) is not a face when its
# mirror image scores below MIRROR_REJECT, and so does the mirror image of a crop of its final,
# calibrated box: a face reads as one both ways round, prints, folds and tattoos mostly do not
# (docs/faces.md)
MIRROR_UNSURE, MIRROR_REJECT = 0.95, 0.4
# A detection whose crop (of its final box) O-Net reads as a face better turned 180 degrees than
# as found, by more than TURNED_MARGIN (log-odds of the crop plus its mirror image's), is upside
# down: turned when O-Net is sure of the turned crop (above TURNED_SURE, its mirror image above
# TURNED_MIRROR) and a quarter turn either way reads worse, its landmarks then O-Net's on the
# turned crop; dropped otherwise. Chosen on CelebA photos as they are, turned 180, 90 and +-25
# degrees, and enlarged 2x (docs/faces.md)
TURNED_SURE, TURNED_MIRROR, TURNED_MARGIN = 0.9, 0.5, 2.0
# A detection whose crop reads as a face better turned a quarter, by more than SIDEWAYS_MARGIN
# (summed log-odds, as above) and surely so (both readings above TURNED_SURE), is a face lying on
# its side, found upright with its landmarks beside its eyes: dropped, and the photo is searched
# turned a quarter. On 700 upright CelebA photos no detection came within 6.8 of it with a sure
# reading (the largest sure one: 2.9); sideways faces read 8 to 25 better (docs/faces.md).
SIDEWAYS_MARGIN = 6.0
# ... looked for only where the crop reads as a face, as found, less surely than this (summed
# log-odds): 8 % of upright faces' detections; sideways faces found upright read 0 to 6.8
SIDEWAYS_DOUBT = 9.0
# A face found only in the photo turned a quarter (nothing upright) is kept when O-Net is this sure
# of it: a microphone in a dark corner of CelebA 100094 read 0.77 turned
SIDEWAYS_SCORE = 0.9
# A detection at most 1/SPECK_RATIO the side of a face O-Net is sure of (SPECK_SURE or more), and
# not sure itself, is dropped: a big photo is searched down to 20 px at 1024 px, about 2 % of its
# side, and there a blurred patch of hair or a print (an 11 px patch of CelebA 000277's hair,
# enlarged 6 to 17 times) read 0.65 to 0.82 beside a face 14 times its size: a second "face" in
# the Face list, and edits pasted onto it. Not found at the photo's own size (40 px and up), so
# only a detection under SPECK_SEARCHED_PX where the photo was searched can go: the first 1,500
# CelebA photos as they are keep every detection (docs/faces.md).
SPECK_RATIO, SPECK_SURE, SPECK_SEARCHED_PX = 8.0, 0.9, 40.0
# A detection at most 1/FRAMING_RATIO the side of a face O-Net is sure of, in a photo searched below
# its own size, stays only if it still reads as a face framed a little differently: O-Net's
# log-odds of the crop plus its mirror image's, averaged over FRAMINGS (the box as found, moved a
# tenth of its side each way, scaled 0.85 to 1.3), at least FRAMING_ODDS. In the 1,500 CelebA
# photos enlarged to 25 and 50 MP this drops 90 detections (-4.5 to 2.8; 0.67 to 0.99 as found):
# stars on a jacket, prints, lettering, jewellery, hair, blurs, and at both sizes a face printed on
# a shirt and one half hidden behind the subject's hair. Real faces there read 3.7 and up; a
# watch, blurs, round trinkets and a painted profile 3.7 to 6.3 stay. 644 CelebA faces pasted at
# a 20th to a 5th of the main face (302 blurred from a 12 to 40 px copy) all stay; a grimacing
# face blurred from a 24 px copy (1.0) goes (docs/faces.md).
FRAMING_RATIO, FRAMING_ODDS = 5.0, 3.0
# ... and one over 1/FRAMING_RATIO of its size but smaller, likewise found below the photo's own
# size, goes only where it reads as no face at all however it is framed: a mean under
# FRAMING_ODDS_LARGE. Real faces that size read as low as -1.0 (blurred people half behind a
# camera or a phone, at 4 to 70 MP; 1,200 pasted ones, blurred, cut by the photo's edge or a third
# covered, 0.6 and up), non-faces anywhere from -5.7 to 6.8, so only the plainest go: at 25 MP
# 7 of 48 (a ring, an ear, lettering, hair). Chosen on the even-numbered CelebA photos (a margin
# of 1 below their lowest real face), checked on the odd ones (docs/faces.md). Only one that
# reads under FRAMING_DOUBT as found is framed 8 ways (7 % of them; those under -2 read 1.5 at
# most): a group photo's sharp faces cost one O-Net crop and its mirror image each.
FRAMING_ODDS_LARGE, FRAMING_DOUBT = -2.0, 4.0
# A photo without colour (no pixel's channels apart by more than COLOURLESS_SPREAD, but for 1 %) in
# which nothing was found upright or turned a quarter is searched tilted by TILTS degrees either
# way: MTCNN finds tilted faces in grey photos far less well than in colour (CelebA photos turned
# 25 to 45 degrees: 1 of 260 lost in colour, 49 of 260 grey). A face found so is kept where it reads
# as one framed the 8 FRAMINGS ways (mean summed log-odds TILT_ODDS or more: tilted grey faces 3 to
# 17, faceless parts of photos found so 2.4 at most; docs/faces.md)
TILTS, TILT_ODDS, COLOURLESS_SPREAD = (-25.0, 25.0), 4.0, 12
# A face the user marks (FaceDetector.face_in_box): the box drawn around it, grown by MARK_MARGIN of
# its side each way, is searched on its own, enlarged so that its shorter side is MARK_SIDE px; a
# face found there whose side is at least MARK_FILL of the box's and whose centre lies in it is
# taken. A box under MARK_MIN_PX is no face to edit
MARK_MARGIN, MARK_SIDE, MARK_FILL, MARK_MIN_PX = 0.25, 256, 0.3, 8.0
FRAMINGS = ((0.0, 0.0, 1.0), (-0.1, 0.0, 1.0), (0.1, 0.0, 1.0), (0.0, -0.1, 1.0), (0.0, 0.1, 1.0),
            (0.0, 0.0, 0.85), (0.0, 0.0, 1.15), (0.0, 0.0, 1.3))   # (dx, dy: fractions of the side, scale)


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face: box (x0, y0, x1, y1) in pixel edges, float32 (5, 2) landmarks, score.

    ``upside_down``: the face is upside down in the photo (the photo or the person turned by
    about 180 degrees). Its landmarks are still on its own eyes, nose and mouth, and "left" is
    the smaller x once the photo is turned upright (the larger x in the photo), so that
    ``align_face`` turns it upright. ``quarter_turns``: likewise for a face found only in the
    photo turned by a quarter (a photo shot sideways whose orientation tag was lost).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float
    upside_down: bool = False
    quarter_turns: int = 0   # 1 or 3: found sideways, upright in np.rot90(photo, quarter_turns)
    search_scale: float = 1.0   # the scale the photo was searched at where it was found (faces under 20 / it px were not looked for)

    @property
    def center_x(self) -> float:
        return 0.5 * (self.box[0] + self.box[2])

    @property
    def center_y(self) -> float:
        return 0.5 * (self.box[1] + self.box[3])

    @property
    def size(self) -> float:
        """Side of the (square) detection box in pixels."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def _unturned(face: Face, k: int, w: int, h: int) -> Face:
    """``face``, found in ``np.rot90(photo, k)`` (k = 1 or 3) of a w x h photo, in the photo's own
    coordinates: box edges and landmark centres (module docstring) mapped back, each landmark
    keeping its name."""
    x0, y0, x1, y1 = face.box
    lx, ly = face.landmarks[:, 0], face.landmarks[:, 1]
    if k == 1:    # rot90 once: rotated pixel (row i, col j) is the photo's (row j, col w-1-i)
        box, lm = (w - y1, x0, w - y0, x1), np.stack([w - 1 - ly, lx], 1)
    elif k == 3:  # rotated pixel (row i, col j) is the photo's (row h-1-j, col i)
        box, lm = (y0, h - x1, y1, h - x0), np.stack([ly, h - 1 - lx], 1)
    else:
        raise ValueError(f"quarter turns must be 1 or 3, got {k}")
    return Face(tuple(float(v) for v in box), lm.astype(np.float32), face.score, face.upside_down, k,
                face.search_scale)


def _inside(a: Face, b: Face) -> bool:
    """Whether the centre of ``a``'s box lies in the box of ``b``."""
    cx, cy = 0.5 * (a.box[0] + a.box[2]), 0.5 * (a.box[1] + a.box[3])
    return b.box[0] <= cx <= b.box[2] and b.box[1] <= cy <= b.box[3]


def overlaps(face: Face, faces: list) -> bool:
    """Whether ``face`` lies on one of ``faces`` or one of them on it (either centre in the
    other's box): the same face found by two searches. Anything with a ``box`` will do."""
    return any(_inside(face, g) or _inside(g, face) for g in faces)


def _without_specks(faces: list) -> list:
    """``faces`` less those at most ``1 / SPECK_RATIO`` the size of a face scored ``SPECK_SURE``
    or more that score less themselves and were under SPECK_SEARCHED_PX where the photo was
    searched (so a photo searched at its own size keeps them). In a big photo the search reaches
    down to about 2 % of its side, and a blurred patch of hair, a print or a sparkle beside the
    main face can read as a face there (0.65 to 0.87; docs/faces.md); a real face that small
    beside a sure one is kept when O-Net is sure of it too (CelebA faces pasted at a 16th to a
    22nd of the main face's size read 0.97 and more)."""
    sure = [f.size for f in faces if f.score >= SPECK_SURE]
    if not sure:
        return faces
    largest = max(sure)
    # only what the search of a big photo below its own size let in: a face under 40 px where it
    # was searched, which a photo of 1024 px or less is not searched for (a blurred 45 px person
    # behind a 400 px selfie, 0.88, stays)
    return [f for f in faces if f.score >= SPECK_SURE or f.size * SPECK_RATIO > largest
            or f.size * f.search_scale >= SPECK_SEARCHED_PX]


def reading_order(faces) -> list:
    """Faces in reading order: rows from top to bottom, each row from left to right.

    A face joins the row above it when its centre is less than half a face (the taller of it and
    the row's lowest face) below that face's centre, so a row of heads at slightly different
    heights stays one row, and so does a slanted line of faces. Ordering by x alone numbered the
    faces of a class photo's grid by column, in an order that detection noise decided: the PNG
    and JPEG copies of one photo gave ``--face 9`` to different people.
    """
    rows: list = []
    for f in sorted(faces, key=lambda f: (f.center_y, f.center_x)):
        if rows:
            last = rows[-1][-1]
            if f.center_y - last.center_y < 0.5 * max(last.box[3] - last.box[1], f.box[3] - f.box[1]):
                rows[-1].append(f)
                continue
        rows.append([f])
    return [f for row in rows for f in sorted(row, key=lambda f: (f.center_x, f.center_y))]


# --------------------------------------------------------------------------------------------
# networks (layer names match the converted state dicts: "pnet.conv1.weight", ...)
# --------------------------------------------------------------------------------------------

class _PNet(nn.Module):
    """Fully convolutional proposal net: 12x12 window, stride 2 -> face prob + box offsets."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.prelu1(self.conv1(x))
        x = nn.functional.max_pool2d(x, 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        prob = torch.softmax(self.conv4_1(x), dim=1)[:, 1]
        return prob, self.conv4_2(x)


def _flatten_transposed(x):
    # The weights come from a Caffe/TF model whose dense layers read feature maps in (W, H, C)
    # order; flatten the same way.
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class _RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        pool = nn.functional.max_pool2d
        x = pool(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = pool(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_transposed(self.prelu3(self.conv3(x)))))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class _ONet(nn.Module):
    """Output net on 48x48 crops: prob, box offsets and 5 landmarks (x0..x4, y0..y4 in [0, 1])."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        pool = nn.functional.max_pool2d
        x = pool(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = pool(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = pool(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_transposed(self.prelu4(self.conv4(x)))))
        return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


# --------------------------------------------------------------------------------------------
# cascade helpers (boxes are float tensors (N, 4) in pixel-edge coordinates)
# --------------------------------------------------------------------------------------------

def _normalize(x):
    return (x - 127.5) * (1.0 / 128.0)


def _calibrate(boxes, offsets):
    """Apply the nets' box regression (offsets are fractions of the box width/height)."""
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * wh


def _square(boxes):
    """Grow boxes to squares around their centres (the nets were trained on square crops)."""
    c = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    half = 0.5 * (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values
    return torch.cat([c - half, c + half], dim=1)


class _Octaves:
    """The image and its successive exact 2x box-filter reductions, built on demand.

    Resampling any region from the octave that is less than 2x larger than the target keeps
    every resize cheap and alias-free; octave k pixel edge e maps to image edge e * 2**k.
    """

    def __init__(self, img: np.ndarray):
        self.levels = [img]

    def get(self, k: int) -> np.ndarray:
        while len(self.levels) <= k:
            prev = self.levels[-1]
            h, w = prev.shape[0] // 2, prev.shape[1] // 2
            if min(h, w) < 1:
                break
            self.levels.append(cv2.resize(prev[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA))
        return self.levels[min(k, len(self.levels) - 1)]

    def resized(self, scale: float) -> np.ndarray:
        """The whole image at ``scale`` (< 1): ceil-rounded size, edges map as e / scale."""
        h, w = self.levels[0].shape[:2]
        lw, lh = max(1, int(np.ceil(w * scale))), max(1, int(np.ceil(h * scale)))
        k = max(0, int(np.floor(np.log2(1.0 / scale)))) if scale < 1 else 0
        src = self.get(k)
        # a 2x-reduced octave dropped an odd last row/column; stretch what is left over the full
        # extent -- at most one source pixel, far below P-Net's 12 px window
        return cv2.resize(src, (lw, lh), interpolation=cv2.INTER_LINEAR)

    def crops(self, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Cut each (x0, y0, x1, y1) box and resample it to size x size (outside = black, as in
        MTCNN). Boxes are snapped to the pixel grid of the octave used; returns the crops
        (N, size, size, 3) uint8 and the snapped boxes (N, 4) in image coordinates."""
        out = np.zeros((len(boxes), size, size, 3), np.uint8)
        used = np.empty((len(boxes), 4), np.float32)
        for i, b in enumerate(boxes):
            side = max(b[2] - b[0], b[3] - b[1], 1.0)
            k = max(0, int(np.floor(np.log2(side / size))))
            src = self.get(k)
            f = float(2 ** min(k, len(self.levels) - 1))
            x0, y0, x1, y1 = (int(round(v / f)) for v in b)
            x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
            used[i] = (x0 * f, y0 * f, x1 * f, y1 * f)
            h, w = src.shape[:2]
            if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
                region = src[y0:y1, x0:x1]
            else:
                region = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
                cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
                if cx1 > cx0 and cy1 > cy0:
                    region[cy0 - y0: cy1 - y0, cx0 - x0: cx1 - x0] = src[cy0:cy1, cx0:cx1]
            interp = cv2.INTER_AREA if min(region.shape[:2]) >= size else cv2.INTER_LINEAR
            out[i] = cv2.resize(region, (size, size), interpolation=interp)
        return out, used


def nms(boxes, scores, threshold):
    """Greedy NMS on intersection over union; same result as ``torchvision.ops.nms`` (its CPU kernel:
    stable descending sort by score, float32 IoU, suppress IoU > threshold), without torchvision."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores.detach().cpu(), stable=True, descending=True)[1].numpy()
    b = boxes.detach().cpu().numpy()
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x1 - x0) * (y1 - y0)
    suppressed = np.zeros(len(b), bool)
    keep = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, i in enumerate(order):
            if suppressed[i]:
                continue
            keep.append(i)
            rest = order[k + 1:]
            w = np.maximum(np.float32(0), np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
            h = np.maximum(np.float32(0), np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
            inter = w * h
            iou = inter / (area[i] + area[rest] - inter)
            suppressed[rest[iou.astype(np.float64) > threshold]] = True
    return torch.as_tensor(np.asarray(keep, np.int64), device=boxes.device)


def _nms_min(boxes, scores, threshold):
    """NMS on intersection over the *smaller* box (MTCNN's last stage: drops boxes in boxes)."""
    order = torch.argsort(scores, descending=True).tolist()
    b = boxes.tolist()
    area = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in b]
    keep = []
    for i in order:
        ok = True
        for j in keep:
            iw = min(b[i][2], b[j][2]) - max(b[i][0], b[j][0])
            ih = min(b[i][3], b[j][3]) - max(b[i][1], b[j][1])
            if iw > 0 and ih > 0 and iw * ih / max(min(area[i], area[j]), 1e-9) > threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return torch.as_tensor(keep, dtype=torch.long)


def _contrast_stretched(rgb: np.ndarray, min_range: float = 128.0) -> np.ndarray:
    """The image for the search: a photo whose brightness spans less than ``min_range`` levels
    (0.5th to 99.5th percentile) stretched to span 0..255; any other photo as it is.

    MTCNN was trained on well-exposed photos: in an underexposed photo (brightest pixels at 30)
    6 of 40 CelebA faces were missed, at 15 all of them; a foggy or washed-out one likewise. The
    boxes and landmarks found on the stretched copy are in the same pixel coordinates.
    """
    r, g, b = _sample(rgb)
    lum = np.maximum(np.maximum(r, g), b)   # the brightest channel
    lo, hi = (float(v) for v in np.percentile(lum, (0.5, 99.5)))
    if hi - lo >= min_range or hi - lo < 4:   # well exposed, or a flat image with nothing in it
        return rgb
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
    return lut.round().astype(np.uint8)[rgb]


def _sample(rgb: np.ndarray) -> tuple:
    """The three channels of a 250k-pixel sample of ``rgb``, plenty for percentiles (combined
    with np.maximum: ndarray.max(axis=2) over 3 bytes took 11 ms of a 2 MP detection)."""
    h, w = rgb.shape[:2]
    step = max(1, int(np.sqrt(h * w / 250_000)))
    return tuple(rgb[::step, ::step, c] for c in range(3))


def _colourless(rgb: np.ndarray) -> bool:
    """Whether a photo is grey (black and white, or grey stored as RGB with JPEG's colour noise):
    in 99 % of a 250k-pixel sample the channels lie within COLOURLESS_SPREAD levels. The least
    colourful of 600 CelebA colour photos spread 39 there; grey ones saved as RGB JPEGs 0."""
    r, g, b = _sample(rgb)
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return float(np.percentile(spread, 99)) <= COLOURLESS_SPREAD


def _tilt(img: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``img`` turned by ``degrees`` (counter-clockwise) on a canvas that holds all of it, its
    corners filled by the nearest edge; and the 2x3 map from the turned image's pixel centres
    back to ``img``'s."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    tw, th = int(np.ceil(h * s + w * c)), int(np.ceil(h * c + w * s))
    m[0, 2] += (tw - w) / 2
    m[1, 2] += (th - h) / 2
    turned = cv2.warpAffine(img, m, (tw, th), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return turned, cv2.invertAffineTransform(m)


def _outside_larger_faces(boxes, scores, ratio: float = 2.0):
    """Indices of the boxes whose centre is not inside a box ``ratio`` times their size or more
    that scored higher. Such a box is part of that face: O-Net read the lips and chin of a
    face as a face of their own (CelebA 032950 enlarged 2x: a 78 px "face" centred on the chin
    of a 217 px one, 0.85, their overlap 0.68 of the smaller box, under the 0.7 of the last NMS),
    and editing it pasted a second, misaligned edit over the real face."""
    b = boxes.tolist()
    side = [max(x1 - x0, y1 - y0) for x0, y0, x1, y1 in b]
    keep = []
    for j, (x0, y0, x1, y1) in enumerate(b):
        cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
        inside = any(i != j and side[i] >= ratio * side[j] and float(scores[i]) > float(scores[j])
                     and b[i][0] <= cx <= b[i][2] and b[i][1] <= cy <= b[i][3] for i in range(len(b)))
        if not inside:
            keep.append(j)
    return torch.as_tensor(keep, dtype=torch.long)


# --------------------------------------------------------------------------------------------
# detector
# --------------------------------------------------------------------------------------------

class FaceDetector:
    """MTCNN face + landmark detector (CPU by default; any torch device works).

    ``max_side``: photos larger than this (longest side, pixels) are downscaled for detection,
    which keeps the image pyramid cheap; coordinates are mapped back to the photo.
    """

    def __init__(self, device: str | torch.device = "cpu", weights: str | Path | None = None,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, max_side: int = 1024):
        self.device = torch.device(device)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.max_side = int(max_side)
        self.pnet, self.rnet, self.onet = _PNet(), _RNet(), _ONet()
        self._load(Path(weights) if weights is not None else DEFAULT_WEIGHTS)
        for net in (self.pnet, self.rnet, self.onet):
            net.to(self.device).eval().requires_grad_(False)

    def _load(self, path: Path) -> None:
        from core.model_file import read_safetensors
        # read into memory, not mapped (see read_safetensors): replacing the app's files while it
        # runs must not kill it
        shipped = SHIPPED_WEIGHTS_SHA256.get(path.resolve())
        if shipped is None:
            _, tensors = read_safetensors(path, "cannot load the face detector weights", 64 << 20)
        else:
            tensors = _shipped_tensors(path, shipped)
        for prefix, net in (("pnet.", self.pnet), ("rnet.", self.rnet), ("onet.", self.onet)):
            sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                net.load_state_dict(sd, strict=True)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise ModelFileError(f"{path}: face detector weights do not match ({first})") from None

    # ----------------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray, min_size: float = 40.0, thorough: bool = False,
               check=None) -> list[Face]:
        """Find faces in a uint8 RGB (H, W, 3) image; returns them in reading order (:func:`reading_order`).

        ``min_size``: smallest face (box side, photo pixels) to look for. Photos larger than
        ``max_side`` are analysed as if downscaled to it (photos longer than 4:3: to the pixel count
        of a 4:3 photo of that size): the smallest face found there is 20 pixels, so in a big 4:3
        photo the effective minimum is ``20 * longest side / max_side``; where that finds no face,
        the photo is searched once more at twice that scale (half that minimum). A detection at
        most an eighth the size of a face O-Net is sure of, not sure itself, and under 40 px where
        the photo was searched, is dropped (:func:`_without_specks`); so is one at most a fifth
        that size, in a photo searched below its own size, that does not read as a face framed a
        little differently, and one smaller than that face that reads as none at all so
        (:meth:`_steady`). A grey photo in which nothing was found is searched tilted 25 degrees
        either way (:meth:`_tilted`).

        ``thorough``: every one of those searches is run, whatever the others found (the app's
        *Find more faces*, :meth:`_thorough`): a face lying beside upright ones, a small face in
        a big photo where a large one was found, a tilted face. Several times the cost (up to
        five searches); ``check()`` is called between them (a job's cancellation point).
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"detect expects a uint8 (H, W, 3) RGB image, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        if min(h, w) < 12:
            return []
        if thorough:
            return reading_order(_without_specks(self._thorough(rgb, min_size, check or (lambda: None))))
        faces, askew = self._find(rgb, min_size)
        if not faces or askew:
            # A photo shot sideways whose orientation tag was lost (a scan, a messenger's copy),
            # or a person lying down: the photo is looked at turned a quarter either way where
            # nothing was found upright, or a face was found lying on its side, or one that reads
            # better the wrong way up was dropped (a head tilted 60 degrees: the sample photo
            # enlarged 2x and turned 62 degrees had only a badge on the suit left, 0.84). The turn whose
            # faces are upright there wins (turned the wrong way, a face can be found upside
            # down); its faces join those found upright where they are not on one of them.
            # Turned, a big photo is searched at its first scale only: a faceless 4000x3000 photo
            # took 3.2 s instead of 0.9 with both scales each way (1.3 s so).
            best = None
            for k in (1, 3):
                found = [f for f in self._find(np.ascontiguousarray(np.rot90(rgb, k)), min_size, first_only=True)[0]
                         if f.score >= SIDEWAYS_SCORE]
                key = (sum(not f.upside_down for f in found), sum(f.score for f in found))
                if found and (best is None or key > best[0]):
                    best = (key, k, found)
            if best is not None:
                faces += [f for f in (_unturned(f, best[1], w, h) for f in best[2]) if not overlaps(f, faces)]
        if not faces and _colourless(rgb):
            faces = self._tilted(rgb, min_size)
        return reading_order(_without_specks(faces))

    def face_in_box(self, rgb: np.ndarray, box, check=None) -> Face | None:
        """The face in ``box`` (x0, y0, x1, y1, photo pixels), drawn by the user around a face the
        searches missed; None where none is found there. The box grown by ``MARK_MARGIN`` each
        way is searched thoroughly on its own (:meth:`detect`), enlarged so that its shorter side
        is ``MARK_SIDE`` px where it is smaller: a face under the 40 px the searches look for
        (a person at the back of a group photo) is searched at a size where it is found, and the
        region's own contrast is stretched (a face in a dark corner). Of the faces found there,
        the one whose centre lies in the box and whose side is at least ``MARK_FILL`` of the
        box's, nearest its centre, in the photo's coordinates."""
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in box)
        side = max(x1 - x0, y1 - y0)
        if side < MARK_MIN_PX or x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            return None
        m = MARK_MARGIN * side
        rx0, ry0 = max(0, int(np.floor(x0 - m))), max(0, int(np.floor(y0 - m)))
        rx1, ry1 = min(w, int(np.ceil(x1 + m))), min(h, int(np.ceil(y1 + m)))
        region = rgb[ry0:ry1, rx0:rx1]
        s = max(1.0, MARK_SIDE / min(region.shape[:2]))
        if s > 1.0:
            region = cv2.resize(region, (round(region.shape[1] * s), round(region.shape[0] * s)),
                                interpolation=cv2.INTER_CUBIC)
        found = self.detect(np.ascontiguousarray(region), min_size=max(12.0, MARK_FILL * side * s),
                            thorough=True, check=check)
        sx, sy = region.shape[1] / (rx1 - rx0), region.shape[0] / (ry1 - ry0)
        best = None
        for f in found:
            fb = (f.box[0] / sx + rx0, f.box[1] / sy + ry0, f.box[2] / sx + rx0, f.box[3] / sy + ry0)
            cx, cy = 0.5 * (fb[0] + fb[2]), 0.5 * (fb[1] + fb[3])
            if not (x0 <= cx <= x1 and y0 <= cy <= y1) or max(fb[2] - fb[0], fb[3] - fb[1]) < MARK_FILL * side:
                continue
            d = np.hypot(cx - 0.5 * (x0 + x1), cy - 0.5 * (y0 + y1))
            if best is None or d < best[0]:
                lm = (f.landmarks + 0.5) / (sx, sy) - 0.5 + (rx0, ry0)
                best = (d, Face(fb, lm.astype(np.float32), f.score, f.upside_down, f.quarter_turns))
        return best[1] if best else None

    def _thorough(self, rgb: np.ndarray, min_size: float, check) -> list:
        """The faces of every search :meth:`detect` may make, each made: upright and turned a
        quarter either way at the scale that looks for faces down to ``min_size``
        (:meth:`thorough_scale`), and tilted ``TILTS`` either way. A face joins
        those found before it where it is not on one of them, with the rules each search keeps
        its faces by (turned: O-Net at least ``SIDEWAYS_SCORE`` sure and upright there, and, as
        tilted: read as a face framed the ``FRAMINGS`` ways, ``TILT_ODDS``)."""
        h, w = rgb.shape[:2]
        scale = (self.thorough_scale(h, w, min_size),)
        faces = self._find(rgb, min_size, scales=scale)[0]
        for k in (1, 3):
            check()
            turned = np.ascontiguousarray(np.rot90(rgb, k))
            pairs = [(f, _unturned(f, k, w, h)) for f in self._find(turned, min_size, scales=scale)[0]
                     if f.score >= SIDEWAYS_SCORE and not f.upside_down]
            pairs = [(f, u) for f, u in pairs if not overlaps(u, faces)]
            if pairs:
                # searched turned whatever was found upright, hands and lettering read as faces
                # there (0.92, 0.93 in 2 of 148 CelebA photos); they do not however framed
                # (TILT_ODDS: 1.4 and 3.5, against 7.9 and up for people lying beside others)
                odds = self._framed_odds(_Octaves(_contrast_stretched(turned)), [f for f, _u in pairs])
                faces += [u for (_f, u), o in zip(pairs, odds) if o >= TILT_ODDS]
        check()
        faces += [f for f in self._tilted(rgb, min_size) if not overlaps(f, faces)]
        return faces

    def _tilted(self, rgb: np.ndarray, min_size: float) -> list:
        """The faces of a photo searched tilted by each of ``TILTS`` (at its first scale; the tilt
        whose faces are more and surer wins) that read as faces framed the ``FRAMINGS`` ways (mean
        log-odds ``TILT_ODDS`` or more), in the photo's coordinates."""
        h, w = rgb.shape[:2]
        scale = self._search_scales(h, w, min_size)[0]
        small = rgb if scale >= 1.0 else cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        sx, sy = w / small.shape[1], h / small.shape[0]
        best = None
        for degrees in TILTS:
            turned, back = _tilt(small, degrees)
            found = [f for f in self._find(turned, min_size / sx, first_only=True)[0] if not f.upside_down]
            if not found:
                continue
            odds = self._framed_odds(_Octaves(_contrast_stretched(turned)), found)
            found = [f for f, o in zip(found, odds) if o >= TILT_ODDS]
            key = (len(found), sum(f.score for f in found))
            if found and (best is None or key > best[0]):
                best = (key, back, found)
        if best is None:
            return []
        _key, back, found = best
        faces = []
        for f in found:
            # pixel centres through the turn, then the reduction (edges scale, centres shift by half)
            pts = np.concatenate([f.landmarks, [[f.center_x - 0.5, f.center_y - 0.5]]]) @ back[:, :2].T + back[:, 2]
            pts = (pts + 0.5) * (sx, sy) - 0.5
            cx, cy = pts[-1] + 0.5
            half = 0.5 * f.size * sx
            faces.append(Face((float(cx - half), float(cy - half), float(cx + half), float(cy + half)),
                              pts[:-1].astype(np.float32), f.score, search_scale=f.search_scale / sx))
        return faces

    def _find(self, rgb: np.ndarray, min_size: float, first_only: bool = False, scales=None) -> tuple:
        """An upright search of ``rgb`` (at its first scale only with ``first_only``; at
        ``scales`` in turn where given): its faces, and whether a detection that reads as a face
        only turned was dropped (one lying on its side, or one that reads better upside down but
        not surely so)."""
        h, w = rgb.shape[:2]
        octaves = _Octaves(_contrast_stretched(rgb))
        askew = False
        if scales is None:
            scales = self._search_scales(h, w, min_size)
            scales = scales[:1] if first_only else scales
        with torch.inference_mode():
            for downscale in scales:
                min_px = max(float(min_size), 20.0 / downscale, 12.0)
                boxes, scores, points, turned, dropped = self._cascade(octaves, h, w, min_px)
                askew |= dropped
                if len(boxes):
                    break
        faces = []
        for b, sc, lm, t in zip(boxes, scores, points, turned):
            # MTCNN's left/right is the viewer's; enforce the contract (left = smaller x as the
            # face is seen upright: larger x in the photo for an upside-down face) anyway.
            for a, c in ((0, 1), (3, 4)):
                if (lm[a, 0] > lm[c, 0]) != bool(t):
                    lm[[a, c]] = lm[[c, a]]
            faces.append(Face(tuple(float(v) for v in b), lm.astype(np.float32), float(sc), bool(t),
                              search_scale=float(downscale)))
        return self._steady(octaves, faces), askew

    def _steady(self, octaves: _Octaves, faces: list) -> list:
        """``faces`` less those at most ``1 / FRAMING_RATIO`` the size of a face scored ``SPECK_SURE``
        or more, found below the photo's own size, that do not read as a face framed a little
        differently: their summed log-odds (crop and mirror image, :meth:`_odds`) averaged over
        ``FRAMINGS`` is under ``FRAMING_ODDS``.

        Enlarged to 25 or 50 MP, CelebA photos had stars on a jacket, a watch, lettering, jewellery
        or a blur found at an eighth to a fifth of the main face's size, 0.67 to 0.99: each a face
        of its own in the window, beyond the speck rule's eighth. O-Net reads them as faces at the
        box it found and hardly at a box moved by a tenth; a real face that small reads as one at
        all of them. Photos searched at their own size are left as they were.

        A detection over a fifth of that size but smaller goes only under ``FRAMING_ODDS_LARGE``:
        blurred real faces that size, half hidden, read as low as -1, so only the plainest
        non-faces go (a ring, an ear, lettering, hair beside the face). It is framed 8 ways only
        where the crop of its box reads under ``FRAMING_DOUBT``, so a group photo's sharp faces
        cost one crop each.
        """
        sure = [f.size for f in faces if f.score >= SPECK_SURE]
        if not sure:
            return faces
        largest = max(sure)
        ask = [i for i, f in enumerate(faces) if f.search_scale < 1.0 and f.size * FRAMING_RATIO <= largest]
        large = [i for i, f in enumerate(faces) if f.search_scale < 1.0 and largest < f.size * FRAMING_RATIO
                 and f.size < largest]
        if large:   # mostly real faces, read as faces surely as found: only a doubtful one is framed 8 ways
            found = self._framed(octaves, [faces[i] for i in large], FRAMINGS[:1]).reshape(-1, 48, 48, 3)
            ask += [i for i, o in zip(large, self._odds(found)[0]) if o < FRAMING_DOUBT]
        if not ask:
            return faces
        odds = self._framed_odds(octaves, [faces[i] for i in ask])
        unsteady = {i for i, o in zip(ask, odds)
                    if o < (FRAMING_ODDS if faces[i].size * FRAMING_RATIO <= largest else FRAMING_ODDS_LARGE)}
        return [f for i, f in enumerate(faces) if i not in unsteady]

    def _framed_odds(self, octaves: _Octaves, faces: list) -> np.ndarray:
        """How surely each of ``faces`` reads as a face however it is framed: its summed log-odds
        (:meth:`_odds`) averaged over the ``FRAMINGS``, (len(faces),)."""
        crops = self._framed(octaves, faces, FRAMINGS).reshape(-1, 48, 48, 3)
        return self._odds(crops)[0].reshape(len(faces), len(FRAMINGS)).mean(axis=1)

    @staticmethod
    def _framed(octaves: _Octaves, faces: list, framings) -> np.ndarray:
        """48 px crops (len(faces), len(framings), 48, 48, 3) of each face's box moved and scaled
        as ``framings`` say, the right way up (an upside-down face's turned 180 degrees)."""
        boxes = []
        for f in faces:
            for dx, dy, k in framings:
                cx, cy, half = f.center_x + dx * f.size, f.center_y + dy * f.size, 0.5 * k * f.size
                boxes.append((cx - half, cy - half, cx + half, cy + half))
        crops, _ = octaves.crops(np.asarray(boxes, np.float32), 48)
        crops = crops.reshape(len(faces), len(framings), 48, 48, 3)
        for j, f in enumerate(faces):
            if f.upside_down:   # read the right way up, as it was found
                crops[j] = crops[j, :, ::-1, ::-1].copy()
        return crops

    def _search_scales(self, h: int, w: int, min_size: float) -> tuple:
        """The scales :meth:`detect` searches an h x w photo at, in turn, until a face is found.

        The pyramid's cost is its first level's area: a photo is searched as if downscaled to
        max_side, or, when it is longer than 4:3 (a panorama, a tall strip), to as many pixels as
        a 4:3 photo of that size has. Limiting the long side alone shrank a 6000x400 panorama's
        search to 1024x68 pixels, so a face under 117 px (a third of its height) was never found.
        Where that misses faces down to min_size, a second look at twice the scale: a group photo
        of 4000x3000 has faces of 40-78 px that the first search (20 px at 1024 = 78 px) cannot
        see; the second costs about 0.5 s, and only where the first found nothing.
        """
        first = min(1.0, max(self.max_side / max(h, w), self.max_side * float(np.sqrt(0.75 / (h * w)))))
        if first < 1.0 and 20.0 / first > min_size:
            return first, min(1.0, 2 * first)
        return (first,)

    def thorough_scale(self, h: int, w: int, min_size: float = 40.0) -> float:
        """The scale a thorough search (:meth:`detect`) searches an h x w photo at: the one at
        which faces down to ``min_size`` are looked for (a big photo's first scale looks only for
        those over 20 px there); searched larger, the same pyramid costs more."""
        return min(1.0, max(self._search_scales(h, w, min_size)[0], 20.0 / min_size))

    def search_scale(self, h: int, w: int, min_size: float = 40.0) -> float:
        """The scale (<= 1) at which :meth:`detect` last searched an h x w photo in which it found
        no face: below 1, a small face can have been missed (where it found faces, each
        ``Face.search_scale`` says where)."""
        return self._search_scales(h, w, min_size)[-1]

    def _run(self, net: nn.Module, crops: np.ndarray):
        x = torch.from_numpy(crops.astype(np.float32)).to(self.device).permute(0, 3, 1, 2).contiguous()
        return [t.cpu() for t in net(_normalize(x))]

    def _cascade(self, octaves: _Octaves, h: int, w: int, min_px: float):
        """P-, R- and O-Net; returns numpy boxes (N, 4), scores (N,), landmarks (N, 5, 2),
        whether each face is upside down (N,) bool, and whether a detection was dropped as one
        lying on its side or read better upside down but not surely so."""
        t1, t2, t3 = self.thresholds
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32),
                 np.zeros(0, bool), False)

        # Stage 1: P-Net over a pyramid whose first level maps min_px faces onto its 12 px window.
        boxes, scores, offsets = [], [], []
        s = 12.0 / min_px
        while min(h, w) * s >= 12:
            level = octaves.resized(s)
            lh, lw = level.shape[:2]
            prob, reg = self._run(self.pnet, level[None])
            prob, reg = prob[0], reg[0]
            ys, xs = torch.nonzero(prob >= t1, as_tuple=True)
            if len(ys):
                # output cell (x, y) sees the 12x12 window starting at (2x, 2y) of this level
                kx, ky = lw / w, lh / h
                cell = torch.stack([2 * xs / kx, 2 * ys / ky, (2 * xs + 12) / kx, (2 * ys + 12) / ky], 1)
                cell, sc = cell.float(), prob[ys, xs]
                keep = nms(cell, sc, 0.5)
                boxes.append(cell[keep])
                scores.append(sc[keep])
                offsets.append(reg[:, ys[keep], xs[keep]].T)
            s *= self.factor
        if not boxes:
            return empty
        boxes, scores, offsets = torch.cat(boxes), torch.cat(scores), torch.cat(offsets)
        keep = nms(boxes, scores, 0.7)
        boxes = _square(_calibrate(boxes[keep], offsets[keep]))

        # Stage 2: R-Net on 24x24 crops.
        crops, used = octaves.crops(boxes.numpy(), 24)
        prob, reg = self._run(self.rnet, crops)
        ok = prob > t2
        if not ok.any():
            return empty
        boxes, scores, reg = torch.from_numpy(used)[ok], prob[ok], reg[ok]
        keep = nms(boxes, scores, 0.7)
        boxes = _square(_calibrate(boxes[keep], reg[keep]))

        # Stage 3: O-Net on 48x48 crops: final score, box and landmarks.
        crops, used = octaves.crops(boxes.numpy(), 48)
        prob, reg, pts = self._run(self.onet, crops)
        # O-Net is not mirror-symmetric: a tilted face scored 0.2 to 0.8 from one crop to the
        # next and its mirror image 0.98, so whether it was found turned on the photo's size
        # (CelebA 000149: found at 1x and 1.5x, missed at 1.2x, 2x, 3x, 4x). A crop O-Net doubts
        # but whose mirror image it is sure of counts as a face. Not the better of the two
        # scores: that also passed ears, hands and prints (+6% faces on CelebA photos). Its score
        # is the mean of the two: still doubtful, and a confident crop of the same face wins the
        # last NMS.
        mirrored = self._run(self.onet, crops[:, :, ::-1])[0]
        rescued = (prob >= MIRROR_DOUBT) & (mirrored > MIRROR_SURE)
        ok = (prob > t3) | rescued
        doubtful = (prob < MIRROR_UNSURE) & (mirrored < MIRROR_REJECT)
        prob = torch.where(rescued & (prob <= t3), 0.5 * (prob + mirrored), prob)
        if not ok.any():
            return empty
        boxes, scores, reg, pts, doubtful = torch.from_numpy(used)[ok], prob[ok], reg[ok], pts[ok], doubtful[ok]
        wh = boxes[:, 2:] - boxes[:, :2]
        # landmark outputs are fractions of the crop (edge coordinates); -0.5 -> pixel centres
        px = boxes[:, 0:1] + pts[:, 0:5] * wh[:, 0:1] - 0.5
        py = boxes[:, 1:2] + pts[:, 5:10] * wh[:, 1:2] - 0.5
        points = torch.stack([px, py], dim=2)
        boxes = _calibrate(boxes, reg)
        if doubtful.any():
            # A second look, at the final box: a tilted face whose first crop was off (CelebA
            # 006423 turned 25 degrees: 0.92, mirror 0.37) passes there; the prints, sleeves and
            # tattoos of 2,400 CelebA photos (plain, 2x, turned) stayed below MIRROR_REJECT.
            idx = torch.nonzero(doubtful).flatten()
            again, _ = octaves.crops(_square(boxes[idx]).numpy(), 48)
            real = self._run(self.onet, again[:, :, ::-1])[0] >= MIRROR_REJECT
            ok = torch.ones(len(boxes), dtype=torch.bool)
            ok[idx[~real]] = False
            boxes, scores, points = boxes[ok], scores[ok], points[ok]
            if not len(boxes):
                return empty
        keep = _nms_min(boxes, scores, 0.7)
        keep = keep[_outside_larger_faces(boxes[keep], scores[keep])]
        boxes, scores, points = boxes[keep].numpy(), scores[keep].numpy(), points[keep].numpy()
        turned, wrong_way, turned_points, lying = self._upside_down(octaves, boxes)
        points[turned] = turned_points[turned]
        ok = ~wrong_way & ~lying
        # A head tilted about 60 degrees reads better upside down than as found, but not surely
        # (the sample photo enlarged 2x and turned 62 degrees): dropped as such, it is a face to
        # look for turned a quarter, as one lying on its side is
        return boxes[ok], scores[ok], points[ok], turned[ok], bool((lying | wrong_way).any())

    def _odds(self, crops: np.ndarray):
        """O-Net on crops and on their mirror images: the summed log-odds of a face (N,), the
        two probabilities (N, 2) and the box offsets O-Net gives the crops (N, 4)."""
        n = len(crops)
        prob, reg, _ = self._run(self.onet, np.ascontiguousarray(np.concatenate([crops, crops[:, :, ::-1]])))
        p = np.clip(prob.numpy().astype(np.float64), 1e-6, 1 - 1e-6).reshape(2, n).T
        return np.log(p / (1 - p)).sum(axis=1), p, reg[:n].numpy()

    def _upside_down(self, octaves: _Octaves, boxes: np.ndarray):
        """Which final boxes hold an upside-down face (N,) bool, which read better upside down
        but not surely enough to be turned (N,) bool, and for the first the landmarks (N, 5, 2)
        O-Net gives on their crops turned 180 degrees, mapped back to the photo.

        O-Net reads an upside-down face as a face (CelebA photos turned 180 degrees: 0.7 to 0.99)
        and puts its "eyes" on the mouth, so such a face was aligned upside down and edited so
        (glasses painted over the mouth and nose). Turned upright its crop reads as a face more
        surely; but O-Net also scores a third of upright faces' crops turned 180 degrees above
        0.9, so the test weighs both ways round, each with its mirror image (summed log-odds),
        and a quarter turn either way. A detection that reads better upside down but is not a
        sure face so, or reads better still turned a quarter, has its landmarks on no face the
        right way up (part of an upside-down face, a face turned sideways, a hand)
        and is dropped. On 1,500 CelebA photos as they are no face is turned or dropped (a hand
        is); of the first 1,000 turned 180 degrees, 476 faces are turned and 4 dropped, and 10
        detections on part of an upside-down face are still not recognised; see docs/faces.md.
        """
        n = len(boxes)
        turned, points = np.zeros(n, bool), np.zeros((n, 5, 2), np.float32)
        if n == 0:
            return turned, turned.copy(), points, turned.copy()
        crops, used = octaves.crops(_square(torch.from_numpy(boxes)).numpy(), 48)
        odds, p, reg = self._odds(np.concatenate([crops[:, ::-1, ::-1], crops]))
        up, p_up, reg = odds[:n], p[:n], reg[:n]        # the crop turned 180 degrees, and its mirror
        found = odds[n:]                                # as found
        better = np.flatnonzero(up > found + TURNED_MARGIN)
        # a quarter turn either way, read where turning could matter: a face read better upside
        # down, or one read as found less surely than SIDEWAYS_DOUBT (8 % of upright faces)
        side, side_sure = np.full(n, -np.inf), np.zeros(n, bool)
        ask = np.flatnonzero((found < SIDEWAYS_DOUBT) | (up > found + TURNED_MARGIN))
        if len(ask):
            m = len(ask)
            q, pq, _ = self._odds(np.concatenate([np.rot90(crops[ask], k, axes=(1, 2)) for k in (1, 3)]))
            side[ask] = np.maximum(q[:m], q[m:])
            side_sure[ask] = np.maximum(pq[:m].min(axis=1), pq[m:].min(axis=1)) > TURNED_SURE
        sure = (p_up[better, 0] > TURNED_SURE) & (p_up[better, 1] > TURNED_MIRROR) & (up[better] > side[better])
        idx = better[sure]
        wrong_way = np.zeros(n, bool)
        wrong_way[better[~sure]] = True
        lying = (side > found + SIDEWAYS_MARGIN) & side_sure & (side > up) & ~wrong_way
        turned[idx] = True
        if not len(idx):
            return turned, wrong_way, points, lying
        # The box was regressed for a face the right way up; O-Net's offsets on the turned crop
        # (turned back: x0 moves by -dx1, and so on) frame the face as it is, and the landmarks
        # come from the turned crop of that box, as an upright face's come from O-Net's own
        # crop. From the first crop's landmarks 011537 was framed 20 % too close (median error
        # 1.30 px in the 178 x 218 frame instead of 0.92, docs/faces.md).
        r = reg[idx]
        offsets = torch.from_numpy(np.stack([-r[:, 2], -r[:, 3], -r[:, 0], -r[:, 1]], axis=1))
        again, framed = octaves.crops(_square(_calibrate(torch.from_numpy(used[idx]), offsets)).numpy(), 48)
        t = self._run(self.onet, np.ascontiguousarray(again[:, ::-1, ::-1]))[2].numpy()
        # landmarks of the turned crop (fractions of it, pixel edges): u there is 1 - u here
        wh = framed[:, 2:] - framed[:, :2]
        px = framed[:, 0:1] + (1.0 - t[:, 0:5]) * wh[:, 0:1] - 0.5
        py = framed[:, 1:2] + (1.0 - t[:, 5:10]) * wh[:, 1:2] - 0.5
        points[idx] = np.stack([px, py], axis=2)
        return turned, wrong_way, points, lying


def _shipped_tensors(path: Path, digest: str) -> dict:
    """The tensors of a detector file the app ships, read once and checked against its SHA-256
    (1 ms for the 2 MB file); ModelFileError where it is not those bytes."""
    from safetensors.torch import load

    from core.errors import os_reason
    try:
        with open(path, "rb") as f:
            data = f.read(64 << 20)
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the file: {os_reason(e)}") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise ModelFileError(f"{path}: damaged: the face detector's weights are not those the app ships (the "
                             "file changed after it was installed, e.g. a disk or copy error): reinstall the app")
    return load(data)


class ThoroughDetector:
    """A detector for ``core.photo_edit.find_faces`` whose every search is thorough
    (``FaceDetector.detect(..., thorough=True)``): ``edit`` and ``batch --find-more-faces``."""

    def __init__(self, detector: FaceDetector | None = None):
        self.detector = detector if detector is not None else shared_detector()

    def detect(self, rgb: np.ndarray, min_size: float = 40.0) -> list[Face]:
        return self.detector.detect(rgb, min_size=min_size, thorough=True)

    def search_scale(self, h: int, w: int, min_size: float = 40.0) -> float:
        return self.detector.thorough_scale(h, w, min_size)


_shared: FaceDetector | None = None
_shared_lock = threading.Lock()


def shared_detector() -> FaceDetector:
    """The process's shared CPU :class:`FaceDetector`, built on first use."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = FaceDetector()
    return _shared


def detect_faces(rgb: np.ndarray, min_size: float = 40.0, thorough: bool = False, check=None) -> list[Face]:
    """Detect faces with the shared CPU :class:`FaceDetector` (``thorough``: as
    :meth:`FaceDetector.detect`)."""
    return shared_detector().detect(rgb, min_size=min_size, thorough=thorough, check=check)
