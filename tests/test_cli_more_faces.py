"""`edit --find-more-faces` and `batch --find-more-faces`: the window's View ▸ Find more faces on
the command line. A person lying beside one sitting up is missed by the ordinary search; with the
option both are edited (the tiny test model, the vendored portrait; run in-process, as
test_cli_edit's bad inputs are)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from core.image_io import load_image
from test_cli_edit import main_inproc
from test_faces_more import lying_beside_upright

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lying_png(tmp_path_factory, portrait_path):
    photo, x_lying = lying_beside_upright(portrait_path)
    path = tmp_path_factory.mktemp("more_faces") / "lying.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    return path, x_lying


def _changed(a, b, x0, x1) -> float:
    return float(np.abs(a[:, x0:x1].astype(int) - b[:, x0:x1]).mean())


def test_edit_finds_and_edits_the_lying_person_only_when_asked(lying_png, tiny_model_path, tmp_path, capsys):
    path, x = lying_png
    photo = load_image(path)
    plain, more = tmp_path / "plain.png", tmp_path / "more.png"
    rc, err = main_inproc(capsys, "edit", path, "-o", plain, "--model", tiny_model_path, "--set", "Smiling=2")
    assert rc == 0, err
    rc, err = main_inproc(capsys, "edit", path, "-o", more, "--model", tiny_model_path, "--set", "Smiling=2",
                          "--find-more-faces")
    assert rc == 0, err
    a, b = load_image(plain), load_image(more)
    assert _changed(a, photo, 0, x) > 0.5 and _changed(b, photo, 0, x) > 0.5   # the upright face: both
    assert _changed(a, photo, x, photo.shape[1]) == 0                          # the lying one: missed
    assert _changed(b, photo, x, photo.shape[1]) > 0.5                          # ... found when asked
    # the face both searches found is edited the same
    assert np.array_equal(a[:, :x], b[:, :x])


def test_batch_finds_more_faces_and_says_so_in_its_report(lying_png, tiny_model_path, tmp_path, capsys):
    path, x = lying_png
    src = tmp_path / "in"
    src.mkdir()
    (src / path.name).write_bytes(path.read_bytes())
    out, report = tmp_path / "out", tmp_path / "report.json"
    rc, err = main_inproc(capsys, "batch", src, "-o", out, "--model", tiny_model_path, "--set", "Smiling=2",
                          "--find-more-faces", "--report", report)
    assert rc == 0, err
    r = json.loads(report.read_text())
    assert r["options"]["find_more_faces"] is True
    assert [(i["faces"], i["changed"]) for i in r["items"]] == [(2, 2)]
    written, photo = load_image(out / path.name), load_image(path)
    assert _changed(written, photo, x, photo.shape[1]) > 0.5


@pytest.mark.parametrize("command", ["edit", "batch"])
def test_find_more_faces_with_aligned_is_refused_in_words(command, lying_png, tiny_model_path, tmp_path, capsys):
    path, _ = lying_png
    target = path if command == "edit" else path.parent
    rc, err = main_inproc(capsys, command, target, "-o", tmp_path / ("o.png" if command == "edit" else "o"),
                          "--model", tiny_model_path, "--set", "Smiling=2", "--aligned", "--find-more-faces")
    assert rc == 2 and "--aligned and --find-more-faces exclude each other" in err, err


def test_where_no_face_is_found_edit_and_batch_point_to_find_more_faces(tiny_model_path, tmp_path, capsys):
    rng = np.random.default_rng(2)
    src = tmp_path / "in"
    src.mkdir()
    blank = src / "wall.png"
    cv2.imwrite(str(blank), cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 3))
    rc, err = main_inproc(capsys, "edit", blank, "-o", tmp_path / "o.png", "--model", tiny_model_path,
                          "--set", "Smiling=2")
    assert rc == 2 and "no face found" in err and "--find-more-faces searches again" in err, err
    rc, err = main_inproc(capsys, "edit", blank, "-o", tmp_path / "o.png", "--model", tiny_model_path,
                          "--set", "Smiling=2", "--find-more-faces")
    assert rc == 2 and "no face found" in err and "--find-more-faces" not in err, err
    rc, err = main_inproc(capsys, "batch", src, "-o", tmp_path / "out", "--model", tiny_model_path,
                          "--set", "Smiling=2")
    assert "in 1 photo no face was found (wall.png); --find-more-faces searches each photo again" in err, err
    rc, err = main_inproc(capsys, "batch", src, "-o", tmp_path / "out2", "--model", tiny_model_path,
                          "--set", "Smiling=2", "--find-more-faces")
    assert "no face was found" not in err, err


def test_sweep_finds_the_lying_person_when_asked(lying_png, tiny_model_path, tmp_path, capsys):
    path, _x = lying_png
    rc, err = main_inproc(capsys, "sweep", path, "-o", tmp_path / "s.png", "--model", tiny_model_path,
                          "--attr", "Smiling", "--face", "1", "--steps", "3")
    assert rc == 2 and not (tmp_path / "s.png").exists(), err   # one face found: there is no face 1
    rc, err = main_inproc(capsys, "sweep", path, "-o", tmp_path / "s.png", "--model", tiny_model_path,
                          "--attr", "Smiling", "--face", "1", "--steps", "3", "--find-more-faces")
    assert rc == 0 and (tmp_path / "s.png").exists(), err
    rc, err = main_inproc(capsys, "sweep", path, "-o", tmp_path / "t.png", "--model", tiny_model_path,
                          "--attr", "Smiling", "--aligned", "--find-more-faces")
    assert rc == 2 and "exclude each other" in err, err


def test_edit_of_a_face_that_was_not_found_points_to_find_more_faces(lying_png, tiny_model_path, tmp_path, capsys):
    path, _x = lying_png
    rc, err = main_inproc(capsys, "edit", path, "-o", tmp_path / "o.png", "--model", tiny_model_path,
                          "--set", "Smiling=2", "--face", "1")
    assert rc == 2 and "face 1 does not exist" in err and "--find-more-faces searches again" in err, err
    rc, err = main_inproc(capsys, "edit", path, "-o", tmp_path / "o.png", "--model", tiny_model_path,
                          "--set", "Smiling=2", "--face", "1", "--find-more-faces")
    assert rc == 0, err
