"""The names of what `fader-train` leaves in a run folder, known to the app too: a checkpoint
given where a model is expected is answered with the way to the run's model (no torch import
here: the trainer's command line reads these before it needs torch)."""
import os
import shlex
import shutil
import sys

CHECKPOINT_NAME = "checkpoint_last.pt"   # the run's last state, a pickle only the trainer loads
RUN_MARKER = "fader-run.json"            # written when a run starts: this folder is a run's


def program_name(full: bool = False):
    """The packaged app's executable as the user started it (`FaderDesktop`, or the `fader-desktop`
    link install.sh makes; `full`: its path as started), which names the app and its trainer in
    every message; None outside the packaged app (a pip install's `fader-desktop`, `fader-train`)."""
    if not getattr(sys, "frozen", False):
        return None
    return (sys.argv[0] if full else os.path.basename(sys.argv[0])) or "FaderDesktop"


def _command_on_path(started: str):
    """The name of a command on PATH that runs the executable `started` (a path): install.sh's
    `fader-desktop` link, or the executable's own name; None where none does."""
    real = os.path.realpath(started)
    for name in dict.fromkeys(("fader-desktop", os.path.basename(started))):
        found = shutil.which(name)
        if found and os.path.realpath(found) == real:
            return name
    return None


def app_command(full: bool = False, typed: bool = False):
    """The packaged app's executable as the user can type it, None outside the packaged app. The
    window starts its trainer by the executable's real path (sys.executable, not the
    `fader-desktop` link the window was started through): an executable started by its path is
    named by the command on PATH that runs it where there is one. `full`: its path as started (a
    line written into a run folder must run from any folder); `typed`: a line to paste, the path as
    started where no command on PATH runs it."""
    exe = program_name(full)
    if exe is None:
        return None
    started = sys.argv[0]
    if not full and os.path.dirname(started):
        exe = _command_on_path(started) or (started if typed else exe)
    return shlex.quote(exe)


def train_program(full: bool = False, typed: bool = False) -> str:
    """The trainer's command as the user can type it: `fader-train` from a pip install; in the
    packaged app its executable (app_command) and `train`, which has no `fader-train` to paste."""
    exe = app_command(full, typed)
    return "fader-train" if exe is None else f"{exe} train"
