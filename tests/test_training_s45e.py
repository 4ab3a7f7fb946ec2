"""A resumed run keeps the classifier it was started with: --classifier given again is said to be
ignored, as the other options a resumed run keeps its own of are (it was passed over silently)."""
from __future__ import annotations

from test_training_run import _noise_folder


def test_classifier_given_on_resume_is_said_to_be_ignored(tmp_path, capsys, one_torch_thread):
    from training import cli
    _noise_folder(tmp_path, 0)
    out = tmp_path / "run"
    common = ["--data", str(tmp_path / "Bangs"), "--img-size", "32", "--init-fm", "8", "--max-fm", "16",
              "--n-layers", "3", "--hid-dim", "16", "--classifier-steps", "2", "--eval-every", "4",
              "--out", str(out), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--val-size", "4"]
    assert cli.main(common + ["--steps", "4"]) == 0
    capsys.readouterr()
    other = out / "model.fader"   # a model file with a classifier of the run's attributes and size
    assert cli.main(common + ["--steps", "6", "--resume", "--classifier", str(other)]) == 0
    err = capsys.readouterr().err
    assert "a resumed run keeps its own recipe; ignored: --classifier" in err, err[-1500:]
    assert str(other) in err
