"""The photo canvas: fit/zoom/pan, before/after split, hold-to-see-original, face boxes, and
the edit brush's strokes (reported in photo pixels; the window turns them into edit masks).

A plain QWidget with its own view transform (widget = offset + scale * photo) rather than a
QGraphicsView: the scene is one image plus a few rectangles, and owning the transform keeps zoom
around the cursor, pan limits and the split line simple and exact.

A screen reader cannot read a painted photo: the canvas is named "Photo" and its accessible
description says what is shown in words (the photo's file name, its size, the faces found and
selected, the view's mode), kept up to date by the setters.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QCursor, QFont, QImage, QKeyEvent, QMouseEvent, QPainter, QPainterPath,
                           QPaintEvent, QPalette, QPen, QWheelEvent)
from PySide6.QtWidgets import QSizePolicy, QWidget

from core.edit_mask import MIN_RADIUS, crop_scale
from .plain_text import describe

BACKGROUND = QColor(40, 40, 42)
ACCENT = QColor(61, 174, 233)
MIN_SCALE, MAX_SCALE = 0.02, 32.0
# What the canvas itself does with keys and the mouse (keyPressEvent, the mouse handlers), for the
# Help menu's list of shortcuts; the menus' actions list their own.
CANVAS_KEYS = (
    ("+ / −, wheel", "zoom in / out around the pointer"),
    ("0 / 1, double click", "fit / 100 %"),
    ("drag", "pan (with the edit brush on: paint)"),
    ("←, →, ↑, ↓ (Shift: further)", "pan a zoomed-in photo"),
    ("\\ (hold)", "show the original"),
    ("Alt+← / Alt+→ (Shift: further)", "move the before/after split line (View ▸ Before/after split)"),
    ("click a face", "select it"),
    ("[ / ]", "edit brush smaller / larger"),
    ("Shift+drag, Alt+drag", "edit brush: bring the edit back"),
    ("arrows, [ / ], Enter", "marking a missed face by keys: move the box, size it, mark it"),
    ("Esc", "stop marking a missed face (View ▸ Mark a missed face)"),
)
# the arrow keys' directions, for panning, the split line and the marking box
ARROWS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}
PAN_STEP, PAN_STEP_FAR = 0.1, 0.5      # an arrow pans by this part of the view (Shift+arrow: the far one)
SPLIT_STEP, SPLIT_STEP_FAR = 0.05, 0.2  # Alt+←/→ moves the split line by this part of the view's width
MARK_KEY_PX, MARK_KEY_FAR_PX = 8, 40   # an arrow moves the marking box by this many screen pixels (Shift: far)
MARK_KEY_SIDE = 0.25                   # the box the keys start with: this part of the view's shorter side
FOCUS_RING_PX = 2                      # the focused view's outline, in screen pixels
ZOOM_STEP = 1.25
SPLIT_GRAB_PX = 8
CLICK_SLOP_PX = 4
MARK_MIN_DRAG_PX = 6   # a box drawn smaller than this (on screen) is a stray click, not a face marked
REFINE_MS = 150
BRUSH_MIN_PX, BRUSH_MAX_PX, BRUSH_STEP = 3.0, 300.0, 1.25


def fit_scale(view_w: int, view_h: int, photo_w: int, photo_h: int) -> float:
    """The zoom (window units per photo pixel) at which a photo fits the view, with a margin."""
    margin = 16
    return max(MIN_SCALE, min((view_w - margin) / photo_w, (view_h - margin) / photo_h, MAX_SCALE))


class PhotoCanvas(QWidget):
    """Shows the edited photo; emits faceClicked(index) when the user clicks inside a face box."""

    faceClicked = Signal(int)
    zoomChanged = Signal(float)      # scale (1.0 = 100 %)
    viewChanged = Signal()           # the part of the photo in view moved (pan, zoom, resize)
    painted = Signal()               # after every paint (the latency benchmark listens to this)
    # the edit brush: a stroke's new points (photo pixels), its radius (photo pixels), erase (else
    # bring back), whether it is the stroke's first segment
    brushStroke = Signal(object, float, bool, bool)
    brushSizeChanged = Signal(float)  # radius in screen pixels
    # marking a face (View ▸ Mark a missed face): the box drawn, in photo pixels; or Esc pressed
    faceMarked = Signal(QRectF)
    markCancelled = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # the main window handles drops
        self.setAutoFillBackground(False)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._original: Optional[QImage] = None
        self._name: Optional[str] = None   # the photo's file name, for the description
        self._edited: Optional[QImage] = None
        self._faces: list = []            # (index, QRectF in photo pixels)
        # the faces' aligned crops, which the brush's strokes are painted in: (n, 2, 3) alignments
        # (photo -> crop pixels), (n,) crop sides, (n,) crop pixels per photo pixel
        self._frames: Optional[tuple] = None
        self._skipped: list = []          # (QRectF, reason)
        self._selected = -1               # -1: all faces
        self._show_boxes = True
        self._split = False
        self._split_frac = 0.5
        self._hold_original = False
        self._scale = 1.0
        self._offset = QPointF(0, 0)
        self._fit = True
        self._placeholder = ""
        self._busy = ""
        self._press: Optional[QPointF] = None
        self._press_offset = QPointF(0, 0)
        self._dragging_split = False
        self._panning = False
        self._cache: dict = {}            # which -> (cacheKey, size, scaled QImage)
        self._stale: Optional[QRectF] = None   # photo region newer than the cached downscale
        # the preview rendered at the view's resolution (zoomed out): [the photo at that scale,
        # the edited photo at that scale]; while _small_current, _edited is older than it
        self._small: Optional[list] = None
        self._small_current = False
        # the last photo's edited view, kept on show for the same photo opened again until its
        # first render comes (set_photo(keep_shown=True))
        self._held = False
        self._brush = False
        self._brush_px = 24.0             # radius on screen: the brush keeps its size as you zoom
        self._brush_pos: Optional[QPointF] = None
        self._ring_drawn = 0.0            # the radius the ring was last painted at (screen pixels)
        self._brush_last: Optional[QPointF] = None   # photo point of the stroke so far
        self._brush_erase = True
        self._overlay: Optional[tuple] = None   # (QImage, x, y): where the brush erased, in photo pixels
        self._marking = False
        # (from, to) photo points of the box being drawn: a zoom or pan mid-drag keeps its corner on the photo
        self._mark: Optional[tuple] = None
        self._mark_drag = False           # the box is being drawn with the mouse (else: placed by keys)
        self._refine = QTimer(self)
        self._refine.setSingleShot(True)
        self._refine.setInterval(REFINE_MS)
        self._refine.timeout.connect(self._refine_now)
        self.setAccessibleName("Photo")
        self._describe()

    # -- content -------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(800, 600)

    def set_photo(self, original: Optional[QImage], keep_view: bool = False, keep_shown: bool = False,
                  name: Optional[str] = None) -> None:
        """A new photo (or None): shows it unedited, fitted to the window unless keep_view; `name`
        (its file name) is said by the accessible description.

        keep_shown: the same photo opened again (another model or device) with its edit carried
        over, which the caller has asked to be rendered: the edited view shown now stays on show
        until that render's first patch (apply_patch) or release_held(). Shown unedited in
        between, the edit vanished and came back a render later."""
        held = (keep_shown and keep_view and original is not None and self._original is not None
                and original.size() == self._original.size())
        self._original = original
        self._name = name if original is not None else None
        if held:
            # the edited layers stay; only the original's downscale is of another image now
            self._held = True
            self._cache.pop("original", None)
        else:
            self._held = False
            self._edited = None          # None: identical to the original (no copy until an edit)
            self._cache.clear()
            self._stale = None
            self._small, self._small_current = None, False
        self._faces, self._skipped, self._frames = [], [], None
        if not keep_view or original is None:
            self._fit = True
        self._relayout()
        self._describe()
        self.update()

    def set_edited(self, image: QImage) -> None:
        """Replace the whole preview of the edited photo (same size as the original)."""
        self._held = False
        self._edited = image
        self._cache.pop("edited", None)
        self._stale = None
        self._small_current = False
        self.update()

    def apply_patch(self, patch: QImage, x: int, y: int, base: Optional[QImage] = None) -> None:
        """New pixels for a region of the edited photo; repaints only that region.

        ``base``: the patch is in the pixels of this image, the unedited photo downscaled (the
        preview of a zoomed-out view, rendered at the resolution it is shown at); it is drawn
        over ``base`` and shown instead of the full-resolution photo until a full-resolution
        patch comes. Otherwise (x, y) are photo pixels. While full-resolution patches keep
        arriving (a fader is being dragged) the downscaled view of a large photo is patched with
        a fast bilinear draw of the region; the smooth (area-averaged) downscale is redone once
        the patches pause for REFINE_MS.

        A null ``patch`` (a render of a view that holds none of the edit region) changes no
        pixel but still says at which resolution the view is rendered now: the photo at that
        scale, or at full resolution, is what is shown from then on.
        """
        if self._original is None:
            return
        if self._held:
            self.release_held()   # the photo's own render begins: nothing of the last one may stay
        if base is not None:
            if self._small is None or self._small[0].cacheKey() != base.cacheKey():
                self._small = [base, base.copy()]
            if not self._small_current:   # shown instead of the full-resolution photo from now on
                self._small_current = True
                self.update()
            if patch.isNull():
                return
            p = QPainter(self._small[1])
            p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
            p.drawImage(x, y, patch)
            p.end()
            kx, ky = base.width() / self._original.width(), base.height() / self._original.height()
            rect = QRectF(x / kx, y / ky, patch.width() / kx, patch.height() / ky)
            self.update(self._widget_rect(rect).toAlignedRect().adjusted(-2, -2, 2, 2))
            return
        if self._small_current:   # the full-resolution photo is current again; what is shown changes
            self._small_current = False
            self.update()
        if patch.isNull():
            return
        if self._edited is None:
            self._edited = self._original.copy()
        p = QPainter(self._edited)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(x, y, patch)
        p.end()
        rect = QRectF(x, y, patch.width(), patch.height())
        if "edited" in self._cache:
            self._stale = rect if self._stale is None else self._stale.united(rect)
            self._refine.start()
        self.update(self._widget_rect(rect).toAlignedRect().adjusted(-2, -2, 2, 2))

    def release_held(self) -> None:
        """Stop showing the edited view kept by set_photo(keep_shown=True): the photo unedited
        until its render comes (the render failed, or its first patch is about to be applied)."""
        if not self._held:
            return
        self._held = False
        self._edited = None
        self._cache.pop("edited", None)
        self._stale = None
        self._small, self._small_current = None, False
        self.update()   # the first patch may cover less than the kept edit did

    def _refine_now(self) -> None:
        if self._stale is not None:
            self._cache.pop("edited", None)
            self._stale = None
            self.update()

    def original_image(self) -> Optional[QImage]:
        return self._original

    def edited_image(self) -> Optional[QImage]:
        """The edited photo at full resolution, as far as it was rendered at full resolution
        (while a zoomed-out view shows a preview at its own scale, that is in shown_preview)."""
        return self._edited if self._edited is not None else self._original

    def shown_preview(self) -> tuple:
        """(image, scale): the newest preview of the edited photo and its pixels per photo pixel
        (the downscaled preview of a zoomed-out view, or the full-resolution photo and 1.0)."""
        if self._small_current:
            return self._small[1], self._small[1].width() / self._original.width()
        return self.edited_image(), 1.0

    def visible_rect(self, margin: float = 0.0) -> tuple:
        """(x, y, w, h): the photo pixels the view shows, even in part, widened by ``margin``
        screen pixels on each side and clipped to the photo ((0, 0, 0, 0) without a photo)."""
        if self._original is None:
            return (0, 0, 0, 0)
        tl = self.to_photo(QPointF(-margin, -margin))
        br = self.to_photo(QPointF(self.width() + margin, self.height() + margin))
        x0, y0 = max(0, math.floor(tl.x())), max(0, math.floor(tl.y()))
        x1 = min(self._original.width(), math.ceil(br.x()))
        y1 = min(self._original.height(), math.ceil(br.y()))
        return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def preview_scale(self) -> float:
        """The resolution the view needs of the photo: screen pixels per photo pixel, at most 1
        (1 when zoomed in to 100 % or beyond, on a HiDPI screen from 50 %)."""
        return min(1.0, self._scale * self.devicePixelRatioF())

    def preview_scale_for(self, keep_view: bool = False):
        """What preview_scale() will be once a photo of (width, height) is set now
        (set_photo(photo, keep_view)), as a function of those two that holds only numbers: the
        worker that opens a photo calls it, to render the photo at the scale it is first shown."""
        dpr = self.devicePixelRatioF()
        if keep_view and not self._fit and self._original is not None:
            kept = self._scale
            return lambda width, height: min(1.0, kept * dpr)
        vw, vh = self.width(), self.height()
        return lambda width, height: min(1.0, fit_scale(vw, vh, width, height) * dpr)

    def set_faces(self, boxes: list, skipped: list = (), selected: int = -1) -> None:
        """boxes: [(index, (x0, y0, x1, y1) or None, matrix, crop_size)]: with the face's alignment
        (2x3, photo -> crop pixels) and crop side, through which the window paints the brush's
        strokes, the brush ring shows a stroke's true size over the face (brush_ring_radius);
        skipped: [((x0, y0, x1, y1), reason)]."""
        self._faces = [(f[0], QRectF(QPointF(f[1][0], f[1][1]), QPointF(f[1][2], f[1][3])))
                       for f in boxes if f[1] is not None]
        frames = [(np.asarray(f[2], np.float64).reshape(2, 3), int(f[3])) for f in boxes if f[2] is not None and f[3]]
        self._frames = (np.stack([m for m, _ in frames]), np.array([s for _, s in frames], np.float64),
                        np.array([crop_scale(m) for m, _ in frames])) if frames else None
        self._skipped = [(QRectF(QPointF(b[0], b[1]), QPointF(b[2], b[3])), r) for b, r in skipped if b is not None]
        self._selected = selected
        self._describe()
        self.update()

    def set_selected_face(self, index: int) -> None:
        self._selected = index
        self._describe()
        self.update()

    def set_show_boxes(self, on: bool) -> None:
        self._show_boxes = bool(on)
        self.update()

    def set_split(self, on: bool) -> None:
        self._split = bool(on)
        self._describe()
        self.update()

    def split_enabled(self) -> bool:
        return self._split

    def set_split_fraction(self, frac: float) -> None:
        self._split_frac = min(1.0, max(0.0, float(frac)))
        self.update()

    def split_fraction(self) -> float:
        """Where the before/after line is, as a part of the view's width from its left."""
        return self._split_frac

    def set_hold_original(self, on: bool) -> None:
        if on != self._hold_original:
            self._hold_original = bool(on)
            self._describe()
            self.update()

    # -- the edit brush ------------------------------------------------------------------------
    def set_brush(self, on: bool) -> None:
        """Brush mode: a left drag paints (erases the edit; with Shift, brings it back) instead
        of panning; the wheel still zooms."""
        self._brush = bool(on)
        self._brush_last = None
        self._enter_mode(on)

    def set_marking(self, on: bool, box: Optional[QRectF] = None) -> None:
        """Marking mode: a left drag draws a box around a face the searches missed (faceMarked
        on release, in photo pixels); Esc leaves it (markCancelled); the wheel still zooms. `box`
        (photo pixels): shown as the keys' box, which the arrows, [ and ] then move and size."""
        self._marking = bool(on)
        box = self._inside_photo(QRectF(box)) if on and box is not None and self._original is not None else None
        self._mark = None if box is None else (box.topLeft(), box.bottomRight())
        self._mark_drag = False
        self._enter_mode(on)

    def _enter_mode(self, on: bool) -> None:
        """A drag mode (the brush, marking) turned on or off. A drag under way ends here: its rest
        would pan from a stale offset, or paint into the stroke before it (one undo step for both)."""
        self._press = None
        self._panning = self._dragging_split = False
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self._describe()
        self.update()

    def marking(self) -> bool:
        return self._marking

    def marked_box(self) -> Optional[QRectF]:
        """The box being drawn or placed by keys (photo pixels), or None."""
        return None if self._mark is None else QRectF(self._mark[0], self._mark[1]).normalized()

    def _mark_key(self, key, far: bool) -> None:
        """Marking by keys: the first key shows a box in the middle of the view; the arrows then
        move it (Shift: further), [ and ] make it smaller / larger, Enter marks it (faceMarked).
        The view follows a box moved out of it."""
        if self._mark_drag:
            return   # a mouse drag is under way: it decides the box
        box = self.marked_box()
        if box is None:
            side = MARK_KEY_SIDE * min(self.width(), self.height()) / self._scale
            c = self.to_photo(QPointF(self.width() / 2, self.height() / 2))
            box = QRectF(c.x() - side / 2, c.y() - side / 2, side, side)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._mark = None
            self.update()
            self.faceMarked.emit(box)
            return
        elif key in ARROWS:
            step = (MARK_KEY_FAR_PX if far else MARK_KEY_PX) / self._scale
            dx, dy = ARROWS[key]
            box.translate(dx * step, dy * step)
        elif key in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight):
            k = ZOOM_STEP if key == Qt.Key.Key_BracketRight else 1 / ZOOM_STEP
            least = 2 * MARK_MIN_DRAG_PX / self._scale   # never so small that Enter would take it for a stray click
            w, h = max(least, box.width() * k), max(least, box.height() * k)
            c = box.center()
            box = QRectF(c.x() - w / 2, c.y() - h / 2, w, h)
        box = self._inside_photo(box)
        self._mark = (box.topLeft(), box.bottomRight())
        self._show_rect(self._widget_rect(box))
        self.update()

    def _inside_photo(self, box: QRectF) -> QRectF:
        """``box`` moved (and where larger than the photo, shrunk) to lie on the photo."""
        pw, ph = self._original.width(), self._original.height()
        w, h = min(box.width(), pw), min(box.height(), ph)
        x = min(max(0.0, box.x()), pw - w)
        y = min(max(0.0, box.y()), ph - h)
        return QRectF(x, y, w, h)

    def _show_rect(self, r: QRectF, margin: float = 8.0) -> None:
        """Pan so that ``r`` (widget units) is in view, where the view can move that far."""
        dx = max(0.0, r.right() + margin - self.width()) or min(0.0, r.left() - margin)
        dy = max(0.0, r.bottom() + margin - self.height()) or min(0.0, r.top() - margin)
        if dx or dy:
            self.pan_by(dx, dy)

    def _draw_mark(self, p: QPainter) -> None:
        if self._mark is None:
            return
        rect = QRectF(self.to_widget(self._mark[0]), self.to_widget(self._mark[1])).normalized()
        p.save()
        p.setBrush(QColor(255, 255, 255, 40))
        # a dark line under a dashed light one: seen on light and dark photos alike
        for colour, style in ((QColor(0, 0, 0, 200), Qt.PenStyle.SolidLine),
                              (QColor(255, 255, 255), Qt.PenStyle.DashLine)):
            p.setPen(QPen(colour, 1.5, style))
            p.drawRect(rect)
            p.setBrush(Qt.BrushStyle.NoBrush)
        p.restore()

    def set_brush_overlay(self, image: Optional[QImage], x: int = 0, y: int = 0, step: int = 1) -> None:
        """A translucent image over the photo (from photo pixel x, y; one image pixel per step x
        step photo pixels) shown while the brush is on: where the edit is erased, so that strokes
        over unedited or subtly edited parts show."""
        self._overlay = None if image is None or image.isNull() else (image, int(x), int(y), int(step))
        if self._brush:
            self.update()

    def brush_overlay(self) -> Optional[tuple]:
        return self._overlay

    def brush_enabled(self) -> bool:
        return self._brush

    def brush_size(self) -> float:
        return self._brush_px

    def set_brush_size(self, radius_px: float) -> None:
        r = min(BRUSH_MAX_PX, max(BRUSH_MIN_PX, float(radius_px)))
        if r != self._brush_px:
            self._brush_px = r
            self.brushSizeChanged.emit(r)
            self.update()

    def grow_brush(self, larger: bool) -> None:
        """One step larger or smaller ([ and ])."""
        old = self._brush_pos
        self.set_brush_size(self._brush_px * (BRUSH_STEP if larger else 1 / BRUSH_STEP))
        self._update_brush_ring(old)

    def _brush_radius_photo(self) -> float:
        return self._brush_px / max(self._scale, 1e-6)

    def brush_ring_radius(self, pos: Optional[QPointF] = None) -> float:
        """The radius (screen pixels) of what a stroke at widget position ``pos`` (default: the
        ring's) changes, which the ring is drawn at: the brush's size, or more over a face's crop
        where that size is under core.edit_mask.MIN_RADIUS crop pixels (zoomed far in), the least
        a stroke paints. Several crops under it: the largest (the stroke paints each)."""
        pos = self._brush_pos if pos is None else pos
        if pos is None or self._frames is None:
            return self._brush_px
        mats, sizes, scales = self._frames
        pt = self._stroke_point(pos)
        # core.edit_mask.to_crop for every face at once
        uv = mats[:, :, :2] @ np.array([pt.x(), pt.y()]) + mats[:, :, 2]
        inside = ((uv >= -0.5) & (uv < sizes[:, None] - 0.5)).all(axis=1)
        # the window paints a stroke into each face's crop at radius * crop_scale(matrix) crop
        # pixels (main_window._on_brush_stroke), which EditMask.painted raises to MIN_RADIUS
        crop_r = self._brush_radius_photo() * scales[inside]
        small = crop_r < MIN_RADIUS
        if not small.any():
            return self._brush_px
        return max(self._brush_px, float((MIN_RADIUS / scales[inside][small]).max()) * self._scale)

    @staticmethod
    def _erases(mods) -> bool:
        """A plain drag erases the edit; with Shift (or Alt) it brings it back."""
        return not (mods & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier))

    def _stroke_point(self, pos: QPointF) -> QPointF:
        # brushStroke's points have pixel centres at whole numbers, as the faces' alignment
        # matrices do; to_photo's pixel i spans i .. i+1
        return self.to_photo(pos) - QPointF(0.5, 0.5)

    def _stroke_to(self, pos: QPointF, first: bool) -> None:
        pt = self._stroke_point(pos)
        pts = [(pt.x(), pt.y())] if first or self._brush_last is None else \
            [(self._brush_last.x(), self._brush_last.y()), (pt.x(), pt.y())]
        self._brush_last = pt
        self.brushStroke.emit(pts, self._brush_radius_photo(), self._brush_erase, first)

    def _draw_brush(self, p: QPainter) -> None:
        if self._overlay is not None:
            img, x, y, step = self._overlay
            p.save()
            p.setClipRect(self._image_rect(), Qt.ClipOperation.IntersectClip)   # its last pixels may overhang
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(self._widget_rect(QRectF(x, y, img.width() * step, img.height() * step)), img)
            p.restore()
        if self._brush_pos is None:
            return
        r = self._ring_drawn = self.brush_ring_radius()
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for color, width in ((QColor(0, 0, 0, 160), 3.0), (QColor(255, 255, 255, 220) if self._brush_erase
                                                           else ACCENT, 1.2)):
            p.setPen(QPen(color, width))
            p.drawEllipse(self._brush_pos, r, r)
        p.restore()

    def _update_brush_ring(self, old: Optional[QPointF]) -> None:
        # the old ring as it was painted (over another face it may have been larger)
        for c, r in ((old, max(self._ring_drawn, self._brush_px)), (self._brush_pos, self.brush_ring_radius())):
            if c is not None:
                r += 4
                self.update(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r).toAlignedRect())

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self._describe()
        self.update()

    def set_busy(self, text: str) -> None:
        self._busy = text
        self._describe()
        self.update()

    def _describe(self) -> None:
        """The accessible description: what the view shows, in words, as the screen shows it."""
        if self._original is None:
            parts = [" ".join(self._placeholder.split()) or "No photo"]
        else:
            n = len(self._faces)
            size = f"{self._original.width()} by {self._original.height()} pixels"
            name = " ".join((self._name or "").split())   # a line break in a file name read as one
            parts = [f"{name}, {size}" if name else size,
                     f"{n} face{'' if n == 1 else 's'} found" if n else "no face found"]
            if self._skipped:
                parts.append(f"{len(self._skipped)} more too small for the model (dotted boxes)")
            if n > 1:
                parts.append("every face selected" if self._selected < 0 else f"face {self._selected + 1} selected")
            if self._hold_original:
                parts.append("showing the original")
            elif self._split:
                parts.append("before/after split: the original on the left, the edit on the right")
            if self._brush:
                parts.append("edit brush on")
            if self._marking:
                parts.append("marking a missed face")
        if self._busy:
            parts.append(self._busy)
        describe(self, "; ".join(p.rstrip(".") for p in parts) + ".")

    # -- view transform ------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        return self._scale

    def is_fit(self) -> bool:
        return self._fit

    def to_widget(self, p: QPointF) -> QPointF:
        return QPointF(self._offset.x() + p.x() * self._scale, self._offset.y() + p.y() * self._scale)

    def to_photo(self, p: QPointF) -> QPointF:
        return QPointF((p.x() - self._offset.x()) / self._scale, (p.y() - self._offset.y()) / self._scale)

    def _widget_rect(self, photo_rect: QRectF) -> QRectF:
        return QRectF(self.to_widget(photo_rect.topLeft()), self.to_widget(photo_rect.bottomRight()))

    def _image_rect(self) -> QRectF:
        if self._original is None:
            return QRectF()
        return QRectF(self._offset, QPointF(self._offset.x() + self._original.width() * self._scale,
                                            self._offset.y() + self._original.height() * self._scale))

    def fit_to_window(self) -> None:
        self._fit = True
        self._relayout()
        self.viewChanged.emit()
        self.update()

    def zoom_to(self, scale: float, anchor: Optional[QPointF] = None) -> None:
        """Zoom keeping the photo point under `anchor` (widget coords; default: centre) in place."""
        if self._original is None:
            return
        scale = min(MAX_SCALE, max(MIN_SCALE, scale))
        if anchor is None:
            anchor = QPointF(self.width() / 2, self.height() / 2)
        photo_pt = self.to_photo(anchor)
        self._scale = scale
        self._fit = False
        self._offset = QPointF(anchor.x() - photo_pt.x() * scale, anchor.y() - photo_pt.y() * scale)
        self._clamp_offset()
        self.zoomChanged.emit(self._scale)
        self.viewChanged.emit()
        self.update()

    def zoom_in(self, anchor: Optional[QPointF] = None) -> None:
        self.zoom_to(self._scale * ZOOM_STEP, anchor)

    def zoom_out(self, anchor: Optional[QPointF] = None) -> None:
        self.zoom_to(self._scale / ZOOM_STEP, anchor)

    def actual_size(self) -> None:
        self.zoom_to(1.0)

    def pan_by(self, dx: float, dy: float) -> bool:
        """Move the view over the photo by (dx, dy) window units (positive: towards the photo's right
        and bottom), as far as the photo goes; whether it moved."""
        if self._original is None:
            return False
        old = QPointF(self._offset)
        self._offset = QPointF(old.x() - dx, old.y() - dy)
        self._clamp_offset()
        if self._offset == old:
            return False   # a fitted photo stays fitted (and follows the window's size)
        self._fit = False
        self.viewChanged.emit()
        self.update()
        return True

    def zoom_to_rect(self, rect: QRectF) -> None:
        """Zoom and pan so that ``rect`` (photo pixels) fills the view, centred (no closer than
        MAX_SCALE, no farther than the fit)."""
        if self._original is None or rect.width() <= 0 or rect.height() <= 0:
            return
        rect = rect.intersected(QRectF(0, 0, self._original.width(), self._original.height()))
        if rect.isEmpty():
            return
        scale = min(self.width() / rect.width(), self.height() / rect.height())
        scale = min(MAX_SCALE, max(self._fit_scale(), scale))
        self._scale = scale
        self._fit = False
        c = rect.center()
        self._offset = QPointF(self.width() / 2 - c.x() * scale, self.height() / 2 - c.y() * scale)
        self._clamp_offset()
        self.zoomChanged.emit(self._scale)
        self.viewChanged.emit()
        self.update()

    def _fit_scale(self) -> float:
        return fit_scale(self.width(), self.height(), self._original.width(), self._original.height())

    def _relayout(self) -> None:
        if self._original is None:
            return
        if self._fit:
            self._scale = self._fit_scale()
            self._offset = QPointF((self.width() - self._original.width() * self._scale) / 2,
                                   (self.height() - self._original.height() * self._scale) / 2)
            self.zoomChanged.emit(self._scale)
        else:
            self._clamp_offset()

    def _clamp_offset(self) -> None:
        # A photo smaller than the view is centred; a larger one may not leave a gap at its edges.
        iw, ih = self._original.width() * self._scale, self._original.height() * self._scale
        x, y = self._offset.x(), self._offset.y()
        x = (self.width() - iw) / 2 if iw <= self.width() else min(0.0, max(self.width() - iw, x))
        y = (self.height() - ih) / 2 if ih <= self.height() else min(0.0, max(self.height() - ih, y))
        self._offset = QPointF(x, y)

    def resizeEvent(self, event) -> None:
        self._relayout()
        self.viewChanged.emit()
        super().resizeEvent(event)

    # -- painting ------------------------------------------------------------------------------
    def _scaled(self, which: str, img: QImage) -> Optional[QImage]:
        """A smoothly downscaled copy for scales < 1 (area-averaged, unlike bilinear drawImage), in
        the screen's own pixels: on a HiDPI screen (device pixel ratio 2) a copy of the size in
        the window's units was stretched 2x, the photo shown at half the sharpness it has."""
        dpr = self.devicePixelRatioF()
        scale = self._scale * dpr
        if scale >= 1.0:
            return None
        size = QSize(max(1, round(img.width() * scale)), max(1, round(img.height() * scale)))
        hit = self._cache.get(which)
        if hit and hit[1] == size and (hit[0] == img.cacheKey() or (which == "edited" and self._stale is not None)):
            return hit[2]   # (a stale "edited" downscale is patched over in _draw_image)
        scaled = img.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
        scaled.setDevicePixelRatio(dpr)
        self._cache[which] = (img.cacheKey(), size, scaled)
        if which == "edited":
            self._stale = None
        return scaled

    def _small_layer(self, which: str) -> Optional[QImage]:
        """The downscaled preview's image for `which` (the base for the original) when there is
        one to show: the original when its size is the view's, the edit whenever it is newer."""
        if self._small is None or (which == "edited" and not self._small_current):
            return None
        img = self._small[1] if which == "edited" else self._small[0]
        if which == "original" and img.size() != self._screen_size():
            return None
        return img

    def _screen_size(self) -> QSize:
        """The photo's size in screen pixels at the current zoom (what a 1:1 downscale has)."""
        scale = self._scale * self.devicePixelRatioF()
        return QSize(max(1, round(self._original.width() * scale)), max(1, round(self._original.height() * scale)))

    def _screen_origin(self) -> QPointF:
        """Where an image of the photo at the screen's resolution goes (window units): the photo's
        top left rounded to a whole screen pixel. Rounded in window units, on a screen with a
        device pixel ratio of 1.5 it could fall between two screen pixels, and the image was
        resampled (rows and columns doubled or dropped); at 2 it lay a screen pixel off the face
        boxes and the brush."""
        dpr = self.devicePixelRatioF()
        return QPointF(round(self._offset.x() * dpr) / dpr, round(self._offset.y() * dpr) / dpr)

    def _draw_image(self, p: QPainter, which: str, img: QImage) -> None:
        small = self._small_layer(which)
        if small is not None:
            dpr = self.devicePixelRatioF()
            if small.size() == self._screen_size():   # one image pixel per screen pixel: no resampling
                p.drawImage(QRectF(self._screen_origin(), QSizeF(small.width() / dpr, small.height() / dpr)), small)
            else:   # the zoom changed since it was rendered: stretched until the new render
                p.save()
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                p.drawImage(self._image_rect(), small)
                p.restore()
            return
        scaled = self._scaled(which, img)
        if scaled is not None:
            p.drawImage(self._screen_origin(), scaled)
            if which == "edited" and self._stale is not None:
                p.save()
                p.setClipRect(self._widget_rect(self._stale), Qt.ClipOperation.IntersectClip)
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                p.drawImage(self._image_rect(), img)
                p.restore()
        else:
            # zoomed in: show real pixels (nearest) from 2 screen pixels on, so edits can be inspected exactly
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._scale * self.devicePixelRatioF() < 2.0)
            p.drawImage(self._image_rect(), img)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        if self._original is None:
            self._draw_placeholder(p)
            self._draw_focus(p)
            p.end()
            self.painted.emit()
            return
        edited = self.edited_image()
        if self._hold_original:
            self._draw_image(p, "original", self._original)
            self._badge(p, QPointF(12, 12), "Original")
        elif self._split:
            x = self._split_frac * self.width()
            p.save()
            p.setClipRect(QRectF(0, 0, x, self.height()))
            self._draw_image(p, "original", self._original)
            p.restore()
            p.save()
            p.setClipRect(QRectF(x, 0, self.width() - x, self.height()))
            self._draw_image(p, "edited", edited)
            p.restore()
            self._draw_split_line(p, x)
        else:
            self._draw_image(p, "edited", edited)
        if self._show_boxes and not self._hold_original:
            self._draw_boxes(p)
        if self._brush and not self._hold_original:
            self._draw_brush(p)
        if self._marking:
            self._draw_mark(p)
        if self._busy:
            self._draw_busy(p)
        self._draw_focus(p)
        p.end()
        self.painted.emit()

    def _draw_focus(self, p: QPainter) -> None:
        """An outline in the palette's highlight colour round the view while it has the keyboard
        focus (the keys for zoom, pan, the split line and marking act on it), however it came."""
        if not self.hasFocus():
            return
        # in screen pixels: the photo's edge pixels under it stay as few on a HiDPI screen (on one of
        # 2 it is a window unit wide, as the faders' ring)
        width = FOCUS_RING_PX / self.devicePixelRatioF()
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), width,
                      Qt.PenStyle.SolidLine, Qt.PenCapStyle.SquareCap, Qt.PenJoinStyle.MiterJoin))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(self.rect()).adjusted(width / 2, width / 2, -width / 2, -width / 2))
        p.restore()

    def _draw_placeholder(self, p: QPainter) -> None:
        p.setPen(QColor(170, 170, 170))
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.25)
        p.setFont(f)
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                   self._busy or self._placeholder)

    def _badge(self, p: QPainter, at: QPointF, text: str, color: QColor = QColor(0, 0, 0, 160)) -> None:
        fm = p.fontMetrics()
        r = QRectF(at, QSize(fm.horizontalAdvance(text) + 14, fm.height() + 6))
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(color)
        p.drawRoundedRect(r, 4, 4)
        p.setPen(QColor(240, 240, 240))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)
        p.restore()

    def _draw_split_line(self, p: QPainter, x: float) -> None:
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(0, 0, 0, 120), 3))
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        p.setPen(QPen(QColor(255, 255, 255), 1.5))
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        # round grip in the middle, so the line reads as something to drag
        c = QPointF(x, self.height() / 2)
        p.setBrush(QColor(255, 255, 255))
        p.setPen(QPen(QColor(0, 0, 0, 140), 1))
        p.drawEllipse(c, 11, 11)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(60, 60, 60))
        for d in (-1, 1):  # two small arrowheads pointing left and right
            tri = QPainterPath(QPointF(c.x() + d * 8, c.y()))
            tri.lineTo(QPointF(c.x() + d * 3, c.y() - 4.5))
            tri.lineTo(QPointF(c.x() + d * 3, c.y() + 4.5))
            tri.closeSubpath()
            p.drawPath(tri)
        p.restore()
        fm = p.fontMetrics()
        self._badge(p, QPointF(max(4.0, x - fm.horizontalAdvance("Before") - 26), 12), "Before")
        self._badge(p, QPointF(min(self.width() - fm.horizontalAdvance("After") - 18.0, x + 12), 12), "After")

    def _draw_boxes(self, p: QPainter) -> None:
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        # a face cut by the photo's edge has a box reaching past it: drawn to the edge, not out
        # into the background
        photo = self._image_rect()
        for rect, reason in self._skipped:
            r = QRectF(self.to_widget(rect.topLeft()), self.to_widget(rect.bottomRight())).intersected(photo)
            p.setPen(QPen(QColor(200, 200, 200, 150), 1, Qt.PenStyle.DotLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r)
        for index, rect in self._faces:
            r = QRectF(self.to_widget(rect.topLeft()), self.to_widget(rect.bottomRight())).intersected(photo)
            selected = self._selected in (-1, index)
            # a dark halo under the line keeps it visible on light and dark photos alike
            p.setPen(QPen(QColor(0, 0, 0, 110), 4 if selected else 3))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(r, 3, 3)
            p.setPen(QPen(ACCENT if selected else QColor(255, 255, 255, 170), 2 if selected else 1.2))
            p.drawRoundedRect(r, 3, 3)
            if len(self._faces) > 1:
                self._badge(p, QPointF(r.left(), r.top() - p.fontMetrics().height() - 8), str(index + 1),
                            ACCENT if selected else QColor(0, 0, 0, 160))
        p.restore()

    def _draw_busy(self, p: QPainter) -> None:
        fm = p.fontMetrics()
        text = self._busy
        w = fm.horizontalAdvance(text) + 28
        self._badge(p, QPointF((self.width() - w) / 2, self.height() - fm.height() - 28), text,
                    QColor(0, 0, 0, 190))

    # -- mouse & keys --------------------------------------------------------------------------
    def _near_split(self, pos: QPointF) -> bool:
        return self._split and abs(pos.x() - self._split_frac * self.width()) <= SPLIT_GRAB_PX

    def face_at(self, pos: QPointF) -> int:
        """Index of the face box under a widget position (the smallest if nested), or -1."""
        pt = self.to_photo(pos)
        hits = [(r.width() * r.height(), i) for i, r in self._faces if r.contains(pt)]
        return min(hits)[1] if hits else -1

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._original is None:
            return super().mousePressEvent(event)
        pos = event.position()
        if self._marking:
            self._mark = (self.to_photo(pos), self.to_photo(pos))
            self._mark_drag = True
            self.update()
            event.accept()
            return
        if self._brush:
            self._brush_erase = self._erases(event.modifiers())
            self._press = pos
            self._stroke_to(pos, first=True)
            event.accept()
            return
        self._press = pos
        self._press_offset = QPointF(self._offset)
        self._dragging_split = self._near_split(pos)
        self._panning = False
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._marking:
            if self._mark_drag:   # a box placed by keys stays where it is
                self._mark = (self._mark[0], self.to_photo(pos))
                self.update()
            return
        if self._brush:
            old, self._brush_pos = self._brush_pos, QPointF(pos)
            if self._press is None:
                self._brush_erase = self._erases(event.modifiers())
            else:
                self._stroke_to(pos, first=False)
            self._update_brush_ring(old)
            return
        if self._press is None:
            if self._near_split(pos):
                self.setCursor(Qt.CursorShape.SplitHCursor)
            elif self.face_at(pos) >= 0 and self._show_boxes:
                self.setCursor(Qt.CursorShape.PointingHandCursor)
            else:
                self.setCursor(Qt.CursorShape.OpenHandCursor if not self._fit else Qt.CursorShape.ArrowCursor)
            return
        if self._dragging_split:
            self.set_split_fraction(pos.x() / max(1, self.width()))
            return
        d = pos - self._press
        if not self._panning and abs(d.x()) + abs(d.y()) > CLICK_SLOP_PX:
            self._panning = True
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        if self._panning:
            self._offset = self._press_offset + d
            self._fit = False
            self._clamp_offset()
            self.viewChanged.emit()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._marking and self._mark_drag and event.button() == Qt.MouseButton.LeftButton:
            rect = QRectF(self._mark[0], self.to_photo(event.position())).normalized()
            self._mark = None
            self._mark_drag = False
            self.update()
            if min(rect.width(), rect.height()) * self._scale >= MARK_MIN_DRAG_PX:   # not a stray click
                self.faceMarked.emit(rect)
            return
        if event.button() != Qt.MouseButton.LeftButton or self._press is None:
            return super().mouseReleaseEvent(event)
        if self._brush:
            self._press = self._brush_last = None
            return
        was_click = not self._panning and not self._dragging_split
        self._press = None
        self._panning = self._dragging_split = False
        self.setCursor(Qt.CursorShape.ArrowCursor)
        if was_click:
            i = self.face_at(event.position())
            if i >= 0:
                self.faceClicked.emit(i)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        # double click toggles fit <-> 100 % around the cursor, as in most viewers
        if self._original is None or self._brush or self._marking:
            return
        if self._fit:
            self.zoom_to(1.0, event.position())
        else:
            self.fit_to_window()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self._original is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_to(self._scale * (ZOOM_STEP ** steps), event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        cursor = self.mapFromGlobal(QCursor.pos())
        anchor = QPointF(cursor) if self.rect().contains(cursor) else None
        mods = event.modifiers()
        far = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        alt = bool(mods & Qt.KeyboardModifier.AltModifier)
        # Ctrl and Meta with an arrow are left to the window (and the platform)
        plain = not mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.MetaModifier)
        if key in ARROWS and plain and self._original is not None and (alt or not self._marking):
            if not alt:
                w, h = self.width(), self.height()
                dx, dy = ARROWS[key]
                step = PAN_STEP_FAR if far else PAN_STEP
                self.pan_by(dx * step * w, dy * step * h)
            elif self._split and ARROWS[key][1] == 0:
                step = SPLIT_STEP_FAR if far else SPLIT_STEP
                self.set_split_fraction(self._split_frac + ARROWS[key][0] * step)
            else:
                return super().keyPressEvent(event)
        elif self._marking and self._original is not None and plain and not alt and (
                key in ARROWS or key in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight, Qt.Key.Key_Return,
                                         Qt.Key.Key_Enter)):
            self._mark_key(key, far)
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in(anchor)
        elif key == Qt.Key.Key_Minus:
            self.zoom_out(anchor)
        elif key == Qt.Key.Key_0:
            self.fit_to_window()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        elif key == Qt.Key.Key_Backslash:
            if not event.isAutoRepeat():
                self.set_hold_original(True)
        elif key in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight) and self._brush:
            self.grow_brush(key == Qt.Key.Key_BracketRight)
        elif key == Qt.Key.Key_Escape and self._marking:
            self.set_marking(False)
            self.markCancelled.emit()
        else:
            return super().keyPressEvent(event)
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Backslash and not event.isAutoRepeat():
            self.set_hold_original(False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def leaveEvent(self, event) -> None:
        if self._brush_pos is not None:
            old, self._brush_pos = self._brush_pos, None
            self._update_brush_ring(old)
        super().leaveEvent(event)

    def focusInEvent(self, event) -> None:
        self.update()   # the focus outline
        super().focusInEvent(event)

    def focusOutEvent(self, event) -> None:
        # \\ released in another window or a menu would leave "Original" stuck on; within this
        # window the window sees the release wherever the focus went (a fader grabbed mid-hold)
        if event.reason() in (Qt.FocusReason.ActiveWindowFocusReason, Qt.FocusReason.PopupFocusReason) \
                or not self.isActiveWindow():
            self.set_hold_original(False)
        self.update()
        super().focusOutEvent(event)
