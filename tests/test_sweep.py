"""Interpolation figures and animations: layout, content of the cells, GIF/MP4, errors."""
from __future__ import annotations

import numpy as np
import pytest

from core.sweep import BACKGROUND, compose, label_height


@pytest.fixture(scope="module")
def engine(tiny_model_path):
    from core.engine import Engine
    from core.model_file import load_model
    return Engine(load_model(tiny_model_path), device="cpu")


@pytest.fixture(scope="module")
def faces(engine, celeba_aligned):
    from core.sweep import open_faces
    paths = sorted(celeba_aligned.glob("*.jpg"))[:2]
    return open_faces(paths, engine, aligned=True)


def cli(capsys, *args, out=None):
    """(exit status, stderr); `out`: a list that takes the run's stdout."""
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    if out is not None:
        out.append(cap.out)
    return rc, cap.err


def close(a, b) -> bool:
    """Equal up to rounding: a batch of several faces may round a few values the other way."""
    d = np.abs(a.astype(int) - b.astype(int))
    return d.max() <= 1 and (d > 0).mean() < 0.01


def cells(img, rows, cols, cell, margin, top=0):
    """Cut a figure back into its cells; also check every margin pixel is background."""
    h, w = img.shape[:2]
    assert (w, h) == (cols * cell + (cols + 1) * margin, top + rows * cell + (rows + 1) * margin)
    mask = np.ones((h, w), bool)
    out = []
    for r in range(rows):
        y = top + margin + r * (cell + margin)
        row = []
        for c in range(cols):
            x = margin + c * (cell + margin)
            row.append(img[y:y + cell, x:x + cell])
            mask[y:y + cell, x:x + cell] = False
        out.append(row)
    mask[:top] = False  # the label strip
    assert np.all(img[mask] == BACKGROUND)
    return out


def test_strip_layout_and_content(engine, faces):
    from core.sweep import sweep_strip
    img = sweep_strip(faces, engine, "Smiling", steps=5, margin=3)
    grid = cells(img, rows=2, cols=2 + 5, cell=32, margin=3)
    for f, row in zip(faces, grid):
        assert np.array_equal(row[0], f.crop)                                      # original crop
        assert np.array_equal(row[1], np.rint(f.reconstruction).astype(np.uint8))  # reconstruction
        # the first value is the low end of the attribute's range (-1), decoded from this face
        want = engine.decode(f.latent, [{**f.own, "Smiling": -1.0}])[0]
        assert close(row[2], want)
        assert not np.array_equal(row[2], row[6])                                  # the sweep changes the face
    assert not np.array_equal(grid[0][0], grid[1][0])


def test_strip_custom_range_cell_size_and_labels(engine, faces):
    from core.sweep import sweep_strip
    img = sweep_strip(faces[:1], engine, "Male", lo=0.0, hi=1.0, steps=3, cell=48, margin=2, labels=True)
    top = label_height(48)
    grid = cells(img, rows=1, cols=5, cell=48, margin=2, top=top)
    assert grid[0][0].shape == (48, 48, 3)
    assert (img[:top] != BACKGROUND).any()  # something was written in the label strip


def test_multi_valued_attribute_needs_a_target(engine, faces):
    from core.errors import FaderError
    from core.sweep import sweep_strip
    with pytest.raises(FaderError, match="Hair=brown"):
        sweep_strip(faces, engine, "Hair", steps=3)
    img = sweep_strip(faces, engine, "hair=Blond", lo=0.0, hi=1.0, steps=3)
    grid = cells(img, rows=2, cols=5, cell=32, margin=2)
    f = faces[0]
    want = engine.decode(f.latent, [{**f.own, "Hair": [0.0, 1.0, 0.0]}])[0]
    assert close(grid[0][4], want)  # t = 1: the one-hot code of 'blond'


def test_grid_flip_and_ends(engine, faces):
    from core.sweep import sweep_grid
    img = sweep_grid(faces, engine, attrs=["Smiling", "Hair"], mode="flip")
    grid = cells(img, rows=2, cols=4, cell=32, margin=2)
    f = faces[1]
    flipped = 1.0 - round(f.own["Smiling"])
    assert close(grid[1][2], engine.decode(f.latent, [{**f.own, "Smiling": flipped}])[0])
    img = sweep_grid(faces, engine, mode="ends")  # every attribute, both ends
    cells(img, rows=2, cols=2 + 2 * len(engine.attributes), cell=32, margin=2)


def test_compose_sizes():
    tile = np.zeros((10, 10, 3), np.uint8)
    img = compose([[tile] * 3, [tile] * 3], cell=10, margin=4)
    assert img.shape == (2 * 10 + 3 * 4, 3 * 10 + 4 * 4, 3)


def test_cli_png_gif_and_errors(tmp_path, capsys, celeba_aligned, portrait_path, tiny_model_path):
    from PIL import Image
    paths = sorted(celeba_aligned.glob("*.jpg"))[:3]
    m = ["--model", tiny_model_path, "--device", "cpu"]
    out = tmp_path / "strip.png"
    said = []
    rc, err = cli(capsys, "sweep", *paths, "-o", out, "--attr", "Smiling", "--steps", "4", "--aligned", *m, out=said)
    assert rc == 0, err
    assert said == [f"fader-desktop: wrote {out} (Smiling in 4 steps, 3 faces)\n"]   # it ended silent
    with Image.open(out) as im:
        assert im.size == (6 * 32 + 7 * 2, 3 * 32 + 4 * 2)

    # a wild photo: detection + alignment, one row
    rc, err = cli(capsys, "sweep", portrait_path, "-o", tmp_path / "wild.png", "--attr", "Male", "--steps", "3",
                  "--cell-size", "40", *m)
    assert rc == 0, err
    with Image.open(tmp_path / "wild.png") as im:
        assert im.size == (5 * 40 + 6 * 2, 40 + 2 * 2)

    gif = tmp_path / "anim.gif"
    rc, err = cli(capsys, "sweep", *paths[:2], "-o", gif, "--attr", "Smiling", "--steps", "5", "--aligned", *m)
    assert rc == 0, err
    with Image.open(gif) as im:
        assert im.n_frames == 2 * 5 - 2                  # LO..HI and back, ends once
        assert im.info.get("loop") == 0                  # loops forever
        assert im.size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)
    assert not list(tmp_path.glob(".*part*"))            # no temp files left

    rc, err = cli(capsys, "sweep", paths[0], "-o", tmp_path / "g.png", "--grid", "--aligned", *m)
    assert rc == 0, err
    with Image.open(tmp_path / "g.png") as im:
        assert im.size == (5 * 32 + 6 * 2, 32 + 2 * 2)

    for args, msg in [
        (["--attr", "Beard"], "Beard"),
        (["--attr", "Hair"], "Hair=brown"),
        ([], "exactly one --attr"),
        (["--attr", "Smiling", "--steps", "1"], "--steps"),
        (["--grid", "--steps", "3"], "--range and --steps"),   # nothing is ignored silently
    ]:
        rc, err = cli(capsys, "sweep", paths[0], "-o", tmp_path / "e.png", "--aligned", *args, *m)
        assert rc == 2 and msg in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    rc, err = cli(capsys, "sweep", paths[0], "-o", tmp_path / "e.gif", "--grid", "--aligned", *m)
    assert rc == 2 and "still figure" in err
    rc, err = cli(capsys, "sweep", paths[0], "-o", tmp_path / "e.tga", "--attr", "Smiling", *m)
    assert rc == 2 and ".gif" in err
    assert not list(tmp_path.glob("e.*"))


def test_mp4(tmp_path, engine, faces, monkeypatch):
    import sys

    from core.errors import FaderError
    from core.sweep import save_animation, sweep_frames
    frames = sweep_frames(faces, engine, "Smiling", steps=4)
    assert len(frames) == 6 and all(f.shape == frames[0].shape for f in frames)
    try:
        import imageio_ffmpeg
    except ImportError:
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        out = tmp_path / "a.mp4"
        save_animation(out, frames, fps=6)
        reader = imageio_ffmpeg.read_frames(str(out))
        meta = next(reader)
        assert meta["size"] == (frames[0].shape[1] + frames[0].shape[1] % 2, frames[0].shape[0] + frames[0].shape[0] % 2)
        assert sum(1 for _ in reader) == 6
    # without the package: a clear error, nothing written
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(FaderError, match="imageio-ffmpeg"):
        save_animation(tmp_path / "b.mp4", frames)
    assert not list(tmp_path.glob("*b*"))
    # the packaged app cannot pip-install: its message says the build leaves MP4 out
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(FaderError, match=r"this packaged build leaves it out\); or write a \.gif"):
        save_animation(tmp_path / "b.mp4", frames)


def test_gif_on_a_full_disk_is_an_error(small_disk):
    """Pillow's GIF coder wrote to the descriptor (unchecked) from a temp path: now checked writes."""
    from conftest import fill_disk
    from core.errors import ImageError
    from core.sweep import save_animation
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (160, 320, 3), dtype=np.uint8) for _ in range(8)]
    fill_disk(small_disk, 64 << 10)
    with pytest.raises(ImageError, match="no space left on device"):
        save_animation(small_disk / "anim.gif", frames)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"]


def test_cli_refuses_an_existing_output_and_a_zero_cell_size(tmp_path, capsys, celeba_aligned, tiny_model_path):
    """`sweep -o notes.png` replaced the user's file; `--cell-size 0` was taken as the default."""
    path = sorted(celeba_aligned.glob("*.jpg"))[0]
    m = ["--attr", "Smiling", "--steps", "3", "--aligned", "--model", tiny_model_path, "--device", "cpu"]
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"mine")
    rc, err = cli(capsys, "sweep", path, "-o", notes, *m)
    assert rc == 2 and err.splitlines() == [f"fader-desktop: error: {notes}: output file already exists; "
                                            "--overwrite replaces it"]
    assert notes.read_bytes() == b"mine"
    rc, err = cli(capsys, "sweep", path, "-o", notes, "--overwrite", *m)
    assert rc == 0, err
    assert notes.read_bytes()[:4] == b"\x89PNG"
    rc, err = cli(capsys, "sweep", path, "-o", tmp_path / "z.png", "--cell-size", "0", *m)
    assert rc == 2 and err.splitlines() == ["fader-desktop: error: --cell-size must be between 8 and 1024 pixels, got 0"]
    assert not (tmp_path / "z.png").exists()


def test_mp4_on_a_full_disk_or_a_read_only_folder_is_a_one_line_error(capsys, small_disk, read_only_dir,
                                                                       celeba_aligned, tiny_model_path):
    """ffmpeg's failure at the end of a full disk went unchecked: an unplayable file under the final
    name, exit 0. A read-only folder gave a multi-line error with the ffmpeg command."""
    from conftest import fill_disk
    pytest.importorskip("imageio_ffmpeg")
    paths = sorted(celeba_aligned.glob("*.jpg"))[:2]
    m = ["--attr", "Smiling", "--steps", "8", "--cell-size", "256", "--aligned", "--model", tiny_model_path,
         "--device", "cpu"]
    fill_disk(small_disk, 16 << 10)
    rc, err = cli(capsys, "sweep", *paths, "-o", small_disk / "anim.mp4", *m)
    assert rc == 2 and err.splitlines() == [f"fader-desktop: error: {small_disk / 'anim.mp4'}: cannot write MP4: "
                                            "no space left on device"], err
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"]
    rc, err = cli(capsys, "sweep", *paths, "-o", read_only_dir / "anim.mp4", *m)
    assert rc == 2 and len(err.splitlines()) == 1 and ".part" not in err and "ffmpeg" not in err, err
    assert err.startswith(f"fader-desktop: error: {read_only_dir / 'anim.mp4'}: "), err


def test_cli_sweeps_an_attribute_whose_name_has_an_equals_sign(tmp_path, capsys, portrait_path):
    """`--attr A=B` was read as attribute 'A' towards the value 'B' (unknown attribute 'A')."""
    from PIL import Image
    from conftest import make_tiny_model
    model = make_tiny_model(tmp_path / "eq.fader", attrs=(("A=B", ("no", "yes"), (-1.0, 2.0)),
                                                          ("Hair=colour", ("black", "blond", "brown"), (0.0, 1.0))))
    m = ["--model", model, "--device", "cpu", "--steps", "3", "--cell-size", "40"]
    rc, err = cli(capsys, "sweep", portrait_path, "-o", tmp_path / "ab.png", "--attr", "A=B", *m)
    assert rc == 0, err
    rc, err = cli(capsys, "sweep", portrait_path, "-o", tmp_path / "hair.png", "--attr", "hair=colour=Blond", *m)
    assert rc == 0, err
    for name in ("ab.png", "hair.png"):
        with Image.open(tmp_path / name) as im:
            assert im.size == (5 * 40 + 6 * 2, 40 + 2 * 2)
    rc, err = cli(capsys, "sweep", portrait_path, "-o", tmp_path / "x.png", "--attr", "Hair=colour=grey", *m)
    assert rc == 2 and "'Hair=colour' has no value 'grey'" in err, err
    rc, err = cli(capsys, "sweep", portrait_path, "-o", tmp_path / "x.png", "--attr", "Hair", *m)
    assert rc == 2 and "unknown attribute 'Hair' (did you mean 'Hair=colour'?); the model has 'A=B' and 'Hair=colour'" in err, err


def test_a_gif_plays_at_the_rate_asked_or_says_which_rates_it_can(tmp_path):
    """QA: the delay was computed in milliseconds and Pillow cut it to hundredths: 35 fps was stored
    as 2 cs and played at 50, 15 fps at 16.7."""
    from PIL import Image

    from core.errors import FaderError
    from core.sweep import save_animation
    frames = [np.full((16, 16, 3), v, np.uint8) for v in (0, 120, 240)]
    for fps, cs in ((15, 7), (8, 12), (25, 4), (35, 3), (50, 2)):
        save_animation(tmp_path / f"{fps}.gif", frames, fps=fps)
        with Image.open(tmp_path / f"{fps}.gif") as im:
            assert im.info["duration"] == 10 * cs, (fps, im.info["duration"])
    with pytest.raises(FaderError, match="would play at 50; use --fps 33.33 or 50"):
        save_animation(tmp_path / "40.gif", frames, fps=40)
    assert not (tmp_path / "40.gif").exists()


def test_a_target_for_a_two_valued_attribute_is_refused_not_ignored(tiny_model_path):
    """QA: `--attr Smiling=no` and `--grid --attr Male=yes` gave the same figure as without the target."""
    from core.engine import Engine
    from core.errors import FaderError
    from core.model_file import load_model
    from core.sweep import find_attribute
    engine = Engine(load_model(tiny_model_path), device="cpu", threads=1)
    assert find_attribute(engine, "smiling")[1] is None
    with pytest.raises(FaderError, match="'Smiling' has two values: a sweep goes across its slider range"):
        find_attribute(engine, "Smiling=no")
    assert find_attribute(engine, "Hair=blond")[1] == 1


class _Stop(Exception):
    pass


def _stop_after(n: int, calls: list):
    def check():
        calls.append(1)
        if len(calls) > n:
            raise _Stop
    return check


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_an_animation_stops_part_way_when_cancelled_and_leaves_nothing(tmp_path, suffix):
    """Closing the window during a long sweep's encoding waited for the whole encode (2-5 s for
    64 steps): the encode now checks between its frames, stops at the first check that raises,
    and leaves neither the file nor a temporary one."""
    from core.sweep import save_animation
    if suffix == ".mp4":
        pytest.importorskip("imageio_ffmpeg")
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(30)]
    calls = []
    with pytest.raises(_Stop):
        save_animation(tmp_path / f"anim{suffix}", frames, check=_stop_after(5, calls))
    assert len(calls) == 6        # it stopped at the check that raised, not after every frame
    assert list(tmp_path.iterdir()) == []


def test_a_gif_that_is_not_cancelled_is_the_same_file_as_before(tmp_path):
    """Frames handed to Pillow one at a time (to check between them) encode to the very bytes of
    the whole list given at once."""
    from PIL import Image

    from core.sweep import gif_delay_cs, save_animation
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    frames = [np.clip(base.astype(int) + 9 * i, 0, 255).astype(np.uint8) for i in range(7)]
    calls = []
    save_animation(tmp_path / "new.gif", frames, fps=8, check=lambda: calls.append(1))
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(tmp_path / "old.gif", format="GIF", save_all=True, append_images=ims[1:],
                duration=10 * gif_delay_cs(8), loop=0, optimize=False, disposal=1)
    assert (tmp_path / "new.gif").read_bytes() == (tmp_path / "old.gif").read_bytes()
    assert len(calls) >= len(frames)


def test_sweep_says_what_its_figure_would_not(tmp_path, capsys, portrait_path, tiny_model_path):
    """QA walk: `sweep` said less than `edit`: a photo without a face got no --find-more-faces hint,
    a two-face photo's face 0 was used without a word, --fps on a still figure and a whole photo
    given with --aligned were taken silently."""
    import cv2
    from core.image_io import load_image
    m = ["--model", tiny_model_path, "--device", "cpu", "--steps", "3", "--cell-size", "40", "--attr", "Smiling"]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    rc, err = cli(capsys, "sweep", blank, "-o", tmp_path / "a.png", *m)
    assert rc == 2 and "--find-more-faces searches again" in err, err
    rgb = load_image(portrait_path)
    two = tmp_path / "two.png"
    cv2.imwrite(str(two), np.concatenate([rgb, rgb[:, ::-1]], axis=1)[..., ::-1])
    rc, err = cli(capsys, "sweep", two, "-o", tmp_path / "b.png", "--fps", "4", *m)
    assert rc == 0, err
    assert "has 2 faces; the figure shows face 0 (its main face); --face N shows another" in err, err
    assert "--fps applies to an animation" in err, err
    rc, err = cli(capsys, "sweep", portrait_path, "-o", tmp_path / "c.png", "--aligned", *m)
    assert rc == 0 and "is not the shape of the aligned crops --aligned takes" in err, err
