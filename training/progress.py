"""How the command-line progress bars of training redraw: often on a terminal, rarely into a log.

tqdm writes a line per redraw when stderr is a file (a log of a long run, the window's training
dialog reading the pipe), so there a bar redraws every `log_seconds` instead of twice a second.
"""
from __future__ import annotations

import sys


def stderr_is_terminal() -> bool:
    """Whether stderr is an interactive terminal (False when it is closed or replaced)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def redraw_interval(log_seconds: float) -> float:
    """tqdm's `mininterval`: 0.5 s on a terminal, `log_seconds` otherwise."""
    return 0.5 if stderr_is_terminal() else log_seconds
