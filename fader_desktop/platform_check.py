"""Before Qt starts the window: can its X11 (xcb) platform plugin load on this machine?

Qt aborts with a core dump when the xcb plugin's shared libraries are missing (on a fresh
Debian/Ubuntu desktop: libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, …), after a message that
does not say which package to install. This module finds the plugin PySide6 ships, asks the
dynamic loader (`ldd`) which of its libraries are missing, and turns that into one line naming the
Debian/Ubuntu packages and the alternatives. It imports nothing from Qt.

Qt aborts the same way when DISPLAY names an X server it cannot reach (none runs there, or it
refuses this user), after the same misleading hint; the display is tried with the libxcb the plugin
loads, and a failure is one line too.
"""
from __future__ import annotations

import ctypes
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
# the path may hold spaces (a packaged app under "/opt/Fader Desktop/"): it runs up to the address
_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+(/.*?)\s+\(0x[0-9a-fA-F]+\)\s*$")
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


def resolved_libraries(library: Path) -> Optional[dict]:
    """{soname: path} of the shared libraries `library` needs, as the dynamic loader resolves them
    (via `ldd`; None as the path where it cannot find one), in the order ldd lists them; None when
    that cannot be told (no ldd, or it failed)."""
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
    return parse_ldd(r.stdout)


def parse_ldd(text: str) -> dict:
    """{soname: path, or None where "not found"} from `ldd`'s output (LC_ALL=C), in its order."""
    libraries: dict = {}
    for line in text.splitlines():
        m = _NOT_FOUND.match(line)
        if m:
            libraries.setdefault(m.group(1), None)
            continue
        m = _FOUND.match(line)
        if m:
            libraries.setdefault(m.group(1), Path(m.group(2)))
    return libraries


def _missing(libraries: Optional[dict]) -> Optional[list]:
    return None if libraries is None else [name for name, path in libraries.items() if path is None]


def missing_libraries(library: Path) -> Optional[list]:
    """Shared libraries `library` needs that the dynamic loader cannot find (via `ldd`), in the
    order ldd lists them; None when that cannot be told (no ldd, or it failed)."""
    return _missing(resolved_libraries(library))


# xcb_connection_has_error's codes (xcb.h) that say more than "the connection failed"
_XCB_PARSE_ERROR, _XCB_INVALID_SCREEN = 5, 6


def connect_error(display: str, libxcb: Path) -> Optional[tuple]:
    """Try the X server `display` names with `libxcb` (the one the xcb plugin loads), as Qt will:
    (0, "") when it accepts a connection, else (xcb's error code, the server's reason): 1 with a
    reason where a server refused this user (xauth), 1 without one where none answered, 5 for no
    display name, 6 for no such screen. None when this cannot be told."""
    try:
        xcb = ctypes.CDLL(str(libxcb))
        xcb.xcb_connect.restype = ctypes.c_void_p
        xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        xcb.xcb_connection_has_error.restype = ctypes.c_int
        xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
        xcb.xcb_disconnect.restype = None
        xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    screen = ctypes.c_int(0)   # asked for, as Qt does: only then does xcb check the screen number
    # libxcb writes a refusing server's reason straight to file descriptor 2 ("Authorization
    # required, …"): caught there, it goes into the one line instead of above it. A pipe, not a
    # temporary file: it needs no writable folder (a TemporaryFile failing there crashed startup);
    # its writing end does not block, so a reason longer than the pipe holds is cut, never waited on
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:   # no stderr at all (started detached): nothing to catch
        saved = None
    read_end = None
    if saved is not None:
        try:
            read_end, write_end = os.pipe()
        except OSError:   # no file descriptors left: the reason goes to stderr as xcb writes it
            os.close(saved)
            saved = None
    try:
        if saved is not None:
            os.set_blocking(write_end, False)
            os.dup2(write_end, 2)
            os.close(write_end)
        connection = xcb.xcb_connect(display.encode(), ctypes.byref(screen))
    finally:
        if saved is not None:
            os.dup2(saved, 2)   # also closes the pipe's last writing end: the read below ends
            os.close(saved)
    reason = ""
    if read_end is not None:
        with open(read_end, "rb") as pipe:
            reason = " ".join(pipe.read(2000).decode("utf-8", "replace").split())
    if not connection:
        return None
    try:
        return int(xcb.xcb_connection_has_error(connection)), reason
    finally:
        xcb.xcb_disconnect(connection)   # also on the error connection xcb hands back: a no-op there


def _uses_xcb(env: Mapping[str, str]) -> bool:
    """Whether Qt will start on the xcb platform (the default on Linux outside Wayland sessions)."""
    wanted = (env.get("QT_QPA_PLATFORM") or "").strip()
    if wanted:
        return wanted.split(";")[0].split(":")[0].strip() == "xcb"
    return not env.get("WAYLAND_DISPLAY")  # in a Wayland session Qt may pick its wayland plugin


def _xcb_only(env: Mapping[str, str]) -> bool:
    """Whether Qt has nothing to fall back on where xcb cannot connect: QT_QPA_PLATFORM=xcb;offscreen
    (a list) goes on with the next platform."""
    wanted = [w for w in (env.get("QT_QPA_PLATFORM") or "").split(";") if w.strip()]
    return len(wanted) <= 1


def window_problem(env: Mapping[str, str] = os.environ) -> Optional[str]:
    """Why the window cannot start here, in one line, or None when nothing is known to be wrong.

    Only the X11 (xcb) platform on Linux is checked: libraries its plugin needs that are not
    installed, and a display that is not set or cannot be reached (unless QT_QPA_PLATFORM lists a
    platform to fall back on).
    """
    if not sys.platform.startswith("linux") or not _uses_xcb(env):
        return None
    alternatives = ("or run it with QT_QPA_PLATFORM=wayland in a Wayland session "
                    "(QT_QPA_PLATFORM=offscreen starts it without a window, e.g. for tests)")
    plugin = xcb_plugin(env)
    libraries = resolved_libraries(plugin) if plugin is not None else None
    missing = _missing(libraries)
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
    if not _xcb_only(env):
        return None
    display = env.get("DISPLAY")
    if not display:
        return ("the window cannot start: no X11 display (DISPLAY is not set); run it in a desktop "
                f"session, {alternatives}")
    # Qt aborts where it cannot connect; the libxcb its plugin loads tells first (~1 ms locally)
    libxcb = (libraries or {}).get("libxcb.so.1")
    tried = connect_error(display, libxcb) if libxcb is not None else None
    error, reason = tried if tried is not None else (0, "")   # untold: left to Qt
    if error == _XCB_PARSE_ERROR:
        return (f"the window cannot start: DISPLAY={display} is not an X11 display name (such as :0 or "
                f"host:0); run it in a desktop session, {alternatives}")
    if error == _XCB_INVALID_SCREEN:
        return (f"the window cannot start: the X11 display {display} has no such screen; "
                f"run it in a desktop session, {alternatives}")
    if error and reason:
        return (f"the window cannot start: the X server of display {display} (from DISPLAY) does not let "
                f"this user in ({reason.rstrip('.')}); see `xauth list` and XAUTHORITY, run it in the "
                f"desktop session's own terminal, {alternatives}")
    if error:
        return (f"the window cannot start: the X11 display {display} (from DISPLAY) cannot be reached: "
                f"no X server answers there; run it in a desktop session, {alternatives}")
    return None
