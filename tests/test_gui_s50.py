"""Session 50's window checks: the training window's process count reads as words."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from fader_desktop.training_dialog import TrainingDialog  # noqa: E402


def test_the_process_count_says_process_or_processes_not_process_es(qtbot):
    """The field read "1 process(es)": every other count the app shows is in words."""
    d = TrainingDialog()
    qtbot.addWidget(d)
    spin = d.procs_spin
    assert spin.text() == "1 process", spin.text()
    spin.setValue(2)
    assert spin.text() == "2 processes", spin.text()
    spin.setValue(1)
    assert spin.text() == "1 process", spin.text()
