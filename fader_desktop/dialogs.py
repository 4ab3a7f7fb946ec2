"""Dialogs: export options, sweep export, model card, reference-checkpoint import, About, shortcuts."""
from __future__ import annotations

import html
import json
import platform
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSlider, QSpinBox,
                               QTextBrowser, QVBoxLayout, QWidget)

from core.attributes import listed, value_limits
from core.image_io import EXIF_FORMATS, IMAGE_SUFFIXES, LOSSY_FORMATS, SAVE_FORMATS
from core.run_files import train_program

from .fader_panel import display_name

# what the app writes (core.image_io.SAVE_FORMATS, as the command line does), by the names users know
EXPORT_FORMATS = (("JPEG", ".jpg"), ("PNG", ".png"), ("WebP", ".webp"), ("TIFF", ".tif"), ("BMP", ".bmp"))
_SUFFIX_FORMAT = {suffix: {"WEBP": "WebP"}.get(fmt, fmt) for suffix, fmt in SAVE_FORMATS.items()}
_READ_ONLY = set(IMAGE_SUFFIXES) - set(SAVE_FORMATS)


def typed_path(edit: QLineEdit) -> str:
    """A file or folder as typed in `edit` ("" when empty): "~/Pictures" is the home folder's (it was
    looked for, or created as a folder named "~", in whatever folder the app was started from)."""
    return path_text(edit.text())


def path_text(text: str) -> str:
    """A typed or pasted path as the file system names it ("" when empty): surrounding quotes
    dropped (Windows' "Copy as path" adds them; they became part of a folder's name, created in the
    app's working folder), a file:// URL (pasted from a browser or a file manager) made a local
    path, and "~" the home folder."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if text[:5].lower() == "file:":
        url = QUrl(text)
        if url.host().lower() == "localhost":   # RFC 8089: this machine (Qt took it for a network share)
            url.setHost("")
        if url.isLocalFile():
            text = url.toLocalFile()
    return str(Path(text).expanduser()) if text else ""


def browse_row(edit: QLineEdit, on_browse, text: str = "&Browse…") -> QHBoxLayout:
    """A path field with a Browse… button beside it (`text`: another access key where a dialog has
    two such buttons, as Alt+B can press only one)."""
    button = QPushButton(text)
    button.clicked.connect(on_browse)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row


# room for a window manager's title bar and borders, which are unknown until the window is shown
FRAME_ALLOWANCE = QSize(16, 40)


def screen_of(window):
    """The screen `window` is on, or will open on: its parent window's for a dialog not shown yet."""
    parent = window.parentWidget()
    if not window.isVisible() and parent is not None:
        return parent.window().screen()
    return QGuiApplication.screenAt(window.frameGeometry().center()) or window.screen() \
        or QGuiApplication.primaryScreen()


def fit_on_screen(window, size: QSize | None = None, centre: bool = False) -> bool:
    """Resize `window` to `size` (default: its own), cut to what its screen's available geometry
    holds with the window frame; moved to the centre of that screen when `centre` is set or it had
    to shrink. Returns whether it was shrunk."""
    screen = screen_of(window)
    size = QSize(size or window.size())
    if screen is None:
        window.resize(size)
        return False
    area = screen.availableGeometry()
    frame = window.frameGeometry().size() - window.geometry().size() if window.isVisible() else FRAME_ALLOWANCE
    room = area.size() - frame
    fitted = size.boundedTo(room).expandedTo(window.minimumSize())
    shrunk = fitted != size
    window.resize(fitted)
    if centre or shrunk:
        outer = fitted + frame
        window.move(area.x() + max(0, (area.width() - outer.width()) // 2),
                    area.y() + max(0, (area.height() - outer.height()) // 2))
    return shrunk


def buddy_label(text: str, field: QWidget) -> QLabel:
    """A form's label whose access key ("&File": Alt+F) focuses `field`. QFormLayout sets the buddy
    itself only for a row whose field is one widget, not a row of several (a field and its Browse…)."""
    label = QLabel(text)
    label.setBuddy(field)
    return label


def access_key(button, text: str):
    """Give a standard button (Cancel, Close) `text` with its access key: the platform's own text
    has none on Windows and in Qt's default theme, where Alt+C pressed nothing. Returns the button."""
    button.setText(text)
    return button


def visual_tab_order(box: QDialogButtonBox) -> None:
    """Tab through the box's buttons in the order they are shown: the platform's button layout
    puts Export before Cancel while Tab, following creation, went Cancel then Export. Called once
    the box is in its dialog (reparenting it loses the order)."""
    shown = [box.layout().itemAt(i).widget() for i in range(box.layout().count())]
    buttons = [b for b in shown if isinstance(b, QPushButton)]
    for a, b in zip(buttons, buttons[1:]):
        QWidget.setTabOrder(a, b)


def action_buttons(dialog: QDialog, text: str) -> tuple:
    """Cancel + one accepting button named `text` (with its access key, "&Export"), wired to the
    dialog; returns (box, button)."""
    box = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
    access_key(box.button(QDialogButtonBox.StandardButton.Cancel), "&Cancel")
    button = box.addButton(text, QDialogButtonBox.ButtonRole.AcceptRole)
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box, button


def loss_text(notes: list) -> str:
    """An export's notes in one sentence, those that a format cannot keep said once
    ("EXIF metadata, colour profile dropped (a BMP export cannot keep them)")."""
    import re
    same = [re.fullmatch(r"(.*) dropped \((a \S+ export cannot keep) it\)", n) for n in notes]
    grouped = [m for m in same if m]
    if len(grouped) < 2:
        return "; ".join(notes)
    rest = [n for n, m in zip(notes, same) if not m]
    return "; ".join(rest + [f"{', '.join(m[1] for m in grouped)} dropped ({grouped[0][2]} them)"])


class ExportDialog(QDialog):
    """Where and how to export: path, format, quality (JPEG/WebP), keep EXIF.

    `losses(suffix, keep_exif)`: what an export to that format could not keep of the photo (the
    notes the export itself returns: transparency in a JPEG, 16 bits, …), said under the format
    before anything is written; the status bar said it only once the file was there.
    """

    def __init__(self, path: Path, quality: int = 95, keep_exif: bool = True, parent=None, losses=None):
        super().__init__(parent)
        self.setWindowTitle("Export edited photo")
        self.setMinimumWidth(520)
        self._default = Path(path)
        self._losses = losses
        form = QFormLayout()
        self.path_edit = QLineEdit(str(path))
        # access keys (Alt+letter), one letter each in the dialog: File, Browse, fOrmat, Quality, Keep, Export, Cancel
        form.addRow(buddy_label("&File", self.path_edit), browse_row(self.path_edit, self._browse))
        self.format_combo = QComboBox()
        for name, suffix in EXPORT_FORMATS:
            self.format_combo.addItem(name, suffix)
        form.addRow("F&ormat", self.format_combo)
        self.quality_slider = QSlider(Qt.Orientation.Horizontal)
        self.quality_slider.setRange(1, 100)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        self.quality_slider.valueChanged.connect(self.quality_spin.setValue)
        self.quality_spin.valueChanged.connect(self.quality_slider.setValue)
        self.quality_spin.setValue(int(quality))
        q = QHBoxLayout()
        q.addWidget(self.quality_slider, 1)
        q.addWidget(self.quality_spin)
        self._quality_host = QWidget()
        self._quality_host.setLayout(q)
        q.setContentsMargins(0, 0, 0, 0)
        form.addRow(buddy_label("&Quality", self.quality_spin), self._quality_host)
        # named for screen readers: a label names only a field beside it, not one inside a row's widget
        self.quality_slider.setAccessibleName("Quality")
        self.quality_spin.setAccessibleName("Quality")
        self.exif_check = QCheckBox("&Keep the original's metadata (EXIF, XMP, IPTC: camera, date, place, …)")
        self.exif_check.setChecked(keep_exif)
        # the user's choice, for the formats that hold metadata: one that cannot shows the box
        # greyed and unticked (it showed ticked), and the choice comes back with a format that can
        self._keep_exif = bool(keep_exif)
        form.addRow("", self.exif_check)
        self._form = form
        # the notes may name a PNG's own text keys
        self.loss_note = self._add_note(form, Qt.TextFormat.PlainText)
        # a suffix the app does not write (z.gif) gets the format's own added: said here, before
        # the file is written, since the name on disk is then not the one typed
        self.name_note = self._add_note(form, Qt.TextFormat.RichText)   # the name written in bold, escaped
        buttons, self.export_button = action_buttons(self, "&Export")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)
        # once the button is in the dialog: made default in a box not yet in it, it was not the
        # dialog's default, which then took the first button after the File field, Browse…, so
        # Enter in the File field opened the file chooser instead of exporting
        self.export_button.setDefault(True)
        visual_tab_order(buttons)
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self.exif_check.toggled.connect(self._exif_toggled)
        self.path_edit.textChanged.connect(self._path_changed)
        self._path_changed(self.path_edit.text())

    @staticmethod
    def _add_note(form: QFormLayout, text_format) -> QLabel:
        """A word-wrapped note under the fields, hidden until there is something to say.

        Its row gets an empty label widget: a QFormLayout row without one keeps its field's
        sizeHint height (a word-wrapped QLabel's, laid out 4 to 6 lines narrow) as a floor under
        the height for the width it is given, so a 2-line note sat centred in 70-84 px, blank
        bands above and below it. Shown and hidden as a whole row, so the empty label leaves no
        spacing behind."""
        note = QLabel()
        note.setTextFormat(text_format)
        note.setWordWrap(True)
        form.addRow(QLabel(), note)
        form.setRowVisible(note, False)
        return note

    def _browse(self) -> None:
        filters = ";;".join(f"{name} ({' '.join('*' + x for x, f in _SUFFIX_FORMAT.items() if f == name)})"
                            for name, _suffix in EXPORT_FORMATS)
        current = self.format_combo.currentText()
        selected = next((f for f in filters.split(";;") if f.startswith(current)), "")
        # overwriting is confirmed by the window (it knows which file is the original)
        path, _ = QFileDialog.getSaveFileName(self, "Export as", self.path_edit.text(), filters, selected,
                                              QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.path_edit.setText(path)

    def _format_changed(self, _i: int) -> None:
        suffix = self.format_combo.currentData()
        p = Path(path_text(self.path_edit.text()))
        if p.suffix.lower() not in _SUFFIX_FORMAT or _SUFFIX_FORMAT[p.suffix.lower()] != self.format_combo.currentText():
            self.path_edit.blockSignals(True)
            self.path_edit.setText(str(p.with_suffix(suffix)) if p.name else "")
            self.path_edit.blockSignals(False)
        self._show_format()

    def _exif_toggled(self, on: bool) -> None:
        if self.exif_check.isEnabled():   # the user's click, not the box unticked for a format
            self._keep_exif = on
        self._show_format()

    def _path_changed(self, text: str) -> None:
        fmt = _SUFFIX_FORMAT.get(Path(path_text(text)).suffix.lower())
        if fmt:
            self.format_combo.blockSignals(True)
            self.format_combo.setCurrentIndex(self.format_combo.findText(fmt))
            self.format_combo.blockSignals(False)
        self._show_format()
        self.export_button.setEnabled(bool(text.strip()))

    def _show_format(self) -> None:
        """What the chosen format takes (quality, EXIF) and cannot keep of the photo, and the name
        written where it is not the one typed."""
        said = self._notes_said()
        fmt = self.format_combo.currentText()
        pillow = SAVE_FORMATS[self.format_combo.currentData()]
        self._quality_host.setEnabled(pillow in LOSSY_FORMATS)
        holds = pillow in EXIF_FORMATS
        self.exif_check.setEnabled(holds)
        self.exif_check.blockSignals(True)
        self.exif_check.setChecked(self._keep_exif and holds)
        self.exif_check.blockSignals(False)
        self.exif_check.setToolTip("" if holds else f"{fmt} files have no place for EXIF metadata")
        lost = self.losses()
        if lost:
            self.loss_note.setText(f"⚠ This export does not keep all of the photo: {loss_text(lost)}.")
        self._form.setRowVisible(self.loss_note, bool(lost))
        typed = Path(path_text(self.path_edit.text()))
        suffix = typed.suffix
        # an image type the app reads but does not write (z.gif, z.heic); a dot in a name
        # ("Party 2024.06.01") is no file type, and a folder typed alone gets the proposed name
        unknown = suffix.lower() in _READ_ONLY and not typed.is_dir()
        if unknown:
            written = typed.name + self.format_combo.currentData()
            self.name_note.setText(f"Fader Desktop does not write {suffix[1:].upper()} files: this exports "
                                   f"{fmt} as <b>{html.escape(written)}</b>. Choose the name or the format "
                                   "to write another.")
        self._form.setRowVisible(self.name_note, unknown)
        if self._notes_said() != said:
            self._fit_height()

    def _notes_said(self) -> tuple:
        return tuple((n.isVisibleTo(self), n.text()) for n in (self.loss_note, self.name_note))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # dragged wider, the notes take fewer lines and the height they gave up became a blank
        # band above the buttons (34-48 px); narrower, they need more than the dialog had
        if event.size().width() != event.oldSize().width():
            self._fit_height()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit_height()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        # a larger font (the desktop's text size changed while the dialog is open) or another
        # style needs more height: kept at the old one, the rows were cut and, the height being
        # fixed, the user could not drag it taller. Laid out again first: the event comes before
        # the layout has taken the new font's sizes
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            QTimer.singleShot(0, self, self._fit_height)   # not after the dialog is gone

    def _fit_height(self) -> None:
        """As tall as the rows need at the dialog's width, and no taller or shorter by a drag: a
        dialog keeps its size, so a note shown (or a longer one, or the dialog made narrower) had
        its lines cut off, and one hidden (or the dialog made wider) left a blank band above the
        buttons. Nothing in it has a use for more height, so the height is fixed (the window
        manager then offers only a width to drag) and follows the width. Not before it is shown:
        show() then sizes it (width first, height for that width), where a resize here fixed the
        width of a widget never shown (640 px without a parent)."""
        if not self.isVisible():
            return
        lay = self.layout()
        lay.activate()
        # -1 with no note shown: nothing left whose height depends on the width
        height = lay.totalHeightForWidth(self.width()) if lay.hasHeightForWidth() else lay.totalSizeHint().height()
        if height > 0 and (self.minimumHeight(), self.maximumHeight()) != (height, height):
            self.setFixedHeight(height)   # resizes it too (a resizeEvent of the same width: no loop)

    def losses(self) -> list:
        """What an export in the chosen format, with the metadata choice made, could not keep of
        the photo (one short phrase each; none without a `losses` given)."""
        if self._losses is None:
            return []
        return list(self._losses(self.format_combo.currentData(), self.keep_exif()))

    def result_path(self) -> Path:
        """The typed path: a bare name beside the proposed one (not in the app's working folder),
        into a folder typed alone under the proposed name, its suffix kept where the app writes it
        (z.tiff, z.JPEG), else the format's added (z.gif.jpg, as the dialog says)."""
        p = Path(typed_path(self.path_edit))
        if not p.is_absolute():
            p = self._default.parent / p
        try:
            folder = p.is_dir()
        except OSError:   # a name too long for the file system: the export says so in words
            folder = False
        if folder:
            p = p / self._default.name
        if p.suffix.lower() not in _SUFFIX_FORMAT:
            p = p.with_name(p.name + self.format_combo.currentData())
        return p

    def quality(self) -> int:
        return self.quality_spin.value()

    def keep_exif(self) -> bool:
        """The user's choice: what the box shows wherever the format holds metadata (a format that
        cannot shows it unticked; the choice stays, for the settings and the next export, and the
        notes still say the original's metadata is dropped)."""
        return self._keep_exif


class SweepDialog(QDialog):
    """File ▸ Export sweep…: one attribute of the selected face at N values, as a strip or animation."""

    FILTERS = "PNG strip (*.png);;JPEG strip (*.jpg);;GIF animation (*.gif);;MP4 animation (*.mp4)"

    def __init__(self, attributes, path: Path, current: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export sweep")
        self.setMinimumWidth(520)
        self._attrs = list(attributes)
        form = QFormLayout()
        self.attr_combo = QComboBox()
        for a in self._attrs:
            if a.is_binary:
                self.attr_combo.addItem(a.name, (a.name, None))
            else:
                for k, v in enumerate(a.values):
                    self.attr_combo.addItem(f"{a.name} → {v}", (a.name, k))
        if current:
            i = next((k for k in range(self.attr_combo.count()) if self.attr_combo.itemData(k)[0] == current), 0)
            self.attr_combo.setCurrentIndex(i)
        # access keys: Attribute, Values, Write, File, Browse, Export, Cancel
        form.addRow("&Attribute", self.attr_combo)
        self.lo, self.hi = QDoubleSpinBox(), QDoubleSpinBox()
        for sb in (self.lo, self.hi):
            sb.setRange(-100.0, 100.0)
            sb.setDecimals(2)
            sb.setSingleStep(0.25)
        self.steps = QSpinBox()
        self.steps.setRange(2, 64)
        self.steps.setValue(8)
        row = QHBoxLayout()
        row.addWidget(self.lo)
        row.addWidget(QLabel("to"))
        row.addWidget(self.hi)
        row.addWidget(QLabel("in"))
        row.addWidget(self.steps)
        row.addWidget(QLabel("steps"))
        row.addStretch(1)
        form.addRow(buddy_label("&Values", self.lo), row)
        # a screen reader read the boxes after the first as bare numbers: "to" and "in … steps" are plain labels
        self.lo.setAccessibleName("Values from")
        self.hi.setAccessibleName("Values to")
        self.steps.setAccessibleName("Number of steps")
        self.labels = QCheckBox("&Write the values above the images")
        self.labels.setChecked(True)
        form.addRow("", self.labels)
        self.path_edit = QLineEdit(str(path))
        form.addRow(buddy_label("&File", self.path_edit), browse_row(self.path_edit, self._browse))
        note = QLabel("A PNG/JPEG strip shows the aligned face: original, reconstruction, then each value; "
                      "a GIF/MP4 plays the values back and forth.")
        note.setWordWrap(True)
        note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        buttons, self.ok = action_buttons(self, "&Export")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(buttons)
        visual_tab_order(buttons)
        self.attr_combo.currentIndexChanged.connect(self._attr_changed)
        self._attr_changed()

    def _attr_changed(self, *_):
        name, target = self.attr_combo.currentData()
        a = next(a for a in self._attrs if a.name == name)
        lo, hi = a.range if a.is_binary else (0.0, max(1.0, a.range[1]))
        # a binary attribute's values end where the sweep refuses them (core.attributes.value_limits);
        # the boxes went to ±100, and Export then failed with the command line's "--range value … is outside"
        limits = value_limits(a) if a.is_binary else (-100.0, 100.0)
        for sb in (self.lo, self.hi):
            sb.setRange(*limits)
        self.lo.setValue(lo)
        self.hi.setValue(hi)

    def _browse(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export sweep as", self.path_edit.text(), self.FILTERS, "",
                                              QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.path_edit.setText(path)

    def spec(self) -> dict:
        name, target = self.attr_combo.currentData()
        attr = name if target is None else f"{name}={next(a for a in self._attrs if a.name == name).values[target]}"
        path = Path(typed_path(self.path_edit))
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4"):
            path = path.with_name(path.name + ".png")
        return {"path": path, "attr": attr, "lo": self.lo.value(), "hi": self.hi.value(),
                "steps": self.steps.value(), "labels": self.labels.isChecked()}


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return html.escape(str(v))
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict) and all(not isinstance(x, (dict, list)) for x in v.values()):
        # per-attribute figures: one compact line
        return " · ".join(f"{html.escape(str(k))} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, (dict, list)):
        return html.escape(_card_text(json.dumps(v)))
    return html.escape(_card_text(v))


def _rows(d: dict, prefix: str = "") -> list:
    """Flatten nested dicts into (label, value) rows; dicts of plain values stay one row."""
    rows = []
    for k, v in d.items():
        label = f"{prefix}{k}"
        if isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()):
            rows += _rows(v, f"{label} › ")
        else:
            rows.append((label, v))
    return rows


CARD_TEXT_LIMIT = 4000   # characters of one metadata text shown in the card


def _card_text(text) -> str:
    """A model file's text as the card shows it: cut after CARD_TEXT_LIMIT characters, since Qt lays
    out one long unbroken run in time that grows with its square (15 MB froze the window for good)."""
    text = str(text)
    return text if len(text) <= CARD_TEXT_LIMIT else text[:CARD_TEXT_LIMIT] + f"… ({len(text):,} characters)"


# The trainer's figures (training.evaluation) as the card names them: (keys of the figure: its mean,
# then its per-attribute values), words, what it measures. Shown in this order.
CARD_METRICS = (
    (("swap_mean", "swap_accuracy"), "swap accuracy",
     "how often the model's own classifier reads an edit as the value asked"),
    (("paste_swap_mean", "paste_swap_accuracy"), "swap accuracy, pasted",
     "the same for the edit as the app applies it to a photo (the change added to the original face)"),
    (("others_unchanged_mean", "others_unchanged"), "others unchanged",
     "how often an edit of one attribute leaves the classifier's reading of all the others as it was"),
    (("psnr",), "reconstruction (PSNR)",
     "how closely the model redraws a face it does not edit, in dB; higher is closer"),
    (("classifier_accuracy",), "classifier accuracy",
     "how often the model's own classifier reads a validation face's labelled value"),
    (("lat_dis_accuracy_mean", "lat_dis_accuracy"), "attribute left in the face code",
     "how often the training's adversary still reads the attribute from a face's code; lower is better, "
     "since the slider, not the code, should carry it (for yes/no, 0.5 is chance)"),
)
# Bookkeeping the card leaves out (every figure: `fader-desktop info --json`): the time an evaluation
# took, the lowest swap accuracy (the swap row lists each attribute's), MSE (PSNR in other units), the
# run's file digests and cache, the split rule a resume reads, the export's own λ.
CARD_HIDDEN = {"eval_seconds", "swap_min", "mse", "n_images", "cache_key", "data_kind", "train_files_sha1",
               "train_first_last", "split_rule", "split_seed", "val_size", "world_size", "lambda_lat_dis_at_export"}
# Words for the abbreviations in names the card does not know (an unknown key is shown cleaned)
_CARD_WORDS = {"psnr": "PSNR", "mse": "MSE", "lat": "latent", "dis": "discriminator", "clf": "classifier",
               "ptc": "patch", "lr": "learning rate", "n": "number of", "ae": "auto-encoder", "fm": "feature maps"}


def _card_name(key) -> str:
    """An unknown figure's or field's name in words: 'lat_dis_accuracy_mean' -> 'latent discriminator accuracy mean'."""
    return " ".join(_CARD_WORDS.get(w.lower(), w) for w in str(key).replace("_", " ").split()) or str(key)


def _card_number(v, digits: int) -> str | None:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else None


def _card_figure(mean, per, named=str, circular=()) -> str:
    """A figure's mean (3 decimals) and, smaller, its per-attribute values (2 decimals; with one
    attribute the mean says it), each attribute as `named` names it. The values of the attributes
    in `circular` (labelled by a fine-tune's starting model) are shown apart, marked, and the mean is
    the others': a trainer's mean that took them in is not shown."""
    from core.figures import split_circular
    e = html.escape
    head = _card_number(mean, 3) or ""
    if isinstance(per, dict) and per:
        per, apart, own_mean = split_circular(per, circular)
        if apart:
            head = ""
        if not head and own_mean is not None:
            head = f"{own_mean:.3f}"

        def values(d: dict) -> str:
            return " · ".join(f"{e(_card_text(named(k)))} {_card_number(x, 2) or e(_card_text(x))}"
                              for k, x in d.items())
        parts = [head] if head else []
        if per and (len(per) > 1 or apart or not head):
            parts.append(f"<small>{values(per)}</small>" if head else values(per))
        if apart:
            parts.append(f"<small>{values(apart)} (circular: labelled by the starting model)</small>")
        return "<br>".join(parts)
    return head


# the explanations' colour in the card's HTML, replaced by the palette's placeholder text colour
# when shown (a fixed #777 read at 3.2:1 on a dark theme's base, under the 4.5:1 small text needs)
CARD_QUIET = "#777777"


def _card_row(label: str, value: str, why: str = "") -> str:
    why = f"<br><small><span style='color:{CARD_QUIET}'>{html.escape(why)}</span></small>" if why else ""
    return f"<tr><td valign='top' width='45%'>{html.escape(label)}{why}</td><td valign='top'>{value}</td></tr>"


def _names_in_words(text: str, shown: dict) -> str:
    """A model file's prose with its attributes' identifiers as the card's table names them
    (`shown`: identifier -> display name): a description ending "Attributes Smiling, …,
    Mouth_Slightly_Open." beside a table and figures reading "Mouth slightly open"."""
    import re
    differ = {k: v for k, v in shown.items() if k != v}
    if not differ or not text:
        return text
    # whole identifiers only, the longest first ("Mouth_Slightly_Open" before a "Mouth" of another model)
    pattern = "|".join(re.escape(k) for k in sorted(differ, key=len, reverse=True))
    return re.sub(rf"(?<![\w])(?:{pattern})(?![\w])", lambda m: differ[m.group(0)], text)


def _evaluation_html(metrics, named=str, pseudo=(), prose=str) -> list:
    """The trainer's figures in words with what each measures; another program's: named rows.
    Attributes as `named` names them; the figures of those in `pseudo` (a fine-tune's, labelled by
    its starting model's classifier: edits judged against its own readings) are marked circular and left out of the
    means, whether the trainer that saved them left them in or out. `prose`: the attributes named in
    the model file's own sentences (why this step) as `named` names them."""
    if not isinstance(metrics, dict):
        return [f"<p>{_fmt(metrics)}</p>"]
    val = metrics.get("validation")
    if not isinstance(val, dict):   # not the trainer's layout: its own names, cleaned
        return ["<table cellspacing='0' cellpadding='2'>"] + \
            [_card_row(_card_name(k), _fmt(v)) for k, v in _rows(metrics)] + ["</table>"]
    out = []
    said = []
    if isinstance(metrics.get("step"), int):
        said.append(f"at training step {metrics['step']:,}")
    if isinstance(val.get("n_images"), int):
        said.append(f"on {val['n_images']:,} validation faces")
    if said:
        out.append(f"<p>Measured {' '.join(said)}.</p>")
    pseudo = [k for k in pseudo if isinstance(k, str)]
    if pseudo:
        one = len(pseudo) == 1
        who = f"{html.escape(_card_text(listed(named(k) for k in pseudo)))} {'was' if one else 'were'} labelled by " \
              "the starting model's classifier, not by the data"
        if any(isinstance(v, dict) and k in v for v in val.values() for k in pseudo):
            out.append(f"<p>{who}, so {'its' if one else 'their'} figures are circular (the edits are judged "
                       "against that model's own readings): they are marked so and left out of the means.</p>")
        else:
            out.append(f"<p>{who}: the figures leave {'it' if one else 'them'} out (they would be circular).</p>")
    out.append("<table cellspacing='0' cellpadding='3'>")
    shown = set()
    for keys, words, why in CARD_METRICS:
        mean, per = (val.get(keys[0]), val.get(keys[1]) if len(keys) > 1 else None)
        if len(keys) == 1 and isinstance(mean, dict):
            mean, per = None, mean
        figure = _card_figure(mean, per, named, pseudo)
        if keys[0] == "psnr" and _card_number(mean, 2):
            figure = f"{mean:.2f} dB"
        if figure:
            out.append(_card_row(words, figure, why))
        shown.update(keys)
    for k, v in val.items():   # figures the card has no words for
        if k not in shown and k not in CARD_HIDDEN:
            out.append(_card_row(_card_name(k), _card_figure(v, None) or _card_figure(None, v, named, pseudo)
                                 or _fmt(v)))
    if metrics.get("selection"):
        out.append(_card_row("why this step", html.escape(prose(_card_text(metrics["selection"]))),
                             "the run keeps the state it measured best, not its last"))
    for k, v in metrics.items():
        if k not in ("validation", "step", "selection"):
            out.append(_card_row(_card_name(k), _fmt(v)))
    out.append("</table>")
    return out


def _duration(seconds) -> str:
    if not _card_number(seconds, 0):
        return ""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes" if seconds >= 90 else f"{seconds:.0f} seconds"


def _training_html(tr, named=str) -> list:
    """What a model was trained on and how, in words (attributes as `named` names them); the recipe
    as one small paragraph."""
    e = lambda x: html.escape(_card_text(x))   # noqa: E731
    if not isinstance(tr, dict):
        return [f"<p>{_fmt(tr)}</p>"]
    rows = []
    if tr.get("data"):
        rows.append(_card_row("data", e(tr["data"])))
    if isinstance(tr.get("n_train"), int) and isinstance(tr.get("n_val"), int):
        how = f" ({e(tr['validation'])})" if isinstance(tr.get("validation"), str) else ""
        rows.append(_card_row("images", f"{tr['n_train']:,} for training, {tr['n_val']:,} for validation{how}"))
    skipped = tr.get("skipped")
    if isinstance(skipped, dict) and skipped:
        rows.append(_card_row("skipped images", " · ".join(f"{_fmt(n)} ({e(why)})" for why, n in skipped.items()),
                              "not trained on: unreadable, without a face or framed otherwise"))
    ex = tr.get("excluded")
    if isinstance(ex, dict) and ex.get("images") is not None:
        src = ", ".join(str(x) for x in ex.get("sources") or [])
        rows.append(_card_row("left out", f"{_fmt(ex['images'])} images"
                              + (f" (by the run's exclude list: {e(src)})" if src else "")))
    if tr.get("aligned_by"):
        rows.append(_card_row("faces framed by", e(tr["aligned_by"])))
    if tr.get("init"):
        rows.append(_card_row("fine-tuned from", e(tr["init"])))
    cont = tr.get("continued_from")
    if isinstance(cont, dict) and cont.get("model"):
        at = f" at its step {cont['step']:,}" if isinstance(cont.get("step"), int) else ""
        rows.append(_card_row("continued from", e(cont["model"]) + at))
    if tr.get("pseudo_labelled"):
        rows.append(_card_row("labelled by the starting model",
                              e(", ".join(named(str(k)) for k in tr["pseudo_labelled"])),
                              "attributes the data lacked, read by the starting model's classifier; their "
                              "figures are circular"))
    if isinstance(tr.get("steps"), int):
        took = _duration(tr.get("seconds"))
        rows.append(_card_row("training", f"{tr['steps']:,} steps" + (f" in {took}" if took else "")
                              + (f" on {e(tr['hardware'])}" if tr.get("hardware") else "")
                              + (f" ({tr['world_size']} processes)" if isinstance(tr.get("world_size"), int)
                                 and tr["world_size"] > 1 else "")))
    said = {"data", "n_train", "n_val", "validation", "skipped", "excluded", "aligned_by", "init", "continued_from",
            "pseudo_labelled", "steps", "seconds", "hardware", "hyper_parameters"}
    for k, v in tr.items():   # fields the card has no words for
        if k not in said and k not in CARD_HIDDEN and v not in (None, "", [], {}):
            rows.append(_card_row(_card_name(k), _fmt(v)))
    out = ["<table cellspacing='0' cellpadding='3'>"] + rows + ["</table>"]
    hp = tr.get("hyper_parameters")
    if isinstance(hp, dict) and hp:
        # its settings' own names (the trainer's options, `n_critic` as --n-critic), the trainer named
        # as the user runs it: the packaged app has no fader-train
        recipe = " · ".join(_recipe_items(hp))
        out.append(f"<p><small><b>Recipe</b> (the settings of {html.escape(train_program())}): "
                   f"{recipe}</small></p>")
    return out


def _recipe_items(hp: dict) -> list:
    """The Recipe's settings, 'name value' each; empty ones (a choice not recorded) left out, and
    how the classifier steps were chosen said with them: 'classifier steps 113 (by data size)'."""
    chosen = hp.get("classifier_steps_chosen")
    with_steps = isinstance(chosen, str) and "classifier_steps" in hp
    items = []
    for k, v in hp.items():
        if v in ("", [], {}) or (k == "classifier_steps_chosen" and with_steps):
            continue
        item = f"{html.escape(str(k).replace('_', ' '))} {_fmt(v)}"
        if k == "classifier_steps" and with_steps and chosen:
            item += f" ({_fmt(chosen)})"
        items.append(item)
    return items


def model_card_html(summary: dict, path=None) -> str:
    """The model card as HTML: attributes, what the file holds, the figures in words, the training."""
    from core.model_file import size_text

    def e(text) -> str:
        return html.escape(_card_text(text))
    # the model's attributes as the faders name them ('Mouth slightly open'); other names as they are
    shown = {a["name"]: display_name(a["name"]) for a in summary.get("attributes", [])
             if isinstance(a, dict) and isinstance(a.get("name"), str)}

    def named(key) -> str:
        return shown.get(key, str(key))

    def prose(text: str) -> str:   # the file's own sentences name them so too
        return _names_in_words(text, shown)
    out = [f"<h2>{e(summary.get('name', 'model'))}</h2>"]
    if path:
        out.append(f"<p><small>{e(str(path))}</small></p>")
    if summary.get("description"):
        out.append(f"<p>{html.escape(prose(_card_text(summary['description'])))}</p>")
    out.append(f"<p><b>Licence:</b> {e(str(summary.get('license', 'unspecified')))}</p>")
    out.append(f"<p><b>Input:</b> {summary.get('image_size')} × {summary.get('image_size')} px aligned faces"
               + (" · decoded with each face's mirror image" if summary.get("mirror_decode") else "") + "<br>"
               f"<b>Model size:</b> {e(size_text(summary))}</p>")
    out.append("<h3>Attributes</h3><table cellspacing='0' cellpadding='3'>"
               "<tr><th align='left'>name</th><th align='left'>values</th><th align='left'>slider range</th></tr>")
    for a in summary.get("attributes", []):
        lo, hi = a["range"]
        # the identifier too where it differs: what the command line's --set takes
        ident = f"<br><small>{e(a['name'])}</small>" if named(a["name"]) != a["name"] else ""
        out.append(f"<tr><td>{e(named(a['name']))}{ident}</td><td>{e(', '.join(a['values']))}</td>"
                   f"<td>{lo:g} … {hi:g}</td></tr>")
    out.append("</table>")
    training = summary.get("training")
    pseudo = training.get("pseudo_labelled") if isinstance(training, dict) else None
    if summary.get("metrics"):
        out += ["<h3>Evaluation</h3>"] + _evaluation_html(summary["metrics"], named,
                                                          pseudo if isinstance(pseudo, list) else (), prose)
    if training:
        out += ["<h3>Training</h3>"] + _training_html(training, named)
    d = summary.get("source")
    if d:
        out.append("<h3>Imported from</h3><table cellspacing='0' cellpadding='2'>")
        items = _rows(d) if isinstance(d, dict) else [("", d)]
        for k, v in items:
            out.append(f"<tr><td valign='top'>{e(str(k).replace('_', ' '))}</td><td>{_fmt(v)}</td></tr>")
        out.append("</table>")
    return "".join(out)


class ModelCardDialog(QDialog):
    """Shows a model's metadata: attributes and ranges, metrics, training summary, licence."""

    def __init__(self, summary: dict, path=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Model card — {summary.get('name', 'model')}")
        fit_on_screen(self, QSize(560, 520))   # it scrolls: no taller than a small screen
        self.browser = QTextBrowser()
        self.browser.setAccessibleName("Model card")
        self.browser.setOpenExternalLinks(True)
        quiet = self.browser.palette().color(QPalette.ColorRole.PlaceholderText).name()
        self.browser.setHtml(model_card_html(summary, path).replace(CARD_QUIET, quiet))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        access_key(buttons.button(QDialogButtonBox.StandardButton.Close), "&Close")
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)


class ImportReferenceDialog(QDialog):
    """Reference checkpoint (.pth) -> .fader: source, destination, optional attribute names."""

    def __init__(self, start_dir: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Import reference checkpoint")
        self.setMinimumWidth(560)
        form = QFormLayout()
        self.src = QLineEdit()
        self.dst = QLineEdit()
        self.attrs = QLineEdit()
        self.attrs.setPlaceholderText("e.g. Smiling,Male — empty: read them from the checkpoint")
        self._start = start_dir
        # access keys: cHeckpoint, Browse, Save as, bRowse (its own letter: Alt+B presses one button), Attributes, Import, Cancel
        for label, edit, fn, browse in (("C&heckpoint (.pth)", self.src, self._browse_src, "&Browse…"),
                                        ("&Save as (.fader)", self.dst, self._browse_dst, "B&rowse…")):
            form.addRow(buddy_label(label, edit), browse_row(edit, fn, browse))
        form.addRow("&Attributes", self.attrs)
        buttons, self.ok = action_buttons(self, "&Import")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)
        visual_tab_order(buttons)
        self.src.textChanged.connect(self._changed)
        self.dst.textChanged.connect(self._changed)
        self._changed()

    def _changed(self, *_):
        self.ok.setEnabled(bool(self.src.text().strip() and self.dst.text().strip()))

    def _browse_src(self):
        path, _ = QFileDialog.getOpenFileName(self, "Reference checkpoint", self._start,
                                              "PyTorch checkpoints (*.pth *.pt);;All files (*)")
        if path:
            self.src.setText(path)
            if not self.dst.text():
                # a pickled checkpoint named x.fader (as the app's own message calls it) is not the output
                dst = Path(path).with_suffix(".fader")
                self.dst.setText(str(dst.with_name(dst.stem + "-imported.fader") if dst == Path(path) else dst))

    def _browse_dst(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save model as", self.dst.text() or self._start,
                                              "Fader models (*.fader)")
        if path:
            self.dst.setText(path if path.lower().endswith(".fader") else path + ".fader")

    def values(self):
        attrs = [a.strip() for a in self.attrs.text().split(",") if a.strip()] or None
        return Path(typed_path(self.src)), Path(typed_path(self.dst)), attrs


def app_version() -> str:
    try:
        from importlib.metadata import version
        return version("fader-desktop")
    except Exception:
        return "development"


def about_html(model_summary: dict | None) -> str:
    """Versions of everything that matters for a bug report, and the model's licence."""
    import numpy
    import PySide6
    from PySide6.QtCore import qVersion
    try:
        import torch
        torch_v = torch.__version__
        cuda = f"CUDA {torch.version.cuda}" if torch.cuda.is_available() else "no CUDA device"
    except Exception:  # pragma: no cover - torch is a hard dependency
        torch_v, cuda = "?", "?"
    __version__ = app_version()
    rows = [("Fader Desktop", __version__), ("Python", platform.python_version()),
            ("Qt / PySide6", f"{qVersion()} / {PySide6.__version__}"), ("PyTorch", f"{torch_v} ({cuda})"),
            ("NumPy", numpy.__version__), ("System", f"{platform.system()} {platform.release()} {platform.machine()}")]
    e = html.escape
    out = ["<h3>Fader Desktop</h3>",
           "<p>Edit face attributes in photos with sliders, using Fader Networks "
           "(Lample et al., <i>Fader Networks: Manipulating Images by Sliding Attributes</i>, NeurIPS 2017).</p>",
           "<table cellpadding='2'>"]
    out += [f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in rows]
    out.append("</table>")
    if model_summary:
        out.append(f"<p><b>Model:</b> {e(model_summary.get('name', ''))}<br>"
                   f"<b>Model licence:</b> {e(str(model_summary.get('license', 'unspecified')))}</p>")
    else:
        out.append("<p><b>Model:</b> none loaded</p>")
    return "".join(out)


def _on_a_keyboard(sequence) -> bool:
    """Whether every key of a key sequence is on an ordinary keyboard: printable keys, Escape to
    the arrows and F1..F35. The platform's standard bindings add dedicated keys (Qt.Key_Redo,
    Key_Open, Key_Copy, Key_Help) that Qt names by their function: "Redo" listed as one of redo's keys."""
    from PySide6.QtCore import Qt
    # Qt numbers the printable keys below 0x01000000, then Escape ... F35, then the dedicated ones
    return all(sequence[i].key().value <= Qt.Key.Key_F35.value for i in range(sequence.count()))


def _arrows_named(keys: str) -> str:
    """Arrow glyphs in a key list as Qt names those keys for the platform ("Left", "Alt+Up"; the
    menus' shortcuts are listed so): the list's fixed-pitch font (Noto Sans Mono here) squeezes
    "←" into one character's cell, about a third of the text's height, hard to read."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QKeySequence
    for glyph, key in (("←", Qt.Key.Key_Left), ("→", Qt.Key.Key_Right), ("↑", Qt.Key.Key_Up),
                       ("↓", Qt.Key.Key_Down)):
        if glyph in keys:
            keys = keys.replace(glyph, QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText))
    return keys


def shortcuts_html(menus, canvas_keys, fader_keys=()) -> str:
    """Every menu action that has a shortcut, by menu ((title, [QAction]) pairs, as the menu bar
    holds them), then what the canvas does with keys and the mouse and what the faders do with
    keys ((keys, what) pairs)."""
    from PySide6.QtGui import QKeySequence
    e = html.escape
    out = ["<table cellpadding='3'>"]
    for title, actions in menus:
        rows = []
        for a in actions:
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts() if _on_a_keyboard(k)]
            keys = list(dict.fromkeys(k for k in keys if k))   # a standard key may repeat another
            if keys and a.text():
                rows.append((", ".join(keys), a.iconText()))   # the text without its mnemonic '&'

        if rows:
            out.append(f"<tr><td colspan='2'><b>{e(title.replace('&', ''))}</b></td></tr>")
            out += [f"<tr><td><code>{e(k)}</code></td><td>{e(t)}</td></tr>" for k, t in rows]
    out.append("<tr><td colspan='2'><b>On the photo</b></td></tr>")
    out += [f"<tr><td><code>{e(_arrows_named(k))}</code></td><td>{e(t)}</td></tr>" for k, t in canvas_keys]
    if fader_keys:
        out.append("<tr><td colspan='2'><b>In the Faders panel</b></td></tr>")
        out += [f"<tr><td><code>{e(_arrows_named(k))}</code></td><td>{e(t)}</td></tr>" for k, t in fader_keys]
    out.append("</table>")
    return "".join(out)


class ShortcutsDialog(QDialog):
    """Help ▸ Keyboard shortcuts: the list, scrollable, closed with Esc or Close."""

    def __init__(self, parent, html_text: str):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        fit_on_screen(self, QSize(520, 620))   # it scrolls: no taller than a small screen
        lay = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setAccessibleName("Keyboard shortcuts")
        lay.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        access_key(buttons.button(QDialogButtonBox.StandardButton.Close), "&Close")
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.set_html(html_text)

    def set_html(self, html_text: str) -> None:
        self.html = html_text
        self.browser.setHtml(html_text)
