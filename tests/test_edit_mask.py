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


def test_a_mask_is_carried_into_another_crop_through_the_photo():
    """A mask that recorded its crop's alignment, applied to another crop of the same face (a
    model with another template or size): the stroke stays on the same photo pixels, and the
    new crop's parts outside the old one keep the edit."""
    a = np.array([[0.5, 0.0, -10.0], [0.0, 0.5, -20.0]])          # photo -> 64 px crop
    b = np.array([[0.8, 0.0, -30.0], [0.0, 0.8, -40.0]])          # photo -> 96 px crop, tighter
    spot = (60.0, 90.0)                                            # a photo pixel
    m = EditMask.full(64, a).painted(to_crop(a, [spot]), radius=6 * crop_scale(a) * 2)
    assert m.matrix is not None and np.allclose(m.matrix, a)
    carried = m.in_frame(b, 96)
    assert carried.size == 96 and np.allclose(carried.matrix, b)
    (u, v), = np.rint(to_crop(b, [spot])).astype(int)
    assert carried.array[v, u] == 0                                # still erased at the same spot
    (u0, v0), = np.rint(to_crop(b, [(spot[0] + 30, spot[1])])).astype(int)
    assert carried.array[v0, u0] == 1                              # beyond the stroke: untouched
    (u1, v1), = np.rint(to_crop(b, [(154.0, 100.0)])).astype(int)  # outside crop a: the edit stays
    assert 0 <= u1 < 96 and 0 <= v1 < 96 and carried.array[v1, u1] == 1
    assert m.in_frame(a, 64) is m                                  # its own crop: itself
    assert m.in_frame(None, 64) is m and EditMask.full(8).in_frame(b, 16).size == 16
    with pytest.raises(ValueError):
        EditMask.full(8, np.zeros((2, 3)))


def test_brush_strokes_stay_on_the_face_with_a_model_of_another_template(portrait_path, tiny_model_path, tmp_path):
    """A stroke painted with one model (CelebA's framing, 32 px), rendered with a model that
    frames faces tighter at 64 px: the photo keeps its own pixels where the stroke was painted,
    and the rest of the face keeps the edit."""
    from core.alignment import CELEBA_TEMPLATE, Template
    from core.engine import Engine
    from core.model_file import load_model, save_model
    from core.photo_edit import PhotoEdit
    from tests.conftest import make_tiny_model
    other = load_model(make_tiny_model(tmp_path / "tight.fader", img_size=64, seed=3))
    d = CELEBA_TEMPLATE.to_dict()
    d["crop_box"] = [24.0, 54.0, 154.0, 184.0]     # a tighter square around the face
    other.meta["alignment"] = Template.from_dict(d).to_dict()
    save_model(other, tmp_path / "tight.fader")
    first = PhotoEdit.open(portrait_path, Engine(load_model(tiny_model_path), device="cpu"))
    second = PhotoEdit.open(portrait_path, Engine(load_model(tmp_path / "tight.fader"), device="cpu"))
    fa, fb = first.faces[0].aligned.matrix, second.faces[0].aligned.matrix
    assert not np.allclose(crop_scale(fa), crop_scale(fb), rtol=0.05)

    x0, y0, x1, y1 = first.faces[0].box
    spot = (x0 + 0.3 * (x1 - x0), y0 + 0.55 * (y1 - y0))         # the left cheek
    r = 0.3 * (x1 - x0)                                            # photo pixels
    mask = EditMask.full(first.engine.image_size, fa).painted(to_crop(fa, [spot]), r * crop_scale(fa))
    for doc in (first, second):
        doc.set_values({"Smiling": 2.0, "Male": 2.0})
        plain = doc.render()
        doc.session.set_masks({0: mask})
        brushed = doc.render()
        h, w = plain.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        dist = np.hypot(xx - spot[0], yy - spot[1])
        core = dist < 0.25 * r
        away = (dist > 1.5 * r) & (xx > x0) & (xx < x1) & (yy > y0) & (yy < y1)
        assert np.any(plain[core] != doc.image[core]) and np.any(plain[away] != doc.image[away])
        assert np.array_equal(brushed[core], doc.image[core]), "erased where the stroke was painted"
        assert np.array_equal(brushed[away], plain[away]), "the rest of the face keeps the edit"


def test_a_brush_finer_than_the_masks_pixels_still_erases_everything_under_its_path():
    """Zoomed in, the window's brush can be a fraction of a mask pixel wide; the mask reaches the
    photo smoothly upsampled, so the path itself must come out erased, not 40 % of it left."""
    import cv2
    for y in (20.0, 20.25, 20.5):                      # on, beside and between pixel centres
        m = EditMask.full(64).painted([(10, y), (50, y + 3.0)], radius=0.3).array
        xs = np.linspace(12, 48, 200, dtype=np.float32)
        ys = (y + (xs - 10) * 3.0 / 40).astype(np.float32)
        on_path = cv2.remap(m, xs[None], ys[None], cv2.INTER_LINEAR)
        assert on_path.max() < 0.01, (y, on_path.max())
    assert EditMask.full(64).painted([(30, 30)], radius=0.3).array[30, 36] == 1   # still a small brush
