"""Batch and edit messages about one item, and the batch dialog's first ETA (session 45d): a note
about one photo names it, without "e.g." ("1 photo has several faces (e.g. two.png has 2)"); a
photo without a face has "no editable face" (it said "0 editable faces"); the dialog's ETA leaves
out the model's loading when nothing is passed over. Real runs with the tiny model."""
from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cli(capsys, *args) -> tuple:
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def notes(err: str) -> list:
    return [line for line in err.splitlines() if ": note: " in line]


def test_batch_notes_about_one_photo_name_it_without_eg(tmp_path, capsys, portrait_path, tiny_model_path):
    from PIL import Image
    from core.image_io import load_image
    rgb = load_image(portrait_path)
    src = tmp_path / "in"
    src.mkdir()
    # one photo of two faces, with transparency (lost in a JPEG), and a note beside it
    two = np.concatenate([rgb, rgb[:, ::-1]], axis=1)
    Image.fromarray(np.dstack([two, np.full(two.shape[:2], 200, np.uint8)])).save(src / "two.png")
    (src / "notes.txt").write_text("not a photo")
    model = ["--model", tiny_model_path, "--device", "cpu", "--set", "Male=1"]
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--format", "jpg", *model)
    assert rc == 0, err   # the note is left alone, no problem
    said = notes(err)
    assert any("1 file that is not an image was left alone: notes.txt" in n for n in said), err
    assert any("1 output could not keep everything of its photo: two.png: transparency dropped" in n
               for n in said), err
    # the tiny random model reads Smiling at about 50 %: the one photo's readings are named
    assert any("in 1 photo the model was unsure" in n and "check it (the report lists it; --report writes it): "
               "two.png: face 0: " in n for n in said), err
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "raw", "--raw", *model)
    assert any("note: 1 photo has several faces (two.png has 2); --raw wrote its main face (the first" in n
               for n in notes(err)), err
    assert not [n for n in said + notes(err) if "e.g." in n], err


def test_a_face_asked_of_a_photo_without_one_says_no_editable_face(tmp_path, capsys, tiny_model_path):
    from core.image_io import save_image
    src = tmp_path / "in"
    src.mkdir()
    save_image(src / "grey.png", np.full((64, 64, 3), 128, np.uint8))
    model = ["--model", tiny_model_path, "--device", "cpu"]
    rc, err = cli(capsys, "edit", src / "grey.png", "-o", tmp_path / "e.png", "--face", "1", *model)
    assert rc != 0 and "grey.png: face 1 does not exist; the photo has no editable face" in err, err
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--face", "1", *model)
    assert rc == 1 and "grey.png: face 1 does not exist; the photo has no editable face" in err, err
    assert "0 editable faces" not in err


def test_the_batch_dialogs_first_eta_leaves_out_the_models_loading(monkeypatch, tmp_path, celeba_aligned,
                                                                   tiny_model_path):
    """Nothing passed over: the rate was measured from Start, so a model taking 3 s to load (a
    large file on a slow drive, a GPU starting) said "about 9 s left" after the first of 4 photos
    that take a fraction of a second each."""
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QApplication
    import core.model_file
    from fader_desktop.batch_dialog import BatchDialog
    app = QApplication.instance() or QApplication([])
    real_load = core.model_file.load_model

    def slow_load(*args, **kwargs):
        time.sleep(3.0)   # the real model, loaded slowly
        return real_load(*args, **kwargs)
    monkeypatch.setattr(core.model_file, "load_model", slow_load)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for face in sorted(celeba_aligned.glob("*.jpg"))[:4]:
        shutil.copy(face, src / face.name)
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0})
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    dlg.aligned_check.setChecked(True)
    assert dlg.start()
    seen = []
    deadline = time.monotonic() + 120
    while dlg.is_running() and time.monotonic() < deadline:
        app.processEvents()
        pd = dlg._progress
        if pd is not None and (not seen or seen[-1][1] != pd.labelText()):
            seen.append((time.monotonic(), pd.labelText()))
        time.sleep(0.005)
    end = time.monotonic()
    assert not dlg.is_running() and dlg.report.counts()["ok"] == 4, seen
    etas = [(t, int(m[1]) * (60 if m[2] == "min" else 1), label) for t, label in seen
            if (m := re.search(r"about (\d+) (s|min) left", label))]
    assert etas, seen
    t, eta, label = etas[0]
    # the photos left took end - t; the 3 s of loading, counted in the rate, said 9 s or more
    assert eta <= 2 * (end - t) + 1.5, (label, round(end - t, 2), seen)
    dlg.summary_box.close()
