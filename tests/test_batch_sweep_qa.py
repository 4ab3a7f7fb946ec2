"""QA of `sweep` and `batch` (found by QA, fixed after): an MP4 over the process's file-size limit
(ffmpeg killed by SIGXFSZ) and ffmpeg killed by any signal are said in words; a batch whose output
folder disappears during the run stops instead of creating it again; huge photos are read ahead by
one at most, so a batch of them holds a bounded number of decoded photos."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def cli(capsys, *args) -> tuple:
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# sweep: ffmpeg killed by a signal
# --------------------------------------------------------------------------------------------

FSIZE_LIMIT = 32 << 10

_SAVE_MP4 = """
import sys
import numpy as np
from core.errors import ImageError
from core.sweep import save_animation
rng = np.random.default_rng(0)
frames = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(6)]
try:
    save_animation(sys.argv[1], frames, fps=6)
except ImageError as e:
    print(e)
    sys.exit(3)
"""


def _limit_file_size():
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_mp4_over_the_file_size_limit_says_so_and_leaves_nothing(tmp_path):
    """`ulimit -f` smaller than the video: ffmpeg (which inherits the limit) is killed by SIGXFSZ,
    which was said as "the video encoder failed (ffmpeg exit status -25)"."""
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "anim.mp4"
    # in a child: the limit holds for every file the process writes
    r = subprocess.run([sys.executable, "-B", "-c", _SAVE_MP4, str(out)], cwd=REPO, capture_output=True,
                       text=True, preexec_fn=_limit_file_size, timeout=300)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stdout.strip() == (f"{out}: cannot write MP4: file too large (over the file-size limit of "
                                f"{FSIZE_LIMIT:,} bytes set for this process, ulimit -f)"), r.stdout
    assert list(tmp_path.iterdir()) == []     # no partial file, no temporary file


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_cli_sweep_mp4_over_the_file_size_limit(tmp_path, celeba_aligned, tiny_model_path):
    pytest.importorskip("imageio_ffmpeg")
    paths = sorted(celeba_aligned.glob("*.jpg"))[:2]
    out = tmp_path / "out" / "anim.mp4"
    out.parent.mkdir()
    r = subprocess.run([sys.executable, "-B", "-m", "fader_desktop", "sweep", *map(str, paths), "-o", str(out),
                        "--attr", "Smiling", "--steps", "8", "--cell-size", "256", "--aligned",
                        "--model", str(tiny_model_path), "--device", "cpu"],
                       cwd=REPO, capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [f"fader-desktop: error: {out}: cannot write MP4: file too large (over the "
                                     f"file-size limit of {FSIZE_LIMIT:,} bytes set for this process, ulimit -f)"]
    assert list(out.parent.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for ffmpeg")
@pytest.mark.parametrize("sig, words", [("KILL", "stopped by signal SIGKILL (killed, e.g. by the system when memory ran out)"),
                                        ("SEGV", "stopped by signal SIGSEGV (it crashed)"),
                                        ("USR1", "stopped by signal SIGUSR1")])
def test_mp4_encoder_killed_by_a_signal_names_it(tmp_path, monkeypatch, sig, words):
    """Any signal that kills ffmpeg was said as a negative exit status; now by its name, in words."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from core.errors import ImageError
    from core.sweep import save_animation
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\nkill -{sig} $$\n")
    fake.chmod(0o755)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(fake))
    out = tmp_path / "out" / "anim.mp4"
    out.parent.mkdir()
    frames = [np.full((64, 64, 3), v, np.uint8) for v in (0, 128, 255)]
    with pytest.raises(ImageError) as e:
        save_animation(out, frames)
    assert str(e.value) == f"{out}: cannot write MP4: the video encoder (ffmpeg) was {words}"
    assert "exit status" not in str(e.value)
    assert list(out.parent.iterdir()) == []


# --------------------------------------------------------------------------------------------
# batch: the output folder disappears during the run
# --------------------------------------------------------------------------------------------

@pytest.fixture
def six(tmp_path, celeba_aligned) -> Path:
    """Six real aligned photos: four at the top, two in a sub-folder."""
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    photos = sorted(celeba_aligned.glob("*.jpg"))[:6]
    for p in photos[:4]:
        shutil.copy(p, d / p.name)
    for p in photos[4:]:
        shutil.copy(p, d / "sub" / p.name)
    return d


def _after_first_write(monkeypatch, action):
    """Run `action` once, right after the first photo is written (in the writer thread)."""
    import core.image_io
    real = core.image_io.export_photo
    calls = []

    def export(*a, **k):
        r = real(*a, **k)
        if not calls:
            calls.append(1)
            action()
        return r
    monkeypatch.setattr(core.image_io, "export_photo", export)


@pytest.mark.parametrize("how", ["deleted", "replaced", "deleted, report inside", "replaced, report inside"])
def test_batch_stops_when_its_output_folder_disappears(tmp_path, capsys, monkeypatch, six, tiny_model_path, how):
    """The output folder deleted during the run (or its drive unmounted: another folder at its
    path) was silently created again and filled; now the run stops with an error naming it, the
    photos not written are "not processed", the report says why, and the folder is not remade."""
    out = tmp_path / "out"
    report = out / "report.json" if "inside" in how else tmp_path / "report.json"

    def vanish():
        shutil.rmtree(out)
        if how.startswith("replaced"):
            out.mkdir()   # an empty mount point left behind by an unmounted drive
    _after_first_write(monkeypatch, vanish)
    rc, err = cli(capsys, "batch", six, "-o", out, "--set", "Smiling=2", "--aligned", "--report", report,
                  "--model", tiny_model_path, "--device", "cpu")
    assert rc == 1, err
    if how.startswith("replaced"):
        assert list(out.iterdir()) == []      # nothing written into the other folder, the report neither
    else:
        assert not out.exists()               # not created again
    message = f"the output folder {out} disappeared during the run; 1 photo was written before"
    assert f"fader-desktop: error: {message}" in err.splitlines(), err
    assert "--skip-existing goes on" not in err
    assert "1 written, 0 already there, 0 skipped, 1 failed, 4 not processed" in err
    if "inside" in how:
        assert not report.exists()
        assert (f"fader-desktop: error: {report}: cannot write the report: the output folder {out} it was to go "
                "into disappeared") in err.splitlines(), err
        return
    rep = json.loads(report.read_text())
    assert rep["error"] == message
    assert rep["counts"] == {"ok": 1, "exists": 0, "skipped": 0, "failed": 1, "cancelled": 4}
    failed = [it for it in rep["items"] if it["status"] == "failed"]
    assert failed[0]["reason"] == f"not written: the output folder {out} disappeared during the run"
    assert {it["reason"] for it in rep["items"] if it["status"] == "cancelled"} == \
        {"not processed: the output folder disappeared"}


def test_the_batch_dialog_says_the_output_folder_disappeared(tmp_path, monkeypatch, six, tiny_model_path):
    """The window's batch summary said only "Stopped: 4 not processed. Run again ... to resume",
    a resume into a folder that is gone; it now says why the run stopped."""
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QApplication
    from core.batch import BatchOptions, run_batch
    from core.engine import Engine
    from core.model_file import load_model
    from fader_desktop.batch_dialog import BatchDialog
    QApplication.instance() or QApplication([])
    out = tmp_path / "out"
    _after_first_write(monkeypatch, lambda: shutil.rmtree(out))
    engine = Engine(load_model(tiny_model_path), device="cpu")
    rep = run_batch(six, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True))
    assert rep.error and rep.exit_status == 1
    head, _ = BatchDialog(None, "unused.fader", "cpu", {"Smiling": 2.0}).summary_text(rep)
    assert f"Stopped: the output folder {out} disappeared during the run; 1 photo was written before; " \
           "4 not processed." in head, head
    assert "resume" not in head


def test_batch_still_makes_sub_folders_inside_its_output_folder(tmp_path, capsys, six, tiny_model_path):
    """Sub-folders mirroring the input tree are still made inside the output folder (now one level
    at a time, never the output folder itself), and a run that ends normally has no error."""
    from core.batch import BatchOptions, run_batch
    from core.engine import Engine
    from core.model_file import load_model
    out = tmp_path / "out"
    (six / "sub" / "deeper" / "still").mkdir(parents=True)
    shutil.copy(next((six / "sub").glob("*.jpg")), six / "sub" / "deeper" / "still" / "x.jpg")
    engine = Engine(load_model(tiny_model_path), device="cpu")
    rep = run_batch(six, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True))
    assert rep.counts()["ok"] == 7 and rep.error is None and rep.exit_status == 0
    assert (out / "sub" / "deeper" / "still" / "x.jpg").is_file()
    assert rep.to_dict()["error"] is None


# --------------------------------------------------------------------------------------------
# batch: memory held with huge photos
# --------------------------------------------------------------------------------------------

def test_batch_holds_few_decoded_photos_when_they_are_huge(tmp_path, monkeypatch, celeba_aligned, tiny_model_path):
    """Photos of which only two fit in MAX_HELD_BYTES (as 100 MP photos do in 768 MB): the photo
    written and the one read ahead, never more. Before, the reads in flight and the queue of writes
    each held some: 8 photos of 100 MP peaked at 3.8 GB, against 1.9 GB for one `edit`.
    Counted as the decoded photos alive at once (open_photo's arrays and render()'s copies), with
    a writer slowed down so that a backlog forms; outputs are the same as before."""
    import core.batch
    import core.image_io
    from core.batch import BatchOptions, run_batch
    from core.engine import Engine
    from core.image_io import load_image
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    from PIL import Image
    src = tmp_path / "in"
    src.mkdir()
    for k, p in enumerate(sorted(celeba_aligned.glob("*.jpg"))[:6]):
        with Image.open(p) as im:
            im.convert("RGB").resize((im.width * 4, im.height * 4), Image.BICUBIC).save(src / f"p{k}.jpg", quality=90)
    photo = load_image(src / "p0.jpg").nbytes
    monkeypatch.setattr(core.batch, "MAX_HELD_BYTES", int(2.68 * photo))

    lock, live, peak = threading.Lock(), [0], [0]

    def count(arr):
        with lock:
            live[0] += arr.nbytes
            peak[0] = max(peak[0], live[0])

        def gone(n=arr.nbytes):
            with lock:
                live[0] -= n
        weakref.finalize(arr, gone)
        return arr

    real_open, real_render, real_export = core.image_io.open_photo, PhotoEdit.render, core.image_io.export_photo

    def counted_open(*a, **k):
        rgb, source = real_open(*a, **k)
        if source is not None and source.deep is not None:   # a 16-bit photo's values, kept for its export
            count(source.deep)
        return count(rgb), source
    monkeypatch.setattr(core.image_io, "open_photo", counted_open)
    monkeypatch.setattr(PhotoEdit, "render", lambda self, *a, **k: count(real_render(self, *a, **k)))

    def slow_export(*a, **k):
        time.sleep(0.3)
        return real_export(*a, **k)
    monkeypatch.setattr(core.image_io, "export_photo", slow_export)
    engine = Engine(load_model(tiny_model_path), device="cpu")
    rep = run_batch(src, tmp_path / "out", engine, BatchOptions(values={"Smiling": 2.0}, aligned=True), readers=2)
    assert rep.counts()["ok"] == 6, rep.problems()
    # the photo written (as read, and its edited copy while the edit is pasted back) and the next
    assert peak[0] <= 3 * photo, f"{peak[0] / photo:.1f} photos held at once"


def test_batch_outputs_of_huge_photos_are_unchanged(tmp_path, monkeypatch, celeba_aligned, tiny_model_path):
    """Reading ahead less and freeing the photo before its save change no output byte: with the
    budget at its default or at 1 byte (every photo huge), the files are those `edit` writes. One
    face per model batch: faces decoded together can differ in their last bits from one decoded
    alone, whatever the memory."""
    import core.batch
    from core.batch import BatchOptions, run_batch
    from core.engine import Engine
    from core.image_io import export_photo, read_source
    from core.model_file import load_model
    from core.photo_edit import PhotoEdit
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted(celeba_aligned.glob("*.jpg"))[:4]:
        shutil.copy(p, src / p.name)
    engine = Engine(load_model(tiny_model_path), device="cpu")
    opts = dict(values={"Smiling": 2.0}, aligned=True)
    run_batch(src, tmp_path / "roomy", engine, BatchOptions(**opts), batch_faces=1)
    monkeypatch.setattr(core.batch, "MAX_HELD_BYTES", 1)
    rep = run_batch(src, tmp_path / "tight", engine, BatchOptions(**opts), batch_faces=1)
    assert rep.counts()["ok"] == 4
    (tmp_path / "one").mkdir()
    for p in sorted(src.glob("*.jpg")):
        doc = PhotoEdit.open(p, engine, aligned=True)
        doc.set_values({"Smiling": 2.0})
        export_photo(p, tmp_path / "one" / p.name, doc.render(), read_source(p))
        one = (tmp_path / "one" / p.name).read_bytes()
        assert (tmp_path / "roomy" / p.name).read_bytes() == one
        assert (tmp_path / "tight" / p.name).read_bytes() == one


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open descriptors in /proc")
def test_a_run_that_fails_before_its_photos_lets_go_of_the_output_folder(tmp_path, six, tiny_model_path):
    """The output folder is held open for the run; an error before the photos (here the progress
    callback failing on an output already there, as a closed stderr would) kept it open, one
    descriptor per run, and its drive could not be ejected until the process ended."""
    from core.batch import BatchOptions, run_batch
    from core.engine import Engine
    from core.model_file import load_model
    engine = Engine(load_model(tiny_model_path), device="cpu")
    out = tmp_path / "out"
    run_batch(six, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True))
    first = sorted(out.glob("*.jpg"))[0]
    first.unlink()                          # one photo left to do, the rest already there

    def broken(done, total, path):
        raise BrokenPipeError("stderr is gone")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(BrokenPipeError):
            run_batch(six, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True, skip_existing=True),
                      progress=broken)
    assert len(os.listdir("/proc/self/fd")) == before
