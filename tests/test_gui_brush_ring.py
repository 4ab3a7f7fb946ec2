"""The edit brush's ring shows what a stroke changes: zoomed far in, a stroke is never finer than
core.edit_mask.MIN_RADIUS crop pixels, and the ring was drawn at the brush's own, smaller size,
so a stroke erased more than the ring showed. Measured on the real window: the ring as painted on
the canvas against the part of the face's edit mask a real stroke changed, over two faces of
different sizes, zoomed in and not, and after a zoom with the pointer still."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QImage, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.edit_mask import MIN_RADIUS, crop_scale, to_crop  # noqa: E402
from core.image_io import load_image, save_image  # noqa: E402
from fader_desktop.main_window import MainWindow  # noqa: E402
from fader_desktop.settings import Settings  # noqa: E402

TIMEOUT = 60_000


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory, tiny_model_path, portrait_path):
    """The window with the tiny model (32 px crops) and a photo of two faces, one half the size
    of the other: the portrait and, beside it, the portrait at half size."""
    import cv2
    folder = tmp_path_factory.mktemp("brush_ring")
    big = load_image(portrait_path)
    photo = np.full((big.shape[0], big.shape[1] * 3 // 2, 3), 90, np.uint8)
    photo[:, :big.shape[1]] = big
    h = big.shape[0] // 2
    photo[h // 2:h // 2 + h, big.shape[1]:] = cv2.resize(big, (h, h), interpolation=cv2.INTER_AREA)
    save_image(folder / "two_faces.png", photo)
    w = MainWindow(Settings(QSettings(str(folder / "fader-desktop.ini"), QSettings.Format.IniFormat)), device="cpu")
    w.resize(1000, 720)
    w.show()
    opened = []
    w.photoOpened.connect(lambda *a: opened.append(True))
    w.start(model=tiny_model_path, images=[folder / "two_faces.png"])
    end = time.monotonic() + TIMEOUT / 1000
    while not (opened and w._model is not None and not w._busy) and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.005)
    assert opened and w.jobs.wait_idle(TIMEOUT / 1000), "the window did not open the model and the photo"
    faces = sorted(w._photo.faces, key=lambda f: -crop_scale(f.matrix))
    assert len(faces) == 2 and crop_scale(faces[0].matrix) > 1.7 * crop_scale(faces[1].matrix)
    w.act_brush.trigger()
    yield w
    w.undo_stack.setClean()
    w.close()


def _grab(c) -> np.ndarray:
    img = c.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    return np.asarray(img.constBits()).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3] \
        .reshape(img.height(), img.width(), 3).astype(int)


def hover(c, qtbot, pos: QPoint) -> None:
    """The pointer to ``pos`` (by way of a neighbour: a move to where QTest last put the pointer
    is not delivered)."""
    qtbot.mouseMove(c, pos + QPoint(1, 0))
    qtbot.mouseMove(c, pos)


def drawn_ring_radius(c, qtbot, pos: QPoint, move: bool = True) -> float:
    """The radius of the ring the canvas paints with the pointer at ``pos`` (screen pixels): the
    pixels that differ from the canvas with the pointer gone, their median distance from it.
    ``move``: False where the pointer is already there (no mouse move before the grab)."""
    if move:
        hover(c, qtbot, pos)
    with_ring = _grab(c)
    QApplication.sendEvent(c, QEvent(QEvent.Type.Leave))
    without = _grab(c)
    hover(c, qtbot, pos)
    ys, xs = np.nonzero(np.abs(with_ring - without).max(axis=2) > 8)
    assert len(xs), "no ring drawn"
    d = np.hypot(xs + 0.5 - pos.x(), ys + 0.5 - pos.y())
    assert xs.min() > 0 and ys.min() > 0 and xs.max() < c.width() - 1 and ys.max() < c.height() - 1, \
        "the ring is cut by the canvas's edge: the measurement needs all of it"
    return float(np.median(d))


def stroke_reach(w, qtbot, face, positions) -> tuple:
    """A short stroke through widget ``positions`` with the brush; how far (screen pixels) from
    its path the face's edit mask changed: (the farthest changed crop pixel, the nearest unchanged
    one). The stroke is undone after."""
    c = w.canvas
    pts = []
    c.brushStroke.connect(record := lambda p, r, erase, first: pts.extend(p))
    try:
        qtbot.mousePress(c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[0])
        for p in positions[1:]:
            qtbot.mouseMove(c, p)
        qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[-1])
    finally:
        c.brushStroke.disconnect(record)
    mask = w.session.masks[face.index]
    assert mask is not None, "the stroke changed the face's mask"
    path = to_crop(face.matrix, pts)
    s = mask.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    dist = np.full((s, s), np.inf)
    for a, b in zip(path[:-1], path[1:]) if len(path) > 1 else [(path[0], path[0])]:
        ab = b - a
        t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / max(ab @ ab, 1e-12), 0, 1)
        np.minimum(dist, np.hypot(xx - a[0] - t * ab[0], yy - a[1] - t * ab[1]), out=dist)
    changed = mask.array < 1
    w.undo_stack.undo()
    assert w.session.masks[face.index] is None
    to_screen = c.scale / crop_scale(face.matrix)
    return float(dist[changed].max()) * to_screen, float(dist[~changed].min()) * to_screen


def view_at(c, x: float, y: float, scale: float) -> QPoint:
    """Zoom to ``scale`` with photo point (x, y) in the view; where it is on the canvas."""
    w, h = c.width() / scale, c.height() / scale
    c.zoom_to_rect(QRectF(x - w / 2, y - h / 2, w, h))   # centred, where the photo's edges allow
    c.zoom_to(scale, c.to_widget(QPointF(x, y)))
    assert c.scale == pytest.approx(scale)
    return c.to_widget(QPointF(x, y)).toPoint()


def _centre(face) -> tuple:
    x0, y0, x1, y1 = face.box
    return (x0 + x1) / 2, (y0 + y1) / 2


def _slant(pos: QPoint, length: int) -> list:
    """A short stroke from ``pos``, slanted so that its distances to the crop's pixels vary finely."""
    return [pos + QPoint(round(i * length / 6), round(i * length / 14)) for i in range(7)]


def test_zoomed_in_the_ring_is_as_large_as_what_the_stroke_changes_on_each_face(window, qtbot):
    """At 400 % a 10 px brush is 0.4 (the large face) and 0.9 (the small one) crop pixels: the
    stroke changes a band of MIN_RADIUS crop pixels either side of its path, 47 and 23 screen
    pixels; the ring was drawn at 10 px over both."""
    w, c = window, window.canvas
    c.set_brush_size(10)
    for face in w._photo.faces:
        pos = view_at(c, *_centre(face), 4.0)
        ring = drawn_ring_radius(c, qtbot, pos)
        expected = MIN_RADIUS / crop_scale(face.matrix) * c.scale
        assert expected > 2 * c.brush_size()
        farthest, nearest = stroke_reach(w, qtbot, face, _slant(pos, 2 * round(expected)))
        assert farthest - 1.5 <= ring <= nearest + 1.5, (
            f"face {face.index + 1}: the ring ({ring:.1f} px) should reach as far as the stroke changed "
            f"the edit ({farthest:.1f}..{nearest:.1f} px from its path), not {c.brush_size():.0f} px")
    # off both faces' crops the stroke changes no mask: the ring is the brush's own size
    pos = view_at(c, w._photo.width - 40, w._photo.height - 40, 4.0)
    assert drawn_ring_radius(c, qtbot, pos) == pytest.approx(c.brush_size(), abs=1.0)
    c.fit_to_window()


def test_at_a_normal_zoom_the_ring_is_the_brush_size(window, qtbot):
    """Fitted to the window a 24 px brush is about 5 and 9 crop pixels on the two faces: the ring
    keeps the brush's size, which is what the stroke changes."""
    w, c = window, window.canvas
    c.fit_to_window()
    c.set_brush_size(24)
    for face in w._photo.faces:
        pos = c.to_widget(QPointF(*_centre(face))).toPoint()
        ring = drawn_ring_radius(c, qtbot, pos)
        assert ring == pytest.approx(24, abs=1.0)
        farthest, nearest = stroke_reach(w, qtbot, face, _slant(pos, 30))
        assert farthest - 1.5 <= ring <= nearest + 1.5


def test_the_ring_follows_a_zoom_with_the_pointer_still(window, qtbot):
    """The wheel zooms around the pointer without moving it: the ring grows to the stroke's
    minimum as the view zooms in and is the brush's own size again zoomed back out."""
    w, c = window, window.canvas
    c.fit_to_window()
    c.set_brush_size(16)
    face = max(w._photo.faces, key=lambda f: 1 / crop_scale(f.matrix))   # the large face
    pos = c.to_widget(QPointF(*_centre(face))).toPoint()
    assert drawn_ring_radius(c, qtbot, pos) == pytest.approx(16, abs=1.0)

    def wheel(steps: int) -> None:
        for _ in range(abs(steps)):
            QApplication.sendEvent(c, QWheelEvent(QPointF(pos), c.mapToGlobal(QPointF(pos)), QPoint(),
                                                  QPoint(0, 120 if steps > 0 else -120), Qt.MouseButton.NoButton,
                                                  Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))

    wheel(7)
    assert c.scale > 3.5
    expected = MIN_RADIUS / crop_scale(face.matrix) * c.scale
    ring = drawn_ring_radius(c, qtbot, pos, move=False)
    assert ring == pytest.approx(expected, abs=1.5), f"after the zoom the ring is {ring:.1f} px, a stroke {expected:.1f}"
    farthest, nearest = stroke_reach(w, qtbot, face, _slant(pos, 2 * round(expected)))
    assert farthest - 1.5 <= ring <= nearest + 1.5
    wheel(-7)
    assert drawn_ring_radius(c, qtbot, pos) == pytest.approx(16, abs=1.0)
    c.fit_to_window()
