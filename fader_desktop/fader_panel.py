"""The fader panel: a face selector and one fader per attribute, built from the model's metadata.

Values here are *UI values*: a float for a binary attribute (the slider position α), and
`(target index, strength)` for an attribute with more than two values (a combo picks the value to
move towards, the slider says how far from the face's own mix). The main window turns them into
core values; the panel only shows them and reports edits.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QFont, QPainter, QPainterPath, QPalette
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFrame, QGridLayout, QHBoxLayout, QLabel,
                               QPushButton, QScrollArea, QSlider, QStyle, QStyleOptionSlider,
                               QToolButton, QVBoxLayout, QWidget)

SLIDER_STEPS = 1000
ALL_FACES = -1


def display_name(name: str) -> str:
    """'Mouth_Slightly_Open' -> 'Mouth slightly open' (CelebA's names are identifiers)."""
    words = name.replace("_", " ").split()
    if not words:
        return name
    return " ".join([words[0][:1].upper() + words[0][1:]] + [w.lower() if not w.isupper() or len(w) > 3 else w
                                                           for w in words[1:]])


def own_ui_value(attr, own):
    """The UI value that reproduces the face's own value (the reset position)."""
    if attr.is_binary:
        return float(own)
    weights = [float(x) for x in own]
    return (max(range(len(weights)), key=weights.__getitem__), 0.0)


def ui_to_core(attr, ui, own):
    """UI value -> core value (float α, or n weights blending the face's own mix towards a target)."""
    if attr.is_binary:
        return float(ui)
    idx, strength = ui
    own = [float(x) for x in own]
    return [(1.0 - strength) * o + strength * (1.0 if j == idx else 0.0) for j, o in enumerate(own)]


class MarkedSlider(QSlider):
    """A horizontal slider with small marks at the attribute's pure values and the face's own value."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._ticks: list = []   # slider positions (ints) of the pure values
        self._own: int | None = None
        self.setMinimumHeight(26)

    def set_marks(self, ticks, own) -> None:
        self._ticks, self._own = list(ticks), own
        self.update()

    def _x_of(self, value: int, opt: QStyleOptionSlider) -> float:
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = groove.width() - handle.width()
        x = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), value, span)
        return groove.left() + handle.width() / 2 + x

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = self.palette().color(QPalette.ColorRole.PlaceholderText)
        p.setPen(color)
        for t in self._ticks:
            x = self._x_of(t, opt)
            p.drawLine(QPointF(x, self.height() - 5), QPointF(x, self.height() - 1))
        if self._own is not None:
            x = self._x_of(self._own, opt)
            tri = QPainterPath(QPointF(x, 5))
            tri.lineTo(QPointF(x - 4, 0))
            tri.lineTo(QPointF(x + 4, 0))
            tri.closeSubpath()
            p.fillPath(tri, self.palette().color(QPalette.ColorRole.Highlight))
        p.end()
        super().paintEvent(event)


class FaderRow(QFrame):
    """One attribute: name, reset button, slider + exact-value box (and a value combo if n > 2)."""

    edited = Signal(str, object, int)     # attribute name, UI value, drag id (0: not part of a drag)
    resetRequested = Signal(str)

    def __init__(self, attr, drag_counter, parent=None):
        super().__init__(parent)
        self.attr = attr
        self._drag_counter = drag_counter   # shared callable -> a fresh drag id
        self._drag = 0
        self._own_ui = own_ui_value(attr, 0.0 if attr.is_binary else [1.0] + [0.0] * (attr.n - 1))
        self._ui = self._own_ui
        lo, hi = attr.range
        self._lo, self._hi = lo, hi

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 6, 0, 6)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        title = QLabel(display_name(attr.name))
        f = QFont(title.font())
        f.setBold(True)
        title.setFont(f)
        title.setToolTip(f"{attr.name}: values {', '.join(attr.values)}; slider range {lo:g} … {hi:g}")
        self.title = title
        self.reset_button = QToolButton()
        self.reset_button.setText("↺")
        self.reset_button.setToolTip(f"Reset {display_name(attr.name)} to this face's own value")
        self.reset_button.setAutoRaise(True)
        self.reset_button.clicked.connect(lambda: self.resetRequested.emit(self.attr.name))
        self.slider = MarkedSlider()
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setSingleStep(SLIDER_STEPS // 100)
        self.slider.setPageStep(SLIDER_STEPS // 10)
        self.slider.setAccessibleName(display_name(attr.name))
        self.spin = QDoubleSpinBox()
        self.spin.setRange(lo, hi)
        self.spin.setDecimals(2)
        self.spin.setSingleStep(0.05)
        self.spin.setKeyboardTracking(False)  # one edit when the user presses Enter, not per keystroke
        self.spin.setFixedWidth(68)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.combo = None
        grid.addWidget(title, 0, 0, 1, 2)
        grid.addWidget(self.reset_button, 0, 2, Qt.AlignmentFlag.AlignRight)
        if attr.is_binary:
            grid.addWidget(self.slider, 1, 0, 1, 2)
            grid.addWidget(self.spin, 1, 2)
            ends = QHBoxLayout()
            small = QFont(self.font())
            small.setPointSizeF(small.pointSizeF() * 0.85)
            for text, align in ((f"← {attr.values[0]}", Qt.AlignmentFlag.AlignLeft),
                                (f"{attr.values[1]} →", Qt.AlignmentFlag.AlignRight)):
                lab = QLabel(text)
                lab.setFont(small)
                lab.setForegroundRole(QPalette.ColorRole.PlaceholderText)
                ends.addWidget(lab, 0, align)
            grid.addLayout(ends, 2, 0, 1, 2)
            ticks = [self._to_slider(0.0), self._to_slider(1.0)]
            self.slider.set_marks([t for t, v in zip(ticks, (0.0, 1.0)) if lo <= v <= hi], None)
        else:
            self.combo = QComboBox()
            self.combo.addItems(list(attr.values))
            self.combo.setToolTip("The value to move towards")
            row = QHBoxLayout()
            row.addWidget(QLabel("towards"))
            row.addWidget(self.combo, 1)
            grid.addLayout(row, 1, 0, 1, 3)
            grid.addWidget(self.slider, 2, 0, 1, 2)
            grid.addWidget(self.spin, 2, 2)
            self.slider.set_marks([self._to_slider(v) for v in (0.0, 1.0) if lo <= v <= hi], None)
            self.combo.currentIndexChanged.connect(self._on_combo)
        grid.setColumnStretch(0, 1)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderPressed.connect(self._on_pressed)
        self.slider.sliderReleased.connect(self._on_released)
        self.spin.valueChanged.connect(self._on_spin)
        self._refresh_hint()

    # -- mapping -------------------------------------------------------------------------------
    def _to_slider(self, v: float) -> int:
        t = (v - self._lo) / (self._hi - self._lo)
        return int(round(min(1.0, max(0.0, t)) * SLIDER_STEPS))

    def _from_slider(self, i: int) -> float:
        return round(self._lo + (self._hi - self._lo) * i / SLIDER_STEPS, 3)

    def _number(self) -> float:
        return self._ui if self.attr.is_binary else self._ui[1]

    def _with_number(self, v: float):
        return float(v) if self.attr.is_binary else (self._ui[0], float(v))

    # -- showing values (never emits) ----------------------------------------------------------
    def set_value(self, ui, own_ui) -> None:
        self._ui, self._own_ui = ui, own_ui
        for w in (self.slider, self.spin) + ((self.combo,) if self.combo else ()):
            w.blockSignals(True)
        try:
            if not self.slider.isSliderDown():   # never yank the handle out of the user's hand
                self.slider.setValue(self._to_slider(self._number()))
            self.spin.setValue(self._number())
            if self.combo is not None:
                self.combo.setCurrentIndex(int(ui[0]))
        finally:
            for w in (self.slider, self.spin) + ((self.combo,) if self.combo else ()):
                w.blockSignals(False)
        own_number = own_ui if self.attr.is_binary else None
        self.slider.set_marks(self.slider._ticks, None if own_number is None else self._to_slider(own_number))
        self._refresh_hint()

    def value(self):
        return self._ui

    def is_modified(self) -> bool:
        return self._ui != self._own_ui

    def _refresh_hint(self) -> None:
        modified = self.is_modified()
        self.reset_button.setEnabled(modified)
        f = self.title.font()
        f.setItalic(modified)
        self.title.setFont(f)

    # -- user edits ----------------------------------------------------------------------------
    def _emit(self, ui) -> None:
        self._ui = ui
        self._refresh_hint()
        self.edited.emit(self.attr.name, ui, self._drag)

    def _on_pressed(self) -> None:
        self._drag = self._drag_counter()

    def _on_released(self) -> None:
        self._drag = 0

    def _on_slider(self, i: int) -> None:
        v = self._from_slider(i)
        self.spin.blockSignals(True)
        self.spin.setValue(v)
        self.spin.blockSignals(False)
        self._emit(self._with_number(v))

    def _on_spin(self, v: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._to_slider(v))
        self.slider.blockSignals(False)
        self._emit(self._with_number(round(v, 3)))

    def _on_combo(self, idx: int) -> None:
        strength = self._ui[1]
        if strength == 0.0:
            # choosing a value means "go there": with zero strength the choice would do nothing
            strength = min(1.0, self._hi)
            self.spin.blockSignals(True)
            self.slider.blockSignals(True)
            self.spin.setValue(strength)
            self.slider.setValue(self._to_slider(strength))
            self.spin.blockSignals(False)
            self.slider.blockSignals(False)
        self._emit((idx, strength))


class FaderPanel(QWidget):
    """Face selector + faders + Reset all. Emits user edits; shows values set by the window."""

    valueEdited = Signal(str, object, int)   # attribute, UI value, drag id
    resetAttribute = Signal(str)
    resetAll = Signal()
    faceSelected = Signal(int)               # face index, or ALL_FACES
    openModelRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: dict = {}
        self._drag_serial = 0
        self.setMinimumWidth(260)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 10)
        outer.setSpacing(8)

        face_row = QHBoxLayout()
        face_row.addWidget(QLabel("Face"))
        self.face_combo = QComboBox()
        self.face_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.face_combo.setToolTip("The face the faders edit (click a face in the photo to select it)")
        self.face_combo.currentIndexChanged.connect(self._on_face_combo)
        face_row.addWidget(self.face_combo, 1)
        outer.addLayout(face_row)

        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.RichText)
        self.notice.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        outer.addWidget(self.notice)
        self.open_model_button = QPushButton("Open model…")
        self.open_model_button.clicked.connect(self.openModelRequested)
        outer.addWidget(self.open_model_button)

        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._rows_host = QWidget()
        self._rows_layout = QVBoxLayout(self._rows_host)
        self._rows_layout.setContentsMargins(0, 0, 4, 0)
        self._rows_layout.setSpacing(0)
        self._rows_layout.addStretch(1)
        self._scroll.setWidget(self._rows_host)
        outer.addWidget(self._scroll, 1)

        self.reset_all_button = QPushButton("Reset all")
        self.reset_all_button.setToolTip("Every fader of the selected face back to its own value")
        self.reset_all_button.clicked.connect(self.resetAll)
        outer.addWidget(self.reset_all_button)
        self.set_attributes([])
        self.set_faces(0)

    def sizeHint(self) -> QSize:
        return QSize(300, 600)

    # -- structure -----------------------------------------------------------------------------
    def _next_drag(self) -> int:
        self._drag_serial += 1
        return self._drag_serial

    def set_attributes(self, attributes) -> None:
        """Rebuild the faders for a model's attributes (an empty list: no model)."""
        for row in self._rows.values():
            self._rows_layout.removeWidget(row)
            row.deleteLater()
        self._rows = {}
        for attr in attributes:
            row = FaderRow(attr, self._next_drag)
            row.edited.connect(self.valueEdited)
            row.resetRequested.connect(self.resetAttribute)
            self._rows_layout.insertWidget(self._rows_layout.count() - 1, row)
            self._rows[attr.name] = row
        self.open_model_button.setVisible(not attributes)
        self._update_enabled()

    def attribute_names(self) -> list:
        return list(self._rows)

    def row(self, name: str) -> FaderRow:
        return self._rows[name]

    def set_faces(self, count: int, selected: int = 0) -> None:
        """Fill the face selector: Face 1 … Face n, plus All faces when there are several."""
        self.face_combo.blockSignals(True)
        self.face_combo.clear()
        for i in range(count):
            self.face_combo.addItem(f"Face {i + 1}", i)
        if count > 1:
            self.face_combo.addItem("All faces", ALL_FACES)
        idx = self.face_combo.findData(selected)
        self.face_combo.setCurrentIndex(max(0, idx))
        self.face_combo.setEnabled(count > 1)
        self.face_combo.blockSignals(False)
        self._count = count
        self._update_enabled()

    def selected_face(self) -> int:
        data = self.face_combo.currentData()
        return int(data) if data is not None else 0

    def select_face(self, index: int) -> None:
        idx = self.face_combo.findData(index)
        if idx >= 0 and idx != self.face_combo.currentIndex():
            self.face_combo.setCurrentIndex(idx)

    def _on_face_combo(self, _i: int) -> None:
        self.faceSelected.emit(self.selected_face())

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _update_enabled(self) -> None:
        on = bool(self._rows) and getattr(self, "_count", 0) > 0
        for row in self._rows.values():
            row.setEnabled(on)
        self.reset_all_button.setEnabled(on)

    # -- values --------------------------------------------------------------------------------
    def set_values(self, ui_values: dict, own_ui: dict) -> None:
        """Show a face's UI values (own_ui: the values Reset goes back to)."""
        for name, row in self._rows.items():
            if name in ui_values:
                row.set_value(ui_values[name], own_ui[name])
