"""Shared fixtures: tiny real models (random weights), a vendored portrait (tests/data) and real
photos from ../shared/data."""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Training preprocesses into a cache of this test run unless a test names its own: tests wrote
# into the user's own ~/.cache/fader-desktop/training (5,371 CelebA crops from one of them).
_CACHE = tempfile.mkdtemp(prefix="fader-test-cache-")
os.environ["FADER_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CELEBA_ALIGNED = SHARED_DATA / "celeba" / "img_align_celeba"
CELEBA_WILD = SHARED_DATA / "celeba" / "img_celeba"
# A public-domain portrait with one clear face, in the repository (source and licence: tests/data/README.md)
PORTRAIT = REPO / "resources" / "samples" / "astronaut.jpg"   # the app's sample photo
PHONE_HEIC = REPO / "tests" / "data" / "astronaut_phone.heic"   # the same portrait as a phone stores it

TINY_ATTRS = (("Smiling", ("no", "yes"), (-1.0, 2.0)),
              ("Male", ("no", "yes"), (-1.0, 2.0)),
              ("Hair", ("black", "blond", "brown"), (0.0, 1.0)))


def make_tiny_model(path: Path, img_size: int = 32, with_classifier: bool = True, seed: int = 0,
                    attrs=TINY_ATTRS) -> Path:
    """Write a small randomly initialised .fader model (real networks, real file format)."""
    import torch
    from core.attributes import Attribute
    from core.model_file import new_model, save_model
    from core.networks import ArchConfig
    torch.manual_seed(seed)
    attributes = [Attribute(n, v, r) for n, v, r in attrs]
    cfg = ArchConfig(img_size=img_size, init_fm=8, max_fm=32, n_layers=3, hid_dim=16)
    clf_cfg = ArchConfig(img_size=img_size, init_fm=4, max_fm=16, n_layers=3, hid_dim=16) if with_classifier else None
    model = new_model(cfg, attributes, clf_cfg, meta={"name": "tiny test model", "license": "test only"})
    # Random BN statistics so that folding and eval mode are exercised like a trained model.
    for m in model.autoencoder.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    model.autoencoder.eval()
    save_model(model, path)
    return path


def randomize_norms(module, seed: int, spread: float = 0.4, batches_tracked=None) -> None:
    """Random affine parameters and running statistics for every norm layer, so that tests see
    the effect of eval mode and batch-norm folding as with a trained model."""
    import torch
    from torch import nn
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * spread - spread / 2)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * spread - spread / 2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                if batches_tracked is not None:
                    m.num_batches_tracked.fill_(batches_tracked)


def noise_images(folder: Path, names, seed: int = 0, junk=()) -> None:
    """Write 40x40 noise PNGs named `names` into `folder`; the names in `junk` get bytes that are no
    image (a user's folder with unreadable files)."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        if n in junk:
            (folder / n).write_bytes(b"not an image")
        else:
            cv2.imwrite(str(folder / n), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))


def value_folders(root: Path, counts: dict, junk: dict = None) -> Path:
    """A labeled folder root/<value>/IMG_<k><i>.png, counts[value] noise images each (the last
    junk[value] of them unreadable)."""
    for k, (value, n) in enumerate(counts.items()):
        names = [f"IMG_{k:02d}{i:03d}.png" for i in range(n)]
        noise_images(root / value, names, seed=k, junk=set(names[n - (junk or {}).get(value, 0):]))
    return root


# fader-train options for a tiny 32 px model that trains in a second or two (add --batch-size)
TINY_TRAIN = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
              "--classifier-steps", "2", "--quiet", "--threads", "1", "--workers", "1"]


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.fader")


@pytest.fixture(scope="session")
def tiny_model_path_b(tmp_path_factory) -> Path:
    """A second, different tiny model (for switching models)."""
    return make_tiny_model(tmp_path_factory.mktemp("models_b") / "tiny_b.fader", seed=1,
                           attrs=(("Young", ("no", "yes"), (-2.0, 3.0)), ("Eyeglasses", ("no", "yes"), (-1.0, 2.0))))


def celeba_rows(files) -> tuple:
    """(attribute names, {file: values}) of CelebA's list_attr_celeba.txt for `files` only: the
    whole file's 202,599 rows took 2-3 s to split."""
    want = set(files)
    with open(SHARED_DATA / "list_attr_celeba.txt") as f:
        f.readline()
        names = f.readline().split()
        return names, {k: line.split()[1:] for line in f if (k := line[:line.find(" ")]) in want}


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared CelebA data is not on this machine)")
    return path


@pytest.fixture(scope="session")
def celeba_aligned() -> Path:
    """Folder of real CelebA aligned 178x218 crops (skips when absent)."""
    return _require(CELEBA_ALIGNED)


@pytest.fixture
def aligned3(tmp_path, celeba_aligned) -> Path:
    """A folder of three real aligned CelebA photos (JPEG)."""
    import shutil
    d = tmp_path / "in3"
    d.mkdir()
    for p in sorted(celeba_aligned.glob("*.jpg"))[:3]:
        shutil.copy(p, d / p.name)
    return d


@pytest.fixture(scope="session")
def celeba_wild() -> Path:
    """Folder of real unaligned CelebA photos (skips when absent)."""
    return _require(CELEBA_WILD)


@pytest.fixture
def labeled_folder(tmp_path, celeba_aligned) -> Path:
    """Smiling/{yes,no}/ with a few real aligned faces each (a user's labeled folder)."""
    import shutil
    root = tmp_path / "Smiling"
    for i, f in enumerate(sorted(celeba_aligned.glob("*.jpg"))[:12]):
        d = root / ("yes" if i % 2 else "no")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d / f.name)
    return root


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    """One real photo with a single clear face (vendored: present on every machine)."""
    return PORTRAIT


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one intra-op thread is fastest and immune to other processes on the cores.

    Set for each test, not once per module: code under test sets the count itself (fader-train's
    main, the engine, the classifier and judge commands), and a module-scoped pin stayed set up
    while those left 2 threads to every later test of the file (4def36e). Module-scoped fixtures
    are set up before it, at the process's count."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _mount_tmpfs(folder: Path, options: str) -> bool:
    import subprocess
    folder.mkdir(parents=True, exist_ok=True)
    if os.name != "posix" or os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return r.returncode == 0


def _unmount(folder: Path) -> None:
    import subprocess
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A real 256 KB file system (tmpfs): writing more than that fails with ENOSPC part-way.
    Skips where this process cannot mount one (not root, or in a container that forbids it)."""
    d = tmp_path / "small_disk"
    if not _mount_tmpfs(d, "size=256k,mode=0777"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    yield d
    _unmount(d)


def fill_disk(folder: Path, leave: int) -> None:
    """Fill the file system of `folder` until about `leave` bytes are free."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    if free > leave:
        with open(folder / "filler.bin", "wb") as f:
            f.write(b"\0" * (free - leave))


@pytest.fixture
def read_only_dir(tmp_path) -> Path:
    """A folder nothing can be created in: a read-only tmpfs as root, else a mode 0555 folder.
    Skips when neither keeps this process out."""
    d = tmp_path / "read_only"
    if not _mount_tmpfs(d, "ro,size=64k"):
        d.mkdir(exist_ok=True)
        d.chmod(0o555)
    try:
        (d / "probe").write_bytes(b"x")
    except OSError:
        yield d
    else:
        pytest.skip("cannot make a folder read-only here")
    finally:
        if os.path.ismount(d):
            _unmount(d)
        elif d.exists():
            d.chmod(0o755)


def _s15(v: float) -> bytes:
    import struct
    return struct.pack(">i", round(v * 65536))


def icc_xyz(x, y, z) -> bytes:
    """An ICC XYZ tag's body."""
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def icc_profile(space: bytes, tags: list, name: bytes) -> bytes:
    """A v2 display ICC profile of colour space ``space`` (b"RGB ", b"GRAY") with ``tags``
    [(signature, body)] and a description tag naming it, built here (Pillow creates sRGB only)."""
    import struct
    text = name + b"\0"
    desc = (b"desc" + bytes(4) + struct.pack(">I", len(text)) + text
            + bytes(4) + bytes(4) + bytes(3) + bytes(67))
    tags = [(b"desc", desc)] + list(tags)
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntr" + space + b"XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + bytes(28)
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48))
    assert len(header) == 128
    return header + table + data


def display_p3_icc() -> bytes:
    """A Display P3 ICC profile (v2, matrix and gamma 2.2 curves), built here: Pillow can only
    create sRGB, whose numbers mean nearly what a profile-less file's do, so only a wide-gamut
    profile shows whether an export keeps what the photo's pixels mean."""
    import struct
    curve = b"curv" + bytes(4) + struct.pack(">I", 1) + struct.pack(">H", 0x0233) + bytes(2)
    return icc_profile(b"RGB ", [(b"wtpt", icc_xyz(0.9642, 1.0, 0.8249)),
                                 (b"rXYZ", icc_xyz(0.5151, 0.2412, -0.0011)), (b"gXYZ", icc_xyz(0.2920, 0.6922, 0.0419)),
                                 (b"bXYZ", icc_xyz(0.1571, 0.0666, 0.7841)),
                                 (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)],
                       b"Display P3 (Fader Desktop tests)")


def longest_pause_while(work) -> tuple:
    """(the longest gap between this thread's turns, the total time) while ``work`` runs in
    another thread: how long the window's event loop would have been frozen by it."""
    import threading
    import time
    done = threading.Event()
    errors = []

    def run():
        try:
            work()
        except BaseException as exc:   # re-raised here, not lost in the thread
            errors.append(exc)
        finally:
            done.set()

    th = threading.Thread(target=run)
    gaps, last = [], time.perf_counter()
    t0 = last
    th.start()
    while not done.is_set():
        time.sleep(0.002)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    th.join()
    if errors:
        raise errors[0]
    return max(gaps), time.perf_counter() - t0


def packaged_executable(tmp_path: Path, monkeypatch, *argv) -> tuple:
    """Run as the packaged app (sys.frozen, as PyInstaller sets it) started by the path of its
    executable, `opt/Fader Desktop/FaderDesktop` under `tmp_path`, with `argv` after it, and a PATH
    of one empty folder (where a test puts install.sh's `fader-desktop` link). Returns (executable,
    that folder)."""
    import sys
    app = tmp_path / "opt" / "Fader Desktop"
    app.mkdir(parents=True)
    exe = app / "FaderDesktop"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", [str(exe), *argv])
    monkeypatch.setenv("PATH", str(bin_dir))
    return exe, bin_dir


@contextlib.contextmanager
def app_dialogs(qtbot, tmp_path: Path, model_path: Path, info: bool = False):
    """The app's dialogs built as the app builds them and shown, by name: export, sweep, import,
    batch, training, and with `info` the model card and the keyboard shortcuts list; at the end
    the batch's and the training's job queues are shut down."""
    from core.model_file import load_model, model_summary
    from fader_desktop.batch_dialog import BatchDialog
    from fader_desktop.dialogs import (ExportDialog, ImportReferenceDialog, ModelCardDialog, ShortcutsDialog,
                                       SweepDialog)
    from fader_desktop.training_dialog import TrainingDialog
    model = load_model(model_path)
    made = {"export": ExportDialog(tmp_path / "photo_edited.jpg"),
            "sweep": SweepDialog(model.attributes, tmp_path / "sweep.png"),
            "import": ImportReferenceDialog(str(tmp_path))}
    if info:
        made["model card"] = ModelCardDialog(model_summary(model), model_path)
        made["shortcuts"] = ShortcutsDialog(None, "<p>Ctrl+O: open</p>")
    made["batch"] = BatchDialog(None, model_path, "cpu", {"Smiling": 1.0})
    made["training"] = TrainingDialog(None, str(model_path))
    for d in made.values():
        qtbot.addWidget(d)
        d.show()
    try:
        yield made
    finally:
        made["batch"].jobs.shutdown()
        made["training"].jobs.shutdown()
