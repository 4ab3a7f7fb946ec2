"""The run folder's lock: one fader-train run at a time per RUN_DIR."""
from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import Optional

from core.errors import FaderError

LOCK_NAME = ".fader-train.lock"


class RunLock:
    """An exclusive lock on a run folder (flock on RUN_DIR/.fader-train.lock) for as long as a run
    uses it: a second fader-train on the same folder gets a clear error instead of writing over
    the first's checkpoint and log. The kernel drops the lock when the process ends, also on kill -9."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise FaderError(f"{self.path.parent}: cannot use as run folder ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                who = os.read(fd, 200).decode(errors="replace").strip()
            except OSError:
                who = ""
            os.close(fd)
            raise FaderError(f"{self.path.parent}: in use by another fader-train run ({who or 'unknown process'}); "
                             "wait for it to end, or stop it, or give another --out") from None
        except OSError as e:
            os.close(fd)
            raise FaderError(f"{self.path}: cannot lock the run folder ({e.strerror or e})") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError:
            pass  # the note is informational; the lock itself is held
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing drops the flock
            self._fd = None
