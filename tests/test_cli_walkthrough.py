"""The photo commands (`edit`, `batch`, `sweep`) as a QA walkthrough used them: what they say about
photos with several faces, output paths that are folders, the order of their checks, the commands
they suggest, --format, and what the README promises of an unedited export."""
from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]


def cli(capsys, *args):
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.err


def read(p) -> np.ndarray:
    from core.image_io import load_image
    return load_image(p)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, portrait_path) -> dict:
    """The sample portrait as PNG (lossless), and it beside its mirror image: a photo of two faces."""
    from core.image_io import load_image, save_image
    folder = tmp_path_factory.mktemp("walkthrough")
    rgb = load_image(portrait_path)
    one, two = folder / "one.png", folder / "two_faces.png"
    save_image(one, rgb)
    save_image(two, np.concatenate([rgb, rgb[:, ::-1]], axis=1))
    return {"one": one, "two": two}


def model_args(model):
    return ["--model", model, "--device", "cpu"]


# -- 1. --raw writes one face: says so on a photo with several --------------------------------

def test_edit_raw_of_a_photo_with_two_faces_says_it_wrote_face_0(tmp_path, capsys, photos, tiny_model_path):
    """--raw writes one 32 px crop; on a photo of two faces it named neither how many there were nor
    which one it wrote, while --face said "default: every face"."""
    raw = tmp_path / "raw.png"
    rc, err = cli(capsys, "edit", photos["two"], "-o", raw, "--raw", "--set", "Male=1", *model_args(tiny_model_path))
    assert rc == 0, err
    assert read(raw).shape == (32, 32, 3)
    note = [line for line in err.splitlines() if "--raw wrote" in line]
    assert len(note) == 1, err
    assert "two_faces.png has 2 faces" in note[0] and "face 0 (the main face" in note[0] and "--face N" in note[0]
    # the edit's unsure readings are those of the face written, not of face 1 as well
    assert "face 1 " not in err, err
    # a face chosen, or a photo of one face: nothing to say
    for photo, extra in ((photos["two"], ["--face", "1"]), (photos["one"], [])):
        rc, err = cli(capsys, "edit", photo, "-o", tmp_path / "other.png", "--raw", "--set", "Male=1", *extra,
                      "--overwrite", *model_args(tiny_model_path))
        assert rc == 0 and "--raw wrote" not in err, err
    assert not np.array_equal(read(tmp_path / "other.png"), read(raw))   # face 0 of the single-face photo
    # the help says what --raw writes without --face
    with pytest.raises(SystemExit):
        cli(capsys, "edit", "--help")
    helptext = " ".join(capsys.readouterr().out.split())
    assert "default: every face (with --raw, which writes one face's crop: the main face" in helptext


def test_batch_raw_of_a_photo_with_two_faces_says_it_wrote_face_0(tmp_path, capsys, photos, tiny_model_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(photos["two"], src / "two_faces.png")
    shutil.copy(photos["one"], src / "one.png")
    report = tmp_path / "report.json"
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--raw", "--set", "Male=1", "--report", report,
                  *model_args(tiny_model_path))
    assert rc == 0, err
    assert ("note: 1 photo has several faces (two_faces.png has 2); --raw wrote its main face "
            "(the first, unless another is at least twice its size); --face N writes another") in err, err
    reasons = {it["relative"]: it["reason"] for it in json.loads(report.read_text())["items"]}
    assert reasons["two_faces.png"].startswith("model output of face 0 of 2")
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out1", "--raw", "--face", "0", "--set", "Male=1",
                  *model_args(tiny_model_path))
    assert rc == 0 and "--raw wrote" not in err, err   # the face was chosen
    with pytest.raises(SystemExit):
        cli(capsys, "batch", "--help")
    assert "(with --raw, which writes one face's crop: the main face" in " ".join(capsys.readouterr().out.split())


# -- 2. -o an existing folder ------------------------------------------------------------------

def test_edit_into_an_existing_folder_says_to_give_a_file_name(tmp_path, capsys, photos, tiny_model_path):
    """`-o od` with `od` a folder said "unsupported file type '(none)'"."""
    od = tmp_path / "od"
    od.mkdir()
    rc, err = cli(capsys, "edit", photos["one"], "-o", od, "--set", "Male=1", *model_args(tiny_model_path))
    assert rc == 2
    assert err.splitlines() == [f"fader-desktop: error: {od}: the output is an existing folder; give a file "
                                f"name (e.g. -o {od / 'one_edited.png'})"]
    assert list(od.iterdir()) == []
    # what it suggests works
    rc, err = cli(capsys, "edit", photos["one"], "-o", od / "one_edited.png", *model_args(tiny_model_path))
    assert rc == 0, err


# -- 3. sweep: options before the output file --------------------------------------------------

def test_sweep_rerun_with_a_typo_names_the_typo_not_the_earlier_output(tmp_path, capsys, photos, tiny_model_path):
    out = tmp_path / "strip.png"
    args = ["sweep", photos["one"], "-o", out, "--aligned", "--steps", "3", *model_args(tiny_model_path)]
    rc, err = cli(capsys, *args, "--attr", "Smiling")
    assert rc == 0 and out.is_file(), err
    first = out.read_bytes()
    for typo, says in ((["--attr", "Smilling"], "unknown attribute 'Smilling'"),
                       (["--attr", "Hair=blnd"], "no value 'blnd'"),
                       (["--attr", "Smiling", "--cell-size", "4"], "--cell-size must be between"),
                       (["--attr", "Smiling", "--range", "-1000", "1"], "-1000")):
        rc, err = cli(capsys, *args, *typo)
        assert rc == 2 and says in err and "already exists" not in err, err
    assert out.read_bytes() == first
    # without a typo, the earlier output is still refused
    rc, err = cli(capsys, *args, "--attr", "Smiling")
    assert rc == 2 and "output file already exists" in err


def test_edit_rerun_with_a_typo_names_the_typo_not_the_earlier_output(tmp_path, capsys, photos, tiny_model_path):
    out = tmp_path / "out.png"
    args = ["edit", photos["one"], "-o", out, *model_args(tiny_model_path)]
    rc, err = cli(capsys, *args, "--set", "Smiling=1")
    assert rc == 0 and out.is_file(), err
    first = out.read_bytes()
    for typo, says in ((["--set", "Smilling=1"], "Smilling"), (["--own", "Smiling=maybe"], "maybe")):
        rc, err = cli(capsys, *args, *typo)
        assert rc == 2 and says in err and "already exists" not in err, err
    rc, err = cli(capsys, *args, "--set", "Smiling=1")
    assert rc == 2 and "output file already exists" in err
    assert out.read_bytes() == first


# -- 4. batch: the plan's note only once the run can start -------------------------------------

def test_batch_into_a_path_under_a_file_gives_only_the_error(tmp_path, capsys, photos, tiny_model_path):
    """`batch in -o afile/sub` printed "no --set …: copied unchanged" before the error that stopped it."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(photos["one"], src / "one.png")
    (tmp_path / "afile").write_text("mine")
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "afile" / "sub", *model_args(tiny_model_path))
    assert rc == 2
    assert err.splitlines() == [f"fader-desktop: error: {tmp_path / 'afile' / 'sub'}: cannot create the output "
                                f"folder: {tmp_path / 'afile'} is a file, not a folder"]
    # a --report the run refuses: the same
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--report", tmp_path / "afile",
                  *model_args(tiny_model_path))
    assert rc == 2 and len(err.splitlines()) == 1 and "not a batch report" in err, err
    # a run that starts still says what it does, before its summary
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", *model_args(tiny_model_path))
    assert rc == 0, err
    lines = err.splitlines()
    assert lines[0] == "fader-desktop: note: no --set or recipe values: the photos are copied unchanged (byte for byte)"
    assert "1 written" in lines[1]
    assert (tmp_path / "out" / "one.png").read_bytes() == photos["one"].read_bytes()


# -- 5. the suggested --own pastes as one word --------------------------------------------------

def test_unsure_note_quotes_an_own_whose_name_and_label_hold_spaces(tmp_path, capsys, photos):
    """The note said `else --own Eye glässes=without glasses`: pasted, that is three arguments."""
    from conftest import make_tiny_model
    model = make_tiny_model(tmp_path / "spaces.fader",
                            attrs=(("Eye glässes", ("with glasses", "without glasses"), (-1.0, 2.0)),
                                   ("Smiling", ("no", "yes"), (-1.0, 2.0))))
    out = tmp_path / "o.png"
    rc, err = cli(capsys, "edit", photos["one"], "-o", out, "--set", "Eye glässes=2", *model_args(model))
    assert rc == 0, err
    # the tiny random model is unsure of its readings
    m = re.search(r"face 0 Eye glässes read as (.+?) \(\d+% sure; else (.*)\)$", err.strip())
    assert m, err
    suggested = shlex.split(m.group(2))
    other = ({"with glasses", "without glasses"} - {m.group(1)}).pop()
    assert suggested == ["--own", f"Eye glässes={other}"], err
    # pasted as it is, the correction is taken and the reading is no longer a guess
    rc, err = cli(capsys, "edit", photos["one"], "-o", out, "--set", "Eye glässes=2", *suggested, "--overwrite",
                  *model_args(model))
    assert rc == 0 and "unsure" not in err, err
    # a plain name stays unquoted
    rc, err = cli(capsys, "edit", photos["one"], "-o", out, "--set", "Smiling=2", "--overwrite", *model_args(model))
    assert rc == 0 and re.search(r"else --own Smiling=(no|yes)\)$", err.strip()), err


# -- 6. batch --format: any case, every format core's batch writes -----------------------------

def _formats():
    from core.batch import OUTPUT_FORMATS
    return list(OUTPUT_FORMATS)


@pytest.mark.parametrize("fmt", _formats())
def test_batch_format_takes_any_case(tmp_path, capsys, photos, tiny_model_path, fmt):
    """`--format JPG` was refused (invalid choice); `jpeg`, which core's batch writes, was not offered."""
    from core.batch import OUTPUT_FORMATS
    from core.image_io import SAVE_FORMATS, image_format
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(photos["one"], src / "one.png")
    out = tmp_path / "out"
    rc, err = cli(capsys, "batch", src, "-o", out, "--format", fmt.upper(), "--set", "Male=1",
                  *model_args(tiny_model_path))
    assert rc == 0, err
    written = out / f"one{OUTPUT_FORMATS[fmt]}"
    assert image_format(written) == SAVE_FORMATS[OUTPUT_FORMATS[fmt]]
    with pytest.raises(SystemExit):
        cli(capsys, "batch", "--help")
    assert f"--format {'|'.join(OUTPUT_FORMATS)}" in capsys.readouterr().out


def test_batch_format_refuses_a_format_it_cannot_write(tmp_path, capsys, photos, tiny_model_path):
    with pytest.raises(SystemExit) as e:
        cli(capsys, "batch", photos["one"].parent, "-o", tmp_path / "out", "--format", "GIF")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'gif'" in err and "'jpg'" in err and not (tmp_path / "out").exists()


# -- 7. what an unedited export keeps ------------------------------------------------------------

def _real_photos(portrait_path) -> list:
    from conftest import CELEBA_WILD
    wild = sorted(CELEBA_WILD.glob("*.jpg"))[:1] if CELEBA_WILD.is_dir() else []
    return [portrait_path] + wild


def test_readme_says_what_an_export_without_set_keeps(tmp_path, capsys, portrait_path, tiny_model_path):
    """README said that without --set the output has "the same pixels" in another format: JPEG and
    WebP outputs differ by several levels. What it says now is what `edit` does."""
    from core.image_io import load_image, save_image
    for k, photo in enumerate(_real_photos(portrait_path)):
        png = tmp_path / f"{k}.png"
        save_image(png, load_image(photo))   # a lossless input, so every format is a re-encode
        exact = {}
        for suffix in (".png", ".tif", ".bmp", ".jpg", ".webp"):
            out = tmp_path / f"{k}_out{suffix}"
            rc, err = cli(capsys, "edit", png, "-o", out, *model_args(tiny_model_path))
            assert rc == 0, err
            exact[suffix] = np.array_equal(read(out), read(png))
        assert exact == {".png": True, ".tif": True, ".bmp": True, ".jpg": False, ".webp": False}, (photo, exact)
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    said = text[text.index("Without `--set`"):]
    said = said[:said.index(". Photos may be")]
    assert "else the same pixels" not in said
    assert "exactly in PNG, TIFF or BMP" in said and "JPEG and WebP compression changes them" in said


def test_batch_note_does_not_promise_the_same_pixels_in_jpeg(tmp_path, capsys, photos, tiny_model_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(photos["one"], src / "one.png")
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--format", "jpg", *model_args(tiny_model_path))
    assert rc == 0, err
    note = err.splitlines()[0]
    assert "same pixels" not in note and "re-encoded, which JPG does with a small loss" in note, err
    assert not np.array_equal(read(tmp_path / "out" / "one.jpg"), read(photos["one"]))
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out_png", "--format", "PNG", *model_args(tiny_model_path))
    assert rc == 0 and "written unchanged as PNG (same pixels;" in err, err
    assert np.array_equal(read(tmp_path / "out_png" / "one.png"), read(photos["one"]))


# -- a photo without a face and nothing to edit: copied as any other --------------------------

def _noise_photo(path: Path) -> Path:
    from PIL import Image
    Image.fromarray((np.random.default_rng(3).random((240, 320, 3)) * 255).astype(np.uint8)).save(path, quality=90)
    return path


def test_edit_without_values_copies_a_photo_without_a_face(tmp_path, capsys, tiny_model_path):
    """With nothing to edit, `edit` copies a photo (the format conversion of an export); one without a
    face was refused with "no face found" instead."""
    src = _noise_photo(tmp_path / "landscape.jpg")
    same = tmp_path / "same.jpg"
    rc, err = cli(capsys, "edit", src, "-o", same, *model_args(tiny_model_path))
    assert rc == 0, err
    assert same.read_bytes() == src.read_bytes()
    assert "no face found in" in err and "copied unchanged" in err
    png = tmp_path / "converted.png"
    rc, err = cli(capsys, "edit", src, "-o", png, *model_args(tiny_model_path))
    assert rc == 0, err
    assert np.array_equal(read(png), read(src)) and "pixels unchanged, converted to PNG" in err
    # a lossy output is a second compression: it says so, not "pixels unchanged"
    rc, err = cli(capsys, "edit", src, "-o", tmp_path / "converted.webp", *model_args(tiny_model_path))
    assert rc == 0 and "no face found in" in err and "converted to WEBP (re-compressed)" in err, err
    # an edit asked for still needs a face, and nothing is written
    rc, err = cli(capsys, "edit", src, "-o", tmp_path / "edited.jpg", "--set", "Male=1", *model_args(tiny_model_path))
    assert rc != 0 and "no face found" in err and not (tmp_path / "edited.jpg").exists()


def test_batch_without_values_copies_photos_without_a_face_too(tmp_path, capsys, photos, tiny_model_path):
    """The note says "the photos are copied unchanged", yet a photo without a face was skipped: the
    output folder of a plain conversion lacked the landscapes."""
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(photos["one"], inp / "face.png")
    _noise_photo(inp / "landscape.jpg")
    rc, err = cli(capsys, "batch", inp, "-o", tmp_path / "copy", "--report", tmp_path / "copy.json",
                  *model_args(tiny_model_path))
    assert rc == 0, err
    assert (tmp_path / "copy" / "landscape.jpg").read_bytes() == (inp / "landscape.jpg").read_bytes()
    entry = {e["relative"]: e for e in json.loads((tmp_path / "copy.json").read_text())["items"]}
    assert entry["landscape.jpg"]["status"] == "ok" and "no face found" in entry["landscape.jpg"]["reason"]
    # with an edit to make it is skipped, as documented
    rc, err = cli(capsys, "batch", inp, "-o", tmp_path / "edit", "--set", "Male=1", *model_args(tiny_model_path))
    assert rc == 1 and "skipped: landscape.jpg: no face found" in err
    assert not (tmp_path / "edit" / "landscape.jpg").exists() and (tmp_path / "edit" / "face.png").exists()


def test_batch_without_values_says_which_photos_are_converted(tmp_path, capsys, photos, tiny_model_path):
    """`batch` without values said "copied unchanged (byte for byte)" of AVIF photos, which it
    writes as re-encoded JPEGs (the report: "pixels unchanged, converted")."""
    from PIL import Image
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(photos["one"], inp / "face.png")
    Image.open(_noise_photo(tmp_path / "landscape.jpg")).save(inp / "landscape.avif", quality=90)
    rc, err = cli(capsys, "batch", inp, "-o", tmp_path / "out", "--report", tmp_path / "r.json",
                  *model_args(tiny_model_path))
    assert rc == 0, err
    assert err.splitlines()[0] == ("fader-desktop: note: no --set or recipe values: the photos are copied "
                                   "unchanged (byte for byte); .avif photos converted to JPEG (re-compressed)")
    entry = {e["relative"]: e for e in json.loads((tmp_path / "r.json").read_text())["items"]}
    assert entry["landscape.avif"]["reason"] == "no face found; converted to JPEG (re-compressed)"
    assert entry["face.png"]["reason"].endswith("; copied unchanged")
    rc, err = cli(capsys, "batch", inp, "-o", tmp_path / "q", "--quality", "0", *model_args(tiny_model_path))
    assert rc == 2 and "--quality must be between 1 and 100, got 0" in err, err


# -- a QA round with photos of several faces ----------------------------------------------------

def _readings(photo, model):
    """(own value, certainty) per two-valued attribute of face 0, as `edit` reads them."""
    from core.engine import Engine
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    doc = PhotoEdit.open(photo, Engine(load_model(model), device="cpu"))
    s = doc.session
    return {a.name: (float(s.own[0][a.name]), s.reading_certainty(a.name, 0)) for a in s.attributes if a.is_binary}


def test_edit_that_changes_nothing_says_so(tmp_path, capsys, photos, tiny_model_path):
    """--set to the value a face already has wrote a byte-for-byte copy with no word, which looked
    like an edit that failed."""
    name, (own, _p) = next(iter(_readings(photos["one"], tiny_model_path).items()))
    out = tmp_path / "same.png"
    rc, err = cli(capsys, "edit", photos["one"], "-o", out, "--set", f"{name}={own:g}", *model_args(tiny_model_path))
    assert rc == 0, err
    assert f"nothing changed: every face already has {name}={own:g} as the model reads it" in err
    assert out.read_bytes() == photos["one"].read_bytes() and "as the model reads it; copied unchanged\n" in err
    # into another format: one phrase ("the photo was pixels unchanged, converted to BMP" read wrong)
    rc, err = cli(capsys, "edit", photos["one"], "-o", tmp_path / "same.bmp", "--set", f"{name}={own:g}",
                  *model_args(tiny_model_path))
    assert rc == 0 and f"as the model reads it; pixels unchanged, converted to BMP" in err, err
    # an edit that changes the face says nothing of the kind
    rc, err = cli(capsys, "edit", photos["one"], "-o", tmp_path / "edited.png", "--set", f"{name}={1 - own:g}",
                  *model_args(tiny_model_path))
    assert rc == 0 and "nothing changed" not in err


def test_batch_names_an_unsure_reading_of_a_face_it_left_unchanged(tmp_path, capsys, photos, tiny_model_path):
    """A face misread as already having the value asked for is not edited at all: `edit` named such
    unsure readings, `batch` only those of the faces it changed, so the face most likely left wrong
    went unmentioned."""
    readings = _readings(photos["one"], tiny_model_path)
    unsure = {n: v for n, v in readings.items() if v[1] is not None and v[1] < 0.8}
    if not unsure:
        pytest.skip("the tiny model is sure of every reading of this face")
    name, (own, p) = next(iter(unsure.items()))
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(photos["one"], inp / "one.png")
    report = tmp_path / "r.json"
    rc, err = cli(capsys, "batch", inp, "-o", tmp_path / "out", "--set", f"{name}={own:g}", "--report", report,
                  *model_args(tiny_model_path))
    assert rc == 0, err
    entry = json.loads(report.read_text())["items"][0]
    assert entry["reason"].startswith("0 of 1 face changed")
    from core.edit_session import sure_percent
    assert f"face 0: {name} read as" in " ".join(entry["unsure"]) and f"({sure_percent(p)} sure)" in " ".join(entry["unsure"])
    assert "unsure of a reading" in err


def test_a_reading_just_under_the_unsure_mark_is_not_shown_as_80_percent():
    """A probability of 0.796 is unsure (under 0.8) but was printed "80% sure"."""
    from core.edit_session import UNSURE_READING, sure_percent
    assert UNSURE_READING == 0.8
    assert sure_percent(0.796) == "79%" and sure_percent(0.8) == "80%" and sure_percent(0.5) == "50%"
    assert sure_percent(0.57) == "57%" and sure_percent(1.0) == "100%"
    assert sure_percent(np.float32(0.52)) == "52%"     # 0.51999998 as float32


def test_one_face_outputs_take_the_main_face_as_the_window_does(tmp_path, capsys, photos, tiny_model_path):
    """`sweep`, `edit --raw` and `batch --raw` took the first face (the leftmost, a small one in the
    background), while the window opens the same photo with the big face selected."""
    from PIL import Image

    from core.image_io import save_image
    big = read(photos["one"])
    h, w = big.shape[:2]
    small = np.asarray(Image.fromarray(big).resize((w // 2, h // 2), Image.BILINEAR))
    canvas = np.full((h, w // 2 + w, 3), 255, np.uint8)
    canvas[:h // 2, :w // 2] = small     # above and left of the big face: first in reading order
    canvas[:, w // 2:] = big
    photo = tmp_path / "small_left_big_right.png"
    save_image(photo, canvas)
    args = [*model_args(tiny_model_path), "--set", "Male=1"]
    rc, err = cli(capsys, "edit", photo, "-o", tmp_path / "main.png", "--raw", *args)
    assert rc == 0 and "--raw wrote face 1 (the main face" in err, err
    for k in (0, 1):
        rc, err = cli(capsys, "edit", photo, "-o", tmp_path / f"face{k}.png", "--raw", "--face", str(k), *args)
        assert rc == 0, err
    assert np.array_equal(read(tmp_path / "main.png"), read(tmp_path / "face1.png"))
    assert not np.array_equal(read(tmp_path / "face0.png"), read(tmp_path / "face1.png"))
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(photo, src / photo.name)
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--raw", *args)
    assert rc == 0 and np.array_equal(read(tmp_path / "out" / photo.name), read(tmp_path / "face1.png")), err
    # sweep: the strip shows the big face, as --face 1 does
    strips = {}
    for extra in ([], ["--face", "1"], ["--face", "0"]):
        out = tmp_path / f"sweep{len(extra)}{''.join(extra)}.png"
        rc, err = cli(capsys, "sweep", photo, "-o", out, "--attr", "Male", "--steps", "2",
                      *model_args(tiny_model_path), *extra)
        assert rc == 0, err
        strips[" ".join(extra)] = read(out)
    assert np.array_equal(strips[""], strips["--face 1"]) and not np.array_equal(strips[""], strips["--face 0"])


def test_sigterm_while_an_output_is_written_leaves_no_temporary_file(tmp_path):
    """QA: `kill` (SIGTERM, as `timeout` and service managers send) during `edit` or `sweep` left
    the hidden `.NAME.PID-….part` file behind; Ctrl-C did not. Now SIGTERM stops the command the
    same way: exit 143, "terminated", nothing left but the input."""
    import glob
    import signal
    import subprocess
    import sys
    import time

    from core.image_io import save_image
    save_image(tmp_path / "big.png", np.random.default_rng(0).integers(0, 256, (3000, 3000, 3), dtype=np.uint8))
    proc = subprocess.Popen([sys.executable, "-m", "fader_desktop", "edit", str(tmp_path / "big.png"),
                             "-o", str(tmp_path / "out.tif")], cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not glob.glob(str(tmp_path / ".out.tif*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the export ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143 and "fader-desktop: terminated" in err, (proc.returncode, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"]
