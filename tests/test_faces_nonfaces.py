"""Non-faces beside the face of a big photo. CelebA photos enlarged (INTER_LANCZOS4) to 25 or 50 MP
had prints, jewellery, lettering and blurs found as faces an eighth to a fifth the size of the main
face, scored 0.7 to 0.98: each went into the window's Face list with sliders of its own. The speck
rule (an eighth or less, not sure) does not reach them. A detection at most a fifth the size of a
sure face, found below the photo's own size, must now read as a face framed a little differently
too (core/faces.py ``FaceDetector._steady``, docs/faces.md); a real face that small reads as one
however it is framed, and stays. Over a fifth of the main face's size, only a detection that reads
as no face at all framed so (an ear, lettering, hair, a ring) goes: real faces that size, blurred
and half hidden, read far lower than small ones.

Real photos from ../shared/data (skipped when it is absent)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.faces import FaceDetector
from core.image_io import load_image


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def _enlarged(rgb, megapixels):
    h, w = rgb.shape[:2]
    k = (megapixels * 1e6 / (h * w)) ** 0.5
    return cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_LANCZOS4), k


@pytest.mark.parametrize("name, megapixels", [
    ("019993.jpg", 25),   # two prints on the singer's jacket, 0.73 and 0.92, a 7th and a 6th of his face
    ("018834.jpg", 50),   # two spots of her earrings, 0.72 and 0.77, a 7th and an 8th
    ("028423.jpg", 25),   # the diamond print of her top, 0.92, an 8th
])
def test_a_print_or_jewel_beside_the_face_of_an_enlarged_photo_is_not_a_face(
        detector, celeba_wild, name, megapixels, one_torch_thread):
    rgb = load_image(celeba_wild / name)
    assert len(detector.detect(rgb)) == 1   # at its own size, as always
    big, k = _enlarged(rgb, megapixels)
    faces = detector.detect(big)
    assert len(faces) == 1 and faces[0].score > 0.99
    assert faces[0].size > 0.25 * k * min(rgb.shape[:2])   # the person's face, not a print


def _paste_face(base, donor, ref, side, at, blur_px=None):
    """Paste ``donor``'s face (its detection ``ref``, with a margin) into ``base`` at ``side`` px,
    the patch's corner at ``at``; with ``blur_px``, from a copy shrunk to that many px across
    first, as blurred as so small a face of a photo that was enlarged. Returns the face's box."""
    x0, y0, x1, y1 = (int(round(v)) for v in ref.box)
    m = (x1 - x0) // 3
    cx0, cy0 = max(0, x0 - m), max(0, y0 - m)
    crop = donor[cy0: y1 + m, cx0: x1 + m]
    k = side / ref.size   # donor pixels to base pixels
    if blur_px:
        s = blur_px / ref.size
        crop = cv2.resize(crop, (round(crop.shape[1] * s), round(crop.shape[0] * s)), interpolation=cv2.INTER_AREA)
        k_crop = k / s
    else:
        k_crop = k
    patch = cv2.resize(crop, (round(crop.shape[1] * k_crop), round(crop.shape[0] * k_crop)),
                       interpolation=cv2.INTER_LANCZOS4)
    px, py = at
    ph, pw = min(patch.shape[0], base.shape[0] - py), min(patch.shape[1], base.shape[1] - px)
    base[py: py + ph, px: px + pw] = patch[:ph, :pw]
    return (px + (x0 - cx0) * k, py + (y0 - cy0) * k, px + (x1 - cx0) * k, py + (y1 - cy0) * k)


def test_real_faces_an_eighth_to_a_fifth_of_the_main_face_stay(detector, celeba_wild, one_torch_thread):
    """000277 at 25 MP (the boy's face 2,413 px) with four CelebA faces pasted on the wall beside
    him at a 7th to a 5th of his face, one of them from a copy 24 px across (as blurred as a face
    that small in the photo before it was enlarged): each is kept."""
    base, _ = _enlarged(load_image(celeba_wild / "000277.jpg"), 25)
    pasted = []
    for name, frac, at, blur in [("001508.jpg", 1 / 7, (3000, 150), None),
                                 ("000501.jpg", 1 / 6, (3000, 900), None),
                                 ("002153.jpg", 1 / 5, (3000, 1800), None),
                                 ("000795.jpg", 1 / 6, (3000, 4500), 24)]:
        donor = load_image(celeba_wild / name)
        ref = max(detector.detect(donor), key=lambda f: f.size)
        pasted.append(_paste_face(base, donor, ref, frac * 2413, at, blur))
    faces = detector.detect(base)
    main = max(faces, key=lambda f: f.size)
    assert main.size > 2000 and len(faces) == 1 + len(pasted)
    for x0, y0, x1, y1 in pasted:
        found = [f for f in faces if x0 <= f.center_x <= x1 and y0 <= f.center_y <= y1]
        assert len(found) == 1
        assert found[0].size * 5 <= main.size * 1.1   # about a fifth or less: the rule looked at it


def test_a_blurred_face_behind_the_subject_of_an_enlarged_photo_stays(detector, celeba_wild, one_torch_thread):
    """039430: a blurred spectator in the top left corner, a 6th of the woman's face, 0.84 at the
    photo's own size and 0.92 enlarged to 25 MP: a real face, kept at both sizes."""
    rgb = load_image(celeba_wild / "039430.jpg")
    for img, k in ((rgb, 1.0), _enlarged(rgb, 25)):
        faces = detector.detect(img)
        main = max(faces, key=lambda f: f.size)
        corner = [f for f in faces if f.center_x < 40 * k and f.center_y < 60 * k]
        assert len(corner) == 1 and corner[0].size * 5 < main.size


@pytest.mark.parametrize("name", [
    "132207.jpg",   # a ring on her hand: 0.83, 0.27 of her face's size
    "006745.jpg",   # her hand on a gold bag chain: 0.99, 0.55 (also found at the photo's own size)
    "048884.jpg",   # the curls beside her face: 0.76, 0.92
])
def test_a_nonface_over_a_fifth_of_the_main_face_is_not_a_face(detector, celeba_wild, name, one_torch_thread):
    """Enlarged to 25 MP, each had a second face in the window's Face list (with sliders of its
    own), beyond the fifth the framing rule looked at; framed a little differently, O-Net reads it
    as no face at all."""
    faces = detector.detect(_enlarged(load_image(celeba_wild / name), 25)[0])
    assert len(faces) == 1 and faces[0].score > 0.99


@pytest.mark.parametrize("name, box", [
    ("027306.jpg", (12, 243, 83, 332)),   # a photographer behind his camera, 0.4 of the main face
    ("150263.jpg", (67, 202, 134, 300)),  # a man half behind a phone held up to the speaker, 0.39
])
def test_a_half_hidden_face_over_a_fifth_of_the_main_face_stays(
        detector, celeba_wild, name, box, one_torch_thread):
    """Blurred background faces, half hidden: the real faces over a fifth of the main face's size
    that read lowest framed 8 ways (-1.0 and -0.9, at 12 MP). They stay."""
    big, k = _enlarged(load_image(celeba_wild / name), 12)
    faces = detector.detect(big)
    x0, y0, x1, y1 = (k * v for v in box)
    assert [f for f in faces if x0 <= f.center_x <= x1 and y0 <= f.center_y <= y1]


def test_real_faces_a_third_to_a_half_of_the_main_face_stay(detector, celeba_wild, one_torch_thread):
    """000277 at 25 MP (the boy's face 2,413 px) with CelebA faces pasted beside him at a third and
    a half of his face: one from a copy 16 px across (blurred as a face that size is in the photo
    before it was enlarged), one with its left third covered, and one from a 24 px copy with a
    fifth of it cut off by the photo's edge: each is kept."""
    base, _ = _enlarged(load_image(celeba_wild / "000277.jpg"), 25)
    pasted = []
    for name, frac, at, blur in [("001508.jpg", 1 / 3, (2900, 100), 16),
                                 ("000501.jpg", 1 / 3, (2900, 1500), None),
                                 ("002153.jpg", 1 / 2, (base.shape[1] - 1000, 2900), 24)]:
        donor = load_image(celeba_wild / name)
        ref = max(detector.detect(donor), key=lambda f: f.size)
        pasted.append(_paste_face(base, donor, ref, frac * 2413, at, blur))
    x0, y0, x1, y1 = (int(v) for v in pasted[1])
    base[y0:y1, x0: x0 + (x1 - x0) // 3] = base[y0:y1, 100: 100 + (x1 - x0) // 3]   # its left third: the wall
    faces = detector.detect(base)
    main = max(faces, key=lambda f: f.size)
    assert main.size > 2000
    for x0, y0, x1, y1 in pasted:
        assert len([f for f in faces if x0 <= f.center_x <= x1 and y0 <= f.center_y <= y1]) == 1
