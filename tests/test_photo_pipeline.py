"""The photo pipeline end to end on real in-the-wild photos: open -> edit -> render -> detect again.

Complements tests/test_alignment.py (paste_back on synthetic photos), tests/test_cli_edit.py (the
`edit` command: no --set copies the pixels, changes stay inside the crops' footprints) and
tests/test_batch.py: here `PhotoEdit` itself on real CelebA photos — a slider moved and brought back
gives the input bit for bit, the edit covers the face and lands exactly where the face is, nothing
outside the face's box (plus a margin) changes, and the edited face is found again by the detector
at the same landmarks.

The model is the tiny random one of conftest.py: its edit is structured noise, not a smile, so the
value changes below are sized (0.3 of the alpha range) to give an edit of about the amplitude the
trained default model makes when flipping an attribute (mean |change| a few levels, max ~20).
"""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def engine(tiny_model_path):
    from core.engine import Engine
    from core.model_file import load_model
    return Engine(load_model(tiny_model_path), device="cpu", threads=1)


@pytest.fixture(scope="module")
def photos(celeba_wild):
    """The first 4 photos (by name) whose only face the detector finds with confidence >= 0.99.

    Borderline detections (e.g. 000149.jpg, score 0.77) can vanish under +-2 levels of noise, which
    says nothing about the pipeline, so they are left out."""
    from core.faces import detect_faces
    from core.image_io import load_image
    out = []
    for p in sorted(celeba_wild.glob("*.jpg")):
        rgb = load_image(p)
        faces = detect_faces(rgb)
        if len(faces) == 1 and faces[0].score >= 0.99:
            out.append((p, rgb))
        if len(out) == 4:
            break
    assert len(out) == 4
    return out


def _flip_partly(doc, name="Smiling", amount=0.3):
    """Move one slider of face 0 by `amount` away from the face's own value, towards the other."""
    own = doc.faces[0].own_values[name]
    doc.set_value(name, own + amount if own < 0.5 else own - amount, face=0)


def test_sliders_moved_and_brought_back_render_the_input_bit_for_bit(engine, photos):
    from core.photo_edit import PhotoEdit
    for path, rgb in photos[:2]:
        doc = PhotoEdit.open(path, engine)
        keep = doc.image.copy()
        assert np.array_equal(doc.image, rgb)
        assert np.array_equal(doc.render(), rgb)
        # every slider set to the value it already has: nothing is modified
        for a in engine.attributes:
            doc.set_value(a.name, doc.faces[0].own_values[a.name], face=0)
        assert not doc.faces[0].is_modified
        assert np.array_equal(doc.render(), rgb)
        # moved (rendered), then reset
        _flip_partly(doc, amount=1.0)
        assert not np.array_equal(doc.render(), rgb)
        doc.reset()
        assert np.array_equal(doc.render(), rgb)
        # moved (rendered), then dragged back to the own value by hand
        own = doc.faces[0].own_values["Male"]
        doc.set_value("Male", own + 0.7, face=0)
        assert not np.array_equal(doc.render(), rgb)
        doc.set_value("Male", own, face=0)
        assert np.array_equal(doc.render(), rgb)
        assert np.array_equal(doc.image, keep), "render() must never modify the opened photo"


def test_edit_covers_the_face_lands_on_it_and_leaves_the_rest_untouched(engine, photos):
    import cv2

    from core.alignment import crop_mask, edit_coefficients
    from core.photo_edit import PhotoEdit
    size = engine.image_size
    for path, rgb in photos:
        doc = PhotoEdit.open(path, engine)
        f = doc.faces[0]
        _flip_partly(doc)
        out = doc.render()
        changed = np.any(out != rgb, axis=2)
        x0, y0, x1, y1 = f.box
        w, h = x1 - x0, y1 - y0
        # inside: the central half of the detection box is (nearly) all changed
        cy, cx = slice(int(y0 + h / 4), int(y1 - h / 4)), slice(int(x0 + w / 4), int(x1 - w / 4))
        assert changed[cy, cx].mean() > 0.9, path.name
        # outside the box grown by its size on every side: bit-identical
        m = max(w, h)
        outside = np.ones(changed.shape, bool)
        outside[max(0, int(y0 - m)):int(np.ceil(y1 + m)), max(0, int(x0 - m)):int(np.ceil(x1 + m))] = False
        assert not changed[outside].any(), path.name
        # registration, checked independently of paste_back's warping: map every photo pixel
        # centre into the crop with the face's matrix, sample the masked edit coefficients there
        # bilinearly and apply them to the photo (a * photo + c). The rendered photo must agree to
        # rounding; the same comparison with the photo shifted by a single pixel is off by several
        # levels, so this pins the edit to the face to well under a pixel.
        a, c = edit_coefficients(doc.render_face_crop(0) - f.reconstruction, f.aligned.crop.astype(np.float32))
        mk = crop_mask(size)[..., None]
        yy, xx = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]].astype(np.float64)
        mat = f.aligned.matrix
        u = (mat[0, 0] * xx + mat[0, 1] * yy + mat[0, 2]).astype(np.float32)
        v = (mat[1, 0] * xx + mat[1, 1] * yy + mat[1, 2]).astype(np.float32)

        def sample(t):
            return cv2.remap((t * mk).astype(np.float32), u, v, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        delta = sample(a) * rgb + sample(c)
        err = np.abs(out.astype(np.float64) - np.clip(np.rint(rgb + delta), 0, 255))
        shifted = np.abs(out[:, 1:].astype(np.float64) - np.clip(np.rint(rgb[:, :-1] + delta[:, 1:]), 0, 255))
        assert shifted[changed[:, 1:]].mean() > 4 * max(err[changed].mean(), 0.05), path.name
        assert err.max() <= 1 and err[changed].mean() < 0.05, (path.name, err.max(), err[changed].mean())


def test_edited_face_is_detected_again_at_the_same_landmarks(engine, photos):
    from core.faces import detect_faces
    from core.photo_edit import PhotoEdit
    for path, rgb in photos:
        doc = PhotoEdit.open(path, engine)
        f = doc.faces[0]
        _flip_partly(doc)
        out = doc.render()
        again = detect_faces(out)
        assert again, f"{path.name}: no face found after the edit"
        # mean distance over the 5 points (photo pixels; faces here are 130-240 px boxes, and the
        # detector alone moves by up to ~1 px under +-2 levels of noise)
        dist = min(float(np.linalg.norm(g.landmarks - f.landmarks, axis=1).mean()) for g in again)
        assert dist < 3.0, (path.name, dist)


def test_mirror_decoding_model_draft_preview_and_full_render(tiny_model_path, photos):
    """A model decoded with its mirror images (meta "mirror_decode", the default model): the
    draft render (a slider being dragged) and the full one (the export) both leave an unedited
    photo bit-identical, both edit the face, and they differ only a little from each other."""
    from core.engine import Engine
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    model = load_model(tiny_model_path)
    model.meta["mirror_decode"] = True
    engine = Engine(model, device="cpu", threads=1)
    path, rgb = photos[0]
    doc = PhotoEdit.open(path, engine)
    assert doc.faces[0].latent.mirrored
    assert np.array_equal(doc.render(draft=True), rgb) and np.array_equal(doc.render(), rgb)
    _flip_partly(doc)
    full, draft = doc.render(), doc.render(draft=True)
    changed_full = np.abs(full.astype(int) - rgb).max(axis=2) > 2
    changed_draft = np.abs(draft.astype(int) - rgb).max(axis=2) > 2
    assert changed_full.sum() > 500 and changed_draft.sum() > 500
    diff = np.abs(full.astype(int) - draft.astype(int))
    assert 0 < diff.mean() < np.abs(full.astype(int) - rgb).mean()
    # the full render is what it was before the draft: the caches of the two kinds are kept apart
    assert np.array_equal(doc.render(), full)
    # brought back: both kinds give the input again
    doc.reset(face=0)
    assert np.array_equal(doc.render(draft=True), rgb) and np.array_equal(doc.render(), rgb)


def test_a_preview_at_a_smaller_scale_is_the_full_render_downscaled(engine, photos):
    """render_region(scale < 1), what a zoomed-out window shows, lands on the grid of
    scaled_image(scale) and holds the full-resolution render downscaled there (within rounding);
    outside its region, and with no slider moved, it is the scaled photo itself."""
    import cv2
    from core.photo_edit import PhotoEdit
    path, rgb = photos[0]
    big = cv2.resize(rgb, (rgb.shape[1] * 4, rgb.shape[0] * 4), interpolation=cv2.INTER_CUBIC)
    doc = PhotoEdit.open(big, engine)
    for scale in (0.3, 0.55):
        small = doc.scaled_image(scale)
        assert small.shape[1::-1] == doc.scaled_size(scale) == (round(big.shape[1] * scale), round(big.shape[0] * scale))
        pixels, (x, y) = doc.render_region(scale=scale)
        assert np.array_equal(pixels, small[y:y + pixels.shape[0], x:x + pixels.shape[1]]), "no slider moved"
    doc.set_value("Smiling", 2.0 if doc.faces[0].own_values["Smiling"] < 0.5 else -1.0, face=0)
    full = doc.render()
    for scale in (0.3, 0.55):
        small = doc.scaled_image(scale)
        pixels, (x, y) = doc.render_region(scale=scale)
        shown = small.copy()
        shown[y:y + pixels.shape[0], x:x + pixels.shape[1]] = pixels
        want = cv2.resize(full, small.shape[1::-1], interpolation=cv2.INTER_AREA)
        edited = np.abs(want.astype(int) - small).max(axis=2) > 4
        assert edited.sum() > 500, "the edit shows at this scale"
        diff = np.abs(shown.astype(int) - want)
        assert diff[edited].mean() < 1.0 and diff.max() <= 12
        untouched = np.ones(small.shape[:2], bool)
        untouched[y:y + pixels.shape[0], x:x + pixels.shape[1]] = False
        assert np.array_equal(shown[untouched], small[untouched])
    # the full-resolution render is what it was: the region of render() at scale 1
    pixels, (x, y) = doc.render_region()
    assert np.array_equal(full[y:y + pixels.shape[0], x:x + pixels.shape[1]], pixels)


def test_a_render_within_a_rectangle_is_that_part_of_the_full_render(engine, photos):
    """render_region(within=...), what a view zoomed in on a large photo renders, holds the
    pixels of the whole region's render (render()) inside the rectangle: rectangles inside the
    face, across the region's edges, one pixel wide, and one missing it (nothing to render);
    zoomed out (scale < 1), that part of the scaled region's render. The paste-back edits the
    photo's pixels one by one from maps made in the crop, so no margin is needed; bit for bit
    in practice (0 of 150 random rectangles differed on a 48 MP photo), a level allowed where
    the warp's sub-pixel rounding might differ."""
    import cv2
    from core.photo_edit import PhotoEdit
    path, rgb = photos[1]
    big = cv2.resize(rgb, (rgb.shape[1] * 4, rgb.shape[0] * 4), interpolation=cv2.INTER_CUBIC)
    doc = PhotoEdit.open(big, engine)
    doc.set_value("Smiling", 2.0 if doc.faces[0].own_values["Smiling"] < 0.5 else -1.0, face=0)
    full = doc.render()
    ex, ey, ew, eh = doc.edit_region()
    assert ew * eh > 1_000_000
    rects = [(ex + ew // 3, ey + eh // 3, 640, 400), (ex - 100, ey + eh // 2, 500, 333),
             (ex + ew - 250, ey + eh - 170, 601, 499), (ex + ew // 2, ey + 7, 1, 900),
             (ex + 13, ey + eh // 4, ew, 1)]
    changed = 0
    for within in rects:
        pixels, (x, y) = doc.render_region(within=within)
        wx, wy, ww, wh = within
        x0, y0 = max(ex, wx), max(ey, wy)
        x1, y1 = min(ex + ew, wx + ww), min(ey + eh, wy + wh)
        assert (x, y, pixels.shape[1], pixels.shape[0]) == (x0, y0, x1 - x0, y1 - y0), "the rectangle's part"
        want = full[y:y1, x:x1]
        diff = np.abs(pixels.astype(int) - want)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-4, within
        changed += int(np.any(want != big[y:y1, x:x1], axis=2).sum())
    assert changed > 100_000, "the rectangles hold edited pixels"
    pixels, _ = doc.render_region(within=(0, 0, 5, 5) if ex > 5 else (ex + ew + 1, 0, 5, 5))
    assert pixels.size == 0
    for scale in (0.3, 0.55):
        whole, (sx, sy) = doc.render_region(scale=scale)
        for within in rects[:3]:
            pixels, (x, y) = doc.render_region(scale=scale, within=within)
            assert pixels.size and x >= sx and y >= sy
            assert pixels.shape[1] <= within[2] * scale + 2 and pixels.shape[0] <= within[3] * scale + 2
            want = whole[y - sy:y - sy + pixels.shape[0], x - sx:x - sx + pixels.shape[1]]
            diff = np.abs(pixels.astype(int) - want)
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-4


def test_a_photo_left_behind_is_freed_at_once(engine, portrait_path):
    """QA: the window's Next photo kept every photo it left (143 MB each at 50 MP) until Python's
    cyclic garbage collector happened to run: each face held its document and the document its
    faces. Dropped, a document (with its photo) is freed at once, edited and decoded or not."""
    import gc
    import weakref

    from core.photo_edit import PhotoEdit
    gc.collect()
    gc.disable()
    try:
        doc = PhotoEdit.open(portrait_path, engine)
        doc.set_value("Smiling", 2.0, face=0)
        assert doc.render().shape == doc.image.shape
        gone = weakref.ref(doc)
        del doc
        assert gone() is None
    finally:
        gc.enable()
