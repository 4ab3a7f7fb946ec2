"""Alignment template, face crops and paste-back.

A model only works on crops framed like its training images. For CelebA that framing is the
aligned 178x218 image with its central 178x178 square (rows 20..198) kept, as the reference Fader
Networks code does. ``align_face`` maps a photo's five landmarks onto the template's landmarks
with a similarity transform; ``paste_back`` puts the *difference* the model made back into the
full-resolution photo through a feathered mask, leaving every other pixel untouched.

Coordinates follow OpenCV: pixel (i, j) is centred at x=i, y=j; ``matrix`` is a (2, 3) float64
affine mapping photo coordinates to crop coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

__all__ = [
    "Template", "CELEBA_TEMPLATE", "AlignedFace", "align_face", "aligned_crop", "face_mask",
    "crop_mask", "edit_coefficients", "paste_back", "similarity_transform", "crop_landmarks",
]


@dataclass(frozen=True, eq=False)
class Template:
    """Where a model expects faces: a ``frame`` (w, h), the square ``crop_box`` (x0, y0, x1, y1,
    pixel edges) cut from it, and the five mean ``landmarks`` (5, 2) in frame pixel coordinates."""

    frame: tuple[int, int]
    crop_box: tuple[float, float, float, float]
    landmarks: np.ndarray

    def __post_init__(self):
        lm = np.array(self.landmarks, dtype=np.float32).reshape(5, 2)
        lm.setflags(write=False)
        object.__setattr__(self, "landmarks", lm)
        object.__setattr__(self, "frame", tuple(int(v) for v in self.frame))
        object.__setattr__(self, "crop_box", tuple(float(v) for v in self.crop_box))
        x0, y0, x1, y1 = self.crop_box
        if len(self.frame) != 2 or min(self.frame) <= 0:
            raise ValueError(f"template frame must be (w, h) > 0, got {self.frame}")
        if not (x1 > x0 and y1 > y0) or abs((x1 - x0) - (y1 - y0)) > 1e-6:
            raise ValueError(f"template crop_box must be a square (x0, y0, x1, y1), got {self.crop_box}")
        if not np.all(np.isfinite(lm)):
            raise ValueError("template landmarks must be finite numbers")

    def __eq__(self, other):
        if not isinstance(other, Template):
            return NotImplemented
        return (self.frame == other.frame and self.crop_box == other.crop_box
                and np.array_equal(self.landmarks, other.landmarks))

    def __hash__(self):
        return hash((self.frame, self.crop_box, self.landmarks.tobytes()))

    def to_dict(self) -> dict:
        """JSON-ready form (stored in model files)."""
        return {
            "frame": list(self.frame),
            "crop_box": list(self.crop_box),
            "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in self.landmarks],
            "landmark_names": ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Template":
        """Inverse of :meth:`to_dict`; raises ValueError naming the bad field."""
        if not isinstance(d, dict):
            raise ValueError(f"alignment template must be a mapping, got {type(d).__name__}")
        for key, shape in (("frame", (2,)), ("crop_box", (4,)), ("landmarks", (5, 2))):
            if key not in d:
                raise ValueError(f"alignment template lacks '{key}'")
            try:
                arr = np.asarray(d[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"alignment template '{key}' is not numeric") from None
            if arr.shape != shape:
                raise ValueError(f"alignment template '{key}' must have shape {shape}, got {arr.shape}")
        return cls(frame=tuple(d["frame"]), crop_box=tuple(d["crop_box"]), landmarks=d["landmarks"])


# Mean MTCNN landmarks (core.faces.FaceDetector, min_size=40) on CelebA's aligned 178x218 images,
# pixel-centre coordinates, measured with
#   python bench/faces_eval.py --measure-template --template-count 500
# on the first 500 files by name (000001.jpg .. 016636.jpg) of ../shared/data/celeba/img_align_celeba:
# a face was found in 499 of them; per-point std 1.4-2 px for the eyes, 4-7 px for nose and mouth.
# Measuring with our own detector (rather than copying CelebA's annotations) makes detector and
# template agree, so a re-detected aligned crop lands on the template without bias.
CELEBA_TEMPLATE = Template(
    frame=(178, 218),
    crop_box=(0.0, 20.0, 178.0, 198.0),
    landmarks=[
        [69.25, 111.26],   # left_eye
        [108.14, 111.19],  # right_eye
        [88.23, 135.64],   # nose
        [71.15, 152.66],   # mouth_left
        [105.73, 152.47],  # mouth_right
    ],
)


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A model-size crop (uint8 (S, S, 3)) and the (2, 3) affine that maps photo -> crop coords."""

    crop: np.ndarray
    matrix: np.ndarray


def crop_landmarks(template: Template, size: int) -> np.ndarray:
    """The template landmarks in the coordinates of a size x size crop (pixel centres)."""
    x0, y0, x1, _ = template.crop_box
    k = size / (x1 - x0)
    # centre c sits at edge c + 0.5; edges scale with the crop; back to centres with - 0.5
    return ((template.landmarks.astype(np.float64) + 0.5 - (x0, y0)) * k - 0.5).astype(np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src -> dst points
    (Umeyama 1991, no reflection). Returns a (2, 3) float64 matrix."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError("similarity_transform needs two equal-length sets of >= 2 points")
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    var = (s ** 2).sum() / len(src)
    if var <= 1e-12:
        raise ValueError("landmarks are degenerate (all points coincide)")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / var
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - scale * rot @ ms
    return m


def _check_rgb(rgb: np.ndarray, name: str = "image") -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{name} must be a uint8 (H, W, 3) RGB array, got {rgb.dtype} {rgb.shape}")
    return rgb


def _warp(rgb: np.ndarray, matrix: np.ndarray, dsize: tuple[int, int]) -> np.ndarray:
    """warpAffine that stays alias-free when shrinking: the part of the photo the crop sees is
    first reduced with INTER_AREA to about the crop's resolution, then warped bilinearly."""
    h, w = rgb.shape[:2]
    m = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # crop pixels per photo pixel
    if scale >= 0.75:
        return cv2.warpAffine(rgb, m, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # Photo rectangle seen by the crop, plus the mirror image of any part outside the photo
    # (BORDER_REFLECT reads it), clipped to the photo; all other pixels are irrelevant.
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0], [dsize[0], 0], [0, dsize[1]], [dsize[0], dsize[1]]], np.float64) - 0.5
    pts = corners @ inv[:, :2].T + inv[:, 2]
    lo, hi = np.floor(pts.min(0)) - 2, np.ceil(pts.max(0)) + 3
    # BORDER_REFLECT reads x < 0 at -x-1 and x >= w at 2w-x-1
    rx0 = int(max(0, min(lo[0], 2 * w - hi[0] - 1 if hi[0] > w else lo[0])))
    ry0 = int(max(0, min(lo[1], 2 * h - hi[1] - 1 if hi[1] > h else lo[1])))
    rx1 = int(min(w, max(hi[0], -lo[0] if lo[0] < 0 else hi[0])))
    ry1 = int(min(h, max(hi[1], -lo[1] if lo[1] < 0 else hi[1])))
    if rx1 - rx0 < 2 or ry1 - ry0 < 2:  # crop entirely off the photo: let OpenCV reflect it all
        return cv2.warpAffine(rgb, m, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # Where the region stops short of a photo edge no sample reaches its border (the margin
    # above), so reflecting about the region's border only ever happens at real photo edges.
    region = rgb[ry0:ry1, rx0:rx1]
    rw, rh = max(1, round((rx1 - rx0) * scale)), max(1, round((ry1 - ry0) * scale))
    small = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
    fx, fy = rw / (rx1 - rx0), rh / (ry1 - ry0)
    # small-image centre coords: u = (x - rx0 + 0.5) * fx - 0.5  ->  x = (u + 0.5) / fx - 0.5 + rx0
    to_photo = np.array([[1 / fx, 0, 0.5 / fx - 0.5 + rx0], [0, 1 / fy, 0.5 / fy - 0.5 + ry0]])
    m_small = m[:, :2] @ to_photo[:, :2]
    t_small = m[:, :2] @ to_photo[:, 2] + m[:, 2]
    return cv2.warpAffine(small, np.hstack([m_small, t_small[:, None]]), dsize,
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def align_face(rgb: np.ndarray, landmarks: np.ndarray, template: Template, size: int) -> AlignedFace:
    """Crop a face from a photo so that its landmarks land on the template's (similarity fit).

    ``landmarks`` is float (5, 2) as returned by :mod:`core.faces`; ``size`` is the model's input
    size. Parts of the crop outside the photo are filled by reflection.
    """
    rgb = _check_rgb(rgb, "photo")
    size = int(size)
    if size < 8:
        raise ValueError(f"crop size must be >= 8, got {size}")
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != template.landmarks.shape or not np.all(np.isfinite(pts)):
        raise ValueError(f"landmarks must be finite {template.landmarks.shape} (x, y) points, "
                         f"got shape {pts.shape}")
    m = similarity_transform(pts, crop_landmarks(template, size))
    crop = _warp(rgb, m, (size, size))
    return AlignedFace(np.ascontiguousarray(crop), m)


def aligned_crop(rgb: np.ndarray, template: Template, size: int) -> AlignedFace:
    """Crop an image that is already framed like ``template.frame`` (any resolution with that
    framing): the crop box is scaled by W/frame_w, H/frame_h, cut and resized to size x size."""
    rgb = _check_rgb(rgb)
    h, w = rgb.shape[:2]
    fw, fh = template.frame
    x0, y0, x1, y1 = template.crop_box
    bx0, bx1 = round(x0 * w / fw), round(x1 * w / fw)
    by0, by1 = round(y0 * h / fh), round(y1 * h / fh)
    bx0, by0 = max(0, bx0), max(0, by0)
    bx1, by1 = min(w, max(bx1, bx0 + 1)), min(h, max(by1, by0 + 1))
    region = rgb[by0:by1, bx0:bx1]
    size = int(size)
    shrink = size < min(region.shape[:2])
    # INTER_AREA when shrinking; Lanczos when enlarging, as the reference preprocessing does
    crop = cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    kx, ky = size / (bx1 - bx0), size / (by1 - by0)
    m = np.array([[kx, 0.0, (0.5 - bx0) * kx - 0.5], [0.0, ky, (0.5 - by0) * ky - 0.5]])
    return AlignedFace(np.ascontiguousarray(crop), m)


@lru_cache(maxsize=16)
def _mask(size: int, inner: float, outer: float) -> np.ndarray:
    c = (np.arange(size, dtype=np.float64) + 0.5) / size * 2.0 - 1.0  # pixel centres in [-1, 1]
    r = np.sqrt(c[None, :] ** 2 + c[:, None] ** 2)
    t = np.clip((outer - r) / max(outer - inner, 1e-6), 0.0, 1.0)
    m = (t * t * (3.0 - 2.0 * t)).astype(np.float32)  # smoothstep: no visible seam
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = 0.0
    m.setflags(write=False)
    return m


def face_mask(size: int, inner: float = 0.55, outer: float = 0.95) -> np.ndarray:
    """Feathered float32 (S, S) mask of the face region of a crop: 1 within ``inner`` and 0 beyond
    ``outer`` (radii as fractions of half the crop side, around the crop centre), smooth between,
    and 0 on the crop border."""
    if not 0.0 <= inner < outer <= 1.0:
        raise ValueError(f"face_mask needs 0 <= inner < outer <= 1, got {inner}, {outer}")
    return _mask(int(size), float(inner), float(outer)).copy()


# Model-level differences smaller than this (0..255 levels) are treated as no edit: an edited decode
# drifts by a level or two everywhere, which pasted into a photo shows as faint colour blotches.
EDIT_THRESHOLD = 1.5


@lru_cache(maxsize=16)
def _crop_mask(size: int, border: float) -> np.ndarray:
    c = (np.arange(size, dtype=np.float64) + 0.5) / size
    d = np.minimum(c, 1.0 - c)  # distance to the nearest crop edge, in crop widths
    t = np.clip((d - 0.5 / size) / max(border, 1e-6), 0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)  # smoothstep: no visible seam
    m = (ramp[:, None] * ramp[None, :]).astype(np.float32)
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = 0.0
    m.setflags(write=False)
    return m


def crop_mask(size: int, border: float = 0.12) -> np.ndarray:
    """Feathered float32 (S, S) mask over the whole crop: 1 inside, falling smoothly to 0 over the
    outer ``border`` (fraction of the side) and 0 on the crop's border pixels. The model sees and
    edits the whole crop (hair, jaw, forehead), so the paste-back carries all of it; the edit's own
    magnitude says where it is."""
    if not 0.0 < border < 0.5:
        raise ValueError(f"crop_mask needs 0 < border < 0.5, got {border}")
    return _crop_mask(int(size), float(border)).copy()


def edit_coefficients(diff: np.ndarray, guide: np.ndarray, radius: int | None = None,
                      eps: float = 64.0, threshold: float = EDIT_THRESHOLD) -> tuple:
    """The model's edit as a local affine function of the photo (a guided-filter fit, He et al.).

    ``diff`` = edited - reconstructed and ``guide`` = the aligned input crop, float (S, S, 3) in
    0..255. Returns (a, c), float32 (S, S, 3), with ``a * guide + c == diff`` (after a soft
    threshold of ``threshold`` levels on ``diff``). Applied at photo resolution as ``a * photo + c``,
    the tonal part of an edit (darker hair, a removed frame, lips) follows the photo's own edges
    instead of a blurred upsampling, and the rest of it (new structure) comes through ``c``.
    """
    d = np.asarray(diff, np.float32)
    if threshold > 0:
        d = np.sign(d) * np.maximum(np.abs(d) - np.float32(threshold), 0)
    if not d.any():
        z = np.zeros_like(d)
        return z, z
    g = np.asarray(guide, np.float32)
    size = d.shape[0]
    r = max(1, size // 64) if radius is None else int(radius)
    k = (2 * r + 1, 2 * r + 1)

    def box(x):
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mean_g, mean_d = box(g), box(d)
    cov = box(g * d) - mean_g * mean_d
    var = box(g * g) - mean_g * mean_g
    a = np.clip(cov / (var + np.float32(eps)), -1.2, 1.2)
    b = mean_d - a * mean_g
    a, b = box(a), box(b)
    c = d - a * g  # = b + the residual the affine fit leaves: nothing of the edit is dropped
    return a.astype(np.float32), c.astype(np.float32)


def crop_corners(matrix: np.ndarray, size: int) -> np.ndarray:
    """Photo coordinates (4, 2) of the outer corners of the S x S crop that ``matrix`` aligns."""
    m = np.asarray(matrix, np.float64).reshape(2, 3)
    a, t = m[:, :2], m[:, 2]
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    return (corners - t) @ np.linalg.inv(a).T


# At most this many bytes of float32 warps at once in paste_back (its bands of rows).
PASTE_BAND_BYTES = 48 << 20


def region_matrix(matrix: np.ndarray, x: int, y: int) -> np.ndarray:
    """The alignment seen from a photo region whose top-left pixel is photo (x, y): region
    pixels -> crop pixels (what warps over that region alone need)."""
    m = np.asarray(matrix, np.float64).reshape(2, 3).copy()
    m[:, 2] += m[:, :2] @ np.array([x, y], np.float64)
    return m


def paste_back(photo: np.ndarray, edited: np.ndarray, reconstructed: np.ndarray,
               matrix: np.ndarray, out: np.ndarray | None = None,
               mask: np.ndarray | None = None, crop: np.ndarray | None = None,
               guided: bool = True) -> np.ndarray:
    """Add the model's edit (edited - reconstructed, crop space) to the full-resolution photo.

    ``edited``/``reconstructed`` are the model's (S, S, 3) crops, uint8 or float in 0..255;
    ``crop`` is the aligned input crop the model saw (warped from ``photo`` when not given). The
    edit is fitted as ``a * crop + c`` (``edit_coefficients``), both maps are weighted by the
    feathered mask (``crop_mask(S)`` unless given) and warped back through the inverse of
    ``matrix`` (bilinear), over the mask's bounding rectangle in the photo only, and applied to the
    photo's own pixels: ``out = round(photo + a * photo + c)``, clipped to 0..255. ``guided=False``
    adds the plain difference instead (a = 0). Pixels the mask does not reach stay bit-identical;
    if edited == reconstructed the photo is returned unchanged. ``out`` may be ``photo`` itself (in
    place) or another array of its shape.
    """
    photo = _check_rgb(photo, "photo")
    edited, reconstructed = np.asarray(edited), np.asarray(reconstructed)
    if edited.shape != reconstructed.shape or edited.ndim != 3 or edited.shape[2] != 3 \
            or edited.shape[0] != edited.shape[1]:
        raise ValueError(f"edited and reconstructed must be (S, S, 3) of the same size, "
                         f"got {edited.shape} and {reconstructed.shape}")
    size = edited.shape[0]
    if out is None:
        out = photo.copy()
    elif out is not photo:
        if out.shape != photo.shape or out.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {photo.shape}, got {out.dtype} {out.shape}")
        np.copyto(out, photo)
    m = crop_mask(size) if mask is None else np.asarray(mask, np.float32)
    if m.shape != (size, size):
        raise ValueError(f"mask must be ({size}, {size}), got {m.shape}")
    mat = np.asarray(matrix, np.float64).reshape(2, 3)
    diff = edited.astype(np.float32) - reconstructed.astype(np.float32)
    if guided:
        if crop is None:
            crop = _warp(photo, mat, (size, size))
        crop = np.asarray(crop)
        if crop.shape != edited.shape:
            raise ValueError(f"crop must be ({size}, {size}, 3), got {crop.shape}")
        a, c = edit_coefficients(diff, crop.astype(np.float32))
    else:
        a, c = None, diff
    c = c * m[..., None]
    reach = np.any(c != 0, axis=2)
    if a is not None:
        reach |= np.any(a != 0, axis=2) & (m > 0)
    rows, cols = np.nonzero(reach)
    if rows.size == 0:
        return out

    # Photo rectangle covered by the non-zero part of the crop (+1 px of bilinear reach), clipped.
    inv = cv2.invertAffineTransform(mat)
    u0, u1, v0, v1 = cols.min() - 1.0, cols.max() + 1.0, rows.min() - 1.0, rows.max() + 1.0
    pts = np.array([[u0, v0], [u1, v0], [u0, v1], [u1, v1]]) @ inv[:, :2].T + inv[:, 2]
    h, w = photo.shape[:2]
    x0, y0 = (max(0, int(np.floor(v))) for v in pts.min(0))
    x1 = min(w, int(np.ceil(pts[:, 0].max())) + 1)
    y1 = min(h, int(np.ceil(pts[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return out  # the face is entirely outside the photo

    # WARP_INVERSE_MAP: the matrix maps destination (region) coords to source (crop) coords.
    flags = cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
    am = None if a is None else a * m[..., None]
    # In bands of rows: the float32 warps of a whole region cost 24 bytes a pixel (a face 2,900 px
    # across in a 48 MP photo: 480 MB); a band's cost is bounded. A region that fits one band is
    # computed as one, as before.
    rows = max(1, PASTE_BAND_BYTES // (24 * (x1 - x0)))
    for ys in range(y0, y1, rows):
        ye = min(y1, ys + rows)
        to_crop, dsize = region_matrix(mat, x0, ys), (x1 - x0, ye - ys)
        region = photo[ys:ye, x0:x1]
        d_w = cv2.warpAffine(c, to_crop, dsize, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if am is not None:
            a_w = cv2.warpAffine(am, to_crop, dsize, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            d_w += np.multiply(a_w, region, out=a_w)
        # uint8 + float32 computed in float, rounded half-to-even and saturated to 0..255; where
        # d_w is 0 the sum is the photo's own integer, so those pixels stay bit-identical.
        out[ys:ye, x0:x1] = cv2.add(region, d_w, dtype=cv2.CV_8U)
    return out
