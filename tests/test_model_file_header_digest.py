"""Checksums beyond the weights (session 43). The SHA-256 of a model's tensor data left its header
unchecked: a changed character in the metadata (an attribute's name, a slider's range, the
alignment template) or in the tensor table loaded without a word. And the discriminator files
that `fader-train --continue` reads carried no checksum at all. Both now carry the checksums a
model file does, and a file that no longer matches them is refused as damaged."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from torch import nn

from core.errors import FaderError, ModelFileError
from core.model_file import default_model_path, load_model
from conftest import make_tiny_model
from test_model_file_integrity import _header

HEADER_KEY = "fader_header_sha256"


def _changed(path: Path, old: bytes, new: bytes, out: Path) -> Path:
    """A copy of `path` with the first `old` in its header replaced by `new` (same length: the
    JSON and the tensors' places stay valid)."""
    raw = bytearray(path.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    at = raw.index(old, 8, 8 + n)
    raw[at:at + len(old)] = new
    out.write_bytes(bytes(raw))
    return out


def test_a_character_changed_in_a_models_header_is_refused_as_damaged(tmp_path):
    good = make_tiny_model(tmp_path / "good.fader")
    assert load_model(good).attributes[0].name == "Smiling"
    renamed = _changed(good, b"Smiling", b"Smilinh", tmp_path / "renamed.fader")
    with pytest.raises(ModelFileError, match="damaged: its header .* does not match the checksum saved with it"):
        load_model(renamed)


def test_a_header_without_its_checksum_still_loads(tmp_path):
    """Files written before (only the weights' checksum) or by other tools load as they did."""
    from safetensors.torch import load_file, save_file
    good = make_tiny_model(tmp_path / "good.fader")
    _, header = _header(good)
    meta = {k: v for k, v in header["__metadata__"].items() if k != HEADER_KEY}
    older = tmp_path / "older.fader"
    save_file(load_file(str(good)), str(older), metadata=meta)
    assert load_model(older).attributes[0].name == "Smiling"


def test_the_shipped_model_carries_the_checksum_of_its_header():
    path = default_model_path()
    if not path.is_file():
        pytest.skip("the default model is not in this checkout")
    _, header = _header(path)
    assert len(header["__metadata__"][HEADER_KEY]) == 64
    load_model(path)


def test_a_damaged_discriminator_file_is_refused(tmp_path):
    from training.discriminator_file import load_discriminators, save_discriminators
    torch.manual_seed(0)
    autoencoder = nn.Linear(4, 4)
    critic = nn.Linear(3, 2)
    path = tmp_path / "m.discriminators.safetensors"
    save_discriminators(path, {"critic": critic.state_dict()}, autoencoder, step=7)
    n, header = _header(path)
    assert header["__metadata__"]["fader_weights_sha256"] == hashlib.sha256(path.read_bytes()[8 + n:]).hexdigest()
    fresh = nn.Linear(3, 2)
    assert load_discriminators(path, {"critic": fresh}, autoencoder)["loaded"] == ["critic"]
    assert torch.equal(fresh.weight, critic.weight)
    raw = bytearray(path.read_bytes())
    raw[8 + n + 2] ^= 0x01   # one bit of the critic's weights
    bad = tmp_path / "bad.discriminators.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(FaderError, match="damaged: its weights do not match the checksum"):
        load_discriminators(bad, {"critic": nn.Linear(3, 2)}, autoencoder)
    stepped = _changed(path, b'"7"', b'"9"', tmp_path / "stepped.discriminators.safetensors")
    with pytest.raises(FaderError, match="damaged: its header"):
        load_discriminators(stepped, {"critic": nn.Linear(3, 2)}, autoencoder)
