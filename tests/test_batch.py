"""Batch export: folders with broken files, sub-folders, recipes, resume, the report, the dialog."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import PHONE_HEIC

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict:
    """relative path -> (sha256, mtime_ns) of every file and folder under `folder`."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[p.relative_to(folder).as_posix()] = (digest, st.st_mtime_ns)
    return out


def outputs(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def cli(capsys, *args) -> tuple:
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.err


@pytest.fixture(scope="module")
def engine(tiny_model_path):
    from core.engine import Engine
    from core.model_file import load_model
    return Engine(load_model(tiny_model_path), device="cpu")


@pytest.fixture
def mixed(tmp_path, celeba_aligned, celeba_wild) -> Path:
    """Real aligned and in-the-wild photos, broken files, a face-less image, nested folders."""
    from core.image_io import load_image, save_image
    d = tmp_path / "in"
    (d / "sub" / "deeper").mkdir(parents=True)
    aligned = sorted(celeba_aligned.glob("*.jpg"))
    wild = sorted(celeba_wild.glob("*.jpg"))
    shutil.copy(aligned[0], d / "aligned.jpg")
    shutil.copy(wild[0], d / "sub" / "wild.JPG")          # upper-case suffix is still an image
    save_image(d / "sub" / "deeper" / "aligned2.png", load_image(aligned[1]))
    (d / "notes.jpg").write_text("not a photo at all\n")
    (d / "empty.png").write_bytes(b"")
    save_image(d / "gray.png", np.full((200, 240, 3), 128, np.uint8))
    (d / "sub" / "readme.txt").write_text("hello\n")
    (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")       # hidden: not an input at all
    return d


def test_mixed_folder_cli(tmp_path, capsys, mixed, tiny_model_path):
    out, report = tmp_path / "out", tmp_path / "report.json"
    before = snapshot(mixed)
    rc, err = cli(capsys, "batch", mixed, "-o", out, "--set", "Smiling=2", "--model", tiny_model_path,
                  "--device", "cpu", "--report", report)
    assert rc == 1, err                      # some inputs were skipped
    assert snapshot(mixed) == before         # inputs untouched, nothing written into IN_DIR
    assert sorted(outputs(out)) == ["aligned.jpg", "sub/deeper/aligned2.png", "sub/wild.JPG"]

    rep = json.loads(report.read_text())
    assert rep["format"] == "fader-batch-report" and rep["values"] == {"Smiling": 2.0}
    by = {it["relative"]: it for it in rep["items"]}
    assert sorted(by) == ["aligned.jpg", "empty.png", "gray.png", "notes.jpg", "sub/deeper/aligned2.png",
                          "sub/readme.txt", "sub/wild.JPG"]
    for name in ("aligned.jpg", "sub/wild.JPG", "sub/deeper/aligned2.png"):
        it = by[name]
        assert it["status"] == "ok" and it["faces"] == 1, it
        assert it["output"] == str(out / name) and it["seconds"] > 0
    assert by["empty.png"]["status"] == "skipped" and "empty" in by["empty.png"]["reason"]
    assert by["notes.jpg"]["status"] == "skipped" and "not a recognised image" in by["notes.jpg"]["reason"]
    assert by["gray.png"]["status"] == "skipped" and "no face" in by["gray.png"]["reason"]
    assert by["gray.png"]["faces"] == 0
    assert by["sub/readme.txt"]["status"] == "skipped" and "not an image" in by["sub/readme.txt"]["reason"]
    assert all(it["output"] is None for it in rep["items"] if it["status"] == "skipped")
    assert rep["counts"] == {"ok": 3, "exists": 0, "skipped": 4, "failed": 0, "cancelled": 0}
    assert "gray.png" in err and "3 written" in err


def test_batch_output_matches_edit(tmp_path, mixed, engine):
    """The batched pipeline writes what PhotoEdit (the `edit` command and the window) renders."""
    from core.batch import BatchOptions, run_batch
    from core.image_io import load_image
    from core.photo_edit import PhotoEdit
    values = {"Smiling": 2.0, "Hair": [0.0, 1.0, 0.0]}
    rep = run_batch(mixed, tmp_path / "out", engine, BatchOptions(values=values, format="png"), batch_faces=4)
    assert rep.exit_status == 1
    for rel in ("sub/wild.JPG", "aligned.jpg"):
        doc = PhotoEdit.open(mixed / rel, engine)
        doc.set_values(values)
        want = doc.render()
        got = load_image(tmp_path / "out" / Path(rel).with_suffix(".png"))
        assert got.shape == want.shape
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.001, rel  # batching may round differently
        assert not np.array_equal(got, load_image(mixed / rel))


def test_reads_ahead_are_bounded_by_the_size_of_the_photos_still_being_read(tmp_path, celeba_wild, engine,
                                                                              monkeypatch):
    """QA: the read-ahead's size bound counted only photos already read, so 16 photos of 100 MP
    were read at once (8 of them: 5.2 GB). The photos still being read count by their header's
    size now: with a bound smaller than one photo, one is read at a time, and the outputs are the
    same as with the default bound."""
    import core.batch as batch
    from core.batch import BatchOptions, run_batch
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted(celeba_wild.glob("*.jpg"))[:6]:
        shutil.copy(f, src / f.name)
    values = {"Smiling": 2.0}
    run_batch(src, tmp_path / "free", engine, BatchOptions(values=values, format="png"), readers=3)
    busy, most = [0], [0]
    lock = threading.Lock()
    read = batch._Pipeline._read

    def watched(self, it):   # the pipeline's own read, with how many run at once counted
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            time.sleep(0.05)
            return read(self, it)
        finally:
            with lock:
                busy[0] -= 1
    monkeypatch.setattr(batch._Pipeline, "_read", watched)
    monkeypatch.setattr(batch, "MAX_HELD_BYTES", 1)
    rep = run_batch(src, tmp_path / "bound", engine, BatchOptions(values=values, format="png"), readers=3)
    assert rep.exit_status == 0 and most[0] == 1, most
    from core.image_io import load_image
    names = sorted(p.name for p in (tmp_path / "free").glob("*.png"))
    assert len(names) == 6 and names == sorted(p.name for p in (tmp_path / "bound").glob("*.png"))
    for n in names:   # the same edits (a model batch of other photos may round a level differently)
        diff = np.abs(load_image(tmp_path / "bound" / n).astype(int) - load_image(tmp_path / "free" / n).astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.001, n


def test_photos_with_several_faces(tmp_path, celeba_wild, engine):
    """Faces of several photos share model batches; each lands back on its own photo and face."""
    from core.batch import BatchOptions, run_batch
    from core.image_io import load_image
    from core.photo_edit import PhotoEdit
    two = celeba_wild / "006745.jpg"   # two faces (checked with core.faces)
    if not two.exists():
        pytest.skip("the two-face photo is not in this copy of the data")
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(two, src / "a_two.jpg")
    shutil.copy(sorted(celeba_wild.glob("*.jpg"))[0], src / "b_one.jpg")
    shutil.copy(two, src / "c_two.jpg")
    values = {"Male": 2.0}
    docs = {"two": PhotoEdit.open(src / "a_two.jpg", engine), "one": PhotoEdit.open(src / "b_one.jpg", engine)}
    for face in (None, 1):
        out = tmp_path / f"out{face}"
        rep = run_batch(src, out, engine, BatchOptions(values=values, face=face, format="png"), batch_faces=3)
        # face 1 of a one-face photo does not exist: that photo is skipped
        assert rep.counts()["ok"] == (3 if face is None else 2), rep.problems()
        for name in ("a_two", "b_one", "c_two"):
            doc = docs["one" if name == "b_one" else "two"]
            if face is not None and face >= len(doc.faces):
                continue
            doc.reset()
            doc.set_values(values, face=face)
            want = doc.render()
            got = load_image(out / f"{name}.png")
            diff = np.abs(got.astype(int) - want.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.001, (face, name)
        items = {it.relative: it for it in rep.items}
        assert items["a_two.jpg"].faces == 2
        assert items["a_two.jpg"].reason.startswith("1 of 2" if face == 1 else "2 of 2")


def test_no_values_copies_pixels_and_raw_gives_crops(tmp_path, mixed, engine):
    from core.batch import BatchOptions, run_batch
    from core.image_io import load_image
    rep = run_batch(mixed, tmp_path / "same", engine, BatchOptions(format="png"))
    assert np.array_equal(load_image(tmp_path / "same" / "sub/deeper/aligned2.png"),
                          load_image(mixed / "sub/deeper/aligned2.png"))
    # nothing to edit: the face-less gray.png is converted too
    assert rep.counts()["ok"] == 4
    assert np.array_equal(load_image(tmp_path / "same" / "gray.png"), load_image(mixed / "gray.png"))
    rep = run_batch(mixed, tmp_path / "raw", engine, BatchOptions(values={"Male": 1.0}, raw=True, format="png"))
    assert rep.counts()["ok"] == 3
    assert load_image(tmp_path / "raw" / "sub" / "wild.png").shape == (32, 32, 3)


def test_face_index_beyond_the_photo_is_skipped(tmp_path, mixed, engine):
    from core.batch import BatchOptions, run_batch
    rep = run_batch(mixed, tmp_path / "out", engine, BatchOptions(values={"Male": 1.0}, face=3))
    st = {it.relative: (it.status, it.reason) for it in rep.items}
    assert st["aligned.jpg"][0] == "skipped" and "face 3 does not exist" in st["aligned.jpg"][1]
    assert next(it for it in rep.items if it.relative == "aligned.jpg").faces == 1
    assert rep.counts()["ok"] == 0


def test_recipes(tmp_path, capsys, mixed, tiny_model_path):
    from core.image_io import load_image
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"format": "fader-recipe", "version": 1, "model": "tiny test model",
                                  "values": {"Smiling": 2.0, "Male": 0.5}}))
    base = ["--model", tiny_model_path, "--device", "cpu", "--aligned", "--format", "png"]
    one = tmp_path / "one"
    (one / "x").mkdir(parents=True)
    shutil.copy(mixed / "aligned.jpg", one / "x" / "a.jpg")
    rc, err = cli(capsys, "batch", one, "-o", tmp_path / "o1", "--recipe", recipe, *base)
    assert rc == 0, err
    rc, err = cli(capsys, "batch", one, "-o", tmp_path / "o2", "--set", "Smiling=2", "--set", "male=0.5", *base)
    assert rc == 0, err
    a, b = load_image(tmp_path / "o1/x/a.png"), load_image(tmp_path / "o2/x/a.png")
    assert np.array_equal(a, b)
    # --set overrides the recipe
    rc, err = cli(capsys, "batch", one, "-o", tmp_path / "o3", "--recipe", recipe, "--set", "Smiling=-1", *base)
    assert rc == 0, err
    assert not np.array_equal(load_image(tmp_path / "o3/x/a.png"), a)

    bad = {
        "notjson.json": "{values: 1",
        "list.json": "[1, 2]",
        "format.json": json.dumps({"format": "something", "version": 1, "values": {}}),
        "version.json": json.dumps({"format": "fader-recipe", "version": 99, "values": {}}),
        "attr.json": json.dumps({"format": "fader-recipe", "version": 1, "values": {"Beard": 1}}),
        "value.json": json.dumps({"format": "fader-recipe", "version": 1, "values": {"Smiling": "lots"}}),
        "code.json": json.dumps({"format": "fader-recipe", "version": 1, "values": {"Hair": [1, 0]}}),
        "nan.json": '{"format": "fader-recipe", "version": 1, "values": {"Smiling": NaN}}',
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        rc, err = cli(capsys, "batch", one, "-o", tmp_path / "bad", "--recipe", tmp_path / name, *base)
        assert rc == 2, (name, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and lines[0].startswith("fader-desktop: error:"), (name, err)
        assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").rglob("*.png"))
    rc, err = cli(capsys, "batch", one, "-o", tmp_path / "bad", "--recipe", tmp_path / "missing.json", *base)
    assert rc == 2 and "missing.json" in err and "not found" in err


def test_usage_errors(tmp_path, capsys, mixed, tiny_model_path):
    m = ["--model", tiny_model_path, "--device", "cpu"]
    rc, err = cli(capsys, "batch", tmp_path / "nope", "-o", tmp_path / "o", *m)
    assert rc == 2 and "input folder not found" in err
    before = snapshot(mixed)
    rc, err = cli(capsys, "batch", mixed, "-o", mixed / ".", "--set", "Smiling=1", *m)
    assert rc == 2 and "output folder is the input folder" in err
    rc, err = cli(capsys, "batch", mixed, "-o", tmp_path / "o", "--set", "Beard=1", *m)
    assert rc == 2 and "Beard" in err
    rc, err = cli(capsys, "batch", mixed, "-o", tmp_path / "o", "--quality", "0", *m)
    assert rc == 2 and "quality" in err
    rc, err = cli(capsys, "batch", mixed, "-o", tmp_path / "o", "--report", tmp_path / "no" / "r.json", *m)
    assert rc == 2 and "r.json" in err and not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as e:
        cli(capsys, "batch", mixed, "-o", tmp_path / "o", "--format", "gif", *m)
    assert e.value.code == 2
    # OUT_DIR a parent of IN_DIR: an output would land inside IN_DIR -> refused before any write
    nested = tmp_path / "p" / "photos"
    (nested / "photos").mkdir(parents=True)
    shutil.copy(mixed / "aligned.jpg", nested / "photos" / "a.jpg")
    rc, err = cli(capsys, "batch", nested, "-o", tmp_path / "p", *m)
    assert rc == 2 and "among the input photos" in err
    assert snapshot(mixed) == before


def test_output_folder_inside_input_is_not_walked(tmp_path, mixed, engine):
    from core.batch import BatchOptions, run_batch
    out = mixed / "edited"
    opts = BatchOptions(values={"Smiling": 2.0})
    rep = run_batch(mixed, out, engine, opts)
    assert rep.counts()["ok"] == 3
    rep = run_batch(mixed, out, engine, BatchOptions(values={"Smiling": 2.0}, skip_existing=True))
    assert not any(it.relative.startswith("edited/") for it in rep.items)
    assert rep.counts()["exists"] == 3


def test_colliding_outputs_are_skipped(tmp_path, mixed, engine):
    from core.batch import BatchOptions, run_batch
    shutil.copy(mixed / "aligned.jpg", mixed / "aligned.webp")
    rep = run_batch(mixed, tmp_path / "o", engine, BatchOptions(values={"Male": 1.0}, format="png", aligned=True))
    st = {it.relative: (it.status, it.reason) for it in rep.items}
    assert st["aligned.jpg"][0] == "ok"
    assert st["aligned.webp"][0] == "skipped" and "same output file as aligned.jpg" in st["aligned.webp"][1]


def test_in_a_name_clash_the_photo_with_the_outputs_name_keeps_it(tmp_path, capsys, celeba_aligned, tiny_model_path):
    """b.jpg and b.jpeg both become b.jpg with --format jpg: b.jpg is written as b.jpg and b.jpeg is
    the one skipped (sorted order, which put b.jpeg first, gave b.jpg's name to b.jpeg's edit)."""
    from core.image_io import load_image
    src = tmp_path / "in"
    src.mkdir()
    first, second = sorted(celeba_aligned.glob("*.jpg"))[:2]
    shutil.copy(first, src / "b.jpg")
    shutil.copy(second, src / "b.jpeg")
    shutil.copy(first, src / "a.jpg")
    shutil.copy(second, src / "a.JPG")
    out, report = tmp_path / "out", tmp_path / "report.json"
    rc, err = cli(capsys, "batch", src, "-o", out, "--aligned", "--set", "Smiling=2", "--format", "jpg",
                  "--model", tiny_model_path, "--device", "cpu", "--report", report)
    assert rc == 1
    st = {it["relative"]: it for it in json.loads(report.read_text())["items"]}
    assert st["b.jpeg"]["status"] == "skipped" and "same output file as b.jpg" in st["b.jpeg"]["reason"]
    assert st["a.JPG"]["status"] == "skipped" and st["a.jpg"]["status"] == "ok"
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.jpg"]
    written, mine, other = (load_image(p).astype(float) for p in (out / "b.jpg", first, second))
    assert np.abs(written - mine).mean() < 0.5 * np.abs(written - other).mean()


def test_this_file_system_is_probed_for_case_and_leaves_no_probe(tmp_path):
    """Linux's file systems tell 'A.jpg' from 'a.jpg'; the probe says so, beside a folder that does
    not exist yet too, and writes nothing into the folder."""
    from core.batch import names_ignore_case
    before = os.stat(tmp_path).st_mtime_ns
    assert names_ignore_case(tmp_path / "not" / "yet") is False
    (tmp_path / "Photo.jpg").write_bytes(b"x")
    before = os.stat(tmp_path).st_mtime_ns
    assert names_ignore_case(tmp_path) is False
    assert [p.name for p in tmp_path.iterdir()] == ["Photo.jpg"] and os.stat(tmp_path).st_mtime_ns == before


def test_on_a_file_system_that_ignores_case_two_names_for_one_output_clash(tmp_path, monkeypatch):
    """On macOS or Windows B.jpg and b.jpeg (--format jpg) would both be written as b.jpg, the second
    over the first; planned as two outputs, one photo's edit was lost. The probe's answer is given
    here, as such a file system would give it."""
    import core.batch as batch
    src = tmp_path / "in"
    (src / "Sub").mkdir(parents=True)
    for name in ("B.jpg", "b.jpeg", "Sub/x.png", "c.jpg"):
        (src / name).write_bytes(b"x")
    planned = {it.relative: it for it in batch.plan_batch(src, tmp_path / "out", fmt="jpg")}
    assert all(it.status != "skipped" for it in planned.values())    # this file system: two files
    monkeypatch.setattr(batch, "names_ignore_case", lambda folder: True)
    planned = {it.relative: it for it in batch.plan_batch(src, tmp_path / "out", fmt="jpg")}
    assert planned["B.jpg"].status != "skipped"      # its own name (in any case) keeps it
    assert planned["b.jpeg"].status == "skipped" and "same output file as B.jpg" in planned["b.jpeg"].reason
    assert planned["c.jpg"].status != "skipped" and planned["Sub/x.png"].status != "skipped"


def test_an_output_that_is_an_input_under_another_name_refuses_the_run(tmp_path):
    """An output name that is an input file under another name (a hard link here; on macOS and
    Windows the same name in other case) must never be replaced, even with --overwrite."""
    from core.batch import plan_batch
    from core.errors import FaderError
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "a.jpg").write_bytes(b"photo")
    os.link(src / "a.jpg", out / "a.jpg")
    with pytest.raises(FaderError, match="over or among the input photos"):
        plan_batch(src, out, overwrite=True)
    assert (src / "a.jpg").read_bytes() == b"photo"


def _many(tmp_path, celeba_aligned, n) -> Path:
    d = tmp_path / "many"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    for k, p in enumerate(sorted(celeba_aligned.glob("*.jpg"))[:n]):
        shutil.copy(p, d / ("a" if k % 2 else "b") / p.name)
    return d


def test_cancel_then_resume_with_skip_existing(tmp_path, celeba_aligned, engine):
    from core.batch import BatchOptions, run_batch
    src = _many(tmp_path, celeba_aligned, 12)
    out = tmp_path / "out"
    cancel = threading.Event()
    seen = []

    def progress(done, total, path):
        seen.append(done)
        if done == 3:
            cancel.set()
    opts = BatchOptions(values={"Smiling": 2.0}, aligned=True)
    rep = run_batch(src, out, engine, opts, progress=progress, cancel=cancel, batch_faces=2,
                    report_path=tmp_path / "r1.json")
    c = rep.counts()
    assert rep.cancelled and rep.exit_status == 1
    assert 3 <= c["ok"] < 12 and c["ok"] + c["cancelled"] == 12
    first = outputs(out)
    assert len(first) == c["ok"]                       # only complete outputs, no temp files
    assert json.loads((tmp_path / "r1.json").read_text())["cancelled"] is True
    assert seen == list(range(1, len(seen) + 1))

    # a temp file a killed run could have left next to an output is cleaned up on resume
    missing = sorted(set(f"{p.parent.name}/{p.name}" for p in src.rglob("*.jpg")) - set(first))[0]
    stale = out / Path(missing).parent / f".{Path(missing).name}.0123456789ab.part"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"partial")
    time.sleep(0.05)
    rep = run_batch(src, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True, skip_existing=True))
    c2 = rep.counts()
    assert c2 == {"ok": 12 - c["ok"], "exists": c["ok"], "skipped": 0, "failed": 0, "cancelled": 0}
    assert rep.exit_status == 0
    after = outputs(out)
    assert len(after) == 12 and not stale.exists()
    assert all(after[k] == v for k, v in first.items())    # nothing re-written


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_file_that_appears_at_an_output_during_the_run_is_not_replaced(tmp_path, celeba_aligned, engine,
                                                                          overwrite):
    """QA: outputs were checked once, when the run was planned; a file put at an output's path
    later (another program, a second batch into the same folder) was replaced, and the run said
    "written". Without --overwrite it is kept and the photo fails with the reason."""
    from core.batch import BatchOptions, plan_batch, run_batch
    src = _many(tmp_path, celeba_aligned, 4)
    out = tmp_path / "out"
    items = plan_batch(src, out, overwrite=overwrite)
    late = out / items[0].relative
    late.parent.mkdir(parents=True)
    late.write_bytes(b"precious")     # after the plan, before the run
    rep = run_batch(src, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True, overwrite=overwrite),
                    items=items)
    first = rep.items[0]
    if overwrite:
        assert first.status == "ok" and late.read_bytes() != b"precious"
    else:
        assert late.read_bytes() == b"precious"
        assert first.status == "failed" and "appeared there while this one was being written" in first.reason, first
        assert rep.counts()["ok"] == 3 and rep.exit_status != 0
    assert not [p for p in out.rglob("*.part")]


def _terminal_ctrl_c():
    """SIGINT as a terminal's Ctrl-C sends it, also where pytest runs as a background job of a script
    (which ignores SIGINT for its children)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_writes_report_and_resume(tmp_path, capsys, celeba_wild, tiny_model_path):
    """A real Ctrl-C (SIGINT) on the command: complete files only, a report, then resume."""
    src = tmp_path / "wild"
    src.mkdir()
    n = 8   # stopped after one to three: the in-process resume edits the rest (~0.3 s each)
    for k, p in enumerate(sorted(celeba_wild.glob("*.jpg"))[:n]):
        shutil.copy(p, src / f"{k:02d}.jpg")
    out, report = tmp_path / "out", tmp_path / "report.json"
    args = ["batch", str(src), "-o", str(out), "--set", "Smiling=2", "--model", str(tiny_model_path),
            "--device", "cpu", "--report", str(report)]
    proc = subprocess.Popen([sys.executable, "-m", "fader_desktop", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_terminal_ctrl_c)
    deadline = time.monotonic() + 240
    while not (out.is_dir() and any(out.glob("*.jpg"))) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    rep = json.loads(report.read_text())
    written = outputs(out)
    assert proc.returncode == 130, err
    assert rep["cancelled"] is True and 1 <= rep["counts"]["ok"] < n, rep["counts"]
    assert len(written) == rep["counts"]["ok"]          # only complete outputs, no temp files
    assert "stopping" in err and "Traceback" not in err

    rc, err = cli(capsys, *args, "--skip-existing")     # resume (in-process: same code, no restart cost)
    assert rc == 0, err
    rep2 = json.loads(report.read_text())
    assert rep2["counts"]["exists"] == len(written) and rep2["counts"]["ok"] == n - len(written)
    after = outputs(out)
    assert len(after) == n and all(after[k] == v for k, v in written.items())


def test_a_ctrl_c_ignored_when_the_batch_started_stays_ignored(tmp_path, celeba_wild, tiny_model_path):
    """A batch started as a script's background job (SIGINT ignored) is not stopped by the terminal's
    Ctrl-C, which is for the command in the foreground: it installed its own handler over the
    ignore and stopped, where fader-train keeps the ignore."""
    src = tmp_path / "wild"
    src.mkdir()
    n = 4
    for k, p in enumerate(sorted(celeba_wild.glob("*.jpg"))[:n]):
        shutil.copy(p, src / f"{k:02d}.jpg")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "fader_desktop", "batch", str(src), "-o", str(out),
                             "--set", "Smiling=2", "--model", str(tiny_model_path), "--device", "cpu"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 240
    while not (out.is_dir() and any(out.glob("*.jpg"))) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0 and "stopping" not in err, err
    assert len(outputs(out)) == n


def test_second_ctrl_c_reports_the_photos_it_still_wrote(tmp_path, celeba_aligned, tiny_model_path):
    """Ctrl-C twice: the photos whose writes were in flight are still written (atomically), and
    the report says "ok" for each of them, never "cancelled" beside a file that is there."""
    from core.image_io import load_image, save_image
    src = tmp_path / "big"
    src.mkdir()
    n = 8   # it stops after the second or third: more photos only cost their making
    for k, p in enumerate(sorted(celeba_aligned.glob("*.jpg"))[:n]):
        big = np.repeat(np.repeat(load_image(p), 12, axis=0), 12, axis=1)   # 2136x2616: slow PNG writes
        save_image(src / f"{k:02d}.jpg", big, quality=80)
    out, report = tmp_path / "out", tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "fader_desktop", "batch", str(src), "-o", str(out), "--aligned",
                             "--set", "Smiling=2", "--format", "png", "--model", str(tiny_model_path),
                             "--device", "cpu", "--report", str(report)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_terminal_ctrl_c)
    deadline = time.monotonic() + 240
    while not (out.is_dir() and any(out.glob("*.png"))) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)             # "Ctrl-C again": while the queued writes finish
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130 and "Traceback" not in err, err
    rep = json.loads(report.read_text())
    written = {p.stem for p in out.glob("*.png")}
    assert not list(out.glob(".*part"))
    status = {Path(it["input"]).stem: it["status"] for it in rep["items"]}
    assert 1 <= len(written) < n
    assert {n for n, s in status.items() if s == "ok"} == written, (status, written)


# -- the window's dialog -----------------------------------------------------------------------

def test_batch_dialog_runs_and_summarises(tmp_path, mixed, tiny_model_path):
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QApplication
    from fader_desktop.batch_dialog import BatchDialog
    app = QApplication.instance() or QApplication([])
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0})
    assert "Smiling 2.00" in dlg.current_radio.text() and dlg.current_radio.isChecked()
    dlg.in_edit.setText(str(mixed))
    dlg.out_edit.setText(str(mixed))
    assert dlg.start() is False and "input folder" in dlg.message_box.text()   # refused, nothing runs
    dlg.out_edit.setText(str(tmp_path / "out"))
    dlg.format_combo.setCurrentIndex(1)   # PNG
    assert dlg.start() is True
    deadline = time.monotonic() + 120
    while dlg.is_running() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    assert not dlg.is_running() and dlg.error is None
    rep = dlg.report
    assert rep.counts()["ok"] == 3 and rep.counts()["skipped"] == 4
    assert (tmp_path / "out" / "sub" / "wild.png").is_file()
    head, details = dlg.summary_text(rep)
    # readme.txt is no photo: left alone, not counted among the photos that could not be edited
    assert "3 photos written" in head and "3 could not be edited" in head
    assert "1 file that is not a photo was left alone." in head
    assert "gray.png: skipped — " in details and "no face" in details
    # the tiny random model reads Smiling at about 50 %: every edited face's reading is unsure
    edited = [it for it in rep.items if it.status == "ok" and not it.reason.startswith("0 of")]
    assert edited and f"In {len(edited)} photo{'s' if len(edited) > 1 else ''} the model was unsure" in head
    # numbered as the window's Face list numbers them (QA walk: "face 0" was the window's Face 1)
    assert all(f"{it.relative}: unsure reading — face 1: " in details for it in edited), details
    assert dlg.summary_box is not None and dlg.summary_box.detailedText() == details
    dlg.summary_box.close()

    # again into the same folder: the three outputs are there, so it asks before anything is written
    def run_after(answer: str):
        before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.png")}
        assert dlg.start() is False and dlg.existing_box is not None and dlg.existing_box.isVisible()
        assert "3 files in" in dlg.existing_box.text() and "aligned.png" in dlg.existing_box.text()
        assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.png")} == before
        next(b for b in dlg.existing_box.buttons() if b.text().replace("&", "") == answer).click()
        deadline = time.monotonic() + 120
        while dlg.is_running() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        dlg.summary_box.close()
        dlg.skip_check.setChecked(False)
        return dlg.report.counts()
    assert run_after("Skip those photos")["exists"] == 3
    assert run_after("Replace")["ok"] == 3
    dlg.close()


def _wait_for_run(dlg, app, each=None, limit: float = 180) -> None:
    """Process events until the dialog's batch has ended; `each()` after every round."""
    deadline = time.monotonic() + limit
    while dlg.is_running() and time.monotonic() < deadline:
        app.processEvents()
        if each is not None:
            each()
        time.sleep(0.005)
    app.processEvents()
    assert not dlg.is_running()


def test_the_dialog_opens_with_the_last_runs_folders_format_and_quality(tmp_path, celeba_aligned, tiny_model_path):
    """The window built a new dialog each time: folders, format and quality were empty again on
    every open (and after a restart). They are kept in the window's settings when a run starts; a
    remembered folder that is gone is left out (the field stays empty)."""
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from fader_desktop.batch_dialog import BatchDialog
    from fader_desktop.settings import Settings
    app = QApplication.instance() or QApplication([])
    ini = str(tmp_path / "fader-desktop.ini")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(sorted(celeba_aligned.glob("*.jpg"))[0], src / "a.jpg")
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0},
                      settings=Settings(QSettings(ini, QSettings.Format.IniFormat)))
    assert dlg.in_edit.text() == "" and dlg.out_edit.text() == "" and dlg.quality_spin.value() == 95
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    dlg.aligned_check.setChecked(True)
    dlg.format_combo.setCurrentIndex(3)   # WebP
    dlg.quality_spin.setValue(80)
    assert dlg.start()
    _wait_for_run(dlg, app)
    assert dlg.report.counts()["ok"] == 1
    dlg.summary_box.close()
    dlg.close()

    # the next open, as after a restart (a new QSettings on the same file)
    again = BatchDialog(None, tiny_model_path, "cpu", {}, settings=Settings(QSettings(ini, QSettings.Format.IniFormat)))
    assert again.in_edit.text() == str(src) and again.out_edit.text() == str(out)
    assert again.format_combo.currentText() == "WebP" and again.quality_spin.value() == 80
    again.close()

    shutil.rmtree(src)
    gone = BatchDialog(None, tiny_model_path, "cpu", {}, settings=Settings(QSettings(ini, QSettings.Format.IniFormat)))
    assert gone.in_edit.text() == "" and gone.out_edit.text() == str(out)
    gone.close()


def test_a_long_file_name_keeps_the_progress_dialog_on_screen(tmp_path, celeba_aligned, tiny_model_path):
    """The progress dialog widened itself to a camera's or a download's long file name: at 800x600
    it was 1112 px wide, Cancel off the screen. The name is elided; the dialog keeps its width."""
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QApplication
    from fader_desktop.batch_dialog import BatchDialog
    app = QApplication.instance() or QApplication([])
    src = tmp_path / "in"
    src.mkdir()
    names = [f"{k}_" + "a photo with a really long descriptive name from the camera app " * 2 + ".jpg"
             for k in range(12)]
    for name, p in zip(names, sorted(celeba_aligned.glob("*.jpg"))):
        shutil.copy(p, src / name)
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0})
    dlg.show()
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(tmp_path / "out"))
    dlg.aligned_check.setChecked(True)
    assert dlg.start()
    widths, labels = [], []

    def sample() -> None:
        pd = dlg._progress
        if pd is not None and pd.value() >= 1:
            widths.append(max(pd.width(), pd.sizeHint().width()))
            labels.append(pd.labelText())
    _wait_for_run(dlg, app, sample)
    assert widths, "no progress was shown"
    assert max(widths) <= 560, max(widths)
    assert all(" of 12: " in t and "_a photo with a really" in t and "…" in t for t in labels), labels
    assert dlg.report.counts()["ok"] == 12
    dlg.summary_box.close()
    dlg.close()


def test_the_summary_says_stopped_only_when_photos_were_left(tmp_path, aligned3, engine):
    """A Cancel pressed while the last photo was being written stopped nothing, yet the summary
    said "Stopped: 0 not processed. Run again ... to resume"."""
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QApplication
    from core.batch import BatchOptions, run_batch
    from fader_desktop.batch_dialog import BatchDialog
    QApplication.instance() or QApplication([])
    cancel = threading.Event()
    rep = run_batch(aligned3, tmp_path / "out", engine, BatchOptions(values={"Smiling": 2.0}, aligned=True),
                    progress=lambda done, total, path: done == total and cancel.set(), cancel=cancel)
    assert rep.cancelled and rep.counts()["ok"] == 3 and rep.counts()["cancelled"] == 0
    dlg = BatchDialog(None, "unused.fader", "cpu", {"Smiling": 2.0})
    head, _ = dlg.summary_text(rep)
    assert head.startswith("3 photos written") and "Stopped" not in head and "resume" not in head, head


def test_the_summary_names_what_an_output_could_not_keep(tmp_path, celeba_aligned, engine):
    """`fader-desktop batch` notes a 16-bit photo written with 8 bits or a transparency a JPEG
    drops; the dialog's summary said nothing of it."""
    pytest.importorskip("PySide6")
    from PIL import Image
    from PySide6.QtWidgets import QApplication
    from core.batch import BatchOptions, run_batch
    from fader_desktop.batch_dialog import BatchDialog
    QApplication.instance() or QApplication([])
    src = tmp_path / "in"
    src.mkdir()
    faces = sorted(celeba_aligned.glob("*.jpg"))
    rgba = np.array(Image.open(faces[0]).convert("RGBA"))
    rgba[..., 3] = 200
    Image.fromarray(rgba).save(src / "clear.png")
    Image.fromarray(np.array(Image.open(faces[1]).convert("L")).astype(np.uint16) * 257).save(src / "deep.png")
    shutil.copy(faces[2], src / "plain.jpg")
    rep = run_batch(src, tmp_path / "out", engine, BatchOptions(values={"Smiling": 2.0}, aligned=True, format="jpg"))
    assert rep.counts()["ok"] == 3
    head, details = BatchDialog(None, "unused.fader", "cpu", {"Smiling": 2.0}).summary_text(rep)
    assert "2 outputs could not keep everything of their photo" in head, head
    assert "clear.png: not all kept — transparency dropped" in details, details
    assert "deep.png: not all kept — more than 8 bits per channel, written with 8" in details, details
    assert "plain.jpg: not all kept" not in details


def test_cancel_stops_at_the_photo_being_written(tmp_path, celeba_aligned, engine):
    """Cancel waited for every write already queued: read and edited ahead of the (slow) writer,
    up to all 16 photos were written after it, 18-30 s of "Stopping…" in the dialog. Now the photo
    being written finishes and the rest are left for a resume. (8 photos: the resume writes all
    but one or two, ~0.8 s each here; without the fix all 8 are written.)"""
    from core.batch import BatchOptions, run_batch
    from core.image_io import load_image, save_image
    src = tmp_path / "big"
    src.mkdir()
    n = 8
    for k, p in enumerate(sorted(celeba_aligned.glob("*.jpg"))[:n]):
        save_image(src / f"{k:02d}.jpg", np.repeat(np.repeat(load_image(p), 8, axis=0), 8, axis=1), quality=80)
    out, cancel = tmp_path / "out", threading.Event()

    def progress(done, total, path):
        if done >= 1:
            cancel.set()       # as the dialog's Cancel on the first photo it reports
    rep = run_batch(src, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True, format="png"),
                    progress=progress, cancel=cancel, readers=2)
    c = rep.counts()
    assert rep.cancelled and c["ok"] <= 3 and c["ok"] + c["cancelled"] == n, c
    assert {p.stem for p in out.glob("*.png")} == {Path(it.relative).stem for it in rep.items if it.status == "ok"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]    # no temporary file left
    # the rest is resumed, the photos already written kept
    before = outputs(out)
    rep = run_batch(src, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True, format="png",
                                                   skip_existing=True))
    assert rep.counts()["ok"] == c["cancelled"] and rep.counts()["exists"] == c["ok"]
    assert {k: v for k, v in outputs(out).items() if k in before} == before


def test_the_eta_of_a_resumed_run_counts_the_photos_still_to_edit(tmp_path, celeba_aligned, tiny_model_path):
    """Resumed with "Skip photos whose output already exists", the outputs already there are
    reported at once, and the ETA took them for edited photos: 40 there and 4 to edit said
    "about 0 s left" for the seconds the 4 took."""
    pytest.importorskip("PySide6")
    import re
    from PySide6.QtWidgets import QApplication
    from core.image_io import load_image, save_image
    from fader_desktop.batch_dialog import BatchDialog
    app = QApplication.instance() or QApplication([])
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    faces = sorted(celeba_aligned.glob("*.jpg"))
    for k in range(40):
        shutil.copy(faces[k % 8], src / f"a{k:02d}.jpg")
        (out / f"a{k:02d}.png").write_bytes(b"an earlier run's output")
    for k in range(4):   # slow to write as PNG
        save_image(src / f"b{k}.jpg", np.repeat(np.repeat(load_image(faces[k]), 7, axis=0), 7, axis=1), quality=80)
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0})
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    dlg.aligned_check.setChecked(True)
    dlg.skip_check.setChecked(True)
    dlg.format_combo.setCurrentIndex(1)   # PNG
    assert dlg.start()
    seen = []

    def sample() -> None:
        pd = dlg._progress
        if pd is not None and (not seen or seen[-1][1] != pd.labelText()):
            seen.append((time.monotonic(), pd.labelText()))
    _wait_for_run(dlg, app, sample)
    end = time.monotonic()
    assert dlg.report.counts()["exists"] == 40 and dlg.report.counts()["ok"] == 4
    etas = [(t, float(m[1]) * (60 if m[2] == "min" else 1), label) for t, label in seen
            if (m := re.search(r"about (\d+) (s|min) left", label))]
    assert etas, seen
    t, eta, label = etas[0]
    assert label.startswith("1 of 4") or label.startswith("2 of 4"), seen   # the bar counts the 4 to edit
    assert eta >= 0.3 * (end - t), (label, round(end - t, 2))
    dlg.summary_box.close()


# -- hostile and careless use (issue 18) --------------------------------------------------------

def test_full_disk_fails_the_photos_and_a_resume_writes_them(tmp_path, aligned3, engine, small_disk):
    """On a full disk the JPEGs were written truncated, marked ok, and kept by --skip-existing."""
    from conftest import fill_disk
    from core.batch import BatchOptions, run_batch
    from core.image_io import load_image
    out = small_disk / "out"
    out.mkdir()
    fill_disk(small_disk, 8 << 10)
    rep = run_batch(aligned3, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True))
    assert rep.counts()["failed"] == 3 and rep.exit_status == 1
    assert all(it.reason == "cannot save image: no space left on device" for it in rep.items), rep.problems()
    assert list(out.iterdir()) == []                       # no truncated photo, no temporary file
    (small_disk / "filler.bin").unlink()
    rep = run_batch(aligned3, out, engine, BatchOptions(values={"Smiling": 2.0}, aligned=True, skip_existing=True))
    assert rep.counts()["ok"] == 3
    for p in aligned3.iterdir():
        assert load_image(out / p.name).shape == load_image(p).shape


def test_report_never_replaces_a_photo_or_a_foreign_file(tmp_path, capsys, aligned3, tiny_model_path):
    m = ["--model", tiny_model_path, "--device", "cpu", "--aligned", "--set", "Smiling=1"]
    out = tmp_path / "out"
    name = sorted(p.name for p in aligned3.iterdir())[1]
    rc, err = cli(capsys, "batch", aligned3, "-o", out, "--report", out / name, *m)
    assert rc == 2 and f"the report would overwrite the output photo of {name}" in err
    assert not out.exists()
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes\n")
    rc, err = cli(capsys, "batch", aligned3, "-o", out, "--report", mine, *m)
    assert rc == 2 and "exists and is not a batch report" in err and len(err.strip().splitlines()) == 1
    assert mine.read_text() == "my notes\n" and not out.exists()
    # the output folder itself, not there yet: refused before the work (it failed at the end)
    rc, err = cli(capsys, "batch", aligned3, "-o", out, "--report", out, *m)
    assert rc == 2 and f"{out}: cannot write the report: it is a folder" in err and not out.exists()
    # into the output folder under its own name (created with it), then replacing its own report
    for again in ([], ["--overwrite"]):
        rc, err = cli(capsys, "batch", aligned3, "-o", out, "--report", out / "report.json", *m, *again)
        assert rc == 0, err
        assert json.loads((out / "report.json").read_text())["counts"]["ok"] == 3


def test_a_file_already_in_the_output_folder_is_never_replaced_unasked(tmp_path, capsys, aligned3, tiny_model_path):
    """An output name that is already taken (the user's own file, or an earlier run's output)
    stops the run before anything is written, naming it; --skip-existing keeps it, --overwrite
    replaces it, and the two together are a usage error."""
    from core.image_io import load_image
    m = ["--model", tiny_model_path, "--device", "cpu", "--aligned", "--set", "Smiling=1"]
    out = tmp_path / "out"
    out.mkdir()
    name = sorted(p.name for p in aligned3.iterdir())[0]
    theirs = out / name
    theirs.write_bytes(b"the user's own file")
    rc, err = cli(capsys, "batch", aligned3, "-o", out, *m)
    assert rc == 2 and str(theirs) in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert theirs.read_bytes() == b"the user's own file" and sorted(out.iterdir()) == [theirs]
    rc, err = cli(capsys, "batch", aligned3, "-o", out, "--skip-existing", *m)
    assert rc == 0, err
    assert theirs.read_bytes() == b"the user's own file" and len(list(out.iterdir())) == 3
    rc, err = cli(capsys, "batch", aligned3, "-o", out, "--overwrite", *m)
    assert rc == 0, err
    assert load_image(theirs).shape[:2] == load_image(aligned3 / name).shape[:2]
    with pytest.raises(SystemExit) as e:   # argparse's usage error
        cli(capsys, "batch", aligned3, "-o", out, "--overwrite", "--skip-existing", *m)
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_edits_from_unsure_readings_are_named_in_the_report_and_the_summary(tmp_path, capsys, aligned3,
                                                                           tiny_model_path):
    """The tiny random model reads every face at about 50 %: each edited face's reading is named
    in the report (what it read, how sure) and the summary says to check those photos."""
    out = tmp_path / "out"
    rc, err = cli(capsys, "batch", aligned3, "-o", out, "--report", tmp_path / "r.json", "--aligned",
                  "--set", "Male=1.5", "--model", tiny_model_path, "--device", "cpu")
    assert rc == 0, err
    items = json.loads((tmp_path / "r.json").read_text())["items"]
    assert all(len(it["unsure"]) == 1 and it["unsure"][0].startswith("face 0: Male read as ") for it in items)
    assert all("% sure)" in it["unsure"][0] and "unsure reading: " in it["reason"] for it in items)
    assert "in 3 photos the model was unsure of a reading" in err
    rc, err = cli(capsys, "batch", aligned3, "-o", out, "--overwrite", "--aligned", "--model", tiny_model_path,
                  "--device", "cpu")                     # nothing edited: no reading matters
    assert rc == 0 and "unsure" not in err


def test_unwritable_report_or_output_is_found_before_any_work(tmp_path, capsys, aligned3, tiny_model_path,
                                                              read_only_dir):
    m = ["--model", tiny_model_path, "--device", "cpu", "--aligned", "--set", "Smiling=1"]
    out = tmp_path / "out"
    rc, err = cli(capsys, "batch", aligned3, "-o", out, "--report", read_only_dir / "r.json", *m)
    assert rc == 2 and str(read_only_dir / "r.json") in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or list(out.iterdir()) == []   # found before a photo was written
    rc, err = cli(capsys, "batch", aligned3, "-o", read_only_dir / "out", *m)
    assert rc == 2 and err.strip().splitlines() == [
        f"fader-desktop: error: {read_only_dir / 'out'}: cannot create the output folder: "
        + ("read-only file system" if os.path.ismount(read_only_dir) else "permission denied")]
    (tmp_path / "afile").write_text("x")
    rc, err = cli(capsys, "batch", aligned3, "-o", tmp_path / "afile" / "out", *m)
    assert rc == 2 and err.strip().splitlines() == [
        f"fader-desktop: error: {tmp_path / 'afile' / 'out'}: cannot create the output folder: "
        f"{tmp_path / 'afile'} is a file, not a folder"]


def test_symlink_loops_in_the_input_are_skipped(tmp_path, capsys, aligned3, tiny_model_path):
    (aligned3 / "loop.jpg").symlink_to("loop.jpg")
    (aligned3 / "sub").mkdir()
    (aligned3 / "sub" / "a").symlink_to("b")
    (aligned3 / "sub" / "b").symlink_to("a")
    (aligned3 / "sub" / "up").symlink_to("..")               # a folder link: not followed
    rc, err = cli(capsys, "batch", aligned3, "-o", tmp_path / "out", "--aligned", "--set", "Smiling=1",
                  "--model", tiny_model_path, "--device", "cpu", "--report", tmp_path / "r.json")
    assert rc == 1 and "Traceback" not in err
    by = {it["relative"]: it for it in json.loads((tmp_path / "r.json").read_text())["items"]}
    assert by["loop.jpg"]["status"] == "skipped" and by["loop.jpg"]["reason"] == "cannot read: a symlink loop"
    assert by["sub/a"]["reason"] == "cannot read: a symlink loop"
    assert sum(it["status"] == "ok" for it in by.values()) == 3


def test_empty_input_folder_is_an_error(tmp_path, capsys, tiny_model_path):
    (tmp_path / "empty").mkdir()
    rc, err = cli(capsys, "batch", tmp_path / "empty", "-o", tmp_path / "out", "--model", tiny_model_path)
    assert rc == 2 and err.strip().splitlines()[0].startswith(
        f"fader-desktop: error: {tmp_path / 'empty'}: no images found; looked for .avif, .bmp, .gif, .heic, .heif, .jpeg, .jpg")
    (tmp_path / "empty" / "notes.txt").write_text("x")
    rc, err = cli(capsys, "batch", tmp_path / "empty", "-o", tmp_path / "out", "--model", tiny_model_path)
    assert rc == 2 and "no images found (1 other file)" in err
    assert not (tmp_path / "out").exists()


def test_unedited_photos_are_copied_byte_for_byte(tmp_path, capsys, aligned3, tiny_model_path):
    """"copied unchanged" used to re-encode every JPEG."""
    rc, err = cli(capsys, "batch", aligned3, "-o", tmp_path / "out", "--aligned", "--model", tiny_model_path,
                  "--device", "cpu", "--report", tmp_path / "r.json")
    assert rc == 0 and "copied unchanged (byte for byte)" in err
    for p in aligned3.iterdir():
        assert (tmp_path / "out" / p.name).read_bytes() == p.read_bytes()
    assert all(it["reason"] == "0 of 1 face changed; copied unchanged"
               for it in json.loads((tmp_path / "r.json").read_text())["items"])
    rc, err = cli(capsys, "batch", aligned3, "-o", tmp_path / "png", "--aligned", "--format", "png",
                  "--model", tiny_model_path, "--device", "cpu")
    assert rc == 0
    from core.image_io import load_image
    for p in aligned3.iterdir():
        assert np.array_equal(load_image(tmp_path / "png" / p.with_suffix(".png").name), load_image(p))


def test_another_runs_temporary_files_are_left_alone(tmp_path, aligned3, engine):
    """Two batches into one folder: the second one's start removed the first one's temporary
    files, and the first then failed with "file not found". Only dead writers' files go."""
    from core.batch import BatchOptions, run_batch
    out = tmp_path / "out"
    out.mkdir()
    name = sorted(p.name for p in aligned3.iterdir())[0]
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the other run
    try:
        theirs = out / f".{name}.{first.pid}-0123456789ab.part"
        theirs.write_bytes(b"being written")
        rep = run_batch(aligned3, out, engine, BatchOptions(values={"Smiling": 1.0}, aligned=True))
        assert rep.counts()["ok"] == 3
        assert theirs.read_bytes() == b"being written"
    finally:
        first.kill()
        first.wait()
    rep = run_batch(aligned3, out, engine, BatchOptions(values={"Smiling": 1.0}, aligned=True, overwrite=True))
    assert rep.counts()["ok"] == 3
    assert not theirs.exists()  # its writer is gone: a leftover, cleaned up


def test_absurd_value_in_a_recipe_names_the_recipe(tmp_path, capsys, aligned3, tiny_model_path):
    r = tmp_path / "r.json"
    r.write_text(json.dumps({"format": "fader-recipe", "version": 1, "values": {"Smiling": 1e300}}))
    rc, err = cli(capsys, "batch", aligned3, "-o", tmp_path / "out", "--recipe", r, "--model", tiny_model_path)
    assert rc == 2 and err.strip().splitlines() == [
        f"fader-desktop: error: {r}: value 1e+300 for 'Smiling' is outside -10 .. 11 (the slider range -1 .. 2 "
        "widened 3 times its width each way; further out the face turns into a flat patch)"]


def test_a_phones_colour_profile_travels_to_every_output(tmp_path, capsys, portrait_path, tiny_model_path):
    """Display P3 photos (every recent phone) keep their profile in edited outputs, in another
    format, and in the model's raw crops; a profile-less photo gets none."""
    from PIL import Image

    from conftest import display_p3_icc
    p3 = display_p3_icc()
    d = tmp_path / "in"
    d.mkdir()
    with Image.open(portrait_path) as im:
        im.save(d / "phone.jpg", quality=95, icc_profile=p3)
        im.save(d / "plain.jpg", quality=95)
    for out, extra in (("jpg", []), ("png", ["--format", "png"]), ("raw", ["--raw"])):
        rc, err = cli(capsys, "batch", d, "-o", tmp_path / out, "--set", "Smiling=2", "--model",
                      tiny_model_path, "--device", "cpu", *extra)
        assert rc == 0, err
        written = {p.stem: p for p in (tmp_path / out).iterdir()}
        with Image.open(written["phone"]) as im:
            assert im.info.get("icc_profile") == p3, out
        with Image.open(written["plain"]) as im:
            assert not im.info.get("icc_profile"), out


def test_heic_photos_come_out_as_jpegs(tmp_path, capsys, portrait_path, tiny_model_path):
    """A folder from a phone: HEIC photos are inputs, and their outputs are JPEGs (or --format)."""
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(PHONE_HEIC, d / "IMG_0001.HEIC")
    shutil.copy(portrait_path, d / "IMG_0002.jpg")
    rc, err = cli(capsys, "batch", d, "-o", tmp_path / "out", "--set", "Smiling=2", "--model",
                  tiny_model_path, "--device", "cpu")
    assert rc == 0, err
    assert sorted(outputs(tmp_path / "out")) == ["IMG_0001.jpg", "IMG_0002.jpg"]
    from core.image_io import image_format, load_image
    assert image_format(tmp_path / "out" / "IMG_0001.jpg") == "JPEG"
    assert load_image(tmp_path / "out" / "IMG_0001.jpg").shape == (512, 384, 3)
    rc, err = cli(capsys, "batch", d, "-o", tmp_path / "png", "--format", "png", "--model",
                  tiny_model_path, "--device", "cpu")
    assert rc == 0, err
    assert sorted(outputs(tmp_path / "png")) == ["IMG_0001.png", "IMG_0002.png"]


def test_hostile_recipes_are_one_line_errors_and_a_bom_is_accepted(tmp_path, capsys, aligned3, tiny_model_path):
    """A 400-digit value (OverflowError) and 100k nested lists (RecursionError) were tracebacks; a
    UTF-8 BOM (Windows editors) made a valid recipe invalid; version -1 was accepted."""
    base = ["--model", tiny_model_path, "--device", "cpu", "--aligned"]
    head = '{"format": "fader-recipe", "version": %s, "values": {"Smiling": %s}}'
    bad = {"digits.json": head % (1, "9" * 400), "deep.json": "[" * 100_000 + "]" * 100_000,
           "deepvalue.json": head % (1, "[" * 5000 + "]" * 5000), "negative.json": head % (-1, 1)}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        rc, err = cli(capsys, "batch", aligned3, "-o", tmp_path / "out", "--recipe", tmp_path / name, *base)
        lines = err.splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"fader-desktop: error: {tmp_path / name}: "), err
        assert len(lines[0]) < 300, err
    assert not (tmp_path / "out").exists()
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + (head % (1, 2)).encode())
    rc, err = cli(capsys, "batch", aligned3, "-o", tmp_path / "out", "--recipe", tmp_path / "bom.json", *base)
    assert rc == 0, err


def test_photos_already_in_an_output_folder_inside_the_input_are_never_replaced(tmp_path, capsys, aligned3,
                                                                              tiny_model_path):
    """`batch IN -o IN/sub --overwrite` replaced the user's own photos in IN/sub, which were also
    silently left out of the inputs."""
    base = ["--set", "Smiling=2", "--aligned", "--model", tiny_model_path, "--device", "cpu"]
    sub = aligned3 / "sub"
    sub.mkdir()
    mine = sorted(aligned3.glob("*.jpg"))[0]
    shutil.copy(mine, sub / "holiday.jpg")
    before = snapshot(aligned3)
    for flags in ([], ["--overwrite"], ["--skip-existing"]):
        rc, err = cli(capsys, "batch", aligned3, "-o", sub, *base, *flags)
        assert rc == 2 and err.splitlines() == [
            f"fader-desktop: error: {sub / 'holiday.jpg'}: 1 photo in the output folder {sub} is not an output of "
            f"this batch; it lies inside {aligned3}, so it would be left out of the inputs: move it, or choose "
            "an output folder outside the input folder"], err
    assert snapshot(aligned3) == before
    (sub / "holiday.jpg").unlink()
    rc, err = cli(capsys, "batch", aligned3, "-o", sub, *base)
    assert rc == 0, err
    rc, err = cli(capsys, "batch", aligned3, "-o", sub, *base)   # its own earlier outputs: the usual rule
    assert rc == 2 and "(it lies inside" in err and "--overwrite replaces them" in err, err
    rc, err = cli(capsys, "batch", aligned3, "-o", sub, *base, "--overwrite")
    assert rc == 0, err


def test_grey_and_transparent_photos_keep_that_and_losses_are_noted(tmp_path, capsys, aligned3, tiny_model_path):
    """A grey photo came out RGB with a tinted face; transparency was flattened without a word."""
    from PIL import Image
    d = tmp_path / "in"
    d.mkdir()
    src = sorted(aligned3.glob("*.jpg"))
    Image.open(src[0]).convert("L").save(d / "grey.png")
    rgba = Image.open(src[1]).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    rgba.save(d / "cut.png")
    base = ["--set", "Smiling=2", "--aligned", "--model", tiny_model_path, "--device", "cpu"]
    rc, err = cli(capsys, "batch", d, "-o", tmp_path / "png", *base)
    assert rc == 0 and "could not keep" not in err, err
    with Image.open(tmp_path / "png" / "grey.png") as g, Image.open(tmp_path / "png" / "cut.png") as c:
        assert g.mode == "L" and c.mode == "RGBA"
        assert np.array_equal(np.asarray(c)[..., 3], np.asarray(rgba)[..., 3])
    rc, err = cli(capsys, "batch", d, "-o", tmp_path / "jpg", "--format", "jpg", *base)
    assert rc == 0
    assert [l for l in err.splitlines() if "could not keep" in l] == [
        "fader-desktop: note: 1 output could not keep everything of its photo: cut.png: transparency "
        "dropped (JPEG has none: transparent parts are white)"]
    with Image.open(tmp_path / "jpg" / "grey.jpg") as g:
        assert g.mode == "L"


def test_gif_photos_are_batch_inputs_exported_as_png(tmp_path, capsys, aligned3, tiny_model_path):
    """`edit` read a GIF but `batch` left it out as "not a photo"; it is now edited into a PNG
    (a GIF's 256 colours cannot hold the edited face), transparency kept."""
    from PIL import Image
    d = tmp_path / "in"
    d.mkdir()
    face = Image.open(sorted(aligned3.glob("*.jpg"))[0]).convert("RGB")
    pal = face.convert("P", palette=Image.ADAPTIVE, colors=255)
    pal.save(d / "face.gif", transparency=int(np.asarray(pal)[0, 0]))
    rc, err = cli(capsys, "batch", d, "-o", tmp_path / "out", "--set", "Smiling=2", "--aligned",
                  "--model", tiny_model_path, "--device", "cpu")
    assert rc == 0 and "1 written" in err, err
    assert [f.name for f in (tmp_path / "out").iterdir()] == ["face.png"]
    src = Image.open(d / "face.gif").convert("RGBA")
    with Image.open(tmp_path / "out" / "face.png") as out:
        assert out.mode == "RGBA" and out.size == src.size
        a, b = np.asarray(out).astype(int), np.asarray(src).astype(int)
    assert np.array_equal(a[..., 3], b[..., 3]) and (a[..., 3] == 0).any()
    assert np.abs(a[..., :3] - b[..., :3]).max() > 20          # the face was edited
