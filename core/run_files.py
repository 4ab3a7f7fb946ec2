"""The names of what `fader-train` leaves in a run folder, known to the app too: a checkpoint
given where a model is expected is answered with the way to the run's model (no torch import
here: the trainer's command line reads these before it needs torch)."""
import os
import shlex
import sys

CHECKPOINT_NAME = "checkpoint_last.pt"   # the run's last state, a pickle only the trainer loads
RUN_MARKER = "fader-run.json"            # written when a run starts: this folder is a run's


def train_program(full: bool = False) -> str:
    """The trainer's command as the user can type it: `fader-train` from a pip install; in the
    packaged app its executable as started (`fader-desktop` where install.sh linked it) and `train`,
    which has no `fader-train` to paste. `full`: the executable's path as started (a line written
    into a run folder must run from any folder)."""
    if not getattr(sys, "frozen", False):
        return "fader-train"
    exe = sys.argv[0] if full else os.path.basename(sys.argv[0])
    return f"{shlex.quote(exe or 'FaderDesktop')} train"
