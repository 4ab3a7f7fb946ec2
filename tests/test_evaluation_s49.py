"""python -m training.evaluation never replaces a file it did not make without --overwrite, nor one
it reads, and its --help says what the figures mean."""
import json

import pytest

from conftest import make_tiny_model, noise_images
from training import evaluation

TINY = (("Smiling", ("no", "yes"), (-1.0, 2.0)),)


@pytest.fixture
def setup(tmp_path):
    model = make_tiny_model(tmp_path / "m.fader", attrs=TINY)
    names = [f"IMG_{i:02d}.png" for i in range(6)]
    noise_images(tmp_path / "data", names)
    (tmp_path / "data" / "labels.csv").write_text("file,Smiling\n" + "".join(f"{n},{i % 2}\n" for i, n in enumerate(names)))
    return model, tmp_path / "data" / "labels.csv"


def _run(capsys, *args):
    rc = evaluation.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.usefixtures("one_torch_thread")
def test_an_existing_out_file_is_kept_unless_overwrite_is_given(tmp_path, capsys, setup):
    """--out replaced a file of the user's (notes.json) without a word, after the measurement."""
    model, table = setup
    mine = tmp_path / "notes.json"
    mine.write_text("my notes\n")
    common = ["--model", model, "--data", table, "--cache-dir", tmp_path / "c"]
    rc, out, err = _run(capsys, *common, "--out", mine)
    assert rc == 2 and out == ""
    assert f"--out {mine}: the file exists; choose a new file, or give --overwrite to replace it" in err, err
    assert mine.read_text() == "my notes\n"
    listed = tmp_path / "val.txt"
    listed.write_text("mine\n")
    rc, out, err = _run(capsys, *common, "--write-val-list", listed)
    assert rc == 2 and "--write-val-list" in err and "--overwrite" in err and listed.read_text() == "mine\n"
    rc, out, err = _run(capsys, *common, "--out", mine, "--write-val-list", listed, "--overwrite")
    assert rc == 0, err
    assert json.loads(mine.read_text())["measured"] == ["Smiling"]
    assert len(listed.read_text().splitlines()) == json.loads(out)["n_images"]


@pytest.mark.usefixtures("one_torch_thread")
def test_a_file_the_measurement_reads_is_never_written(tmp_path, capsys, setup):
    model, table = setup
    listed = tmp_path / "val.txt"
    listed.write_text("IMG_00.png\nIMG_01.png\n")
    common = ["--model", model, "--data", table, "--cache-dir", tmp_path / "c", "--overwrite"]
    rc, _, err = _run(capsys, *common, "--val-list", listed, "--write-val-list", listed)
    assert rc == 2 and "that the measurement reads" in err, err
    assert listed.read_text() == "IMG_00.png\nIMG_01.png\n"
    rc, _, err = _run(capsys, *common, "--out", table)
    assert rc == 2 and "that the measurement reads" in err, err
    assert table.read_text().startswith("file,Smiling\n")


def test_help_says_what_the_figures_mean(capsys):
    with pytest.raises(SystemExit):
        evaluation.main(["--help"])
    text = capsys.readouterr().out
    for figure in ("psnr", "swap_accuracy", "paste_swap_accuracy", "others_unchanged", "classifier_accuracy"):
        assert f"\n  {figure} " in text, figure
    assert "independent judge" in text
