"""Tests for core.faces (MTCNN). Real-face tests read ../shared/data and skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from core.alignment import CELEBA_TEMPLATE, align_face, crop_landmarks
from core.errors import ModelFileError
from core.faces import DEFAULT_WEIGHTS, Face, FaceDetector, detect_faces, reading_order
from core.image_io import load_image

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
WILD = DATA / "celeba" / "img_celeba"
ALIGNED = DATA / "celeba" / "img_align_celeba"
# unaligned photos with one clearly visible person (checked by eye)
ONE_FACE = ["000277.jpg", "000501.jpg", "000678.jpg"]


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def _photo(name):
    path = WILD / name
    if not path.is_file():
        pytest.skip(f"shared CelebA data not available ({path})")
    return load_image(path)


def _aligned(name):
    path = ALIGNED / name
    if not path.is_file():
        pytest.skip(f"shared CelebA data not available ({path})")
    return load_image(path)


def _check_face(face: Face, w: int, h: int, min_score: float = 0.9):
    assert isinstance(face.box, tuple) and len(face.box) == 4
    assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (5, 2)
    x0, y0, x1, y1 = face.box
    assert x1 > x0 and y1 > y0
    lm, m = face.landmarks, 0.1 * (x1 - x0)  # turned faces put a point slightly outside the box
    assert np.all((lm[:, 0] > x0 - m) & (lm[:, 0] < x1 + m) & (lm[:, 1] > y0 - m) & (lm[:, 1] < y1 + m))
    assert np.all((lm >= 0) & (lm < (w, h)))
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]          # left = smaller x
    assert lm[2, 1] > lm[:2, 1].max() and lm[3:, 1].min() > lm[2, 1] - 3  # eyes, nose, mouth
    assert min_score < face.score <= 1.0


@pytest.mark.parametrize("name", ONE_FACE)
def test_real_photo_one_face_aligns_onto_template(detector, name):
    rgb = _photo(name)
    faces = detector.detect(rgb)
    assert len(faces) == 1
    _check_face(faces[0], rgb.shape[1], rgb.shape[0])
    size = 128
    aligned = align_face(rgb, faces[0].landmarks, CELEBA_TEMPLATE, size)
    again = detector.detect(aligned.crop, min_size=30)
    assert len(again) == 1
    target = crop_landmarks(CELEBA_TEMPLATE, size)
    eye_err = np.linalg.norm(again[0].landmarks[:2] - target[:2], axis=1)
    assert eye_err.max() < 0.04 * size, (again[0].landmarks, target)


def test_large_photo_is_downscaled_and_mapped_back(detector):
    rgb = _photo(ONE_FACE[0])
    small = detector.detect(rgb)[0]
    k = 2600 / max(rgb.shape[:2])  # longer than max_side: detection runs on a reduced copy
    big = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    faces = detector.detect(big, min_size=40 * k)  # the same search as in the small photo
    assert len(faces) == 1
    expect = (small.landmarks + 0.5) * (big.shape[1] / rgb.shape[1]) - 0.5
    err = np.linalg.norm(faces[0].landmarks - expect, axis=1)
    assert err.max() < 0.03 * faces[0].size
    np.testing.assert_allclose(faces[0].box, np.array(small.box) * k, atol=0.06 * faces[0].size)


@pytest.mark.parametrize("scale", [1.2, 2, 3, 4])
def test_a_tilted_face_is_found_whatever_the_photo_size(detector, scale):
    """000149 (head tilted, mouth wide open) was found at its own size and missed enlarged 1.2x,
    2x, 3x or 4x: O-Net scored its crops 0.2 to 0.6 (threshold 0.7), their mirror images 0.98."""
    rgb = _photo("000149.jpg")
    ref = detector.detect(rgb)
    assert len(ref) == 1
    big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    faces = detector.detect(big)
    assert len(faces) == 1, [f.box for f in faces]
    # found through its mirror image, it keeps a doubtful score (the mean of the two)
    _check_face(faces[0], big.shape[1], big.shape[0], min_score=0.6)
    k = big.shape[1] / rgb.shape[1]
    err = np.linalg.norm(faces[0].landmarks - ((ref[0].landmarks + 0.5) * k - 0.5), axis=1)
    assert err.mean() < 0.06 * faces[0].size, err   # this face's nose wanders by 0.08 between crops


def test_two_faces_sorted_left_to_right(detector):
    a, b = _aligned("000002.jpg"), _aligned("000007.jpg")
    composite = np.concatenate([a, np.full_like(a, 128), b], axis=1)
    faces = detector.detect(composite)
    assert len(faces) == 2
    assert faces[0].center_x < a.shape[1] < 2 * a.shape[1] < faces[1].center_x
    for f in faces:
        _check_face(f, composite.shape[1], composite.shape[0])


def _box(x, y, side=100.0):
    return Face((x - side / 2, y - side / 2, x + side / 2, y + side / 2), np.zeros((5, 2), np.float32), 0.99)


def test_reading_order_rows_top_to_bottom_each_left_to_right():
    back = [_box(100, 100), _box(300, 120), _box(500, 95)]           # one row, heads at uneven heights
    front = [_box(92, 260), _box(290, 250), _box(510, 270)]          # a row below, shifted a little
    order = reading_order(front[::-1] + back[::-1])
    assert order == back + front
    slant = [_box(100 + 120 * i, 100 + 40 * i) for i in range(5)]     # a slanted line stays one row
    assert reading_order(slant[::-1]) == slant
    assert reading_order([]) == []


def test_faces_in_a_grid_are_numbered_row_by_row(detector):
    """Numbered by x alone, a grid's faces went column by column, in whichever order the rows'
    few pixels of shift gave: the PNG and JPEG copies of one photo named different faces `--face 9`."""
    names = ["000002.jpg", "000007.jpg", "000010.jpg", "000014.jpg", "000019.jpg", "000022.jpg"]
    crops = [_aligned(n) for n in names]
    h, w = crops[0].shape[:2]
    grid = np.full((2 * h + 40, 3 * w + 80, 3), 128, np.uint8)
    where = {}
    for k, c in enumerate(crops):
        r, col = divmod(k, 3)
        x, y = 40 + col * w - 12 * r, 10 + r * (h + 20) + (6 if col == 1 else 0)   # rows shifted, heads uneven
        grid[y:y + h, x:x + w] = c
        where[k] = (x + w / 2, y + h / 2)
    faces = detector.detect(grid)
    assert len(faces) == 6
    found = [min(where, key=lambda k: (where[k][0] - f.center_x) ** 2 + (where[k][1] - f.center_y) ** 2)
             for f in faces]
    assert found == [0, 1, 2, 3, 4, 5], found


def test_partly_outside_face_is_found(detector):
    a = _aligned("000002.jpg")
    faces = detector.detect(a[:, 40:])  # the left eye is ~30 px from the new edge
    assert len(faces) == 1
    full = detector.detect(a)[0]
    np.testing.assert_allclose(faces[0].landmarks[:2] + (40, 0), full.landmarks[:2], atol=4)


def test_no_face_in_blank_or_noise(detector):
    rng = np.random.default_rng(0)
    assert detector.detect(np.full((300, 400, 3), 127, np.uint8)) == []
    assert detector.detect(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)) == []
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 8)
    assert detector.detect(smooth) == []
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == []  # smaller than the 12 px window


def test_detect_faces_shared_and_input_checks(detector):
    rgb = _photo(ONE_FACE[1])
    mine = detector.detect(rgb)
    shared = detect_faces(rgb)
    assert len(shared) == len(mine) == 1
    np.testing.assert_allclose(shared[0].landmarks, mine[0].landmarks, atol=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        detector.detect(rgb[..., 0])


def test_weights_are_safetensors_and_validated(tmp_path):
    assert DEFAULT_WEIGHTS.suffix == ".safetensors" and DEFAULT_WEIGHTS.is_file()
    assert (DEFAULT_WEIGHTS.parent / "LICENSE").is_file()
    missing = tmp_path / "none.safetensors"
    with pytest.raises(ModelFileError, match="none.safetensors"):
        FaceDetector(weights=missing)
    bad = tmp_path / "bad.safetensors"
    save_file({"pnet.conv1.weight": torch.zeros(1)}, str(bad))
    with pytest.raises(ModelFileError, match="do not match"):
        FaceDetector(weights=bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="junk.safetensors"):
        FaceDetector(weights=junk)
