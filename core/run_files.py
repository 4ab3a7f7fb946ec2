"""The names of what `fader-train` leaves in a run folder, known to the app too: a checkpoint
given where a model is expected is answered with the way to the run's model (no torch import
here: the trainer's command line reads these before it needs torch)."""

CHECKPOINT_NAME = "checkpoint_last.pt"   # the run's last state, a pickle only the trainer loads
RUN_MARKER = "fader-run.json"            # written when a run starts: this folder is a run's
