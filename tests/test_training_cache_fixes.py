"""fader-train's data framing and preprocessing cache, found wanting in a review: 4:5 whole portraits
trained as CelebA crops; aligned crops reused after the face detector or the alignment changed; a
finished run (CelebA, --epochs) preprocessing before saying there is nothing to train; a stopped
build kept locked for the whole of another build that takes crops from it. Tiny images and runs;
real CelebA photos from ../shared/data where needed (skipped where absent)."""
from __future__ import annotations

import gc
import shutil
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import cli
from training.cache import open_cache
from training.datasets import load_training_crop

REPO = Path(__file__).resolve().parents[1]
PORTRAIT = REPO / "resources" / "samples" / "astronaut.jpg"
TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-steps", "2", "--quiet", "--threads", "1", "--workers", "1", "--batch-size", "4"]
WHOLE = "these look like whole photos, not face crops"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _main(args, capsys) -> tuple:
    code = cli.main(args)
    return code, capsys.readouterr().err


def _bmp(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8))
    return path


# -- 1. 4:5 whole portraits are not CelebA crops ----------------------------------------------------

def _portrait_4x5(src: Path, dst: Path, sideways: bool = False) -> Path:
    """A whole photo centre-cropped 4:5 (as a phone's portrait post), 288x360: within 3 % of
    CelebA's 178x218 aspect, so it was cropped as a CelebA aligned image. `sideways`: stored
    360x288 with an EXIF orientation that turns it upright, as phones store photos."""
    from PIL import Image
    im = cv2.imread(str(src))
    h, w = im.shape[:2]
    cw, ch = (w, w * 5 // 4) if w * 5 // 4 <= h else (h * 4 // 5, h)
    crop = cv2.resize(im[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw], (288, 360),
                      interpolation=cv2.INTER_AREA)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not sideways:
        cv2.imwrite(str(dst), crop)
        return dst
    exif = Image.Exif()
    exif[0x0112] = 6   # turn 90 degrees clockwise to show
    Image.fromarray(np.ascontiguousarray(np.rot90(crop[:, :, ::-1]))).save(dst, exif=exif, quality=95)
    return dst


def test_4x5_whole_portraits_are_refused_with_the_fix(tmp_path, capsys, celeba_wild):
    """Six img_celeba photos cut 4:5 (one stored sideways, as phones do) trained silently as CelebA
    crops (no face check was made)."""
    data = tmp_path / "Smiling"
    for i, name in enumerate(("000277.jpg", "000678.jpg", "000875.jpg", "000985.jpg", "001004.jpg", "001313.jpg")):
        src = celeba_wild / name
        if not src.is_file():
            pytest.skip(f"{src} is absent")
        _portrait_4x5(src, data / ("yes" if i % 2 else "no") / name, sideways=i == 0)
    code, err = _main([*TINY, "--steps", "2", "--data", str(data), "--out", str(tmp_path / "run"),
                       "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2, err
    assert WHOLE in err and "of the 6 images of CelebA's 178x218 shape looked at" in err
    assert "(within 2.5 %: 4:5 portraits such as 1080x1350 too) are cropped as CelebA's aligned images are; for " \
           "whole photos add --align (in the training window: 'Detect and align faces')" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()   # before any preprocessing


def test_celeba_aligned_images_and_enlarged_ones_pass_the_check(tmp_path, celeba_aligned):
    """CelebA's own aligned 178x218 images, and enlarged to 356x436, in a labeled folder: not a word
    (the check fader-train makes before preprocessing, here on its own: a run is 20 s more)."""
    from types import SimpleNamespace
    paths = []
    for i, f in enumerate(sorted(celeba_aligned.glob("*.jpg"))[:12]):
        im = cv2.imread(str(f))
        if i % 2:
            im = cv2.resize(im, (356, 436), interpolation=cv2.INTER_CUBIC)
        paths.append(str(tmp_path / f.name))
        cv2.imwrite(paths[-1], im)
    said = []
    cli._check_framed_photos(SimpleNamespace(align=False, data=[str(tmp_path)]), paths, said.append)
    assert said == []


# -- 2. the detector and the alignment are part of the cache key -----------------------------------

def _photos(root: Path) -> list:
    """Two small views of a real portrait (whole photos: --align finds the face)."""
    img = cv2.imread(str(PORTRAIT))
    root.mkdir(parents=True)
    for i, view in enumerate((cv2.resize(img, (256, 256)), cv2.resize(img[:, ::-1], (240, 300)))):
        cv2.imwrite(str(root / f"{i}.jpg"), view)
    return sorted(str(p) for p in root.glob("*.jpg"))


def test_a_changed_face_detector_does_not_reuse_old_aligned_crops(tmp_path, monkeypatch):
    """The cache was keyed by files, size and mode only: after the detector's weights changed the
    old aligned crops were opened as they were (and reused, file by file, by later caches)."""
    import safetensors.numpy as st
    from core import faces
    paths, cache = _photos(tmp_path / "photos"), tmp_path / "cache"
    first = open_cache(paths, 16, True, cache, workers=1, progress=False)
    old = np.array(first.images)
    del first
    gc.collect()
    assert open_cache(paths, 16, True, cache, workers=1, progress=False).reused   # unchanged: opened as it is
    weights = st.load_file(str(faces.DEFAULT_WEIGHTS))
    weights["onet.dense6_3.weight"] = weights["onet.dense6_3.weight"] * np.float32(1.1)   # the landmark layer
    changed = tmp_path / "detectors" / "mtcnn.safetensors"
    changed.parent.mkdir()
    st.save_file(weights, str(changed))
    monkeypatch.setattr(faces, "DEFAULT_WEIGHTS", changed)   # a new version's detector
    monkeypatch.setattr(faces, "_shared", None)               # as loaded by a new process
    lines = []
    second = open_cache(paths, 16, True, cache, workers=1, progress=False, log=lines.append)
    assert not second.reused and second.n_reused == 0 and lines == []
    assert np.array_equal(np.asarray(second.images), np.stack([load_training_crop(p, 16, True)[0] for p in paths]))
    assert not np.array_equal(np.asarray(second.images), old)


def test_a_changed_alignment_template_does_not_reuse_old_crops(tmp_path, monkeypatch):
    from core import alignment
    paths, cache = _photos(tmp_path / "photos"), tmp_path / "cache"
    first = open_cache(paths, 16, True, cache, workers=1, progress=False)
    old = np.array(first.images)
    t = alignment.CELEBA_TEMPLATE
    monkeypatch.setattr(alignment, "CELEBA_TEMPLATE", alignment.Template(t.frame, t.crop_box, t.landmarks + (0, 8)))
    second = open_cache(paths, 16, True, cache, workers=1, progress=False)
    assert not second.reused and second.n_reused == 0
    assert np.array_equal(np.asarray(second.images), np.stack([load_training_crop(p, 16, True)[0] for p in paths]))
    assert not np.array_equal(np.asarray(second.images), old)


# -- 3. a finished run says so before preprocessing ------------------------------------------------

def _celeba(root: Path) -> Path:
    """A CelebA layout of 8 noise images (178x218): split 0 1-5, 1 6-7, 2 8."""
    rows, part = [], []
    for i in range(1, 9):
        rows.append(f"{i:06d}.jpg {1 if i % 2 else -1} {1 if i % 3 else -1}")
        part.append(f"{i:06d}.jpg {0 if i <= 5 else 1 if i <= 7 else 2}")
        (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "img_align_celeba" / f"{i:06d}.jpg"),
                    np.random.default_rng(i).integers(0, 255, (218, 178, 3), dtype=np.uint8))
    (root / "list_attr_celeba.txt").write_text("8\nSmiling Male\n" + "\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part) + "\n")
    return root / "list_attr_celeba.txt"


def test_a_finished_celeba_run_has_nothing_to_train_without_preprocessing(tmp_path, capsys):
    data = _celeba(tmp_path / "celeba")
    common = [*TINY, "--data", str(data), "--attr", "Smiling", "--out", str(tmp_path / "run")]
    code, err = _main([*common, "--steps", "2", "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0, err
    code, err = _main([*common, "--resume", "--cache-dir", str(tmp_path / "new_cache")], capsys)
    assert code == 0 and "the run is already at step 2 (>= --steps 2); nothing to train" in err, err
    assert not (tmp_path / "new_cache").exists()   # not preprocessed again to find that out


def test_a_finished_run_resumed_with_epochs_has_nothing_to_train_without_preprocessing(tmp_path, capsys):
    data = tmp_path / "Smiling"
    for k, v in enumerate(("no", "yes")):
        for i in range(6):
            _bmp(data / v / f"{i}.bmp", 10 * k + i)
    common = [*TINY, "--val-size", "4", "--data", str(data), "--out", str(tmp_path / "run")]
    code, err = _main([*common, "--epochs", "1", "--cache-dir", str(tmp_path / "cache")], capsys)   # 8 images: 2 steps
    assert code == 0, err
    code, err = _main([*common, "--resume", "--epochs", "1", "--cache-dir", str(tmp_path / "new_cache")], capsys)
    assert code == 0 and "the run is already at step 2 (>= --steps 2); nothing to train" in err, err
    assert not (tmp_path / "new_cache").exists()


# -- 4. a stopped build another build takes crops from is not held for that whole build -------------

class _Stop(KeyboardInterrupt):
    """Ctrl-C, pressed once the preprocessing took the crops of unchanged files."""


def _stop_after_reuse(line: str) -> None:
    if line.startswith("reused the preprocessing of"):
        raise _Stop()


def test_a_stopped_build_is_not_held_for_the_whole_of_a_build_that_takes_its_crops(tmp_path):
    """A run (A) whose data shares images with a stopped build took its crops and kept it locked
    until A's build ended: a second run (B) continuing that build waited ("waiting for another
    process … that is preprocessing the same images"). The crops A takes from it after B went on
    with it (files found by their content) are preprocessed by A instead."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    old = [str(_bmp(data / f"{i}.bmp", i)) for i in range(6)]
    first = open_cache(old, 16, False, cache, workers=1, progress=False)
    first_path = first.path
    del first
    gc.collect()
    stopped = sorted(old + [str(_bmp(data / "new.bmp", 50))])
    with pytest.raises(_Stop):
        open_cache(stopped, 16, False, cache, workers=1, progress=False, log=_stop_after_reuse)
    shutil.rmtree(first_path)   # only the stopped build holds those crops now
    assert len(list(cache.glob(".*.partial"))) == 1
    # A: three of the images where they are, copies of the other three elsewhere (found by content)
    copies = []
    for p in old[3:]:
        copies.append(str(tmp_path / "copy" / Path(p).name))
        Path(copies[-1]).parent.mkdir(exist_ok=True)
        shutil.copy(p, copies[-1])
    a_paths = old[:3] + copies
    in_build, go, said, got = threading.Event(), threading.Event(), [], {}

    def a_log(line: str) -> None:
        said.append(line)
        if line.startswith("reused the preprocessing of"):   # A's build is under way
            in_build.set()
            go.wait(30)

    def run(name, paths, log):
        got[name] = open_cache(paths, 16, False, cache, workers=1, progress=False, log=log)

    a = threading.Thread(target=run, args=("a", a_paths, a_log))
    a.start()
    try:
        assert in_build.wait(30)
        b_said = []
        b = threading.Thread(target=run, args=("b", stopped, b_said.append))
        b.start()
        b.join(10)
        finished_first = not b.is_alive()
    finally:
        go.set()
        a.join(30)
    b.join(30)
    assert finished_first, "B waited for A's build"
    assert b_said == ["continuing the preprocessing that was stopped: 6 of 7 images were done"]
    assert said[0] == "reused the preprocessing of 3 of 6 images (unchanged files) from earlier caches"
    assert got["a"].n_reused == 3   # the copies' crops: preprocessed, the stopped build being B's by then
    for cache_of, paths in ((got["a"], a_paths), (got["b"], stopped)):
        assert np.array_equal(np.asarray(cache_of.images), np.stack([load_training_crop(p, 16)[0] for p in paths]))


# -- 5. where there is no flock (Windows), concurrent builds of the same images ----------------------

def _build_as_on_windows(folder, paths, gate, in_build, out, said=None) -> None:
    """A process opening the cache as on Windows, which has no flock; with `gate`, it waits once its
    build is under way (crops of unchanged files taken) until told to go on; gate "stop": it is
    stopped there (Ctrl-C). `said`: where its log lines go."""
    import training.cache as cache
    cache.fcntl = None

    def log(line: str) -> None:
        if said is not None:
            said.put(line)
        if line.startswith("reused") and gate == "stop":
            raise _Stop()
        if line.startswith("reused") and gate is not None:
            in_build.set()
            gate.wait(60)
    try:
        c = cache.open_cache(paths, 16, False, folder, workers=1, progress=False, log=log)
        out.put(("opened", c.path.name, c.reused))
    except BaseException as e:
        out.put(("error", f"{type(e).__name__}: {e}"))



def _a_cache_and_one_image_more(tmp_path) -> tuple:
    """(cache folder holding a cache of 6 images, those 6 and a 7th)."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    old = [str(_bmp(data / f"{i}.bmp", i)) for i in range(6)]
    open_cache(old, 16, False, cache, workers=1, progress=False)
    gc.collect()
    return cache, sorted(old + [str(_bmp(data / "new.bmp", 50))])


@pytest.mark.skipif(sys.platform == "win32", reason="fork; the other process is told apart with os.kill, as on POSIX")
def test_without_flock_two_builds_of_the_same_images_do_not_share_a_folder(tmp_path):
    """Without flock both processes took `.KEY.partial` as theirs: the one that finished renamed it to
    the cache under the other, which then failed ("cannot write the preprocessing cache"). Each
    builds in a folder of its own now; the second to finish opens the first's cache."""
    import multiprocessing
    cache, paths = _a_cache_and_one_image_more(tmp_path)
    mp = multiprocessing.get_context("fork")
    gate, in_build, out_a, out_b = mp.Event(), mp.Event(), mp.Queue(), mp.Queue()
    a = mp.Process(target=_build_as_on_windows, args=(cache, paths, gate, in_build, out_a))
    a.start()
    try:
        assert in_build.wait(60)
        b = mp.Process(target=_build_as_on_windows, args=(cache, paths, None, None, out_b))
        b.start()
        b.join(60)
    finally:
        gate.set()
        a.join(60)
    got_a, got_b = out_a.get(timeout=5), out_b.get(timeout=5)
    final = [x for x in cache.iterdir() if not x.name.startswith(".")]
    assert len(final) == 2 and not list(cache.glob(".*partial*")), (got_a, got_b)   # the earlier cache and this one
    built = next(x for x in final if paths[-1] in (x / "files.txt").read_text())
    assert got_b == ("opened", built.name, False) and got_a == ("opened", built.name, True)
    assert np.array_equal(np.load(built / "images.npy"), np.stack([load_training_crop(p, 16)[0] for p in paths]))


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_without_flock_a_stopped_build_is_still_continued(tmp_path):
    """The build folder of its own that a stopped process left is taken over by the next start."""
    import multiprocessing
    cache, paths = _a_cache_and_one_image_more(tmp_path)
    mp = multiprocessing.get_context("fork")
    out, said = mp.Queue(), mp.Queue()
    for gate in ("stop", None):
        p = mp.Process(target=_build_as_on_windows, args=(cache, paths, gate, None, out, said))
        p.start()
        p.join(60)
    assert out.get(timeout=5)[0] == "error" and out.get(timeout=5)[0] == "opened"
    lines = [said.get(timeout=5) for _ in range(2)]
    assert lines == ["reused the preprocessing of 6 of 7 images (unchanged files) from earlier caches",
                     "continuing the preprocessing that was stopped: 6 of 7 images were done"]
    assert not list(cache.glob(".*partial*"))


# -- 5. review of the above ---------------------------------------------------------------------------

def _zipped_alignment(tmp_path: Path, name: str, source: str):
    """core.alignment run from a zip archive, as a bundle runs it from its own: its __file__ names no
    file on disk, its loader gives its code."""
    import importlib.util
    import zipfile
    import zipimport
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("core/alignment.py", source)
    spec = zipimport.zipimporter(str(archive / "core")).find_spec("core.alignment")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not Path(module.__file__).exists()
    return module


def test_a_changed_alignment_is_seen_where_its_source_file_is_absent(tmp_path, monkeypatch):
    """Review: in a PyInstaller bundle a module's __file__ names a .py that is not on disk: its code
    digest was 'missing', so a new version's alignment reused the crops of the old one."""
    import core
    from core import alignment
    from training.cache import crop_fingerprint
    source = Path(alignment.__file__).read_text(encoding="utf-8")
    changed = source.replace("def aligned_crop(", "def aligned_crop(*args, **kwargs):\n    return None\n\n\n"
                                                  "def _earlier_aligned_crop(", 1)
    assert changed != source
    prints = {}
    for name, text in (("first", source), ("moved", source), ("changed", changed)):
        module = _zipped_alignment(tmp_path, name, text)
        monkeypatch.setattr(core, "alignment", module)
        monkeypatch.setitem(sys.modules, "core.alignment", module)
        prints[name] = (crop_fingerprint(False), crop_fingerprint(True))
    assert prints["first"] == prints["moved"]   # the same code in another place: the same crops
    assert prints["changed"][0] != prints["first"][0] and prints["changed"][1] != prints["first"][1]


def test_an_interrupted_removal_of_an_earlier_versions_build_is_finished_by_the_next_run(tmp_path):
    """Review: a per-process build of an earlier version (.KEY.PID.partial) is renamed to
    .deleting.KEY.PID.partial.MYPID before its removal; cut short, no later run removed it."""
    import os
    root, key = tmp_path / "cache", "0123456789abcdef01234567"
    left = [f".deleting.{key}.999999.partial.4242", f".deleting.{key}.p999999.partial.4242",
            f".deleting.{key}.partial.4242", f".deleting.{key}.4242"]
    for name in left:
        (root / name).mkdir(parents=True)
        (root / name / "images.npy").write_bytes(b"x" * 1000)
    open_cache([str(_bmp(tmp_path / "a.bmp", 0))], 16, False, root, workers=1, progress=False)
    assert [n for n in os.listdir(root) if n.startswith(".deleting")] == []


def test_without_the_face_detector_files_training_without_align_warns_and_trains(tmp_path, capsys, monkeypatch):
    """Review: with the detector's files moved or missing, fader-train without --align (which needs
    no detector) failed with 'mtcnn.safetensors: cannot read the file'; the look for whole photos
    is advice, skipped with a warning. --align still needs the detector."""
    from core import faces
    rng = np.random.default_rng(0)
    data = tmp_path / "Smiling"
    for value in ("no", "yes"):
        for i, (w, h) in enumerate([(178, 218)] * 4 + [(64, 64)] * 3):
            (data / value).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(data / value / f"{i}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    monkeypatch.setattr(faces, "DEFAULT_WEIGHTS", tmp_path / "elsewhere" / "mtcnn.safetensors")
    monkeypatch.setattr(faces, "_shared", None)   # as loaded by a new process
    args = ["--data", str(data), *TINY, "--steps", "1", "--eval-every", "1", "--val-size", "4",
            "--cache-dir", str(tmp_path / "cache")]
    code, err = _main([*args, "--out", str(tmp_path / "run")], capsys)
    assert code == 0 and (tmp_path / "run" / "model.fader").is_file(), err
    (line,) = [x for x in err.splitlines() if "not checked" in x]
    assert line.startswith("fader-train: warning: the square images and images of CelebA's 178x218 shape were not "
                           "checked for being whole photos rather than face crops: the face detector cannot be "
                           "loaded (") and "mtcnn.safetensors" in line, line
    code, err = _main([*args, "--out", str(tmp_path / "aligned"), "--align"], capsys)
    assert code == 2 and not (tmp_path / "aligned" / "model.fader").exists(), err
    # said in one line that names the missing file, before preprocessing (each image was skipped as
    # "error: ModelFileError", then "too few usable images")
    (line,) = [x for x in err.splitlines() if "error" in x]
    assert line.startswith("fader-train: error: --align needs the face detector, which cannot be loaded: ") \
        and "mtcnn.safetensors" in line and "ModelFileError" not in err and "preprocessing" not in err, err


def test_hashes_without_hashlib_file_digest_as_on_python_3_10(tmp_path, monkeypatch):
    """Review: requires-python is 3.10, but hashlib.file_digest (3.11+) keyed every --align cache and
    looked for copies of an image under two values."""
    import hashlib
    from training import cache
    from training.datasets import open_dataset
    cache._file_digest.cache_clear()
    want = cache.crop_fingerprint(True)
    monkeypatch.delattr(hashlib, "file_digest", raising=False)
    cache._file_digest.cache_clear()
    assert cache.crop_fingerprint(True) == want
    for value in ("no", "yes"):
        for i in range(3):
            _bmp(tmp_path / "Smiling" / value / f"{i}.bmp", i + 10 * (value == "yes"))
    (tmp_path / "Smiling" / "yes" / "copy.bmp").write_bytes((tmp_path / "Smiling" / "no" / "1.bmp").read_bytes())
    (note,) = open_dataset(tmp_path / "Smiling").notes
    assert note.startswith("1 image is an identical copy under two values") and "copy.bmp (yes)" in note
