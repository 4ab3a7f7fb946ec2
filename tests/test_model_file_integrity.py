"""Model files, from a QA walk: a checksum of the weights, what `info` says of pickles and zips that
are no model (each pointing to the next step, nothing unpickled), and three small metadata messages."""
from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import make_tiny_model

from core.attributes import Attribute, parse_value
from core.errors import FaderError, ModelFileError
from core.model_file import default_model_path, load_model, new_model, save_model
from core.networks import ArchConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DIGEST_KEY = "fader_weights_sha256"


def _header(path: Path) -> tuple:
    """(header length, parsed safetensors header) of a model file."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return n, json.loads(raw[8:8 + n])


def _info(capsys, path, *extra) -> tuple:
    from fader_desktop import cli
    code = cli.main(["info", "--model", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, path, phrase) -> str:
    """`info` exits 2 with one line naming the file and `phrase`."""
    code, out, err = _info(capsys, path)
    assert code == 2 and not out, (code, out, err)
    assert err.count("\n") == 1 and str(path) in err and phrase in err, err
    return err


def _tiny(path: Path, meta=None, attrs=None) -> Path:
    torch.manual_seed(0)
    attrs = attrs or [Attribute("Smiling")]
    model = new_model(ArchConfig(img_size=32, init_fm=4, max_fm=8, n_layers=3, hid_dim=8), attrs,
                      meta={"name": "tiny", **(meta or {})})
    save_model(model, path)
    return path


# -- 1. a checksum of the weights -----------------------------------------------------------------

@contextlib.contextmanager
def _nothing_unpickled():
    """Every way of unpickling fails the test while the block runs."""
    with pytest.MonkeyPatch.context() as mp:
        def refuse(*a, **k):
            raise AssertionError("something was unpickled")
        for name in ("load", "loads", "Unpickler"):
            mp.setattr(pickle, name, refuse)
        mp.setattr(torch, "load", refuse)
        yield


def test_a_bit_flipped_in_the_weights_is_refused_as_damaged(tmp_path, capsys):
    """QA: a flipped bit in a model's tensor data loaded silently (a finite weight changed: nothing
    noticed it). save_model records the weights' SHA-256; a load that differs is refused."""
    good = make_tiny_model(tmp_path / "good.fader")
    n, header = _header(good)
    start = header["autoencoder.enc_layers.0.0.weight"]["data_offsets"][0]
    raw = bytearray(good.read_bytes())
    raw[8 + n + start + 4] ^= 0x01   # the lowest mantissa bit of one float32 weight: still finite
    bad = tmp_path / "bad.fader"
    bad.write_bytes(bytes(raw))
    err = _refused(capsys, bad, "damaged: its weights do not match the checksum saved with it")
    with pytest.raises(ModelFileError, match="damaged: its weights do not match the checksum"):
        load_model(bad)
    assert _info(capsys, good)[0] == 0
    assert "Traceback" not in err


def test_the_checksum_covers_only_the_weights_and_files_without_one_still_load(tmp_path):
    """The digest is over the tensor data: a file retitled by another tool keeps a valid one; files
    without a digest (older files, other tools) load; it never shows up in the model's meta; a
    re-save of changed weights records their new digest."""
    from safetensors.torch import load_file, save_file
    path = _tiny(tmp_path / "m.fader")
    n, header = _header(path)
    digest = header["__metadata__"][DIGEST_KEY]
    assert digest == hashlib.sha256(path.read_bytes()[8 + n:]).hexdigest()
    model = load_model(path)
    assert DIGEST_KEY not in model.meta and DIGEST_KEY not in json.dumps(model.meta)

    meta = json.loads(header["__metadata__"]["fader_meta"])
    meta["name"] = "retitled"
    older = tmp_path / "older.fader"   # as safetensors writes it: no digest
    save_file(load_file(str(path)), str(older), metadata={"fader_meta": json.dumps(meta)})
    assert DIGEST_KEY not in _header(older)[1]["__metadata__"]
    assert load_model(older).name == "retitled"
    retitled = tmp_path / "retitled.fader"   # the header rewritten, the digest and data kept
    save_file(load_file(str(path)), str(retitled), metadata={"fader_meta": json.dumps(meta), DIGEST_KEY: digest})
    assert load_model(retitled).name == "retitled"

    with torch.no_grad():
        next(model.autoencoder.parameters()).add_(0.5)
    save_model(model, tmp_path / "changed.fader")
    assert _header(tmp_path / "changed.fader")[1]["__metadata__"][DIGEST_KEY] != digest
    load_model(tmp_path / "changed.fader")
    bogus = tmp_path / "bogus.fader"
    save_file(load_file(str(path)), str(bogus), metadata={"fader_meta": json.dumps(meta), DIGEST_KEY: "x" * 64})
    with pytest.raises(ModelFileError, match="damaged: the checksum saved with its weights is not a SHA-256"):
        load_model(bogus)


def test_the_shipped_model_carries_the_checksum_of_its_weights():
    path = default_model_path()
    if not path.is_file():
        pytest.skip("the default model is not in this checkout")
    n, header = _header(path)
    assert header["__metadata__"][DIGEST_KEY] == hashlib.sha256(path.read_bytes()[8 + n:]).hexdigest()


# -- 2. pickles and zips given as a model ---------------------------------------------------------
@pytest.fixture(scope="module")
def train_run(tmp_path_factory) -> Path:
    """A run folder of a tiny fader-train run (1 step, 32 px noise squares)."""
    from training import cli
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    for v in ("no", "yes"):
        for i in range(6):
            p = root / "Bangs" / v / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    run = root / "run"
    assert cli.main(["--data", str(root / "Bangs"), "--img-size", "32", "--init-fm", "4", "--max-fm", "8",
                     "--n-layers", "3", "--hid-dim", "8", "--steps", "1", "--eval-every", "1",
                     "--classifier-steps", "1", "--out", str(run), "--quiet", "--cache-dir", str(root / "cache"),
                     "--val-size", "2", "--threads", "1"]) == 0
    return run


class _Touch:
    """Unpickled, it would create the file `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_info_on_pickles_and_zips_leads_to_the_next_step(tmp_path, capsys, train_run):
    """QA: a torch.save'd state dict and a fader-train checkpoint away from its run were 'a pickled
    PyTorch checkpoint … convert it with import-reference', which then failed. Each now says what
    it is and where a model comes from, without unpickling anything."""
    state = tmp_path / "weights.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state)
    legacy = tmp_path / "weights_legacy.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), legacy, _use_new_zipfile_serialization=False)
    plain = tmp_path / "plain.fader"
    plain.write_bytes(pickle.dumps({"a": 1}))
    photos = tmp_path / "photos.zip"
    with zipfile.ZipFile(photos, "w") as z:
        for i in range(2):
            z.writestr(f"p{i}.jpg", cv2.imencode(".jpg", np.full((16, 16, 3), 40 * i, np.uint8))[1].tobytes())
    downloaded = tmp_path / "downloads" / "smiling.fader"   # a checkpoint sent and renamed
    downloaded.parent.mkdir()
    shutil.copy(train_run / "checkpoint_last.pt", downloaded)
    network = tmp_path / "network.pth"
    torch.save(load_model(train_run / "model.fader").autoencoder, network)
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pth"
    torch.save({"x": _Touch(marker)}, hostile)

    with _nothing_unpickled():
        for p in (state, legacy):
            err = _refused(capsys, p, "holding a state dict (weights without the network they belong to)")
            assert "whole-model saves (torch.save(model))" in err and "fader-train makes .fader models" in err
        _refused(capsys, plain, "not a Fader model file (a plain Python pickle")
        _refused(capsys, photos, "not a Fader model file (a zip archive, not a PyTorch checkpoint)")
        _refused(capsys, downloaded, "is a fader-train checkpoint (pickled), never loaded as a model: copy it to "
                 "FOLDER/checkpoint_last.pt (a folder of its own), and `fader-train --export-last --out FOLDER`")
        _refused(capsys, train_run / "checkpoint_last.pt",
                 f"its run's model is {train_run / 'model.fader'}, and `fader-train --export-last --out {train_run}`")
        _refused(capsys, network, "is a pickled PyTorch checkpoint (of core.networks.AutoEncoder), which is never "
                 "loaded directly (it could run code); a facebookresearch/FaderNetworks model is converted with "
                 "`fader-desktop import-reference`")
        _refused(capsys, hostile, "is a pickled PyTorch checkpoint")
    assert not marker.exists()

    # the advice given for the renamed checkpoint works as written
    from training import cli as train_cli
    folder = tmp_path / "FOLDER"
    folder.mkdir()
    shutil.copy(downloaded, folder / "checkpoint_last.pt")
    assert train_cli.main(["--export-last", "--out", str(folder), "--quiet"]) == 0
    capsys.readouterr()
    assert _info(capsys, folder / "model_last.fader")[0] == 0


def test_import_reference_gives_the_same_advice_for_a_renamed_checkpoint(tmp_path, train_run):
    """import-reference pointed a checkpoint of any name to `--export-last --out ITS_FOLDER`, which
    reads only ITS_FOLDER/checkpoint_last.pt."""
    from core.legacy_import import import_reference_checkpoint
    renamed = tmp_path / "smiling.pt"
    shutil.copy(train_run / "checkpoint_last.pt", renamed)
    with pytest.raises(ModelFileError, match=r"fader-train checkpoint; copy it to FOLDER/checkpoint_last.pt"):
        import_reference_checkpoint(renamed)


# -- 3. small messages ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", [None, "  "])
def test_a_null_name_shows_as_unnamed(tmp_path, capsys, name):
    """QA: `"name": null` in the metadata showed as "None" (a missing name shows as unnamed)."""
    path = _tiny(tmp_path / "m.fader", meta={"name": name})
    code, out, _err = _info(capsys, path)
    assert code == 0 and out.startswith(f"unnamed model  ({path})"), out
    code, out, _err = _info(capsys, path, "--json")
    assert json.loads(out)["name"] == "unnamed model"


@pytest.mark.parametrize("value, phrase", [
    (1e308, "'landmarks' holds a number not within ±100,000 pixels"),   # overflowed float32 with a warning
    (1e30, "'landmarks' holds a number not within ±100,000 pixels"),    # loaded, with a warning
    (5e3, "landmarks outside its 178x218 frame"),                       # loaded: every crop missed the face
])
def test_huge_template_landmarks_are_one_clean_line(tmp_path, value, phrase):
    from core.alignment import CELEBA_TEMPLATE
    template = CELEBA_TEMPLATE.to_dict()
    template["landmarks"] = [[value, value * (i + 1) / 5] for i in range(5)]
    path = _tiny(tmp_path / "m.fader", meta={"alignment": template})
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # numpy's RuntimeWarning came before the error
        with pytest.raises(ModelFileError) as ei:
            load_model(path)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: invalid alignment template") and phrase in msg and "\n" not in msg, msg


def test_a_number_that_is_also_another_values_label_is_refused_as_ambiguous():
    """QA: with value labels ['1', '0'], `--set Smiling=1` took the slider value 1, label '0',
    without a word. A number is a slider value; where it is also a label of another value it is
    refused, with a spelling for each reading."""
    swapped = Attribute("Smiling", ("1", "0"))
    with pytest.raises(FaderError, match=r"'1' for 'Smiling' means two things: the label '1' is slider position 0, "
                                         r"the number 1 is slider position 1; write 0.0 for the label or 1.0"):
        parse_value(swapped, "1")
    with pytest.raises(FaderError, match="means two things"):
        parse_value(swapped, "0")
    assert parse_value(swapped, "1.0") == 1.0 and parse_value(swapped, "0.0") == 0.0
    assert parse_value(swapped, "2") == 2.0   # no label reads 2
    # labels that agree with their numbers, and words, are as they were
    assert parse_value(Attribute("Smiling", ("0", "1")), "1") == 1.0
    assert parse_value(Attribute("Smiling"), "yes") == 1.0 and parse_value(Attribute("Smiling"), "1") == 1.0
    # fader-train names a 1/2/3 column's values '1', '2', '3': a number that is no valid index is the label
    groups = Attribute("Group", ("1", "2", "3"), (0.0, 1.0))
    assert parse_value(groups, "3") == [0.0, 0.0, 1.0]
    with pytest.raises(FaderError, match="'2' for 'Group' means two things.*value number 1.*value number 2"):
        parse_value(groups, "2")
    assert parse_value(groups, "0") == [1.0, 0.0, 0.0]


def test_edit_set_refuses_an_ambiguous_number_before_editing(tmp_path, capsys, portrait_path):
    from fader_desktop import cli
    model = make_tiny_model(tmp_path / "swapped.fader", attrs=(("Smiling", ("1", "0"), (-1.0, 2.0)),))
    out = tmp_path / "out.png"
    code = cli.main(["edit", str(portrait_path), "-o", str(out), "--model", str(model), "--set", "Smiling=1",
                     "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "'1' for 'Smiling' means two things" in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize("labels", [("1", "0"), ("1", "2"), ("0", "1"), ("no", "yes"), ("1", "2", "3")])
def test_the_own_value_edit_suggests_reads_back_as_that_value(labels):
    """`edit`'s note on an unsure reading suggests `--own NAME=TEXT`; with labels that read as other
    numbers it suggested a label that --own then refused as ambiguous (or, before that refusal, read
    as the other value)."""
    from core.attributes import _pure, label_text, same_value
    attr = Attribute("Smiling", labels) if len(labels) == 2 else Attribute("Group", labels, (0.0, 1.0))
    for idx in range(len(labels)):
        assert same_value(attr, parse_value(attr, label_text(attr, idx)), _pure(attr, idx))


def test_info_tells_state_dicts_of_every_pickle_protocol_and_plain_options_from_networks(tmp_path, capsys):
    """Review: a state dict saved with pickle protocol 4 or 5 was 'a pickled PyTorch checkpoint (of
    1.num_batches_tracked.LongStorage)' (protocol 4 pushes a global's repeated strings from the
    memo), and a checkpoint with its argparse options (argparse.Namespace) one 'of argparse.Namespace'."""
    import argparse
    sd = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).state_dict()
    saves = {f"sd_p{p}{'_legacy' if legacy else ''}.pt": (sd, {"pickle_protocol": p,
                                                                "_use_new_zipfile_serialization": not legacy})
             for p in (2, 4, 5) for legacy in (False, True)}
    saves["with_options.pt"] = ({"state_dict": sd, "args": argparse.Namespace(lr=1e-3, name="run")}, {})
    saves["with_options_p4.pt"] = ({"model": sd, "args": argparse.Namespace(lr=1e-3)}, {"pickle_protocol": 4})
    for name, (obj, kw) in saves.items():
        torch.save(obj, tmp_path / name, **kw)
    network = tmp_path / "network_p4.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), network, pickle_protocol=4)
    with _nothing_unpickled():
        for name in saves:
            _refused(capsys, tmp_path / name, "holding a state dict (weights without the network they belong to)")
        _refused(capsys, network, "is a pickled PyTorch checkpoint (of torch.nn.modules.container.Sequential)")
