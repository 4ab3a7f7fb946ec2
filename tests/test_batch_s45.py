"""Batch QA walk (session 45): the CLI summary and the report count the same skipped files, and
the dialog's progress never names a file that is not a photo as if it were being edited."""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cli(capsys, *args):
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def folder(path: Path, photo: Path, n: int) -> Path:
    """`n` copies of a real photo, a truncated photo, an empty one and a note beside them."""
    path.mkdir(parents=True)
    for k in range(n):
        shutil.copy(photo, path / f"{k:02d}.jpg")
    (path / "broken.jpg").write_bytes(photo.read_bytes()[:2000])
    (path / "empty.png").write_bytes(b"")
    (path / "notes.txt").write_text("shot on the 3rd\n")
    return path


def test_the_cli_summary_counts_the_skipped_files_the_report_counts(tmp_path, capsys, portrait_path,
                                                                   tiny_model_path):
    """The summary said '2 skipped' where the report's counts said 3: the note beside the photos
    was left out of one and counted in the other. Both say 3 now, the summary naming the note as
    not an image and the report counting it apart in `not_images`."""
    src = folder(tmp_path / "in", portrait_path, 2)
    report = tmp_path / "report.json"
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--aligned", "--set", "Smiling=2",
                  "--model", tiny_model_path, "--device", "cpu", "--report", report)
    assert rc == 1, err                                    # the broken and the empty photo
    rep = json.loads(report.read_text())
    assert rep["counts"] == {"ok": 2, "exists": 0, "skipped": 3, "failed": 0, "cancelled": 0}   # keys as before
    line = next(line for line in err.splitlines() if " written, " in line)
    said = int(re.search(r"(\d+) skipped", line).group(1))
    assert said == rep["counts"]["skipped"], (line, rep["counts"])
    assert "2 written, 0 already there, 3 skipped (1 not an image), 0 failed" in line, err
    assert rep["not_images"] == 1
    # the note is still named once, not among the problems
    assert "1 file that is not an image was left alone: notes.txt" in err
    assert not [ln for ln in err.splitlines() if ln.startswith("  ") and "notes.txt" in ln], err


def _run_dialog(dlg, app, limit: float = 120) -> list:
    """Start the dialog's batch and return every label its progress window showed."""
    assert dlg.start()
    pd = dlg._progress
    labels = []
    shown = pd.setLabelText

    def record(text: str) -> None:   # the real label is set; each one is kept, not sampled
        labels.append(text)
        shown(text)
    pd.setLabelText = record
    deadline = time.monotonic() + limit
    while dlg.is_running() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    app.processEvents()
    assert not dlg.is_running() and dlg.error is None, dlg.error
    return labels


def test_the_progress_never_names_a_file_that_is_not_a_photo_as_being_edited(tmp_path, portrait_path,
                                                                              tiny_model_path):
    """Files the plan passes over are reported at once, before the first photo: the progress
    window said '1 of 3: notes.txt' while it edited 00.jpg. It says the file is passed over, and
    why; on a resume the photos whose output is there are said to be passed over too."""
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QApplication
    from fader_desktop.batch_dialog import BatchDialog
    app = QApplication.instance() or QApplication([])
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        shutil.copy(portrait_path, src / f"{k:02d}.jpg")
    (src / "notes.txt").write_text("shot on the 3rd\n")
    out = tmp_path / "out"
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0})
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    dlg.aligned_check.setChecked(True)
    labels = _run_dialog(dlg, app)
    assert dlg.report.counts()["ok"] == 2
    named = [t for t in labels if "notes.txt" in t]
    # (the bar and its count are the photos to edit, as `fader-desktop batch` counts them)
    assert named == ["Passed over notes.txt (not a photo); 2 photos to edit"], labels
    assert any(t.startswith("1 of 2: 00.jpg") for t in labels), labels
    dlg.summary_box.close()

    # a resume: 00.jpg's output is there, 01.jpg's is not
    (out / "01.jpg").unlink()
    dlg.skip_check.setChecked(True)
    labels = _run_dialog(dlg, app)
    assert dlg.report.counts()["exists"] == 1 and dlg.report.counts()["ok"] == 1
    assert "Passed over 2 files (1 output already there, 1 not a photo); 1 photo to edit" in labels, labels
    assert not [t for t in labels if re.search(r"\d: 00\.jpg", t)], labels   # never as if being edited
    assert any(re.match(r"1 of 1: 01\.jpg", t) for t in labels), labels
    dlg.summary_box.close()
    dlg.close()
