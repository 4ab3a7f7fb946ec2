"""The edit session (core/edit_session.py) and the one photo document every front end drives.

The session is plain numbers: these tests need no model. The last ones run the real pipeline with
the tiny model: an image with the model's framing in which nothing is detected is edited, the
same, by PhotoEdit (the window's worker), `edit` and `batch`.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.attributes import Attribute, towards
from core.edit_session import ALL_FACES, EditSession, Towards
from core.errors import FaderError

ATTRS = [Attribute("Smiling", ("no", "yes"), (-1.0, 2.0)), Attribute("Hair", ("black", "blond", "brown"), (0.0, 1.0))]
OWN = [{"Smiling": 0.0, "Hair": [1.0, 0.0, 0.0]}, {"Smiling": 1.0, "Hair": [0.0, 0.0, 1.0]}]


def session():
    return EditSession(ATTRS, OWN)


def test_starts_at_the_faces_own_values_and_converts_sliders_to_codes():
    s = session()
    assert s.slider("Smiling", 0) == 0.0 and s.slider("Hair", 1) == Towards(2, 0.0)
    assert s.values(1) == {"Smiling": 1.0, "Hair": [0.0, 0.0, 1.0]}
    assert not s.is_modified()
    s.set_slider("Hair", Towards(1, 0.25), faces=[1])
    # a fader of a multi-valued attribute moves the face's own code towards the chosen value,
    # with the rule sweeps use
    assert s.value("Hair", 1) == towards([0.0, 0.0, 1.0], 1, 0.25) == [0.0, 0.25, 0.75]
    assert s.is_modified(1) and not s.is_modified(0) and s.modified_faces() == [1]
    assert s.changed_values(1) == {"Hair": [0.0, 0.25, 0.75]}


def test_one_changed_rule_compares_the_decoder_codes():
    s = session()
    # another target at strength 0 decodes as the face's own code: not a change
    s.set_slider("Hair", Towards(1, 0.0), faces=[0])
    assert s.slider("Hair", 0) == Towards(1, 0.0) and not s.is_modified(0)
    # the same value written as a code, or off by float noise, is no change either
    s.set_value("Hair", [1.0, 0.0, 0.0], face=0)
    s.set_value("Smiling", 1e-12, face=0)
    assert not s.is_modified(0) and s.changed_values(0) == {}
    s.set_value("Smiling", 0.01, face=0)
    assert s.is_modified(0, "Smiling") and not s.is_modified(0, "Hair")


def test_edits_follow_the_selection_and_reset_goes_back_to_each_face_own_value():
    s = session()
    s.set_slider("Smiling", 1.5)                  # selected: face 0
    assert s.values(0)["Smiling"] == 1.5 and s.values(1)["Smiling"] == 1.0
    s.select(ALL_FACES)
    assert s.targets() == [0, 1] and s.shown_face() == 0
    s.set_slider("Smiling", -0.5)
    assert [s.value("Smiling", i) for i in (0, 1)] == [-0.5, -0.5]
    s.reset(faces=[1])
    assert s.value("Smiling", 1) == 1.0 and s.value("Smiling", 0) == -0.5
    s.reset()
    assert not s.is_modified()
    with pytest.raises(FaderError, match="face 5 does not exist"):
        s.set_value("Smiling", 1.0, face=5)
    with pytest.raises(FaderError, match="unknown attribute 'Beard'"):
        s.set_slider("Beard", 1.0)


def test_resetting_a_face_clears_its_brush_strokes_and_undo_brings_them_back():
    """Strokes kept after Reset face went on erasing every new edit there, with nothing on
    screen to say why; resetting one attribute keeps them (the face's other edits stay)."""
    from core.edit_mask import EditMask
    s = session()
    mask = EditMask.full(16).painted([(8, 8)], radius=4)
    s.set_slider("Smiling", 2.0, faces=[0, 1])
    s.set_masks({0: mask, 1: mask})
    s.reset(face=0, name="Smiling")
    assert s.masks == [mask, mask]
    s.set_slider("Smiling", 2.0, faces=[0])
    before = s.snapshot()
    assert s.reset(face=0)
    assert s.masks == [None, mask] and not s.is_modified(0)
    s.restore(before)
    assert s.masks == [mask, mask] and s.value("Smiling", 0) == 2.0
    assert s.reset(faces=[0, 1]) and s.masks == [None, None]
    s.set_masks({1: mask})
    assert s.reset(face=1), "strokes alone are something to reset"
    assert s.masks == [None, None]


def test_snapshots_are_immutable_and_restore_exactly():
    s = session()
    before = s.snapshot()
    s.set_slider("Smiling", 2.0)
    s.set_slider("Hair", Towards(1, 0.5))
    after = s.snapshot()
    assert before != after and hash(after) != hash(before)
    with pytest.raises(Exception):
        after.faces = ()   # frozen
    s.restore(before)
    assert s.snapshot() == before and not s.is_modified()
    s.restore(after)
    assert s.values(0) == {"Smiling": 2.0, "Hair": [0.5, 0.5, 0.0]}
    # a snapshot carries over to a session of the same faces (another model, same attributes)
    other = EditSession(ATTRS, OWN, snapshot=after)
    assert other.snapshot() == after
    with pytest.raises(FaderError, match=r"has 2 faces, the photo 1"):
        EditSession(ATTRS, OWN[:1]).restore(after)


def test_listeners_hear_each_change_once_and_a_write_of_the_same_value_is_none():
    s = session()
    heard = []
    unsubscribe = s.subscribe(heard.append)
    assert s.set_slider("Smiling", 0.7, merge=3) is True
    assert s.set_slider("Smiling", 0.7, merge=3) is False   # what a widget showing the value writes back
    s.reset(label="Reset face")
    s.restore(heard[0].after)
    s.select(1)
    s.select(1)
    assert [c.kind for c in heard] == ["set", "reset", "restore", "select"]
    first = heard[0]
    assert (first.name, first.faces, first.merge) == ("Smiling", (0,), 3)
    assert first.before.face(0)["Smiling"] == 0.0 and first.after.face(0)["Smiling"] == 0.7
    assert heard[1].label == "Reset face" and heard[1].after == first.before
    unsubscribe()
    s.set_slider("Smiling", 1.9)
    assert len(heard) == 4


def test_several_values_set_at_once_are_one_change_and_a_bad_face_changes_nothing():
    """A pasted edit: several attributes on the chosen faces in one change (one undo step);
    other attributes stay, and a face that does not exist is refused before anything changes."""
    s = session()
    s.set_slider("Hair", Towards(1, 0.5), faces=[0])
    heard = []
    s.subscribe(heard.append)
    assert s.set_values({"Smiling": 1.5, "Hair": [0.0, 1.0, 0.0]}, faces=[1], label="Paste edit")
    assert len(heard) == 1 and heard[0].kind == "set" and heard[0].faces == (1,) and heard[0].label == "Paste edit"
    assert s.values(1) == {"Smiling": 1.5, "Hair": [0.0, 1.0, 0.0]}
    assert s.slider("Hair", 0) == Towards(1, 0.5) and s.slider("Smiling", 0) == 0.0
    assert not s.set_values({"Smiling": 1.5}, faces=[1])             # already so: no change
    before = s.snapshot()
    with pytest.raises(FaderError):
        s.set_values({"Smiling": -1.0}, faces=[0, 5])
    with pytest.raises(FaderError):
        s.set_values({"Bald": 1.0}, faces=[0])
    assert s.snapshot() == before and len(heard) == 1
    s.restore(heard[0].before)
    assert s.values(1) == {"Smiling": 1.0, "Hair": [0.0, 0.0, 1.0]}


def test_a_readings_certainty_stands_until_the_user_corrects_the_reading():
    s = EditSession(ATTRS, OWN, certainty=[{"Smiling": 0.62, "Hair": 0.9}, None])
    assert s.reading_certainty("Smiling", 0) == pytest.approx(0.62) and s.reading_certainty("Smiling", 1) is None
    assert s.unsure_readings(0, ["Smiling", "Hair"]) == {"Smiling": pytest.approx(0.62)}   # two-valued ones only
    assert EditSession(ATTRS, OWN, certainty=[{"Smiling": 0.85}, None]).unsure_readings(0, ["Smiling"]) == {}
    heard = []
    s.subscribe(heard.append)
    s.set_own("Smiling", 1.0, faces=[0])
    assert s.reading_certainty("Smiling", 0) is None          # corrected: the user has settled it
    assert s.reading_certainty("Hair", 0) == pytest.approx(0.9)
    s.restore(heard[-1].before)
    assert s.reading_certainty("Smiling", 0) == pytest.approx(0.62)
    with pytest.raises(FaderError):
        EditSession(ATTRS, OWN, certainty=[None])
    with pytest.raises(FaderError):
        s.reading_certainty("Bald", 0)


# -- the document: the same faces and the same result for every front end --------------------------

@pytest.fixture(scope="module")
def engine(tiny_model_path):
    from core.engine import Engine
    from core.model_file import load_model
    return Engine(load_model(tiny_model_path), device="cpu")


def _framed_image() -> np.ndarray:
    """178x218 (CelebA's aligned framing), smooth, no face a detector finds."""
    yy, xx = np.mgrid[0:218, 0:178]
    img = np.stack([80 + 0.5 * xx, 100 + 0.3 * yy, 140 - 0.2 * xx], axis=2)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_an_image_with_the_models_framing_and_no_detected_face_is_edited_the_same_everywhere(
        tmp_path, capsys, engine, tiny_model_path):
    """The window always edited such an image as an aligned crop, while `edit` and `batch`
    refused it ("no face found"): the fallback now lives in core, so all three agree."""
    from core.batch import BatchOptions, run_batch
    from core.image_io import load_image, save_image
    from core.photo_edit import PhotoEdit
    from fader_desktop.cli import main
    src = tmp_path / "in" / "framed.png"
    src.parent.mkdir()
    save_image(src, _framed_image())
    doc = PhotoEdit.open(src, engine)
    assert doc.fallback and doc.aligned and len(doc.faces) == 1
    doc.set_values({"Smiling": 2.0})
    want = doc.render()
    assert not np.array_equal(want, load_image(src))

    rc = main(["edit", str(src), "-o", str(tmp_path / "edit.png"), "--set", "Smiling=2", "--model",
               str(tiny_model_path), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "no face detected" in err and "aligned crop" in err
    assert np.array_equal(load_image(tmp_path / "edit.png"), want)

    rep = run_batch(src.parent, tmp_path / "out", engine, BatchOptions(values={"Smiling": 2.0}))
    (item,) = rep.items
    assert item.status == "ok" and "edited as an aligned crop" in item.reason, item.reason
    diff = np.abs(load_image(tmp_path / "out" / "framed.png").astype(int) - want.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001   # batching may round differently


def test_a_tiny_image_of_the_models_framing_is_no_face(tmp_path):
    """A 9x11 grey image has CelebA's framing, and the aligned-crop fallback painted a face on it;
    the fallback keeps to the size a detected face needs (a quarter of the model's side between
    the crop's edges, 32 px for a 128 px model), so a smaller one is "no face found"."""
    import cv2
    from conftest import make_tiny_model
    from core.engine import Engine
    from core.errors import FaderError
    from core.image_io import save_image
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    engine = Engine(load_model(make_tiny_model(tmp_path / "m128.fader", img_size=128)), device="cpu")
    for w, h in ((9, 11), (26, 32)):
        src = tmp_path / f"grey{w}x{h}.png"
        save_image(src, cv2.resize(_framed_image(), (w, h), interpolation=cv2.INTER_AREA))
        with pytest.raises(FaderError, match="no face"):
            PhotoEdit.open(src, engine)
    src = tmp_path / "grey40x49.png"
    save_image(src, cv2.resize(_framed_image(), (40, 49), interpolation=cv2.INTER_AREA))
    assert PhotoEdit.open(src, engine).fallback


def test_each_face_carries_how_sure_the_classifier_is_of_its_reading(engine, portrait_path):
    from core.photo_edit import PhotoEdit
    doc = PhotoEdit.open(portrait_path, engine)
    face = doc.faces[0]
    probs = engine.predict_probabilities(face.aligned.crop[None])[0]
    assert face.own_certainty == pytest.approx({n: max(p) for n, p in probs.items()})
    assert doc.session.reading_certainty("Smiling", 0) == pytest.approx(max(probs["Smiling"]))


def test_edit_region_bounds_every_changed_pixel(engine, portrait_path):
    from core.image_io import load_image
    from core.photo_edit import PhotoEdit
    doc = PhotoEdit.open(portrait_path, engine)
    x, y, w, h = doc.edit_region()
    assert 0 < w < doc.image.shape[1] and 0 < h < doc.image.shape[0]
    doc.set_values({"Smiling": 2.0, "Male": -1.0})
    full = doc.render()
    changed = np.argwhere(np.any(full != load_image(portrait_path), axis=2))
    assert len(changed) > 100
    assert changed[:, 0].min() >= y and changed[:, 0].max() < y + h
    assert changed[:, 1].min() >= x and changed[:, 1].max() < x + w
    patch, (px, py) = doc.render_region()
    assert (px, py) == (x, y) and np.array_equal(patch, full[y:y + h, x:x + w])


def test_a_corrected_own_value_moves_the_fader_there_and_undoes_with_the_rest():
    """The classifier misread a face: the user sets its own value; the fader goes there (the face
    is unchanged), edits are measured from it, and the snapshot (undo, render requests) carries it."""
    s = session()
    heard = []
    s.subscribe(heard.append)
    s.set_slider("Smiling", 0.6)
    assert s.set_own("Smiling", 1.0, label="Smiling: this face smiles") is True
    assert s.own[0]["Smiling"] == 1.0 and s.slider("Smiling", 0) == 1.0 and not s.is_modified(0)
    assert s.own[1]["Smiling"] == 1.0 and s.own[0]["Hair"] == [1.0, 0.0, 0.0]   # the others as they were
    s.set_slider("Smiling", 0.0)
    assert s.changed_values(0) == {"Smiling": 0.0}   # an edit now, measured from the corrected value
    change = heard[1]
    assert (change.kind, change.name, change.faces, change.label) == ("own", "Smiling", (0,), "Smiling: this face smiles")
    s.restore(change.before)   # undo
    assert s.own[0]["Smiling"] == 0.0 and s.slider("Smiling", 0) == 0.6 and s.is_modified(0)
    s.restore(change.after)    # redo
    assert s.own[0]["Smiling"] == 1.0 and not s.is_modified(0)
    assert s.set_own("Smiling", 1.0) is False   # already so
    # a multi-valued attribute takes a code; bad values are refused and change nothing
    s.set_own("Hair", [0.0, 1.0, 0.0], faces=[1])
    assert s.own[1]["Hair"] == [0.0, 1.0, 0.0] and s.slider("Hair", 1) == Towards(1, 0.0)
    snap = s.snapshot()
    for name, bad, msg in (("Smiling", 0.5, "0 or 1"), ("Hair", [0.5, 0.0, 0.0], "3 weights that sum to 1"),
                           ("Hair", [1.0, 0.0], "3 weights")):
        with pytest.raises(FaderError, match=msg):
            s.set_own(name, bad)
    with pytest.raises(FaderError, match="face 4 does not exist"):
        s.set_own("Smiling", 0.0, faces=[4])
    assert s.snapshot() == snap
    # another session of the same faces takes the corrections with the values
    other = EditSession(ATTRS, OWN, snapshot=snap)
    assert other.own == s.own and other.snapshot() == snap


def test_a_corrected_reading_reverses_the_edit_on_the_photo(engine, portrait_path):
    """On a real photo: with the face's own value corrected, the photo is unchanged until the
    fader moves, and the fader's other end then edits the other way round; the worker's copy of
    the photo, given the window's snapshot, renders the same pixels."""
    from core.image_io import load_image
    from core.photo_edit import PhotoEdit
    doc = PhotoEdit.open(portrait_path, engine)
    orig = load_image(portrait_path).astype(np.float64)
    read = doc.faces[0].own["Smiling"]
    assert read == doc.faces[0].own_values["Smiling"] in (0.0, 1.0)
    doc.set_value("Smiling", 1.0 - read, face=0)
    first = doc.render().astype(np.float64) - orig
    assert np.abs(first).max() > 10
    doc.set_own("Smiling", 1.0 - read, face=0)
    assert not doc.is_modified() and np.array_equal(doc.render(), load_image(portrait_path))
    doc.set_value("Smiling", read, face=0)
    second = doc.render().astype(np.float64) - orig
    moved = (np.abs(first) > 2) | (np.abs(second) > 2)
    assert moved.sum() > 500
    assert np.corrcoef(first[moved], second[moved])[0, 1] < -0.8   # the other way round
    worker = PhotoEdit.open(portrait_path, engine)
    worker.restore(doc.session.snapshot())
    assert worker.faces[0].own["Smiling"] == 1.0 - read
    assert np.array_equal(worker.render(), doc.render())
    assert doc.faces[0].own_values["Smiling"] == read   # the reading itself is kept
