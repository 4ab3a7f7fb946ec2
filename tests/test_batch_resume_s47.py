"""`fader-desktop batch` resumed and aborted, as the QA walk met it: a resume (--skip-existing) lost
the unsure readings of the photos the stopped run had written ("in 4 photos the model was unsure"
became a count of the new photos only, their report entries `unsure: []`), and a second Ctrl-C said
only "aborted", with no count of what was written nor how to go on.

The tiny random model reads every face at about 50 %: every photo edited has an unsure reading."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cli(capsys, *args):
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def unsure_count(err: str) -> int:
    """N of the summary's 'in N photos the model was unsure' (0 where it says nothing of it)."""
    m = re.search(r"in (\d+) photos? the model was unsure", err)
    return int(m.group(1)) if m else 0


@pytest.fixture
def batch(tmp_path, aligned3, tiny_model_path):
    """(arguments of a batch over three aligned photos, its output folder, its report)."""
    out, report = tmp_path / "out", tmp_path / "r.json"
    return (["batch", aligned3, "-o", out, "--aligned", "--set", "Smiling=2", "--model", tiny_model_path,
             "--device", "cpu", "--report", report], out, report)


def test_a_resume_keeps_the_unsure_readings_of_the_photos_written_before(capsys, batch):
    args, out, report = batch
    rc, err = cli(capsys, *args)
    assert rc == 0 and unsure_count(err) == 3, err
    first = {it["relative"]: it for it in json.loads(report.read_text())["items"]}
    assert all(it["unsure"] for it in first.values()), first
    # as a run stopped before its last photo leaves it: that output is not there
    last = sorted(first)[-1]
    Path(first[last]["output"]).unlink()

    rc, err = cli(capsys, *args, "--skip-existing")
    assert rc == 0, err
    # the two photos written before are counted with the one written now, as the first run counted them
    assert unsure_count(err) == 3, err
    assert "1 written, 2 already there, 0 skipped" in err and "not checked again" not in err, err
    assert "written with other values" not in err, err
    rep = json.loads(report.read_text())
    assert rep["counts"]["exists"] == 2 and rep["counts"]["ok"] == 1
    for it in rep["items"]:
        if it["status"] == "exists":
            assert it["unsure"] == first[it["relative"]]["unsure"] and it["notes_carried"] is True, it
            assert it["reason"].startswith("output exists (--skip-existing)"), it
            assert first[it["relative"]]["reason"] in it["reason"], it     # "1 of 1 face changed; unsure reading: …"
        else:
            assert it["relative"] == last and it["unsure"] and it["notes_carried"] is False, it

    # and again, every output there: the notes go on from report to report
    rc, err = cli(capsys, *args, "--skip-existing")
    assert rc == 0 and unsure_count(err) == 3 and "0 written, 3 already there, 0 skipped" in err, err
    rep = json.loads(report.read_text())
    assert all(it["notes_carried"] and it["unsure"] == first[it["relative"]]["unsure"] for it in rep["items"]), rep
    assert sum(it["reason"].count("output exists") for it in rep["items"]) == 3   # not said twice in one


def test_a_resume_without_the_batchs_report_says_the_photos_passed_over_were_not_checked(capsys, batch):
    args, out, report = batch
    rc, err = cli(capsys, *args)
    assert rc == 0, err
    outputs = sorted(out.glob("*.jpg"))
    outputs[-1].unlink()

    # made with other values: the readings it lists are not this edit's
    other = [a if a != "Smiling=2" else "Smiling=-1" for a in args]
    rc, err = cli(capsys, *other, "--skip-existing")
    assert rc == 0, err
    assert re.search(r"1 written, 2 already there, 0 skipped, 0 failed in [\d.]+ s; those already there were not "
                     r"checked again\n", err), err
    assert unsure_count(err) == 1, err
    # QA walk: the folder now mixes two edits, which nothing said
    assert (f"note: the 2 outputs already there were written with other values (Smiling=2, says the earlier "
            f"report {report}); --overwrite writes every photo with these") in err, err
    rep = json.loads(report.read_text())
    assert [it["unsure"] for it in rep["items"] if it["status"] == "exists"] == [[], []]

    # no earlier report at all (none asked for): the same words
    outputs[-1].unlink()
    rc, err = cli(capsys, *args[:-2], "--skip-existing")
    assert rc == 0, err
    assert "s; those already there were not checked again\n" in err, err


def test_an_output_replaced_since_the_report_is_not_taken_for_the_one_it_describes(capsys, batch):
    args, out, report = batch
    rc, err = cli(capsys, *args)
    assert rc == 0, err
    outputs = sorted(out.glob("*.jpg"))
    outputs[-1].unlink()
    # the user put another file in its place after the report was written
    shutil.copy(outputs[0], outputs[1])
    later = report.stat().st_mtime + 5
    os.utime(outputs[1], (later, later))

    rc, err = cli(capsys, *args, "--skip-existing")
    assert rc == 0, err
    assert "1 written, 2 already there, 0 skipped" in err and "s; 1 of those already there was not checked again" in err, err
    assert unsure_count(err) == 2, err
    rep = {it["relative"]: it for it in json.loads(report.read_text())["items"]}
    assert rep[outputs[1].name]["unsure"] == [] and rep[outputs[1].name]["notes_carried"] is False
    assert rep[outputs[0].name]["unsure"] and rep[outputs[0].name]["notes_carried"] is True


def test_a_second_ctrl_c_still_says_what_was_written_and_how_to_go_on(tmp_path, portrait_path, tiny_model_path):
    from test_batch_cli_review import batch_under_way
    # as a terminal's Ctrl-C, also where pytest runs as a script's background job
    proc, out, report = batch_under_way(tmp_path, portrait_path, tiny_model_path,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    rep = json.loads(report.read_text())
    c = rep["counts"]
    written = sorted(out.glob("*.png"))
    assert not list(out.glob(".*part")) and len(written) == c["ok"] and c["cancelled"] > 0, (c, written)
    assert f"aborted: {c['ok']} written, 0 already there, 0 skipped, 0 failed, {c['cancelled']} not processed" in err, err
    assert "the same command with --skip-existing goes on where this run stopped" in err, err
