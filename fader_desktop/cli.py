"""`fader-desktop` entry point: the window, or a Qt-free sub-command (edit, info, batch, sweep, …).

Qt is imported only when the window is started, so the sub-commands run on machines without a
display and start quickly.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import sys
import threading
from pathlib import Path


def program_name() -> str:
    """The name the messages and usage give this program: `fader-desktop` (the console script); in
    the packaged app the executable's name as the user started it, as its trainer names itself
    (core.run_files.program_name)."""
    from core.run_files import program_name as started
    return started() or "fader-desktop"


PROG = program_name()


def _named(text: str | None) -> str | None:
    """A command's examples or option help, written for `fader-desktop`, with the program named
    as PROG (the command lines they show: an example's line, a `quoted` command)."""
    if not text or PROG == "fader-desktop":
        return text
    return re.sub(r"(?m)(^\s+|`)fader-desktop(?=\s)", lambda m: m.group(1) + PROG, text)

# what edit and sweep say where the ordinary face search found no face (or not the face asked for)
FIND_MORE_HINT = "--find-more-faces searches again, turned, tilted and finer (slower)"


@contextlib.contextmanager
def hint_find_more_faces(args):
    """A NoFaceError raised inside names --find-more-faces (FIND_MORE_HINT), unless the command was
    given it or --aligned (which searches no face)."""
    from core.errors import NoFaceError
    try:
        yield
    except NoFaceError as e:
        if args.find_more_faces or args.aligned:
            raise
        raise NoFaceError(f"{e}; {FIND_MORE_HINT}") from None

# sub-command -> module providing add_arguments(parser) and run(args) -> exit status
SUBCOMMANDS = {
    "edit": ("fader_desktop.cmd_edit", "edit a photo's attributes and write the result"),
    "info": ("fader_desktop.cmd_info", "show a model's metadata"),
    "import-reference": ("fader_desktop.cmd_import_reference",
                         "convert a reference-implementation checkpoint (.pth) to .fader"),
    "batch": ("fader_desktop.cmd_batch", "edit every image of a folder"),
    "sweep": ("fader_desktop.cmd_sweep", "interpolation strip / animation of one attribute"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as a single line and exit status 2."""

    def error(self, message):
        from core.errors import printable
        sys.stderr.write(f"{self.prog}: error: {printable(message)}\n")
        raise SystemExit(2)


DEVICES_CHOICES = ("auto", "cpu", "cuda")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="M", help="model file (.fader); default: the embedded model")
    p.add_argument("--device", metavar="D", default="auto", help="auto | cpu | cuda (default auto)")


def add_overwrite_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output if it already exists (without this, an existing output is refused)")


def check_output(out: Path, inputs, overwrite: bool, model=None) -> None:
    """Refuse an output that is an input or the model file read (`model`: the --model given, None
    for the embedded one), or (without --overwrite) any file already there: it may be the user's
    own (batch's rule for its outputs)."""
    from core.atomic_write import same_file
    from core.errors import FaderError
    from core.model_file import default_model_path
    if any(same_file(i, out) for i in inputs):
        which = "the input photo" if len(inputs) == 1 else "an input photo"
        raise FaderError(f"{out}: refusing to overwrite {which}; choose another output path")
    # --overwrite is for the user's old outputs, never for the model being read
    if same_file(out, Path(model) if model else default_model_path()):
        raise FaderError(f"{out}: refusing to overwrite the model file; choose another output path")
    # a link whose target is gone is an entry the user made all the same: not ours to replace
    if (out.is_symlink() or out.exists()) and not out.is_dir() and not overwrite:
        raise FaderError(f"{out}: output file already exists; --overwrite replaces it")


def load_engine(args):
    """Build the inference engine from --model/--device (raises FaderError on bad input)."""
    from core.engine import Engine
    from core.model_file import default_model_path, load_model
    from core.errors import ModelFileError
    path = Path(args.model) if getattr(args, "model", None) else default_model_path()
    if not getattr(args, "model", None) and not path.exists():
        raise ModelFileError(f"{path}: the embedded default model is missing from this installation")
    return Engine(load_model(path), device=getattr(args, "device", "auto") or "auto")


def parse_sets(engine, sets, option: str = "--set") -> dict:
    """`--set NAME=VALUE` list -> values dict (VALUE: a number or one of the attribute's labels);
    `option` "--own": faces' own values (pure values only; see core.attributes.parse_own)."""
    from core.attributes import parse_own, parse_value, split_setting, unknown_attribute
    from core.errors import FaderError
    attrs = {a.name.lower(): a for a in engine.attributes}
    values = {}
    for s in sets or []:
        name, val = split_setting(s, engine.attributes)
        if val is None:
            raise FaderError(f"{option} expects NAME=VALUE, got {s!r}")
        a = attrs.get(name.strip().lower())
        if a is None:
            raise FaderError(unknown_attribute(name, engine.attributes))
        values[a.name] = (parse_own if option == "--own" else parse_value)(a, val)
    return values


def _gui_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Fader Desktop: edit face attributes in photos with sliders. "
                      "Sub-commands: " + ", ".join(SUBCOMMANDS) + f" (run `{PROG} COMMAND --help`).")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="photos to open")
    # the window remembers its model and device, unlike the sub-commands
    p.add_argument("--model", metavar="M", help="model file (.fader); default: the model used last, else the embedded one")
    p.add_argument("--device", metavar="D", choices=DEVICES_CHOICES,
                   help="auto | cpu | cuda, kept as the window's choice; default: the one chosen last, else auto")
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, a service manager) raised where the command is, as Ctrl-C is:
    its outputs' temporary files are removed on the way out. Killed outright, `edit` and `sweep`
    left `.NAME.PID-….part` files (and an ffmpeg child) behind."""


def _on_sigterm(signum, frame):
    raise _Terminated


def _stop_on_sigterm():
    """Install the SIGTERM handler (main thread only); the handler it replaces, or None."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


def build_values(engine, recipe: str | None, sets: list) -> dict:
    """Recipe values, then the --set overrides (raises FaderError with a clear message)."""
    from core.recipe import load_recipe
    values = load_recipe(recipe, engine.attributes) if recipe else {}
    values.update(parse_sets(engine, sets))
    return values


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        # a file or model name the console cannot encode (a redirected Windows console writes
        # cp1252) is shown with escapes: a UnicodeEncodeError would fail a command after its work
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass   # not a text stream that can change (a test's capture, a closed stream)
    from core.errors import FaderError, printable
    if argv and argv[0] in SUBCOMMANDS:
        command = argv[0]
        module = importlib.import_module(SUBCOMMANDS[command][0])
        # examples under the options (kept as written): none of the commands' --help had one
        p = OneLineParser(prog=f"{PROG} {command}", description=SUBCOMMANDS[command][1],
                          epilog=_named(getattr(module, "EXAMPLES", None)),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        for action in p._actions:   # noqa: SLF001 (argparse keeps the options' help nowhere else)
            action.help = _named(action.help)
        args = p.parse_args(argv[1:])
        old = _stop_on_sigterm()
        try:
            code = int(module.run(args) or 0)
            sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's exit
            return code
        except FaderError as e:
            sys.stderr.write(f"{PROG}: error: {printable(e)}\n")
            return 2
        except _Terminated:
            sys.stderr.write(f"{PROG}: terminated\n")
            return 143
        except KeyboardInterrupt:
            sys.stderr.write(f"{PROG}: interrupted\n")
            return 130
        except BrokenPipeError:
            # the reader went away (`fader-desktop info | head`): stop quietly, as other tools do;
            # stdout goes to devnull so that flushing it at exit cannot raise again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        except OSError as e:
            # a path the system refuses before any of our checks could name it (a name over 255
            # bytes: "does it exist?" itself fails): one line, not a traceback
            from core.errors import os_reason
            where = f"{e.filename}: " if e.filename else ""
            sys.stderr.write(f"{PROG}: error: {printable(where + os_reason(e))}\n")
            return 2
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
    if argv and not argv[0].startswith("-") and not Path(argv[0]).suffix and not os.path.lexists(argv[0]):
        # a mistyped sub-command would otherwise start the window with a "photo" that does not exist
        import difflib
        near = difflib.get_close_matches(argv[0].lower(), SUBCOMMANDS, n=1)
        if near:
            sys.stderr.write(f"{PROG}: error: unknown command {printable(repr(argv[0]))} (did you mean {near[0]!r}?)\n")
            return 2
    args = _gui_parser().parse_args(argv)
    from fader_desktop.platform_check import window_problem
    problem = window_problem()  # before Qt, which would abort with a core dump
    if problem:
        sys.stderr.write(f"{PROG}: error: {printable(problem)}\n")
        return 2
    from fader_desktop.app import run_app  # imports Qt
    return run_app(images=args.images, model=args.model, device=args.device, program=PROG)


if __name__ == "__main__":
    sys.exit(main())
