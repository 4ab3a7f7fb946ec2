"""Faces upside down (a photo turned by 180 degrees: a person lying, a phone photo without its
orientation tag). O-Net reads an upside-down face as a face and put its "eyes" on the mouth, so
the face was aligned upside down and `edit --set Eyeglasses=1` painted the glasses across mouth
and nose. Now such a face is recognised and aligned upright (core/faces.py, docs/faces.md).

Real photos from ../shared/data (skipped when it is absent); the tiny random model of conftest.py
for the edit."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.alignment import CELEBA_TEMPLATE
from core.faces import FaceDetector
from core.image_io import load_image
from core.photo_edit import find_faces

# each has one face, found both upright and turned 180 degrees; 001319 is QA's photo
TURNED = ["001319.jpg", "000678.jpg", "002559.jpg", "003147.jpg"]
# upright faces whose crops O-Net also reads as faces turned 180 degrees (above 0.9), and tilted
# ones: the closest calls of 1,500 photos (docs/faces.md); the rule must leave them as they were
UPRIGHT = [("001319.jpg", 0), ("150584.jpg", 0), ("087280.jpg", 0), ("128491.jpg", 0),
           ("064867.jpg", 0), ("000149.jpg", -25)]
# (004732 tilted 25 degrees reads as a face better turned a quarter: it is found there now, with
# better landmarks; test_faces_sideways.py)
SIZE = 64


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def photos(celeba_wild):
    return lambda name: load_image(celeba_wild / name)


def _turned(rgb):
    return np.ascontiguousarray(rgb[::-1, ::-1])


def tilted_with_matrix(rgb, degrees) -> tuple:
    """(the photo turned by ``degrees`` on a canvas that holds it whole, edges replicated; the 2x3
    matrix that maps its points there)."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    m[0, 2] += (nw - w) / 2
    m[1, 2] += (nh - h) / 2
    return cv2.warpAffine(rgb, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), m


def _tilted(rgb, degrees):
    return tilted_with_matrix(rgb, degrees)[0] if degrees else rgb


def _largest(found):
    return max(range(len(found.alignments)),
               key=lambda i: np.linalg.norm(found.landmarks[i][1] - found.landmarks[i][0]))


@pytest.mark.parametrize("name", TURNED)
def test_a_face_upside_down_is_aligned_upright(detector, photos, name, one_torch_thread):
    # What the model is given for the face of the turned photo: the same crop as for the
    # upright photo (before: that crop upside down, eyes where the mouth is), or no face at all.
    rgb = photos(name)
    upright = find_faces(rgb, CELEBA_TEMPLATE, SIZE, detector=detector)
    ref = upright.alignments[_largest(upright)].crop.astype(np.float32)
    turned = find_faces(_turned(rgb), CELEBA_TEMPLATE, SIZE, detector=detector)
    for a in turned.alignments:
        crop = a.crop.astype(np.float32)
        same, upside_down = np.abs(crop - ref).mean(), np.abs(crop - ref[::-1, ::-1]).mean()
        assert same < 12 and same < 0.35 * upside_down, (same, upside_down)


def test_qa_photo_face_is_found_and_its_landmarks_are_its_own(detector, photos, one_torch_thread):
    # 001319 turned 180 degrees (QA's in2/001319_rot180.png): the face is still found, marked
    # upside down, and each landmark lies on the upright photo's same point (left eye on the
    # left eye: in the turned photo it has the larger x).
    rgb = photos("001319.jpg")
    h, w = rgb.shape[:2]
    up = detector.detect(rgb)
    faces = detector.detect(_turned(rgb))
    assert len(up) == 1 and len(faces) == 1
    assert not up[0].upside_down and faces[0].upside_down
    lm = faces[0].landmarks
    assert lm[0, 0] > lm[1, 0] and lm[3, 0] > lm[4, 0]
    assert lm[:2, 1].mean() > lm[3:, 1].mean()           # eyes below the mouth in the turned photo
    back = np.stack([w - 1 - lm[:, 0], h - 1 - lm[:, 1]], axis=1)
    eye = np.linalg.norm(up[0].landmarks[1] - up[0].landmarks[0])
    assert np.linalg.norm(back - up[0].landmarks, axis=1).max() < 0.15 * eye


@pytest.mark.parametrize("name, degrees", UPRIGHT)
def test_upright_faces_are_left_as_they_were(detector, photos, name, degrees, monkeypatch, one_torch_thread):
    rgb = _tilted(photos(name), degrees)
    faces = detector.detect(rgb)
    # the detector without the upside-down rule: no face turned, none dropped
    monkeypatch.setattr(FaceDetector, "_upside_down",
                        lambda self, octaves, boxes: (np.zeros(len(boxes), bool), np.zeros(len(boxes), bool),
                                                      np.zeros((len(boxes), 5, 2), np.float32),
                                                      np.zeros(len(boxes), bool)))
    before = detector.detect(rgb)
    assert len(faces) == len(before) >= 1
    for f, g in zip(faces, before):
        assert not f.upside_down
        assert f.box == g.box and f.score == g.score
        np.testing.assert_array_equal(f.landmarks, g.landmarks)


@pytest.mark.parametrize("name", ["001319.jpg", "003147.jpg"])
def test_the_edit_of_a_turned_photo_is_the_upright_edit_turned(tiny_model_path, photos, name, one_torch_thread):
    # The edit lands on the face the right way round and is pasted back turned: the change made
    # to the turned photo, turned back, follows the change made to the upright photo (correlation
    # 0.96 and 0.88; with the face aligned upside down 0.17 and 0.33).
    from core.engine import Engine
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    engine = Engine(load_model(tiny_model_path), device="cpu", threads=1)
    rgb = photos(name)
    changes = []
    for img in (rgb, _turned(rgb)):
        doc = PhotoEdit.open(img, engine)
        assert len(doc.faces) == 1
        doc.set_value("Smiling", 2.0, face=0)
        changes.append(doc.render().astype(np.float32) - img)
    corr = np.corrcoef(changes[0].ravel(), _turned(changes[1]).ravel())[0, 1]
    assert corr > 0.7, corr
