"""Two window defects a QA walk found (session 44), driven as a user meets them (the real
MainWindow, the tiny test model; nothing of ours is mocked):

- the Export dialog dragged wider kept its height while its word-wrapped notes got shorter: a
  blank band (34-48 px offscreen) opened above its buttons;
- a photo opened zoomed out was first painted as Qt scales it, then 0.2-0.3 s later (at 48 MP) as
  the worker's area-averaged render: a jump of 1-3 levels over much of the photo, a flicker.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication  # noqa: E402

from fader_desktop.workers import qimage_to_numpy  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401
from test_gui_export_dialog_layout import blank_bands, rows, settle, walk_the_export_dialog  # noqa: E402


# -- 1. the Export dialog widened or narrowed keeps no blank band ------------------------------------

def test_the_export_dialog_dragged_wider_or_narrower_has_no_blank_band_above_its_buttons(editor, qtbot, tmp_path):
    seen, opened_width = {}, []

    def look_at(d, state):
        settle()
        seen[state] = (blank_bands(d), d.width(), d.height(), rows(d))

    def drag_to(d, width):
        # a drag of the dialog's right edge: a run of resizes that keep the height it has
        for step in np.linspace(d.width(), width, 4)[1:]:
            d.resize(int(step), d.height())
            QApplication.processEvents()

    def walk(d):
        d.path_edit.selectAll()
        qtbot.keyClicks(d.path_edit, str(tmp_path / "deep_edited.gif"))   # both notes
        look_at(d, "as opened")
        first = d.width()
        opened_width.append(first)
        drag_to(d, 2 * first)
        look_at(d, "dragged twice as wide")
        drag_to(d, d.minimumWidth())
        look_at(d, "dragged to its narrowest")
        drag_to(d, first + 150)
        look_at(d, "dragged a little wider")
        d.path_edit.selectAll()
        qtbot.keyClicks(d.path_edit, str(tmp_path / "deep_edited.jpg"))   # one note, then none
        look_at(d, "one note, wider")
        d.format_combo.setCurrentIndex(d.format_combo.findData(".png"))
        look_at(d, "no note, wider")
        drag_to(d, d.minimumWidth())
        look_at(d, "no note, narrowest")
    spacing, margin, line, narrowest = walk_the_export_dialog(editor, qtbot, tmp_path, walk)
    first = opened_width[0]
    limit = spacing + line // 2   # as test_gui_export_dialog_layout: the spacing and the text's leading
    for state, ((band, at, below), _width, height, shown) in seen.items():
        assert band <= limit, f"{state}: a blank band of {band} px at y={at} above the buttons (rows: {shown})"
        assert below <= margin + 2, f"{state}: {below} px blank under the buttons, the margin is {margin}"
        for name, _top, h, text in shown:
            assert text is None or h == text, f"{state}: the {name} is {h} px tall for {text} px of text"
    # the width is the user's: the dialog follows it, never fights it
    widths = {state: width for state, (_b, width, _h, _s) in seen.items()}
    assert widths["dragged twice as wide"] == 2 * first and widths["dragged to its narrowest"] == narrowest
    # the notes took fewer lines wider: the dialog got shorter with them, and taller again narrow
    heights = {state: h for state, (_b, _w, h, _s) in seen.items()}
    assert heights["dragged twice as wide"] < heights["as opened"] <= heights["dragged to its narrowest"], heights


# -- 2. the first frame of a photo opened zoomed out is the one it keeps ------------------------------

def test_a_photo_opened_zoomed_out_is_first_painted_as_it_stays(editor, qtbot, tmp_path, tiny_model_path):
    """The first paint after opening (as the screen gets it) is the area-averaged render the view
    settles on, to the level; also after a switch of model, which opens the photo again."""
    from PySide6.QtGui import QGuiApplication
    w = editor
    # the portrait three times over, with fine grain: Qt's smooth downscale and an area average
    # differ by a level or more over most of it
    portrait = cv2.imread(str(w._photo.path))
    big = cv2.resize(portrait, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    grain = np.random.default_rng(0).integers(-12, 13, big.shape)
    big = np.clip(big.astype(int) + grain, 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "big.png"), big)
    canvas = w.canvas
    first = {}

    def on_paint():
        if "opened" in first and "paint" not in first:
            # what the paint put in the window's backing store (a grab would paint again)
            pos = canvas.mapTo(w, canvas.rect().topLeft())
            shot = QGuiApplication.primaryScreen().grabWindow(w.winId(), pos.x(), pos.y(), canvas.width(),
                                                              canvas.height())
            first["paint"] = qimage_to_numpy(shot.toImage())

    def on_opened(_info):
        first["opened"] = True
    canvas.painted.connect(on_paint)
    w.photoOpened.connect(on_opened)

    def settled() -> np.ndarray:
        qtbot.waitUntil(lambda: not w._rescale.isActive() and w.jobs.is_idle() and w.preview_current()
                        and not w._busy, timeout=TIMEOUT)
        for _ in range(5):
            QApplication.processEvents()
        return qimage_to_numpy(canvas.grab().toImage())

    def check(what: str, opened_by) -> None:
        first.clear()
        with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
            opened_by()
        qtbot.waitUntil(lambda: "paint" in first, timeout=TIMEOUT)
        later = settled()
        assert w._photo.faces and canvas.preview_scale() < 0.7, "the photo should be shown zoomed out"
        # but for the busy badge's rows ("Opening big.png…"), which the first paint may still show
        top = canvas.height() - canvas.fontMetrics().height() - 28
        shown = np.ones(later.shape[0], bool)
        shown[top - 2:top + canvas.fontMetrics().height() + 8] = False
        diff = np.abs(first["paint"].astype(int) - later).max(axis=2)[shown]
        assert not diff.any(), (f"{what}: the first paint differs from the render the view settles on in "
                                f"{(diff > 0).mean():.0%} of it, by up to {diff.max()} levels")

    try:
        check("opened", lambda: w.open_photo(tmp_path / "big.png"))
        # another photo while one is shown zoomed out: not the last photo's render, not Qt's scaling
        cv2.imwrite(str(tmp_path / "big2.png"), cv2.flip(big, 1))
        check("the next photo", lambda: w.open_photo(tmp_path / "big2.png"))
        check("model switched", lambda: w.load_model(tiny_model_path))
    finally:
        canvas.painted.disconnect(on_paint)
        w.photoOpened.disconnect(on_opened)
