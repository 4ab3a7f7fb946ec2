"""QA walk (session 45): the batch dialog and the main window's status bar, real widgets offscreen
(a tiny model; nothing of ours mocked):
- the batch progress bar counted the files passed over at the start (a note, outputs already there
  on a resume) as progress, at 66 % before any photo was edited; `fader-desktop batch` counts only
  the photos to edit;
- a corrupt photo failing right after them read "about 0 s left": an ETA from a failure's time;
- the summary said "1 of them was not edited: their faces …" and "1 file(s) that are not photos";
- a long status-bar message was cut off at the first label, mid-word, with no way to read the rest.
"""
from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPoint, Qt  # noqa: E402
from PySide6.QtGui import QColor, QHelpEvent, QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QToolTip  # noqa: E402

from fader_desktop.batch_dialog import BatchDialog  # noqa: E402
from fader_desktop.workers import qimage_to_numpy  # noqa: E402

from test_gui import shared_window  # noqa: E402,F401


def _run(dlg) -> list:
    """Start the dialog's batch; every (label, bar value, bar maximum) its progress window showed."""
    assert dlg.start()
    pd = dlg._progress
    shown = []
    set_label, set_value = pd.setLabelText, pd.setValue

    def label(text: str) -> None:       # the real calls are made; what they show is kept
        set_label(text)
        shown.append((pd.labelText(), pd.value(), pd.maximum()))

    def value(v: int) -> None:
        shown.append((pd.labelText(), v, pd.maximum()))
        set_value(v)   # (which may run the end of the run, and close the window)
    pd.setLabelText, pd.setValue = label, value
    deadline = time.monotonic() + 120
    while dlg.is_running() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.005)
    assert not dlg.is_running() and dlg.error is None, dlg.error
    return shown


def test_the_batch_bar_counts_the_photos_to_edit_and_a_failure_gives_no_eta(qtbot, tmp_path, portrait_path,
                                                                            tiny_model_path):
    """A resume with one output there and a note beside the photos, then a corrupt photo and two
    good ones: the bar stood at 2 of 5 (40 %) before any photo was edited, and the corrupt photo's
    quick failure read "3 of 5: a_corrupt.jpg — about 0 s left". The bar runs 0 .. 3 over the
    photos to edit, the label first says what was passed over, and no ETA comes before an edit."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for n in ("b.jpg", "c.jpg", "d.jpg"):
        shutil.copy(portrait_path, src / n)
    shutil.copy(portrait_path, out / "b.jpg")                # an earlier run's output
    (src / "a_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short by a failed download")
    (src / "notes.txt").write_text("shot on the 3rd\n")
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0})
    qtbot.addWidget(dlg)
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    dlg.skip_check.setChecked(True)
    shown = _run(dlg)
    c = dlg.report.counts()
    assert c["exists"] == 1 and c["ok"] == 2 and c["skipped"] == 2, c
    dlg.summary_box.close()

    labels = [t for t, _v, _m in shown]
    assert {m for _t, _v, m in shown} == {3}, shown                      # the bar's total: the photos to edit
    first = next(i for i, t in enumerate(labels) if "a_corrupt.jpg" in t)
    assert all(v <= 0 for _t, v, _m in shown[:first]), shown           # nothing on it before the first photo
    assert max(v for _t, v, _m in shown) == 3, shown
    # what was passed over is said before the first photo, in words
    said = [t for t in labels[:first] if "Passed over" in t]
    assert said == ["Passed over 2 files (1 output already there, 1 not a photo); 3 photos to edit"], labels
    # the failure gives no ETA; the first photo edited does
    assert {t for t in labels if "a_corrupt.jpg" in t} == {"1 of 3: a_corrupt.jpg"}, labels
    assert any(t.startswith("2 of 3: c.jpg — about ") and t.endswith(" s left") for t in labels), labels
    assert {t for t in labels if "d.jpg" in t} == {"3 of 3: d.jpg"}, labels


def _a_photo_and_a_note(qtbot, tmp_path, portrait_path, tiny_model_path, smiling: float) -> tuple:
    """The batch dialog set to edit a folder of one photo and a text note (Smiling at the value
    given) into tmp_path/out; (the dialog, the folder)."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(portrait_path, src / "a.jpg")
    (src / "notes.txt").write_text("shot on the 3rd\n")
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": smiling})
    qtbot.addWidget(dlg)
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(tmp_path / "out"))
    return dlg, src


def test_one_passed_over_file_is_named(qtbot, tmp_path, portrait_path, tiny_model_path):
    """Where one file is passed over, the label names it, as the progress window did before."""
    dlg, _src = _a_photo_and_a_note(qtbot, tmp_path, portrait_path, tiny_model_path, 2.0)
    labels = [t for t, _v, _m in _run(dlg)]
    dlg.summary_box.close()
    assert "Passed over notes.txt (not a photo); 1 photo to edit" in labels, labels
    assert labels[-1] == "1 of 1: a.jpg", labels


def test_the_batch_summary_says_one_in_the_singular(qtbot, tmp_path, portrait_path, tiny_model_path):
    """"1 of them was not edited: their faces already have the edit's values", "1 file(s) that are
    not photos were left alone": one is said in the singular, more in the plural. The tiny model
    reads the portrait as smiling, so Smiling 1 changes no face and Smiling 2 does."""
    from core.batch import BatchReport
    dlg, src = _a_photo_and_a_note(qtbot, tmp_path, portrait_path, tiny_model_path, 1.0)
    _run(dlg)
    unchanged = dlg.report
    head = dlg.summary_box.text()
    dlg.summary_box.close()
    assert "It was not edited: its face already has the edit's values (see details)." in head, head
    import re
    assert re.search(r" in \d+\.\d s\.", head), head   # QA walk: a quick run read "in 0 s"
    assert "1 file that is not a photo was left alone." in head, head

    shutil.copy(portrait_path, src / "b.jpg")
    (src / "more notes.txt").write_text("and the 4th\n")
    dlg.values = {"Smiling": 2.0}
    dlg.out_edit.setText(str(tmp_path / "out2"))
    _run(dlg)
    edited = dlg.report
    head = dlg.summary_box.text()
    dlg.summary_box.close()
    assert "2 files that are not photos were left alone." in head, head
    # one photo of two left as it was (the two runs' photos taken together)
    b = next(it for it in edited.items if it.relative == "b.jpg")
    both = BatchReport(str(src), str(tmp_path / "out"), [unchanged.items[0], b], seconds=1.0)
    head, _details = dlg.summary_text(both)
    assert "1 of them was not edited: its face already has the edit's values" in head, head


def _message_area(w):
    """Where the status bar draws its message: from its left margin to the first label shown."""
    shown = [x for x in (w.busy_bar, w.faces_label, w.render_label, w.zoom_label, w.model_label) if x.isVisible()]
    return 6, min(x.geometry().x() for x in shown) - 2


def test_a_long_status_message_ends_in_an_ellipsis_and_shows_whole_in_a_tooltip(shared_window, qtbot):
    """An export's message in a narrow window ended "… (a JPEG export canno", cut off at the first
    label: it now ends in "…" where it is cut, and hovering it shows the whole message."""
    w = shared_window
    sb = w.statusBar()
    text = ("Exported /home/user/Pictures/holiday/z.gif.jpg — not all of the photo kept: transparency "
            "(a JPEG export cannot hold it; the photo is flattened over white)")
    w.resize(640, 480)
    try:
        sb.showMessage(text)
        qtbot.waitUntil(lambda: w.model_label.isHidden(), timeout=2000)   # the labels step aside first
        qtbot.wait(50)       # the status bar's layout
        left, right = _message_area(w)
        fm = sb.fontMetrics()
        assert fm.horizontalAdvance(text) > right - left                  # still too long for the window
        shot = sb.grab().toImage()
        # what a bar shows that ends the message in "…" where it is cut: the same text, elided, drawn
        # as QStatusBar draws a message that fits
        expected = QImage(shot.size(), shot.format())
        expected.setDevicePixelRatio(shot.devicePixelRatio())
        expected.fill(QColor(shot.pixel(1, 1)))
        p = QPainter(expected)
        p.setFont(sb.font())
        p.setPen(sb.palette().windowText().color())
        elided = fm.elidedText(text, Qt.TextElideMode.ElideRight, right - left)
        assert elided.endswith("…")
        p.drawText(left, 0, right - left, sb.height(), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
                   | Qt.TextFlag.TextSingleLine, elided)
        p.end()
        got, want = qimage_to_numpy(shot)[:, left:right], qimage_to_numpy(expected)[:, left:right]
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 8, "the message is not drawn elided"

        # hovering it shows it whole
        at = QPoint(left + 40, sb.height() // 2)
        QApplication.sendEvent(sb, QHelpEvent(QEvent.Type.ToolTip, at, sb.mapToGlobal(at)))
        assert QToolTip.isVisible() and QToolTip.text() == text, QToolTip.text()
        QToolTip.hideText()
        qtbot.waitUntil(lambda: not QToolTip.isVisible(), timeout=2000)
        # a message that fits has no tooltip
        sb.showMessage("Exported z.jpg")
        qtbot.wait(50)
        QApplication.sendEvent(sb, QHelpEvent(QEvent.Type.ToolTip, at, sb.mapToGlobal(at)))
        assert not (QToolTip.isVisible() and QToolTip.text()), QToolTip.text()
    finally:
        QToolTip.hideText()
        sb.clearMessage()
        w.resize(1100, 760)
