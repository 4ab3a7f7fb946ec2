"""The model file's refusals name the commands as the packaged app's user types them."""
import sys

import pytest
import torch

from conftest import packaged_executable
from core.errors import ModelFileError
from core.model_file import load_model


@pytest.fixture
def packaged(monkeypatch):
    """Run as the packaged app started from its folder (sys.frozen set by PyInstaller)."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", ["/opt/Fader Desktop/FaderDesktop"])


def _refusal(path) -> str:
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    return str(e.value)


def test_a_pickled_network_in_the_packaged_app_names_its_own_converter(tmp_path, packaged):
    """The packaged app has no `fader-desktop` command: its refusal of a whole-network pickle said
    "converted with `fader-desktop import-reference`", which its user cannot type."""
    network = tmp_path / "network.pth"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), network)
    err = _refusal(network)
    assert "converted with `FaderDesktop import-reference`" in err and "fader-desktop" not in err


def test_a_state_dict_in_the_packaged_app_names_its_converter_and_trainer(tmp_path, packaged):
    state = tmp_path / "weights.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state)
    err = _refusal(state)
    assert "`FaderDesktop import-reference` converts whole-model saves" in err
    assert "FaderDesktop train makes .fader models" in err
    assert "fader-desktop" not in err and "fader-train" not in err


def test_outside_the_packaged_app_the_pip_commands_are_named(tmp_path):
    state = tmp_path / "weights.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state)
    err = _refusal(state)
    assert "`fader-desktop import-reference` converts" in err and "fader-train makes .fader models" in err


def test_started_by_its_path_with_the_link_on_path_both_commands_are_the_links(tmp_path, monkeypatch):
    """The window starts its trainer by the executable's real path: the trainer's name followed
    the `fader-desktop` link on PATH, the converter's the file's own name, and one message named
    "`FaderDesktop import-reference` … and fader-desktop train"."""
    exe, bin_dir = packaged_executable(tmp_path, monkeypatch)
    (bin_dir / "fader-desktop").symlink_to(exe)
    state = tmp_path / "weights.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state)
    err = _refusal(state)
    assert "`fader-desktop import-reference` converts" in err and "fader-desktop train makes .fader models" in err
    assert "FaderDesktop" not in err.replace(str(tmp_path), "")
