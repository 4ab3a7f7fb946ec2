"""QA (seen under X11): the Export dialog's notes ("⚠ This export does not keep all of the photo: …",
"Fader Desktop does not write GIF files: …") sat in blank bands 14 to 56 px tall. A QFormLayout row
without a label widget keeps its field's sizeHint height, a word-wrapped QLabel's laid out 4-6
lines narrow, as a floor under the height for the width it gets: a 2-line note was centred in a
70-84 px row. The gaps between the rows' widgets stayed 6 px (what an earlier look measured), the
band was inside the note; it shows offscreen as under X11, so this runs on any platform. And a
note whose text changed while shown (JPEG's two losses, then WebP's one) kept its height: lines
cut off, or blank under the text.

Driven as a user meets it: the real window, a transparent 16-bit PNG open, Ctrl+E, then names typed and a
format chosen; the dialog's own pixels are looked at in each state.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from fader_desktop.dialogs import ExportDialog  # noqa: E402
from fader_desktop.workers import qimage_to_numpy  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401


def blank_bands(d: ExportDialog) -> tuple:
    """The tallest run of pixel rows of the dialog's background between its first and last drawn
    rows, where it starts, and the blank rows under the last drawn one (its bottom margin)."""
    a = qimage_to_numpy(d.grab().toImage()).astype(int)
    blank = (np.abs(a - a[0, a.shape[1] // 2]).sum(axis=2) == 0).all(axis=1)
    drawn = np.flatnonzero(~blank)
    top, bottom = drawn[0], drawn[-1]
    best, start, run_start = (0, 0), None, None
    for y in range(top, bottom + 1):
        if blank[y] and run_start is None:
            run_start = y
        elif not blank[y] and run_start is not None:
            best = max(best, (y - run_start, run_start))
            run_start = None
    return best[0], best[1], int(len(blank) - 1 - bottom)


def rows(d: ExportDialog) -> list:
    """(name, top, height, height of its text) of each row shown; the text's only for the notes."""
    out = []
    for name, w in (("file", d.path_edit), ("format", d.format_combo), ("quality", d.quality_spin),
                    ("metadata", d.exif_check), ("loss note", d.loss_note), ("name note", d.name_note),
                    ("buttons", d.export_button)):
        if w.isVisibleTo(d):
            text = w.heightForWidth(w.width()) if w in (d.loss_note, d.name_note) else None
            out.append((name, w.mapTo(d, w.rect().topLeft()).y(), w.height(), text))
    return out


def open_deep_png(w, qtbot, tmp_path) -> None:
    """Open a 16-bit PNG with transparency in the window, its export format JPEG: JPEG keeps
    neither (a two-line note at the dialog's first width), WebP the transparency (a shorter note)."""
    import cv2
    y, x = np.mgrid[0:48, 0:64]
    deep = np.dstack([x * 4, y * 4, x + y, 128 + x]).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(tmp_path / "deep.png")
    qtbot.waitUntil(lambda: not w._busy, timeout=TIMEOUT)
    w.settings.export_format = "jpg"   # the shared window's last export may have been another format


def settle() -> None:
    """A few turns of the event loop: the dialog's layout follows what was just changed."""
    for _ in range(5):
        QApplication.processEvents()


def walk_the_export_dialog(w, qtbot, tmp_path, walk) -> tuple:
    """Open the 16-bit transparent PNG (open_deep_png), then the Export dialog (Ctrl+E's action);
    once it shows, walk(d), and then, also if walk failed, close it. (Its form's vertical spacing,
    its bottom margin, its line height, its minimum width), as the dialog had them at the end."""
    open_deep_png(w, qtbot, tmp_path)
    done = []

    def wait_for_it():
        d = QApplication.activeModalWidget()
        if not isinstance(d, ExportDialog):
            QTimer.singleShot(20, wait_for_it)
            return
        try:
            walk(d)
        finally:
            form = d.layout().itemAt(0).layout()
            done.append((form.verticalSpacing(), d.layout().contentsMargins().bottom(), d.fontMetrics().height(),
                         d.minimumWidth()))
            d.reject()
    QTimer.singleShot(20, wait_for_it)
    w.act_export.trigger()
    assert done, "the Export dialog did not open"
    return done[0]


def test_the_export_dialog_notes_sit_in_no_blank_band(editor, qtbot, tmp_path):
    seen = {}

    def look_at(d, state):
        settle()
        notes = tuple(n.isVisibleTo(d) for n in (d.loss_note, d.name_note))
        seen[state] = (notes, blank_bands(d), d.width(), rows(d))

    def walk(d):
        look_at(d, "opened (JPEG of a 16-bit transparent photo)")
        for name in ("deep_edited.gif", "deep_edited.png", "deep_edited.heic", "deep_edited.jpg",
                     "deep_edited.webp"):
            d.path_edit.selectAll()
            qtbot.keyClicks(d.path_edit, str(tmp_path / name))
            look_at(d, f"typed {name}")
        d.format_combo.setCurrentIndex(d.format_combo.findData(".png"))
        look_at(d, "PNG chosen")
    spacing, margin, line, _narrowest = walk_the_export_dialog(editor, qtbot, tmp_path, walk)
    # the states walked show each note alone, both, and none
    assert {notes for notes, *_ in seen.values()} == {(True, False), (True, True), (False, False), (False, True)}, \
        seen
    # the widest blank between two rows is the layout's spacing and the text's own leading
    # (9 px here); a blank half a line taller is a band a user sees
    limit = spacing + line // 2
    for state, (_notes, (band, at, below), width, shown) in seen.items():
        assert band <= limit, f"{state}: a blank band of {band} px at y={at} (rows: {shown})"
        assert below <= margin + 2, f"{state}: {below} px blank under the buttons, the margin is {margin}"
        for name, _top, height, text in shown:
            assert text is None or height == text, f"{state}: the {name} is {height} px tall for {text} px of text"
    # grown and shrunk to the notes, never wider or narrower
    assert len({width for *_, width, _shown in seen.values()}) == 1, seen
