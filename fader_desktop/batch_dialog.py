"""File ▸ Batch export…: apply the current edit (or a recipe file) to a whole folder.

The work is core.batch.run_batch, a job on the dialog's own JobRunner (fader_desktop/workers.py)
with its own Engine, so the window stays responsive and its own jobs are untouched; a
QProgressDialog shows progress and an ETA and cancels through a threading.Event (outputs already
written are complete files). At the end a summary lists
what was skipped and why, and the JSON report can be saved. Given the window's Settings, the dialog
opens with the folders, format and quality of the last run started (a folder that is gone is left out).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtWidgets import (QApplication, QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox,
                               QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMessageBox,
                               QProgressDialog, QPushButton, QRadioButton, QSpinBox, QVBoxLayout,
                               QWidget)

from core.attributes import counted
from core.image_io import LOSSY_FORMATS, SAVE_FORMATS

from .dialogs import access_key, browse_row, buddy_label, fit_on_screen, typed_path, visual_tab_order
from .fader_panel import display_name
from .plain_text import no_mnemonic, plain
from .workers import JobRunner

# widest a file name may make the progress dialog's label (pixels; the rest is elided)
PROGRESS_NAME_PX = 320
PROGRESS_TITLE = "Exporting"
# the width a title bar gives its icon and buttons (minimise, maximise, close) beside the title
TITLE_BAR_BUTTONS_PX = 140
FORMATS = (("Same as input", None), ("PNG", "png"), ("JPEG", "jpg"), ("WebP", "webp"), ("TIFF", "tif"), ("BMP", "bmp"))


def describe_values(values: dict) -> str:
    """'Mouth slightly open 1.00, Hair [0 1 0]' — a one-line description of an edit, by the names
    the faders show (not the model's identifiers, Mouth_Slightly_Open)."""
    parts = []
    for k, v in values.items():
        if isinstance(v, (list, tuple)):
            parts.append(f"{display_name(k)} [{' '.join(f'{x:g}' for x in v)}]")
        else:
            parts.append(f"{display_name(k)} {float(v):.2f}")
    return ", ".join(parts)


def empty_recipe_message(recipe) -> str:
    """Why a batch with this recipe is refused: it sets no fader, so every photo would only be
    copied ("" where it sets some, or cannot be read: the run reads it against the model's
    attributes and says what is wrong)."""
    from core.errors import FaderError
    from core.recipe import load_recipe
    try:
        values = load_recipe(recipe, ())   # with no attributes, any value is refused as unknown
    except FaderError:
        return ""
    if values:
        return ""
    return (f"{recipe}: the recipe sets no fader (it was saved with none moved), so every photo would only be "
            "copied unchanged. Choose a recipe saved after moving a fader.")


def unchanged_copy(it) -> bool:
    """Whether a written photo is its input unedited: none of its faces needed the edit (a face
    that already has the value asked for is left as it is)."""
    return it.status == "ok" and it.changed == 0


def passed_over_why(it) -> str:
    """Why the plan passes over an input (the words after its name in the progress window)."""
    from core.batch import is_other_file
    if is_other_file(it):
        return "not a photo"
    if it.status == "exists":
        return "its output already exists"
    return "skipped; the summary says why"


def passed_over_note(items: list, n_todo: int, name=lambda path: Path(path).name) -> str:
    """What the progress window says once the run has passed over the files it leaves alone at the
    start (none of them on the bar), as `fader-desktop batch` says it above its bar: one is named,
    more are counted by why ('Passed over 3 files (2 outputs already there, 1 not a photo); 2
    photos to edit'). `name(path)`: the name shown for a file."""
    from core.batch import passed_over_reasons
    if len(items) == 1:
        what = f"{name(items[0].input)} ({passed_over_why(items[0])})"
    else:
        why = passed_over_reasons(items, ("not a photo", "not photos"), "named in the summary")
        what = f"{len(items)} files ({', '.join(why)})"
    return f"Passed over {what}; {counted(n_todo, 'photo') if n_todo else 'no photo'} to edit"


def run_batch_job(in_dir: str, out_dir: str, model_path, device: str, options, recipe: Optional[str],
                  cancel: threading.Event, progress, items: Optional[list] = None, loaded=None):
    """The batch itself (Qt-free, on the worker thread): load the model, read the recipe, run
    (`items`: the plan to run, as plan_batch made it; None plans it here; `loaded()` is called
    once the model is loaded, before the first photo)."""
    from core.batch import run_batch
    from core.engine import Engine
    from core.errors import FaderError
    from core.model_file import load_model
    from core.recipe import load_recipe
    engine = Engine(load_model(model_path), device=device or "auto")
    if recipe:
        options.values = load_recipe(recipe, engine.attributes)
        if not options.values:   # emptied since Start checked it
            raise FaderError(empty_recipe_message(recipe) or f"{recipe}: the recipe sets no fader")
    if loaded is not None:
        loaded()
    return run_batch(in_dir, out_dir, engine, options, progress=progress, cancel=cancel, items=items)


def took(seconds: float) -> str:
    """How long a run took, in words: "0.4 s", "12 s", "3.5 min" (a quick run read "in 0 s")."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


class BatchDialog(QDialog):
    """Choose folders, the edit and the output format; run, show progress, summarise.

    `values`: the edit to apply, as in PhotoEdit.recipe()["values"] — only the attributes the user
    changed, so every photo keeps its own value for the others. Empty: only a recipe file can be used.
    `settings` (fader_desktop.settings.Settings): where the last run's choices are kept; None keeps none.
    """

    def __init__(self, parent: Optional[QWidget], model_path, device: str = "auto", values: Optional[dict] = None,
                 settings=None):
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Batch export")
        self.model_path, self.device = model_path, device
        self.values = dict(values or {})
        self.report = None          # the last run's BatchReport
        self.error: Optional[str] = None
        self.summary_box: Optional[QMessageBox] = None
        self.message_box: Optional[QMessageBox] = None
        self.existing_box: Optional[QMessageBox] = None   # "outputs already exist": replace or skip
        self._overwrite_once = False
        self._close_when_done = False
        self.jobs = JobRunner("fader-batch", self)
        self._running = False
        self._cancel = threading.Event()
        self._progress: Optional[QProgressDialog] = None
        self._t0 = 0.0
        self._items: dict = {}        # the run's plan: input path -> Item (its status once finished)
        self._passed_over: list = []  # the Items the plan already settled (outputs there, not photos)
        self._n_todo = 0              # the photos to edit: the bar counts these alone
        self._n_edited = 0            # of those finished, the photos edited (written)
        self._eta_base = 0.0          # the time the ETA's rate is measured from

        # access keys (Alt+letter), one letter each: Photos from, Browse, saVe to, brOwse, cUrrent edit,
        # Recipe file, broWse, Format, Quality, Already aligned, More faces, sKip, Start, Close
        form = QFormLayout()
        self.in_edit, in_row = self._folder_row("Choose the folder of photos", "&Browse…")
        self.out_edit, out_row = self._folder_row("Choose the output folder", "Br&owse…")
        form.addRow(buddy_label("&Photos from:", self.in_edit), in_row)
        form.addRow(buddy_label("Sa&ve to:", self.out_edit), out_row)

        # the model's attribute names as written: an "&" in one is no shortcut's mark
        self.current_radio = QRadioButton("C&urrent edit " + (f"({no_mnemonic(describe_values(self.values))})"
                                                               if self.values else "(no slider changed)"))
        self.recipe_radio = QRadioButton("&Recipe file:")
        group = QButtonGroup(self)
        group.addButton(self.current_radio)
        group.addButton(self.recipe_radio)
        self.recipe_edit = QLineEdit()
        self.recipe_edit.setAccessibleName("Recipe file")   # its radio button beside it is no label a screen reader reads
        browse = QPushButton("Bro&wse…")
        browse.clicked.connect(self._browse_recipe)
        recipe_row = QHBoxLayout()
        recipe_row.addWidget(self.recipe_radio)
        recipe_row.addWidget(self.recipe_edit, 1)
        recipe_row.addWidget(browse)
        (self.current_radio if self.values else self.recipe_radio).setChecked(True)
        # without a moved slider the "current edit" is no edit: the batch wrote unedited copies of
        # every photo and called them written
        self.current_radio.setEnabled(bool(self.values))
        edit_box = QVBoxLayout()
        edit_box.addWidget(self.current_radio)
        edit_box.addLayout(recipe_row)
        form.addRow("Edit:", edit_box)

        self.format_combo = QComboBox()
        for label, _ in FORMATS:
            self.format_combo.addItem(label)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        self.quality_spin.setValue(95)
        self.quality_spin.setToolTip("JPEG and WebP quality")
        # quality means nothing for the lossless formats ("Same as input" may be JPEG: it stays on)
        self.format_combo.currentIndexChanged.connect(lambda i: self.quality_spin.setEnabled(
            FORMATS[i][1] is None or SAVE_FORMATS[f".{FORMATS[i][1]}"] in LOSSY_FORMATS))
        fmt_row = QHBoxLayout()
        fmt_row.addWidget(self.format_combo)
        fmt_row.addWidget(buddy_label("&Quality:", self.quality_spin))
        fmt_row.addWidget(self.quality_spin)
        fmt_row.addStretch(1)
        form.addRow(buddy_label("&Format:", self.format_combo), fmt_row)
        self.aligned_check = QCheckBox("Photos are &already aligned face crops (CelebA style)")
        self.more_faces_check = QCheckBox("Find &more faces (every search on each photo: slower)")
        self.more_faces_check.setToolTip("Also finds people lying down beside others, small faces at the back of "
                                         "big photos and tilted faces, as View ▸ Find more faces does; several "
                                         "times slower per photo")
        # an aligned crop is not searched at all
        self.aligned_check.toggled.connect(lambda on: self.more_faces_check.setEnabled(not on))
        self.skip_check = QCheckBox("S&kip photos whose output already exists (resume)")
        form.addRow("", self.aligned_check)
        form.addRow("", self.more_faces_check)
        form.addRow("", self.skip_check)

        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("&Start", QDialogButtonBox.ButtonRole.AcceptRole)
        access_key(self.buttons.addButton(QDialogButtonBox.StandardButton.Close), "&Close")
        self.start_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        visual_tab_order(self.buttons)
        fit_on_screen(self, QSize(620, self.sizeHint().height()))
        if settings is not None:
            self._restore_choices(settings)

    # -- widgets -------------------------------------------------------------------------------
    def _folder_row(self, title: str, button_text: str):
        edit = QLineEdit()

        def browse():
            d = QFileDialog.getExistingDirectory(self, title, edit.text() or str(Path.home()))
            if d:
                edit.setText(d)
        return edit, browse_row(edit, browse, button_text)

    def _browse_recipe(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Choose a recipe", self.recipe_edit.text() or str(Path.home()),
                                           "Fader recipes (*.json);;All files (*)")
        if f:
            self.recipe_edit.setText(f)
            self.recipe_radio.setChecked(True)

    def _restore_choices(self, settings) -> None:
        """The folders, format and quality of the last run started. A folder that no longer exists (a
        deleted folder, an unplugged drive) is left out rather than shown: the field stays empty.
        An output folder not made yet is shown where its parent is there: a run that stopped before
        its first photo (a recipe the model refused) never made it, and the field came back empty
        to the user who had typed it and came back with the recipe fixed; the run makes it."""
        in_dir, out_dir = settings.batch_in_dir, settings.batch_out_dir
        if in_dir and Path(in_dir).is_dir():
            self.in_edit.setText(in_dir)
        if out_dir and (Path(out_dir).is_dir() or not Path(out_dir).exists() and Path(out_dir).parent.is_dir()):
            self.out_edit.setText(out_dir)
        fmt = settings.batch_format or None
        self.format_combo.setCurrentIndex(next(i for i, (_label, f) in enumerate(FORMATS) if f == fmt))
        self.quality_spin.setValue(settings.batch_quality)

    def _remember_choices(self, in_dir: str, out_dir: str, opts) -> None:
        s = self.settings
        if s is None:
            return
        s.batch_in_dir, s.batch_out_dir = in_dir, out_dir
        s.batch_format, s.batch_quality = opts.format, opts.quality
        s.sync()

    # -- running -------------------------------------------------------------------------------
    def options(self):
        """The BatchOptions the widgets describe (values filled in by the worker for a recipe)."""
        from core.batch import BatchOptions
        return BatchOptions(values=dict(self.values) if self.current_radio.isChecked() else {},
                            aligned=self.aligned_check.isChecked(),
                            find_more_faces=self.more_faces_check.isChecked() and not self.aligned_check.isChecked(),
                            format=FORMATS[self.format_combo.currentIndex()][1],
                            quality=self.quality_spin.value(), skip_existing=self.skip_check.isChecked(),
                            overwrite=self._overwrite_once and not self.skip_check.isChecked(),
                            first_face=1)   # faces numbered as the window's Face list numbers them

    def is_running(self) -> bool:
        return self._running

    def start(self) -> bool:
        """Check the choices, then run the batch on a worker thread. False when refused."""
        from core.batch import OutputsExist, plan_batch
        from core.errors import FaderError
        if self.is_running():
            return False
        in_dir, out_dir = typed_path(self.in_edit), typed_path(self.out_edit)
        recipe = typed_path(self.recipe_edit) if self.recipe_radio.isChecked() else None
        opts = self.options()
        self._overwrite_once = False   # a "Replace" answer holds for the run it was given for
        try:
            if not in_dir or not out_dir:
                raise FaderError("Choose the folder of photos and the output folder.")
            if self.recipe_radio.isChecked() and not recipe:
                raise FaderError("Choose a recipe file, or use the current edit." if self.values else
                                 "Choose a recipe file: no slider was moved, so there is no current edit to apply.")
            if recipe and not Path(recipe).is_file():
                raise FaderError(f"{recipe}: recipe file not found")
            # as "Current edit" is greyed out without a moved slider: nothing would be edited
            if recipe and (empty := empty_recipe_message(recipe)):
                raise FaderError(empty)
            items = plan_batch(in_dir, out_dir, opts.format, opts.skip_existing, opts.overwrite)
        except OutputsExist as e:
            self._ask_existing(e.paths, out_dir)   # the answer starts the run, or not
            return False
        except FaderError as e:
            self._warn(str(e))
            return False
        if not items:
            self._warn(f"{in_dir}: no files found")
            return False
        self.report, self.error = None, None
        self._cancel = threading.Event()
        # the bar counts the photos to edit, as `fader-desktop batch` does: the files passed over at
        # the start (not photos, outputs already there on a resume) are reported at once and made
        # it show 66 % before any photo was edited
        self._passed_over = [it for it in items if it.status != "pending"]
        self._n_todo = len(items) - len(self._passed_over)
        self._progress = QProgressDialog("Loading the model…", "&Cancel", 0, max(1, self._n_todo), self)
        for label in self._progress.findChildren(QLabel):
            plain(label)   # it shows the photos' file names, which Qt took for HTML
        # short, and the window wide enough for it: the title bar adds " — Fader Desktop", and the
        # narrow progress window showed "Batch expo… er Desktop"
        self._progress.setWindowTitle(PROGRESS_TITLE)
        self._progress.setMinimumWidth(self._progress.fontMetrics().horizontalAdvance(
            f"{PROGRESS_TITLE} — {QApplication.applicationDisplayName()}") + TITLE_BAR_BUTTONS_PX)
        self._progress.setWindowModality(Qt.WindowModality.WindowModal)
        self._progress.setMinimumDuration(0)
        self._progress.setAutoClose(False)
        self._progress.setAutoReset(False)
        self._progress.canceled.connect(self.cancel)
        self._progress.show()

        jobs = self.jobs
        model_path, device, cancel = self.model_path, self.device, self._cancel

        def progress(done: int, total: int, path: str) -> None:   # on the worker thread
            jobs.run_on_gui(lambda: self._on_progress(done, total, path))

        def loaded() -> None:   # on the worker thread, before its first progress report
            jobs.run_on_gui(self._on_model_loaded)
        self.start_button.setEnabled(False)
        self._t0 = time.monotonic()
        self._items = {str(it.input): it for it in items}
        self._n_edited = 0
        self._eta_base = self._t0
        self._running = True
        self._remember_choices(in_dir, out_dir, opts)
        # the plan counted here is the one run (its Items tell a photo edited from one that failed)
        jobs.submit(lambda: run_batch_job(in_dir, out_dir, model_path, device, opts, recipe, cancel, progress,
                                          items, loaded),
                    on_done=self._on_done, on_error=self._on_failed)
        return True

    @Slot()
    def cancel(self) -> None:
        """Stop after the photos in progress (their files are complete)."""
        self._cancel.set()
        if self._progress is not None:
            self._progress.setLabelText("Stopping after the photos in progress…")

    def _on_model_loaded(self) -> None:
        # the ETA's rate is that of the photos: measured from Start, the model's loading counted in
        # it and the first ETA was too long (with nothing passed over; else from the end of that burst)
        self._eta_base = time.monotonic()

    def _on_progress(self, done: int, total: int, path: str) -> None:
        pd = self._progress
        if pd is None or self._cancel.is_set():
            return
        now = time.monotonic()
        # run_batch reports the files it passes over first, all at once; `total` may leave out an
        # earlier report found among the inputs (never a photo to edit)
        n_passed = total - self._n_todo
        if done <= n_passed:
            # the ETA counts from the end of that burst: else a resume of 900 of 1,000 photos said
            # "about 1 s left" for the 100 still to edit
            self._eta_base = now
            if done == n_passed:
                # said once, and up through the first photo's edit: it said "1 of 4: notes.txt" as if
                # the note were being edited
                pd.setLabelText(passed_over_note(self._passed_over, self._n_todo, lambda p: self._elided(pd, p)))
                if not self._n_todo:
                    pd.setValue(pd.maximum())   # nothing left to do
            return
        k = done - n_passed
        it = self._items.get(path)
        if it is not None and it.status == "ok":
            self._n_edited += 1
        eta = ""
        # only once a photo was edited: a photo that failed at once (a corrupt file) said "about 0 s left"
        if self._n_edited and k < self._n_todo:
            left = (now - self._eta_base) / k * (self._n_todo - k)
            eta = f" — about {left / 60:.0f} min left" if left >= 90 else f" — about {left:.0f} s left"
        pd.setLabelText(f"{k} of {self._n_todo}: {self._elided(pd, path)}{eta}")
        # last: a window-modal QProgressDialog processes events in setValue, which may run
        # _on_done and close the dialog
        pd.setValue(k)

    @staticmethod
    def _elided(pd: QProgressDialog, path) -> str:
        # a QProgressDialog widens itself to its label: a long file name (a camera's, a download's)
        # pushed Cancel off the screen, so the name is elided in the middle
        return pd.fontMetrics().elidedText(Path(path).name, Qt.TextElideMode.ElideMiddle, PROGRESS_NAME_PX)

    def _finish_run(self) -> None:
        if self._progress is not None:
            self._progress.canceled.disconnect(self.cancel)
            self._progress.close()
            self._progress = None
        self._running = False
        self.jobs.shutdown()   # the thread ends; the next Start begins another
        self.start_button.setEnabled(True)

    def _on_done(self, report) -> None:
        self._finish_run()
        self.report = report
        if self._close_when_done:
            super().reject()
            return
        self._show_summary(report)

    def _on_failed(self, message: str) -> None:
        self._finish_run()
        self.error = message
        if self._close_when_done:
            super().reject()
            return
        self._warn(message)

    def summary_text(self, report) -> tuple:
        """(headline, details) of a finished run."""
        c = report.counts()
        head = f"{counted(c['ok'], 'photo')} written to {report.out_dir} in {took(report.seconds)}."
        extra = []
        # written, but not edited: "9 written" read as nine edited photos when five were copies
        unchanged = [it for it in report.items if unchanged_copy(it)]
        if unchanged:
            k = len(unchanged)
            if k == 1:
                which = "It was not" if c["ok"] == 1 else "1 of them was not"
                whose = "its face already has" if unchanged[0].faces == 1 else "its faces already have"
            else:
                which = "None of them was" if k == c["ok"] else f"{k} of them were not"
                whose = "their faces already have"
            extra.append(f"{which} edited: {whose} the edit's values (see details).")
        if c["exists"]:
            # the window's run has no earlier report to carry their notes from (the command line's
            # --report has): its readings were said by the run that wrote them, not here
            unchecked = len(report.not_checked_again())
            extra.append(f"{c['exists']} already existed and "
                         f"{'was left as it was' if c['exists'] == 1 else 'were left as they were'}"
                         + (", not checked again: what the model was unsure of there is in the summary of the run "
                            "that wrote them." if unchecked else "."))
        # the files the report counts apart as `not_images` (and the CLI as "(1 not an image)")
        others = len(report.other_files())
        if c["skipped"] - others or c["failed"]:
            extra.append(f"{c['skipped'] - others + c['failed']} could not be edited (see details).")
        harder = report.search_harder()
        if harder:
            extra.append(f"In {counted(len(harder), 'photo')} no face was found: run again with “Find more "
                         "faces” (and “Skip photos whose output already exists”) to search "
                         f"{'it' if len(harder) == 1 else 'them'} harder.")
        if others:
            extra.append("1 file that is not a photo was left alone." if others == 1 else
                         f"{others} files that are not photos were left alone.")
        if report.error:
            # nothing to resume into: the folder is gone (or another one is at its path)
            extra.append(f"Stopped: {report.error}; {c['cancelled']} not processed.")
        elif c["cancelled"]:
            # (a Cancel that came after the last photo was handed on stopped nothing: no word of it)
            extra.append(f"Stopped: {c['cancelled']} not processed. Run again with "
                         "“Skip photos whose output already exists” to resume.")
        unsure = [it for it in report.items if it.unsure]
        if unsure:
            extra.append(f"In {counted(len(unsure), 'photo')} the model was unsure of a reading the edit starts "
                         f"from, so the edit may go the wrong way there: check "
                         f"{'it' if len(unsure) == 1 else 'them'} (see details).")
        # what an output could not keep (16 bits, transparency in a JPEG, an animation's frames), as
        # `fader-desktop batch` notes it: written, but not all of the photo
        lost = [it for it in report.items if it.status == "ok" and it.lost]
        if lost:
            extra.append(f"{counted(len(lost), 'output')} could not keep everything of "
                         f"{'its' if len(lost) == 1 else 'their'} photo (see details).")
        lines = [f"{rel}: {status} — {reason}" for rel, status, reason in report.problems() if status != "cancelled"]
        lines += [f"{it.relative}: unchanged — {it.reason}" for it in unchanged]
        lines += [f"{it.relative}: unsure reading — {', '.join(it.unsure)}" for it in unsure]
        lines += [f"{it.relative}: not all kept — {'; '.join(it.lost)}" for it in lost]
        return " ".join([head] + extra), "\n".join(lines)

    def _show_summary(self, report) -> None:
        head, details = self.summary_text(report)
        box = plain(QMessageBox(QMessageBox.Icon.Information if report.exit_status == 0 else QMessageBox.Icon.Warning,
                                "Batch export finished", head, QMessageBox.StandardButton.Close, self))
        if details:
            box.setDetailedText(details)
        close = access_key(box.button(QMessageBox.StandardButton.Close), "&Close")
        save = box.addButton("&Save report…", QMessageBox.ButtonRole.ActionRole)
        save.clicked.connect(lambda: self._save_report(report))
        # Enter closes it, as a box that says what happened does; Save report… is Alt+S. Without a
        # default Qt made Save report… one (the first button able to be), and Enter opened a file dialog
        box.setDefaultButton(close)
        self.summary_box = box
        box.open()

    def _save_report(self, report) -> None:
        f, _ = QFileDialog.getSaveFileName(self, "Save the batch report", str(Path(report.out_dir) / "batch-report.json"),
                                           "JSON (*.json)")
        if f:
            try:
                report.write(f)
            except ValueError as e:
                self._warn(str(e))

    def _ask_existing(self, paths: list, out_dir: str) -> None:
        """Files already there are never replaced unasked: Replace them, skip those photos, or
        cancel (window-modal, without a nested event loop). They are named (the first few), as
        `fader-desktop batch` names them; and said to have the outputs' names, not to be outputs:
        a photo that turns out unreadable or without a face writes nothing over its file."""
        names = []
        for p in paths[:3]:
            try:
                names.append(Path(p).relative_to(out_dir).as_posix())
            except ValueError:
                names.append(str(p))
        more = len(paths) - len(names)
        listed = (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 and not more else ", ".join(names)) \
            + (f" and {more} more" if more else "")
        n = len(paths)
        box = plain(QMessageBox(QMessageBox.Icon.Question, "Batch export",
                                f"1 file in {out_dir} has a name this batch writes: {listed}." if n == 1 else
                                f"{n} files in {out_dir} have names this batch writes: {listed}.",
                                QMessageBox.StandardButton.Cancel, self))
        box.setInformativeText("Replace them with the edited photos (a photo that cannot be edited leaves its file "
                               "as it is), or keep them and skip those photos?")
        access_key(box.button(QMessageBox.StandardButton.Cancel), "&Cancel")
        replace = box.addButton("&Replace", QMessageBox.ButtonRole.DestructiveRole)
        skip = box.addButton("&Skip those photos", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(skip)

        def answered(button) -> None:
            if button is replace:
                self.skip_check.setChecked(False)
                self._overwrite_once = True
            elif button is skip:
                self.skip_check.setChecked(True)
            else:
                return
            self.start()

        box.buttonClicked.connect(answered)
        self.existing_box = box
        box.open()

    def _warn(self, message: str) -> None:
        # open(), not exec(): window-modal without a nested event loop (and testable)
        self.message_box = plain(QMessageBox(QMessageBox.Icon.Warning, "Batch export", message,
                                             QMessageBox.StandardButton.Ok, self))
        self.message_box.open()

    # -- closing while a batch runs ------------------------------------------------------------
    def reject(self) -> None:
        if self.is_running():
            # closes once the worker has finished the photos in flight: nothing is left half-written
            self._close_when_done = True
            self.cancel()
            return
        super().reject()

    def closeEvent(self, event) -> None:
        if self.is_running():
            self._close_when_done = True
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)
