"""The command-line progress of training: a redrawn bar on a terminal, plain lines into a log.

A tqdm bar redraws in place with carriage returns, which turn a log of a long run (`nohup
fader-train … > log`) into one unreadable line. Where stderr is not a terminal the same line is
written as a line of its own every so often instead; the window's training dialog, which reads
the trainer's stderr through a pipe, parses those lines as it parsed the bar's, and moves its bar
and count by them (so they also come as the count moves on, not only every half minute).
"""
from __future__ import annotations

import sys
import time


def stderr_is_terminal() -> bool:
    """Whether stderr is an interactive terminal (False when it is closed or replaced)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(total: int, desc: str, unit: str, initial: int = 0, log_seconds: float = 30.0, **tqdm_options):
    """A tqdm bar on a terminal; elsewhere a `LogProgress` writing a line every `log_seconds` and
    each time the count moves on by MOVE_FRACTION of the total (at most one a second).
    Both take update(n), set_postfix(**kw), set_postfix_str(s), write(s) and close()."""
    if stderr_is_terminal():
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True, mininterval=0.5,
                    **tqdm_options)
    return LogProgress(total, desc, unit, initial, log_seconds)


#: The shortest time between two lines that new losses (set_postfix) ask for.
REFRESH_SECONDS = 5.0
#: A line also each time the count has moved on by this share of the total: the training dialog's
#: bar and count move by these lines, and one every 30 s left "Preprocessing 128px: 0 of 200
#: images" on show for the whole 17 s it took (and "Classifier: step 0 of 20" for 7 s). At most
#: 100 such lines per bar, so that a log file of a long run is not flooded:
MOVE_FRACTION = 0.01
#: and never more than one a second (a fast bar would write one per image or step).
MIN_GAP_SECONDS = 1.0


class LogProgress:
    """The bar's line (count, elapsed<left, rate, postfix: the losses) as a line of its own on
    stderr: at the start, every `interval` seconds as the count moves, each time it has moved on by
    MOVE_FRACTION of the total (at most one every MIN_GAP_SECONDS), and at the end."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, interval: float = 30.0):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.n = self.initial = initial
        self.postfix = ""
        self._file = sys.stderr   # as tqdm: the stream of the moment the bar starts
        self._t0 = self._t_line = time.monotonic()
        self._n_line = initial
        self._shown = None
        self._closed = False
        self._line(None)

    def update(self, n: int = 1) -> None:
        self.n += n
        moved = self.total and self.n - self._n_line >= self.total * MOVE_FRACTION
        self._line_after(min(self.interval, MIN_GAP_SECONDS) if moved else self.interval)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)
        self._refresh(refresh)

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())
        self._refresh(refresh)

    def _refresh(self, asked: bool) -> None:
        # New losses (the trainer's every --log-every steps) are a line of their own, as the bar's
        # forced redraw was: the window's training dialog moves its step counter by them. At most
        # one every REFRESH_SECONDS, so that a fast GPU run's log stays readable.
        if asked:
            self._line_after(REFRESH_SECONDS)

    def _line_after(self, gap: float) -> None:
        """A line if `gap` seconds have passed since the last one, with the rate since then: the
        estimate of the time left follows the current speed."""
        now = time.monotonic()
        if now - self._t_line >= gap:
            self._line((self.n - self._n_line) / max(1e-9, now - self._t_line))

    @staticmethod
    def write(s: str, file=None, end: str = "\n") -> None:
        """A message, to stdout unless `file` says otherwise (as tqdm.write)."""
        fp = file if file is not None else sys.stdout
        if fp is None:   # pythonw and windowed builds run without a console
            return
        fp.write(s + end)
        fp.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._shown != (self.n, self.postfix):
                self._line(None)   # the average rate over the whole run

    def _line(self, rate) -> None:
        from tqdm import tqdm
        now = time.monotonic()
        text = tqdm.format_meter(self.n, self.total, now - self._t0, prefix=self.desc, ascii=True, unit=self.unit,
                                 rate=rate, postfix=self.postfix or None, initial=self.initial)
        try:
            self._file.write(text + "\n")
            self._file.flush()
        except (OSError, ValueError, AttributeError):
            pass   # a closed or vanished log, or none at all (pythonw: stderr is None), must not stop the training
        self._t_line, self._n_line, self._shown = now, self.n, (self.n, self.postfix)
