"""Before Qt starts the window: can its X11 (xcb) platform plugin load on this machine?

Qt aborts with a core dump when the xcb plugin's shared libraries are missing (on a fresh
Debian/Ubuntu desktop: libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, …), after a message that
does not say which package to install. This module finds the plugin PySide6 ships, asks the
dynamic loader (`ldd`) which of its libraries are missing, and turns that into one line naming the
Debian/Ubuntu packages and the alternatives. It imports nothing from Qt.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional

# Shared libraries the xcb plugin (with QtGui) needs -> the Debian/Ubuntu package that has them.
# README's quick start installs every package listed here; tests/test_platform_check.py checks
# that the plugin needs nothing else from this table's kind that the README leaves out.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")
_SONAME_STEM = re.compile(r"^(lib.+?)\.so(\.\d+)*$")


def package_for(soname: str) -> Optional[str]:
    """The Debian/Ubuntu package of a library (matched on its name without the version), or None."""
    if soname in DEBIAN_PACKAGES:
        return DEBIAN_PACKAGES[soname]
    m = _SONAME_STEM.match(soname)
    if m:
        for known, pkg in DEBIAN_PACKAGES.items():
            k = _SONAME_STEM.match(known)
            if k and k.group(1) == m.group(1):
                return pkg
    return None


def xcb_plugin(env: Mapping[str, str] = os.environ) -> Optional[Path]:
    """The xcb platform plugin Qt would load (QT_QPA_PLATFORM_PLUGIN_PATH, else PySide6's own),
    found without importing Qt; None when there is none."""
    folders = []
    if env.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        folders.append(Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"]))
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        spec = None
    for root in list(spec.submodule_search_locations or []) if spec else []:
        folders.append(Path(root) / "Qt" / "plugins" / "platforms")
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        folders.append(Path(sys._MEIPASS) / "PySide6" / "Qt" / "plugins" / "platforms")
    for folder in folders:
        p = folder / "libqxcb.so"
        if p.is_file():
            return p
    return None


def missing_libraries(library: Path) -> Optional[list]:
    """Shared libraries `library` needs that the dynamic loader cannot find (via `ldd`), in the
    order ldd lists them; None when that cannot be told (no ldd, or it failed)."""
    env = {**os.environ, "LC_ALL": "C"}
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        # the packaged app's loader also searches its own folder (libraries bundled with it)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [sys._MEIPASS, env.get("LD_LIBRARY_PATH")]))
    try:
        r = subprocess.run(["ldd", str(library)], capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0 and "not found" not in r.stdout:
        return None
    missing = []
    for line in r.stdout.splitlines():
        m = _NOT_FOUND.match(line)
        if m and m.group(1) not in missing:
            missing.append(m.group(1))
    return missing


def _uses_xcb(env: Mapping[str, str]) -> bool:
    """Whether Qt will start on the xcb platform (the default on Linux outside Wayland sessions)."""
    wanted = (env.get("QT_QPA_PLATFORM") or "").strip()
    if wanted:
        return wanted.split(";")[0].split(":")[0].strip() == "xcb"
    return not env.get("WAYLAND_DISPLAY")  # in a Wayland session Qt may pick its wayland plugin


def window_problem(env: Mapping[str, str] = os.environ) -> Optional[str]:
    """Why the window cannot start here, in one line, or None when nothing is known to be wrong.

    Only the X11 (xcb) platform on Linux is checked: a missing display and libraries its plugin
    needs that are not installed.
    """
    if not sys.platform.startswith("linux") or not _uses_xcb(env):
        return None
    alternatives = ("or run it with QT_QPA_PLATFORM=wayland in a Wayland session "
                    "(QT_QPA_PLATFORM=offscreen starts it without a window, e.g. for tests)")
    plugin = xcb_plugin(env)
    missing = missing_libraries(plugin) if plugin is not None else None
    if missing and any(m.startswith(("libQt6", "libpyside6", "libshiboken6")) for m in missing):
        # Qt's own libraries, which PySide6 ships, do not resolve from here: this check cannot
        # judge that layout (Qt finds them its own way), so it leaves the verdict to Qt
        missing = None
    if missing:
        packages = []
        for m in missing:
            pkg = package_for(m) or m
            if pkg not in packages:
                packages.append(pkg)
        return (f"the window cannot start: Qt's X11 (xcb) platform plugin needs {', '.join(missing)}, "
                f"which this system lacks; on Debian/Ubuntu install them with "
                f"`sudo apt-get install {' '.join(packages)}`, {alternatives}")
    if not env.get("DISPLAY"):
        return ("the window cannot start: no X11 display (DISPLAY is not set); run it in a desktop "
                f"session, {alternatives}")
    return None
