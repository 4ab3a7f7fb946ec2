"""Persistent preferences (QSettings): device, last model, window layout, recent photos and models, export and batch options.

One small typed wrapper so that key names and defaults live in one place; tests pass their own
QSettings (an INI file in a temporary folder) so they never touch the user's preferences.

A change is written once the event that made it is handled (as QSettings itself would), and the
first save that fails (a disk that filled since start) is told to `on_unsaved` with the system's
reason, once: the window says it in its status bar. `unsaved_reason()` finds out at start.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QByteArray, QCoreApplication, QSettings, QTimer

log = logging.getLogger("fader_desktop")

ORGANIZATION = "FaderDesktop"
APPLICATION = "Fader Desktop"
MAX_RECENT = 10
DEVICES = ("auto", "cpu", "cuda")
# the suffixes the app writes (core.image_io.SAVE_FORMATS, not imported: it loads Pillow), "jpeg" as
# "jpg"; the remembered format was held to the first three, so the export after a TIFF one proposed a JPEG
EXPORT_SUFFIXES = ("jpg", "png", "webp", "tif", "tiff", "bmp")
_PROBE_KEY = "fader_desktop_write_probe"


def _as_list(value) -> list:
    # QSettings returns a str for a one-element list on some backends and None for an empty one.
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def _as_bool(value, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def _write_error(path: str) -> str | None:
    """Why a file of the size of `path` cannot be written beside it ("No space left on device"), or
    None where it can now or `path` is no file (the registry, a plist): QSettings says only that
    writing failed."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        return None
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".fader-desktop-probe-")
    except OSError as e:
        return e.strerror or str(e)
    try:
        with open(fd, "wb") as f:
            f.write(b"\0" * (size + 4096))
    except OSError as e:
        return e.strerror or str(e)
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass
    return None


def _same_entry(a: str, b: str) -> bool:
    """Whether two remembered paths are one file: the same string, the same under the platform's
    case rule (Windows), or one existing file under two names (other case on macOS, a hard link)."""
    from core.atomic_write import same_file
    return a == b or os.path.normcase(a) == os.path.normcase(b) or same_file(a, b)


class Settings:
    """Typed access to the application's QSettings."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings()
        # told why, the first time a save fails since start (not again, nor after unsaved_reason said it)
        self.on_unsaved: Optional[Callable[[str], None]] = None
        self._failure_said = False
        self._save_due = False

    def unsaved_reason(self) -> str | None:
        """Why what the window remembers (recent files, its size, the last model) will not be kept:
        the settings file cannot be written (a read-only or missing folder) or writing it failed (a
        full disk); None where it is saved. Writes the settings to find out."""
        if self.q.isWritable() and self.q.status() == QSettings.Status.NoError:
            # sync() writes nothing when nothing changed (a key set and removed unsaved is no change),
            # and a writable folder says nothing of the space in it: write the file with a key, then without
            self.q.setValue(_PROBE_KEY, 1)
            self.q.sync()
            self.q.remove(_PROBE_KEY)
            self.q.sync()
        reason = self._failure()
        if reason:
            self._failure_said = True   # the caller says it: a later failed save is not said again
        return reason

    def _failure(self) -> str | None:
        """Why the last save failed or will fail, None where none did. Qt keeps the first error: a save
        that failed since start is reported too."""
        if not self.q.isWritable():
            return (f"settings cannot be saved ({self.q.fileName()} is not writable): recent files, the "
                    "window's size and the last model will not be remembered")
        if self.q.status() != QSettings.Status.AccessError:
            return None
        cause = _write_error(self.q.fileName())
        return (f"settings cannot be saved (writing {self.q.fileName()} failed{': ' + cause if cause else ''}): "
                "recent files, the window's size and the last model will not be remembered")

    def _set(self, key: str, value) -> None:
        self.q.setValue(key, value)
        if self._save_due:
            return
        self._save_due = True
        # once the event that made the change is handled, as QSettings itself saves: several changes
        # are one write, and what is said comes after the message that event showed ("Opened …")
        if QCoreApplication.instance() is not None:
            QTimer.singleShot(0, self.sync)
        else:
            self.sync()

    # -- device / model ------------------------------------------------------------------------
    @property
    def device(self) -> str:
        d = str(self.q.value("device", "auto") or "auto").lower()
        return d if d in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._set("device", value)

    @property
    def last_model(self) -> str | None:
        v = self.q.value("model/last")
        return str(v) if v else None

    @last_model.setter
    def last_model(self, path) -> None:
        self._set("model/last", str(path) if path else "")

    # -- recent photos and models --------------------------------------------------------------
    # File ▸ Open Recent lists photos under "recent/files", File ▸ Recent Models models under
    # "recent/models": the newest first, each path once, at most MAX_RECENT
    def recent_files(self) -> list[str]:
        return self._recent("recent/files")

    def add_recent(self, path) -> None:
        self._push_recent("recent/files", path)

    def remove_recent(self, path) -> None:
        self._drop_recent("recent/files", path)

    def clear_recent(self) -> None:
        self._set("recent/files", [])

    def recent_models(self) -> list[str]:
        return self._recent("recent/models")

    def add_recent_model(self, path) -> None:
        self._push_recent("recent/models", path)

    def remove_recent_model(self, path) -> None:
        self._drop_recent("recent/models", path)

    def clear_recent_models(self) -> None:
        self._set("recent/models", [])

    def _recent(self, key: str) -> list[str]:
        return _as_list(self.q.value(key))[:MAX_RECENT]

    def _push_recent(self, key: str, path) -> None:
        p = str(Path(path).resolve())
        self._set(key, [p] + [f for f in self._recent(key) if not _same_entry(f, p)][:MAX_RECENT - 1])

    def _drop_recent(self, key: str, path) -> None:
        self._set(key, [f for f in self._recent(key) if not _same_entry(f, str(path))])

    @property
    def last_dir(self) -> str:
        return str(self.q.value("dirs/open", "") or "")

    @last_dir.setter
    def last_dir(self, folder) -> None:
        self._set("dirs/open", str(folder))

    @property
    def export_dir(self) -> str:
        return str(self.q.value("dirs/export", "") or "")

    @export_dir.setter
    def export_dir(self, folder) -> None:
        self._set("dirs/export", str(folder))

    # -- export --------------------------------------------------------------------------------
    def _quality(self, key: str) -> int:
        """A stored JPEG/WebP quality, 1..100 (95 when missing or not a number)."""
        try:
            return max(1, min(100, int(self.q.value(key, 95))))
        except (TypeError, ValueError):
            return 95

    @property
    def export_quality(self) -> int:
        return self._quality("export/quality")

    @export_quality.setter
    def export_quality(self, q: int) -> None:
        self._set("export/quality", int(q))

    @property
    def keep_exif(self) -> bool:
        return _as_bool(self.q.value("export/keep_exif"), True)

    @keep_exif.setter
    def keep_exif(self, on: bool) -> None:
        self._set("export/keep_exif", bool(on))

    @property
    def export_format(self) -> str:
        """The suffix (no dot) of the last export: "jpg", "png", "webp", "tif", "tiff" or "bmp"."""
        f = str(self.q.value("export/format", "jpg") or "jpg")
        return f if f in EXPORT_SUFFIXES else "jpg"

    @export_format.setter
    def export_format(self, f: str) -> None:
        self._set("export/format", f)

    # -- batch export (the dialog's last-used choices) ----------------------------------------
    @property
    def batch_in_dir(self) -> str:
        return str(self.q.value("batch/in_dir", "") or "")

    @batch_in_dir.setter
    def batch_in_dir(self, folder) -> None:
        self._set("batch/in_dir", str(folder))

    @property
    def batch_out_dir(self) -> str:
        return str(self.q.value("batch/out_dir", "") or "")

    @batch_out_dir.setter
    def batch_out_dir(self, folder) -> None:
        self._set("batch/out_dir", str(folder))

    @property
    def batch_format(self) -> str:
        """"png", "jpg", "webp", "tif", "bmp" or "" (the same as each input)."""
        f = str(self.q.value("batch/format", "") or "")
        return f if f in ("png", "jpg", "webp", "tif", "bmp") else ""   # batch_dialog.FORMATS

    @batch_format.setter
    def batch_format(self, f) -> None:
        self._set("batch/format", f or "")

    @property
    def batch_quality(self) -> int:
        return self._quality("batch/quality")

    @batch_quality.setter
    def batch_quality(self, q: int) -> None:
        self._set("batch/quality", int(q))

    # -- view / window -------------------------------------------------------------------------
    @property
    def show_boxes(self) -> bool:
        return _as_bool(self.q.value("view/face_boxes"), True)

    @show_boxes.setter
    def show_boxes(self, on: bool) -> None:
        self._set("view/face_boxes", bool(on))

    def geometry(self) -> QByteArray | None:
        v = self.q.value("window/geometry")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        v = self.q.value("window/state")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._set("window/geometry", geometry)
        self._set("window/state", state)

    def sync(self) -> None:
        """Write the settings now. The first time that fails, why goes to the log and to on_unsaved."""
        self._save_due = False
        self.q.sync()
        if self._failure_said:
            return
        reason = self._failure()
        if reason is None:
            return
        self._failure_said = True
        log.warning("%s", reason)
        if self.on_unsaved is not None:
            self.on_unsaved(reason)
