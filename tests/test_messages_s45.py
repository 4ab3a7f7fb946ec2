"""Messages count in words (session 45): "1 photo", "2 photos", never "photo(s)", and name things
as a sentence does, not as a Python list ("tensor(s) ['a', 'b']"). Real runs, a tiny model:
the batch dialog's summary after a real run, `fader-desktop edit` and `batch` in-process, a model
file missing tensors loaded through core.model_file, a label table naming an absent image.
"""
from __future__ import annotations

import shutil
import time

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import make_tiny_model
from core.errors import FaderError, ModelFileError


def cli(capsys, *args) -> tuple:
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def test_counted_says_one_in_the_singular():
    from core.attributes import counted
    assert [counted(n, "photo") for n in (0, 1, 2)] == ["0 photos", "1 photo", "2 photos"]
    assert counted(1, "editable face") == "1 editable face" and counted(3, "copy", "copies") == "3 copies"


def _summary(dlg, src, out) -> str:
    """Run the dialog's batch on `src` for real; the summary's headline as the user reads it."""
    from PySide6.QtWidgets import QApplication
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    assert dlg.start()
    deadline = time.monotonic() + 120
    while dlg.is_running() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.005)
    assert not dlg.is_running() and dlg.error is None, dlg.error
    head = dlg.summary_box.text()
    dlg.summary_box.close()
    return head


def test_batch_dialog_summary_counts_one_photo_and_two_photos(qtbot, tmp_path, portrait_path, tiny_model_path):
    """It said "1 photo(s) written to …"."""
    pytest.importorskip("PySide6")
    from fader_desktop.batch_dialog import BatchDialog
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(portrait_path, src / "a.jpg")
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0})
    qtbot.addWidget(dlg)
    head = _summary(dlg, src, tmp_path / "out1")
    assert head.startswith(f"1 photo written to {tmp_path / 'out1'} in "), head
    # the tiny random model reads Smiling at about 50 %: an unsure reading, said of one photo
    assert "In 1 photo the model was unsure of a reading the edit starts from, so the edit may go the wrong " \
           "way there: check it (see details)." in head, head
    assert "(s)" not in head, head
    shutil.copy(portrait_path, src / "b.jpg")
    head = _summary(dlg, src, tmp_path / "out2")
    assert head.startswith(f"2 photos written to {tmp_path / 'out2'} in "), head
    assert "In 2 photos the model was unsure" in head and "check them (see details)." in head, head
    assert "(s)" not in head, head


def test_edit_face_out_of_range_counts_the_faces(capsys, tmp_path, portrait_path, tiny_model_path):
    """`edit --face 5` on a one-face photo: "the photo has 1 editable face(s)"."""
    rc, err = cli(capsys, "edit", portrait_path, "-o", tmp_path / "o.png", "--face", "5", "--set", "Smiling=1",
                  "--model", tiny_model_path, "--device", "cpu")
    assert rc == 2 and err.strip() == (f"fader-desktop: error: {portrait_path}: face 5 does not exist; "
                                       "the photo has 1 editable face; --find-more-faces searches again, turned, "
                                       "tilted and finer (slower)"), err
    assert not (tmp_path / "o.png").exists()


def test_batch_of_no_photos_counts_the_other_file(capsys, tmp_path, tiny_model_path):
    """A folder holding only a note: "no images found (1 other file(s))"."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "notes.txt").write_text("shot on the 3rd\n")
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--set", "Smiling=1",
                  "--model", tiny_model_path, "--device", "cpu")
    assert rc == 2 and f"{src}: no images found (1 other file); looked for " in err, err


def _without(src, dst, drop) -> int:
    """A copy of model file `src` less the tensors whose names `drop` accepts (and its digests, as
    a file written by another tool has none); how many it left out."""
    with safe_open(str(src), framework="pt") as f:
        meta = {"fader_meta": f.metadata()["fader_meta"]}
        tensors = {k: f.get_tensor(k) for k in f.keys() if not drop(k)}
        dropped = len(f.keys()) - len(tensors)
    save_file(tensors, str(dst), metadata=meta)
    return dropped


def test_a_model_missing_tensors_names_them_in_words(tmp_path):
    """"missing autoencoder tensor(s) ['dec_layers.1.0.weight']": a Python list, with "(s)"."""
    from core.model_file import load_model
    good = make_tiny_model(tmp_path / "good.fader")
    one = tmp_path / "one.fader"
    _without(good, one, lambda k: k == "autoencoder.dec_layers.1.0.weight")
    with pytest.raises(ModelFileError) as ei:
        load_model(one)
    assert str(ei.value).endswith("missing 1 autoencoder tensor: 'dec_layers.1.0.weight'"), ei.value
    many = tmp_path / "many.fader"
    n = _without(good, many, lambda k: k.startswith("autoencoder.dec_layers."))
    with pytest.raises(ModelFileError) as ei:
        load_model(many)
    msg = str(ei.value)
    assert "[" not in msg and "(s)" not in msg, msg
    # the first three by name, the rest counted
    assert f": missing {n} autoencoder tensors: 'dec_layers.0.0.weight', 'dec_layers.0." in msg, msg
    assert n > 3 and msg.endswith(f" and {n - 3} more"), msg


def test_a_label_table_naming_one_absent_image_says_one(tmp_path, portrait_path):
    """"1 listed file(s) not found next to the table, e.g. 'gone.jpg'"."""
    from training.datasets import open_dataset
    shutil.copy(portrait_path, tmp_path / "a.jpg")
    (tmp_path / "labels.csv").write_text("file,Smiling\na.jpg,1\ngone.jpg,0\n")
    with pytest.raises(FaderError) as ei:
        open_dataset([tmp_path / "labels.csv"])
    assert str(ei.value) == f"{tmp_path / 'labels.csv'}: 1 listed file not found next to the table: 'gone.jpg'"
