"""Mixed precision by hardware (training/precision.py): "auto" never picks an emulated bf16, whose
steps ran 13-17x slower than fp32 on an AVX2-only CPU, and forcing it there is reported."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

import training.precision as precision
from core.attributes import Attribute
from core.networks import ArchConfig
from training.augment import add_fit_options
from training.trainer import TrainConfig, Trainer


@pytest.mark.parametrize("native", [False, True])
def test_fits_use_bf16_on_the_cpu_only_where_it_is_native(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.fit_uses_bf16("auto") == native
    assert precision.fit_uses_bf16("bf16") and not precision.fit_uses_bf16("off")  # forced stays forced
    # fader-train's auto is fp32 on every CPU, as before; forcing works anywhere
    assert precision.amp_dtype("auto", torch.device("cpu")) is None
    assert precision.amp_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    warning = precision.slow_amp_warning("bf16", torch.device("cpu"))
    assert (warning is None) == native
    if not native:
        assert "slower" in warning
    assert precision.slow_amp_warning("auto", torch.device("cpu")) is None


def test_this_cpus_probe_answers():
    assert isinstance(precision.cpu_has_native_bf16(), bool)


def _trainer(tmp_path, amp, log):
    attrs = [Attribute("Smiling", ("no", "yes"))]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (8, 1))
    arch = ArchConfig(img_size=32, init_fm=8, max_fm=32, n_layers=3, hid_dim=32, n_attr=2)
    cfg = TrainConfig(steps=1, batch_size=4, amp=amp)
    return Trainer(arch, attrs, images, labels, np.arange(6), np.arange(6, 8), cfg, tmp_path, "cpu",
                   progress=False, log=log)


def test_trainer_reports_a_forced_emulated_half_precision(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    said = []
    t = _trainer(tmp_path / "a", "bf16", said.append)
    assert t.amp_dtype == torch.bfloat16
    assert any(s.startswith("warning: --amp bf16") for s in said), said
    said.clear()
    t = _trainer(tmp_path / "b", "auto", said.append)
    assert t.amp_dtype is None and not any("warning" in s for s in said), said


def test_judge_and_classifier_options():
    p = argparse.ArgumentParser()
    add_fit_options(p, batch_size=64)
    assert p.parse_args([]).amp == "auto"
    assert p.parse_args(["--no-amp"]).amp == "off"
    assert p.parse_args(["--amp", "bf16"]).amp == "bf16"
    with pytest.raises(SystemExit):
        p.parse_args(["--amp", "fp8"])


@pytest.mark.parametrize("command", ["judge", "classifier"])
def test_commands_report_a_forced_emulated_bf16(tmp_path, monkeypatch, capsys, command):
    """Before any work (here: a model file that does not exist / an empty data folder ends it)."""
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    threads = torch.get_num_threads()
    try:
        if command == "judge":
            from training.judge import main
            rc = main(["--data", str(tmp_path), "--amp", "bf16", "--out", str(tmp_path / "j.safetensors")])
        else:
            from training.classifier import main
            rc = main(["--model", str(tmp_path / "missing.fader"), "--data", str(tmp_path), "--amp", "bf16",
                       "--out", str(tmp_path / "new.fader")])
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert rc == 2
    assert "warning: --amp bf16 on a CPU without native bf16" in err, err
