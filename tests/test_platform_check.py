"""The window on a fresh desktop: a missing xcb library is one line naming the package, exit 2,
before Qt starts (Qt itself would abort with a core dump)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fader_desktop.platform_check import DEBIAN_PACKAGES, missing_libraries, package_for, xcb_plugin

REPO = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None,
                                reason="the xcb platform and ldd are Linux things")


def _window(env_extra: dict, tmp_path) -> subprocess.CompletedProcess:
    """`fader-desktop` (the window) as a user starts it, in a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "WAYLAND", "DISPLAY"))}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "c"),
               XDG_DATA_HOME=str(tmp_path / "d"), **env_extra)
    return subprocess.run([sys.executable, "-m", "fader_desktop.cli"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def _plugin_lacking(tmp_path: Path, soname: str, missing_name: str) -> Path:
    """A copy of PySide6's xcb plugin that asks for `missing_name` instead of `soname` (same length,
    a library no system has), laid out like PySide6 so that its own Qt libraries still resolve."""
    real = xcb_plugin({})
    if real is None:
        pytest.skip("PySide6 has no xcb platform plugin here")
    data = real.read_bytes()
    old, new = soname.encode() + b"\0", missing_name.encode() + b"\0"
    assert len(old) == len(new)
    if old not in data:
        pytest.skip(f"this PySide6's xcb plugin does not name {soname}")
    platforms = tmp_path / "Qt" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (tmp_path / "Qt" / "lib").symlink_to(real.parents[2] / "lib")  # the plugin's $ORIGIN/../../lib
    (platforms / "libqxcb.so").write_bytes(data.replace(old, new))
    return platforms


@linux_only
def test_a_missing_xcb_library_names_the_package_and_exits_2(tmp_path):
    platforms = _plugin_lacking(tmp_path, "libxcb-keysyms.so.1", "libxcb-keysyms.so.9")
    r = _window({"DISPLAY": ":97", "QT_QPA_PLATFORM_PLUGIN_PATH": str(platforms)}, tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("fader-desktop: error: the window cannot start"), lines
    assert "libxcb-keysyms.so.9" in lines[0] and "sudo apt-get install" in lines[0]
    assert re.search(r"apt-get install [^`]*\blibxcb-keysyms1\b", lines[0])
    assert "QT_QPA_PLATFORM=wayland" in lines[0] and "QT_QPA_PLATFORM=offscreen" in lines[0]
    assert "core dumped" not in r.stderr and "Qt platform plugin" not in r.stderr


@linux_only
def test_this_machines_missing_xcb_libraries_are_reported_as_qt_would_need_them(tmp_path):
    """On a machine that lacks some of the real plugin's libraries (a fresh desktop), the window
    refuses with their packages; where nothing is missing it gets past the check."""
    plugin = xcb_plugin({})
    if plugin is None:
        pytest.skip("PySide6 has no xcb platform plugin here")
    missing = missing_libraries(plugin)
    assert missing is not None
    if not missing:
        pytest.skip("every library of the xcb plugin is installed here (.ci/run then starts the window under Xvfb)")
    r = _window({"DISPLAY": ":97"}, tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    for lib in missing:
        assert lib in r.stderr and (package_for(lib) or lib) in r.stderr


@linux_only
def test_no_display_is_one_line_not_a_core_dump(tmp_path):
    plugin = xcb_plugin({})
    if plugin is None or missing_libraries(plugin):
        pytest.skip("needs an xcb plugin whose libraries are all installed")
    r = _window({}, tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "fader-desktop: error: the window cannot start: no X11 display (DISPLAY is not set); run it in a "
        "desktop session, or run it with QT_QPA_PLATFORM=wayland in a Wayland session "
        "(QT_QPA_PLATFORM=offscreen starts it without a window, e.g. for tests)"]


@linux_only
def test_readme_quick_start_installs_every_package_the_xcb_plugin_needs():
    """Every library of the plugin's whole dependency tree that DEBIAN_PACKAGES knows has its
    package in the README's first quick-start command (which installs the system packages)."""
    plugin = xcb_plugin({})
    if plugin is None:
        pytest.skip("PySide6 has no xcb platform plugin here")
    out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30).stdout
    needed = {line.split()[0] for line in out.splitlines() if "=>" in line}
    text = (REPO / "README.md").read_text()
    quick = text[text.index("## Quick start"):]
    quick = quick[quick.index("```bash") + 7:quick.index("```", quick.index("```bash") + 7)]
    commands = [c for c in quick.strip().splitlines() if c.strip()]
    assert len(commands) == 2, commands  # one installs and starts the app, one runs the tests
    install = re.search(r"apt-get install (-y )?([^&;]*)", commands[0])
    assert install, commands[0]
    listed = set(install.group(2).split())
    wanted = {DEBIAN_PACKAGES[n] for n in needed if n in DEBIAN_PACKAGES}
    assert wanted and not wanted - listed, sorted(wanted - listed)
    assert "python3-venv" in listed
