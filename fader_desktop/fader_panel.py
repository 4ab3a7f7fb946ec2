"""The fader panel: a face selector and one fader per attribute, built from the model's metadata.

The panel is a view of the window's EditSession (core/edit_session.py): its widgets write the
session (a fader sets a slider value, the face selector selects, the reset buttons reset) and
show what the session holds, updating themselves from its change notifications. A right-click
on a two-valued fader corrects the face's own value where the classifier misread it (the triangle
moves to the other end, and the fader's range then edits the face the other way round). A widget
writes only when it shows something other than the session's value, so showing a value never
writes it back (no signal blocking needed). An attribute with more than two values shows a
`Towards` value: a combo picks the value to move towards, the slider says how far from the
face's own mix.

A value beyond the slider's range (a pasted edit or a recipe may exaggerate up to
`core.attributes.value_limits`) is shown as it is: the number box widens to the accepted values,
the slider stops at its end with an outward arrow on its handle, and both tooltips say so.

Screen readers (Orca, Narrator) read Qt's accessibility tree: each fader's slider is named by its
attribute and its description says the value in the fader's own words ("1.00, yes"), kept in step
with the value; the number box, the reset button and the value combo are named by their attribute.
A slider's accessible value is the fader's (Qt's own gave its raw position, 0 … SLIDER_STEPS):
`FaderAccessible`, made for each fader's slider by a factory installed with the first fader, gives
it as a number in the slider's range (0.4 of -1 … 2: what Orca reads) and, as the value's text, in
words ("0.40, between no and yes"; Qt's AT-SPI bridge passes on only the number).
"""
from __future__ import annotations

import time
import weakref

import shiboken6
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QAccessible, QAccessibleValueChangeEvent, QAccessibleValueInterface, QAction, QColor,
                           QContextMenuEvent, QFont, QKeySequence, QPainter, QPainterPath, QPalette, QPen, QShortcut,
                           QValidator)
from PySide6.QtWidgets import (QAbstractSpinBox, QAccessibleWidget, QApplication, QComboBox, QDoubleSpinBox, QFrame,
                               QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSlider, QStyle,
                               QStyleOptionSlider, QToolButton, QVBoxLayout, QWidget)

from core.attributes import pure_label, towards, value_limits, value_to_code
from core.edit_session import ALL_FACES, UNSURE_READING, EditSession, Towards, own_slider, sure_percent

from .plain_text import describe, ended, literal_tip, no_mnemonic, set_literal_tip, spoken

SLIDER_STEPS = 1000
# What a fader does with keys, for the Help menu's list of shortcuts (the menus' actions list their own)
FADER_KEYS = (
    ("← / →, ↓ / ↑", "a fader: one hundredth of its range down / up"),
    ("Page Down / Page Up", "a fader: a tenth of its range down / up"),
    ("Home / End", "a fader: to the end of its range"),
    ("type a number, Enter", "in a fader's box: that value (beyond the slider's range too)"),
    ("Shift+F10, Menu key", "on a fader: correct the face's reading (as a right-click)"),
    ("Tab / Shift+Tab", "the next / previous fader, box or button"),
)
# Steps on one fader (arrow keys, PgUp/PgDn, Home/End, the wheel, the number box's arrows) with no
# longer pause than this between them, and no other edit, are one undo step, as a drag is: holding
# an arrow key for 40 steps took 40 Ctrl+Z.
STEP_MERGE_SECONDS = 1.0


def display_name(name: str) -> str:
    """'Mouth_Slightly_Open' -> 'Mouth slightly open' (CelebA's names are identifiers)."""
    words = name.replace("_", " ").split()
    if not words:
        return name
    return " ".join([words[0][:1].upper() + words[0][1:]] + [w.lower() if not w.isupper() or len(w) > 3 else w
                                                           for w in words[1:]])


class MarkedSlider(QSlider):
    """A horizontal slider with small marks at the attribute's pure values and the face's own value."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._ticks: list = []   # slider positions (ints) of the pure values
        self._own: int | None = None
        self._own_unsure = False   # the classifier was unsure of the face's own value: a hollow mark
        self._beyond = 0   # -1 / +1: the value lies beyond the slider's low / high end (an arrow on the handle)
        # what the slider's position means, for a screen reader (FaderAccessible): its FaderRow
        self.fader = None
        self.setMinimumHeight(26)
        _install_accessible_factory()

    def set_marks(self, ticks, own, unsure: bool = False) -> None:
        self._ticks, self._own, self._own_unsure = list(ticks), own, bool(unsure)
        self.update()

    def set_beyond(self, side: int) -> None:
        """Mark the handle with an arrow pointing past the slider's end (-1 low, +1 high, 0 none)."""
        if side != self._beyond:
            self._beyond = side
            self.update()

    def beyond(self) -> int:
        """-1 / +1 where the value shown lies beyond the slider's low / high end, else 0."""
        return self._beyond

    def own_mark(self) -> tuple:
        """(slider position of the face's own value or None, whether it is marked unsure)."""
        return self._own, self._own_unsure

    def _x_of(self, value: int, opt: QStyleOptionSlider) -> float:
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = groove.width() - handle.width()
        x = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), value, span)
        return groove.left() + handle.width() / 2 + x

    def _accent(self):
        """The marks' colour: the highlight, grey while disabled (the dark palette's disabled
        highlight is as blue as the enabled one)."""
        role = QPalette.ColorRole.Highlight if self.isEnabled() else QPalette.ColorRole.WindowText
        return self.palette().color(role)

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
            if self._own_unsure:
                p.strokePath(tri, QPen(self._accent(), 1.2))
            else:
                p.fillPath(tri, self._accent())
        p.end()
        if self.isEnabled():
            super().paintEvent(event)
        else:
            self._paint_disabled(opt)
        if self.hasFocus() and self.isEnabled():
            # the style rings a slider only where the focus came by Tab: focused by a click, or
            # again after a dialog closed, the next arrow key moved a fader that showed no sign
            p = QPainter(self)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            ring = QColor(self.palette().color(QPalette.ColorRole.Highlight))
            ring.setAlpha(170)
            p.setPen(QPen(ring, 1.2))
            p.drawRoundedRect(QRectF(self.rect()).adjusted(0.6, 0.6, -0.6, -0.6), 3, 3)
            p.end()
        if self._beyond:
            # on the handle (drawn above): an arrow pointing outwards, "the value goes on past here"
            handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                                 QStyle.SubControl.SC_SliderHandle, self)
            c, d = QPointF(handle.center()), 4.0 * self._beyond
            arrow = QPainterPath(QPointF(c.x() + d, c.y()))
            arrow.lineTo(QPointF(c.x() - d, c.y() - 4))
            arrow.lineTo(QPointF(c.x() - d, c.y() + 4))
            arrow.closeSubpath()
            p = QPainter(self)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.fillPath(arrow, self._accent())
            p.strokePath(arrow, QPen(self.palette().color(QPalette.ColorRole.Base), 1.0))
            p.end()

    def _paint_disabled(self, opt: QStyleOptionSlider) -> None:
        """The groove empty and the handle where the value is: the style fills the groove up to
        the handle in the highlight colour whatever the state, and a disabled fader (no face
        found) looked as live as an enabled one. The groove is drawn as at the slider's minimum,
        where nothing is filled, with no highlight to fill with."""
        p = QPainter(self)
        groove = QStyleOptionSlider(opt)
        groove.subControls = QStyle.SubControl.SC_SliderGroove
        groove.sliderPosition = groove.sliderValue = groove.minimum
        clear = Qt.GlobalColor.transparent
        for role in (QPalette.ColorRole.Highlight, getattr(QPalette.ColorRole, "Accent", None)):
            if role is not None:
                groove.palette.setColor(role, clear)
        self.style().drawComplexControl(QStyle.ComplexControl.CC_Slider, groove, p, self)
        handle = QStyleOptionSlider(opt)
        handle.subControls = QStyle.SubControl.SC_SliderHandle
        self.style().drawComplexControl(QStyle.ComplexControl.CC_Slider, handle, p, self)
        p.end()


# What a screen reader gets of a fader's slider. Qt's own interface for a slider gives its raw
# position (667 of 0 … 1000): a factory (QAccessible.installFactory) gives each MarkedSlider a
# FaderAccessible instead, which gives the fader's value. PySide keeps every interface a factory
# made (one per slider, deleted with it by Qt); an interface_cast that raises or returns None
# crashes the process, so it never does.
_NULL = shiboken6.VoidPtr(0)


class _FaderValue(QAccessibleValueInterface):
    """The fader's value as a number in the slider's range (a screen reader's value of a slider)."""

    def __init__(self, iface):
        super().__init__()
        self._iface = weakref.ref(iface)   # the interface keeps this one: no cycle

    def _row(self):
        iface = self._iface()
        return getattr(iface.widget(), "fader", None) if iface is not None else None

    def _range(self) -> tuple:
        row = self._row()
        return row.accessible_range() if row is not None else (0.0, 0.0, 0.0)

    def currentValue(self):
        row = self._row()
        return row.accessible_value() if row is not None else 0.0

    def setCurrentValue(self, value) -> None:
        row = self._row()
        if row is not None:
            row.set_accessible_value(float(value))

    def minimumValue(self):
        return self._range()[0]

    def maximumValue(self):
        return self._range()[1]

    def minimumStepSize(self):
        return self._range()[2]


class FaderAccessible(QAccessibleWidget):
    """A fader's slider for a screen reader: as Qt's slider (role, name, description, state), but
    its value is the fader's, in words ("0.40, between no and yes") and as a number (0.4)."""

    def __init__(self, slider):
        super().__init__(slider, QAccessible.Role.Slider)
        self._value = _FaderValue(self)

    def text(self, t):
        if t == QAccessible.Text.Value:
            slider = self.widget()
            row = getattr(slider, "fader", None)
            return row.accessible_words() if row is not None else str(slider.value())
        return super().text(t)

    def interface_cast(self, t):
        try:
            if t == QAccessible.InterfaceType.ValueInterface:
                return shiboken6.VoidPtr(shiboken6.getCppPointer(self._value)[0])
            found = super().interface_cast(t)
        except Exception:   # noqa: BLE001 - see above: an error here is a crash
            return _NULL
        return _NULL if found is None else found


def _fader_accessible(_key: str, obj):
    try:
        return FaderAccessible(obj) if isinstance(obj, MarkedSlider) else None
    except Exception:   # noqa: BLE001 - Qt's own slider interface then
        return None


def _install_accessible_factory() -> None:
    """Install the factory once per application (PySide removes it with the application)."""
    app = QApplication.instance()
    if app is not None and not app.property("_fader_accessible"):
        app.setProperty("_fader_accessible", True)
        QAccessible.installFactory(_fader_accessible)


class ElidedLabel(QLabel):
    """A one-line plain-text label that asks for no more width than a few letters and shows as
    much of its text as fits, ending in "…" where it is cut; ``text()`` stays whole. A model's
    attribute named with 40 characters widened its fader row past the dock, and the number box
    and reset button of every fader were cut off."""

    def __init__(self, text: str = "", parent=None, least: str = "Mmm…"):
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._least = least   # the text whose width it asks for at least ("": none, it may vanish)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance(self._least)), hint.height())

    def paintEvent(self, event) -> None:
        r = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, r.width())
        p = QPainter(self)
        self.style().drawItemText(p, r, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), self.palette(),
                                  self.isEnabled(), text, self.foregroundRole())
        p.end()


class DecimalSpinBox(QDoubleSpinBox):
    """A value box that takes "." and "," alike as the decimal mark, whatever the locale. Qt's
    own refuses the other one keystroke by keystroke: "0,7" typed in an English locale lost the
    comma, then the 7 (07 is out of range), and Enter set 0 — a full flip of the fader."""

    soft: tuple = None   # (lo, hi): the fader's slider range, where the arrows stop unless the value is beyond
    stepping = False     # the value changing now is a step (arrow, PgUp/PgDn, wheel), not a typed value

    def stepBy(self, steps: int) -> None:
        """The arrows and PgUp/PgDn stop at the slider's ends; beyond them (a typed or pasted value)
        they nudge on within the box's whole range."""
        self.interpretText()   # a value typed but not yet entered is where the step starts (as Qt's own)
        self.stepping = True
        try:
            v = self.value()
            if self.soft is not None and self.soft[0] <= v <= self.soft[1]:
                self.setValue(min(max(v + steps * self.singleStep(), self.soft[0]), self.soft[1]))
                self.selectAll()
                return
            super().stepBy(steps)
        finally:
            self.stepping = False

    def stepEnabled(self):
        flags = super().stepEnabled()
        v = self.value()
        if self.soft is not None and self.soft[0] <= v <= self.soft[1] and not self.wrapping():
            Step = QAbstractSpinBox.StepEnabledFlag
            flags = (Step.StepUpEnabled if v < self.soft[1] else Step.StepNone) | \
                    (Step.StepDownEnabled if v > self.soft[0] else Step.StepNone)
        return flags

    def _as_local(self, text: str) -> str:
        point = self.locale().decimalPoint()
        return text.replace("," if point == "." else ".", point)

    def _number(self, text: str):
        v, ok = self.locale().toDouble(self._as_local(text).strip())
        return v if ok else None

    def validate(self, text: str, pos: int):
        result = super().validate(self._as_local(text), pos)
        if result[0] == QValidator.State.Invalid and self._number(text) is not None:
            # a number past the box's range: Qt refused its keys one by one (99 typed in a box
            # that goes to 4 left the old value, silently); typed, it is set to the nearest end
            return QValidator.State.Intermediate, text, pos
        return result

    def fixup(self, text: str) -> str:
        """On Enter or leaving the box: a number past the range becomes its nearest end; anything
        else not a number ("", "-") goes back to the value the box had."""
        v = self._number(text)
        if v is None:
            return self.textFromValue(self.value())
        return self.textFromValue(min(self.maximum(), max(self.minimum(), v)))

    def valueFromText(self, text: str) -> float:
        return super().valueFromText(self._as_local(text))


class FaderRow(QFrame):
    """One attribute: name, reset button, slider + exact-value box (and a value combo if n > 2).

    Bound to a session by the panel; with none it shows the attribute's first value, disabled.
    """

    def __init__(self, attr, drag_counter, parent=None):
        super().__init__(parent)
        self.attr = attr
        self.session: EditSession | None = None
        self._drag_counter = drag_counter   # shared callable -> a fresh drag id
        self._drag = 0
        # a run of steps (keys, wheel) is merged as a drag is: its id and the time of its last step
        self._step, self._step_at = 0, 0.0
        self._slider_step = False   # the slider's value change under way comes from a step, not a drag
        self._own = own_slider(attr, 0.0 if attr.is_binary else [1.0] + [0.0] * (attr.n - 1))
        self._said = (None, "")   # (slider position, value in words) a screen reader was last told of
        self._shown = self._blank = self._own
        lo, hi = attr.range
        self._lo, self._hi = lo, hi
        # what the fader's ends and marks say, in words (a screen reader's description of the slider)
        self._ends = (f"{attr.values[0]} at 0, {attr.values[1]} at 1; the slider goes {lo:g} to {hi:g}."
                      if attr.is_binary else
                      f"0 is the face's own value, 1 the chosen one; the slider goes {lo:g} to {hi:g}.")

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 6, 0, 6)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        # the model's names and value labels are shown as written (Qt took "<b>…</b>" for HTML)
        title = ElidedLabel(display_name(attr.name))
        f = QFont(title.font())
        f.setBold(True)
        title.setFont(f)
        set_literal_tip(title, f"{attr.name}: values {', '.join(attr.values)}; slider range {lo:g} … {hi:g}")
        self.title = title
        self.reset_button = QToolButton()
        self.reset_button.setText("↺")
        set_literal_tip(self.reset_button, f"Reset {display_name(attr.name)} to this face's own value")
        # a screen reader read the button as its glyph, "↺"
        self.reset_button.setAccessibleName(f"Reset {display_name(attr.name)}")
        self.reset_button.setAutoRaise(True)
        self.reset_button.clicked.connect(self._on_reset)
        self.slider = MarkedSlider()
        self.slider.fader = self   # what its value means, for a screen reader (FaderAccessible)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setSingleStep(SLIDER_STEPS // 100)
        self.slider.setPageStep(SLIDER_STEPS // 10)
        self.slider.setAccessibleName(display_name(attr.name))
        self.spin = DecimalSpinBox()
        # it has no label: a screen reader read it as a bare number
        self.spin.setAccessibleName(f"{display_name(attr.name)} value")
        # a value typed beyond the slider's range is taken as a pasted one is (up to value_limits),
        # shown as beyond; the box's arrows stop at the slider's ends (soft). The range clamped a
        # typed 3 to 2 without a word.
        self.spin.soft = (lo, hi)
        self.spin.setRange(*value_limits(attr))
        self.spin.setDecimals(2)
        self.spin.setSingleStep(0.05)
        self.spin.setKeyboardTracking(False)  # one edit when the user presses Enter, not per keystroke
        # a typed number past the range is set to its nearest end (DecimalSpinBox.fixup)
        self.spin.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        self.spin.setFixedWidth(68)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.combo = None
        self.own_action = None   # two-valued attributes: "the reading was wrong", on a right-click
        if attr.is_binary:
            self.own_action = QAction(self)
            self.own_action.triggered.connect(self._on_correct_own)
            self.addAction(self.own_action)
            self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
            # the other key for a context menu (Windows, GNOME, KDE): only the Menu key opened it
            menu_key = QShortcut(QKeySequence("Shift+F10"), self, self._menu_from_keyboard)
            menu_key.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        # "unsure": the classifier's reading of this face is a guess (see UNSURE_READING); hidden otherwise
        # a note, not a control: in a narrow row it gives way (the hollow triangle still says it)
        self.unsure_label = ElidedLabel("reading unsure", least="")
        small = QFont(self.font())
        small.setPointSizeF(small.pointSizeF() * 0.85)
        self.unsure_label.setFont(small)
        self.unsure_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.unsure_label.setVisible(False)
        head = QHBoxLayout()
        head.setSpacing(8)
        head.addWidget(title)
        if not attr.is_binary:
            head.addWidget(self.unsure_label, 0, Qt.AlignmentFlag.AlignBaseline)
        head.addStretch(1)
        grid.addLayout(head, 0, 0, 1, 2)
        grid.addWidget(self.reset_button, 0, 2, Qt.AlignmentFlag.AlignRight)
        if attr.is_binary:
            grid.addWidget(self.slider, 1, 0, 1, 2)
            grid.addWidget(self.spin, 1, 2)
            ends = QHBoxLayout()
            ends.setSpacing(8)
            small = QFont(self.font())
            small.setPointSizeF(small.pointSizeF() * 0.85)
            for text, align in ((f"← {attr.values[0]}", Qt.AlignmentFlag.AlignLeft),
                                (f"{attr.values[1]} →", Qt.AlignmentFlag.AlignRight)):
                lab = ElidedLabel(text)
                set_literal_tip(lab, text)
                lab.setFont(small)
                lab.setForegroundRole(QPalette.ColorRole.PlaceholderText)
                ends.addWidget(lab, 0, align)
                if align == Qt.AlignmentFlag.AlignLeft:
                    # between the two ends, where a long title ("Mouth slightly open") leaves room:
                    # beside the title it widened the row past the dock, clipping ↺ and the spin box
                    ends.addWidget(self.unsure_label, 1, Qt.AlignmentFlag.AlignCenter)
            grid.addLayout(ends, 2, 0, 1, 2)
            ticks = [self._to_slider(0.0), self._to_slider(1.0)]
            self.slider.set_marks([t for t, v in zip(ticks, (0.0, 1.0)) if lo <= v <= hi], None)
        else:
            self.combo = QComboBox()
            self.combo.addItems(list(attr.values))
            self.combo.setToolTip("The value to move towards")
            # long value names are cut in the closed box (the list shows them whole), not the row widened
            self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            self.combo.setMinimumContentsLength(6)
            row = QHBoxLayout()
            towards_label = QLabel("towards")
            # labelled for screen readers: Orca takes a combo box's label from its buddy (its name is
            # the value shown), Narrator its name, which says which attribute it belongs to
            towards_label.setBuddy(self.combo)
            self.combo.setAccessibleName(f"{display_name(attr.name)}: towards")
            row.addWidget(towards_label)
            row.addWidget(self.combo, 1)
            grid.addLayout(row, 1, 0, 1, 3)
            grid.addWidget(self.slider, 2, 0, 1, 2)
            grid.addWidget(self.spin, 2, 2)
            self.slider.set_marks([self._to_slider(v) for v in (0.0, 1.0) if lo <= v <= hi], None)
            self.combo.currentIndexChanged.connect(self._on_combo)
        grid.setColumnStretch(0, 1)
        self.slider.actionTriggered.connect(self._on_slider_action)   # before the valueChanged it causes
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderPressed.connect(self._on_pressed)
        self.slider.sliderReleased.connect(self._on_released)
        self.spin.valueChanged.connect(self._on_spin)
        self.show_value(self._shown, self._own, face=False)

    def _menu_from_keyboard(self) -> None:
        """The context menu the Menu key opens on the focused part of the row (the slider: the row's
        correction; the number box: its own edit menu)."""
        focus = QApplication.focusWidget()
        target = focus if focus is not None and self.isAncestorOf(focus) else self
        pos = target.rect().center()
        # posted: the menu runs its own event loop, not inside the shortcut's handler
        QApplication.postEvent(target, QContextMenuEvent(QContextMenuEvent.Reason.Keyboard, pos,
                                                         target.mapToGlobal(pos)))

    # -- mapping -------------------------------------------------------------------------------
    def _to_slider(self, v: float) -> int:
        t = (v - self._lo) / (self._hi - self._lo)
        return int(round(min(1.0, max(0.0, t)) * SLIDER_STEPS))

    def _from_slider(self, i: int) -> float:
        return round(self._lo + (self._hi - self._lo) * i / SLIDER_STEPS, 3)

    def _number(self, v) -> float:
        return v.strength if isinstance(v, Towards) else float(v)

    def _as_fader(self, value, own):
        """(value as this fader shows it, whether exactly): a number for a two-valued attribute, a
        Towards for one with more values. A pasted edit or a recipe may hold two weights, an index of
        a pure value or a mix of weights instead; a mix that no Towards reaches is shown as the
        nearest one (the fader's first move replaces it)."""
        if isinstance(value, Towards):
            return value, True
        if self.attr.is_binary:
            if isinstance(value, (list, tuple)):
                w0, w1 = (float(x) for x in value)
                return w1, abs(w0 + w1 - 1.0) <= 1e-6
            return float(value), True
        code = value_to_code(self.attr, value)
        # the own value is a Towards only for the blank row shown without a photo: its pure value
        base = ([1.0 if j == own.target else 0.0 for j in range(self.attr.n)] if isinstance(own, Towards)
                else [float(x) for x in own])
        diff = [c - b for c, b in zip(code, base)]
        if max(abs(d) for d in diff) <= 1e-9:
            return Towards(max(range(len(base)), key=base.__getitem__), 0.0), True
        target = max(range(len(diff)), key=diff.__getitem__)
        strength = diff[target] / (1.0 - base[target]) if base[target] < 1.0 - 1e-9 else 1.0
        shown = Towards(target, round(strength, 6))
        return shown, all(abs(a - b) <= 1e-6 for a, b in zip(towards(base, target, shown.strength), code))

    def _with_number(self, v: float):
        if self.attr.is_binary:
            return float(v)
        return Towards(self._shown.target, float(v))   # _shown is a Towards here (show_value)

    def _spin_shows(self, v: float) -> bool:
        """Whether the number box shows `v` as well as it can (clamped, to its decimals)."""
        v = min(self.spin.maximum(), max(self.spin.minimum(), v))
        return abs(self.spin.value() - v) <= 0.5 * 10 ** -self.spin.decimals() + 1e-12

    def _beyond(self, v: float) -> int:
        """-1 / +1 where `v` lies beyond the slider's low / high end (by more than the box's rounding), else 0."""
        eps = 0.5 * 10 ** -self.spin.decimals()
        return 1 if v > self._hi + 1e-9 and round(v - self._hi, 6) >= eps else (
            -1 if v < self._lo - 1e-9 and round(self._lo - v, 6) >= eps else 0)

    def _fit_spin(self, v: float, beyond: int) -> None:
        """Show `v` in the number box, which takes every value the model accepts (value_limits);
        its arrows stop at the slider's ends unless `v` lies beyond them (DecimalSpinBox.soft).
        The range only ever clamps a value it already holds, so showing writes nothing."""
        lo, hi = value_limits(self.attr)
        lo, hi = min(lo, v), max(hi, v)
        self.spin.setRange(min(lo, self.spin.minimum()), max(hi, self.spin.maximum()))   # widen, keep the value
        self.spin.setValue(v)
        self.spin.setRange(lo, hi)

    def _beyond_text(self, v: float, beyond: int) -> str:
        if not beyond:
            return ""
        a, b = value_limits(self.attr)
        return (f"{display_name(self.attr.name)} is at {v:.2f}, beyond the slider's range {self._lo:g} … {self._hi:g} "
                f"(typed, a pasted edit or a recipe): the slider stops at its {'high' if beyond > 0 else 'low'} end, "
                f"the box shows the value and takes {a:g} … {b:g}")

    # -- showing the session -------------------------------------------------------------------
    def show_value(self, value, own, certainty=None, face: bool = True) -> None:
        """Show a value (and the face's own one, for the marks and the reset button; with the
        classifier's probability of that reading where it stands, to mark it when unsure). The
        widgets' handlers see that they already show the value and write nothing. `face` False:
        there is no face (no photo, or none found in it), so no reading of one is marked."""
        value, exact = self._as_fader(value, own)
        self._shown, self._own = value, own
        number = self._number(value)
        beyond = self._beyond(number)
        if not self.slider.isSliderDown():   # never yank the handle out of the user's hand
            self.slider.setValue(self._to_slider(number))
        self.slider.set_beyond(beyond)
        self._fit_spin(number, beyond)
        far = self._beyond_text(number, beyond)
        if self.combo is not None and isinstance(value, Towards):
            self.combo.setCurrentIndex(int(value.target))
        # a filled triangle at 0 for a photo without a face read as a reading of a face that isn't there
        own_mark = None if not self.attr.is_binary or not face else self._to_slider(float(own))
        unsure = own_mark is not None and certainty is not None and certainty < UNSURE_READING
        self.slider.set_marks(self.slider._ticks, own_mark, unsure)
        if self.attr.is_binary and not face:
            tip = far + "." if far else ""
        elif self.attr.is_binary:
            read = pure_label(self.attr, own)
            if certainty is None:
                how = f"This face's own value: {read}."
            else:
                how = (f"The model reads this face as {read} ({sure_percent(certainty)} sure)"
                       + (": unsure, so check it (a hollow triangle)." if unsure else "."))
            tip = (f"{how} The triangle marks it; right-click to correct it where it "
                   "is wrong" + (f".\n{far}." if far else ""))
            set_literal_tip(self.unsure_label, tip)
        else:
            mix = "" if exact else (
                f"{display_name(self.attr.name)} holds a mix of its values from a pasted edit or a recipe; "
                f"the fader shows the nearest move towards {self.combo.itemText(value.target) if self.combo else value.target}, "
                "and moving it replaces the mix")
            far = "; ".join(x for x in (far, mix) if x)
            tip = f"{far}." if far else ""
        # the slider's and the box's descriptions say more than the tooltips (below, in the fader's words)
        self.slider.setToolTip(literal_tip(tip))
        a, b = value_limits(self.attr)
        spin_tip = f"{far}." if far else (
            f"The slider goes {self._lo:g} … {self._hi:g}; a value typed beyond it, up to {a:g} … {b:g}, "
            "exaggerates the edit (expect colour blotches)")
        self.spin.setToolTip(literal_tip(spin_tip))
        # what a screen reader says of the fader: the value as the box and the ends show it, then the
        # tooltip's words (without a description, Qt read out the tooltip's markup)
        # ("…" read as "ellipsis"; the keys in place of the right-click a screen reader's user cannot aim)
        value = self._spoken(number)
        said = ended(tip)
        keys = "Shift+F10 or the Menu key corrects the reading." if self.attr.is_binary and face else ""
        describe(self.slider, spoken(" ".join(x for x in (value, self._ends, said, keys) if x)))
        describe(self.spin, spoken(" ".join(x for x in (value, spin_tip) if x)))
        self.unsure_label.setVisible(unsure)
        if self.own_action is not None:
            every = self.session is not None and self.session.selected == ALL_FACES
            # in the values' own words, as the fader's ends say them ("← no", "yes →"): it said "this
            # face is 0, not 1" beside a fader labelled no / yes
            self.own_action.setText(no_mnemonic(
                f"{display_name(self.attr.name)}: {'every' if every else 'this'} face is "
                f"{pure_label(self.attr, 1 - round(float(own)))}, not {pure_label(self.attr, own)} (correct the reading)"))
            self.own_action.setEnabled(self.session is not None and bool(self.session.n_faces))
        self._refresh_hint()
        self._announce_value()

    def _announce_value(self) -> None:
        """Tell a screen reader that the slider's value in words changed where its handle did not
        move (Qt tells it of every move): another value to move towards, a value beyond the end."""
        said = (self.slider.value(), self.accessible_words())
        if said[0] == self._said[0] and said[1] != self._said[1]:
            QAccessible.updateAccessibility(QAccessibleValueChangeEvent(self.slider, self.accessible_value()))
        self._said = said

    def _spoken(self, number: float) -> str:
        """The value as the fader shows it, for a screen reader: "1.00, yes", "0.40, between no and
        yes", "2.00, past yes"; "0.50 towards blond" for an attribute with more values."""
        shown = self.spin.textFromValue(number)
        near = 0.5 * 10 ** -self.spin.decimals()
        if self.attr.is_binary:
            lo, hi = self.attr.values[0], self.attr.values[1]
            words = (lo if abs(number) < near else hi if abs(number - 1.0) < near else
                     f"between {lo} and {hi}" if 0.0 < number < 1.0 else f"past {hi if number > 1.0 else lo}")
            return f"{shown}, {words}."
        target = self.combo.currentText() if self.combo is not None else ""
        return (f"{shown} towards {target}" + (": the face's own value." if abs(number) < near else "."))

    def value(self):
        return self._shown

    # -- for a screen reader (FaderAccessible) -------------------------------------------------
    def accessible_value(self) -> float:
        """The value the slider stands for: the one shown, or, where the handle has moved on from
        it, the handle's (Qt announces a move before the session takes it)."""
        number = self._number(self._shown)
        i = self.slider.value()
        return number if i == self._to_slider(number) else self._from_slider(i)

    def accessible_words(self) -> str:
        """The slider's value in words, as the box and the ends say it: "0.40, between no and yes"."""
        return self._spoken(self.accessible_value()).rstrip(".")

    def accessible_range(self) -> tuple:
        """(low end, high end, one step) of the slider, in the fader's values."""
        return self._lo, self._hi, (self._hi - self._lo) * self.slider.singleStep() / SLIDER_STEPS

    def set_accessible_value(self, v: float) -> None:
        """A value set by a screen reader: taken as one typed in the box (beyond the slider's range too)."""
        if self.isEnabled() and self.session is not None and self.session.n_faces:
            self.spin.setValue(v)

    def is_modified(self) -> bool:
        if self.session is None or not self.session.n_faces:
            return False
        return self.session.is_modified(self.session.shown_face(), self.attr.name)

    def clear(self) -> None:
        """Show the attribute's first value, as with no photo (a photo without faces must not keep
        the previous photo's values on show)."""
        self.show_value(self._blank, self._blank, face=False)

    def _refresh_hint(self) -> None:
        modified = self.is_modified()
        self.reset_button.setEnabled(modified)
        f = self.title.font()
        f.setItalic(modified)
        self.title.setFont(f)

    # -- user edits: written to the session ----------------------------------------------------
    def _write(self, value, step: bool = False) -> None:
        """Set the value in the session; a step (`step`) goes into the same undo step as the steps
        just before it on this fader (see STEP_MERGE_SECONDS), a drag's moves into one per drag."""
        if self.session is not None and self.session.n_faces:
            merge = self._drag or (self._step_id() if step else None)
            self.session.set_slider(self.attr.name, value, merge=merge or None)

    def _step_id(self) -> int:
        """The merge id of this step: the run's, unless the last step was longer ago than
        STEP_MERGE_SECONDS. (An edit in between ends the run too: the window merges only into
        the latest undo step.)"""
        now = time.monotonic()
        if not self._step or now - self._step_at > STEP_MERGE_SECONDS:
            self._step = self._drag_counter()
        self._step_at = now
        return self._step

    def _on_pressed(self) -> None:
        self._drag = self._drag_counter()

    def _on_released(self) -> None:
        self._drag = 0

    def _on_slider_action(self, _action: int) -> None:
        # a key, the wheel or a click on the groove; SliderMove also comes with every move of a
        # drag, which merges by its own id
        self._slider_step = not self.slider.isSliderDown()

    def _on_slider(self, i: int) -> None:
        step, self._slider_step = self._slider_step, False
        if i == self._to_slider(self._number(self._shown)):
            return   # the slider shows the session's value already
        self._write(self._with_number(self._from_slider(i)), step=step)

    def _on_spin(self, v: float) -> None:
        if self._spin_shows(self._number(self._shown)):
            return
        self._write(self._with_number(round(v, 3)), step=self.spin.stepping)

    def _on_combo(self, idx: int) -> None:
        shown = self._shown   # a Towards for an attribute with a combo (show_value)
        if idx == shown.target:
            return
        strength = shown.strength
        if strength == 0.0:
            # choosing a value means "go there": with zero strength the choice would do nothing
            strength = min(1.0, self._hi)
        self._write(Towards(idx, strength))

    def _on_correct_own(self) -> None:
        s = self.session
        if s is not None and s.n_faces:
            target = 1.0 - round(float(s.own[s.shown_face()][self.attr.name]))
            s.set_own(self.attr.name, target, faces=s.targets(),
                      label=f"{display_name(self.attr.name)}: own value {target:g}")

    def _on_reset(self) -> None:
        if self.session is not None and self.session.n_faces:
            self.session.reset(name=self.attr.name, faces=self.session.targets(),
                               label=f"Reset {display_name(self.attr.name)}")


class FaderPanel(QWidget):
    """Face selector + faders + Reset face, bound to the window's EditSession (set_session).

    The Reset face button resets what the faders edit, as Edit ▸ Reset face does: the selected
    face, or under All faces every face (it says "Reset all faces" then).
    """

    openModelRequested = Signal()
    dragFinished = Signal()   # a slider handle was let go

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: dict = {}
        self._drag_serial = 0
        self._count = 0
        self.session: EditSession | None = None
        self._unsubscribe = None
        self.setMinimumWidth(260)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 10)
        outer.setSpacing(8)

        face_row = QHBoxLayout()
        face_label = QLabel("Face")
        self.face_combo = QComboBox()
        face_label.setBuddy(self.face_combo)   # Orca's label for it (its name is the face shown)
        self.face_combo.setAccessibleName("Face")   # Narrator's
        face_row.addWidget(face_label)
        self.face_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.face_combo.setToolTip("The face the faders edit (click a face in the photo to select it)")
        self.face_combo.activated.connect(self._on_face_combo)   # the user's choice only
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
        self._scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)   # a Tab stop that shows nothing: its faders take it
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

        self.reset_all_button = QPushButton("Reset face")   # its text follows the selection (_name_reset)
        self.reset_all_button.clicked.connect(self._on_reset_all)
        outer.addWidget(self.reset_all_button)
        self.set_attributes([])

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
            row.slider.sliderReleased.connect(self.dragFinished)
            row.session = self.session if self.session is not None and attr.name in {
                a.name for a in self.session.attributes} else None
            self._rows_layout.insertWidget(self._rows_layout.count() - 1, row)
            self._rows[attr.name] = row
        # Tab goes down the panel: rows made after the window came last, after the toolbar
        chain = [self.face_combo] + [w for row in self._rows.values()
                                     for w in (row.combo, row.slider, row.spin, row.reset_button) if w is not None]
        for a, b in zip(chain, chain[1:] + [self.reset_all_button]):
            QWidget.setTabOrder(a, b)
        self.open_model_button.setVisible(not attributes)
        self._show_values()
        self._update_enabled()

    def attribute_names(self) -> list:
        return list(self._rows)

    def dragging(self) -> bool:
        """Whether the user holds a slider handle (the preview may use the faster draft decode)."""
        return any(row.slider.isSliderDown() for row in self._rows.values())

    def row(self, name: str) -> FaderRow:
        return self._rows[name]

    # -- the session ---------------------------------------------------------------------------
    def set_session(self, session: EditSession | None) -> None:
        """Show (and edit) a session: its faces in the selector, its values in the faders."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.session = session
        names = {a.name for a in session.attributes} if session is not None else set()
        for name, row in self._rows.items():
            row.session = session if name in names else None
        if session is not None:
            self._unsubscribe = session.subscribe(self._on_change)
        self._fill_faces()
        self._show_values()

    def _on_change(self, change) -> None:
        if change.kind == "select":
            self._show_selection()
        self._show_values()

    def _fill_faces(self) -> None:
        """Face 1 … Face n, plus All faces when there are several."""
        count = self.session.n_faces if self.session is not None else 0
        self._count = count
        self.face_combo.clear()   # its handler finds no session face to select while empty
        for i in range(count):
            self.face_combo.addItem(f"Face {i + 1}", i)
            # the command line counts from 0: a number copied from here into --face took the next face
            self.face_combo.setItemData(i, f"Face {i + 1}: --face {i} on the command line (counted from 0)",
                                        Qt.ItemDataRole.ToolTipRole)
        if count > 1:
            self.face_combo.addItem("All faces", ALL_FACES)
        self.face_combo.setEnabled(count > 1)
        self._show_selection()
        self._update_enabled()

    def _show_selection(self) -> None:
        tip = "The face the faders edit (click a face in the photo to select it)"
        if self.session is not None:
            idx = self.face_combo.findData(self.session.selected)
            self.face_combo.setCurrentIndex(max(0, idx))
            if self.session.selected != ALL_FACES and self.session.n_faces > 1:
                tip += f"; on the command line this is --face {self.session.selected} (counted from 0)"
        self.face_combo.setToolTip(tip)
        self._name_reset()

    def _name_reset(self) -> None:
        """The reset button says what it resets, what the faders edit: one face, or every face under All faces."""
        s = self.session
        every = s is not None and s.selected == ALL_FACES and s.n_faces > 1
        self.reset_all_button.setText("Reset all faces" if every else "Reset face")
        self.reset_all_button.setToolTip("Every fader of every face back to its own value" if every else
                                         "Every fader of the selected face back to its own value "
                                         "(Edit ▸ Reset all faces resets every face)")

    def _show_values(self) -> None:
        self._name_reset()
        s = self.session
        if s is None or not s.n_faces:
            for row in self._rows.values():
                row.clear()
            return
        face = s.shown_face()
        for name, row in self._rows.items():
            if row.session is s:
                row.show_value(s.slider(name, face), s.own[face][name], s.reading_certainty(name, face))

    def selected_face(self) -> int:
        data = self.face_combo.currentData()
        return int(data) if data is not None else 0

    def select_face(self, index: int) -> None:
        """Select a face (a click on the photo): the session's selection, shown here."""
        if self.session is not None and self.face_combo.findData(index) >= 0:
            self.session.select(index)

    def _on_face_combo(self, _i: int) -> None:
        data = self.face_combo.currentData()
        if self.session is not None and data is not None and int(data) != self.session.selected:
            self.session.select(int(data))

    def _on_reset_all(self) -> None:
        s = self.session
        if s is not None and s.n_faces:
            s.reset(faces=s.targets(), label="Reset face" if s.selected != ALL_FACES else "Reset all faces")

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _update_enabled(self) -> None:
        on = bool(self._rows) and self._count > 0
        for row in self._rows.values():
            row.setEnabled(on)
        self.reset_all_button.setEnabled(on)
