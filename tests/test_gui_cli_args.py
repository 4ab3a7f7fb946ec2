"""The window's own command line: --device is kept as the window's choice, `auto` included."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args, env):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(sys.platform == "win32", reason="XDG folders")
def test_device_auto_on_the_command_line_replaces_a_saved_choice(tmp_path, tiny_model_path):
    """`fader-desktop --device auto` kept a saved 'cpu' (only cpu and cuda were saved), though its
    help said auto is the default; now the device given is the window's choice, auto too, and a
    start without --device keeps what was chosen last."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CACHE_HOME=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    settings = ("from PySide6.QtWidgets import QApplication; app = QApplication([]); "
                "from fader_desktop.settings import APPLICATION, ORGANIZATION, Settings; "
                "app.setOrganizationName(ORGANIZATION); app.setApplicationName(APPLICATION); ")
    read = settings + "print(Settings().device)"
    # 'cpu' saved as the window saves a choice (a window started with --device cpu saves it through
    # this setter): each start of the window costs ~2 s here (torch), a write of the setting 0.2
    r = _run(["-c", settings + "s = Settings(); s.device = 'cpu'; s.sync(); print(Settings().device)"], env)
    assert r.stdout.split()[-1] == "cpu", r.stdout + r.stderr
    for given, saved in ((None, "cpu"), ("auto", "auto")):
        device = ["--device", given] if given else []
        r = _run(["-m", "fader_desktop.frozen_entry", "--smoke-test", "--model", str(tiny_model_path), *device], env)
        assert r.returncode == 0 and '"smoke": "ok"' in r.stdout, r.stdout + r.stderr
        r = _run(["-c", read], env)
        assert r.stdout.split()[-1] == saved, (given, r.stdout + r.stderr)


def test_the_window_refuses_an_unknown_device_in_one_line(capsys):
    from fader_desktop.cli import main
    with pytest.raises(SystemExit) as e:
        main(["--device", "gpu"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "invalid choice: 'gpu'" in err, err
