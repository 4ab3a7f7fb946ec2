"""`sweep`, `info` and `import-reference` used as a user would: what they refuse, what they never touch,
what an output looks like."""
from __future__ import annotations

import shutil
import sys
import types

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cli(capsys, *args):
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.err


def sweep(capsys, photos, out, model, *more):
    # --aligned: the photo is used as a crop, no face detection (a second per call on two cores)
    photos = photos if isinstance(photos, list) else [photos]
    return cli(capsys, "sweep", *photos, "-o", out, "--model", model, "--aligned", *more)


def test_sweep_never_overwrites_the_model_it_reads(tmp_path, capsys, portrait_path, tiny_model_path):
    # a model saved under an image name (or an -o typed in the wrong place) is an input like the photo:
    # --overwrite is for old outputs, not for the model
    model = tmp_path / "model.png"
    shutil.copy(tiny_model_path, model)
    rc, err = sweep(capsys, portrait_path, model, model, "--attr", "Smiling", "--overwrite")
    assert rc == 2
    assert "model.png" in err and "model file" in err and len(err.splitlines()) == 1
    assert model.read_bytes() == tiny_model_path.read_bytes()
    # `edit` has the same rule (cli.check_output)
    rc, err = cli(capsys, "edit", portrait_path, "-o", model, "--model", model, "--set", "Smiling=1", "--overwrite")
    assert rc == 2 and "model file" in err and len(err.splitlines()) == 1
    assert model.read_bytes() == tiny_model_path.read_bytes()


def test_a_figure_jpeg_cannot_store_is_refused_clearly_and_before_the_work(tmp_path, capsys, portrait_path,
                                                                           tiny_model_path):
    # 66 cells of 1024 px: wider than JPEG's 65,535 px; Pillow's own message was "broken data stream"
    out = tmp_path / "strip.jpg"
    rc, err = sweep(capsys, portrait_path, out, tiny_model_path, "--attr", "Smiling", "--steps", "64",
                    "--cell-size", "1024")
    assert rc == 2 and len(err.splitlines()) == 1
    assert "strip.jpg" in err and "65,535" in err and "--cell-size" in err
    assert list(tmp_path.iterdir()) == []


def test_sweep_takes_a_range_written_in_scientific_notation(tmp_path, capsys, portrait_path, tiny_model_path):
    # argparse took "-2.5e-1" for an option: "argument --range: expected 2 arguments"
    out = tmp_path / "strip.png"
    rc, err = sweep(capsys, portrait_path, out, tiny_model_path, "--attr", "Smiling", "--range", "-2.5e-1", "1",
                    "--steps", "3")
    assert rc == 0, err
    assert out.is_file()
    rc, err = sweep(capsys, portrait_path, tmp_path / "far.png", tiny_model_path, "--attr", "Smiling",
                    "--range", "-1e3", "1")
    assert rc == 2 and "-1000" in err and "expected 2 arguments" not in err


def test_a_figure_too_big_to_build_is_refused(tmp_path, capsys, portrait_path, tiny_model_path):
    # two rows of 48 cells of 1024 px: 109 million pixels, built whole in memory (60 rows took 21 GB
    # and the machine's OOM killer)
    out = tmp_path / "strip.png"
    rc, err = sweep(capsys, [portrait_path, portrait_path], out, tiny_model_path, "--attr", "Smiling",
                    "--steps", "46", "--cell-size", "1024")
    assert rc == 2 and len(err.splitlines()) == 1
    assert "strip.png" in err and "pixels" in err and "--steps" in err
    assert not out.exists()


def test_gif_faster_than_it_can_play_is_refused_and_50_fps_plays_at_50(tmp_path, capsys, portrait_path,
                                                                       tiny_model_path):
    from PIL import Image
    # 60 fps: 17 ms per frame, stored as 1/100 s, which viewers play at 1/10 s (six times slower)
    fast = tmp_path / "fast.gif"
    rc, err = sweep(capsys, portrait_path, fast, tiny_model_path, "--attr", "Smiling", "--steps", "3",
                    "--fps", "60")
    assert rc == 2 and "fast.gif" in err and "--fps 50" in err
    assert not fast.exists()
    ok = tmp_path / "ok.gif"
    rc, err = sweep(capsys, portrait_path, ok, tiny_model_path, "--attr", "Smiling", "--steps", "3",
                    "--fps", "50")
    assert rc == 0, err
    with Image.open(ok) as im:
        assert im.n_frames == 4 and im.info["duration"] == 20


def test_a_multi_valued_range_too_far_out_names_the_range(tmp_path, capsys, portrait_path, tiny_model_path):
    # the user gave --range; a message about a "weight 1001" names nothing they typed
    rc, err = sweep(capsys, portrait_path, tmp_path / "hair.png", tiny_model_path, "--attr", "Hair=blond",
                    "--range", "-1000", "1000")
    assert rc == 2 and "--range" in err and "-1000" in err and "weight" not in err


@pytest.mark.parametrize("case", ["folder", "attribute"])
def test_sweep_options_are_checked_before_the_photos_are_read(tmp_path, capsys, tiny_model_path, case):
    # a broken photo shows where the photos would be read: the mistake in the options is reported
    # first, as it is when the photos are fine but take minutes to process
    photo = tmp_path / "notes.png"
    photo.write_text("not an image")
    out = tmp_path / ("missing/out.png" if case == "folder" else "out.png")
    attr = "Smiling" if case == "folder" else "Smilling"
    rc, err = cli(capsys, "sweep", photo, "-o", out, "--model", tiny_model_path, "--attr", attr)
    assert rc == 2 and "notes.png" not in err
    assert ("folder" in err and "does not exist" in err) if case == "folder" else "Smilling" in err


def test_import_reference_does_not_create_a_mistyped_folder(tmp_path, capsys):
    from test_legacy_import import make_reference
    ckpt, _, _ = make_reference(tmp_path)
    out = tmp_path / "modles" / "eyeglasses.fader"
    rc, err = cli(capsys, "import-reference", ckpt, "-o", out)
    assert rc == 2 and "modles" in err and "does not exist" in err
    assert not out.parent.exists()


def test_import_reference_writes_an_upper_case_fader_name(tmp_path, capsys):
    """`-o EYEGLASSES.FADER` was refused as "must be a .fader file"; the app opens it as a model."""
    from core.model_file import load_model
    from test_legacy_import import make_reference
    ckpt, _, _ = make_reference(tmp_path)
    out = tmp_path / "EYEGLASSES.FADER"
    rc, err = cli(capsys, "import-reference", ckpt, "-o", out)
    assert rc == 0, err
    assert load_model(out).attributes
    rc, err = cli(capsys, "import-reference", ckpt, "-o", tmp_path / "eyeglasses.pth")
    assert rc == 2 and "must be a .fader file" in err


def _checkpoint_with_field(path, **fields):
    """A torch.save of an object pickled as `src.model.AutoEncoder` holding `fields` (no real module)."""
    import torch
    mod = types.ModuleType("src.model")
    cls = type("AutoEncoder", (), {"__module__": "src.model"})
    mod.AutoEncoder = cls
    saved = {k: sys.modules.get(k) for k in ("src", "src.model")}
    sys.modules["src"], sys.modules["src.model"] = types.ModuleType("src"), mod
    try:
        obj = cls()
        obj.__dict__.update(fields)
        torch.save(obj, path)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return path


def test_import_reference_of_a_shared_list_bomb_is_a_short_error(tmp_path, capsys):
    # a few kilobytes of pickle share one list so that the field holds 1.7 million items: walking it
    # took seconds and quoted it whole in the error (megabytes on one line); one more level hangs
    x = [0] * 6
    for _ in range(7):
        x = [x] * 6
    ckpt = _checkpoint_with_field(tmp_path / "bomb.pth", attr=x, n_attr=3)
    assert ckpt.stat().st_size < 10_000
    rc, err = cli(capsys, "import-reference", ckpt, "-o", tmp_path / "out.fader")
    assert rc == 2 and "bomb.pth" in err and "'attr'" in err
    assert len(err) < 500 and len(err.splitlines()) == 1
    assert not (tmp_path / "out.fader").exists()


def test_import_reference_quotes_a_long_field_briefly(tmp_path, capsys):
    # the field is quoted in the error: as long as the file makes it, before
    ckpt = _checkpoint_with_field(tmp_path / "long.pth", attr="Smiling " * 20_000, n_attr=2)
    rc, err = cli(capsys, "import-reference", ckpt, "-o", tmp_path / "out.fader")
    assert rc == 2 and "long.pth" in err and len(err) < 500 and len(err.splitlines()) == 1
