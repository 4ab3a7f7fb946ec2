"""Tests for core.alignment: template, crops and paste-back (synthetic images, no data needed)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

import core.alignment as alignment
from core.alignment import (CELEBA_TEMPLATE, AlignedFace, Template, align_face, aligned_crop,
                            crop_landmarks, crop_mask, edit_coefficients, face_mask, paste_back,
                            similarity_transform)


def _similarity(angle_deg, scale, tx, ty):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx],
                     [scale * np.sin(a), scale * np.cos(a), ty]])


def _apply(m, pts):
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]


def _plane_photo(h, w, a=0.2, b=0.15, c=20.0):
    """value = a*x + b*y + c in every channel: any filtering or warping keeps it a plane, so
    crop pixels can be predicted exactly from the matrix."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    v = a * x + b * y + c
    return np.repeat(np.clip(np.rint(v), 0, 255).astype(np.uint8)[..., None], 3, axis=2), (a, b, c)


def _textured_photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC))


# ------------------------------------------------------------------ template

def test_celeba_template_values():
    t = CELEBA_TEMPLATE
    assert t.frame == (178, 218) and t.crop_box == (0.0, 20.0, 178.0, 198.0)
    lm = t.landmarks
    assert lm.dtype == np.float32 and lm.shape == (5, 2)
    # measured, but CelebA's alignment makes it near-symmetric with level eyes
    assert abs((lm[0, 0] + lm[1, 0]) / 2 - 89) < 2 and abs(lm[0, 1] - lm[1, 1]) < 1
    assert 35 < lm[1, 0] - lm[0, 0] < 45
    assert lm[0, 1] < lm[2, 1] < lm[3, 1]


def test_template_dict_roundtrip_and_validation():
    d = CELEBA_TEMPLATE.to_dict()
    assert d["frame"] == [178, 218] and len(d["landmarks"]) == 5
    back = Template.from_dict(d)
    assert back == CELEBA_TEMPLATE and back.frame == (178, 218)
    import json
    assert Template.from_dict(json.loads(json.dumps(d))) == CELEBA_TEMPLATE
    for key in ("frame", "crop_box", "landmarks"):
        bad = dict(d)
        del bad[key]
        with pytest.raises(ValueError, match=key):
            Template.from_dict(bad)
    with pytest.raises(ValueError, match="landmarks"):
        Template.from_dict({**d, "landmarks": [[1, 2]] * 4})
    with pytest.raises(ValueError, match="square"):
        Template.from_dict({**d, "crop_box": [0, 0, 178, 218]})
    with pytest.raises(ValueError, match="numeric"):
        Template.from_dict({**d, "frame": ["a", "b"]})
    with pytest.raises(ValueError, match="mapping"):
        Template.from_dict([1, 2])
    assert not CELEBA_TEMPLATE.landmarks.flags.writeable


def test_crop_landmarks():
    np.testing.assert_allclose(crop_landmarks(CELEBA_TEMPLATE, 178),
                               CELEBA_TEMPLATE.landmarks - (0, 20), atol=1e-4)
    # a 2x larger crop: pixel edges double, centres map as (c + 0.5) * 2 - 0.5
    np.testing.assert_allclose(crop_landmarks(CELEBA_TEMPLATE, 356),
                               (CELEBA_TEMPLATE.landmarks - (0, 20) + 0.5) * 2 - 0.5, atol=1e-4)


def test_similarity_transform_recovers_known_transform():
    m = _similarity(23, 1.7, 40, -12)
    src = np.random.default_rng(1).uniform(0, 100, (5, 2))
    np.testing.assert_allclose(similarity_transform(src, _apply(m, src)), m, atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        similarity_transform(np.ones((5, 2)), src)


# ------------------------------------------------------------------ align_face / aligned_crop

@pytest.mark.parametrize("scale", [0.3, 1.4])  # photo face larger (shrink path) / smaller
def test_align_face_geometry_and_pixels(scale):
    size = 128
    target = crop_landmarks(CELEBA_TEMPLATE, size)
    photo_from_crop = _similarity(-17, 1 / scale, 150, 200)  # crop fully inside the photo
    landmarks = _apply(photo_from_crop, target).astype(np.float32)
    photo, (a, b, c) = _plane_photo(700, 900)
    out = align_face(photo, landmarks, CELEBA_TEMPLATE, size)
    assert isinstance(out, AlignedFace)
    assert out.crop.shape == (size, size, 3) and out.crop.dtype == np.uint8
    assert out.matrix.shape == (2, 3)
    np.testing.assert_allclose(_apply(out.matrix, landmarks), target, atol=1e-3)
    # every crop pixel must show the photo value at the point the matrix says it came from
    inv = cv2.invertAffineTransform(out.matrix)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    px = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
    py = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
    expect = a * px + b * py + c
    assert np.abs(out.crop[..., 0] - expect).max() <= 1.6


@pytest.mark.parametrize("scale,shift", [(0.3, 15), (1.4, 15), (0.3, 50), (1.4, 50)])
def test_align_face_partly_outside_photo(scale, shift):
    size = 64
    target = crop_landmarks(CELEBA_TEMPLATE, size)
    # the crop hangs over the top-left corner of the photo (shift 50: mostly outside)
    landmarks = _apply(_similarity(10, 1 / scale, -shift / scale, -10 / scale), target)
    photo, (a, b, c) = _plane_photo(500, 600)
    out = align_face(photo, landmarks, CELEBA_TEMPLATE, size)
    assert out.crop.shape == (size, size, 3)
    with pytest.raises(ValueError, match="landmarks"):
        align_face(photo, landmarks[:4], CELEBA_TEMPLATE, size)
    # outside the photo the crop shows its mirror image (BORDER_REFLECT: x -> -1 - x)
    inv = cv2.invertAffineTransform(out.matrix)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    px = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
    py = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
    assert (px < -3).any() and (py < -3).any()
    rx, ry = np.where(px < -0.5, -1 - px, px), np.where(py < -0.5, -1 - py, py)
    expect = a * rx + b * ry + c
    assert np.abs(out.crop[..., 0] - expect).max() <= 2.0


@pytest.mark.parametrize("scale", [0.15, 0.6, 1.0, 2.0])
def test_align_face_puts_landmarks_on_template_subpixel(scale):
    """Blobs drawn at the photo landmarks must land on the template points in the crop."""
    size = 96
    target = crop_landmarks(CELEBA_TEMPLATE, size).astype(np.float64)
    landmarks = _apply(_similarity(25, 1 / scale, 300.3, 250.7), target - size / 2)
    y, x = np.mgrid[0:900, 0:900].astype(np.float64)
    sigma = 2.0 / scale  # two crop pixels
    photo = np.zeros((900, 900), np.float64)
    for px, py in landmarks:
        photo += np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma ** 2))
    photo = np.repeat(np.clip(np.rint(photo * 250), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    crop = align_face(photo, landmarks, CELEBA_TEMPLATE, size).crop[..., 0].astype(np.float64)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    for tx, ty in target:
        win = crop * ((u - tx) ** 2 + (v - ty) ** 2 < 5.5 ** 2)
        cx, cy = (win * u).sum() / win.sum(), (win * v).sum() / win.sum()
        assert abs(cx - tx) < 0.12 and abs(cy - ty) < 0.12, (cx, cy, tx, ty)


def test_aligned_crop_any_resolution():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
    same = aligned_crop(img, CELEBA_TEMPLATE, 178)
    np.testing.assert_array_equal(same.crop, img[20:198])
    np.testing.assert_allclose(same.matrix, [[1, 0, 0], [0, 1, -20]], atol=1e-12)
    big = cv2.resize(img, (356, 436), interpolation=cv2.INTER_NEAREST)  # same framing, 2x
    double = aligned_crop(big, CELEBA_TEMPLATE, 178)
    np.testing.assert_array_equal(double.crop, img[20:198])
    # matrix: centre of big pixel (2i + 0.5 - 0.5) lands on crop pixel centre i
    np.testing.assert_allclose(_apply(double.matrix, [[0.5, 40.5], [10.5, 50.5]]), [[0, 0], [5, 5]])
    up = aligned_crop(img, CELEBA_TEMPLATE, 256)
    assert up.crop.shape == (256, 256, 3)


# ------------------------------------------------------------------ mask

def test_face_mask():
    m = face_mask(64)
    assert m.dtype == np.float32 and m.shape == (64, 64)
    assert m.min() == 0.0 and m.max() == 1.0
    assert not m[0].any() and not m[-1].any() and not m[:, 0].any() and not m[:, -1].any()
    assert m[32, 32] == 1.0 and 0 < m[32, 5] < 1  # soft edge
    np.testing.assert_array_equal(m, m[::-1])
    np.testing.assert_array_equal(m, m.T)
    row = m[32, 32:]
    assert np.all(np.diff(row) <= 0)  # falls off monotonically from the centre
    m[:] = 5  # a copy: callers may scribble on it
    assert face_mask(64).max() == 1.0
    with pytest.raises(ValueError):
        face_mask(64, inner=0.9, outer=0.5)


# ------------------------------------------------------------------ paste_back

def _face_in_photo(photo, size, angle=12, scale=2.5, at=(300, 220)):
    target = crop_landmarks(CELEBA_TEMPLATE, size)
    landmarks = _apply(_similarity(angle, scale, *at), target - size / 2)
    return align_face(photo, landmarks, CELEBA_TEMPLATE, size)


def test_paste_back_identity_when_nothing_edited():
    photo = _textured_photo(480, 640)
    face = _face_in_photo(photo, 64)
    out = paste_back(photo, face.crop, face.crop, face.matrix)
    assert out is not photo
    np.testing.assert_array_equal(out, photo)
    # float32 model outputs too, and into a caller-supplied buffer
    f = face.crop.astype(np.float32) + 0.25
    buf = np.zeros_like(photo)
    assert paste_back(photo, f, f.copy(), face.matrix, out=buf) is buf
    np.testing.assert_array_equal(buf, photo)


def test_crop_mask():
    m = crop_mask(64)
    assert m.dtype == np.float32 and m.shape == (64, 64)
    assert m.min() == 0.0 and m.max() == 1.0
    assert not m[0].any() and not m[-1].any() and not m[:, 0].any() and not m[:, -1].any()
    # the whole crop is carried: everything but the outer 12 % is at full weight
    assert (m[8:-8, 8:-8] == 1.0).all() and 0 < m[32, 3] < 1
    np.testing.assert_array_equal(m, m[::-1])
    np.testing.assert_array_equal(m, m.T)
    assert np.all(np.diff(m[32, :33]) >= 0)  # rises monotonically from the edge
    with pytest.raises(ValueError):
        crop_mask(64, border=0.7)


def _crop_coords(face, size, shape):
    """Where every photo pixel centre falls in the crop, in crop widths (0..1 across the crop)."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    m = face.matrix
    u = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    v = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    return (u + 0.5) / size, (v + 0.5) / size


def test_paste_back_changes_only_inside_the_crop():
    photo = _textured_photo(480, 640)
    size = 64
    face = _face_in_photo(photo, size)
    edited = np.clip(face.crop.astype(np.int16) + 40, 0, 255).astype(np.uint8)
    out = paste_back(photo, edited, face.crop, face.matrix)
    changed = np.any(out != photo, axis=2)
    u, v = _crop_coords(face, size, photo.shape)
    reach = 0.5 / size  # the crop's outermost pixel centres carry weight 0; beyond them nothing
    outside = (u < reach) | (u > 1 - reach) | (v < reach) | (v > 1 - reach)
    assert outside.sum() > 0.5 * outside.size and not changed[outside].any()
    inside = (u > 0.13) & (u < 0.87) & (v > 0.13) & (v < 0.87)  # hair and jaw included, not only the inner face
    assert changed[inside].all()
    diff = out[inside].astype(int) - photo[inside].astype(int)
    assert 36 <= np.median(diff) <= 40  # +40 less the drift threshold (1.5 levels)
    # the plain (unguided) difference lands in the same place
    plain = paste_back(photo, edited, face.crop, face.matrix, guided=False)
    assert not np.any(plain != photo, axis=2)[outside].any()


def test_drift_below_the_threshold_leaves_the_photo_unchanged():
    photo = _textured_photo(300, 400)
    face = _face_in_photo(photo, 64, at=(200, 150))
    rng = np.random.default_rng(3)
    recon = face.crop.astype(np.float32)
    drift = recon + rng.uniform(-1.4, 1.4, recon.shape).astype(np.float32)  # a decode's level-or-so drift
    np.testing.assert_array_equal(paste_back(photo, drift, recon, face.matrix), photo)


def test_guided_paste_back_follows_the_photos_own_edges():
    """A tonal edit computed at model resolution (here: darken what is dark, a frame or hair)
    lands on the photo's sharp edges instead of a blurred band around them."""
    size = 64
    photo = np.full((512, 512, 3), 200, np.uint8)
    photo[:, 251:261] = 40  # a sharp dark bar, 10 px wide at photo resolution (1.25 crop px)
    m = _similarity(0, 8.0, 256, 256)  # crop px -> photo px, 8x
    landmarks = _apply(m, crop_landmarks(CELEBA_TEMPLATE, size) - size / 2)
    face = align_face(photo, landmarks, CELEBA_TEMPLATE, size)
    g = face.crop.astype(np.float32)
    edited = g - 0.5 * (200 - g)  # the dark bar gets darker, the plain area stays
    guided = paste_back(photo, edited, g, face.matrix, crop=face.crop).astype(int)
    plain = paste_back(photo, edited, g, face.matrix, guided=False).astype(int)
    row = slice(200, 312)
    # inside the bar both darken it; next to it the plain difference smears the edit onto the
    # bright background, the guided one leaves the background as it was
    assert guided[row, 252:260].mean() < photo[row, 252:260].mean() - 15
    beside = np.r_[236:248, 264:276]
    assert np.abs(plain[row][:, beside] - 200).mean() > 5
    assert np.abs(guided[row][:, beside] - 200).mean() < 0.5 * np.abs(plain[row][:, beside] - 200).mean()


def test_edit_coefficients_reproduce_the_edit_at_model_resolution():
    rng = np.random.default_rng(0)
    guide = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    diff = rng.normal(0, 20, (32, 32, 3)).astype(np.float32)
    a, c = edit_coefficients(diff, guide, threshold=0)
    np.testing.assert_allclose(a * guide + c, diff, atol=1e-3)
    z = np.zeros_like(diff)
    a0, c0 = edit_coefficients(z, guide)
    assert not a0.any() and not c0.any()


def test_paste_back_face_partly_outside_photo():
    photo = _textured_photo(300, 400)
    face = _face_in_photo(photo, 64, at=(20, 30))  # centre near the top-left corner
    edited = np.clip(face.crop.astype(np.int16) - 30, 0, 255).astype(np.uint8)
    out = paste_back(photo, edited, face.crop, face.matrix)
    assert out.shape == photo.shape
    assert (out[:40, :40].astype(int) - photo[:40, :40]).mean() < -20
    np.testing.assert_array_equal(out[200:, 300:], photo[200:, 300:])
    # a face entirely off the photo changes nothing
    off = _face_in_photo(photo, 64, at=(2000, 2000))
    np.testing.assert_array_equal(paste_back(photo, edited, off.crop, off.matrix), photo)


def test_two_faces_edited_independently():
    photo = _textured_photo(400, 800)
    a = _face_in_photo(photo, 64, angle=-8, scale=2.2, at=(200, 200))
    b = _face_in_photo(photo, 64, angle=15, scale=2.6, at=(600, 210))
    up = np.clip(a.crop.astype(np.int16) + 50, 0, 255).astype(np.uint8)
    down = np.clip(b.crop.astype(np.int16) - 50, 0, 255).astype(np.uint8)
    out = photo.copy()
    paste_back(out, up, a.crop, a.matrix, out=out)  # in place, one face after the other
    paste_back(out, down, b.crop, b.matrix, out=out)
    only_a = paste_back(photo, up, a.crop, a.matrix)
    only_b = paste_back(photo, down, b.crop, b.matrix)
    np.testing.assert_array_equal(out[:, :400], only_a[:, :400])
    np.testing.assert_array_equal(out[:, 400:], only_b[:, 400:])
    assert (out[180:220, 180:220].astype(int) - photo[180:220, 180:220]).mean() > 40
    assert (out[190:230, 580:620].astype(int) - photo[190:230, 580:620]).mean() < -40


def test_paste_back_touches_only_the_face_rectangle(monkeypatch):
    """Speed by construction: warps cover the face's rectangle, never the whole photo."""
    photo = _textured_photo(1155, 1732)  # 2 megapixels
    face = _face_in_photo(photo, 256, scale=1.5, at=(900, 500))
    edited = np.clip(face.crop.astype(np.int16) + 10, 0, 255).astype(np.uint8)
    sizes = []
    real = cv2.warpAffine

    def spy(src, m, dsize, *args, **kwargs):
        sizes.append(dsize)
        return real(src, m, dsize, *args, **kwargs)

    monkeypatch.setattr(alignment.cv2, "warpAffine", spy)
    out = np.empty_like(photo)
    paste_back(photo, edited, face.crop, face.matrix, out=out)
    assert sizes and all(w * h < 0.15 * photo.shape[0] * photo.shape[1] for w, h in sizes)
    monkeypatch.setattr(alignment.cv2, "warpAffine", real)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        paste_back(photo, edited, face.crop, face.matrix, out=out)
        times.append(time.perf_counter() - t)
    assert min(times) < 0.1  # a few ms on an idle machine; generous for shared CI


def test_a_huge_face_is_pasted_back_in_bands_with_bounded_memory(monkeypatch):
    """A close-up in a big photo: the warps of its edit come in bands of rows, so memory stays
    bounded (one piece: 24 bytes a pixel of the face's rectangle), and the pixels are those of
    the one-piece paste-back."""
    import tracemalloc

    photo = _textured_photo(3000, 3200)
    face = _face_in_photo(photo, 128, angle=8, scale=20.0, at=(1600, 1500))  # about 2,900 px across
    edited = np.clip(face.crop.astype(np.int16) + 30, 0, 255).astype(np.uint8)
    out = np.empty_like(photo)
    tracemalloc.start()
    try:
        paste_back(photo, edited, face.crop, face.matrix, out=out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    changed = np.any(out != photo, axis=2)
    assert changed.sum() > 4_000_000  # most of the face's rectangle was edited
    assert peak < 2 * alignment.PASTE_BAND_BYTES  # one piece: over 200 MB
    monkeypatch.setattr(alignment, "PASTE_BAND_BYTES", 1 << 40)
    whole = paste_back(photo, edited, face.crop, face.matrix)
    np.testing.assert_array_equal(out, whole)


def test_paste_back_input_checks():
    photo = _textured_photo(100, 100)
    crop = np.zeros((32, 32, 3), np.uint8)
    m = np.eye(2, 3)
    with pytest.raises(ValueError, match="same size"):
        paste_back(photo, crop, np.zeros((16, 16, 3), np.uint8), m)
    with pytest.raises(ValueError, match="photo"):
        paste_back(photo.astype(np.float32), crop, crop, m)
    with pytest.raises(ValueError, match="out"):
        paste_back(photo, crop + 1, crop, m, out=np.zeros((5, 5, 3), np.uint8))
