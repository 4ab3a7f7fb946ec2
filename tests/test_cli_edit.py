"""`fader-desktop edit` and `info` end to end.

The successful runs and two failures go through a real `python -m fader_desktop` subprocess (the
entry point users run: exit status, a single stderr line, no traceback). The other bad inputs call
the same `cli.main()` in-process, which runs the identical code path minus a 5 s interpreter + torch
start per case on this small CPU; an unexpected exception there fails the test just as a traceback
would.
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import PHONE_HEIC

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "fader_desktop", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def main_inproc(capsys, *args) -> tuple:
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.err


def assert_one_line_error(err: str, name) -> None:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("fader-desktop: error: "), err
    assert str(name) in lines[0], err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def photo_png(tmp_path_factory, portrait_path) -> Path:
    """A real in-the-wild photo as PNG (lossless, so 'unchanged' can be checked exactly)."""
    from core.image_io import load_image, save_image
    p = tmp_path_factory.mktemp("edit") / "portrait.png"
    save_image(p, load_image(portrait_path))
    return p


def read(p) -> np.ndarray:
    from core.image_io import load_image
    return load_image(p)


# -- successful runs (subprocess) --------------------------------------------------------------

def test_no_set_leaves_pixels_unchanged(tmp_path, photo_png, tiny_model_path):
    out = tmp_path / "same.png"
    r = run_cli("edit", photo_png, "-o", out, "--model", tiny_model_path, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(read(out), read(photo_png))
    # the run ends with a line saying what it wrote (it ended silent, which read as nothing done)
    assert r.stdout == f"fader-desktop: wrote {out} (unchanged)\n"


def test_set_changes_only_the_face_region(tmp_path, photo_png, tiny_model_path):
    import cv2

    from core.engine import Engine
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    out = tmp_path / "edited.png"
    r = run_cli("edit", photo_png, "-o", out, "--set", "Smiling=2", "--model", tiny_model_path, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"fader-desktop: wrote {out} (edited the face: Smiling=2)\n"
    src, dst = read(photo_png), read(out)
    assert src.shape == dst.shape
    changed = np.any(src != dst, axis=2)
    assert changed.sum() > 50, "the edit changed (almost) nothing"
    # Every changed pixel lies inside the aligned crops' footprints in the photo.
    doc = PhotoEdit.open(photo_png, Engine(load_model(tiny_model_path), device="cpu"))
    s = doc.engine.image_size
    footprint = np.zeros(src.shape[:2], np.uint8)
    for f in doc.faces:
        inv = cv2.invertAffineTransform(np.asarray(f.aligned.matrix, np.float64))
        corners = np.array([[0, 0], [s, 0], [s, s], [0, s]], np.float64)
        pts = corners @ inv[:, :2].T + inv[:, 2]
        cv2.fillConvexPoly(footprint, np.rint(pts).astype(np.int32), 1)
    footprint = cv2.dilate(footprint, np.ones((5, 5), np.uint8))
    assert not np.any(changed & (footprint == 0)), "pixels outside the face crops changed"
    assert (footprint == 0).sum() > 0.3 * footprint.size  # plenty of 'far' pixels were checked


def test_raw_gives_model_resolution(tmp_path, photo_png, tiny_model_path):
    out = tmp_path / "raw.png"
    r = run_cli("edit", photo_png, "-o", out, "--raw", "--set", "Male=1", "--model", tiny_model_path, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"fader-desktop: wrote {out} (face 0's crop at the model's 32 px)\n"
    assert read(out).shape == (32, 32, 3)


def test_aligned_keeps_celeba_size_and_labels_work(tmp_path, capsys, celeba_aligned, tiny_model_path):
    src = sorted(celeba_aligned.glob("*.jpg"))[0]
    a, b = tmp_path / "label.png", tmp_path / "number.png"
    r = run_cli("edit", src, "-o", a, "--aligned", "--set", "Smiling=yes", "--set", "Hair=blond",
                "--model", tiny_model_path, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    # the same command with numbers, in-process (the entry point is the run above; a second
    # interpreter and torch start cost ~4 s here)
    rc, err = main_inproc(capsys, "edit", src, "-o", b, "--aligned", "--set", "smiling=1", "--set", "Hair=1",
                          "--model", tiny_model_path, "--device", "cpu")
    assert rc == 0, err
    assert read(a).shape == (218, 178, 3)
    assert np.array_equal(read(a), read(b))  # a label means the same as its number


def test_info_json(tiny_model_path):
    r = run_cli("info", "--model", tiny_model_path, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["image_size"] == 32
    assert info["attributes"][0] == {"name": "Smiling", "values": ["no", "yes"], "range": [-1.0, 2.0]}
    assert info["attributes"][2] == {"name": "Hair", "values": ["black", "blond", "brown"], "range": [0.0, 1.0]}


# -- bad inputs --------------------------------------------------------------------------------

def test_missing_file_subprocess(tmp_path, tiny_model_path):
    missing = tmp_path / "nope.jpg"
    r = run_cli("edit", missing, "-o", tmp_path / "o.png", "--model", tiny_model_path)
    assert r.returncode == 2
    assert_one_line_error(r.stderr, missing)
    assert not (tmp_path / "o.png").exists()


def test_pickled_checkpoint_as_model_subprocess(tmp_path, photo_png):
    import torch
    ckpt = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(3)}, ckpt)
    r = run_cli("edit", photo_png, "-o", tmp_path / "o.png", "--model", ckpt)
    assert r.returncode == 2
    assert_one_line_error(r.stderr, ckpt)


def _bomb_png(path: Path, w=100_000, h=100_000) -> None:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "bomb", "folder"])
def test_bad_image_files(tmp_path, capsys, kind, tiny_model_path, portrait_path):
    p = tmp_path / {"bomb": "bomb.png", "folder": "dir.jpg"}.get(kind, f"{kind}.jpg")
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes(portrait_path.read_bytes()[:3000])
    elif kind == "text":
        p.write_text("this is not a photo\n")
    elif kind == "bomb":
        _bomb_png(p)
    else:
        p.mkdir()
    out = tmp_path / "o.png"
    rc, err = main_inproc(capsys, "edit", p, "-o", out, "--model", tiny_model_path, "--device", "cpu")
    assert rc == 2
    assert_one_line_error(err, p)
    assert not out.exists()


def test_invalid_model_file(tmp_path, capsys, photo_png):
    bad = tmp_path / "bad.fader"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "o.png", "--model", bad)
    assert rc == 2
    assert_one_line_error(err, bad)


def test_unknown_attribute_and_bad_value(tmp_path, capsys, photo_png, tiny_model_path):
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "o.png", "--set", "Beard=1",
                          "--model", tiny_model_path, "--device", "cpu")
    assert rc == 2
    assert_one_line_error(err, "Beard")
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "o.png", "--set", "Smiling=lots",
                          "--model", tiny_model_path, "--device", "cpu")
    assert rc == 2
    assert_one_line_error(err, "lots")
    assert not (tmp_path / "o.png").exists()


def test_output_equal_to_input_is_refused(tmp_path, capsys, photo_png, tiny_model_path):
    import shutil
    p = tmp_path / "mine.png"
    shutil.copy(photo_png, p)
    before = p.read_bytes()
    # the same file spelled differently is still the input
    rc, err = main_inproc(capsys, "edit", p, "-o", tmp_path / "." / "mine.png", "--set", "Smiling=2",
                          "--model", tiny_model_path, "--device", "cpu")
    assert rc == 2
    assert_one_line_error(err, "mine.png")
    assert p.read_bytes() == before


def test_photo_without_face(tmp_path, capsys, tiny_model_path):
    from core.image_io import save_image
    p = tmp_path / "gray.png"
    save_image(p, np.full((240, 320, 3), 128, np.uint8))
    # an edit needs a face (without values the photo is copied: test_cli_walkthrough)
    rc, err = main_inproc(capsys, "edit", p, "-o", tmp_path / "o.png", "--set", "Smiling=1",
                          "--model", tiny_model_path, "--device", "cpu")
    assert rc == 2
    assert_one_line_error(err, p)
    assert "no face" in err and not (tmp_path / "o.png").exists()


# -- hostile and careless use (issue 18) --------------------------------------------------------

def _edit(capsys, src, dst, model, *extra):
    return main_inproc(capsys, "edit", src, "-o", dst, "--model", model, "--device", "cpu", *extra)


def test_unedited_jpeg_comes_out_byte_identical(tmp_path, capsys, portrait_path, tiny_model_path):
    """Without --set the README promises the output equals the input: it used to be re-encoded
    (hundreds of thousands of pixels off by up to 11)."""
    rc, err = _edit(capsys, portrait_path, tmp_path / "same.jpg", tiny_model_path)
    assert rc == 0, err
    assert (tmp_path / "same.jpg").read_bytes() == portrait_path.read_bytes()
    # a value equal to the face's own one changes nothing either; another format keeps the pixels
    rc, err = _edit(capsys, portrait_path, tmp_path / "same.png", tiny_model_path, "--face", "0")
    assert rc == 0, err
    assert np.array_equal(read(tmp_path / "same.png"), read(portrait_path))


@pytest.mark.parametrize("value", ["1e308", "1e39", "-11", "12"])
def test_absurd_values_are_refused(tmp_path, capsys, photo_png, tiny_model_path, value):
    """1e308 used to exit 0 with a black rectangle over the face. The tiny model's Smiling range
    is -1..2: values beyond -10..11 are refused, naming the attribute and the accepted range."""
    rc, err = _edit(capsys, photo_png, tmp_path / "o.png", tiny_model_path, "--set", f"Smiling={value}")
    assert rc == 2
    assert_one_line_error(err, "'Smiling' is outside -10 .. 11")
    assert not (tmp_path / "o.png").exists()
    rc, err = _edit(capsys, photo_png, tmp_path / "o.png", tiny_model_path, "--set", "Smiling=11")
    assert rc == 0, err  # the edge of the accepted range still exaggerates


def test_face_out_of_range_names_the_photo(tmp_path, capsys, photo_png, tiny_model_path):
    for extra in ([], ["--set", "Smiling=1"], ["--raw"]):
        rc, err = _edit(capsys, photo_png, tmp_path / "o.png", tiny_model_path, "--face", "99", *extra)
        assert rc == 2, extra
        assert_one_line_error(err, f"{photo_png}: face 99 does not exist")
    assert not (tmp_path / "o.png").exists()


def test_camera_jpeg_to_tiff(tmp_path, capsys, portrait_path, tiny_model_path):
    """EXIF with sub-IFDs into a TIFF was a RuntimeError traceback."""
    from PIL import Image
    src = tmp_path / "cam.jpg"
    im = Image.open(portrait_path)
    exif = Image.Exif()
    exif[0x010F] = "FaderTestCam"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:00"
    im.save(src, exif=exif.tobytes(), quality=95)
    rc, err = _edit(capsys, src, tmp_path / "out.tiff", tiny_model_path, "--set", "Smiling=1")
    assert rc == 0, err
    assert read(tmp_path / "out.tiff").shape == read(src).shape
    assert Image.open(tmp_path / "out.tiff").getexif().get(0x010F) == "FaderTestCam"


def test_a_wide_gamut_photo_keeps_its_colours(tmp_path, capsys, portrait_path, tiny_model_path):
    """A phone's Display P3 photo: as a colour-managed viewer shows them, the exported photo's
    colours away from the face are the original's (the file carries the P3 profile). Without it
    the same numbers read as sRGB: greens and reds lose several levels of saturation."""
    import io

    from PIL import Image, ImageCms

    from conftest import display_p3_icc
    p3 = display_p3_icc()
    src = tmp_path / "phone.jpg"
    with Image.open(portrait_path) as im:
        im.save(src, quality=95, icc_profile=p3)
    for out, extra in (("edited.jpg", ["--set", "Smiling=2"]), ("same.png", []), ("raw.png", ["--raw"])):
        rc, err = _edit(capsys, src, tmp_path / out, tiny_model_path, *extra)
        assert rc == 0, err
        with Image.open(tmp_path / out) as im:
            assert im.info.get("icc_profile") == p3, out

    def as_seen(path):  # what a colour-managed viewer shows, in sRGB
        with Image.open(path) as im:
            icc = im.info.get("icc_profile")
            im = im.convert("RGB")
            if icc:
                im = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                               ImageCms.createProfile("sRGB"))
            return np.asarray(im, dtype=np.float32)

    seen_src, seen_out = as_seen(src), as_seen(tmp_path / "edited.jpg")
    band = slice(-seen_src.shape[0] // 8, None)  # the bottom of the photo, far below the face
    assert np.abs(seen_out[band] - seen_src[band]).mean() < 1.5
    as_srgb = np.asarray(Image.open(tmp_path / "edited.jpg").convert("RGB"), dtype=np.float32)
    assert np.abs(as_srgb[band] - seen_src[band]).mean() > 1.5  # the profile made the difference


def test_a_phones_heic_photo_is_edited_into_a_jpeg(tmp_path, capsys, portrait_path, tiny_model_path):
    """The photo as an iPhone writes it: edited upright, with its EXIF and colour profile; a
    .heic output is refused in one line (HEIC is read, not written) and nothing is written."""
    from PIL import Image

    from conftest import display_p3_icc
    heic = PHONE_HEIC
    rc, err = _edit(capsys, heic, tmp_path / "edited.jpg", tiny_model_path, "--set", "Smiling=2")
    assert rc == 0, err
    out, src = read(tmp_path / "edited.jpg").astype(int), read(heic).astype(int)
    assert out.shape == src.shape == (512, 384, 3)
    assert np.abs(out - src).max(axis=2).mean() > 0.5  # the face was edited
    with Image.open(tmp_path / "edited.jpg") as im:
        assert im.getexif().get(0x010F) == "FaderTestPhone"
        assert im.info.get("icc_profile") == display_p3_icc()
    rc, err = _edit(capsys, heic, tmp_path / "edited.heic", tiny_model_path, "--set", "Smiling=2")
    assert rc == 2
    assert_one_line_error(err, "unsupported file type '.heic'")
    assert not (tmp_path / "edited.heic").exists()


def test_output_on_a_full_disk_or_under_a_file(tmp_path, capsys, small_disk, portrait_path, tiny_model_path):
    """A JPEG that did not fit used to be left truncated under its final name, exit 0."""
    from conftest import fill_disk
    from core.image_io import load_image, save_image
    big = tmp_path / "big.jpg"
    save_image(big, np.ascontiguousarray(np.tile(load_image(portrait_path), (3, 3, 1))))
    fill_disk(small_disk, 48 << 10)
    rc, err = _edit(capsys, big, small_disk / "out.jpg", tiny_model_path, "--set", "Smiling=1.5")
    assert rc == 2
    assert_one_line_error(err, f"{small_disk / 'out.jpg'}: cannot save image: no space left on device")
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"]
    (tmp_path / "afile").write_text("x")
    rc, err = _edit(capsys, portrait_path, tmp_path / "afile" / "o.jpg", tiny_model_path)
    assert rc == 2
    assert_one_line_error(err, f"{tmp_path / 'afile'} is not a folder")


def test_control_characters_stay_out_of_the_terminal(tmp_path, capsys, photo_png, tiny_model_path):
    """A newline in a file name split the error line; a model's name reached the terminal raw."""
    import shutil
    from conftest import make_tiny_model
    from core.model_file import load_model, save_model
    odd = tmp_path / "two\nlines.png"
    shutil.copy(photo_png, odd)
    rc, err = _edit(capsys, odd, odd, tiny_model_path, "--set", "Smiling=1")
    assert rc == 2
    assert_one_line_error(err, "two\\nlines.png: refusing to overwrite the input photo")
    model = load_model(make_tiny_model(tmp_path / "m.fader"))
    model.meta["name"] = "\x1b[2J\x1b[31mevil\nsecond line"
    model.meta["license"] = "\x07bell"
    save_model(model, tmp_path / "evil.fader")
    from fader_desktop.cli import main
    assert main(["info", "--model", str(tmp_path / "evil.fader")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert out.splitlines()[0].startswith("\\x1b[2J\\x1b[31mevil\\nsecond line  (")


def test_info_into_a_closed_pipe_stops_quietly(tiny_model_path):
    """`fader-desktop info | head -1`: the reader goes away; no traceback on the terminal."""
    p = subprocess.Popen([sys.executable, "-m", "fader_desktop", "info", "--model", str(tiny_model_path)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()   # before the program writes anything (it is still importing)
    err = p.stderr.read()
    assert p.wait(timeout=300) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_own_corrects_a_misread_face(tmp_path, capsys, photo_png, tiny_model_path):
    """--own NAME=VALUE corrects the face's own value: alone it changes nothing, and --set at the
    model's reading then edits the face the other way round; a value that is not 0 or 1 is refused."""
    from core.engine import Engine
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    read_ = PhotoEdit.open(photo_png, Engine(load_model(tiny_model_path), device="cpu")).faces[0].own["Smiling"]
    common = ["--model", tiny_model_path, "--device", "cpu", "--face", "0"]
    src = read(photo_png).astype(float)
    outs = {}
    for name, extra in (("plain", ["--set", f"Smiling={1 - read_:g}"]), ("own", ["--own", f"Smiling={1 - read_:g}"]),
                        ("both", ["--own", f"Smiling={1 - read_:g}", "--set", f"Smiling={read_:g}"])):
        rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / f"{name}.png", *extra, *common)
        assert rc == 0, err
        # the tiny random model is unsure of its reading: --set alone names it and how to correct it
        unsure = ("the edit starts from a reading the model was unsure of: face 0 Smiling read as" in err
                  and f"else --own Smiling={('no', 'yes')[1 - int(read_)]})" in err and len(err.splitlines()) == 1)
        assert unsure == (name == "plain"), err
        outs[name] = read(tmp_path / f"{name}.png").astype(float) - src
    assert not outs["own"].any()
    moved = (np.abs(outs["plain"]) > 2) | (np.abs(outs["both"]) > 2)
    assert moved.sum() > 200
    assert np.corrcoef(outs["plain"][moved], outs["both"][moved])[0, 1] < -0.8
    # --raw writes the model's output at the values given, which does not start from the reading:
    # no note (it named the reading as batch --raw did not)
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "raw.png", "--raw", "--set",
                          f"Smiling={1 - read_:g}", *common)
    assert rc == 0 and "unsure" not in err, err
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "bad.png", "--own", "Smiling=0.5", *common)
    assert rc == 2
    assert_one_line_error(err, "0 or 1")
    assert not (tmp_path / "bad.png").exists()


# -- exploratory-testing bugs (aligned fallback, overwrite, grey, alpha, notes, info, typos) ----

def _sky(w: int, h: int) -> np.ndarray:
    """A smooth gradient without a face."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.clip(np.stack([90 + 0.1 * xx, 140 + 0.1 * yy, 230 - 0.05 * yy], axis=2), 0, 255).astype(np.uint8)


def test_a_faceless_4_5_photo_gets_no_face_painted_on(tmp_path, capsys, tiny_model_path):
    """A 4:5 photo is within 3 % of CelebA's 178:218 framing: a sky was edited as an aligned crop
    (a ghost face, exit 0). Only images up to twice CelebA's size are taken as aligned crops."""
    from core.image_io import save_image
    sky = tmp_path / "sky.png"
    save_image(sky, _sky(480, 600))
    rc, err = _edit(capsys, sky, tmp_path / "o.png", tiny_model_path, "--set", "Male=1")
    assert rc == 2
    assert_one_line_error(err, f"{sky}: no face found")
    assert not (tmp_path / "o.png").exists()
    rc, err = _edit(capsys, sky, tmp_path / "forced.png", tiny_model_path, "--set", "Male=1", "--aligned")
    assert rc == 0, err   # --aligned still takes it as a crop
    crop = tmp_path / "crop.png"   # an aligned crop at twice CelebA's size still is one
    save_image(crop, _sky(356, 436))
    rc, err = _edit(capsys, crop, tmp_path / "c.png", tiny_model_path, "--set", "Male=1")
    assert rc == 0 and "edited as an aligned crop" in err, err


def test_an_existing_output_is_only_replaced_with_overwrite(tmp_path, capsys, photo_png, tiny_model_path):
    """`edit -o notes.jpg` silently replaced the user's file."""
    notes = tmp_path / "notes.jpg"
    notes.write_bytes(b"my own notes")
    rc, err = _edit(capsys, photo_png, notes, tiny_model_path, "--set", "Smiling=2")
    assert rc == 2
    assert_one_line_error(err, f"{notes}: output file already exists; --overwrite replaces it")
    assert notes.read_bytes() == b"my own notes"
    rc, err = _edit(capsys, photo_png, notes, tiny_model_path, "--set", "Smiling=2", "--overwrite")
    assert rc == 0, err
    assert read(notes).shape == read(photo_png).shape
    # a link whose target is gone is the user's entry too (it was replaced by the photo)
    dangling = tmp_path / "later.jpg"
    dangling.symlink_to(tmp_path / "not-yet.jpg")
    rc, err = _edit(capsys, photo_png, dangling, tiny_model_path, "--set", "Smiling=2")
    assert rc == 2
    assert_one_line_error(err, f"{dangling}: output file already exists; --overwrite replaces it")
    assert dangling.is_symlink() and not dangling.exists()
    # a bad --quality is refused before the model loads, not after the edit
    rc, err = _edit(capsys, photo_png, tmp_path / "q.jpg", tiny_model_path, "--quality", "0",
                    "--model", str(tmp_path / "no-such-model.fader"))
    assert rc == 2
    assert_one_line_error(err, "--quality must be between 1 and 100, got 0")
    before = photo_png.read_bytes()
    rc, err = _edit(capsys, photo_png, photo_png, tiny_model_path, "--overwrite")   # never the input
    assert rc == 2
    assert_one_line_error(err, "refusing to overwrite the input photo")
    assert photo_png.read_bytes() == before


def test_a_grey_photo_comes_out_grey(tmp_path, capsys, portrait_path, tiny_model_path):
    """It came out RGB with a tinted face (channels up to 32 apart)."""
    from PIL import Image
    grey = tmp_path / "grey.png"
    Image.open(portrait_path).convert("L").save(grey)
    for out in (tmp_path / "o.png", tmp_path / "o.jpg"):
        rc, err = _edit(capsys, grey, out, tiny_model_path, "--set", "Smiling=2", "--own", "Smiling=0")
        assert rc == 0 and not err, err
        with Image.open(out) as im:
            assert im.mode == "L"
    edited, src = np.asarray(Image.open(tmp_path / "o.png")), np.asarray(Image.open(grey))
    assert (edited != src).sum() > 50   # the edit is there, as luminance


def _rgba_portrait(portrait_path, path):
    from PIL import Image

    from core.image_io import load_image
    rgb = load_image(portrait_path)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :60], alpha[:, 60:90] = 0, 128
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    return rgb, alpha


def test_transparency_is_kept_where_the_format_has_it(tmp_path, capsys, portrait_path, tiny_model_path):
    """An RGBA PNG came out flat RGB over white."""
    from PIL import Image
    rgb, alpha = _rgba_portrait(portrait_path, tmp_path / "cut.png")
    rc, err = _edit(capsys, tmp_path / "cut.png", tmp_path / "o.png", tiny_model_path, "--set", "Smiling=2",
                    "--own", "Smiling=0")
    assert rc == 0 and not err, err
    with Image.open(tmp_path / "o.png") as im:
        assert im.mode == "RGBA"
        out = np.asarray(im)
    assert np.array_equal(out[..., 3], alpha)
    assert np.abs(out[:, 60:90, :3].astype(int) - rgb[:, 60:90]).max() <= 1   # not lightened by white
    assert (out[..., :3] != rgb).any(axis=2).sum() > 50                         # the edit is there
    rc, err = _edit(capsys, tmp_path / "cut.png", tmp_path / "o.jpg", tiny_model_path, "--set", "Smiling=2",
                    "--own", "Smiling=0")
    assert rc == 0
    assert err.splitlines() == [f"fader-desktop: note: {tmp_path / 'o.jpg'}: transparency dropped "
                                "(JPEG has none: transparent parts are white)"]


@pytest.mark.parametrize("kind", ["16-bit", "pages", "animation"])
def test_what_an_export_cannot_keep_is_noted(tmp_path, capsys, portrait_path, tiny_model_path, kind):
    import cv2
    from PIL import Image

    from core.image_io import load_image
    rgb = load_image(portrait_path)
    src = tmp_path / {"16-bit": "deep.png", "pages": "scan.tif", "animation": "anim.gif"}[kind]
    if kind == "16-bit":
        cv2.imwrite(str(src), rgb[..., ::-1].astype(np.uint16) * 257)
    else:
        ims = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
        ims[0].save(src, save_all=True, append_images=ims[1:])
    # a 16-bit photo keeps its bits in a PNG (test_export_16bit.py); a JPEG cannot
    out = tmp_path / ("o.jpg" if kind == "16-bit" else "o.png")
    rc, err = _edit(capsys, src, out, tiny_model_path, "--set", "Smiling=2", "--own", "Smiling=0")
    assert rc == 0
    want = {"16-bit": "more than 8 bits per channel, written with 8", "pages": "only its first page is written",
            "animation": "only its first frame is written"}[kind]
    assert len(err.splitlines()) == 1 and err.startswith("fader-desktop: note: ") and want in err, err


def test_info_json_stays_json_with_non_finite_metrics(tmp_path, capsys):
    """NaN and Infinity in a model's metrics were printed as such: not JSON."""
    from conftest import make_tiny_model
    from core.model_file import load_model, save_model
    from fader_desktop.cli import main
    model = load_model(make_tiny_model(tmp_path / "m.fader"))
    model.meta["metrics"] = {"psnr": float("nan"), "swap": [float("inf"), 0.5]}
    save_model(model, tmp_path / "nan.fader")
    assert main(["info", "--model", str(tmp_path / "nan.fader"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert info["metrics"] == {"psnr": None, "swap": [None, 0.5]}


def test_a_mistyped_command_is_not_opened_as_a_photo(tmp_path):
    """`fader-desktop infoo` started the window with a photo 'infoo'."""
    r = subprocess.run([sys.executable, "-m", "fader_desktop", "infoo"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["fader-desktop: error: unknown command 'infoo' (did you mean 'info'?)"]


@pytest.mark.parametrize("out, says", [("out.xyz", "unsupported file type '.xyz'"), ("noext", "unsupported file type"),
                                       ("missing/out.jpg", "does not exist"), ("out.jpg/", "give an output file name"),
                                       ("", "give an output file name")])
def test_a_bad_output_is_refused_before_the_model_loads(tmp_path, capsys, photo_png, out, says):
    """The output is checked first: a typo in -o was reported only after the model had loaded and
    the faces were found (7-10 s), and '-o x.jpg/' wrote a file x.jpg. The model here does not
    exist, so an error about the output proves it came first."""
    target = str(tmp_path / out) + ("/" if out.endswith("/") else "") if out else ""
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", target, "--set", "Smiling=1",
                          "--model", tmp_path / "no_such_model.fader")
    assert rc == 2 and says in err and "no_such_model" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_attribute_name_with_an_equals_sign_can_be_set(tmp_path, capsys, photo_png):
    """`--set A=B=1` was split at the first "=": 'unknown attribute A' for a model whose attribute
    is named "A=B" (model files allow any name)."""
    from conftest import make_tiny_model
    model = make_tiny_model(tmp_path / "eq.fader", attrs=(("Smiling", ("no", "yes"), (-1.0, 2.0)),
                                                          ("A=B", ("no", "yes"), (-1.0, 2.0))))
    plain, edited = tmp_path / "plain.png", tmp_path / "edited.png"
    assert main_inproc(capsys, "edit", photo_png, "-o", plain, "--model", model, "--device", "cpu")[0] == 0
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", edited, "--set", "A=B=2", "--own", "a=b=0",
                          "--model", model, "--device", "cpu")
    assert rc == 0, err
    assert not np.array_equal(read(edited), read(plain)), "setting 'A=B' changed nothing"
    # a label as the value, and the errors still name the attribute and list the model's
    assert main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "yes.png", "--set", "A=B=yes",
                       "--model", model, "--device", "cpu")[0] == 0
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "o.png", "--set", "A=B=lots",
                          "--model", model, "--device", "cpu")
    assert rc == 2 and "bad value 'lots' for 'A=B'" in err, err
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "o.png", "--set", "A=C=1",
                          "--model", model, "--device", "cpu")
    assert rc == 2, err
    assert_one_line_error(err, "unknown attribute 'A=C' (did you mean 'A=B'?); the model has 'Smiling' and 'A=B'")
    assert not (tmp_path / "o.png").exists()


def test_no_face_found_in_a_big_photo_says_it_was_searched_reduced_and_to_crop(tmp_path, capsys, portrait_path,
                                                                                tiny_model_path):
    """An 8000x6000 photo is searched at a quarter of its size (its second look): a 31 px face in
    it is missed, and the error was a bare "no face found", with nothing to try. It now says how
    the photo was searched and to crop; the photo cropped around the face is edited."""
    import cv2
    from core.image_io import load_image, save_image
    big = np.full((6000, 8000, 3), 120, np.uint8)
    side = 180   # the portrait's face box is about 0.18 of its side: ~31 px
    big[2000:2000 + side, 3000:3000 + side] = cv2.resize(load_image(portrait_path), (side, side),
                                                         interpolation=cv2.INTER_AREA)
    save_image(tmp_path / "big.png", big)
    rc, err = _edit(capsys, tmp_path / "big.png", tmp_path / "o.png", tiny_model_path, "--set", "Male=1")
    assert rc == 2
    assert_one_line_error(err, "no face found (the 8000x6000 photo was searched at 26% of its size")
    assert "crop the photo around the face" in err and not (tmp_path / "o.png").exists()
    save_image(tmp_path / "cropped.png", big[1500:3000, 2500:4500])   # what the message says to do
    rc, err = _edit(capsys, tmp_path / "cropped.png", tmp_path / "o.png", tiny_model_path, "--set", "Male=1")
    assert rc == 0, err
    assert (tmp_path / "o.png").exists()
    # a photo searched at its own size has nothing to crop: the message stays short
    save_image(tmp_path / "grey.png", big[:600, :800])
    rc, err = _edit(capsys, tmp_path / "grey.png", tmp_path / "g.png", tiny_model_path, "--set", "Male=1")
    assert rc == 2 and "no face found" in err and "crop" not in err


def test_edit_takes_a_recipe_as_batch_does(tmp_path, photo_png, tiny_model_path, capsys):
    """QA: a recipe saved in the window could only be applied to a folder (`batch --recipe`);
    `edit --recipe` said "unrecognized arguments". It gives the pixels --set gives, and --set
    overrides it."""
    from core.model_file import load_model
    from core.recipe import make_recipe
    recipe = tmp_path / "smile.json"
    recipe.write_text(json.dumps(make_recipe({"Smiling": 2.0, "Male": -1.0}, load_model(tiny_model_path).name)))
    common = ["--model", tiny_model_path, "--device", "cpu"]
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "r.png", "--recipe", recipe, *common)
    assert rc == 0, err
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "s.png", "--set", "Smiling=2", "--set", "Male=-1",
                          *common)
    assert rc == 0, err
    assert np.array_equal(read(tmp_path / "r.png"), read(tmp_path / "s.png"))
    assert not np.array_equal(read(tmp_path / "r.png"), read(photo_png))
    rc, err = main_inproc(capsys, "edit", photo_png, "-o", tmp_path / "o.png", "--recipe", recipe, "--set", "Male=-1",
                          "--set", "Smiling=-1", *common)
    assert rc == 0, err
    assert not np.array_equal(read(tmp_path / "o.png"), read(tmp_path / "r.png"))


def test_an_output_name_too_long_is_said_as_the_window_says_it(tmp_path, capsys, portrait_path, tiny_model_path):
    """`edit -o <300 characters>.png` printed the system's "file name too long"; the window's export
    says how long it is and what the folder allows: the same words here."""
    rc, err = _edit(capsys, portrait_path, tmp_path / ("a" * 300 + ".png"), tiny_model_path, "--set", "Smiling=2")
    assert rc != 0 and "the file name is too long (304 characters; this folder allows" in err, err
    assert len(err.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_info_reads_as_words_not_python_or_json(tmp_path, capsys):
    """QA walk: `info` printed "values ['no', 'yes']" and the metrics as one ~1,000-character JSON line."""
    from conftest import make_tiny_model
    from core.model_file import load_model, save_model
    from fader_desktop.cli import main
    model = load_model(make_tiny_model(tmp_path / "m.fader"))
    model.meta["metrics"] = {"step": 68084, "selection": "best", "validation": {
        "n_images": 300, "psnr": 27.855, "swap_mean": 0.866, "swap_accuracy": {"Smiling": 0.99, "Male": 0.59},
        "others_unchanged_mean": 0.9133, "lat_dis_accuracy": {"Smiling": 0.93, "Male": 0.97}}}
    save_model(model, tmp_path / "m2.fader")
    assert main(["info", "--model", str(tmp_path / "m2.fader")]) == 0
    out = capsys.readouterr().out
    assert "Smiling: values no, yes, slider range" in out and "['" not in out and "{" not in out, out
    assert ("training: step 68,084; validation on 300 images: PSNR 27.86 dB, swap accuracy 0.866 (lowest Male 0.59), "
            "others unchanged 0.913 (every figure: --json)") in out, out
    assert max(len(line) for line in out.splitlines()) < 200
    # another program's figures: its numbers, named
    model.meta["metrics"] = {"psnr": 30.1, "notes": {"a": 1}}
    save_model(model, tmp_path / "m3.fader")
    assert main(["info", "--model", str(tmp_path / "m3.fader")]) == 0
    assert "training: psnr 30.1 (every figure: --json)" in capsys.readouterr().out


def test_a_misspelt_or_shortened_attribute_gets_a_suggestion(tmp_path, capsys, portrait_path, tiny_model_path):
    """QA walk: `--set Smile=1` got no "did you mean" (a mistyped command and `fader-train --attr` did)."""
    for typed, meant in (("Smile", "Smiling"), ("Mal", "Male")):
        rc, err = _edit(capsys, portrait_path, tmp_path / "o.png", tiny_model_path, "--set", f"{typed}=1")
        assert rc == 2 and f"unknown attribute '{typed}' (did you mean '{meant}'?)" in err, err


def test_a_recipe_that_is_no_text_is_said_in_words(tmp_path, capsys, portrait_path, tiny_model_path):
    """QA walk: `--recipe photo.jpg` printed Python's "'utf-8' codec can't decode byte 0xff in
    position 0"; malformed JSON named the line only."""
    rc, err = _edit(capsys, portrait_path, tmp_path / "o.png", tiny_model_path, "--recipe", portrait_path)
    assert rc == 2 and "recipe is not a text file" in err and "codec" not in err, err
    bad = tmp_path / "bad.json"
    bad.write_text('{"values": {"Smiling": 1,}}')
    rc, err = _edit(capsys, portrait_path, tmp_path / "o.png", tiny_model_path, "--recipe", bad)
    assert rc == 2 and "recipe is not valid JSON (" in err and "line 1, column" in err, err


def test_a_whole_photo_given_with_aligned_gets_a_note(tmp_path, capsys, portrait_path, tiny_model_path, celeba_aligned):
    """QA walk: `edit photo.jpg --aligned` squashed the whole 512x512 photo into one face crop and
    said only "nothing changed" (or wrote a smudge), without a word about the shape."""
    rc, err = _edit(capsys, portrait_path, tmp_path / "o.png", tiny_model_path, "--aligned", "--set", "Smiling=2")
    assert rc == 0 and "512x512 is not the shape of the aligned crops --aligned takes (178x218" in err, err
    crop = sorted(celeba_aligned.glob("*.jpg"))[0]
    rc, err = _edit(capsys, crop, tmp_path / "c.png", tiny_model_path, "--aligned", "--set", "Smiling=2")
    assert rc == 0 and "not the shape" not in err, err   # a CelebA crop: nothing to say


def test_every_commands_help_has_examples_that_its_parser_takes(capsys):
    """QA walk: no command's --help had an example. Each example line is read by the command's own
    parser, so an option renamed later cannot leave a stale example behind."""
    import argparse
    import importlib
    import shlex

    from fader_desktop.cli import SUBCOMMANDS, main
    for command in ("edit", "batch", "sweep", "info"):
        with pytest.raises(SystemExit) as e:
            main([command, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        examples = [line.strip() for line in out.split("examples:", 1)[-1].splitlines()
                    if line.strip().startswith(f"fader-desktop {command}")]
        assert "examples:" in out and examples, out
        module = importlib.import_module(SUBCOMMANDS[command][0])
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        for line in examples:
            words = shlex.split(line.split("   (")[0])[2:]
            parser.parse_args(words)   # an unknown option or a missing argument exits here
