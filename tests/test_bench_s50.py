"""The benchmarks never replace a file already there (s50): every script under bench/ that writes a
file (--json, -o, --crops, --work) refuses an existing one in one line before the work and leaves
it byte for byte as it was, and replaces it with --overwrite (the documented commands that
regenerate a committed figure pass it). The scripts run as the user runs them, in a subprocess:
the exit status and the whole of stderr are what the user sees. Tests that read ../shared/data
skip where it is absent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import PORTRAIT, REPO, make_tiny_model
from tests.test_bench_s49g import DEFAULT_MODEL, TWO, _need_data, random_judge  # noqa: F401 (a fixture)
from tests.test_faces_more import lying_beside_upright

FIVE = tuple((n, ("no", "yes"), (0.0, 1.0)) for n in ("Smiling", "Male", "Young", "Eyeglasses", "Mouth_Slightly_Open"))
USERS = b"the user's own file: not the benchmark's to replace\n"


def bench(script: str, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, str(REPO / "bench" / f"{script}.py"), *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def users_file(path: Path) -> Path:
    path.write_bytes(USERS)
    return path


def assert_refused(r: subprocess.CompletedProcess, prog: str, option: str, path: Path) -> None:
    """Status 2 and one line naming the file and the way out, nothing measured (stdout empty)."""
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"{prog}: error: {option} {path}: the file exists; choose a new file, "
                                "or give --overwrite to replace it")
    assert r.stdout == ""


def kept_then_replaced(script: str, args: list, out: Path, option: str = "--json") -> None:
    """`script` with the user's file as its output: refused and the file kept byte for byte; then
    with --overwrite: it runs, replacing the file."""
    assert_refused(bench(script, *args), script, option, out)
    assert out.read_bytes() == USERS
    r = bench(script, *args, "--overwrite")
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------------------------
# --json FILE

def test_edit_judge_keeps_an_existing_json_and_replaces_it_with_overwrite(tmp_path, random_judge):
    _need_data()
    out = users_file(tmp_path / "edit_judge.json")
    args = ["--model", DEFAULT_MODEL, "--judge", random_judge, "--faces", "1", "--photos", "0", "--no-range-ends",
            "--json", out]
    kept_then_replaced("edit_judge", args, out)
    assert json.loads(out.read_text())["aligned"]["exported"]["n"] == 1


@pytest.mark.parametrize("script, key, written", [("others_changed", "faces", 1),
                                                 ("range_check", "recommended", ["Male", "Smiling"])])
def test_a_judges_json_is_kept_and_replaced_with_overwrite(tmp_path, random_judge, script, key, written):
    _need_data()
    out = users_file(tmp_path / f"{script}.json")
    args = ["--model", make_tiny_model(tmp_path / "tiny.fader", attrs=TWO), "--judge", random_judge, "--faces", "1",
            "--json", out]
    kept_then_replaced(script, args, out)
    got = json.loads(out.read_text())[key]
    assert (sorted(got) if isinstance(got, dict) else got) == written, got


def test_slider_start_keeps_an_existing_json_and_replaces_it_with_overwrite(tmp_path):
    _need_data()
    out = users_file(tmp_path / "slider_start.json")
    args = ["--model", make_tiny_model(tmp_path / "tiny.fader", attrs=TWO), "--faces", "2", "--photos", "0",
            "--json", out]
    kept_then_replaced("slider_start", args, out)
    assert json.loads(out.read_text())["aligned"]["n"] == 2


def test_judge_entanglement_keeps_an_existing_json_and_replaces_it_with_overwrite(tmp_path, random_judge):
    _need_data()
    out = users_file(tmp_path / "entanglement.json")
    args = ["--judge", random_judge, "--photos", "1", "--faces", "1", "--json", out]
    kept_then_replaced("judge_entanglement", args, out)
    assert json.loads(out.read_text())["bench"] == "judge_entanglement"


# ---------------------------------------------------------------------------------------------
# figures and the screenshot (-o)

def _an_image(path: Path) -> tuple:
    img = cv2.imread(str(path))
    assert img is not None, f"{path} is not an image"
    return img.shape


def test_photo_figure_keeps_an_existing_figure_and_replaces_it_with_overwrite(tmp_path):
    _need_data()
    out = users_file(tmp_path / "photo_figure.jpg")
    args = ["--model", make_tiny_model(tmp_path / "five.fader", attrs=FIVE), "-o", out, "--cell", "64"]
    kept_then_replaced("photo_figure", args, out, "-o")
    assert _an_image(out)[0] >= 64


def test_readme_figure_keeps_an_existing_figure_and_replaces_it_with_overwrite(tmp_path):
    _need_data()
    out = users_file(tmp_path / "figure.png")
    args = ["--model", make_tiny_model(tmp_path / "tiny.fader", attrs=TWO), "-o", out, "--n", "1", "--cell", "32"]
    kept_then_replaced("readme_figure", args, out, "-o")
    assert _an_image(out)[0] >= 32


def test_screenshot_keeps_an_existing_file_and_replaces_it_with_overwrite(tmp_path):
    out = users_file(tmp_path / "screenshot.png")
    args = ["--photo", PORTRAIT, "--model", make_tiny_model(tmp_path / "tiny.fader", attrs=TWO), "-o", out,
            "--size", "400x300"]
    kept_then_replaced("screenshot", args, out, "-o")
    assert _an_image(out)[1] >= 400
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part") or ".part." in p.name]


# ---------------------------------------------------------------------------------------------
# --crops DIR: a folder of files named after the photos

def _celeba_like(root: Path, rgb: np.ndarray) -> Path:
    """A --data folder whose img_celeba/ holds one photo, 000001.jpg."""
    folder = root / "celeba" / "img_celeba"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "000001.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return root


def test_faces_eval_keeps_crops_of_the_same_photos_and_replaces_them_with_overwrite(tmp_path):
    """Two people side by side: the second detection is written as a crop (PHOTO_N_RATIO_SCORE.png)."""
    face = cv2.resize(cv2.cvtColor(cv2.imread(str(PORTRAIT)), cv2.COLOR_BGR2RGB), (300, 300))
    data = _celeba_like(tmp_path / "data", np.concatenate([face, face], 1))
    crops = tmp_path / "crops"
    crops.mkdir()
    other = crops / "holiday.png"      # the user's file of another name: no concern of the run
    other.write_bytes(USERS)
    args = ["--data", data, "--limit", "1", "--no-timing", "--crops", crops]
    r = bench("faces_eval", *args)
    assert r.returncode == 0, r.stderr
    (crop,) = [p for p in crops.iterdir() if p.name.startswith("000001_")]
    first = crop.read_bytes()
    crop.write_bytes(USERS)            # now a file of that name is there before the run
    r = bench("faces_eval", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"faces_eval: error: --crops {crops}: it holds crops of these photos already "
                                f"(such as {crop.name}); choose another folder, or give --overwrite to replace them")
    assert crop.read_bytes() == USERS
    r = bench("faces_eval", *args, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert crop.read_bytes() == first and other.read_bytes() == USERS


def test_find_more_faces_keeps_crops_of_the_same_photos_and_replaces_them_with_overwrite(tmp_path):
    """A person lying beside one sitting up: the thorough search adds the lying face, PHOTO_0.png."""
    photo, _ = lying_beside_upright(PORTRAIT)
    data = _celeba_like(tmp_path / "data", photo)
    crops = tmp_path / "crops"
    crops.mkdir()
    crop = users_file(crops / "000001_0.png")
    args = ["--data", data, "--limit", "1", "--half", "all", "--megapixels", "1", "--crops", crops, "--json"]
    r = bench("find_more_faces", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"find_more_faces: error: --crops {crops}: it holds crops of these photos already "
                                "(such as 000001_0.png); choose another folder, or give --overwrite to replace them")
    assert crop.read_bytes() == USERS
    r = bench("find_more_faces", *args, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["as_they_are"]["added"] == 1
    assert _an_image(crop)[0] > 40     # the lying face's crop, written where the user's file was


# ---------------------------------------------------------------------------------------------
# --work DIR: a folder each round deletes

def test_training_cache_reuse_never_deletes_a_work_folder_it_did_not_make(tmp_path):
    work = tmp_path / "work"
    (work / "new").mkdir(parents=True)
    kept = users_file(work / "new" / "notes.txt")
    r = bench("training_cache_reuse", "--data", tmp_path / "data", "--extra", PORTRAIT, "--work", work)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"training_cache_reuse: error: --work {work}: {work / 'new'} exists; choose "
                                "another --work, or give --overwrite to delete it and make it again")
    assert kept.read_bytes() == USERS


def test_an_output_under_a_file_is_one_line_and_no_folder_is_made_for_a_refused_run(tmp_path):
    """screenshot and readme_figure made -o's folder first: under a file that was a FileExistsError
    traceback, and a bad figure type left a new empty folder behind."""
    afile = users_file(tmp_path / "afile")
    for script, out in (("screenshot", afile / "shot.png"), ("readme_figure", afile / "figure.png")):
        r = bench(script, "-o", out, *(["--photo", PORTRAIT] if script == "screenshot" else ["--model", DEFAULT_MODEL]))
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.strip().startswith(f"{script}: error: -o {out}: cannot write it"), r.stderr
    r = bench("readme_figure", "--model", DEFAULT_MODEL, "-o", tmp_path / "new" / "figure.xyz")
    assert r.returncode == 2 and "it must end in" in r.stderr, r.stderr
    assert not (tmp_path / "new").exists()
    assert afile.read_bytes() == USERS
