"""The preprocessing cache reuses what it made (real preprocessing of tiny images): a changed
folder preprocesses only its new and changed images, a stopped preprocessing goes on from where it
stopped, skipped images stay skipped until their file changes, and old caches are removed when
superseded or unused for long, never while a process uses them. And a resumed run makes its
crops as it started (--align)."""
from __future__ import annotations

import gc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import cli
from training.cache import build_progress, open_cache
from training.datasets import load_training_crop

REPO = Path(__file__).resolve().parents[1]
PORTRAIT = REPO / "resources" / "samples" / "astronaut.jpg"
TINY = ["--img-size", "32", "--n-layers", "3", "--init-fm", "8", "--max-fm", "16", "--hid-dim", "16",
        "--classifier-steps", "2", "--threads", "1", "--workers", "1", "--batch-size", "4", "--val-size", "4",
        "--quiet"]
UNREADABLE = "cannot read image: not a recognised image format"


def _bmp(path: Path, seed: int, shape=(24, 24)) -> Path:
    """A random BMP: every BMP of one shape has the same byte size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (*shape, 3), dtype=np.uint8))
    return path


def _folder(root: Path, n: int = 6) -> Path:
    for k, v in enumerate(("no", "yes")):
        for i in range(n):
            _bmp(root / v / f"{i}.bmp", 100 * k + i)
    return root


def _same_signature(path: Path, write) -> None:
    """Change a file's bytes, keeping its size and modification time (what the cache compares)."""
    st = path.stat()
    write()
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _files(root: Path) -> list:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def test_unchanged_images_are_not_preprocessed_again(tmp_path):
    """QA: any change to the data redid all preprocessing (22 minutes for one photo added to a
    10,000-photo --align folder). Images whose file is unchanged (path, size, mtime) keep their
    crop or their skip; changed and new ones are preprocessed."""
    data, cache = _folder(tmp_path / "Smiling"), tmp_path / "cache"
    broken = data / "no" / "broken.bmp"
    broken.write_bytes(b"\0" * (data / "no" / "0.bmp").stat().st_size)   # unreadable, a BMP's size
    first = open_cache(_files(data), 16, cache_dir=cache, progress=False)
    same, changed = data / "yes" / "0.bmp", data / "yes" / "1.bmp"
    row = {p: i for i, p in enumerate(_files(data))}
    old_crop = first.images[row[str(same)]].copy()
    # bytes changed behind the signature: what a reused row keeps is the earlier crop (or skip)
    _same_signature(same, lambda: _bmp(same, 999))
    _same_signature(broken, lambda: _bmp(broken, 998))
    _bmp(changed, 997)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10 ** 9))
    _bmp(data / "yes" / "new.bmp", 996)
    paths = _files(data)
    second = open_cache(paths, 16, cache_dir=cache, progress=False)
    assert second.path != first.path and len(paths) == 14
    i = paths.index(str(same))
    assert np.array_equal(second.images[i], old_crop)   # reused, not read again
    assert not np.array_equal(second.images[i], load_training_crop(str(same), 16)[0])
    assert not second.valid[paths.index(str(broken))]   # still skipped: its file did not change
    assert second.skipped == {UNREADABLE: 1}
    for p in (changed, data / "yes" / "new.bmp"):   # preprocessed now
        assert np.array_equal(second.images[paths.index(str(p))], load_training_crop(str(p), 16)[0])
    assert int(second.valid.sum()) == 13


def test_a_superseded_cache_is_removed_once_no_process_uses_it(tmp_path):
    """Caches piled up for ever (0.5 GB per version of a 10k folder at 128 px): an older cache
    goes once a newer one holds all its images still on disk (the folder gained a photo) and
    nothing uses it; a cache that holds images the newer lacks stays, and so do folders the
    program did not make."""
    data, cache = _folder(tmp_path / "Smiling"), tmp_path / "cache"
    first = open_cache(_files(data), 16, cache_dir=cache, progress=False).path
    gc.collect()
    subset = open_cache(_files(data)[:3], 16, cache_dir=cache, progress=False)
    assert first.is_dir()   # it holds 9 images the subset's cache lacks
    (cache / "notes").mkdir()
    (cache / "0123456789abcdef01234567").mkdir()   # named like a cache, but no manifest of ours
    (cache / "readme.txt").write_text("mine")
    _bmp(data / "yes" / "new.bmp", 50)
    second = open_cache(_files(data), 16, cache_dir=cache, progress=False)
    assert not first.exists()
    assert subset.path.is_dir()   # superseded too, but still in use (its memory map is open)
    subset_path = subset.path
    del subset
    gc.collect()
    again = open_cache(_files(data), 16, cache_dir=cache, progress=False)
    assert again.reused and again.path == second.path
    assert not subset_path.exists()
    assert sorted(x.name for x in cache.iterdir()) == sorted(
        ["notes", "0123456789abcdef01234567", "readme.txt", second.path.name])


def test_caches_unused_for_a_month_are_removed_unless_in_use(tmp_path):
    data, cache = _folder(tmp_path / "Smiling"), tmp_path / "cache"
    paths = _files(data)
    idle = open_cache(paths, 24, cache_dir=cache, progress=False).path
    held = open_cache(paths, 20, cache_dir=cache, progress=False)   # still open below
    gc.collect()
    month = time.time() - 40 * 86400
    for folder in (idle, held.path):
        for f in folder.iterdir():
            os.utime(f, (month, month))
    open_cache(paths, 16, cache_dir=cache, progress=False)
    assert not idle.exists()
    assert held.path.is_dir()
    assert held.images[0].shape == (20, 20, 3)


def test_a_cache_of_an_earlier_version_is_not_judged_idle_by_its_age(tmp_path):
    """A cache made before caches had lock files (no record of when it was last used) was removed
    as a month idle when it had been built a month ago, used yesterday or not: its clock starts
    when this version first sees it."""
    from training.cache import LOCK
    data, cache = _folder(tmp_path / "Smiling"), tmp_path / "cache"
    paths = _files(data)
    old = open_cache(paths, 24, cache_dir=cache, progress=False).path
    gc.collect()
    (old / LOCK).unlink()
    month = time.time() - 40 * 86400
    for f in old.iterdir():
        os.utime(f, (month, month))
    open_cache(paths, 16, cache_dir=cache, progress=False)
    assert old.is_dir() and (old / LOCK).is_file()


def test_a_copied_folder_takes_the_crops_by_content(tmp_path):
    """A copy of the data (new paths and modification times, same bytes) is not preprocessed again."""
    data, cache = _folder(tmp_path / "Smiling"), tmp_path / "cache"
    first = open_cache(_files(data), 16, cache_dir=cache, progress=False)
    copy = tmp_path / "elsewhere" / "Smiling"
    shutil.copytree(data, copy, copy_function=shutil.copy)   # new mtimes
    lines = []
    moved = open_cache(_files(copy), 16, cache_dir=cache, progress=False, log=lines.append)
    assert lines == ["reused the preprocessing of 12 images found by their content (copied or moved files)"]
    assert moved.n_reused == 12 and np.array_equal(np.asarray(moved.images), np.asarray(first.images))
    assert first.path.is_dir()   # the original folder is still there: its cache is not superseded


def _train(args, capsys) -> tuple:
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_the_run_says_what_it_reused_and_remembers_why_images_were_skipped(tmp_path, capsys):
    data, cache = _folder(tmp_path / "Smiling"), tmp_path / "cache"
    broken = data / "no" / "broken.bmp"
    broken.write_bytes(b"\0" * (data / "no" / "0.bmp").stat().st_size)
    _bmp(data / "no" / "wide.bmp", 7, shape=(24, 40))   # not square: skipped as not a face crop
    common = ["--data", str(data), *TINY, "--steps", "1", "--cache-dir", str(cache)]
    code, err = _train([*common, "--out", str(tmp_path / "r1")], capsys)
    assert code == 0, err
    assert re.search(r"preprocessing cache \S+ \(built\)", err)
    _same_signature(broken, lambda: _bmp(broken, 5))   # readable now, but its signature says unchanged
    _bmp(data / "yes" / "new.bmp", 6)
    code, err = _train([*common, "--out", str(tmp_path / "r2")], capsys)
    assert code == 0, err
    assert "fader-train: preprocessing: reused the preprocessing of 14 of 15 images (unchanged files) from " \
           "earlier caches" in err
    assert re.search(r"preprocessing cache \S+ \(built; reused 14 of 15 images from earlier preprocessing\)", err)
    skipped = dict(x.split("\t") for x in (tmp_path / "r2" / "skipped.txt").read_text().splitlines())
    assert skipped[str(broken)] == UNREADABLE   # as recorded, not read again


def _progress(cache: Path) -> tuple:
    """(images done, images) of the preprocessing being written in `cache` (0, 0: none yet)."""
    return build_progress(cache) or (0, 0)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_stopped_preprocessing_goes_on_from_where_it_stopped(tmp_path, capsys):
    """QA: an interrupted preprocessing restarted from zero (its half-built cache was deleted)."""
    data, cache = tmp_path / "Smiling", tmp_path / "cache"
    rng = np.random.default_rng(1)
    for k in range(300):
        p = data / ("yes" if k % 2 else "no") / f"{k}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), rng.integers(0, 255, (320, 320, 3), dtype=np.uint8))
    common = ["--data", str(data), "--out", str(tmp_path / "run"), *TINY, "--steps", "1", "--cache-dir", str(cache)]
    p = subprocess.Popen([sys.executable, "-m", "training.cli", *common], cwd=REPO, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=dict(os.environ, OMP_NUM_THREADS="1"),
                         # SIGINT as Ctrl-C sends it, also where pytest runs as a background job (which ignores it)
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while p.poll() is None and time.time() < deadline:
            done, n = _progress(cache) if cache.is_dir() else (0, 0)
            if 30 <= done <= n - 30:
                break
            time.sleep(0.002)
        else:
            pytest.fail("the preprocessing was not seen half done")
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=60)[1].decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    m = re.search(r"fader-train: preprocessing stopped after (\d+) of 300 images; those are kept in the cache, "
                  r"and the next start goes on from there\n", err)
    assert m and 30 <= int(m.group(1)) < 300, err
    assert "fader-train: interrupted before training began; nothing was saved" in err
    assert [x.name for x in cache.iterdir()] == [next(cache.glob(".*.partial")).name]
    code, err = _train(common, capsys)
    assert code == 0, err
    assert f"fader-train: preprocessing: continuing the preprocessing that was stopped: {m.group(1)} of 300 " \
           "images were done" in err
    cache_dir = next(x for x in cache.iterdir() if not x.name.startswith("."))
    assert [x.name for x in cache.iterdir()] == [cache_dir.name]   # the build folder became the cache
    fresh = open_cache([x.strip() for x in (cache_dir / "files.txt").read_text().split("\n")], 32,
                       cache_dir=tmp_path / "fresh", progress=False)
    assert np.array_equal(np.load(cache_dir / "images.npy"), np.asarray(fresh.images))
    assert json.loads((cache_dir / "manifest.json").read_text())["n_valid"] == 300


def _faces(root: Path) -> Path:
    """Smiling/{no,yes} with four views each of a real portrait (whole photos: --align finds the face)."""
    img = cv2.imread(str(PORTRAIT))
    views = [img, img[:, ::-1], cv2.resize(img, (400, 400)), cv2.copyMakeBorder(img, 60, 0, 30, 0, cv2.BORDER_REFLECT)]
    for k, v in enumerate(("no", "yes")):
        for i, view in enumerate(views):
            p = root / v / f"{i}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), cv2.resize(view, None, fx=1 - 0.05 * k, fy=1 - 0.05 * k))
    return root


def test_a_resumed_run_aligns_faces_as_it_started(tmp_path, capsys):
    """QA: a run started with --align and resumed without it passed the data check (file names
    only) and went on with the photos cropped as they are: the run's own setting is taken, and said."""
    from training.datasets import align_available
    if not align_available():
        pytest.skip("core.faces / core.alignment not available")
    data, cache, out = _faces(tmp_path / "Smiling"), tmp_path / "cache", tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), *TINY, "--val-size", "2", "--cache-dir", str(cache)]
    code, err = _train([*common, "--steps", "1", "--align"], capsys)
    assert code == 0, err
    built = re.search(r"preprocessing cache (\S+) \(built\)", err).group(1)
    code, err = _train([*common, "--steps", "2", "--resume"], capsys)
    assert code == 0, err
    assert ("fader-train: the run was started with --align: its faces are detected and aligned again "
            "(--align kept)") in err
    assert f"preprocessing cache {built} (reused)" in err


def test_a_resumed_run_without_alignment_ignores_align(tmp_path, capsys):
    data, cache, out = _folder(tmp_path / "Smiling"), tmp_path / "cache", tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), *TINY, "--cache-dir", str(cache)]
    code, err = _train([*common, "--steps", "1"], capsys)
    assert code == 0, err
    built = re.search(r"preprocessing cache (\S+) \(built\)", err).group(1)
    code, err = _train([*common, "--steps", "2", "--resume", "--align"], capsys)
    assert code == 0, err
    assert "fader-train: --align ignored: the run was started without it and trains on its images' own framing" in err
    assert f"preprocessing cache {built} (reused)" in err


def test_a_skip_that_may_not_last_is_tried_again_not_carried_forward(tmp_path, monkeypatch):
    """A photo skipped for a passing reason (here: out of memory while it was preprocessed) was
    copied as skipped into every later cache, the earlier one then removed as superseded; it is
    preprocessed again now."""
    import training.cache as cache_module
    root = tmp_path / "data"
    root.mkdir()
    for i in range(4):
        cv2.imwrite(str(root / f"{i}.bmp"), np.random.default_rng(i).integers(0, 255, (24, 24, 3), dtype=np.uint8))
    paths = sorted(str(p) for p in root.glob("*.bmp"))
    real = cache_module.load_training_crop

    def out_of_memory_for_one(path, *a, **k):
        if path.endswith("1.bmp"):
            raise MemoryError()
        return real(path, *a, **k)
    monkeypatch.setattr(cache_module, "load_training_crop", out_of_memory_for_one)
    first = open_cache(paths, 16, False, tmp_path / "cache", workers=1, progress=False)
    assert first.valid.tolist() == [True, False, True, True]
    del first
    monkeypatch.setattr(cache_module, "load_training_crop", real)
    cv2.imwrite(str(root / "9.bmp"), np.random.default_rng(9).integers(0, 255, (24, 24, 3), dtype=np.uint8))
    second = open_cache(sorted(str(p) for p in root.glob("*.bmp")), 16, False, tmp_path / "cache", workers=1,
                        progress=False)
    assert second.valid.tolist() == [True] * 5
