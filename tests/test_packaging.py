"""Cheap checks of the packaging (no PyInstaller build: that runs before each release, see docs/packaging.md).

installer.spec is executed with stand-ins for PyInstaller's Analysis/PYZ/EXE/COLLECT, so these tests
see exactly what the spec would hand to PyInstaller: the entry script, hidden imports, resources,
excludes and the files it drops.
"""
from __future__ import annotations

import configparser
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "installer.spec"

# Files an Analysis of the real environment would list, to see what the spec's filters keep.
FAKE_BINARIES = [
    "torch/lib/libtorch_cpu.so", "torch/lib/libtorch_cuda.so", "torch/lib/libc10_cuda.so", "torch/lib/libc10.so",
    "nvidia/cu13/lib/libcudart.so.13", "nvidia/cu13/lib/libcublasLt.so.13", "nvidia/cu13/lib/libcusolverMg.so.12",
    "nvidia/cu13/lib/libnvperf_host.so", "nvidia/cudnn/lib/libcudnn_cnn.so.9", "nvidia/nvshmem/lib/libnvshmem_host.so.3",
    "nvidia/nvshmem/lib/nvshmem_transport_ucx.so.3",
    "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/imageformats/libqsvg.so", "PySide6/Qt/plugins/imageformats/libqpdf.so",
    "PySide6/Qt/plugins/iconengines/libqsvgicon.so", "PySide6/Qt/lib/libQt6Svg.so.6", "PySide6/Qt/lib/libQt6Pdf.so.6",
    "PySide6/Qt/lib/libQt6Qml.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6", "cv2/cv2.abi3.so",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so", "libcairo.so.2", "libfreetype.so.6",
    "pillow.libs/libharfbuzz-fb49c9fc.so.0.61450.0", "torch/bin/torch_shm_manager", "torch/bin/test_api",
    "torch/bin/protoc", "torch/test/Dict_test", "torch/lib/libtorchbind_test.so",
]
# PyInstaller's top-level links to libraries in sub-folders: (link, target relative to the link's folder)
FAKE_SYMLINKS = [("libQt6Pdf.so.6", "PySide6/Qt/lib/libQt6Pdf.so.6"),
                 ("libQt6Widgets.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6"),
                 ("libcudart.so.13", "nvidia/cu13/lib/libcudart.so.13")]
MUST_KEEP = {"torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "PySide6/Qt/plugins/platforms/libqxcb.so",
             "PySide6/Qt/plugins/platforms/libqwayland.so", "PySide6/Qt/plugins/platforms/libqoffscreen.so",
             "PySide6/Qt/plugins/imageformats/libqsvg.so", "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
             "PySide6/Qt/lib/libQt6Svg.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6", "cv2/cv2.abi3.so",
             "libfreetype.so.6", "pillow.libs/libharfbuzz-fb49c9fc.so.0.61450.0", "torch/bin/torch_shm_manager"}
CUDA_KEEP = {"torch/lib/libtorch_cuda.so", "torch/lib/libc10_cuda.so", "nvidia/cu13/lib/libcudart.so.13",
             "nvidia/cu13/lib/libcublasLt.so.13", "nvidia/cudnn/lib/libcudnn_cnn.so.9",
             "nvidia/nvshmem/lib/libnvshmem_host.so.3"}


class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def run_spec(monkeypatch, cpu_only: bool = False) -> dict:
    """Execute installer.spec with stand-ins; returns its namespace plus what it built ("_built")."""
    built: dict = {"EXE": [], "COLLECT": [], "BUNDLE": []}

    class Analysis(_Recorder):
        def __init__(self, scripts, **kwargs):
            super().__init__(scripts, **kwargs)
            built["Analysis"] = self
            self.scripts = scripts
            self.pure = []
            self.binaries = [(name, "/src/" + name, "BINARY") for name in FAKE_BINARIES]
            self.datas = [(str(Path(dest) / Path(src).name), src, "DATA") for src, dest in kwargs["datas"]]
            self.datas += [(link, target, "SYMLINK") for link, target in FAKE_SYMLINKS]

    def record(kind):
        def make(*args, **kwargs):
            obj = _Recorder(*args, **kwargs)
            built[kind].append(obj)
            return obj
        return make

    if cpu_only:
        monkeypatch.setenv("FADER_CPU_ONLY", "1")
    else:
        monkeypatch.delenv("FADER_CPU_ONLY", raising=False)
    ns = {"__name__": "__main__", "__file__": str(SPEC), "SPECPATH": str(ROOT), "Analysis": Analysis,
          "PYZ": _Recorder,
          "EXE": record("EXE"), "COLLECT": record("COLLECT"), "BUNDLE": record("BUNDLE")}
    exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), ns)
    ns["_built"] = built
    return ns


@pytest.fixture(scope="module")
def spec():
    mp = pytest.MonkeyPatch()
    try:
        yield run_spec(mp)
    finally:
        mp.undo()


def test_spec_builds_one_folder_app_from_the_frozen_entry(spec):
    built = spec["_built"]
    a = built["Analysis"]
    assert [Path(s) for s in a.scripts] == [ROOT / "fader_desktop" / "frozen_entry.py"]
    assert str(ROOT) in a.kwargs["pathex"]
    exe = built["EXE"][0]
    assert exe.kwargs["name"] == "FaderDesktop" and exe.kwargs["exclude_binaries"] is True  # one-folder
    assert exe.kwargs["upx"] is False
    (coll,) = built["COLLECT"]
    assert coll.kwargs["name"] == "FaderDesktop"
    assert exe in coll.args


def test_spec_names_every_resource(spec):
    datas = spec["_built"]["Analysis"].kwargs["datas"]
    by_src = {Path(src).resolve(): dest for src, dest in datas}
    files = [f for f in (ROOT / "resources").rglob("*")
             if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".py", ".pyc")]
    assert files, "resources/ is empty"
    for f in files:
        assert f.resolve() in by_src, f"{f.relative_to(ROOT)} is not in the bundle"
        # same place relative to the `resources` package, which default_model_path() and the detector use
        assert Path(by_src[f.resolve()]) == f.parent.relative_to(ROOT)
    names = {Path(s).relative_to(ROOT).as_posix() for s, _ in datas if Path(s).is_relative_to(ROOT)}
    assert "resources/detectors/mtcnn.safetensors" in names
    assert "resources/detectors/LICENSE" in names
    assert "resources/icons/app.svg" in names
    for optional in ("resources/models/default.fader", "resources/models/default.md"):
        if (ROOT / optional).exists():
            assert optional in names


def test_default_model_path_matches_bundle_layout(spec):
    """default_model_path() is <dir of resources/__init__>/models/default.fader: the spec puts models/ there."""
    import core.model_file as mf
    import resources
    expected = Path(resources.__file__).resolve().parent / "models" / "default.fader"
    assert mf.default_model_path() == resources.default_model_path() == expected
    src = inspect_source(resources.default_model_path)
    assert "__file__" in src  # located relative to the package, never to the working directory
    assert "resources" in spec["HIDDEN_IMPORTS"]


def inspect_source(fn) -> str:
    import inspect
    return inspect.getsource(fn)


def test_spec_hidden_imports_cover_subcommands_and_trainer(spec):
    from fader_desktop.cli import SUBCOMMANDS
    hidden = set(spec["_built"]["Analysis"].kwargs["hiddenimports"])
    for module, _help in SUBCOMMANDS.values():
        assert module in hidden, module
    for module in ("training.cli", "training.trainer", "fader_desktop.app", "fader_desktop.main_window",
                   "fader_desktop.frozen_entry", "core.faces", "core.model_file", "resources"):
        assert module in hidden, module
    assert not any(m.startswith(("tests", "bench")) for m in hidden)


def test_spec_excludes(spec):
    excludes = set(spec["_built"]["Analysis"].kwargs["excludes"])
    for name in ("triton", "torchvision", "tkinter", "pytest", "_pytest", "pytestqt", "PySide6.QtQml",
                 "PySide6.QtQuick", "PySide6.QtPdf", "PySide6.QtWebEngineCore", "PySide6.QtMultimedia"):
        assert name in excludes, name
    # needed at run time: torch._dynamo (imported by the optimizers) needs sympy; the GUI needs these
    for name in ("sympy", "numpy", "cv2", "PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtSvg"):
        assert name not in excludes, name


# The packaged app's trainer, run once as the bundle runs it: sys.frozen set, the executable's path
# as argv[0], every module the spec excludes unimportable; its --help after it in the same process.
# Two tests read this one run (each trainer process costs ~4-8 s of interpreter and torch start-up).
_FROZEN_TRAIN = """
import sys
for name in EXCLUDES:
    sys.modules[name] = None
sys.frozen = True
sys.argv[0] = sys.argv.pop(1)
from fader_desktop import frozen_entry
from core.model_file import train_checkpoint_advice
from pathlib import Path
print("ADVICE", train_checkpoint_advice(Path("run/checkpoint_last.pt")))
print("TRAIN EXIT", frozen_entry.main(sys.argv[1:]), flush=True)
sys.exit(frozen_entry.main(["train", "--help"]))
"""
FROZEN_EXE = "/opt/Fader Desktop/FaderDesktop"


@pytest.fixture(scope="module")
def frozen_train(spec, tmp_path_factory):
    """(the run folder, the finished process, the excluded modules) of a tiny run of the packaged
    app's trainer with the image discriminators and the critic on (their modules load too)."""
    import cv2
    import numpy as np
    tmp = tmp_path_factory.mktemp("frozen_train")
    rng = np.random.default_rng(0)
    for v in ("no", "yes"):
        (tmp / "Smiling" / v).mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(tmp / "Smiling" / v / f"{i}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    excludes = sorted(spec["_built"]["Analysis"].kwargs["excludes"])
    args = ["--data", str(tmp / "Smiling"), "--img-size", "32", "--init-fm", "8", "--max-fm", "16",
            "--n-layers", "3", "--hid-dim", "16", "--steps", "2", "--classifier-steps", "2", "--val-size", "2",
            "--eval-every", "2", "--lambda-clf-dis", "0.01", "--clf-blur", "0.5", "--n-critic", "1",
            "--lambda-critic-attr", "0.01", "--critic-width", "8", "--amp", "off", "--threads", "1",
            "--out", str(tmp / "run"), "--cache-dir", str(tmp / "cache"), "--quiet"]
    p = subprocess.run([sys.executable, "-c", _FROZEN_TRAIN.replace("EXCLUDES", repr(excludes)), FROZEN_EXE,
                        "train", *args], cwd=tmp, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    return tmp / "run", p, excludes


def test_the_bundled_trainer_runs_without_the_modules_the_spec_leaves_out(frozen_train):
    """`FaderDesktop train` and Training > Train model... run with every module the spec excludes
    made unimportable (torchvision among them): a top-level torchvision import in the trainer broke
    the frozen app's training, found by scripts/build_app.sh's smoke test, not by these checks."""
    run, p, excludes = frozen_train
    assert "torchvision" in excludes
    assert "\nTRAIN EXIT 0\n" in p.stdout, p.stdout[-1000:] + p.stderr[-2000:]
    assert (run / "model.fader").is_file()


def test_spec_drops_unused_libraries_but_keeps_needed_ones(spec):
    kept = {entry[0] for entry in spec["_built"]["Analysis"].binaries}
    assert MUST_KEEP | CUDA_KEEP <= kept
    for name in ("nvidia/cu13/lib/libcusolverMg.so.12", "nvidia/cu13/lib/libnvperf_host.so",
                 "nvidia/nvshmem/lib/nvshmem_transport_ucx.so.3", "PySide6/Qt/plugins/imageformats/libqpdf.so",
                 "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/lib/libQt6Pdf.so.6",
                 "PySide6/Qt/lib/libQt6Qml.so.6", "PySide6/Qt/plugins/platformthemes/libqgtk3.so"):
        assert name not in kept, name
    if sys.platform.startswith("linux"):
        assert "libcairo.so.2" not in kept  # the GTK theme's system libraries go with it


def test_spec_drops_links_to_dropped_libraries(spec):
    links = {e[0] for e in spec["_built"]["Analysis"].datas if e[2] == "SYMLINK"}
    assert links == {"libQt6Widgets.so.6", "libcudart.so.13"}
    toc = [(n, "/src/" + n, "BINARY") for n in FAKE_BINARIES] + [(a, b, "SYMLINK") for a, b in FAKE_SYMLINKS]
    kept = spec["filter_toc"](toc, spec["DROP"] + spec["DROP_CPU_ONLY"], spec["DROP_TOPLEVEL"])
    assert {e[0] for e in kept if e[2] == "SYMLINK"} == {"libQt6Widgets.so.6"}


def test_cpu_only_drop_list_removes_all_of_cuda(spec):
    drop = spec["DROP"] + spec["DROP_CPU_ONLY"]
    kept = {n for n in FAKE_BINARIES if not spec["dropped"](n, drop, spec["DROP_TOPLEVEL"])}
    assert kept == MUST_KEEP


def test_cpu_only_refuses_a_cuda_torch(monkeypatch):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    import torch
    if torch.version.cuda is None:
        ns = run_spec(monkeypatch, cpu_only=True)
        assert not any("cuda" in e[0] for e in ns["_built"]["Analysis"].binaries)
    else:
        with pytest.raises(SystemExit, match="CPU torch"):
            run_spec(monkeypatch, cpu_only=True)


def test_spec_reads_torch_cuda_version_like_torch(spec):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    import torch
    assert spec["torch_cuda_version"]() == torch.version.cuda


def test_spec_ships_licences(spec):
    dests = {(Path(src).name, dest) for src, dest in spec["_built"]["Analysis"].kwargs["datas"]}
    assert ("LGPL-3.0.txt", "licenses") in dests and ("GPL-3.0.txt", "licenses") in dests
    if importlib.util.find_spec("torch") is not None:
        assert any(dest.startswith(str(Path("licenses") / "torch")) for _, dest in dests)
    assert not any("triton" in dest or "torchvision" in dest for _, dest in dests)
    assert ("DISTRIBUTIONS.txt", "licenses") in dests
    names = {d.metadata["Name"].lower() for d in spec["bundled_distributions"]()}
    assert {"numpy", "opencv-python-headless", "pi_heif"} <= names and "triton" not in names
    assert any(dest == str(Path("licenses") / "pi-heif") for _, dest in dests)  # LGPL libheif, libde265
    try:  # a CUDA torch pulls the nvidia-* wheels through cuda-toolkit's extras: their licences come along
        import importlib.metadata as md
        md.distribution("nvidia-cuda-runtime")
    except Exception:
        return
    if "cuda-toolkit" in names:
        assert "nvidia-cuda-runtime" in names
        assert any(dest.startswith(str(Path("licenses") / "nvidia-cuda-runtime")) for _, dest in dests)


# ---- the frozen entry point -------------------------------------------------------------------
def test_frozen_entry_dispatches_train_to_the_trainer():
    from fader_desktop import frozen_entry
    import training.cli
    target, args = frozen_entry.dispatch(["train", "--data", "d", "--steps", "3"])
    assert target is training.cli.main and args == ["--data", "d", "--steps", "3"]


@pytest.mark.parametrize("argv", [[], ["photo.jpg"], ["edit", "a.jpg", "-o", "b.jpg"], ["info", "--json"],
                                  ["batch", "in", "-o", "out"], ["sweep", "--help"], ["import-reference", "x.pth"]])
def test_frozen_entry_dispatches_the_rest_to_the_app_cli(argv):
    from fader_desktop import frozen_entry
    import fader_desktop.cli
    target, args = frozen_entry.dispatch(list(argv))
    assert target is fader_desktop.cli.main and args == argv


def test_frozen_entry_main_runs_subcommands(monkeypatch):
    from fader_desktop import frozen_entry
    import fader_desktop.cli
    import training.cli
    calls = []
    monkeypatch.setattr(fader_desktop.cli, "main", lambda argv: calls.append(("app", argv)) or 0)
    monkeypatch.setattr(training.cli, "main", lambda argv: calls.append(("train", argv)) or 5)
    monkeypatch.setattr(frozen_entry, "install_smoke_test", lambda has_images: calls.append(("smoke", has_images)))
    monkeypatch.delenv(frozen_entry.SMOKE_ENV, raising=False)
    assert frozen_entry.main(["info", "--json"]) == 0
    assert frozen_entry.main(["train", "--steps", "1"]) == 5
    # --smoke-test is taken off the window's command line and installs the hook (4: closed before it ended)
    assert frozen_entry.main(["--smoke-test", "--model", "m.fader", "a.jpg"]) == 4
    monkeypatch.setenv(frozen_entry.SMOKE_ENV, "1")
    assert frozen_entry.main(["edit", "a.jpg", "-o", "b.jpg"]) == 0  # no hook for sub-commands
    assert calls == [("app", ["info", "--json"]), ("train", ["--steps", "1"]), ("smoke", True),
                     ("app", ["--model", "m.fader", "a.jpg"]), ("app", ["edit", "a.jpg", "-o", "b.jpg"])]


def test_frozen_entry_train_help_runs_the_real_trainer_parser(capsys):
    from fader_desktop import frozen_entry
    with pytest.raises(SystemExit) as exc:
        frozen_entry.main(["train", "--help"])
    assert exc.value.code == 0
    assert "fader-train" in capsys.readouterr().out


def test_process_age_is_plausible():
    from fader_desktop.frozen_entry import process_age
    assert 0 <= process_age() < 24 * 3600


# ---- Linux desktop integration and scripts ------------------------------------------------------
def test_desktop_file_and_icons():
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(ROOT / "packaging" / "linux" / "fader-desktop.desktop", encoding="utf-8")
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Name"] == "Fader Desktop"
    assert entry["Exec"].split()[0] == "FaderDesktop" and "%F" in entry["Exec"]
    assert entry["Icon"] == "fader-desktop"
    assert "image/jpeg" in entry["MimeType"]
    for name in ("fader-desktop.svg", "fader-desktop.png", "fader-desktop.ico", "fader-desktop.icns"):
        assert (ROOT / "packaging" / "icons" / name).stat().st_size > 0, name
    # the running window maps to this .desktop file (Wayland app id) through QGuiApplication.desktopFileName
    assert 'setDesktopFileName("fader-desktop")' in (ROOT / "fader_desktop" / "app.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("script", ["scripts/build_app.sh", "scripts/smoke_frozen.sh", "packaging/linux/install.sh"])
def test_shell_scripts_parse(script):
    path = ROOT / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_frozen_entry_help_mentions_train(capsys):
    from fader_desktop import frozen_entry
    with pytest.raises(SystemExit) as exc:
        frozen_entry.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("train: ") and "edit" in out


def test_the_packaged_trainer_names_a_command_the_packaged_app_has(frozen_train):
    """QA of a real build: the packaged app's trainer wrote `fader-train …` into command.txt and its
    usage and advice, a command the packaged app does not install (install.sh links fader-desktop):
    a pasted line gave 'command not found'."""
    run, p, _ = frozen_train
    assert "\nTRAIN EXIT 0\n" in p.stdout, p.stdout[-1000:] + p.stderr[-2000:]
    line = (run / "command.txt").read_text().splitlines()[-1]
    assert line.startswith("'/opt/Fader Desktop/FaderDesktop' train --data "), line
    train_output, _, usage = p.stdout.partition("\nTRAIN EXIT 0\n")
    assert "`FaderDesktop train --export-last --out run`" in train_output
    assert p.returncode == 0 and usage.startswith("usage: FaderDesktop train [-h]"), usage[:500] + p.stderr[-2000:]


def test_no_module_makes_pyinstaller_bundle_a_library_of_the_build_host():
    """QA of a real build: webp_writer's find_library("webp") made PyInstaller copy the build host's
    libwebp.so.7 into the bundle (never loaded there: Pillow's own is another version)."""
    utils = pytest.importorskip("PyInstaller.depend.utils")
    found = {}
    for folder in ("core", "training", "fader_desktop"):
        for f in sorted((ROOT / folder).glob("*.py")):
            hits = utils.scan_code_for_ctypes(compile(f.read_text(encoding="utf-8"), str(f), "exec"))
            if hits:
                found[f.name] = hits
    assert found == {}
