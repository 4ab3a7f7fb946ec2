"""The window's job API (fader_desktop/workers.py JobRunner) on a real worker thread."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from core.errors import FaderError  # noqa: E402
from fader_desktop.workers import JobRunner  # noqa: E402


@pytest.fixture
def runner(qapp):
    r = JobRunner("test-jobs")
    yield r
    r.shutdown()


def test_jobs_run_in_order_off_the_gui_thread_and_answer_on_it(runner):
    ran, done = [], []
    gui = threading.current_thread()
    for i in range(5):
        runner.submit(lambda i=i: ran.append((i, threading.current_thread() is gui)) or i * i,
                      on_done=lambda r: done.append((r, threading.current_thread() is gui)))
    assert runner.wait_idle(30)
    assert ran == [(i, False) for i in range(5)]
    assert done == [(i * i, True) for i in range(5)]
    assert runner.is_idle()


def test_a_coalescing_job_replaces_the_queued_one_and_others_keep_their_place(runner):
    ran, shown = [], []
    with runner.hold():
        runner.submit(lambda: ran.append("open"))
        for i in range(11):
            runner.submit(lambda i=i: ran.append(f"render {i}"), on_done=lambda r, i=i: shown.append(i),
                          coalesce="render")
            if i == 9:
                runner.submit(lambda: ran.append("export"))
        assert not ran and not runner.is_idle()
    assert runner.wait_idle(30)
    # each render took the place of the queued one (latest wins), ahead of the export queued
    # after it; the replaced ones never ran and never answered
    assert ran == ["open", "render 10", "export"] and shown == [10]


def test_errors_reach_on_error_or_the_default_handler_in_one_line(runner):
    got, default = [], []
    runner.default_error = default.append

    def bad_input():
        raise FaderError("photo.jpg: not a recognised image")

    def bug():
        raise KeyError("oops")
    runner.submit(bad_input, on_done=lambda r: got.append("done"), on_error=got.append)
    runner.submit(bug)
    runner.submit(lambda: 7, on_done=got.append)   # the thread survives a failed job
    assert runner.wait_idle(30)
    assert got == ["photo.jpg: not a recognised image", 7]
    assert default == ["unexpected error: KeyError: 'oops'"]


def test_busy_is_reported_around_a_busy_job_with_its_latest_text(runner):
    seen = []
    runner.busyChanged.connect(lambda busy, text: seen.append((busy, text)))
    runner.submit(lambda: runner.set_busy_text("Finding faces…"), busy_text="Opening a.jpg…")
    runner.submit(lambda: None)   # a job without a busy text: no busy state
    assert runner.wait_idle(30)
    assert seen == [(True, "Opening a.jpg…"), (True, "Finding faces…"), (False, "")]


def test_busy_from_submission_until_the_last_busy_job_is_delivered(runner):
    """A job that replaces the photo or the model counts as busy while it waits its turn (QA:
    Export stayed enabled behind a render, then failed on the replaced photo), and busy ends
    only after the last such job, not after the first of two."""
    seen = []
    runner.busyChanged.connect(lambda busy, text: seen.append((busy, text)))
    with runner.hold():
        runner.submit(lambda: None, busy_text="Opening a.jpg…")
        assert runner.is_busy() and seen == [(True, "Opening a.jpg…")]
        runner.submit(lambda: None, busy_text="Loading model m.fader…")
    assert runner.wait_idle(30) and not runner.is_busy()
    assert seen[-1] == (False, "") and [b for b, _t in seen].count(False) == 1
    assert (True, "Loading model m.fader…") in seen


def test_shutdown_drops_queued_jobs_and_a_later_submit_starts_again(runner):
    ran = []
    with runner.hold():
        runner.submit(lambda: ran.append("queued"))
        stopper = threading.Thread(target=runner.shutdown)
        stopper.start()
        while runner._queue:   # shutdown has emptied the queue: the hold is the only job left
            threading.Event().wait(0.01)
    stopper.join(30)
    runner.submit(lambda: ran.append("after"))
    assert runner.wait_idle(30)
    assert ran == ["after"]
