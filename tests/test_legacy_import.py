"""Import of reference-implementation checkpoints (pickled whole modules) without running pickled code.

The checkpoints are produced here the way facebookresearch/FaderNetworks did: a module `src.model`
defines `AutoEncoder(nn.Module)` / `Classifier(nn.Module)` whose `__init__(params)` stores the same
plain fields and builds the same layers, and `torch.save(ae, path)` pickles the whole object. The
module is then removed from `sys.modules` and `sys.path` before importing.
"""
from __future__ import annotations

import collections
import json
import io
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import types
import zipfile
from pathlib import Path

import pytest
from conftest import randomize_norms
import torch
from torch import nn

from core.attributes import Attribute
from core.errors import ModelFileError
from core.legacy_import import import_reference_checkpoint, safe_torch_load
from core.model_file import load_model, save_model
from core.networks import Classifier


pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]


# The reference's src/model.py (constructors only), written to a temporary package so that
# torch.save pickles the classes as `src.model.AutoEncoder` / `src.model.Classifier`.
SRC_MODEL = textwrap.dedent('''
    import os
    import numpy as np
    import torch
    from torch import nn
    from core.networks import build_layers

    if os.environ.get("FADER_TEST_IMPORT_MARKER"):
        open(os.environ["FADER_TEST_IMPORT_MARKER"], "w").close()   # proves the module was imported


    class AutoEncoder(nn.Module):
        def __init__(self, params):
            super(AutoEncoder, self).__init__()
            self.img_sz = params.img_sz
            self.img_fm = params.img_fm
            self.instance_norm = params.instance_norm
            self.init_fm = params.init_fm
            self.max_fm = params.max_fm
            self.n_layers = params.n_layers
            self.n_skip = params.n_skip
            self.deconv_method = params.deconv_method
            self.dropout = params.dec_dropout
            self.attr = params.attr
            self.n_attr = params.n_attr
            enc_layers, dec_layers = build_layers(self.img_sz, self.img_fm, self.init_fm, self.max_fm,
                                                  self.n_layers, self.n_attr, self.n_skip,
                                                  self.deconv_method, self.instance_norm, 0, self.dropout)
            self.enc_layers = nn.ModuleList(enc_layers)
            self.dec_layers = nn.ModuleList(dec_layers)

        def encode(self, x):
            enc_outputs = [x]
            for layer in self.enc_layers:
                enc_outputs.append(layer(enc_outputs[-1]))
            return enc_outputs

        def decode(self, enc_outputs, y):
            bs = enc_outputs[0].size(0)
            dec_outputs = [enc_outputs[-1]]
            y = y.unsqueeze(2).unsqueeze(3)
            for i, layer in enumerate(self.dec_layers):
                size = dec_outputs[-1].size(2)
                input = [dec_outputs[-1], y.expand(bs, self.n_attr, size, size)]
                if 0 < i <= self.n_skip:
                    input.append(enc_outputs[-1 - i])
                dec_outputs.append(layer(torch.cat(input, 1)))
            return dec_outputs


    class Classifier(nn.Module):
        def __init__(self, params):
            super(Classifier, self).__init__()
            self.img_sz = params.img_sz
            self.img_fm = params.img_fm
            self.init_fm = params.init_fm
            self.max_fm = params.max_fm
            self.hid_dim = params.hid_dim
            self.attr = params.attr
            self.n_attr = params.n_attr
            self.n_clf_layers = int(np.log2(self.img_sz))
            self.conv_out_fm = min(self.init_fm * (2 ** (self.n_clf_layers - 1)), self.max_fm)
            enc_layers, _ = build_layers(self.img_sz, self.img_fm, self.init_fm, self.max_fm,
                                         self.n_clf_layers, self.n_attr, 0, 'convtranspose', False, 0, 0)
            self.conv_layers = nn.Sequential(*enc_layers)
            self.proj_layers = nn.Sequential(nn.Linear(self.conv_out_fm, self.hid_dim),
                                             nn.LeakyReLU(0.2, inplace=True),
                                             nn.Linear(self.hid_dim, self.n_attr))

        def forward(self, x):
            h = self.conv_layers(x)
            return self.proj_layers(h.view(x.size(0), self.conv_out_fm))
''')


def _params(**kw):
    p = dict(img_sz=32, img_fm=3, instance_norm=False, init_fm=4, max_fm=16, n_layers=3, n_skip=0,
             deconv_method="convtranspose", dec_dropout=0.0, hid_dim=8,
             attr=[("Eyeglasses", 2), ("Hair", 3)])
    p.update(kw)
    p["n_attr"] = sum(n for _, n in p["attr"])
    return types.SimpleNamespace(**p)


class RefModule:
    """Context: `src.model` importable from a temp dir; on exit it is gone from sys.modules/sys.path."""

    def __init__(self, root: Path):
        self.root = root

    def __enter__(self):
        (self.root / "src").mkdir(exist_ok=True)
        (self.root / "src" / "__init__.py").write_text("")
        (self.root / "src" / "model.py").write_text(SRC_MODEL)
        sys.path.insert(0, str(self.root))
        import importlib
        importlib.invalidate_caches()
        import src.model
        return src.model

    def __exit__(self, *exc):
        sys.path.remove(str(self.root))
        for name in ("src.model", "src"):
            sys.modules.pop(name, None)
        assert "src.model" not in sys.modules


def make_reference(tmp_path: Path, name="ae.pth", legacy=False, seed=0, classifier=False, **kw):
    """Save a reference-style checkpoint; returns (path, reference outputs for a fixed input)."""
    torch.manual_seed(seed)
    params = _params(**kw)
    with RefModule(tmp_path) as ref:
        net = ref.Classifier(params) if classifier else ref.AutoEncoder(params)
        randomize_norms(net, seed, spread=0.2, batches_tracked=7)
        net.eval()
        x = torch.rand(2, 3, params.img_sz, params.img_sz, generator=torch.Generator().manual_seed(1)) * 2 - 1
        with torch.no_grad():
            if classifier:
                out = net(x)
            else:
                y = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 1.0]])[:, :params.n_attr]
                out = net.decode(net.encode(x), y)[-1]
        path = tmp_path / name
        torch.save(net, path, _use_new_zipfile_serialization=not legacy)
    return path, x, out


def _y(model, rows):
    return torch.tensor(rows, dtype=torch.float32)[:, :model.config.n_attr]


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("kw", [dict(), dict(deconv_method="upsampling", n_skip=1, dec_dropout=0.3),
                                dict(deconv_method="pixelshuffle", instance_norm=True, n_skip=2)],
                         ids=["convtranspose", "upsampling-skip", "pixelshuffle-in"])
def test_import_decodes_like_reference(tmp_path, monkeypatch, legacy, kw):
    path, x, ref_out = make_reference(tmp_path, legacy=legacy, **kw)
    marker = tmp_path / "imported"
    monkeypatch.setenv("FADER_TEST_IMPORT_MARKER", str(marker))
    # The reference module is still importable from its folder: the importer must not import it.
    monkeypatch.syspath_prepend(str(tmp_path))
    model = import_reference_checkpoint(path)
    assert not marker.exists(), "the importer imported src.model"
    assert "src.model" not in sys.modules
    c = model.config
    assert (c.img_size, c.init_fm, c.max_fm, c.n_layers, c.n_attr) == (32, 4, 16, 3, 5)
    assert c.n_skip == kw.get("n_skip", 0) and c.deconv_method == kw.get("deconv_method", "convtranspose")
    assert c.instance_norm == kw.get("instance_norm", False) and c.dec_dropout == kw.get("dec_dropout", 0.0)
    assert [(a.name, a.values, a.range) for a in model.attributes] == [
        ("Eyeglasses", ("no", "yes"), (-1.0, 2.0)), ("Hair", ("0", "1", "2"), (-1.0, 2.0))]
    assert model.meta["license"] == "unknown (imported)"
    assert model.meta["source"]["class"] == "src.model.AutoEncoder"
    assert model.meta["alignment"]["frame"]
    with torch.no_grad():
        out = model.autoencoder.decode(model.autoencoder.encode(x), _y(model, [[0, 1, 1, 0, 0], [1, 0, 0, 0, 1]]))[-1]
    # same up to float rounding: our decoder adds the image layer's code planes separately
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    # and it survives our own file format
    save_model(model, tmp_path / "imported.fader")
    loaded = load_model(tmp_path / "imported.fader")
    with torch.no_grad():
        out2 = loaded.autoencoder.decode(loaded.autoencoder.encode(x), _y(loaded, [[0, 1, 1, 0, 0], [1, 0, 0, 0, 1]]))[-1]
    torch.testing.assert_close(out2, ref_out, rtol=1e-5, atol=1e-6)
    assert loaded.meta["source"]["file"] == "ae.pth"


class _OldTorchPickler(pickle.Pickler):
    """Pickles parameters and tensors the way torch 0.3 did (the reference repo's era):
    `Parameter(data)` + state tuple, and `torch._utils._rebuild_tensor(storage, offset, size, stride)`."""

    def reducer_override(self, obj):
        if isinstance(obj, nn.Parameter):
            return nn.Parameter, (obj.data,), (obj.requires_grad, False, collections.OrderedDict())
        if type(obj) is torch.Tensor:
            storage = torch.storage.TypedStorage(wrap_storage=obj.untyped_storage(), dtype=obj.dtype, _internal=True)
            return torch._utils._rebuild_tensor, (storage, obj.storage_offset(), tuple(obj.size()), obj.stride())
        return NotImplemented


OLD_TORCH_PICKLE = types.SimpleNamespace(__name__="old_torch_pickle", Pickler=_OldTorchPickler, dump=pickle.dump)


@pytest.mark.parametrize("instance_norm", [False, True], ids=["batchnorm", "instancenorm"])
def test_old_torch_style_checkpoint(tmp_path, instance_norm):
    """torch 0.3-era layout: no num_batches_tracked, (unused) running stats in InstanceNorm layers."""
    torch.manual_seed(0)
    params = _params(instance_norm=instance_norm, n_skip=1)
    with RefModule(tmp_path) as ref:
        ae = ref.AutoEncoder(params)
        randomize_norms(ae, 0, spread=0.2, batches_tracked=7)
        ae.eval()
        x = torch.rand(2, 3, 32, 32) * 2 - 1
        y = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 1.0]])
        with torch.no_grad():
            expected = ae.decode(ae.encode(x), y)[-1]
        for m in ae.modules():
            if isinstance(m, nn.BatchNorm2d):
                del m._buffers["num_batches_tracked"]
            if isinstance(m, nn.InstanceNorm2d):
                m._buffers["running_mean"] = torch.zeros(m.num_features)
                m._buffers["running_var"] = torch.ones(m.num_features)
        torch.save(ae, tmp_path / "old.pth", pickle_module=OLD_TORCH_PICKLE, _use_new_zipfile_serialization=False)
    raw = (tmp_path / "old.pth").read_bytes()
    assert b"_rebuild_tensor\n" in raw or b"_rebuild_tensor\x94" in raw or b"\x0f_rebuild_tensor" in raw
    assert b"_rebuild_tensor_v2" not in raw and b"_rebuild_parameter" not in raw
    model = import_reference_checkpoint(tmp_path / "old.pth")
    with torch.no_grad():
        out = model.autoencoder.decode(model.autoencoder.encode(x), y)[-1]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_import_in_fresh_process_without_src(tmp_path):
    """End to end in a clean interpreter where `src` never existed."""
    path, x, ref_out = make_reference(tmp_path)
    torch.save({"x": x, "out": ref_out}, tmp_path / "expected.pt")
    code = textwrap.dedent(f'''
        import sys, torch
        from core.legacy_import import import_reference_checkpoint
        m = import_reference_checkpoint({str(path)!r})
        assert "src" not in sys.modules and "src.model" not in sys.modules
        e = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        y = torch.tensor([[0., 1, 1, 0, 0], [1, 0, 0, 0, 1]])
        with torch.no_grad():
            out = m.autoencoder.decode(m.autoencoder.encode(e["x"]), y)[-1]
        torch.testing.assert_close(out, e["out"], rtol=1e-5, atol=1e-6)
        print("ok")
    ''')
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_attribute_names_and_labels(tmp_path):
    path, _, _ = make_reference(tmp_path)
    m = import_reference_checkpoint(path, attributes=["Glasses", "HairColor"])
    assert [a.name for a in m.attributes] == ["Glasses", "HairColor"]
    m = import_reference_checkpoint(path, attributes=[Attribute("Glasses", ("off", "on"), (-2.0, 3.0)),
                                                      Attribute("Hair", ("black", "blond", "brown"), (0.0, 1.0))])
    assert m.attributes[0].values == ("off", "on") and m.attributes[0].range == (-2.0, 3.0)
    with pytest.raises(ModelFileError, match=r"ae\.pth.*has 2 attributes \('.+' and '.+'\), but 1 was given"):
        import_reference_checkpoint(path, attributes=["Glasses"])
    with pytest.raises(ModelFileError, match=r"ae\.pth.*'Hair' has 2 values.*has 3"):
        import_reference_checkpoint(path, attributes=["Glasses", Attribute("Hair")])


def test_classifier_import_selects_model_attributes(tmp_path):
    ae_path, _, _ = make_reference(tmp_path)
    # a reference evaluation classifier over more attributes, in another order
    clf_attr = [("Male", 2), ("Hair", 3), ("Smiling", 2), ("Eyeglasses", 2)]
    clf_path, x, logits = make_reference(tmp_path, name="clf.pth", classifier=True, seed=3, attr=clf_attr)
    m = import_reference_checkpoint(ae_path, classifier_path=clf_path)
    assert isinstance(m.classifier, Classifier) and m.classifier_config.n_attr == 5
    with torch.no_grad():
        ours = m.classifier(x)
    # Eyeglasses = columns 7..8, Hair = 2..4 of the reference's 9 outputs
    torch.testing.assert_close(ours, torch.cat([logits[:, 7:9], logits[:, 2:5]], 1), rtol=0, atol=1e-6)
    save_model(m, tmp_path / "with_clf.fader")
    assert load_model(tmp_path / "with_clf.fader").classifier is not None

    other, _, _ = make_reference(tmp_path, name="clf_other.pth", classifier=True, attr=[("Male", 2), ("Hair", 3)])
    with pytest.raises(ModelFileError, match=r"clf_other\.pth.*does not predict attribute 'Eyeglasses'"):
        import_reference_checkpoint(ae_path, classifier_path=other)
    small, _, _ = make_reference(tmp_path, name="clf64.pth", classifier=True, img_sz=64,
                                 attr=[("Eyeglasses", 2), ("Hair", 3)])
    with pytest.raises(ModelFileError, match=r"clf64\.pth.*64 px.*32 px"):
        import_reference_checkpoint(ae_path, classifier_path=small)
    with pytest.raises(ModelFileError, match=r"ae\.pth: does not hold a reference Classifier module.*AutoEncoder"):
        import_reference_checkpoint(ae_path, classifier_path=ae_path)


# -- malicious and broken files ----------------------------------------------------------------
class _Evil:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _evil_cases(marker: Path):
    return {
        "os.system": _Evil(os.system, f"touch {marker}"),
        "builtins.eval": _Evil(eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": _Evil(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": _Evil(subprocess.Popen, ["touch", str(marker)]),
        "builtins.getattr": _Evil(getattr, 0, "real"),
        "pathlib": _Evil(Path.touch, marker),
    }


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("case", list(_evil_cases(Path("x"))))
def test_malicious_pickle_is_refused_without_running(tmp_path, legacy, case):
    marker = tmp_path / "pwned"
    payload = _evil_cases(marker)[case]
    path = tmp_path / "evil.pth"
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(ModelFileError, match=r"evil\.pth: refused to load: the file references .*could run code"):
        import_reference_checkpoint(path)
    assert not marker.exists()


def test_malicious_field_inside_autoencoder_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    with RefModule(tmp_path) as ref:
        ae = ref.AutoEncoder(_params())
        ae.extra = _Evil(os.system, f"touch {marker}")
        torch.save(ae, tmp_path / "evil_ae.pth")
    with pytest.raises(ModelFileError, match=r"evil_ae\.pth: refused to load.*(os|posix)\.system"):
        import_reference_checkpoint(tmp_path / "evil_ae.pth")
    assert not marker.exists()


def test_third_party_callables_become_inert(tmp_path):
    """A non-stdlib callable (here torch.save, which would write a file) is a stand-in, never called."""
    marker = tmp_path / "written_by_pickle"
    with RefModule(tmp_path) as ref:
        ae = ref.AutoEncoder(_params())
        ae.extra = _Evil(torch.save, {"a": 1}, str(marker))
        torch.save(ae, tmp_path / "ae.pth")
    model = import_reference_checkpoint(tmp_path / "ae.pth")  # the stray field is simply not read
    assert model.config.img_size == 32
    assert not marker.exists()


def _stack_global(module: str, name: str) -> bytes:
    m, n = module.encode(), name.encode()
    return b"\x80\x04\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n + b"\x93."


def _legacy_container(blob: bytes) -> bytes:
    """torch's legacy layout: magic number, protocol version, sys info, object pickle, storage keys."""
    buf = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, buf, protocol=2)
    pickle.dump(1001, buf, protocol=2)
    pickle.dump({}, buf, protocol=2)
    buf.write(blob)
    pickle.dump([], buf, protocol=2)
    return buf.getvalue()


def test_hand_made_pickles(tmp_path):
    """Protocol 0 GLOBAL/REDUCE and INST, protocol 4 STACK_GLOBAL with dotted names."""
    marker = tmp_path / "pwned"
    refused = {
        "proto0": f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(),
        "inst": f"(S'touch {marker}'\nios\nsystem\n.".encode(),
        "proto4": pickle.dumps(_Evil(os.system, f"touch {marker}"), protocol=4),
        "dotted_stdlib": _stack_global("collections", "OrderedDict.__class__"),
        "builtins_dotted": _stack_global("builtins", "str.__class__"),
    }
    for name, blob in refused.items():
        p = tmp_path / f"{name}.pth"
        p.write_bytes(_legacy_container(blob))
        with pytest.raises(ModelFileError, match=rf"{name}\.pth: refused to load: the file references"):
            safe_torch_load(p)
        assert not marker.exists()
    # a dotted name under a non-stdlib module resolves to an inert stand-in, not to the real attribute
    p = tmp_path / "dotted_torch.pth"
    p.write_bytes(_legacy_container(_stack_global("torch._utils", "_rebuild_tensor.__globals__")))
    obj = safe_torch_load(p)
    assert isinstance(obj, type) and obj.__name__ == "__globals__" and not isinstance(obj, dict)
    with pytest.raises(ModelFileError, match="does not hold a reference AutoEncoder module"):
        import_reference_checkpoint(p)


@pytest.mark.parametrize("what", ["missing", "empty", "directory", "random", "truncated", "not_module",
                                  "truncated_legacy", "torchscript", "wrong_field", "bad_attr", "missing_tensor", "nan", "tar"])
def test_bad_checkpoints(tmp_path, what):
    path = tmp_path / "bad.pth"
    expect = {
        "missing": "checkpoint file not found", "empty": "checkpoint file is empty",
        "directory": "is a directory", "random": "not a PyTorch checkpoint",
        "truncated": "corrupt", "truncated_legacy": "corrupt", "not_module": "does not hold a reference AutoEncoder module",
        "torchscript": "TorchScript archive", "wrong_field": "field 'n_layers' must be a positive integer",
        "bad_attr": "n_attr=5 does not match 'attr'", "missing_tensor": "is missing 1 tensor: 'dec_layers.0.0.weight'",
        "nan": "contains NaN", "tar": "not a PyTorch checkpoint",
    }[what]
    if what == "empty":
        path.write_bytes(b"")
    elif what == "directory":
        path.mkdir()
    elif what == "random":
        path.write_bytes(b"\x01" + os.urandom(999))
    elif what in ("truncated", "truncated_legacy", "wrong_field", "bad_attr", "missing_tensor", "nan"):
        with RefModule(tmp_path) as ref:
            ae = ref.AutoEncoder(_params())
            if what == "wrong_field":
                ae.n_layers = "3"
            elif what == "bad_attr":
                ae.attr = [("Eyeglasses", 2), ("Hair", 2)]
            elif what == "missing_tensor":
                del ae.dec_layers[0][0]._parameters["weight"]
            elif what == "nan":
                with torch.no_grad():
                    ae.enc_layers[0][0].weight[0, 0, 0, 0] = float("nan")
            torch.save(ae, path, _use_new_zipfile_serialization=what != "truncated_legacy")
        if what.startswith("truncated"):
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
    elif what == "not_module":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    elif what == "torchscript":
        with zipfile.ZipFile(path, "w") as z:  # the layout of a TorchScript archive: code + constants
            for name in ("archive/data.pkl", "archive/constants.pkl", "archive/code/__torch__.py"):
                z.writestr(name, b"\x80\x02}q\x00.")
    elif what == "tar":
        import tarfile
        with tarfile.open(path, "w") as t:
            info = tarfile.TarInfo("pickle")
            t.addfile(info, io.BytesIO(b""))
    with pytest.raises(ModelFileError) as ei:
        import_reference_checkpoint(path)
    msg = str(ei.value)
    assert str(path) in msg and expect in msg, msg
    assert "\n" not in msg


def test_structure_mismatch_is_reported(tmp_path):
    """Fields that disagree with the stored layers (e.g. dropout claimed but absent) are caught."""
    with RefModule(tmp_path) as ref:
        ae = ref.AutoEncoder(_params(n_layers=4))
        ae.deconv_method = "upsampling"  # layers were built with convtranspose
        torch.save(ae, tmp_path / "mismatch.pth")
    with pytest.raises(ModelFileError, match=r"mismatch\.pth: the AutoEncoder's layers do not match its fields"):
        import_reference_checkpoint(tmp_path / "mismatch.pth")


# -- sizes read from a file are bounded before anything is allocated (issue 18) ----------------

class _StorageRef:
    """Stands for a tensor storage in a hand-made pickle (see _crafted_pickle)."""


def _crafted_pickle(numel: int, legacy: bool) -> bytes:
    """torch's pickle of one float tensor whose storage claims `numel` elements (what a hostile
    file can claim whatever the data it carries)."""
    ref = _StorageRef()

    class TensorReduce:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (ref, 0, (numel,), (1,), False, collections.OrderedDict())

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is ref:
                return ("storage", torch.FloatStorage, "0", "cpu", numel) + ((None,) if legacy else ())
            return None
    buf = io.BytesIO()
    P(buf, protocol=2).dump({"w": TensorReduce()})
    return buf.getvalue()


def _zip_checkpoint(path: Path, numel: int, data: bytes, compress=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        z.writestr("archive/data.pkl", _crafted_pickle(numel, legacy=False))
        z.writestr("archive/byteorder", "little")
        with z.open("archive/data/0", "w", force_zip64=True) as f:
            for start in range(0, len(data) if isinstance(data, bytes) else data, 1 << 24):
                f.write(data if isinstance(data, bytes) else b"\0" * min(1 << 24, data - start))
        z.writestr("archive/version", "3\n")
    return path


def _legacy_checkpoint(path: Path, numel: int) -> Path:
    """torch's pre-1.6 layout: magic number, protocol, sys info, the object, storage keys, data."""
    with open(path, "wb") as f:
        for part in (0x1950A86A20F9469CFC6C, 1001, dict(protocol_version=1001, little_endian=True,
                                                        type_sizes=dict(short=2, int=4, long=4))):
            pickle.dump(part, f, protocol=2)
        f.write(_crafted_pickle(numel, legacy=True))
        pickle.dump(["0"], f, protocol=2)
        f.write(struct.pack("<q", 4) + b"\0" * 16)
    return path


def test_storages_claiming_more_than_the_file_are_refused(tmp_path):
    for path in (_zip_checkpoint(tmp_path / "zip.pth", 1 << 28, b"\0" * 16),
                 _legacy_checkpoint(tmp_path / "legacy.pth", 1 << 28)):
        with pytest.raises(ModelFileError) as info:
            safe_torch_load(path)
        assert str(info.value).startswith(f"{path}: refused to load: its tensors claim 1,073,741,824 bytes, "
                                          "more than the file's"), str(info.value)
    ok = safe_torch_load(_zip_checkpoint(tmp_path / "fine.pth", 4, b"\0" * 16))
    assert ok["w"].shape == (4,)


def test_hostile_files_are_refused_before_allocating(tmp_path):
    """A zip-bombed checkpoint (a 512 MiB record deflated to ~0.5 MB), a reference checkpoint whose
    fields claim huge layers, and a .fader whose architecture does not match its small tensors:
    each is one ModelFileError, and the process never grows by more than a fraction of a GB (they
    used to inflate or allocate gigabytes first)."""
    from conftest import make_tiny_model
    from safetensors import safe_open
    from safetensors.torch import save_file
    bomb = _zip_checkpoint(tmp_path / "bomb.pth", 1 << 27, 1 << 29, compress=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 4 << 20
    params = _params()
    with RefModule(tmp_path) as ref:
        ae = ref.AutoEncoder(params)
        ae.init_fm = ae.max_fm = 2048            # fields that build ~1 GB of layers; tensors stay tiny
        torch.save(ae, tmp_path / "huge_fields.pth")
    good = make_tiny_model(tmp_path / "good.fader")
    with safe_open(str(good), framework="pt") as f:
        meta = json.loads(f.metadata()["fader_meta"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["architecture"].update(init_fm=2048, max_fm=2048)
    save_file(tensors, str(tmp_path / "big_arch.fader"), metadata={"fader_meta": json.dumps(meta)})
    code = textwrap.dedent(f'''
        import resource, sys, torch
        torch.set_num_threads(1)
        from core.errors import ModelFileError
        from core.legacy_import import import_reference_checkpoint
        from core.model_file import load_model
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        start = peak()
        for load, name in ((import_reference_checkpoint, "bomb.pth"), (import_reference_checkpoint, "huge_fields.pth"),
                           (load_model, "big_arch.fader")):
            try:
                load({str(tmp_path)!r} + "/" + name)
                print("ACCEPTED", name)
            except ModelFileError as e:
                print(str(e).replace({str(tmp_path)!r} + "/", ""))
        print("grew_mb", peak() - start)
    ''')
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 4, r.stderr[-3000:]
    assert lines[0].startswith("bomb.pth: refused to load: the archive holds compressed records"), lines
    assert lines[1].startswith("huge_fields.pth: AutoEncoder tensor enc_layers.0.0.weight has shape (4, 3, 4, 4), expected (2048")
    assert lines[2].startswith("big_arch.fader: autoencoder tensor enc_layers.0.0.weight has shape")
    assert int(lines[3].split()[1]) < 300, lines


def test_architecture_sizes_beyond_the_limits(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file
    from conftest import make_tiny_model
    good = make_tiny_model(tmp_path / "good.fader")
    with safe_open(str(good), framework="pt") as f:
        meta0 = json.loads(f.metadata()["fader_meta"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    cases = {
        "fm": (lambda m: m["architecture"].update(init_fm=10 ** 6, max_fm=10 ** 6), "init_fm = 1000000 exceeds the limit of 2048"),
        "attrs": (lambda m: m.update(attributes=[{"name": f"a{i}", "values": ["no", "yes"]} for i in range(300_000)]),
                  "metadata lists 300,000 attributes, more than the limit of 256"),
        "values": (lambda m: m["attributes"][0].update(values=[str(i) for i in range(10 ** 5)]),
                   "an attribute has more than 256 values"),
    }
    for name, (fn, phrase) in cases.items():
        meta = json.loads(json.dumps(meta0))
        fn(meta)
        p = tmp_path / f"{name}.fader"
        save_file(tensors, str(p), metadata={"fader_meta": json.dumps(meta)})
        with pytest.raises(ModelFileError) as info:
            load_model(p)
        assert str(info.value).startswith(f"{p}: ") and phrase in str(info.value), str(info.value)


def test_import_reference_never_overwrites_its_input(tmp_path, capsys):
    from fader_desktop.cli import main
    path, _, _ = make_reference(tmp_path, name="ck.fader")
    before = path.read_bytes()
    assert main(["import-reference", str(path), "-o", str(tmp_path / "." / "ck.fader")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fader-desktop: error: {tmp_path / '.' / 'ck.fader'}: refusing to overwrite the input "
                   f"checkpoint {path}; choose another output path"]
    assert path.read_bytes() == before
    assert main(["import-reference", str(path), "-o", str(tmp_path / "converted.fader")]) == 0
    assert load_model(tmp_path / "converted.fader").config.n_attr == 5


# -- checkpoints that used to crash the importer or give a file the app then refused -------------
def _import_cli(capsys, *args) -> tuple:
    """`fader-desktop import-reference ARGS` in this process: (exit status, stdout, stderr)."""
    from fader_desktop.cli import main
    rc = main(["import-reference", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("case", ["many_attributes", "many_values", "long_name", "blank_name"])
def test_import_never_writes_a_file_the_app_refuses(tmp_path, capsys, case):
    """300 attributes, 300 values or a 100,000-character name used to be imported ("wrote ...")
    into a .fader that load_model then refused; a blank name gave a message without the file."""
    attr, phrase = {
        "many_attributes": ([(f"a{i}", 2) for i in range(300)], "the model has 300 attributes, more than the limit of 256"),
        "many_values": ([("Hair", 300)], "attribute 'Hair' has 300 values, more than the limit of 256"),
        "long_name": ([("A" * 100_000, 2)], "an attribute name or value label is 100,000 characters long"),
        "blank_name": ([(" ", 2)], "invalid attribute (attribute name must be a non-empty string, got ' ')"),
    }[case]
    with RefModule(tmp_path) as ref:
        torch.save(ref.AutoEncoder(_params(attr=attr)), tmp_path / "ae.pth")
    out = tmp_path / "out.fader"
    rc, stdout, err = _import_cli(capsys, tmp_path / "ae.pth", "-o", out)
    assert (rc, stdout) == (2, "") and err.startswith(f"fader-desktop: error: {tmp_path / 'ae.pth'}: ")
    assert phrase in err and err.count("\n") == 1 and len(err) < 400, err
    assert not out.exists()


def test_import_of_a_negative_batchnorm_variance_is_refused(tmp_path):
    """It was imported, and every face the model edited came out as a white square (NaN)."""
    for legacy in (False, True):
        with RefModule(tmp_path) as ref:
            ae = ref.AutoEncoder(_params())
            with torch.no_grad():
                ae.enc_layers[1][1].running_var.fill_(-1.0)
            torch.save(ae, tmp_path / "ae.pth", _use_new_zipfile_serialization=not legacy)
        with pytest.raises(ModelFileError, match=r"ae\.pth: AutoEncoder tensor enc_layers\.1\.1\.running_var "
                                                 r"has negative values"):
            import_reference_checkpoint(tmp_path / "ae.pth")


def test_malformed_fields_are_errors_not_tracebacks(tmp_path):
    """Bytes that are not UTF-8 (a protocol 4 pickle) used to raise UnicodeDecodeError, a
    non-set `_non_persistent_buffers_set` TypeError."""
    with RefModule(tmp_path) as ref:
        ae = ref.AutoEncoder(_params())
        ae.deconv_method = b"\xff\xfe"
        torch.save(ae, tmp_path / "bytes.pth", pickle_protocol=4)
        ae = ref.AutoEncoder(_params())
        object.__setattr__(ae.enc_layers[1][1], "_non_persistent_buffers_set", 5)
        torch.save(ae, tmp_path / "buffers.pth")
    with pytest.raises(ModelFileError, match=r"bytes\.pth: the AutoEncoder field 'deconv_method' is not a plain "
                                             r"value \(bytes that are not UTF-8 text\)"):
        import_reference_checkpoint(tmp_path / "bytes.pth")
    with pytest.raises(ModelFileError, match=r"buffers\.pth: layer 'enc_layers\.1\.1' has a malformed "
                                             r"_non_persistent_buffers_set"):
        import_reference_checkpoint(tmp_path / "buffers.pth")


def test_import_reference_replaces_an_existing_model_only_with_overwrite(tmp_path, capsys):
    """It used to replace any .fader at -o silently: perhaps the user's own trained model."""
    from conftest import make_tiny_model
    path, _, _ = make_reference(tmp_path)
    mine = make_tiny_model(tmp_path / "mine.fader")
    before = mine.read_bytes()
    rc, out, err = _import_cli(capsys, path, "-o", mine)
    assert (rc, out) == (2, "") and err == f"fader-desktop: error: {mine}: output file already exists; --overwrite replaces it\n"
    assert mine.read_bytes() == before
    rc, out, err = _import_cli(capsys, path, "-o", mine, "--overwrite")
    assert (rc, out, err) == (0, f"wrote {mine}\n", "")
    assert load_model(mine).config.n_attr == 5


def test_import_reference_reports_a_name_its_output_cannot_encode(tmp_path, capsys, monkeypatch):
    """On an ASCII (or Windows cp1252, redirected) stdout, "wrote 模型.fader" used to raise
    UnicodeEncodeError after the file was written: a traceback and exit status 1."""
    path, _, _ = make_reference(tmp_path)
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    rc, _, err = _import_cli(capsys, path, "-o", tmp_path / "模型.fader")
    sys.stdout.flush()
    assert (rc, err) == (0, "")
    assert raw.getvalue().decode("ascii") == f"wrote {tmp_path}/\\u6a21\\u578b.fader\n"
    assert load_model(tmp_path / "模型.fader").config.n_attr == 5


def test_info_and_model_card_name_what_a_model_was_imported_from(tmp_path, capsys):
    """`info` and the model card show the checkpoint (and classifier) an imported model came
    from, with their SHA-256, to check it against the original."""
    import hashlib
    from fader_desktop.cli import main
    from fader_desktop.dialogs import model_card_html
    from core.model_file import model_summary
    ae, _, _ = make_reference(tmp_path, name="ae.pth")
    clf, _, _ = make_reference(tmp_path, name="clf.pth", classifier=True)
    out = tmp_path / "imported.fader"
    assert main(["import-reference", str(ae), "--classifier", str(clf), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", "--model", str(out)]) == 0
    text = capsys.readouterr().out
    ae_sha, clf_sha = (hashlib.sha256(f.read_bytes()).hexdigest() for f in (ae, clf))
    assert (f"  imported from: ae.pth (facebookresearch/FaderNetworks checkpoint), sha256 {ae_sha}" in text), text
    assert f"  classifier imported from: clf.pth, sha256 {clf_sha}" in text, text
    assert main(["info", "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"]["sha256"] == ae_sha
    card = model_card_html(model_summary(load_model(out)))
    assert "Imported from" in card and ae_sha in card and clf_sha in card


def test_import_reference_says_what_it_was_given_when_it_is_no_reference_model(tmp_path):
    """QA: a plain pickle gave 'corrupt or unsupported checkpoint (Invalid magic number; corrupt
    file?)', a state dict '(found OrderedDict)', a fader-train checkpoint '(found dict)': none said
    what to do."""
    import pickle
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"a": 1}, 2))
    with pytest.raises(ModelFileError, match="is a plain Python pickle, not saved by torch.save"):
        import_reference_checkpoint(plain)
    state = tmp_path / "state.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state)
    with pytest.raises(ModelFileError, match=r"a state dict .* whole-model saves \(torch.save\(model\)\)"):
        import_reference_checkpoint(state)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"step": 3, "arch": {}, "config": {}}, run / "checkpoint_last.pt")
    with pytest.raises(ModelFileError, match=r"fader-train checkpoint.*fader-train --export-last --out"):
        import_reference_checkpoint(run / "checkpoint_last.pt")
