"""core.atomic_write: the target is either the old file or the complete new one; no temp file stays."""
import os
import stat

import pytest

from core.atomic_write import TEMP_NAME_RE, atomic_file, atomic_path, temp_path, write_bytes_atomic


def test_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    write_bytes_atomic(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_error_inside_the_block_keeps_the_old_file(tmp_path):
    target = tmp_path / "photo.jpg"
    target.write_bytes(b"the original")
    with pytest.raises(RuntimeError, match="encoder failed"):
        with atomic_file(target) as f:
            f.write(b"half a file")
            raise RuntimeError("encoder failed")
    assert target.read_bytes() == b"the original"
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]


def test_atomic_path_for_writers_that_need_a_name(tmp_path):
    target = tmp_path / "anim.gif"
    with atomic_path(target, keep_suffix=True) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".gif" and TEMP_NAME_RE.match(tmp.name)
        tmp.write_bytes(b"GIF89a")
    assert target.read_bytes() == b"GIF89a"
    # a writer that fails before creating its file: the target never appears
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "never.mp4", keep_suffix=True):
            raise ValueError("no frames")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif"]


def test_missing_folder_is_an_oserror_and_the_temp_name_pattern(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "no" / "such" / "file.png", b"x")
    m = TEMP_NAME_RE.match(temp_path(tmp_path / "a.b.png").name)
    assert m and m.group("name") == "a.b.png"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_new_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "model.fader", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model.fader").stat().st_mode) == 0o644


# -- a real full disk (tmpfs) ----------------------------------------------------------------

def _smooth_image(w=900, h=700):
    """A photo-like image (gradients + texture) whose JPEG is several hundred KB at quality 95."""
    import numpy as np
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    img = np.stack([x / w * 255, y / h * 255, (x + y) % 256], -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_full_disk_is_an_error_and_leaves_no_file(small_disk):
    from conftest import fill_disk
    fill_disk(small_disk, 64 << 10)
    with pytest.raises(OSError) as info:
        write_bytes_atomic(small_disk / "big.bin", os.urandom(200 << 10))
    assert info.value.errno == 28  # ENOSPC
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_encoders_writing_to_the_descriptor_cannot_truncate_silently(small_disk, fmt):
    """Pillow's JPEG coder wrote to the file descriptor itself and ignored a short write: a full
    disk gave a truncated JPEG that was renamed into place. Through atomic_file every encoder
    writes through a checked write(); the error surfaces and nothing carries the name."""
    from PIL import Image
    from conftest import fill_disk
    (small_disk / "out.img").write_bytes(b"the old file")
    fill_disk(small_disk, 96 << 10)
    im = Image.fromarray(_smooth_image())
    opts = {"JPEG": dict(quality=95, subsampling=0, optimize=True), "TIFF": dict(compression="tiff_lzw")}.get(fmt, {})
    with pytest.raises(OSError):
        with atomic_file(small_disk / "out.img") as f:
            im.save(f, format=fmt, **opts)
    assert (small_disk / "out.img").read_bytes() == b"the old file"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin", "out.img"]


def test_checkpoint_on_a_full_disk_keeps_the_old_one(small_disk):
    import torch
    from core.errors import FaderError
    from training.trainer import atomic_torch_save
    from conftest import fill_disk
    atomic_torch_save({"step": 1}, small_disk / "ck.pt")
    fill_disk(small_disk, 32 << 10)
    with pytest.raises(FaderError, match="ck.pt: cannot write"):
        atomic_torch_save({"step": 2, "w": torch.zeros(100_000)}, small_disk / "ck.pt")
    assert torch.load(small_disk / "ck.pt")["step"] == 1
    assert sorted(p.name for p in small_disk.iterdir()) == ["ck.pt", "filler.bin"]


def test_writers_get_no_descriptor_and_a_short_write_is_caught(tmp_path):
    """The file object hides fileno() (so no encoder bypasses the checks), and a file that ends
    up shorter than what was written is an error, not a rename."""
    import io
    with pytest.raises(io.UnsupportedOperation):
        with atomic_file(tmp_path / "x.bin") as f:
            f.write(b"abc")
            f.fileno()
    with pytest.raises(OSError, match="only 3 of 6 bytes"):
        with atomic_file(tmp_path / "y.bin") as f:
            f.write(b"abcdef")
            f.flush()
            os.truncate(next(tmp_path.glob(".y.bin.*.part")), 3)  # what a lost write leaves
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- temporary files belong to their process ------------------------------------------------

def test_temp_names_carry_the_pid_and_only_dead_writers_temps_are_removed(tmp_path):
    import subprocess
    import sys
    from core.atomic_write import remove_stale_temps
    m = TEMP_NAME_RE.match(temp_path(tmp_path / "a.jpg").name)
    assert m and m.group("name") == "a.jpg" and int(m.group("pid")) == os.getpid()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".a.jpg.{other.pid}-0123456789ab.part"       # another run, still writing
        mine = temp_path(tmp_path / "b.jpg")                              # this process
        old = tmp_path / ".c.jpg.0123456789ab.part"                       # an older version's
        for p in (live, mine, old):
            p.write_bytes(b"partial")
        assert remove_stale_temps(tmp_path) == 1
        assert live.exists() and mine.exists() and not old.exists()
    finally:
        other.kill()
        other.wait()
    assert remove_stale_temps(tmp_path, names={"b.jpg"}) == 0          # only the named targets
    assert remove_stale_temps(tmp_path) == 1 and not live.exists() and mine.exists()


@pytest.mark.parametrize("name", ["a" * 240 + ".jpg", "写" * 78 + ".png", "b" * 251 + ".jpg"])
def test_a_long_valid_file_name_is_written(tmp_path, name):
    """The temporary name adds about 26 bytes to the target's: names of 230-255 bytes, which the
    file system takes, failed with "file name too long" after the whole edit."""
    from core.atomic_write import remove_stale_temps
    target = tmp_path / name
    with atomic_file(target) as f:
        f.write(b"photo")
    assert target.read_bytes() == b"photo" and os.listdir(tmp_path) == [name]
    with atomic_path(target, keep_suffix=True) as tmp:
        assert len(os.fsencode(tmp.name)) <= 255 and tmp.name.endswith(target.suffix)
        tmp.write_bytes(b"again")
    assert target.read_bytes() == b"again"
    # a killed writer's shortened temporary file is still found by its target's name
    dead = "9" * len(str(os.getpid()))   # no such process (nor, at 7 digits, any possible one)
    stale = temp_path(target).with_name(temp_path(target).name.replace(f".{os.getpid()}-", f".{dead}-"))
    stale.write_bytes(b"partial")
    assert remove_stale_temps(tmp_path, names={"other.jpg"}) == 0
    assert remove_stale_temps(tmp_path, names={name}) == 1 and os.listdir(tmp_path) == [name]


@pytest.mark.parametrize("appears", ["file", "dangling link", "folder"])
def test_a_write_that_must_not_replace_leaves_what_appeared_meanwhile(tmp_path, appears):
    """QA: the outputs' "already exists?" check came long before the rename, which then replaced
    whatever had appeared meanwhile (another program's file; a second batch's output)."""
    target = tmp_path / "out.jpg"
    with pytest.raises(FileExistsError) as info:
        with atomic_file(target, replace=False) as f:
            f.write(b"new")
            if appears == "file":
                target.write_bytes(b"precious")
            elif appears == "dangling link":
                target.symlink_to(tmp_path / "nowhere.jpg")
            else:
                target.mkdir()
    assert "appeared there while this one was being written" in str(info.value)
    if appears == "file":
        assert target.read_bytes() == b"precious"
    elif appears == "dangling link":
        assert target.is_symlink() and not target.exists()
    else:
        assert target.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]   # no temporary file left
    write_bytes_atomic(tmp_path / "fresh.jpg", b"new", replace=False)     # nothing there: written
    assert (tmp_path / "fresh.jpg").read_bytes() == b"new"
