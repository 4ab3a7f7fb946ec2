"""Training ▸ Train model…: run `fader-train` in a QProcess and watch it live.

The trainer runs as a separate process (`python -m training.cli`), so a training run can never
freeze or crash the editor, and Cancel is a plain SIGTERM, on which the trainer saves a resumable
checkpoint. With more than one process it is the same trainer data-parallel under torchrun
(`python -m torch.distributed.run --standalone --nproc_per_node N -m training`), which passes the
SIGTERM on to every process. Progress comes from the trainer's progress bar on stderr (step counter and losses), moved on by
its evaluation lines on stdout and the steps in RUN_DIR/log.jsonl (the bar's line comes to a pipe
as its count moves on by 1 %, at most once a second, or every 30 s); validation figures from RUN_DIR/log.jsonl, the preview from RUN_DIR/preview_latest.png; the run
folder is read by a job on the dialog's JobRunner (training/run_progress.py), not on the GUI thread.
"""
from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

from PySide6.QtCore import QPointF, QProcess, QProcessEnvironment, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QFileDialog, QFormLayout, QFrame, QGridLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QProgressBar,
                               QPushButton, QScrollArea, QSizePolicy, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from core.run_files import CHECKPOINT_NAME, train_program

from .dialogs import access_key, buddy_label, fit_on_screen, typed_path
from .plain_text import plain, set_literal_tip
from .workers import JobRunner

REPO = Path(__file__).resolve().parents[1]
# tqdm lines: "training:  12%|█▏   | 480/4000 [05:34<8:30:08,  1.29step/s, 42 img/s rec 0.0302 lat 1.690 …]"
PROGRESS_RE = re.compile(r"^\s*(?P<phase>[\w ]+?):\s+\d+%\|.*?\|\s*(?P<cur>\d+)/(?P<total>\d+)\s*\[(?P<info>[^\]]*)\]")
# what a bar counts when it is not steps, by its phase's first word: the data cache's bar
# ("preprocessing 64px", training/cache.py, unit "img") counts the photos it crops
COUNTS = {"preprocessing": "images"}
PREVIEW_WAITING = "The preview appears after the first evaluation"
LOSS_RE = re.compile(r"\brec (?P<rec>[-\d.e]+)(?: lat (?P<lat>[-\d.e]+))?")
# the trainer's evaluation line on stdout (training/trainer.py's _eval_and_export): "step 30 | lambda …"
EVAL_LINE_RE = re.compile(r"^step (?P<step>\d+) \| ")
# the speed behind the time left: steps over (about) the last few minutes of the run
RATE_WINDOW_S = 300.0
POLL_MS = 1000
QUIET_NOTE = ("[--quiet in Options is left out: this window shows the run's progress from the trainer's "
              "progress bar, which --quiet turns off]")
OPEN_TIP = "Load the run's best model into the editor"
STOP_TIP = "Stop after the current step; the trainer saves a resumable checkpoint"
STOP_TIP_NOTHING_YET = ("Stop the run; nothing can be resumed yet (the first checkpoint is written when the "
                        "training steps begin)")
# the dialog's size where the screen has room for it (fit_on_screen cuts it to smaller screens)
DEFAULT_SIZE = (980, 680)
# the trainer's messages, in lines: shown at first, and the least the splitter leaves them
LOG_LINES, LOG_MIN_LINES = 6, 3
CLASSIFIER_NOTE = "trained before the model, to score its edits"
# shown as written (set_literal_tip: no wrapping), so broken into lines here: as three long lines
# it was 2,100 px wide and ran off a 1400 px screen
CLASSIFIER_TIP = (
    "Before the model, the run trains a small classifier of the attributes for this many steps.\n"
    "It scores the model's edits (swap accuracy, in Validation), picks the best model by that\n"
    "score, and is stored in the model, where the editor uses it to start each face's sliders\n"
    "at the face's own values.\n\n"
    "Automatic (the trainer's default): {epochs} passes over the training images, at most {most:,}\n"
    "steps; the run's first messages say the number. It takes its time before the first training\n"
    "step: {most:,} steps took about 10 minutes on a CPU at 64 px. Fewer make a quick test run\n"
    "start sooner, at the cost of a less reliable score, choice of the best model and starting sliders.\n\n"
    "None is trained when a run is resumed (it keeps its own) or a model is fine-tuned on its\n"
    "own attributes (the model's classifier is used).")
# the Classifier field at its minimum: no --classifier-steps sent, the trainer chooses by data size
CLASSIFIER_AUTOMATIC = "Automatic (by data size)"
# What torchrun itself writes when it is stopped (the dialog's Cancel is its SIGTERM): its elastic
# agent's log lines ("Received 15 death signal, shutting down workers", "Sending process … closing
# signal SIGTERM") and the traceback of the SignalException it then raises. Not shown after the
# dialog's own stop: the run stopped as asked, and the status line says so.
TORCHRUN_LOG_RE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ .*?torch[\\/]distributed[\\/]elastic[\\/]")
TORCHRUN_STOPPED_RE = re.compile(r"^torch\.distributed\.elastic\.multiprocessing\.api\.SignalException\b")
TRACEBACK_START = "Traceback (most recent call last):"


RESUME_TIP = ("Continue the checkpoint in this folder (after Cancel or a crash), at the run's own size and to its "
              "own number of steps (shown above)")
RESUME_TIP_OPTIONS = "Ticked by --resume in Options: take it out of Options to untick.\n\n" + RESUME_TIP


def default_run_folder() -> str:
    """A new run folder's name, ~/FaderRuns/run-DATE-TIME: one that does not exist yet (a run
    started or finished within the same minute has the plain name)."""
    base = Path.home() / "FaderRuns" / time.strftime("run-%Y%m%d-%H%M")
    path, n = base, 2
    while path.exists():
        path, n = base.with_name(f"{base.name}-{n}"), n + 1
    return str(path)


def read_run_settings(checkpoint) -> dict:
    """What a run folder's checkpoint says of the run's resolution and length: {"img_size",
    "steps" (the total it trains to), "step" (where it is)}. Memory-mapped, so its tensors are not
    read (a job: the file may be slow to reach)."""
    import torch
    ck = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=True)
    return {"img_size": int(ck["arch"]["img_size"]), "steps": int(ck["config"]["steps"]), "step": int(ck["step"])}


def _frozen() -> bool:
    """Whether this is the packaged app (PyInstaller), whose sys.executable is FaderDesktop itself."""
    return bool(getattr(sys, "frozen", False))


class CurvePlot(QWidget):
    """A small line chart of one or two series, drawn with QPainter (no plotting dependency)."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.setAccessibleName(title)   # a painted chart: its title is all a screen reader can say of it
        self.series: dict = {}     # name -> (QColor, [(x, y)])
        self.setMinimumSize(240, 110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(320, 160)

    def set_series(self, name: str, color: QColor, points: list) -> None:
        self.series[name] = (color, list(points))
        self.update()

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        fm = p.fontMetrics()
        p.setPen(pal.color(QPalette.ColorRole.Text))
        p.drawText(QPointF(8, fm.ascent() + 4), self.title)
        small = QFont(self.font())
        small.setPointSizeF(small.pointSizeF() * 0.85)
        sfm = QFontMetrics(small)
        pts = [pt for _c, s in self.series.values() for pt in s]
        ys = [y for _, y in pts]
        # the data's lowest and highest values label the y axis, as wide as they are written
        # ("0.00786" was cut to "00786" in a fixed 40 px)
        y_labels = sorted({f"{y:.3g}": y for y in (min(ys), max(ys))}.items(), key=lambda kv: kv[1]) if pts else []
        label_w = max([sfm.horizontalAdvance(t) for t, _ in y_labels] + [sfm.horizontalAdvance("0.00")])
        left = label_w + 8
        plot = QRectF(left, fm.height() + 10, self.width() - left - 10, self.height() - fm.height() - 30)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        p.drawRect(plot)
        if len(pts) < 1 or plot.width() < 10 or plot.height() < 10:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "waiting for data…")
            p.end()
            return
        xs = [x for x, _ in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        one_step = x1 == x0   # one evaluation (a short run): its points in the middle, under one label
        if one_step:
            x0, x1 = x0 - 1, x1 + 1
        if y1 == y0:
            half = abs(y0) * 0.5 or 0.5
            y0, y1 = y0 - half, y1 + half
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad

        def at(x, y):
            return QPointF(plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (y - y0) / (y1 - y0) * plot.height())
        p.setFont(small)
        p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
        h = sfm.height()
        for text, y in y_labels:
            p.drawText(QRectF(0, at(x0, y).y() - h / 2, label_w + 4, h),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
        below = plot.bottom() + 2
        if one_step:
            p.drawText(QRectF(plot.left(), below, plot.width(), h), Qt.AlignmentFlag.AlignHCenter,
                       f"step {xs[0]:g}")
        else:
            p.drawText(QRectF(plot.left(), below, plot.width() / 2, h), Qt.AlignmentFlag.AlignLeft, f"{x0:g}")
            p.drawText(QRectF(plot.center().x(), below, plot.width() / 2, h), Qt.AlignmentFlag.AlignRight,
                       f"step {x1:g}")
        legend_x = float(self.width() - 6)
        for name, (color, s) in reversed(list(self.series.items())):
            if not s:
                continue
            path = QPainterPath(at(*s[0]))
            for x, y in s[1:]:
                path.lineTo(at(x, y))
            p.setPen(QPen(color, 1.6))
            p.drawPath(path)
            if len(s) == 1:
                p.setBrush(color)
                p.drawEllipse(at(*s[0]), 2.5, 2.5)
            w = p.fontMetrics().horizontalAdvance(name)
            legend_x -= w + 8
            p.drawText(QPointF(legend_x + 4, fm.ascent() + 4), name)
        p.end()


# The trainer's preview (training/evaluation.py's preview_grid): a row per validation face, its
# columns the original, the reconstruction, then each attribute switched, PREVIEW_PAD white pixels
# around each face. Shown as it is it said nothing of what its 3 (or 7) columns were; here each
# kind of image is a row with its name beside it, the faces side by side (a column each), so the
# names read across at the dialog's font size (over columns 30-50 px wide they could not).
PREVIEW_PAD = 2
PREVIEW_TIP = ("Validation faces, one a column (the model never trained on them). Rows:\n{rows}.\n"
               "A switched attribute takes its other value (one of more than two values: its next one).\n"
               "The run folder's preview_latest.png has the same faces, one a row.")


def preview_kinds(attributes) -> list:
    """The names of a preview's images of a face, in the trainer's order, for the run's attributes."""
    return ["original", "reconstruction"] + [f"{a} switched" for a in attributes]


def preview_faces(image: QImage, n_kinds: int) -> list | None:
    """The faces of a preview grid of `n_kinds` columns, [face][kind] as QImages; None where the
    image is no such grid (another run's, or the attributes not known yet)."""
    w, h, pad = image.width(), image.height(), PREVIEW_PAD
    if n_kinds < 1 or (w - pad) % n_kinds:
        return None
    step = (w - pad) // n_kinds
    if step <= pad or (h - pad) % step:
        return None
    return [[image.copy(pad + k * step, pad + r * step, step - pad, step - pad) for k in range(n_kinds)]
            for r in range((h - pad) // step)]


def labeled_preview(faces: list, kinds: list, size: QSize, font: QFont, color: QColor, ratio: float = 1.0) -> QPixmap:
    """The faces ([face][kind], preview_faces) laid out a face per column and a kind per row, each
    row's name at its left, as large as `size` allows."""
    gap = PREVIEW_PAD
    fm = QFontMetrics(font)
    # the names' column: as wide as the widest word (names wrap at spaces), at most 40 % of the room
    widest = max(fm.horizontalAdvance(word) for kind in kinds for word in kind.split())
    label_w = min(widest + fm.averageCharWidth(), int(size.width() * 0.4))
    n_faces, n_kinds = len(faces), len(kinds)
    tile = int(min(size.height() / n_kinds, (size.width() - label_w - gap) / n_faces)) - gap
    tile = max(8, tile)
    width, height = label_w + gap + n_faces * (tile + gap), n_kinds * (tile + gap)
    pix = QPixmap(round(width * ratio), round(height * ratio))
    pix.setDevicePixelRatio(ratio)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    p.setFont(font)
    p.setPen(color)
    align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    for k, kind in enumerate(kinds):
        y = k * (tile + gap)
        box = QRectF(0, y, label_w, tile + gap)
        wrapped = fm.boundingRect(box.toRect(), int(align | Qt.TextFlag.TextWordWrap), kind)
        if wrapped.height() <= box.height() and wrapped.width() <= box.width():
            p.drawText(box, int(align | Qt.TextFlag.TextWordWrap), kind)
        else:   # no room for its lines: one, cut short (the tooltip has it whole)
            p.drawText(box, int(align), fm.elidedText(kind, Qt.TextElideMode.ElideRight, label_w))
        for r, face in enumerate(faces):
            p.drawImage(QRectF(label_w + gap + r * (tile + gap), y + gap / 2, tile, tile), face[k])
    p.end()
    return pix


class TrainingDialog(QDialog):
    """Set up a training run, start it, watch it, stop it, open its model."""

    openResult = Signal(str)     # path of the trained .fader

    def __init__(self, parent=None, current_model: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Train model")
        self.proc: QProcess | None = None
        self._stderr_tail = ""
        self._messages: list = []
        self._losses: dict = {}      # step -> (reconstruction loss, latent discriminator loss)
        self._val: list = []         # log.jsonl records
        self._preview_image: QImage | None = None   # the run's newest preview (RUN_DIR/preview_latest.png)
        self._preview_names: list | None = None     # the run's attributes (its log's), which the preview switches
        self._watcher = None         # training.run_progress.RunWatcher of the running run (worker thread only)
        self.jobs = JobRunner("fader-training-progress", self)
        self._started_at = 0.0
        self._stopping = False
        self._current_model = current_model
        self._editor_closed = False  # the window Open result loads into has closed (see editor_closed)
        self._budget_s = 0.0         # the running run's --max-minutes in seconds (0: none)
        self._reset_count()
        self._close_when_stopped = False
        self.stop_box: QMessageBox | None = None   # "Training is running": stop it to close?
        self._run_settings: tuple | None = None    # (run folder, read_run_settings) the form shows on Resume
        self._run_steps_shown: int | None = None   # the Steps field as filled from that run
        self._chosen_steps: int | None = None      # the user's Steps before a run's replaced it (Resume)
        self._run_folder: Path | None = None       # the folder of the latest run the dialog started
        self._previous_run: Path | None = None     # that run's, once the Run folder field names a new one
        self._default_out = ""       # the Run folder field's text while it holds a name the dialog chose
        self._held: list | None = None             # a torchrun traceback read while the dialog stops the run
        # whether a run from a model takes that model's classifier: (what was asked, the answer), read by a job
        self._model_classifier: tuple | None = None
        self._model_classifier_asked = None
        # the Resume box's state before Options' --resume ticked it (None: Options do not hold it ticked)
        self._resume_before_options: bool | None = None
        self._init_open_model = False   # the running run's --init is the open model (the fine-tune box's)

        # -- setup --------------------------------------------------------------------------------
        # access keys (Alt+letter), one letter each: Data, Folder, label fIle, Attributes, detect aNd align,
        # siZe, afTer, classifiEr, deVice, fine-tune the open Model, Run folder, Browse, resUme, oPtions,
        # Start, Cancel, Open result, cLose. Not aliGn: an underline is lost in a descender (g, p, y); oPtions
        # keeps its p, every other letter of it being taken
        setup = self.setup = QGroupBox()
        form = QFormLayout(setup)
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("a labeled folder, a CSV label table or CelebA's list_attr_celeba.txt")
        b_folder, b_file = QPushButton("&Folder…"), QPushButton("Label f&ile…")
        b_folder.clicked.connect(self._browse_folder)
        b_file.clicked.connect(self._browse_file)
        row = QHBoxLayout()
        row.addWidget(self.data_edit, 1)
        row.addWidget(b_folder)
        row.addWidget(b_file)
        form.addRow(buddy_label("&Data", self.data_edit), row)
        self.attr_edit = QLineEdit()
        self.attr_edit.setPlaceholderText("e.g. Smiling,Male — empty: every attribute in the data")
        # its row's second half (a row of its own made the form a row taller, and the dialog a
        # scroll at its own size); the name the trainer's --align advice quotes
        self.align_check = QCheckBox("Detect a&nd align faces")
        self.align_check.setToolTip("For ordinary photos, not aligned face crops: finds and aligns each face "
                                    "(images without a face are skipped)")
        row = QHBoxLayout()
        row.addWidget(self.attr_edit, 1)
        row.addWidget(self.align_check)
        form.addRow(buddy_label("&Attributes", self.attr_edit), row)
        self.size_combo = QComboBox()
        for s in (32, 64, 128, 256):
            self.size_combo.addItem(f"{s} px", s)
        self.size_combo.setCurrentIndex(1)
        self.size_combo.setToolTip("Model resolution: 64 px trains in hours on a CPU, 128+ wants a GPU")
        self.minutes_spin = QSpinBox()
        self.minutes_spin.setRange(1, 7 * 24 * 60)
        self.minutes_spin.setValue(60)
        self.minutes_spin.setSuffix(" min")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 10_000_000)   # a resumed short run shows its own (fader-train takes any)
        self.steps_spin.setValue(20000)
        self.steps_spin.setSingleStep(1000)
        self.steps_spin.setSuffix(" steps")
        row = QHBoxLayout()
        row.addWidget(self.size_combo)
        row.addSpacing(16)
        row.addWidget(buddy_label("stop af&ter", self.minutes_spin))
        row.addWidget(self.minutes_spin)
        row.addWidget(QLabel("or"))
        row.addWidget(self.steps_spin)
        row.addStretch(1)
        form.addRow(buddy_label("Si&ze", self.size_combo), row)
        self.steps_spin.setAccessibleName("or stop after")   # "or" is a plain label: a screen reader read a bare number
        # the evaluation classifier, a stage of its own before the training steps: at the trainer's
        # 2,000 steps it took 10 minutes of a "40 steps" run, and nothing in the form said so.
        # Automatic at its minimum (0, which the trainer would refuse): nothing sent, and the trainer
        # chooses by data size (2,000 steps were ~1,780 passes over a 36-image folder)
        from training.cli import CLASSIFIER_EPOCHS, CLASSIFIER_MAX_STEPS
        self.classifier_spin = QSpinBox()
        self.classifier_spin.setRange(0, 10_000_000)
        self.classifier_spin.setSpecialValueText(CLASSIFIER_AUTOMATIC)
        self.classifier_spin.setValue(0)
        self.classifier_spin.setSingleStep(100)
        self.classifier_spin.setSuffix(" steps")
        self._classifier_tip = CLASSIFIER_TIP.format(epochs=CLASSIFIER_EPOCHS, most=CLASSIFIER_MAX_STEPS)
        set_literal_tip(self.classifier_spin, self._classifier_tip)
        self.classifier_note = plain(QLabel(CLASSIFIER_NOTE))   # it may quote what Options say
        set_literal_tip(self.classifier_note, self._classifier_tip)
        self.classifier_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        row = QHBoxLayout()
        row.addWidget(self.classifier_spin)
        row.addSpacing(8)
        row.addWidget(self.classifier_note, 1)
        form.addRow(buddy_label("Classifi&er", self.classifier_spin), row)
        self.device_combo = QComboBox()
        for d in ("auto", "cpu", "cuda"):
            self.device_combo.addItem(d, d)
        self.procs_spin = QSpinBox()
        self.procs_spin.setRange(1, 64)
        self.procs_spin.setValue(1)
        # in words, as every count the app shows ("1 process", "2 processes"), not "process(es)"
        self.procs_spin.valueChanged.connect(
            lambda n: self.procs_spin.setSuffix(" process" if n == 1 else " processes"))
        self.procs_spin.setSuffix(" process")
        self.procs_spin.setToolTip(   # in lines: as one it ran off a 1400 px screen
            "Data-parallel processes on this machine (torchrun): one model, each process takes its\n"
            "share of every batch. CUDA: one GPU each. CPU: the cores are shared out; on a small CPU\n"
            "two processes with one thread each can be faster than one with two threads (docs/training.md)")
        # short: its former "… instead of starting from scratch" made the form 640 px wide at the least
        self.finetune_check = QCheckBox("Fine-tune the open &model")
        self.finetune_check.setToolTip("Start from the model open in the editor instead of from scratch")
        self.finetune_check.setEnabled(bool(current_model))
        self._size_tip = self.size_combo.toolTip()
        self._chosen_size = self.size_combo.currentData()   # restored when fine-tuning is unticked
        self.finetune_check.toggled.connect(self._sync_size)
        if _frozen():
            # torchrun starts Python processes; the packaged app trains in one (fader-train from source can do more)
            self.procs_spin.setEnabled(False)
            self.procs_spin.setToolTip("The packaged app trains in one process; several (torchrun) need "
                                       "fader-train from a source install (docs/training.md)")
        row = QHBoxLayout()
        row.addWidget(self.device_combo)
        row.addWidget(self.procs_spin)
        row.addSpacing(16)
        row.addWidget(self.finetune_check)
        row.addStretch(1)
        form.addRow(buddy_label("De&vice", self.device_combo), row)
        self.procs_spin.setAccessibleName("Processes")   # it has no label: a screen reader read "1 process" alone
        self._default_out = default_run_folder()
        self.out_edit = QLineEdit(self._default_out)
        b_out = QPushButton("&Browse…")
        b_out.clicked.connect(self._browse_out)
        self.resume_check = QCheckBox("Res&ume")
        self.resume_check.setToolTip(RESUME_TIP)
        self.resume_check.toggled.connect(self._resume_toggled)
        row = QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(b_out)
        row.addWidget(self.resume_check)
        form.addRow(buddy_label("&Run folder", self.out_edit), row)
        self.extra_edit = QLineEdit()
        # the packaged app has no fader-train: its trainer is `FaderDesktop train`
        self.extra_edit.setPlaceholderText("more training options, e.g. --batch-size 16 --val-size 200 "
                                           f"({train_program()} --help lists them)")
        form.addRow("O&ptions", self.extra_edit)
        self.out_edit.textChanged.connect(self._update_buttons)
        self.out_edit.textChanged.connect(self._folder_changed)
        self.data_edit.textChanged.connect(self._update_buttons)
        self.extra_edit.textChanged.connect(self._sync_resume)
        for changed in (self.extra_edit.textChanged, self.data_edit.textChanged, self.attr_edit.textChanged,
                        self.out_edit.textChanged, self.resume_check.toggled, self.finetune_check.toggled):
            changed.connect(self._sync_classifier)

        # -- live view ------------------------------------------------------------------------------
        self.phase_label = plain(QLabel("Not started"))   # the trainer's errors quote paths, names and data
        # a trainer's one-line error can be long (paths): wrapped, never widening the dialog past the screen
        self.phase_label.setWordWrap(True)
        self.phase_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.loss_plot = CurvePlot("Training losses")
        self.val_plot = CurvePlot("Validation (swap accuracy, PSNR/100)")
        self.preview = QLabel(PREVIEW_WAITING)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(220, 200)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.preview.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.log_view = QPlainTextEdit()
        self.log_view.setAccessibleName("Training log")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        live = QGridLayout()
        live.addWidget(self.loss_plot, 0, 0)
        live.addWidget(self.preview, 0, 1, 2, 1)
        live.addWidget(self.val_plot, 1, 0)
        live.setRowStretch(0, 1)
        live.setRowStretch(1, 1)
        live.setColumnStretch(0, 1)
        live.setColumnStretch(1, 1)

        self.start_button = QPushButton("&Start training")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("&Cancel training")
        self.stop_button.setToolTip(STOP_TIP)
        self.stop_button.clicked.connect(self.stop)
        self.open_button = QPushButton("&Open result")
        self.open_button.setToolTip(OPEN_TIP)
        self.open_button.clicked.connect(self._open_result)
        close = QPushButton("C&lose")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(close)

        # the form and the curves scroll, the buttons stay: at its least the dialog was 676 px
        # tall, and on a smaller screen Start, Cancel and Close were below its edge
        body = QWidget()
        inner = QVBoxLayout(body)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(setup)
        inner.addLayout(live, 1)
        scroll = self.scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setMinimumHeight(120)
        # a Tab stop that shows nothing, and where the dialog opened its focus: the form's fields take it
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # The status line and the progress bar stay in view under the scrolling part, and the
        # trainer's messages under them in a splitter: the messages, last in the scrolling part,
        # were pushed out of it (0 px shown at the dialog's own size after a run that failed, the
        # error among them). A long status line (an error) takes its lines from the scrolling part.
        top = QWidget()
        over = QVBoxLayout(top)
        over.setContentsMargins(0, 0, 0, 0)
        over.addWidget(scroll, 1)
        over.addWidget(self.phase_label)
        over.addWidget(self.progress)
        line = self.log_view.fontMetrics().lineSpacing()
        frame = self.log_view.frameWidth() * 2 + 2 * int(self.log_view.document().documentMargin())
        self.log_view.setMinimumHeight(LOG_MIN_LINES * line + frame)
        split = self.split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.log_view)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 1)   # a taller dialog gives the form and curves the room
        split.setStretchFactor(1, 0)
        self._log_height = LOG_LINES * line + frame
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addLayout(buttons)
        fit_on_screen(self, QSize(*DEFAULT_SIZE))
        self._split_sized = False

        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._poll_run_dir)
        self._update_buttons()
        self._sync_classifier()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._split_sized:   # once: after that the splitter is where the user left it
            self._split_sized = True
            total = sum(self.split.sizes())
            if total > self._log_height:
                self.split.setSizes([total - self._log_height, self._log_height])

    # -- setup helpers ----------------------------------------------------------------------------
    def _browse_folder(self):
        d = QFileDialog.getExistingDirectory(self, "Labeled image folder", self.data_edit.text())
        if d:
            self.data_edit.setText(d)

    def _browse_file(self):
        f, _ = QFileDialog.getOpenFileName(self, "Label file", self.data_edit.text(),
                                           "Label tables (*.csv *.txt);;All files (*)")
        if f:
            self.data_edit.setText(f)

    def _browse_out(self):
        d = QFileDialog.getExistingDirectory(self, "Run folder", self.out_edit.text())
        if d:
            self.out_edit.setText(d)

    def set_current_model(self, path) -> None:
        """The editor's model, offered for fine-tuning."""
        self._current_model = str(path) if path else None
        self.finetune_check.setEnabled(bool(path) and not self.is_running())
        if not path:
            self.finetune_check.setChecked(False)
        self._sync_size()
        self._sync_classifier()

    def _fine_tuning(self) -> bool:
        return self.finetune_check.isChecked() and bool(self._current_model)

    def _sync_size(self, *_) -> None:
        """A resumed run goes on at its own resolution, and fine-tuning trains at the model's (the
        trainer refuses another): the Size field then shows it, locked; unticked, the user's own
        choice comes back."""
        resumed = self._resumed_settings()
        if resumed is not None or self._fine_tuning():
            # isEnabledTo: the whole form is greyed out while a run goes on, which is no lock on the size
            if self.size_combo.isEnabledTo(self.setup):
                self._chosen_size = self.size_combo.currentData()
            if resumed is not None:
                size = resumed["img_size"]
                tip = f"A resumed run goes on at its own size ({size} px)"
            else:
                size = model_image_size(self._current_model)
                tip = "Fine-tuning trains at the open model's own size" + (f" ({size} px)" if size else "")
            if size is not None:
                if self.size_combo.findData(size) < 0:
                    self.size_combo.addItem(f"{size} px", size)
                self.size_combo.setCurrentIndex(self.size_combo.findData(size))
            self.size_combo.setEnabled(False)
            self.size_combo.setToolTip(tip)
        elif not self.size_combo.isEnabledTo(self.setup):
            self.size_combo.setEnabled(True)
            self.size_combo.setToolTip(self._size_tip)
            i = self.size_combo.findData(self._chosen_size)
            self.size_combo.setCurrentIndex(i if i >= 0 else 1)

    def run_dir(self) -> Path:
        # absolute: the trainer runs in another working folder than this window's
        return Path(typed_path(self.out_edit)).absolute()

    def _result_dir(self) -> Path:
        """The run whose model Open result loads: the Run folder's, or, while that field holds the
        new name the dialog gave it after a run, that run's."""
        if self._previous_run is not None and self.out_edit.text() == self._default_out:
            return self._previous_run
        return self.run_dir()

    # -- resuming: the run's own size and steps ----------------------------------------------------
    def _resume_toggled(self, on: bool) -> None:
        """Ticked, the form shows the run's size (locked) and its number of steps, read from its
        checkpoint (a job); the command line leaves both to the run (arguments)."""
        shown = self._run_steps_shown
        self._run_settings, self._run_steps_shown = None, None
        if on:
            folder = self.run_dir()

            def show(settings: dict) -> None:
                if self.resume_check.isChecked() and self.run_dir() == folder:
                    self._run_settings = (folder, settings)
                    if self._chosen_steps is None:
                        self._chosen_steps = self.steps_spin.value()
                    self.steps_spin.setValue(settings["steps"])
                    self._run_steps_shown = self.steps_spin.value()
                    self._sync_size()
            # unreadable: the form stays, the command line still leaves size and steps to the run,
            # and the trainer says what is wrong with the checkpoint
            self.jobs.submit(lambda: read_run_settings(folder / CHECKPOINT_NAME), on_done=show,
                             on_error=lambda _message: None, coalesce="run-settings")
        else:
            # unticked: a new run, with the user's own steps back (unless they were changed since)
            if self._chosen_steps is not None and self.steps_spin.value() == shown:
                self.steps_spin.setValue(self._chosen_steps)
            self._chosen_steps = None
        self._sync_size()

    def _sync_classifier(self, *_) -> None:
        """The Classifier field, greyed out with its note and tooltip saying why where its value is
        not used: a resumed run keeps its classifier, a run from a model that has one takes it where
        it trains only that model's attributes (training/cli.py's _evaluation_classifier; the model
        and the data are read by a job), and Options' --classifier-steps (or --classifier, a
        classifier taken from a model) comes after the field's and wins."""
        given = self._typed_options()
        why = ""
        # Options' --resume on a folder without a checkpoint starts the run again, classifier and all
        if self.resume_check.isChecked() or ("--resume" in given and self._resumable()):
            why = "none trained: a resumed run keeps its own"
        elif "--export-last" in given:
            why = "none trained: Options give --export-last (the run only exports its model)"
        elif "--classifier" in given:
            why = "none trained: Options give --classifier (that model's classifier is used)"
        elif self._model_classifier_used(given, ask=True):
            whose = ("the open model's" if self._fine_tuning() else
                     "the --continue model's" if "--continue" in given else "the --init model's")
            why = f"none trained: {whose} classifier is used"
        elif "--classifier-steps" in given:
            why = f"set in Options: --classifier-steps {given['--classifier-steps'][-1]}"
        self.classifier_spin.setEnabled(not why)
        self.classifier_note.setText(why or CLASSIFIER_NOTE)
        tip = f"Not used: {why}.\n\n{self._classifier_tip}" if why else self._classifier_tip
        # a screen reader reads the description, in words (it read the tooltip's markup)
        set_literal_tip(self.classifier_spin, tip)
        set_literal_tip(self.classifier_note, tip)

    def _run_model(self, given: dict) -> tuple | None:
        """What a new run starts from and how it reads its data: (model, data sources, --attr or
        None, whether it is a --continue); None for a run from scratch or without data."""
        data = typed_path(self.data_edit)
        if self._fine_tuning():
            model, continued = self._current_model, False
        elif given.get("--continue"):
            model, continued = given["--continue"][-1], True
        elif given.get("--init"):
            model, continued = given["--init"][-1], False
        else:
            return None
        if not data or not model:
            return None
        attrs = ",".join(a.strip() for a in self.attr_edit.text().split(",") if a.strip()) or None
        # Options' --data add sources (argparse appends them)
        return model, (str(Path(data).absolute()), *given.get("--data", ())), attrs, continued

    def _model_classifier_used(self, given: dict, ask: bool = False) -> bool:
        """Whether the run takes its --init / --continue model's classifier (as last read for these
        settings; False while not known). `ask`: a job reads it where it is not known."""
        key = self._run_model(given)
        if key is None:
            return False
        if self._model_classifier is not None and self._model_classifier[0] == key:
            return self._model_classifier[1]
        if ask and self._model_classifier_asked != key:
            self._model_classifier_asked = key

            def done(used: bool) -> None:
                self._model_classifier = (key, used)
                self._sync_classifier()
            # unreadable model or data: the field stays, and the trainer says what is wrong
            self.jobs.submit(lambda: model_classifier_used(*key), on_done=done, on_error=lambda _m: done(False),
                             coalesce="model-classifier")
        return False

    def _folder_changed(self, *_) -> None:
        # Resume stays ticked on another folder that holds a run (_update_buttons unticks it
        # elsewhere): the form shows that run's settings, not the last folder's
        if self.resume_check.isChecked():
            self._resume_toggled(True)

    def _resumed_settings(self) -> dict | None:
        """The run's settings the form shows while Resume is ticked (None: not ticked, or not read yet)."""
        if self.resume_check.isChecked() and self._run_settings and self._run_settings[0] == self.run_dir():
            return self._run_settings[1]
        return None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning

    def _resumable(self) -> bool:
        """Whether stopping the run now leaves something to resume: the trainer writes its first
        checkpoint when the training steps begin, not while it prepares the data or trains the
        classifier (a resumed run's checkpoint is there from the start)."""
        return bool(self.out_edit.text().strip()) and (self.run_dir() / CHECKPOINT_NAME).is_file()

    def _typed_options(self) -> dict:
        """The options the Options field gives (abbreviations as the full names), as the trainer's
        argparse reads them (_options_given); none while its quotes are unbalanced (Start says so)."""
        try:
            return _options_given(_extra_options(self.extra_edit.text(), {}))
        except ValueError:
            return {}

    def _sync_resume(self, *_) -> None:
        """Options' --resume on a folder that holds a checkpoint ticks the Resume box, greyed out, its
        tooltip saying why: the form then shows the run's size and steps and sends neither, as when
        ticked by hand (it sent the form's --img-size, --steps and --eval-every for a new run, and
        the trainer refused "--img-size 64 differs from the checkpoint's 32"). Out of Options again,
        or on a folder without a checkpoint (where --resume starts a run stopped before its first
        one again, which needs the form's values), the box is as the user left it."""
        if self.is_running():   # the form is fixed while a run goes on (its checkpoint may appear): synced at its end
            self.resume_check.setEnabled(False)
            return
        ckpt = self._resumable()
        by_options = ckpt and "--resume" in self._typed_options()
        if by_options:
            if self._resume_before_options is None:
                self._resume_before_options = self.resume_check.isChecked()
            self.resume_check.setChecked(True)
        elif self._resume_before_options is not None:
            before, self._resume_before_options = self._resume_before_options, None
            self.resume_check.setChecked(before and ckpt)
        self.resume_check.setEnabled(ckpt and not by_options)
        self.resume_check.setToolTip(RESUME_TIP_OPTIONS if by_options else RESUME_TIP)

    def _update_buttons(self, *_):
        running = self.is_running()
        ckpt = self._resumable()
        # the run's settings are fixed while it goes on: a Run folder edited mid-run sent Open result
        # and the progress to a folder the trainer does not write
        self.setup.setEnabled(not running)
        self.stop_button.setToolTip(STOP_TIP if ckpt or not running else STOP_TIP_NOTHING_YET)
        if not ckpt:
            self.resume_check.setChecked(False)
        self._sync_resume()
        self.start_button.setEnabled(not running and bool(self.data_edit.text().strip() and self.out_edit.text().strip()))
        self.stop_button.setEnabled(running and not self._stopping)
        model = self._result_dir() / "model.fader"
        self.open_button.setEnabled(bool(self.out_edit.text().strip()) and model.is_file() and not self._editor_closed)
        if self._editor_closed:
            set_literal_tip(self.open_button, f"The editor window is closed: start Fader Desktop again and "
                                              f"open {model} with File ▸ Open model…")

    def editor_closed(self) -> None:
        """The editor window closed while this dialog stays (a run goes on): Open result has no window
        to load the model into, so it is greyed out and its tooltip says where the model is."""
        self._editor_closed = True
        if self.is_running() and self.parent() is not None:
            # Qt quits with the last window that has no parent window: as the editor's child the
            # dialog did not count, so closing the editor made Qt quit (which asked to stop the
            # run at once), and the dialog closed later left the app running with no window. A
            # window of its own keeps the application, and the run, until it is closed.
            geometry = self.geometry()
            self.setParent(None, self.windowFlags())
            self.setGeometry(geometry)
            self.show()
        self._update_buttons()

    def arguments(self) -> list:
        """The fader-train command line for the current settings. ValueError for Options the form
        cannot send (unbalanced quotes, an option a field sets, a new run's model with Resume)."""
        data = typed_path(self.data_edit)
        owned = FIELD_OPTIONS
        if self.finetune_check.isChecked() and self._current_model:
            owned = {**FIELD_OPTIONS, **FINETUNE_OPTION}
        extra = _without_quiet(_extra_options(self.extra_edit.text(), owned))
        given = _options_given(extra)
        # Options' --resume is the box's (_sync_resume ticks it; read here too, for a checkpoint
        # written since the box was last synced)
        by_options = "--resume" in given and self._resumable()
        resume = self.resume_check.isChecked() or by_options
        if resume:
            # the trainer refuses them with a resume ("give only one"): said before it starts, naming the box
            for option, what in NEW_RUN_OPTIONS.items():
                if option in given:
                    if by_options:
                        raise OptionsRefused(f"--resume goes on with the run in the Run folder, and {option} {what}: "
                                         f"give only one of them in Options")
                    raise OptionsRefused(f"Resume goes on with the run in the Run folder, and {option} in Options "
                                     f"{what}: untick Resume, or take {option} out of Options")
        # fine-tuning: the trainer takes the model's own size (a model whose size could not be read
        # here is not sent the field's, which the trainer would refuse)
        size = [] if self._fine_tuning() and model_image_size(self._current_model) is None else \
            ["--img-size", str(self.size_combo.currentData())]
        steps = ["--steps", str(self.steps_spin.value())]
        if resume:
            # a resumed run keeps its own size and number of steps (its checkpoint's): the form's
            # defaults, sent, were refused ("Size 64 px differs from the checkpoint's 32") or ran a
            # 3,000-step run on to 20,000. Steps changed after the form showed the run's go (more
            # steps continue a finished run).
            size = []
            if self._resumed_settings() is None or self.steps_spin.value() == self._run_steps_shown:
                steps = []
        args = ["--data", str(Path(data).absolute()) if data else data, "--out", str(self.run_dir()),
                *size, *steps,
                "--max-minutes", str(self.minutes_spin.value()), "--device", self.device_combo.currentData()]
        attrs = ",".join(a.strip() for a in self.attr_edit.text().split(",") if a.strip())
        if attrs:
            args += ["--attr", attrs]
        if self.align_check.isChecked():
            args.append("--align")
        if self._fine_tuning() and not resume:   # a resumed run has its --init in it (the trainer refuses both)
            args += ["--init", str(self._current_model)]
        if resume and "--resume" not in given:   # once in the command line it shows
            args.append("--resume")
        if not resume and not {"--classifier-steps", "--classifier"} & given.keys() and \
                self.classifier_spin.value() > self.classifier_spin.minimum():
            # sent while a model's classifier is to be used too: the data may add an attribute by the
            # start. Automatic sends none: the command line shown runs, pasted, as the trainer's
            # default, whose number the trainer's first messages say
            args += ["--classifier-steps", str(self.classifier_spin.value())]
        if "--eval-every" not in given and not resume:   # a resumed run keeps its own cadence
            # evaluate (preview, log line, best-model export) about 20 times per run
            args += ["--eval-every", str(max(5, self.steps_spin.value() // 20))]
        return args + extra

    def command(self, arguments: list | None = None) -> list:
        """The program arguments after the Python interpreter: fader-train (with `arguments`, the
        form's where None), under torchrun when more than one process is asked for."""
        n = self.procs_spin.value()
        arguments = self.arguments() if arguments is None else arguments
        if _frozen():
            # the packaged executable is no Python interpreter: `FaderDesktop train` is its fader-train
            # (frozen_entry.TRAIN_COMMAND; not imported: frozen_entry imports the window)
            return ["train"] + arguments
        if n == 1:
            return ["-m", "training.cli"] + arguments
        return ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
                "-m", "training"] + arguments

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.is_running():
            return
        self._sync_resume()   # a checkpoint written since: Options' --resume ticks the box (no question below)
        try:
            self.arguments()
        except ValueError as e:   # unbalanced quotes, or an option the form's fields own
            # (OptionsRefused reads well: "cannot read the options" would misname it)
            what = str(e) if isinstance(e, OptionsRefused) else f"cannot read the options: {e}"
            # the last run's outcome ("Training stopped: …") stayed above, as if this start had failed so
            self.phase_label.setText(f"Not started: {what}")
            QMessageBox.warning(self, "Options", what[:1].upper() + what[1:])
            return
        out = self.run_dir()
        if (out / CHECKPOINT_NAME).is_file() and not self.resume_check.isChecked():
            box = plain(QMessageBox(QMessageBox.Icon.Question, "Run folder in use",
                                    f"{out} already holds a training run. Resume it, or choose another folder?",
                                    QMessageBox.StandardButton.Cancel, self))
            access_key(box.button(QMessageBox.StandardButton.Cancel), "&Cancel")
            resume = box.addButton("&Resume", QMessageBox.ButtonRole.AcceptRole)
            box.exec()
            if box.clickedButton() is not resume:
                return
            self.resume_check.setChecked(True)
        self._reset_live()
        self.proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), env.value("PYTHONPATH")])))
        self.proc.setProcessEnvironment(env)
        self.proc.setWorkingDirectory(str(REPO))
        self.proc.readyReadStandardError.connect(self._read_stderr)
        self.proc.readyReadStandardOutput.connect(self._read_stdout)
        self.proc.finished.connect(self._finished)
        self.proc.errorOccurred.connect(self._process_error)
        arguments = self.arguments()   # after the question above, which may tick Resume
        args = self.command(arguments)
        # the trainer's "the --init model" is the open model only where the fine-tune box sent it
        # (a plain "--init": Options' are written "--init=PATH", and refused beside the box)
        self._init_open_model = self._fine_tuning() and "--init" in arguments
        n = self.procs_spin.value()
        # the packaged app runs its own executable's `train`, which a user can paste (no fader-train there)
        launcher = (shlex.join([sys.executable, "train"]) if _frozen() else "fader-train" if n == 1
                    else f"torchrun --standalone --nproc_per_node {n} $(which fader-train)")
        # quoted as a shell reads it: a folder named "My photos" pasted unquoted was two arguments
        self._message(f"$ {launcher} " + shlex.join(arguments))
        if "--quiet" in self._typed_options():
            self._message(QUIET_NOTE)
        self._started_at = time.monotonic()
        self._stopping = False
        self._run_folder, self._previous_run = out, None
        self.proc.start(sys.executable, args)
        self.phase_label.setText("Starting…")
        self.progress.setFormat("%p%")   # not the last run's "failed"
        self.progress.setRange(0, 0)
        self._poll.start()
        self._update_buttons()

    def stop(self) -> None:
        """Ask the trainer to stop (SIGTERM): it finishes the step and saves a resumable checkpoint."""
        if not self.is_running():
            return
        self._stopping = True
        self.phase_label.setText("Stopping — saving a resumable checkpoint…" if self._resumable() else "Stopping…")
        self.proc.terminate()
        self._update_buttons()

    def _reset_live(self) -> None:
        from training.run_progress import RunWatcher
        self._stderr_tail = ""
        self._held = None
        arguments = self.arguments()
        # A resumed run's charts show the whole run: its evaluations come back from log.jsonl (read
        # from its start), and the loss points this window saw of its earlier part (from the
        # progress bar, most of which log.jsonl lacks) stay, up to the step it goes on from. They
        # were cleared: the loss chart began at the resumed step.
        kept: dict = {}
        if "--resume" in arguments and self._run_folder == self.run_dir():
            settings = self._resumed_settings()
            last = settings["step"] if settings else max(self._losses, default=0)
            kept = {step: v for step, v in self._losses.items() if step <= last}
        self._losses.clear()
        self._val.clear()
        self._watcher = RunWatcher(self.run_dir())
        self.loss_plot.clear()
        self.val_plot.clear()
        for step, (rec, lat) in sorted(kept.items()):
            self._add_loss(step, rec, lat)
        # the last run's faces stayed on show until this run's first evaluation, many minutes away
        self._preview_image = None
        self._preview_names = None
        self.preview.clear()
        self.preview.setText(PREVIEW_WAITING)
        set_literal_tip(self.preview, "")
        self._budget_s = _budget_seconds(arguments)
        self._reset_count()

    def _reset_count(self) -> None:
        """Forget the training steps seen (a new run, or a phase before training)."""
        self._train_clock0: float | None = None  # time.monotonic() at the training bar's start (its elapsed 0)
        self._train_step = 0                     # the newest step known, from any source
        self._train_total = 0
        self._train_seen: list = []              # (seconds into the training bar, step): the measured speed
        self._train_shown = 0.0                  # the bar's fraction on show

    def _message(self, text: str) -> None:
        self.log_view.appendPlainText(text)

    def _read_stdout(self) -> None:
        data = bytes(self.proc.readAllStandardOutput()).decode("utf-8", "replace")
        for line in data.splitlines():
            if line.strip():
                m = EVAL_LINE_RE.match(line)
                if m:   # an evaluation: the run is at that step, whatever the last progress line said
                    self._training_at(int(m["step"]))
                self._message(line)

    def _read_stderr(self) -> None:
        # tqdm redraws its bar with \r; messages end with \n
        self._stderr_tail += bytes(self.proc.readAllStandardError()).decode("utf-8", "replace")
        parts = re.split(r"[\r\n]", self._stderr_tail)
        self._stderr_tail = parts.pop()
        for part in parts:
            if part.strip() and not self._torchrun_stopping(part):
                self._line(part)
        if self._stderr_tail.strip() and PROGRESS_RE.match(self._stderr_tail):
            self._line(self._stderr_tail, partial=True)

    def _torchrun_stopping(self, line: str) -> bool:
        """Whether `line` is torchrun's own account of the stop the dialog asked for (not shown: its
        warnings and the traceback of its SignalException). A traceback is held until its last line
        says which exception it is: any other is shown whole, as is everything of a run that
        stopped on its own."""
        if self._held is not None:
            if line[:1].isspace():
                self._held.append(line)
                return True
            held, self._held = self._held, None
            if TORCHRUN_STOPPED_RE.match(line):
                return True
            for h in held:
                self._line(h)
        if not self._stopping:
            return False
        if line.startswith(TRACEBACK_START):
            self._held = [line]
            return True
        return bool(TORCHRUN_LOG_RE.match(line))

    def _release_held(self) -> None:
        """A traceback still held when the trainer ended: it did not end as torchrun's stop does."""
        held, self._held = self._held or [], None
        for h in held:
            self._line(h)

    def _line(self, line: str, partial: bool = False) -> None:
        m = PROGRESS_RE.match(line)
        if not m:
            if not partial:
                self._message(line.rstrip())
            return
        phase, cur, total, info = m["phase"].strip(), int(m["cur"]), int(m["total"]), m["info"]
        elapsed, _, eta = info.split(",")[0].partition("<")
        if phase == "training":
            self._training_at(cur, total, _clock_seconds(elapsed), _clock_seconds(eta))
            lm = LOSS_RE.search(info)
            if lm:
                try:
                    self._add_loss(cur, float(lm["rec"]), float(lm["lat"]) if lm["lat"] else None)
                except ValueError:
                    pass
            return
        self._reset_count()
        eta = eta.strip()
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(cur)
        noun = COUNTS.get(phase.split()[0].lower())
        count = f"{cur:,} of {total:,} {noun}" if noun else f"step {cur:,} of {total:,}"
        self.phase_label.setText(f"{phase.capitalize()}: {count}"
                                 + (f" — about {eta} left" if eta and eta != "?" else ""))

    def _training_at(self, step: int, total: int | None = None, elapsed: float | None = None,
                     eta: float | None = None) -> None:
        """The training has reached `step`: from the trainer's progress line (with its `total`, the
        bar's `elapsed` seconds and its own estimate `eta` of the seconds left, None for "?"), or
        from an evaluation line or log.jsonl (step alone). The counter, the bar and the time left
        follow the newest step from any of them and never go back: the progress line reaches a
        pipe every 1-30 s (training/progress.py) and may come after a later evaluation's."""
        now = time.monotonic()
        if elapsed is not None:
            self._train_clock0 = now - elapsed   # the trainer's clock, which its --max-minutes counts
        if total:
            self._train_total = total
        if self._train_clock0 is None or not self._train_total:
            return   # no training bar yet: the steps of a resumed run's old log.jsonl, read while its data is prepared
        t = now - self._train_clock0
        if step < self._train_step or (step == self._train_step and eta is None and self._train_seen):
            return   # older news than what is on show
        if step > self._train_step or not self._train_seen:
            self._train_seen.append((t, step))
            # the speed of about the last RATE_WINDOW_S: keep the newest sighting at least that old
            while len(self._train_seen) > 2 and self._train_seen[1][0] <= t - RATE_WINDOW_S:
                self._train_seen.pop(0)
        self._train_step = step
        total = self._train_total
        if eta is None:   # the trainer's estimate is for its line's step only: else the speed measured here
            t0, s0 = self._train_seen[0]
            if step > s0 and t > t0:
                eta = (total - step) * (t - t0) / (step - s0)
        left = max(0.0, self._budget_s - t) if self._budget_s else None
        end = total   # the step the run will stop at, as far as known
        if left is not None and (eta is None or eta > left):
            # the trainer stops at --max-minutes (counted from this bar's start) whatever the steps:
            # the bar's own estimate said "about 6:46:40 left" of a run that ends in 50 minutes.
            # The bar then runs to the step the limit ends it at (the steps' own estimate of 6:46:40
            # put it at 2 % when the run was at 17 %), from the steps done before (a resumed run).
            if eta is not None:
                end = step + (total - step) * left / eta
            how = "about" if eta is not None else "at most"   # no speed measured yet: the limit is all that is known
            when = f" — {how} {_clock(left)} left (the {self._budget_s / 60:g} min limit)"
        else:
            when = f" — about {_clock(eta)} left" if eta is not None else ""
        if self._train_shown * end > step:   # a faster speed moved the end on: the bar waits, never goes back
            end = step / self._train_shown
        self._train_shown = step / max(1.0, end)
        self.progress.setRange(0, max(1, step, round(end)))
        self.progress.setValue(step)
        if not self._stopping:   # "Stopping — saving a resumable checkpoint…" stays until it has stopped
            self.phase_label.setText(f"Training: step {step:,} of {total:,}{when}")

    def _add_loss(self, step: int, rec: float, lat) -> None:
        """One point of the loss curves (from the progress bar or from log.jsonl), by step."""
        self._losses[step] = (rec, float(lat) if lat is not None else None)
        pts = sorted(self._losses.items())
        self.loss_plot.set_series("reconstruction ×10", QColor(61, 174, 233), [(s, r * 10) for s, (r, _l) in pts])
        self.loss_plot.set_series("latent discriminator", QColor(240, 160, 60),
                                  [(s, l) for s, (_r, l) in pts if l is not None])

    def _poll_run_dir(self) -> None:
        """Read what the run wrote since the last look (a job; at most one waits at a time)."""
        watcher = self._watcher
        if watcher is None:
            return

        def decode(data: bytes):
            image = QImage.fromData(data)
            return None if image.isNull() else image
        self.jobs.submit(lambda: watcher.poll(decode), on_done=self._show_news, coalesce="poll")

    def _show_news(self, news) -> None:
        if news.restarted:
            self._val = []
        steps = [rec["step"] for rec in news.records if isinstance(rec.get("step"), int)]
        if steps and self.is_running():   # log.jsonl may be ahead of the progress line on the pipe
            self._training_at(max(steps))
        names = self._preview_names
        for rec in news.records:
            if isinstance(rec.get("val"), dict):
                self._val.append(rec)
                # the run's attributes, in its order: the preview's switched images, named
                swaps = rec["val"].get("swap_accuracy")
                if isinstance(swaps, dict) and swaps:
                    names = [str(a) for a in swaps]
                train = rec.get("train") or {}
                if "rec" in train:
                    self._add_loss(int(rec["step"]), float(train["rec"]), train.get("lat_dis"))
        if news.records or news.restarted:
            self.val_plot.set_series("swap accuracy", QColor(110, 200, 110),
                                     [(r["step"], r["val"].get("swap_mean", 0.0)) for r in self._val])
            self.val_plot.set_series("PSNR/100", QColor(200, 120, 220),
                                     [(r["step"], r["val"].get("psnr", 0.0) / 100) for r in self._val])
        if news.preview is not None or names != self._preview_names:
            if news.preview is not None:
                self._preview_image = news.preview
            self._preview_names = names
            self._show_preview()
        self._update_buttons()

    def _show_preview(self) -> None:
        image = getattr(self, "_preview_image", None)
        if image is None:
            return
        kinds = preview_kinds(self._preview_names) if self._preview_names else None
        faces = preview_faces(image, len(kinds)) if kinds else None
        if faces is None:   # the log's line, which names the attributes, comes after the image: shown as written
            self.preview.setPixmap(QPixmap.fromImage(image).scaled(
                self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
            set_literal_tip(self.preview, "")
            return
        font = QFont(self.preview.font())
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 0.9)
        self.preview.setPixmap(labeled_preview(faces, kinds, self.preview.size(), font,
                                               self.palette().color(QPalette.ColorRole.Text),
                                               self.preview.devicePixelRatioF()))
        set_literal_tip(self.preview, PREVIEW_TIP.format(rows=", ".join(kinds)))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._show_preview()

    def _finished(self, code: int, status) -> None:
        if self.proc is not None:
            self._read_stderr()   # what is left of its output, before it is judged
        self._release_held()
        self._poll_run_dir()
        self._poll.stop()
        self.progress.setRange(0, max(1, self.progress.maximum()))
        minutes = (time.monotonic() - self._started_at) / 60
        run = self._run_folder or self.run_dir()
        offer_resume = finished = failed = False
        if status == QProcess.ExitStatus.CrashExit and not self._stopping:
            text = "The trainer crashed; see the messages below"
            failed = True
        elif code == 0 and not self._stopping and self._run_said(TO_GO_ON_RE) and (run / CHECKPOINT_NAME).is_file():
            # stopped by its time limit (--max-minutes) before its steps: the trainer exits with 0, as
            # when done, and says "to go on: … --resume" (training/cli.py); Resume goes on, as after Cancel
            model = run / "model.fader"
            stopped = self._run_said(TIME_LIMIT_RE)
            step = int(stopped[1]) if stopped else self._train_step
            at = f" at step {step:,} of {self._train_total:,}" if step and self._train_total else ""
            if step and self._train_total:   # the bar ran to where the limit was to end it: at 100 % it read as done
                self.progress.setRange(0, self._train_total)
                self.progress.setValue(min(step, self._train_total))
            limit = f"the {self._budget_s / 60:g} min time limit" if self._budget_s else "its time limit"
            text = (f"Stopped at {limit}{at}; the run can be continued with Resume"
                    + (f" (its best model so far is {model})" if model.is_file() else ""))
            offer_resume = True
        elif code == 0:
            finished = True
            model = run / "model.fader"
            # named, so the user knows which file Open result loads (and where to find it later).
            # The time is this window's, from Start training (the data and the classifier
            # included): "Finished after 0.1 min" stood under the trainer's "done at step 450
            # after 0.4 min", its training time over every start of a resumed run
            took = f"Finished {minutes:.1f} min after Start training"
            text = (f"{took}; the run's best model is {model}" if model.is_file() else
                    f"{took}; no model was written (the trainer writes {model} at its first evaluation)")
        elif code in (143, 130) or self._stopping:
            if (run / CHECKPOINT_NAME).is_file():
                text = "Stopped; the run can be continued with Resume"
                offer_resume = True
            else:   # stopped while the data was prepared, before the first checkpoint: Resume stays off
                text = "Stopped before the first checkpoint; Start training begins the run again"
        elif code == 2 or (code == 1 and self._last_error()):
            # fader-train's one-line errors: settings, data, or an output it could not write
            # (under torchrun, which exits with 1 when a process fails)
            error = self._last_error()
            text = "Training stopped: " + (form_terms(error, self._init_open_model) or "see the messages below")
            failed = True
            # an output it could not write (a full disk) with the checkpoint before it intact: Resume
            # goes on from there, as after Cancel (the box stayed unticked under "rerun with --resume")
            offer_resume = KEPT_CHECKPOINT in error and (run / CHECKPOINT_NAME).is_file()
        else:
            text = f"The trainer exited with status {code}; see the messages below"
            failed = True
        if failed:
            self._show_failed()
        self.phase_label.setText(text)
        self._message(f"[{text}]")
        self._stopping = False
        if offer_resume:
            self.resume_check.setChecked(True)
        elif finished and self.out_edit.text() == self._default_out:
            # the next Start begins a new run, in a folder of its own: the finished run's folder,
            # offered again, answered Start with "already holds a training run: Resume?" whatever
            # the Data field now said, and Resume with "nothing to train". A folder the user chose
            # stays, as does a stopped or failed run's (Resume continues it).
            self._default_out = default_run_folder()
            self.out_edit.setText(self._default_out)
            self._previous_run = run
        self._update_buttons()
        if self._close_when_stopped:   # asked to close while the run went on: it has stopped now
            self._close_when_stopped = False
            self.close()

    def _run_said(self, pattern: re.Pattern):
        """The match of `pattern` in the last line of the latest run's messages that has one (None)."""
        for block in reversed(list(_blocks(self.log_view))):
            line = block.text()
            if line.startswith("$ "):   # the command line this dialog shows at each start: an earlier run's
                return None
            m = pattern.match(line)
            if m:
                return m
        return None

    def _show_failed(self) -> None:
        """The bar of a run that failed: where it was, unless full (the data prepared, then "no
        usable image" or a full disk showed a full bar under the error), and saying "failed"."""
        # (a run refused at once has no value yet, -1, below the bar's minimum: Qt draws no text then)
        if (self.progress.maximum() <= self.progress.minimum() or self.progress.value() >= self.progress.maximum()
                or self.progress.value() < self.progress.minimum()):
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.progress.setFormat("failed")

    def _last_error(self) -> str:
        """The latest run's last error line (after "error:"), "" where it said none: an earlier run's
        error, still in the messages, was taken for this one's."""
        said = self._run_said(ERROR_RE)
        return said[1].strip() if said else ""

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.phase_label.setText(f"Could not start {sys.executable} {' '.join(self.command()[:2])}")
            self._poll.stop()
            self._show_failed()   # not the busy bar of a run that goes on
            self._update_buttons()

    def _open_result(self) -> None:
        path = self._result_dir() / "model.fader"
        if path.is_file() and not self._editor_closed:
            self.openResult.emit(str(path))

    def reject(self) -> None:
        """Escape, Close and the window's close button (QDialog.closeEvent calls this): while a run
        goes on, ask to stop it first (Escape hid the dialog unasked, the run going on unseen)."""
        if self.is_running():
            self._ask_stop()
            return
        super().reject()

    def _ask_stop(self) -> None:
        """Stop the run and close once its checkpoint is saved, or keep it (window-modal, no nested
        event loop: the editor keeps painting while the trainer saves)."""
        if self._stopping:   # Cancel training was pressed already: close once it has stopped
            self._close_when_stopped = True
            return
        if self.stop_box is not None and self.stop_box.isVisible():
            self.stop_box.raise_()
            return
        # before the first checkpoint (the data prepared, the classifier trained) nothing is saved
        text = ("Stop the training run? It saves a checkpoint you can resume later." if self._resumable() else
                "Stop the training run? Nothing can be resumed yet: the first checkpoint is written when the "
                "training steps begin, so Start training would begin the run again.")
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running", text,
                          QMessageBox.StandardButton.Cancel, self)
        access_key(box.button(QMessageBox.StandardButton.Cancel), "&Cancel")
        stop = box.addButton("&Stop training", QMessageBox.ButtonRole.DestructiveRole)

        def answered(button) -> None:
            if button is not stop:
                return
            if self.is_running():
                self._close_when_stopped = True
                self.stop()
            else:   # it ended while the question was open
                self.close()
        box.buttonClicked.connect(answered)
        self.stop_box = box
        box.open()


def _clock_seconds(text: str):
    """Seconds in a tqdm time ("05:34", "8:30:08"); None for "?" or anything else."""
    try:
        parts = [int(x) for x in text.strip().split(":")]
    except ValueError:
        return None
    if not 2 <= len(parts) <= 3:
        return None
    seconds = 0
    for x in parts:
        seconds = seconds * 60 + x
    return float(seconds)


def _clock(seconds: float) -> str:
    """Seconds as tqdm writes them: "50:00", "1:05:00"."""
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


# options that take a path: the trainer runs in another working folder (REPO) than this window's
PATH_OPTIONS = ("--data", "--exclude", "--cache-dir", "--init", "--continue", "--classifier")
# options a field of the form sets, with that field: typed in Options too, the last one given wins
# in argparse, so Options silently overrode the form ("20000 steps" ran --steps 5, with --eval-every
# counted from 20000), and --out sent the run to a folder the dialog did not watch. Not here: the
# flags (--align, --resume), which only turn on what their boxes turn on, and --data, which adds a
# data source (argparse appends it) rather than replacing the Data field's.
# --device and --max-minutes stay open to Options, which comes after the form's and wins: it says
# what the fields cannot (cuda:1, "0" for no time limit, half a minute)
FIELD_OPTIONS = {"--out": "the Run folder field", "--steps": "the Steps field",
                 "--epochs": "the Steps field (a run's length is given in steps here)",
                 "--img-size": "the Size field", "--attr": "the Attributes field"}
# options that start a new run, which a resumed one cannot take (the trainer refuses both), with what they do
NEW_RUN_OPTIONS = {"--init": "starts a new run from a model", "--continue": "trains a model further in a new run folder"}
# with the fine-tune box ticked the form gives --init the open model; unticked, Options may name another
FINETUNE_OPTION = {"--init": "the 'Fine-tune the open model' box (untick it to fine-tune another model)"}


# The trainer's words for what the form sets, as the form names it (the status line; the log below
# keeps the trainer's own text, as the command line it shows does). Only phrases whose rewording
# reads right in every message: not the command lines the trainer suggests ("--continue RUN/model.fader
# --steps TOTAL --out NEW_RUN_DIR"), which are typed as they are.
_FORM_TERMS = tuple((re.compile(pattern), words) for pattern, words in (
    (r"--img-size (\d+)", r"Size \1 px"),
    # the form always sends its Size: "leave --img-size out" has no field to do it with
    (r"leave --img-size out \(or give (\d+)\)", r"choose Size \1 px"),
    # a resumed run's start model (the dialog sends no --init with Resume): not the open model
    (r"which the --init model (.+?) labelled\b", r"which the model the run started from (\1) labelled"),
    (r"add --align \(in the training window: ('[^']*')\)", r"tick \1"),
    # training/trainer.py's save_checkpoint on a full disk (the dialog ticks Resume for it)
    (r"rerun with --resume once", "Start training again with Resume ticked once"),
    (r"use --resume or another --out", "tick Resume or choose another Run folder"),
    (r"(^|: )--resume: ", r"\1Resume: "), (r"\(without --resume\)", "(with Resume unticked)"),
    (r"resume with the run's --data and --attr", "resume with the run's Data and Attributes"),
    (r"resume with the run's --data", "resume with the run's Data"),
    (r"--out (.+?) is inside --data ", r"the Run folder \1 is inside the data folder "),
    (r"(^|: )--out ", r"\1Run folder "), (r"(choose|give) another --out\b", r"\1 another Run folder"),
    (r"\bin --attr\b", "in Attributes"), (r"bad --attr ", "bad Attributes "),
    (r"--attr (\S+) does not match", r"Attributes \1 does not match"),
    (r"with --attr (\S+)", r"with Attributes \1"),
    (r"(Give it as|attribute folder:|e\.g\.) --data ", r"\1 Data "),
))
# the trainer's line after a stop that left the run to go on (training/cli.py: "fader-train: to go
# on: fader-train … --resume"): after a time limit, which exits with 0, it is what says so
TO_GO_ON_RE = re.compile(r"^[^:]+: to go on: .*--resume\b")
TIME_LIMIT_RE = re.compile(r"^[^:]+: time budget at step (\d+) ")   # the line before it
ERROR_RE = re.compile(r"^.*?error:(.*)$")   # fader-train's one-line errors ("fader-train: error: …")
# the trainer's words where a checkpoint stays after it failed to write the next (training/trainer.py's save_checkpoint)
KEPT_CHECKPOINT = "is intact: rerun with --resume"


# the --init the 'Fine-tune the open model' box sends: the trainer's "--init model" is then the
# open model (not one Options name with --init, nor the model a resumed run started from)
_OPEN_MODEL_TERMS = ((re.compile(r"the --init model"), "the open model"),)


def form_terms(message: str, open_model: bool = False) -> str:
    """A trainer's error with the options the form sets named as its fields; `open_model`: the run's
    --init was the open model, sent by the fine-tune box."""
    for pattern, words in _FORM_TERMS + (_OPEN_MODEL_TERMS if open_model else ()):
        message = pattern.sub(words, message)
    return message


def model_image_size(path) -> int | None:
    """A .fader model's resolution from its metadata (the file's header only, no tensors read);
    None where it cannot be read."""
    from core.errors import ModelFileError
    from core.model_file import read_model_header
    try:
        return int(read_model_header(path)[2].img_size)
    except (ModelFileError, OSError):
        return None


def _extra_options(text: str, owned: dict = FIELD_OPTIONS) -> list:
    """The Options field as fader-train arguments: each option written out in full (argparse takes
    abbreviations, so "--ou" is --out) and relative paths made absolute from this window's working
    folder. ValueError for unbalanced quotes, or an option that a field of the form sets (`owned`:
    option -> the field that sets it)."""
    from training.cli import build_parser
    names = [o for a in build_parser()._actions for o in a.option_strings if o.startswith("--")]
    out = []
    tokens = shlex.split(text)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("--") or token == "--":
            out.append(token)
            continue
        name, eq, value = token.partition("=")
        matches = [n for n in names if n == name] or [n for n in names if n.startswith(name)]
        if len(matches) != 1:   # unknown or ambiguous: the trainer says so
            out.append(token)
            continue
        name = matches[0]
        if name in owned:
            raise OptionsRefused(f"set {name} with {owned[name]}, not in Options")
        if name in PATH_OPTIONS:
            if not eq and i < len(tokens) and not _option_like(tokens[i]):
                value, eq = tokens[i], "="
                i += 1
            if eq and value:
                value = str(Path(os.path.expanduser(value)).absolute())
        out.append(f"{name}={value}" if eq else name)
    return out


# argparse's own test for a negative number, which is an option's value (the trainer has no option like one)
NEGATIVE_NUMBER_RE = re.compile(r"^-\d+$|^-\d*\.\d+$")


class OptionsRefused(ValueError):
    """Options that read well but cannot go with the form as it is (an option a field owns, or a
    resume beside a new run's --init): said as such, not as options that cannot be read."""


def _option_like(word: str) -> bool:
    """Whether argparse reads `word` as an option rather than as the value of the option before it
    (its _parse_optional): a word that starts with "-", other than "-" alone, a negative number or
    one with a space in it (which names no option)."""
    return word.startswith("-") and word != "-" and not NEGATIVE_NUMBER_RE.match(word) and " " not in word


def _without_quiet(extra: list) -> list:
    """The Options' arguments (as _extra_options writes them) less --quiet: it turns off the
    trainer's progress bar, which is where this window reads the phase, the step, the losses and the
    time left from (its lines never show in the messages), so the run showed "Starting…" to its end.
    Words after "--" are no options to argparse and stay."""
    end = extra.index("--") if "--" in extra else len(extra)
    return [w for w in extra[:end] if w != "--quiet"] + extra[end:]


def _options_given(extra: list) -> dict:
    """The options among the Options field's arguments (as _extra_options writes them: full names,
    `--name value` or `--name=value`), as the trainer's argparse reads them: {name: [each value
    given, in order]}, a flag's value "". Words after "--" are no options to argparse."""
    from training.cli import build_parser
    actions = build_parser()._option_string_actions
    found: dict = {}
    i = 0
    while i < len(extra):
        word = extra[i]
        i += 1
        if word == "--":
            break
        name, eq, value = word.partition("=")
        action = actions.get(name) if name.startswith("--") else None
        if action is None:   # a value, or an option the trainer does not know (it says so)
            continue
        if not eq and action.nargs != 0 and i < len(extra) and not _option_like(extra[i]):
            value = extra[i]
            i += 1
        found.setdefault(name, []).append(value)
    return found


def model_classifier_used(model, data, attr_spec, continued: bool = False) -> bool:
    """Whether a run from `model` (--init, or --continue where `continued`) on `data` (its --data
    sources) with --attr `attr_spec` takes the model's evaluation classifier instead of training
    one, as training/cli.py's _evaluation_classifier decides: the model has one and the run trains
    only the model's attributes (a data attribute spelt as the model's but for letter case is the
    model's, unless the data have both spellings; a continued run trains the model's own). Raises
    where the model or the data cannot be read."""
    from core.model_file import read_model_header
    from training.datasets import open_dataset
    _meta, attributes, _arch, classifier = read_model_header(model)
    if classifier is None:
        return False
    if continued:
        return True
    own = {a.name.lower(): a.name for a in attributes}
    names = [a.name for a in open_dataset(list(data), attr_spec).attributes]
    for name in names:
        model_name = own.get(name.lower())
        # 'smiling' is the model's 'Smiling' unless the data have a 'Smiling' too (then it is a new one)
        if model_name is None or (model_name != name and model_name in names):
            return False
    return True


def _budget_seconds(args: list) -> float:
    """The trainer's time budget in these arguments (the last --max-minutes wins, as in argparse)."""
    minutes = 0.0
    for i, a in enumerate(args):
        value = args[i + 1] if a == "--max-minutes" and i + 1 < len(args) else (
            a.split("=", 1)[1] if a.startswith("--max-minutes=") else None)
        if value is not None:
            try:
                minutes = float(value)
            except ValueError:
                pass
    return max(0.0, minutes) * 60


def _blocks(edit: QPlainTextEdit):
    b = edit.document().firstBlock()
    while b.isValid():
        yield b
        b = b.next()
