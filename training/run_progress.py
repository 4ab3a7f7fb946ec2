"""What a running fader-train has written so far: new log.jsonl records and a newer preview.

Qt-free: the window's training dialog polls a run folder with it on a background thread (the log
of a long run and the preview PNG are read there, not on the GUI thread).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

LOG_NAME = "log.jsonl"
PREVIEW_NAME = "preview_latest.png"


@dataclass
class RunNews:
    """What changed in the run folder since the last poll."""

    records: list = field(default_factory=list)   # new log.jsonl records (dicts), in order
    restarted: bool = False                      # the log was rewritten (a resumed run): forget the old records
    preview: object = None                       # the newer preview, as `decode` made it; None: no newer one


class RunWatcher:
    """Reads a run folder incrementally. Not thread-safe: poll from one thread."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self._log_pos = 0
        self._preview_mtime = 0.0

    def poll(self, decode: Callable[[bytes], Optional[object]] = lambda data: data) -> RunNews:
        """The complete log lines written since the last poll, and the preview when it changed.

        `decode` turns the preview file's bytes into what the caller shows; a file it cannot
        decode (None) is read again next time.
        """
        news = RunNews()
        try:
            with open(self.run_dir / LOG_NAME, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < self._log_pos:   # a resumed run rewrote the log: read it again
                    self._log_pos, news.restarted = 0, True
                f.seek(self._log_pos)
                chunk = f.read()
        except OSError:
            chunk = b""
        end = chunk.rfind(b"\n") + 1   # only complete lines; the rest is read next time
        if end:
            self._log_pos += end
            for line in chunk[:end].splitlines():
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(rec, dict):
                    news.records.append(rec)
        prev = self.run_dir / PREVIEW_NAME
        try:
            mtime = prev.stat().st_mtime
        except OSError:
            mtime = 0.0
        if mtime and mtime != self._preview_mtime:
            try:
                data = prev.read_bytes()
            except OSError:
                data = None
            image = decode(data) if data else None
            if image is not None:
                self._preview_mtime = mtime
                news.preview = image
        return news
