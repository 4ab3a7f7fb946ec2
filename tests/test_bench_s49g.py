"""QA walk of the measurement commands (s49g): the benchmarks under bench/, `python -m
training.judge` and `python -m training.classifier` run as documented, refuse bad input in one line
before the work (a wrong model or judge file, a model without the attributes needed, an output that
could not be written at the end), print the model card's names, and --help says what the figures
mean. Tests that read ../shared/data skip where it is absent."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA, make_tiny_model, noise_images

sys.path.insert(0, str(REPO / "bench"))

DEFAULT_MODEL = REPO / "resources" / "models" / "default.fader"
TWO = (("Smiling", ("no", "yes"), (0.0, 1.0)), ("Male", ("no", "yes"), (0.0, 1.0)))


def _few_celeba(tmp_path, celeba_aligned, n_train=64, n_val=8) -> Path:
    """An --exclude list that leaves n_train split-0 and n_val split-1 faces of img_align_celeba."""
    split = {}
    with open(SHARED_DATA / "list_eval_partition.txt") as f:
        for line in f:
            a = line.split()
            if len(a) == 2:
                split[a[0]] = a[1]
    names = sorted(p.name for p in celeba_aligned.glob("*.jpg"))
    keep = set([n for n in names if split.get(n) == "0"][:n_train] + [n for n in names if split.get(n) == "1"][:n_val])
    rest = tmp_path / "rest.txt"
    rest.write_text("\n".join(n for n in names if n not in keep) + "\n")
    return rest


@pytest.fixture
def random_judge(tmp_path) -> Path:
    """A real judge file (ResNet-18, untrained weights) that reads CelebA's five attributes at 32 px."""
    import torch
    from training.judge import build_net, save_judge
    torch.manual_seed(0)
    names = ["Smiling", "Male", "Young", "Eyeglasses", "Mouth_Slightly_Open"]
    path = tmp_path / "judge.safetensors"
    save_judge(path, build_net(len(names)).eval(), names, 32, {})
    return path


# ---------------------------------------------------------------------------------------------
# python -m training.judge

def test_judge_writes_into_a_folder_not_yet_there_and_names_attributes_in_words(
        tmp_path, celeba_aligned, one_torch_thread, capsys):
    """The documented --out runs/judge/judge.safetensors: runs/judge/ is not in a fresh clone, and
    the judge's save was a traceback after the whole training (about 30 minutes)."""
    from training.judge import load_judge, main
    out = tmp_path / "runs" / "judge" / "judge.safetensors"
    rc = main(["--data", str(celeba_aligned), "--exclude", str(_few_celeba(tmp_path, celeba_aligned)),
               "--img-size", "32", "--epochs", "0.5", "--batch-size", "16", "--out", str(out)])
    assert rc == 0 and load_judge(out).attributes[0] == "Smiling"
    err = capsys.readouterr().err
    assert "attributes Smiling, Male, Young, Eyeglasses, Mouth_Slightly_Open" in err and "['" not in err


def test_judge_never_replaces_an_existing_file(tmp_path, celeba_aligned, one_torch_thread, capsys):
    from training.judge import main
    out = tmp_path / "judge.safetensors"
    out.write_bytes(b"another judge, half an hour's work")
    rc = main(["--data", str(celeba_aligned), "--exclude", str(_few_celeba(tmp_path, celeba_aligned)),
               "--img-size", "32", "--epochs", "0.5", "--batch-size", "16", "--out", str(out)])
    assert rc == 2 and out.read_bytes() == b"another judge, half an hour's work"
    err = capsys.readouterr().err
    assert f"judge: error: --out {out} exists" in err
    assert "training-split images" not in err   # refused before the data was read and the judge trained


def test_judge_help_says_what_its_figures_mean(capsys):
    from training.judge import main
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "true_negative_rate" in out and "mean_accuracy" in out
    assert "img_align_celeba_from_wild \\" in out   # the command as it is typed


# ---------------------------------------------------------------------------------------------
# python -m training.classifier

def test_classifier_takes_a_folder_spelt_in_another_case_as_the_models_attribute(tmp_path, one_torch_thread, capsys):
    """A labeled folder `smiling/` for the model's `Smiling`, as fader-train and the evaluation take
    it: it was refused with a hint about an --attr option this command does not have."""
    from core.model_file import load_model
    from training.classifier import main
    noise_images(tmp_path / "smiling" / "no", [f"n{i}.png" for i in range(20)], seed=1)
    noise_images(tmp_path / "smiling" / "yes", [f"y{i}.png" for i in range(20)], seed=2)
    src = make_tiny_model(tmp_path / "in.fader", attrs=TWO[:1])
    out = tmp_path / "out.fader"
    rc = main(["--model", str(src), "--data", str(tmp_path / "smiling"), "--epochs", "1", "--batch-size", "8",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "--attr" not in err and "the data's attribute 'smiling' is the model's 'Smiling'" in err
    assert set(load_model(out).meta["classifier"]["val_accuracy"]) == {"Smiling"}


def test_classifier_names_the_attribute_the_data_lack_in_words(tmp_path, one_torch_thread, capsys):
    from training.classifier import main
    noise_images(tmp_path / "Smiling" / "no", [f"n{i}.png" for i in range(8)], seed=1)
    noise_images(tmp_path / "Smiling" / "yes", [f"y{i}.png" for i in range(8)], seed=2)
    src = make_tiny_model(tmp_path / "in.fader", attrs=TWO)
    rc = main(["--model", str(src), "--data", str(tmp_path / "Smiling"), "--out", str(tmp_path / "out.fader")])
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "out.fader").exists()
    assert "the data do not label Male" in err and "--attr" not in err and "['" not in err


# ---------------------------------------------------------------------------------------------
# bench/edit_judge.py and the scripts that read a judge

def _need_data():
    if not (SHARED_DATA / "list_attr_celeba.txt").is_file():
        pytest.skip(f"{SHARED_DATA} is absent (the shared CelebA data is not on this machine)")


def test_edit_judge_refuses_a_model_file_given_as_judge_in_one_line(capsys):
    _need_data()
    import edit_judge
    rc = edit_judge.main(["--model", str(DEFAULT_MODEL), "--judge", str(DEFAULT_MODEL), "--faces", "1",
                          "--photos", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == f"edit_judge: error: {DEFAULT_MODEL}: not a judge file (fader-judge, torchvision-resnet18)"


def test_edit_judge_refuses_a_json_it_could_not_write_before_the_work(tmp_path, random_judge, capsys):
    _need_data()
    import edit_judge
    rc = edit_judge.main(["--model", str(DEFAULT_MODEL), "--judge", str(random_judge), "--faces", "1",
                          "--photos", "0", "--no-range-ends", "--json", str(tmp_path / "no" / "r.json")])
    cap = capsys.readouterr()
    assert rc == 2 and f"there is no folder {tmp_path / 'no'}" in cap.err
    assert "validation faces" not in cap.err   # nothing measured


def test_edit_judge_refuses_a_model_without_the_judges_attributes(tmp_path, random_judge, capsys):
    _need_data()
    import edit_judge
    model = make_tiny_model(tmp_path / "bangs.fader", attrs=(("Bangs", ("no", "yes"), (0.0, 1.0)),))
    rc = edit_judge.main(["--model", str(model), "--judge", str(random_judge), "--faces", "1", "--photos", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "none of its attributes (Bangs) is one the judge reads" in err


def test_edit_judge_table_uses_the_model_cards_names_and_writes_its_json(tmp_path, random_judge, capsys):
    _need_data()
    import edit_judge
    out = tmp_path / "r.json"
    rc = edit_judge.main(["--model", str(DEFAULT_MODEL), "--judge", str(random_judge), "--faces", "1",
                          "--photos", "0", "--no-range-ends", "--json", str(out)])
    table = capsys.readouterr().out
    assert rc == 0
    header = table.splitlines()[1]
    assert "Mouth open" in header and header.rstrip().endswith("others unchanged")
    for row in ("exported photo, judge", "raw model output (128 px), judge",
                "exported, only edits whose slider moved, judge", "raw output, own classifier"):
        assert f"\n{row} " in table, row
    assert json.loads(out.read_text())["aligned"]["exported"]["n"] == 1


def test_edit_judge_table_shows_a_dash_for_an_attribute_with_no_edit(tmp_path, random_judge, capsys):
    """A small model's photos: where no face was found again the table crashed on None."""
    _need_data()
    import edit_judge
    model = make_tiny_model(tmp_path / "tiny.fader")   # Smiling, Male (and Hair, which the judge lacks)
    rc = edit_judge.main(["--model", str(model), "--judge", str(random_judge), "--faces", "1",
                          "--photos", "1", "--no-range-ends"])
    table = capsys.readouterr().out
    assert rc == 0 and "whole pipeline on 1 img_celeba/ photos, judge" in table
    rows = [line.split("  ") for line in table.splitlines()[2:] if line and not line.startswith("colour")]
    assert any(cell.strip() == "-" for row in rows for cell in row[1:])   # a figure of no edit, not a crash


def test_range_check_with_few_faces_leaves_an_unmeasured_end_out(tmp_path, random_judge, capsys):
    """With one face, no face lacks some value: the script crashed (stacking no crops)."""
    _need_data()
    import range_check
    out = tmp_path / "range.json"
    rc = range_check.main(["--model", str(make_tiny_model(tmp_path / "tiny.fader", attrs=TWO)),
                           "--judge", str(random_judge), "--faces", "1", "--json", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())["recommended"]
    assert sorted(rec) == ["Male", "Smiling"] and all(None in ends for ends in rec.values())
    assert "no face to edit" in capsys.readouterr().err


def test_others_changed_prints_its_figures_in_words(tmp_path, random_judge, capsys):
    _need_data()
    import others_changed
    rc = others_changed.main(["--model", str(make_tiny_model(tmp_path / "tiny.fader", attrs=TWO)),
                              "--judge", str(random_judge), "--faces", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "unedited export, share of readings changed: Smiling 0.000, Male 0.000" in out
    assert "{'" not in out


def test_slider_start_without_photos_writes_no_figure_not_nan(tmp_path, capsys):
    _need_data()
    import slider_start
    out = tmp_path / "s.json"
    rc = slider_start.main(["--model", str(make_tiny_model(tmp_path / "tiny.fader", attrs=TWO)), "--faces", "2",
                            "--photos", "0", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())   # NaN is no JSON a strict reader takes
    assert res["photos"] == {"n": 0, "starts_at_true_value": {"Smiling": None, "Male": None}, "mean": None}
    assert res["aligned"]["n"] == 2


def test_judge_entanglement_refuses_a_json_it_could_not_write_before_the_work(tmp_path, random_judge, capsys):
    _need_data()
    import judge_entanglement
    rc = judge_entanglement.main(["--judge", str(random_judge), "--photos", "1", "--faces", "1",
                                  "--json", str(tmp_path / "no" / "e.json")])
    cap = capsys.readouterr()
    assert rc == 2 and "judge_entanglement: error: --json" in cap.err and "real faces" not in cap.out


# ---------------------------------------------------------------------------------------------
# the figures

def test_photo_figure_refuses_a_model_without_its_attributes_before_editing(tmp_path, capsys):
    _need_data()
    import photo_figure
    model = make_tiny_model(tmp_path / "tiny.fader", attrs=TWO)
    rc = photo_figure.main(["--model", str(model), "-o", str(tmp_path / "f.jpg")])
    err = capsys.readouterr().err
    assert rc == 2 and "the model lacks Young, Eyeglasses, Mouth_Slightly_Open" in err
    assert "wrote" not in err    # no photo was edited first


def test_photo_figure_refuses_an_output_type_it_cannot_write_before_the_work(tmp_path, capsys):
    _need_data()
    import photo_figure
    rc = photo_figure.main(["--model", str(DEFAULT_MODEL), "-o", str(tmp_path / "figure.svg")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"photo_figure: error: -o {tmp_path / 'figure.svg'}: cannot write it (it must end in")
    assert "face 0" not in err


def test_readme_figure_names_the_users_model_file_not_its_copy(tmp_path, random_judge, capsys):
    _need_data()
    import readme_figure
    rc = readme_figure.main(["--model", str(random_judge), "-o", str(tmp_path / "f.png"), "--n", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == (f"readme_figure: error: {random_judge}: not a Fader model file "
                                       "(no fader_meta metadata)")


def test_photo_swap_eval_and_batch_speed_refuse_a_wrong_model_file_in_one_line(random_judge, capsys):
    _need_data()
    import batch_speed
    import photo_swap_eval
    assert photo_swap_eval.main(["--model", str(random_judge), "--limit", "1"]) == 2
    assert capsys.readouterr().err.strip() == (f"photo_swap_eval: error: {random_judge}: not a Fader model file "
                                               "(no fader_meta metadata)")
    assert batch_speed.main(["--model", str(random_judge), "--limit", "1"]) == 2
    assert capsys.readouterr().err.strip() == (f"batch_speed: error: {random_judge}: not a Fader model file "
                                               "(no fader_meta metadata)")


# ---------------------------------------------------------------------------------------------
# bench/latency.py

def test_latency_refuses_zero_repeats_and_its_help_explains_the_fields(capsys):
    import latency
    assert latency.main(["--repeats", "0", "--skip-photo"]) == 2
    assert capsys.readouterr().err.strip() == "latency: error: --repeats must be at least 1 and --warmup at least 0"
    with pytest.raises(SystemExit):
        latency.main(["--help"])
    out = capsys.readouterr().out
    assert "decode_ms_p50" in out and "naive_ms_p50 / decode_ms_p50" in out


def test_training_framing_refuses_counts_too_small_to_time_in_one_line():
    """The check is timed on 30 images at a time: --count 5 ran every set, then crashed (a maximum of
    no timings)."""
    import subprocess
    r = subprocess.run([sys.executable, str(REPO / "bench" / "training_framing.py"), "--count", "5", "--wild", "5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "training_framing: error: --count and --wild must be at least 30"
