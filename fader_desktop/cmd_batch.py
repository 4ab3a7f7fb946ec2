"""`fader-desktop batch`: apply one edit to every image of a folder tree (see docs/batch.md)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


EXAMPLES = """examples:
  fader-desktop batch photos/ -o edited/ --set Smiling=1
  fader-desktop batch photos/ -o edited/ --recipe my_edit.json --format png --report edited/report.json
  fader-desktop batch photos/ -o edited/ --set Smiling=1 --skip-existing   (goes on after an interrupted run)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from core.batch import OUTPUT_FORMATS
    from fader_desktop.cli import add_model_arguments
    p.add_argument("in_dir", metavar="IN_DIR", help="folder of photos (searched recursively)")
    p.add_argument("-o", "--output", dest="out_dir", metavar="OUT_DIR", required=True,
                   help="output folder (the sub-folder layout is kept; never IN_DIR)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="attribute value: a number (slider position) or a value label; repeatable; "
                        "overrides the recipe")
    p.add_argument("--recipe", metavar="R.json", help="recipe saved by the window (Save edit as recipe…)")
    p.add_argument("--face", type=int, metavar="N",
                   help="edit only face N (0 = the first in reading order: top row, leftmost) of each photo; default: every face (with --raw, which "
                        "writes one face's crop: the main face, the first unless another is at least twice its size)")
    p.add_argument("--aligned", action="store_true", help="the inputs are CelebA-style aligned crops")
    p.add_argument("--find-more-faces", action="store_true",
                   help="make every face search on each photo, whatever the others found: finds people lying "
                        "down beside others and small faces in big photos (several times slower; the window's "
                        "View ▸ Find more faces)")
    p.add_argument("--raw", action="store_true",
                   help="write the model's own output at model resolution: one face's crop (--face, default the "
                        "main face)")
    # the formats core.batch writes, so that the option follows it; any case, as file suffixes are
    formats = tuple(OUTPUT_FORMATS)
    p.add_argument("--format", type=str.lower, choices=formats, metavar="|".join(formats),
                   help="output format, any case (default: the input's)")
    p.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1..100 (default 95)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist (resume)")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace outputs that already exist (without this or --skip-existing, the run "
                               "refuses to start when any exists)")
    p.add_argument("--report", metavar="REPORT.json", help="write a JSON report of every input")
    p.add_argument("--readers", type=int, metavar="K", help=argparse.SUPPRESS)  # tuning: reader threads
    add_model_arguments(p)


def passed_over_note(items: list, n_todo: int) -> str:
    """The line said before the bar: the files the run passes over (not on the bar) and why."""
    from core.attributes import counted
    from core.batch import passed_over_reasons
    return (f"passing over {counted(len(items), 'file')} ({', '.join(passed_over_reasons(items))}); "
            f"{counted(n_todo, 'photo')} to edit")


def run(args) -> int:
    from tqdm import tqdm

    from core.batch import OUTPUT_FORMATS, BatchOptions, plan_batch, run_batch
    from core.image_io import LOSSY_FORMATS, SAVE_FORMATS
    from fader_desktop.cli import PROG, build_values, load_engine
    opts = BatchOptions(aligned=args.aligned, raw=args.raw, face=args.face, format=args.format,
                        quality=args.quality, skip_existing=args.skip_existing, overwrite=args.overwrite,
                        find_more_faces=args.find_more_faces)
    opts.validate()
    # Check the folders before loading the model: usage errors should be quick.
    items = plan_batch(args.in_dir, args.out_dir, opts.format, opts.skip_existing, opts.overwrite)
    engine = load_engine(args)
    opts.values = build_values(engine, args.recipe, args.set)
    plan_note = None
    if not opts.values and not opts.raw:
        if not opts.format:
            how = "copied unchanged (byte for byte)"
            # HEIC and AVIF photos (read, not written) become JPEGs, GIFs PNGs: not copies
            converted = sorted({(it.input.suffix.lower(), it.output.suffix.lower()) for it in items
                                if it.output is not None and it.input.suffix.lower() != it.output.suffix.lower()})
            if converted:
                how += "; " + ", ".join(f"{a} photos converted to {SAVE_FORMATS[b]}"
                                        + (" (re-compressed)" if SAVE_FORMATS[b] in LOSSY_FORMATS else "")
                                        for a, b in converted)
        elif SAVE_FORMATS[OUTPUT_FORMATS[opts.format]] in LOSSY_FORMATS:
            how = (f"written unchanged as {opts.format.upper()} (a copy of the file where it already is one; "
                   f"else re-encoded, which {opts.format.upper()} does with a small loss)")
        else:
            how = f"written unchanged as {opts.format.upper()} (same pixels; a copy of the file where it already is one)"
        plan_note = f"{PROG}: note: no --set or recipe values: the photos are {how}"

    cancel = threading.Event()
    # The bar counts only the photos to edit. run_batch reports the files it passes over (outputs
    # already there on a resume, files that are not images) all at once before the first photo:
    # counted on the bar, they made a resume of 900 of 1,000 photos start at 900/1000 with its
    # rate (and so its ETA) about ten times too high.
    n_todo = sum(1 for it in items if it.status == "pending")
    planned = {str(it.input): it for it in items}
    # no bar when there is nothing to edit (it would read "0img [00:00, ?img/s]"): the summary says it
    bar = tqdm(total=n_todo, unit="img", dynamic_ncols=True, file=sys.stderr, disable=None if n_todo else True)
    passed_over = []

    def progress(done, total, path):
        nonlocal plan_note
        if plan_note:
            # run_batch calls this only once its own checks (output and report folders) passed: a
            # note about what the run does must not come before the error that stops it
            bar.write(plan_note, file=sys.stderr)
            plan_note = None
        # the files passed over come first; `total` leaves out an earlier report that run_batch
        # found among the inputs (never a photo to edit)
        n_passed = total - n_todo
        if done <= n_passed:
            passed_over.append(planned.get(path))
            if done == n_passed:
                if not bar.disable:
                    bar.write(f"{PROG}: {passed_over_note(passed_over, n_todo)}", file=sys.stderr)
                bar.reset(total=n_todo)   # the rate is measured from the first photo edited on
            return
        bar.update(done - n_passed - bar.n)

    stopped_by = []

    def on_stop(signum, frame):
        # First Ctrl-C (or SIGTERM, as `kill`, `timeout` and service managers send): stop after the
        # photos in flight and write the report; a second one aborts (the write in flight still
        # finishes, and the report says so).
        stopped_by.append(signum)
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        if signum == signal.SIGINT:
            note = "stopping after the photos in progress (Ctrl-C again to abort now)"
        else:
            note = "terminated: stopping after the photos in progress (a second signal aborts now)"
        bar.write(f"{PROG}: {note}", file=sys.stderr)

    # a Ctrl-C ignored when the command started stays ignored (a script's background job: the
    # terminal's Ctrl-C is for the command in the foreground), as fader-train keeps it
    stop_signals = ([signal.SIGINT] if signal.getsignal(signal.SIGINT) != signal.SIG_IGN else []) + \
        ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    old = ({s: signal.signal(s, on_stop) for s in stop_signals}
           if threading.current_thread() is threading.main_thread() else {})
    try:
        report = run_batch(args.in_dir, args.out_dir, engine, opts, progress=progress, cancel=cancel,
                           report_path=args.report, readers=args.readers, items=items)
    except KeyboardInterrupt as e:
        if not stopped_by:
            raise
        # Aborted by a second signal, the report written. Leave without the interpreter's teardown:
        # after a stop inside torch's threads it aborted now and then ("terminate called without
        # an active exception", SIGABRT) instead of exiting 130; and a second SIGTERM exits 143.
        bar.close()
        aborted = getattr(e, "batch_report", None)
        try:
            if aborted is not None:
                # what was written and how to go on, as after the first Ctrl-C: it said only "aborted"
                say_summary(aborted, args, opts, head="aborted: ")
            else:   # stopped before the run could count anything; what was written is complete
                sys.stderr.write(f"{PROG}: aborted; the same command with --skip-existing goes on where this run "
                                 "stopped\n")
        except KeyboardInterrupt:
            pass   # a third one: leave now
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(128 + int(stopped_by[-1]))
    finally:
        bar.close()
        for s, handler in old.items():
            signal.signal(s, handler)
    say_summary(report, args, opts)
    if report.cancelled:
        # as a shell reports a command stopped by that signal: 130 for Ctrl-C, 143 for SIGTERM
        return 128 + int(stopped_by[0]) if stopped_by else 130
    return report.exit_status


def say_summary(report, args, opts, head: str = "") -> None:
    """The summary on stderr: the counts (after `head`), how to go on, the problems and the notes."""
    from core.attributes import counted
    from core.edit_session import UNSURE_READING
    from core.errors import printable
    from fader_desktop.cli import PROG
    c = report.counts()
    others = report.other_files()
    # the report's count of skipped files, with the files that are not images among them named: it
    # said "5 skipped" where the report's counts said 6
    n_other = len(others)
    skipped = f"{c['skipped']} skipped" + (f" ({n_other} not {'an image' if n_other == 1 else 'images'})"
                                          if n_other else "")
    # outputs passed over whose earlier report (of this batch, at --report) was not there to say
    # how they were written: their unsure readings are not known, nor counted below
    # (said after the counts, which keep their words: scripts and people read them as before)
    unchecked = len(report.not_checked_again())
    summary = (f"{head}{c['ok']} written, {c['exists']} already there, {skipped}, "
               f"{c['failed']} failed" + (f", {c['cancelled']} not processed" if c["cancelled"] else "")
               + f" in {report.seconds:.1f} s"
               + ("" if not unchecked else "; those already there were not checked again" if unchecked == c["exists"]
                  else f"; {unchecked} of those already there {'was' if unchecked == 1 else 'were'} not checked "
                  "again"))
    sys.stderr.write(f"{PROG}: {summary}\n")
    if c["cancelled"] and not report.error:
        sys.stderr.write(f"{PROG}: the same command with --skip-existing goes on where this run stopped\n")
    report_written = bool(args.report) and report.report_error is None   # never "see" a report that is not there
    # the photos not processed are counted in the summary line; the list names the others
    problems = [p for p in report.problems() if p[1] != "cancelled"]
    for rel, status, reason in problems[:20]:
        sys.stderr.write(f"  {status}: {printable(rel)}: {printable(reason)}\n")
    if len(problems) > 20:
        sys.stderr.write(f"  … {len(problems) - 20} more"
                         + (f" (see {printable(args.report)})" if report_written else "") + "\n")
    if report.earlier_values is not None and report.counts()["exists"]:
        # --skip-existing after a run with other values: the folder now holds two different edits
        was = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k}={v}"
                        for k, v in report.earlier_values.items()) or "no values"
        sys.stderr.write(f"{PROG}: note: the {counted(report.counts()['exists'], 'output')} already there "
                         f"{'was' if report.counts()['exists'] == 1 else 'were'} written with other values "
                         f"({printable(was)}, says the earlier report {printable(args.report)}); --overwrite "
                         "writes every photo with these\n")
    unsure = [it for it in report.items if it.unsure]
    if unsure:
        # one photo is named with its readings; of several, one is named as an example
        one = len(unsure) == 1
        sys.stderr.write(f"{PROG}: note: in {counted(len(unsure), 'photo')} the model was unsure of a reading the "
                         f"edit starts from (under {UNSURE_READING:.0%}), so the edit may go the wrong way there; "
                         f"check {'it' if one else 'them'} "
                         f"(the report lists {'it' if one else 'them'}" + ("" if args.report else "; --report writes it")
                         + ("): " if one else "), e.g. ")
                         + f"{printable(unsure[0].relative)}: "
                         + ("; ".join(unsure[0].unsure) if one else unsure[0].unsure[0]) + "\n")
    if opts.raw and opts.face is None:
        several = [it for it in report.items if it.status == "ok" and (it.faces or 0) > 1]
        if several:
            sys.stderr.write(f"{PROG}: note: {counted(len(several), 'photo')} "
                             f"{'has several faces (' if len(several) == 1 else 'have several faces (e.g. '}"
                             f"{printable(several[0].relative)} has {several[0].faces}); --raw wrote "
                             f"{'its main face' if len(several) == 1 else 'the main face of each'} (the "
                             "first, unless another is at least twice its size); --face N writes another\n")
    harder = report.search_harder()
    if harder:
        sys.stderr.write(f"{PROG}: note: in {counted(len(harder), 'photo')} no face was found "
                         f"({'' if len(harder) == 1 else 'e.g. '}{printable(harder[0].relative)}); "
                         "--find-more-faces searches each photo again, turned, tilted and finer (slower), "
                         "and with --skip-existing only those\n")
    lost = [it for it in report.items if it.lost]
    if lost:
        sys.stderr.write(f"{PROG}: note: {counted(len(lost), 'output')} could not keep everything of "
                         f"{'its photo: ' if len(lost) == 1 else 'their photo, e.g. '}"
                         f"{printable(lost[0].relative)}: {'; '.join(lost[0].lost)}"
                         + (f" (see {printable(args.report)})" if report_written else "") + "\n")
    if others:
        # a camera's .xmp/.AAE sidecars and notes beside the photos: named once, not as problems
        sys.stderr.write(f"{PROG}: note: {counted(len(others), 'file')} that "
                         f"{'is not an image was left alone: ' if len(others) == 1 else 'are not images were left alone, e.g. '}"
                         f"{printable(others[0].relative)}\n")
    if report.error:
        # the run stopped (the output folder disappeared): said last but for the report's error
        sys.stderr.write(f"{PROG}: error: {printable(report.error)}\n")
    if report.report_error:
        sys.stderr.write(f"{PROG}: error: {printable(report.report_error)}\n")
