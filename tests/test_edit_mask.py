"""The edit brush's mask: painting, undo through the session, and what the rendered photo shows."""
from __future__ import annotations

import numpy as np
import pytest

from core.edit_mask import EditMask, crop_scale, to_crop


def test_erasing_and_bringing_back_with_a_soft_round_brush():
    full = EditMask.full(64)
    assert full.is_full()
    erased = full.painted([(20, 32)], radius=8, erase=True)
    a = erased.array
    assert a[32, 20] == 0 and a[32, 24] == 0           # the hard core
    assert 0 < a[32, 27] < 1                            # the soft edge
    assert a[32, 29] == 1 and a[10, 50] == 1            # beyond the radius: untouched
    assert full.array.min() == 1 and not erased.is_full()   # a new mask; the old one is unchanged
    with pytest.raises(ValueError):
        a[0, 0] = 0.5                                   # read-only: a snapshot holding it stays valid
    assert erased.painted([(20, 32)], radius=16, erase=False).is_full()   # brought back
    partly = erased.painted([(20, 32)], radius=4, erase=False).array
    assert partly[32, 20] == 1 and partly[32, 24] == 0


def test_a_fast_stroke_leaves_no_gaps_and_points_outside_change_nothing():
    m = EditMask.full(64).painted([(5, 10), (60, 10)], radius=3)
    assert m.array[10, 5:61].max() == 0                 # every pixel between the two points
    assert m.array[20, :].min() == 1
    outside = EditMask.full(64).painted([(-50, -50), (-40, -60)], radius=5)
    assert outside.is_full()
    assert EditMask.full(8).painted([], radius=3).is_full()


def test_photo_to_crop_coordinates():
    m = np.array([[0.5, 0.0, -10.0], [0.0, 0.5, -20.0]])
    np.testing.assert_allclose(to_crop(m, [(20, 40), (22, 44)]), [[0, 0], [1, 2]])
    assert crop_scale(m) == pytest.approx(0.5)


def test_a_stroke_is_undone_with_the_session():
    from core.attributes import Attribute
    from core.edit_session import EditSession
    s = EditSession([Attribute("Smiling", ("no", "yes"), (0.0, 1.0))], [{"Smiling": 0.0}, {"Smiling": 1.0}])
    changes = []
    s.subscribe(changes.append)
    before = s.snapshot()
    mask = EditMask.full(16).painted([(8, 8)], radius=4)
    assert s.set_masks({1: mask}, merge=7, label="Erase edit")
    stroke = changes[-1]
    assert stroke.kind == "mask" and stroke.faces == (1,) and stroke.merge == 7
    assert s.masks == [None, mask] and not s.is_modified()   # a mask alone is no edit
    assert not s.set_masks({1: mask})                         # the same mask: no change
    s.restore(before)
    assert s.masks == [None, None]
    s.restore(stroke.after)
    assert s.masks[1] is mask


def test_the_rendered_photo_keeps_its_own_pixels_where_the_edit_is_erased(portrait_path, tiny_model_path):
    """Erase the edit over the right half of the face's crop: the photo there stays
    bit-identical, the left half keeps the edit; clearing the mask gives the plain edit back."""
    import cv2

    from core.engine import Engine
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    doc = PhotoEdit.open(portrait_path, Engine(load_model(tiny_model_path), device="cpu"))
    face = doc.faces[0]
    s = doc.engine.image_size
    doc.set_values({"Smiling": 2.0, "Male": 2.0})
    plain = doc.render()
    original = doc.image
    rows = [(x, y) for y in range(0, s, 2) for x in range(s // 2 + 2, s + 4, 2)]
    doc.session.set_masks({0: EditMask.full(s).painted(rows, radius=4)})
    masked = doc.render()

    # where each photo pixel falls in the crop
    h, w = original.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    uv = to_crop(face.aligned.matrix, np.stack([xx.ravel(), yy.ravel()], 1)).reshape(h, w, 2)
    in_crop = (uv[..., 1] >= 0) & (uv[..., 1] <= s - 1)
    erased = in_crop & (uv[..., 0] >= s // 2 + 1) & (uv[..., 0] <= s - 1)
    kept = in_crop & (uv[..., 0] >= s * 0.15) & (uv[..., 0] <= s // 2 - 3)
    changed_plain = np.any(plain != original, axis=2)
    assert changed_plain[erased].mean() > 0.2 and changed_plain[kept].mean() > 0.2
    assert np.array_equal(masked[erased], original[erased])
    assert np.array_equal(masked[kept], plain[kept])
    # a mask painted for another crop size is resampled, not refused
    doc.session.set_masks({0: EditMask(cv2.resize(doc.session.masks[0].array, (2 * s, 2 * s)))})
    assert np.array_equal(doc.render()[erased], original[erased])
    doc.session.set_masks({0: None})
    assert np.array_equal(doc.render(), plain)
