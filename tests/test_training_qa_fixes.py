"""fader-train fixes from a QA pass (tiny 32 px runs): "no" value folders spelled as noglasses,
NoBangs or nein; fine-tuning on Yes/No, true/false values; the window's Size when fine-tuning;
whole photos without --align; a killed checkpoint write's temporary file; one image under two
values; extra CSV columns; a resumed run's edited data; junk folders, loose images, a notes.csv."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.attributes import Attribute, quoted
from core.errors import FaderError
from core.model_file import load_model
from training import cli
from training.datasets import open_dataset

TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-steps", "2", "--quiet", "--threads", "1", "--workers", "1", "--batch-size", "4"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(folder: Path, n: int, seed: int = 0, size=(40, 40), start: int = 0) -> list:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        out.append(folder / f"{i}.png")
        cv2.imwrite(str(out[-1]), rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    return out


def _folder(root: Path, values, n: int = 6) -> Path:
    for k, v in enumerate(values):
        _images(root / v, n, seed=k + 1)
    return root


def _train(args, capsys, tmp_path) -> tuple:
    code = cli.main([*TINY, *args, "--cache-dir", str(tmp_path / "cache")])
    return code, capsys.readouterr().err


# -- 1. which value is "no" ---------------------------------------------------------------------

@pytest.mark.parametrize("no, yes", [("noglasses", "glasses"), ("NoBangs", "Bangs"), ("nein", "ja"),
                                     ("no_bangs", "bangs"), ("no-bangs", "bangs"), ("not_smiling", "smiling"),
                                     ("without_glasses", "with_glasses"), ("não", "sim"), ("nej", "ja"), ("nee", "ja"),
                                     ("n", "y"), ("kein_Bart", "Bart")])
def test_negative_value_folders_are_value_0(tmp_path, no, yes):
    """glasses/ + noglasses/ gave ['glasses', 'noglasses']: value 1 was "no glasses", so the
    slider's "yes" removed glasses."""
    ds = open_dataset(_folder(tmp_path / "Glasses", (yes, no)))
    assert ds.attributes[0].values == (no, yes)
    assert not ds.notes, ds.notes


@pytest.mark.parametrize("values", [("normal", "nose"), ("female", "male")])
def test_no_negative_value_is_a_warning_naming_0_and_1(tmp_path, values):
    ds = open_dataset(_folder(tmp_path / "Look", values))
    assert ds.attributes[0].values == values   # alphabetical, as before: no word reads as "no"
    (note,) = ds.notes
    assert f"{values[0]!r} is taken as 0" in note and f"{values[1]!r} as 1" in note
    assert "no_Look" in note and "CSV" in note


def test_polarity_warning_in_a_csv_and_in_the_run_output(tmp_path, capsys):
    imgs = _images(tmp_path / "d", 8)
    table = tmp_path / "d" / "labels.csv"
    table.write_text("file,Look\n" + "".join(f"{p.name},{'plain' if i % 2 else 'glasses'}\n" for i, p in enumerate(imgs)))
    assert "'glasses' is taken as 0" in open_dataset(table).notes[0]
    code, err = _train(["--data", str(table), "--out", str(tmp_path / "run"), "--steps", "2", "--val-size", "2"],
                       capsys, tmp_path)
    assert code == 0, err
    assert "fader-train: warning: " in err and "'glasses' is taken as 0" in err


def test_a_folder_of_attribute_folders_with_run_together_no_names_is_refused(tmp_path):
    """attrs2/{Glasses/{glasses,noglasses}, Lächeln/{ja,nein}} was one attribute 'attrs2' whose
    values were Glasses and Lächeln."""
    root = tmp_path / "attrs2"
    _folder(root / "Glasses", ("glasses", "noglasses"))
    _folder(root / "Lächeln", ("ja", "nein"))
    with pytest.raises(FaderError) as e:
        open_dataset(root)
    assert "one attribute folder per run" in str(e.value) and f"--data {root / 'Glasses'}" in str(e.value)


# -- 2. fine-tuning on other spellings of the model's values -------------------------------------

@pytest.mark.parametrize("values", [("No", "Yes"), ("false", "true"), ("0", "1"), ("no_Smiling", "yes_Smiling"),
                                    ("nein", "ja"), ("absent", "present")])
def test_init_takes_the_models_values_in_another_spelling(tmp_path, capsys, tiny_model_path, values):
    data = _folder(tmp_path / "Smiling", values)
    out = tmp_path / "run"
    code, err = _train(["--data", str(data), "--init", str(tiny_model_path), "--out", str(out), "--steps", "2",
                        "--val-size", "4"], capsys, tmp_path)
    assert code == 0, err
    assert f"the data's Smiling {values[0]!r} is the model's 'no', {values[1]!r} is the model's 'yes'" in err
    assert load_model(out / "model.fader").attributes[0].values == ("no", "yes")
    # and the run resumes on the same data
    code, err = _train(["--data", str(data), "--out", str(out), "--steps", "3", "--resume"], capsys, tmp_path)
    assert code == 0, err


def test_init_with_an_uppercase_csv_column(tmp_path, capsys, tiny_model_path):
    imgs = _images(tmp_path / "d", 8)
    table = tmp_path / "d" / "labels.csv"
    table.write_text("file,Smiling\n" + "".join(f"{p.name},{'YES' if i % 2 else 'NO'}\n" for i, p in enumerate(imgs)))
    code, err = _train(["--data", str(table), "--init", str(tiny_model_path), "--out", str(tmp_path / "run"),
                        "--steps", "2", "--val-size", "2"], capsys, tmp_path)
    assert code == 0, err


def test_value_matching_renumbers_labels_and_leaves_other_values_to_the_error(tmp_path, capsys, tiny_model_path):
    model = [Attribute("E", ("yes", "no")), Attribute("H", ("black", "blond"))]
    data = [Attribute("E", ("false", "true")), Attribute("H", ("dark", "fair"))]
    labels = np.array([[0, 0], [1, 1], [1, 0]])
    attrs, out = cli._model_values(data, labels, model, "model", lambda s: None)
    assert attrs[0].values == ("yes", "no") and out[:, 0].tolist() == [1, 0, 0]
    assert attrs[1].values == ("dark", "fair") and out[:, 1].tolist() == [0, 1, 0]
    # values that cannot be matched: the error says how to fix it
    data = _folder(tmp_path / "Smiling", ("grin", "plain"))
    code, err = _train(["--data", str(data), "--init", str(tiny_model_path), "--out", str(tmp_path / "run"),
                        "--steps", "2", "--val-size", "4"], capsys, tmp_path)
    assert code == 2 and "in the model but" in err and "name the data's values as the model's" in err


# -- 3. the window's Size when fine-tuning -------------------------------------------------------

def test_dialog_fine_tuning_uses_the_models_size(qtbot, tmp_path, tiny_model_path):
    pytest.importorskip("pytestqt")
    from fader_desktop.training_dialog import TrainingDialog, form_terms
    d = TrainingDialog(current_model=str(tiny_model_path))
    qtbot.addWidget(d)
    d.data_edit.setText(str(tmp_path / "Smiling"))
    assert d.size_combo.currentData() == 64 and d.size_combo.isEnabled()
    d.finetune_check.setChecked(True)
    assert not d.size_combo.isEnabled() and d.size_combo.currentData() == 32
    args = d.arguments()
    assert args[args.index("--img-size") + 1] == "32" and "--init" in args
    d.finetune_check.setChecked(False)
    assert d.size_combo.isEnabled() and d.size_combo.currentData() == 64
    # the fine-tune box sent the open model as --init (Options may name another: then it stays "the --init model")
    assert form_terms("--img-size 64 differs from the --init model's 128", open_model=True) == \
        "Size 64 px differs from the open model's 128"
    assert form_terms("--img-size 64 differs from the --init model's 128") == "Size 64 px differs from the --init model's 128"


# -- 4. whole photos without --align -------------------------------------------------------------

def test_mostly_unaligned_photos_without_align_are_refused(tmp_path, capsys):
    data = tmp_path / "Smiling"
    for k, v in enumerate(("no", "yes")):
        _images(data / v, 5, seed=k, size=(60, 40))      # whole photos: landscape
        _images(data / v, 2, seed=k + 5, size=(40, 40), start=5)  # two happen to be square
    code, err = _train(["--data", str(data), "--out", str(tmp_path / "run"), "--steps", "2", "--val-size", "2"],
                       capsys, tmp_path)
    assert code == 2
    assert "10 of the 14 images are not aligned" in err and "add --align" in err
    assert not (tmp_path / "run").exists()


# -- 5. a killed checkpoint write's temporary file -----------------------------------------------

def test_a_killed_writes_temporary_file_is_removed_when_the_run_resumes(tmp_path, capsys):
    data = _folder(tmp_path / "Smiling", ("no", "yes"))
    out = tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), "--val-size", "4"]
    assert _train(common + ["--steps", "2"], capsys, tmp_path)[0] == 0
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = out / f".checkpoint_last.pt.{dead.pid}-0123456789ab.part"
    stale.write_bytes(b"x" * 1000)
    code, err = _train(common + ["--steps", "3", "--resume"], capsys, tmp_path)
    assert code == 0, err
    assert not stale.exists() and "removed 1 temporary file" in err


# -- 6. one image under two values ---------------------------------------------------------------

def test_the_same_file_under_two_values_is_refused(tmp_path):
    data = _folder(tmp_path / "Smiling", ("no", "yes"))
    os.symlink(data / "no" / "0.png", data / "yes" / "linked.png")
    with pytest.raises(FaderError) as e:
        open_dataset(data)
    assert "are the same file" in str(e.value) and "linked.png (yes)" in str(e.value)
    # a hard link is the same file too (the resolved path is not)
    os.remove(data / "yes" / "linked.png")
    os.link(data / "no" / "1.png", data / "yes" / "hard.png")
    with pytest.raises(FaderError) as e:
        open_dataset(data)
    assert "are the same file" in str(e.value) and "hard.png (yes)" in str(e.value)


def test_an_identical_copy_under_two_values_is_a_warning(tmp_path):
    data = _folder(tmp_path / "Smiling", ("no", "yes"))
    (data / "yes" / "copy.png").write_bytes((data / "no" / "3.png").read_bytes())
    (note,) = open_dataset(data).notes
    assert note.startswith("1 image is an identical copy under two values") and "copy.png (yes)" in note
    # same size and first 4 KB, different after: no copy
    head = bytes(range(256)) * 16
    (data / "no" / "a.png").write_bytes(head + b"A" * 100)
    (data / "yes" / "b.png").write_bytes(head + b"B" * 100)
    assert [n[:10] for n in open_dataset(data).notes] == ["1 image is"]


# -- 7. extra CSV columns, numeric labels ---------------------------------------------------------

def test_many_valued_csv_columns_need_attr(tmp_path):
    imgs = _images(tmp_path / "d", 40)
    table = tmp_path / "d" / "labels.csv"
    table.write_text("file,Glasses,person_id,age\n" + "".join(
        f"{p.name},{i % 2},{i % 7},{20 + i}\n" for i, p in enumerate(imgs)))
    with pytest.raises(FaderError) as e:
        open_dataset(table)
    msg = str(e.value)
    assert "'person_id' (7 values) and 'age' (40 values)" in msg and "--attr Glasses" in msg
    assert [a.name for a in open_dataset(table, "Glasses,person_id").attributes] == ["Glasses", "person_id"]


def test_continuing_on_a_table_with_extra_columns_trains_the_models_attributes(tmp_path, capsys):
    """Review: the refusal of many-valued columns also stopped --continue, which trains the
    model's own attributes and leaves the table's others out (it trained before)."""
    imgs = _images(tmp_path / "d", 40)
    table = tmp_path / "d" / "labels.csv"
    table.write_text("file,Bangs,person_id\n" + "".join(f"{p.name},{i % 2},{i % 9}\n" for i, p in enumerate(imgs)))
    first = tmp_path / "run1"
    code, err = _train(["--data", str(table), "--attr", "Bangs", "--out", str(first), "--val-size", "4",
                        "--steps", "2"], capsys, tmp_path)
    assert code == 0, err
    code, err = _train(["--continue", str(first / "model.fader"), "--data", str(table), "--out", str(tmp_path / "run2"),
                        "--val-size", "4", "--steps", "4"], capsys, tmp_path)
    assert code == 0, err
    assert [a.name for a in load_model(tmp_path / "run2" / "model.fader").attributes] == ["Bangs"]


def test_numeric_labels_sort_as_numbers(tmp_path):
    imgs = _images(tmp_path / "d", 6)
    table = tmp_path / "d" / "labels.csv"
    table.write_text("file,Level\n" + "".join(f"{p.name},{(8, 9, 10)[i % 3]}\n" for i, p in enumerate(imgs)))
    ds = open_dataset(table)
    assert ds.attributes[0].values == ("8", "9", "10")
    assert [it.labels[0] for it in ds.items] == [0, 1, 2, 0, 1, 2]


# -- 8. resuming on edited data ------------------------------------------------------------------

def test_resume_on_edited_data_says_what_changed_before_preprocessing(tmp_path, capsys):
    data = _folder(tmp_path / "Smiling", ("no", "yes"))
    out = tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), "--val-size", "4"]
    assert _train(common + ["--steps", "2"], capsys, tmp_path)[0] == 0
    caches = sorted((tmp_path / "cache").iterdir())
    _images(data / "yes", 2, seed=9, start=100)
    (data / "no" / "0.png").unlink()
    code, err = _train(common + ["--steps", "3", "--resume"], capsys, tmp_path)
    assert code == 2
    assert "2 images added and 1 removed or renamed" in err
    assert f"--continue {out / 'model.fader'} --steps TOTAL --out NEW_RUN_DIR" in err
    assert sorted((tmp_path / "cache").iterdir()) == caches   # no new preprocessing cache was built


# -- 9. loose images, junk folders, a notes.csv --------------------------------------------------

def test_junk_folders_loose_images_and_a_notes_csv(tmp_path):
    data = _folder(tmp_path / "Smiling", ("no", "yes"))
    _images(data / "@eaDir", 2)
    _images(data / "__MACOSX", 2)
    _images(data / "yes" / "@eaDir", 2, seed=7)   # thumbnails inside a value folder too
    _images(data, 3, seed=8, start=50)            # loose, beside the value folders
    (data / "notes.csv").write_text("what,when\nshot in the garden,2024\n")
    ds = open_dataset(data)
    assert ds.kind == "folders" and ds.attributes[0].values == ("no", "yes")
    assert len(ds.items) == 12
    assert any(n.startswith(f"3 images directly in {data}") for n in ds.notes), ds.notes
    # a table that names the images is still the labels
    (data / "notes.csv").write_text("file,Smiling\n" + "".join(f"{50 + i}.png,{i % 2}\n" for i in range(3)))
    assert open_dataset(data).kind == "csv"


def test_a_fine_tune_of_a_mirror_decoded_model_is_decoded_so_too(tmp_path, capsys, tiny_model_path):
    """QA: fine-tuned from the shipped model (decoded with each face's mirror image, +0.5 dB),
    the new model lost the mirror decoding without a word."""
    from core.model_file import save_model
    m = load_model(tiny_model_path)
    m.meta["mirror_decode"] = True
    init = tmp_path / "mirrored.fader"
    save_model(m, init)
    data = _folder(tmp_path / "Bangs", ("no", "yes"))
    out = tmp_path / "run"
    code, err = _train(["--data", str(data), "--init", str(init), "--out", str(out), "--steps", "2",
                        "--val-size", "4"], capsys, tmp_path)
    assert code == 0, err
    assert load_model(out / "model.fader").meta.get("mirror_decode") is True



def test_two_labeled_folders_are_refused_with_the_way_to_train_both(tmp_path):
    """QA: `--data A --data B` said "got 2 folders sources" and no way to train two attributes."""
    a = _folder(tmp_path / "Bangs", ("no", "yes"))
    b = _folder(tmp_path / "Smiling", ("no", "yes"))
    with pytest.raises(FaderError) as e:
        open_dataset([a, b])
    assert "(got 2 labeled folders)" in str(e.value) and "one label table (CSV: file,Attr1,Attr2" in str(e.value)


def test_a_label_table_in_utf16_is_read_and_one_in_a_code_page_says_how_to_save_it(tmp_path):
    """QA: a UTF-16 table (Excel's "Unicode text") or a Windows-1252 one (Excel's plain "CSV")
    got Python's codec error and no hint."""
    imgs = _images(tmp_path / "d", 6)
    text = "file,Lächeln\n" + "".join(f"{p.name},{i % 2}\n" for i, p in enumerate(imgs))
    (tmp_path / "d" / "labels.csv").write_text(text, encoding="utf-16")
    assert open_dataset(tmp_path / "d" / "labels.csv").attributes[0].name == "Lächeln"
    (tmp_path / "d" / "labels.csv").write_text(text, encoding="cp1252")
    with pytest.raises(FaderError) as e:
        open_dataset(tmp_path / "d" / "labels.csv")
    assert "is not UTF-8 text" in str(e.value) and "'CSV UTF-8'" in str(e.value) and "codec" not in str(e.value)
