"""The `.fader` model file: round trip, atomic save, and every validation error.

Each broken file is a real file on disk made from a valid model; each must raise ModelFileError
whose one-line message contains the path and a phrase naming the problem.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import make_tiny_model
from core.alignment import CELEBA_TEMPLATE
from core.attributes import Attribute
from core.errors import FaderError, ModelFileError
from core.model_file import FORMAT_VERSION, load_model, model_summary, new_model, save_model
from core.networks import ArchConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("mf") / "good.fader")


def _read(path: Path):
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["fader_meta"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return meta, tensors


def _rewrite(src: Path, dst: Path, meta_fn=None, tensors_fn=None, raw_meta=None) -> Path:
    """Copy a valid model file, editing its metadata dict and/or tensors."""
    meta, tensors = _read(src)
    if meta_fn:
        meta_fn(meta)
    if tensors_fn:
        r = tensors_fn(tensors)
        tensors = r if isinstance(r, dict) else tensors
    header = {"fader_meta": raw_meta if raw_meta is not None else json.dumps(meta)}
    save_file(tensors, str(dst), metadata=header)
    return dst


def _expect_error(path: Path, phrase: str):
    with pytest.raises(ModelFileError) as ei:
        load_model(path)
    msg = str(ei.value)
    assert str(path) in msg, msg
    assert phrase in msg, msg
    assert "\n" not in msg
    assert isinstance(ei.value, FaderError) and isinstance(ei.value, ValueError)
    return msg


# -- round trip --------------------------------------------------------------------------------
def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    torch.manual_seed(3)
    attrs = [Attribute("Smiling"), Attribute("Hair", ("black", "blond", "brown"), (0.0, 1.0))]
    cfg = ArchConfig(img_size=32, init_fm=4, max_fm=16, n_layers=3, n_skip=1, deconv_method="upsampling",
                     dec_dropout=0.2, hid_dim=8)
    model = new_model(cfg, attrs, ArchConfig(img_size=32, init_fm=4, max_fm=8, n_layers=3, hid_dim=8),
                      meta={"name": "round trip", "license": "CC-BY-NC", "metrics": {"swap_accuracy": 0.91},
                            "training": {"steps": 12, "data": "CelebA"}, "card": "# card"})
    for m in model.autoencoder.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.num_batches_tracked.fill_(42)
    path = tmp_path / "sub" / "m.fader"  # the folder is created
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.config == model.config.__class__.from_dict({**cfg.to_dict(), "n_attr": 5})
    assert loaded.attributes == attrs
    assert loaded.classifier_config == model.classifier_config
    for a, b in ((model.autoencoder, loaded.autoencoder), (model.classifier, loaded.classifier)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
    assert not loaded.autoencoder.training and not loaded.classifier.training
    m = loaded.meta
    assert (m["name"], m["license"], m["metrics"], m["training"], m["card"]) == (
        "round trip", "CC-BY-NC", {"swap_accuracy": 0.91}, {"steps": 12, "data": "CelebA"}, "# card")
    assert m["image_size"] == 32 and m["normalisation"]["color"] == "RGB"
    assert loaded.alignment() == CELEBA_TEMPLATE
    s = model_summary(loaded)
    assert s["attributes"][1] == {"name": "Hair", "values": ["black", "blond", "brown"], "range": [0.0, 1.0]}
    assert s["has_classifier"] and s["license"] == "CC-BY-NC"
    # saving the loaded model again gives the same tensors and metadata
    save_model(loaded, tmp_path / "again.fader")
    assert _read(path)[0] == _read(tmp_path / "again.fader")[0]


def test_half_precision_file_loads_as_float32(good, tmp_path):
    model = load_model(good)
    save_model(model, tmp_path / "half.fader", half=True)
    assert (tmp_path / "half.fader").stat().st_size < 0.6 * good.stat().st_size
    _, raw = _read(tmp_path / "half.fader")
    assert raw["autoencoder.enc_layers.0.0.weight"].dtype == torch.float16
    assert raw["autoencoder.enc_layers.1.1.num_batches_tracked"].dtype == torch.int64
    half = load_model(tmp_path / "half.fader")
    for k, v in model.autoencoder.state_dict().items():
        h = half.autoencoder.state_dict()[k]
        assert h.dtype == v.dtype
        if v.is_floating_point():
            torch.testing.assert_close(h, v, rtol=1e-3, atol=1e-4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.tensor([[1.0, 0, 0, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0, 1]])
    with torch.no_grad():
        a = model.autoencoder(x, y)[1][-1]
        b = half.autoencoder(x, y)[1][-1]
    assert float((a - b).abs().max()) < 2e-2


# -- atomic save -------------------------------------------------------------------------------
def test_save_leaves_no_temp_file_and_replaces(good, tmp_path):
    model = load_model(good)
    target = tmp_path / "m.fader"
    target.write_bytes(b"old content")
    save_model(model, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fader"]
    load_model(target)


def test_failed_save_keeps_old_file(good, tmp_path, monkeypatch):
    """A write that fails half-way (disk full) leaves the previous file and no temp file."""
    model = load_model(good)
    target = tmp_path / "m.fader"
    shutil.copy(good, target)
    before = target.read_bytes()

    import core.atomic_write
    real_fdopen = core.atomic_write.os.fdopen

    class FullDisk:
        """The file the writer gets: 100 bytes fit, then the disk is full."""
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(bytes(data[:100]))
            self.f.flush()
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.atomic_write.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(ModelFileError, match=rf"{target}: cannot write model file: no space left on device"):
        save_model(model, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fader"]


def test_save_into_missing_or_unwritable_folder(good, tmp_path, monkeypatch):
    model = load_model(good)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelFileError, match=r"file/m\.fader: cannot write model file"):
        save_model(model, blocker / "m.fader")  # parent is a file
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(good, ro / "m.fader")
    before = (ro / "m.fader").read_bytes()
    if os.geteuid() == 0:  # root ignores permissions: simulate the refusal the OS would give
        import core.atomic_write

        real_open = core.atomic_write.os.open

        def denied(path, *a, **k):
            if Path(path).parent == ro:
                raise PermissionError(13, "Permission denied")
            return real_open(path, *a, **k)
        monkeypatch.setattr(core.atomic_write.os, "open", denied)
    else:
        ro.chmod(0o555)
    try:
        with pytest.raises(ModelFileError, match=r"ro/m\.fader: cannot write model file: permission denied"):
            save_model(model, ro / "m.fader")
    finally:
        ro.chmod(0o755)
    assert (ro / "m.fader").read_bytes() == before
    assert sorted(p.name for p in ro.iterdir()) == ["m.fader"]


# -- files that are not model files --------------------------------------------------------------
def test_missing_empty_directory(tmp_path):
    _expect_error(tmp_path / "nope.fader", "model file not found")
    (tmp_path / "empty.fader").write_bytes(b"")
    _expect_error(tmp_path / "empty.fader", "model file is empty")
    (tmp_path / "dir.fader").mkdir()
    _expect_error(tmp_path / "dir.fader", "is a directory")


def test_random_bytes_and_text(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = bytes(torch.randint(0, 256, (4096,), generator=g, dtype=torch.uint8).tolist())
    (tmp_path / "random.fader").write_bytes(b"\x13" + data)
    _expect_error(tmp_path / "random.fader", "not a Fader model file")
    (tmp_path / "text.fader").write_text("hello, this is not a model\n")
    _expect_error(tmp_path / "text.fader", "not a Fader model file")
    (tmp_path / "tiny.fader").write_bytes(b"abc")
    _expect_error(tmp_path / "tiny.fader", "not a Fader model file (truncated header)")


def test_truncated(good, tmp_path):
    data = good.read_bytes()
    (tmp_path / "half.fader").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "half.fader", "corrupt model file")
    (tmp_path / "head.fader").write_bytes(data[:100])
    _expect_error(tmp_path / "head.fader", "no safetensors header")
    (tmp_path / "minus1.fader").write_bytes(data[:-1])
    _expect_error(tmp_path / "minus1.fader", "corrupt model file")


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_pickled_checkpoint_is_refused_unread(good, tmp_path, legacy, monkeypatch):
    model = load_model(good)
    path = tmp_path / "ckpt.fader"
    torch.save(model.autoencoder, path, _use_new_zipfile_serialization=not legacy)
    import pickle
    called = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: called.append(1))
    monkeypatch.setattr(torch, "load", lambda *a, **k: called.append(1))
    _expect_error(path, "is a pickled PyTorch checkpoint")
    assert not called
    torch.save(model.autoencoder.state_dict(), path)
    _expect_error(path, "is a pickled PyTorch checkpoint")


def test_a_training_checkpoint_given_as_a_model_points_to_its_runs_model(tmp_path):
    """QA: `info --model RUN/checkpoint_last.pt` advised import-reference, which then refused it;
    the way to a model of that run is its model.fader or --export-last."""
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"step": 3, "weights": torch.zeros(2)}, run / "checkpoint_last.pt")
    _expect_error(run / "checkpoint_last.pt", f"is a fader-train checkpoint (pickled), never loaded as a model: "
                  f"its run's model is {run / 'model.fader'}")
    (run / "fader-run.json").write_text("{}")
    (run / "checkpoint_last.pt").rename(run / "copy.pt")
    _expect_error(run / "copy.pt", "fader-train --export-last --out")


def test_plain_safetensors_without_fader_meta(tmp_path):
    save_file({"w": torch.zeros(3)}, str(tmp_path / "plain.fader"))
    _expect_error(tmp_path / "plain.fader", "no fader_meta metadata")
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.fader"), metadata={"format": "pt"})
    _expect_error(tmp_path / "other.fader", "no fader_meta metadata")


# -- metadata errors ---------------------------------------------------------------------------
def _set(key, value):
    def fn(m):
        m[key] = value
    return fn


def _delete(key):
    def fn(m):
        del m[key]
    return fn


def _arch(field, value):
    def fn(m):
        m["architecture"][field] = value
    return fn


META_CASES = {
    "bad_json": (None, "metadata is not valid JSON"),
    "not_object": (None, "metadata must be a JSON object"),
    "wrong_format": (_set("format", "onnx"), "metadata 'format' must be 'fader-model'"),
    "no_format": (_delete("format"), "metadata 'format' must be 'fader-model'"),
    "newer_version": (_set("format_version", FORMAT_VERSION + 1),
                      f"format version {FORMAT_VERSION + 1} is newer than this app supports"),
    "no_version": (_delete("format_version"), "metadata 'format_version' is missing"),
    "string_version": (_set("format_version", "1"), "'format_version' must be a whole number, got '1'"),
    "huge_version": (_set("format_version", 10 ** 4000), "format version beyond 10^9 is newer than this app supports"),
    "bool_version": (_set("format_version", True), "'format_version' must be a whole number, got True"),
    "zero_version": (_set("format_version", 0), "metadata 'format_version' must be 1 or more, got 0"),
    "negative_version": (_set("format_version", -3), "metadata 'format_version' must be 1 or more, got -3"),
    "no_attributes": (_delete("attributes"), "metadata lists no attributes"),
    "empty_attributes": (_set("attributes", []), "metadata lists no attributes"),
    "duplicate_attributes": (lambda m: m["attributes"].__setitem__(1, dict(m["attributes"][0])),
                             "attribute names are not unique"),
    "attributes_differ_in_case": (lambda m: m["attributes"][1].__setitem__("name", m["attributes"][0]["name"].upper()),
                                  "differ only in letter case"),
    "attribute_one_value": (lambda m: m["attributes"][0].__setitem__("values", ["only"]),
                            "invalid attributes in metadata"),
    "attribute_bad_range": (lambda m: m["attributes"][0].__setitem__("range", [2, 1]),
                            "invalid attributes in metadata"),
    "attribute_no_name": (lambda m: m["attributes"][0].__delitem__("name"), "invalid attributes in metadata"),
    "attribute_not_dict": (lambda m: m["attributes"].__setitem__(0, "Smiling"), "invalid attributes in metadata"),
    "n_attr_mismatch": (lambda m: m["attributes"].__delitem__(-1), "does not match the attributes"),
    "no_architecture": (_delete("architecture"), "metadata 'architecture' is missing"),
    "architecture_list": (_set("architecture", [1, 2]), "metadata 'architecture' is missing"),
    "unknown_arch_field": (_arch("colour", "red"), "unknown field 'colour'"),
    "image_size_disagrees": (_set("image_size", 64), "image_size disagrees with the architecture"),
    "bad_alignment": (_set("alignment", {"frame": [178, 218]}), "invalid alignment template"),
    "bad_alignment_shape": (lambda m: m["alignment"].__setitem__("landmarks", [[1, 2]]),
                            "invalid alignment template"),
    "bad_alignment_type": (_set("alignment", "celeba"), "invalid alignment template"),
    "classifier_mismatch": (lambda m: m["classifier_architecture"].__setitem__("n_attr", 3),
                            "classifier architecture does not match"),
    "classifier_bad_arch": (lambda m: m["classifier_architecture"].__setitem__("hid_dim", -1),
                            "classifier invalid architecture: hid_dim must be a positive integer"),
}

ARCH_CASES = {
    "img_size": (48, "img_size must be a power of two"),
    "img_fm": (0, "img_fm must be a positive integer"),
    "init_fm": ("8", "init_fm must be a positive integer"),
    "max_fm": (2, "must not exceed max_fm"),
    "n_layers": (9, "n_layers (9) must be at most log2(img_size)"),
    "n_skip": (3, "n_skip must be in 0..n_layers-1"),
    "deconv_method": ("bicubic", "deconv_method must be one of"),
    "instance_norm": ("yes", "instance_norm must be true or false"),
    "enc_dropout": (1.5, "enc_dropout must be in [0, 1)"),
    "dec_dropout": (-0.5, "dec_dropout must be in [0, 1)"),
    "lat_dis_dropout": (None, "lat_dis_dropout must be in [0, 1)"),
    "hid_dim": (0, "hid_dim must be a positive integer"),
    "n_attr": (True, "n_attr must be a positive integer"),
}


@pytest.mark.parametrize("case", list(META_CASES))
def test_metadata_errors(good, tmp_path, case):
    fn, phrase = META_CASES[case]
    raw = {"bad_json": '{"format": "fader-model",', "not_object": "[1, 2, 3]"}.get(case)
    path = _rewrite(good, tmp_path / f"{case}.fader", meta_fn=fn, raw_meta=raw)
    _expect_error(path, phrase)


@pytest.mark.parametrize("field", list(ARCH_CASES))
def test_bad_architecture_field(good, tmp_path, field):
    value, phrase = ARCH_CASES[field]
    path = _rewrite(good, tmp_path / f"arch_{field}.fader", meta_fn=_arch(field, value))
    msg = _expect_error(path, phrase)
    assert "invalid architecture" in msg and field in msg


# -- tensor errors -----------------------------------------------------------------------------
def _drop(key):
    def fn(t):
        t.pop(key)
    return fn


def _nan(key):
    def fn(t):
        t[key] = t[key].clone()
        t[key].view(-1)[0] = float("nan")
    return fn


TENSOR_CASES = {
    "missing_tensor": (_drop("autoencoder.dec_layers.1.0.weight"),
                       "missing 1 autoencoder tensor: 'dec_layers.1.0.weight'"),
    "missing_buffer": (_drop("autoencoder.enc_layers.1.1.running_var"), "missing 1 autoencoder tensor: 'enc_layers.1.1.running_var'"),
    "missing_classifier_tensor": (_drop("classifier.proj_layers.2.bias"), "missing 1 classifier tensor: 'proj_layers.2.bias'"),
    "extra_tensor": (lambda t: t.__setitem__("autoencoder.enc_layers.9.weight", torch.zeros(1)),
                     "1 unexpected autoencoder tensor: 'enc_layers.9.weight'"),
    "foreign_tensor": (lambda t: t.__setitem__("optimizer.state", torch.zeros(1)), "1 unexpected tensor: 'optimizer.state'"),
    "wrong_shape": (lambda t: t.__setitem__("autoencoder.enc_layers.0.0.weight", torch.zeros(8, 3, 3, 3)),
                    "autoencoder tensor enc_layers.0.0.weight has shape (8, 3, 3, 3), expected (8, 3, 4, 4)"),
    "nan": (_nan("autoencoder.dec_layers.0.0.weight"), "autoencoder tensor dec_layers.0.0.weight contains NaN"),
    "inf": (lambda t: t.__setitem__("classifier.proj_layers.0.bias", torch.full_like(t["classifier.proj_layers.0.bias"], float("inf"))),
            "classifier tensor proj_layers.0.bias contains NaN or infinite values"),
    "int_weights": (lambda t: t.__setitem__("autoencoder.enc_layers.0.0.bias", torch.zeros(8, dtype=torch.int32)),
                    "autoencoder tensor enc_layers.0.0.bias must be floating point"),
}


@pytest.mark.parametrize("case", list(TENSOR_CASES))
def test_tensor_errors(good, tmp_path, case):
    fn, phrase = TENSOR_CASES[case]
    path = _rewrite(good, tmp_path / f"{case}.fader", tensors_fn=fn)
    _expect_error(path, phrase)


def test_classifier_tensors_without_classifier_architecture(good, tmp_path):
    path = _rewrite(good, tmp_path / "orphan.fader", meta_fn=_set("classifier_architecture", None))
    _expect_error(path, "unexpected tensors: 'classifier.")
    ok = _rewrite(good, tmp_path / "no_clf.fader", meta_fn=_set("classifier_architecture", None),
                  tensors_fn=lambda t: {k: v for k, v in t.items() if not k.startswith("classifier.")})
    assert load_model(ok).classifier is None


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_model_gets_normal_file_permissions(good, tmp_path):
    import stat
    old = os.umask(0o022)
    try:
        save_model(load_model(good), tmp_path / "shared.fader", half=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.fader").stat().st_mode) == 0o644  # not 0600: others may read it


def test_set_model_metadata_turns_mirror_decoding_on_and_off(good, tmp_path):
    """scripts/set_model_metadata.py --mirror-decode: the engine then decodes faces with their
    mirror images (and `info` says so); the networks are untouched."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import set_model_metadata
    from core.engine import Engine
    on, off = tmp_path / "on.fader", tmp_path / "off.fader"
    assert set_model_metadata.main([str(good), "--mirror-decode", "on", "--out", str(on)]) == 0
    assert set_model_metadata.main([str(on), "--mirror-decode", "off", "--out", str(off)]) == 0
    m_on, m_off = load_model(on), load_model(off)
    assert model_summary(m_on)["mirror_decode"] and not model_summary(m_off)["mirror_decode"]
    assert Engine(m_on, device="cpu", threads=1).mirror_decode
    assert not Engine(m_off, device="cpu", threads=1).mirror_decode
    a, b = m_on.autoencoder.state_dict(), load_model(good).autoencoder.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- hostile metadata and files seen by the user (each used to crash, or to load and then fail) -----
def _info(capsys, *args) -> tuple:
    """`fader-desktop info ARGS` in this process: (exit status, stdout, stderr)."""
    from fader_desktop.cli import main
    rc = main(["info", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


ATTRIBUTE_CASES = {
    # used to raise IndexError / OverflowError out of load_model (a traceback, "unexpected error")
    "range_one_number": (lambda a: a.__setitem__("range", [0]), "'range' must be two numbers"),
    "range_beyond_float": (None, "'range' must be two numbers"),
    # used to load: the sliders then ran from -1e300 (a sweep: NaN values and numpy warnings)
    "range_huge": (lambda a: a.__setitem__("range", [-1e300, 1e300]), "'range' must be two numbers within ±1000"),
    "range_three_numbers": (lambda a: a.__setitem__("range", [0, 1, 2]), "'range' must be two numbers"),
    "values_string": (lambda a: a.__setitem__("values", "ab"), "'values' must be a list of strings"),
    "values_null": (lambda a: a.__setitem__("values", [None, "yes"]), "'values' must be a list of strings"),
    "name_100k_chars": (lambda a: a.__setitem__("name", "N" * 100_000),
                        "an attribute name or value label is 100,000 characters long, more than the limit of 255"),
}


@pytest.mark.parametrize("case", list(ATTRIBUTE_CASES))
def test_attribute_of_wrong_type_or_absurd_size(good, tmp_path, capsys, case):
    fn, phrase = ATTRIBUTE_CASES[case]
    raw = None
    if fn is None:  # a JSON integer of 400 digits: float() of it overflows
        meta, _ = _read(good)
        raw = json.dumps(meta).replace('"range": [-1.0, 2.0]', '"range": [0, 1' + "0" * 400 + "]", 1)
    path = _rewrite(good, tmp_path / f"{case}.fader", meta_fn=lambda m: fn(m["attributes"][0]) if fn else None,
                    raw_meta=raw)
    msg = _expect_error(path, phrase)
    assert "invalid attributes in metadata" in msg and len(msg) < 300 + len(str(path))
    rc, out, err = _info(capsys, "--model", path)
    assert (rc, out) == (2, "") and err == f"fader-desktop: error: {msg}\n"


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deeply_nested_metadata(good, tmp_path, capsys, depth):
    """500 levels used to load and then crash `info` (RecursionError); 100,000 crashed the loader."""
    meta, _ = _read(good)
    raw = json.dumps(meta)[:-1] + ', "training": ' + "[" * depth + "]" * depth + "}"
    path = _rewrite(good, tmp_path / "deep.fader", raw_meta=raw)
    _expect_error(path, "metadata is nested too deeply (more than 32 levels)")
    for extra in ([], ["--json"]):
        rc, out, err = _info(capsys, "--model", path, *extra)
        assert (rc, out) == (2, "") and err.count("\n") == 1 and "nested too deeply" in err


def test_number_of_thousands_of_digits_in_metadata(good, tmp_path):
    meta, _ = _read(good)
    path = _rewrite(good, tmp_path / "digits.fader", raw_meta=json.dumps(meta)[:-1] + ', "x": ' + "9" * 5000 + "}")
    _expect_error(path, "metadata is not valid JSON (a number has too many digits)")


def test_mirror_decode_must_be_a_boolean(good, tmp_path):
    """"false" used to turn mirror decoding on (bool of a non-empty string)."""
    _expect_error(_rewrite(good, tmp_path / "m.fader", meta_fn=_set("mirror_decode", "false")),
                  "metadata 'mirror_decode' must be true or false")


def test_alignment_landmarks_that_coincide(good, tmp_path, capsys, portrait_path):
    """Such a model used to load, and every edit then died in a LinAlgError traceback."""
    path = _rewrite(good, tmp_path / "lm.fader", meta_fn=lambda m: m["alignment"].update(landmarks=[[88, 130]] * 5))
    _expect_error(path, "invalid alignment template (its landmarks coincide)")
    from fader_desktop.cli import main
    assert main(["edit", str(portrait_path), "-o", str(tmp_path / "out.png"), "--set", "Smiling=0",
                 "--model", str(path), "--device", "cpu"]) == 2
    assert "its landmarks coincide" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_negative_batchnorm_variance(good, tmp_path):
    """Finite in the file, NaN once the layer runs: the edited face came out as a white square."""
    key = "autoencoder.enc_layers.1.1.running_var"
    path = _rewrite(good, tmp_path / "var.fader", tensors_fn=lambda t: t.__setitem__(key, -t[key]))
    _expect_error(path, "autoencoder tensor enc_layers.1.1.running_var has negative values")
    key = "classifier.conv_layers.1.1.running_var"
    path = _rewrite(good, tmp_path / "clf_var.fader", tensors_fn=lambda t: t.__setitem__(key, t[key] - 10))
    _expect_error(path, "classifier tensor conv_layers.1.1.running_var has negative values")


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="POSIX pipes and devices")
def test_pipe_or_device_as_model_file(tmp_path):
    """Both used to be reported as "model file is empty"."""
    os.mkfifo(tmp_path / "pipe.fader")
    _expect_error(tmp_path / "pipe.fader", "is a device or pipe, not a model file")
    _expect_error(Path("/dev/zero"), "is a device or pipe, not a model file")


def test_info_with_a_megabyte_long_model_name(good, tmp_path, capsys):
    path = _rewrite(good, tmp_path / "long.fader", meta_fn=_set("name", "A" * 1_000_000))
    assert len(load_model(path).name) == 200
    rc, out, err = _info(capsys, "--model", path)
    assert rc == 0 and out.splitlines()[0] == "A" * 199 + f"…  ({path})"
    rc, out, err = _info(capsys, "--model", path, "--json")
    assert rc == 0 and len(json.loads(out)["name"]) == 200


def test_info_on_an_output_without_unicode(good, tmp_path, capsys, monkeypatch):
    """`info > file` on Windows writes cp1252: a model's Chinese name used to end in a traceback."""
    import io
    import sys
    path = _rewrite(good, tmp_path / "cjk.fader", meta_fn=lambda m: m.update(name="模型 café")
                    or m["attributes"][0].update(name="微笑"))
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="cp1252"))
    rc, _, err = _info(capsys, "--model", path)
    sys.stdout.flush()
    assert (rc, err) == (0, "")
    lines = raw.getvalue().decode("cp1252").splitlines()
    # lines[1], [2]: the image size and the model size
    assert lines[0] == f"\\u6a21\\u578b café  ({path})" and lines[3].startswith("  \\u5fae\\u7b11: values")


def test_weights_that_overflow_are_an_error_not_an_unchanged_face(good, tmp_path, capsys, portrait_path):
    """Finite weights near float32's limit pass every check of the file, then decode to NaN: the
    edit came out as black or unchanged pixels with exit 0. It is now an error; nothing is written."""
    def huge(t):
        for k in [k for k in t if k.startswith("autoencoder.dec_layers") and k.endswith(".0.weight")]:
            t[k] = t[k] * 1e38
    path = _rewrite(good, tmp_path / "huge.fader", tensors_fn=huge)
    from fader_desktop.cli import main
    out = tmp_path / "out.jpg"
    rc = main(["edit", str(portrait_path), "-o", str(out), "--set", "Smiling=0", "--own", "Smiling=1", "--model", str(path),
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "decoded NaN or infinite values" in err and "Traceback" not in err, err
    assert not out.exists()


def test_a_file_of_many_tensors_is_refused_before_they_are_loaded(tmp_path):
    """200,000 empty tensors took 8 s and 1 GB before "unexpected tensors"; now refused at once."""
    save_file({f"t{i}": torch.zeros(0) for i in range(20_000)}, str(tmp_path / "many.fader"),
              metadata={"fader_meta": "{}"})
    assert _expect_error(tmp_path / "many.fader", "20,000 tensors").endswith(": corrupt model file (20,000 tensors, more than the limit of 10,000)")


_TRUNCATED_WHILE_IN_USE = r"""
import os, sys
import torch
from core.errors import ModelFileError
from core.model_file import load_model, read_safetensors

path = sys.argv[1]
data = open(path, "rb").read()

model = load_model(path)
os.truncate(path, 100)   # e.g. a sync client replacing the file while the app has it open
with torch.no_grad():
    ae = model.autoencoder
    out = ae.decode(ae.encode(torch.zeros(1, 3, 32, 32)), torch.zeros(1, model.config.n_attr))
print("decoded", bool(torch.isfinite(out[-1]).all()))

open(path, "wb").write(data)
_, tensors = read_safetensors(path, "damaged")   # discriminator files are read this way too
os.truncate(path, 100)
print("tensors", bool(all(torch.isfinite(t.float()).all() for t in tensors.values())))

# truncated between reading the file and checking its weights, as a copy started during the load
open(path, "wb").write(data)
def truncate_at(name):
    def hook(frame, event, arg):
        if event == "call" and frame.f_code.co_name == name:
            sys.setprofile(None)
            os.truncate(path, 100)
    return hook
sys.setprofile(truncate_at("_load_state"))
model = load_model(path)
print("loaded", model.config.n_attr)

# truncated while its header is checked, before the weights are read: a clear refusal
open(path, "wb").write(data)
sys.setprofile(truncate_at("_check_state"))
try:
    load_model(path)
except ModelFileError as e:
    print("cut while read:", e)

try:
    load_model(path)
except ModelFileError as e:
    print("refused", e)
"""


def test_a_model_file_truncated_while_in_use_does_not_crash_the_app(good, tmp_path):
    """The weights were memory-mapped: a file truncated after (or during) loading killed the
    process with SIGBUS at the next read of a tensor. Run in a subprocess so a crash fails
    this test instead of ending pytest."""
    import subprocess
    import sys
    path = tmp_path / "synced.fader"
    shutil.copy(good, path)
    r = subprocess.run([sys.executable, "-c", _TRUNCATED_WHILE_IN_USE, str(path)], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1], env={**os.environ, "OMP_NUM_THREADS": "1"},
                       timeout=300)
    assert r.returncode == 0, f"exit status {r.returncode}\n{r.stdout}\n{r.stderr[-2000:]}"
    lines = r.stdout.splitlines()
    assert lines[:3] == ["decoded True", "tensors True", "loaded 7"], r.stdout
    assert lines[3].startswith(f"cut while read: {path}: ") and "truncated: 100 of " in lines[3], r.stdout
    assert lines[4].startswith(f"refused {path}: ") and "no safetensors header" in lines[4], r.stdout


def _with_header_changes(good: Path, out: Path, extra: dict, data_bytes: int) -> Path:
    """`good` with tensors added to its header only, and the file extended (sparsely) to
    `data_bytes` more bytes."""
    raw = good.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header.update(extra)
    header.get("__metadata__", {}).pop("fader_header_sha256", None)   # as another tool writes it
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    os.truncate(out, out.stat().st_size + data_bytes)
    return out


def test_a_file_with_gigabytes_the_model_does_not_use_is_refused_before_they_are_read(good, tmp_path):
    """A valid file with one extra 1.5 GB tensor (or 1.5 GB of padding) was read whole and its tensors
    built before being refused: 3.5 GB for a model of a few MB, and the window's process, holding
    the user's unsaved edits, could be killed for memory. Now the header alone refuses it."""
    import tracemalloc
    raw = good.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    end = max(v["data_offsets"][1] for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__")
    extra = _with_header_changes(good, tmp_path / "extra.fader",
                                 {"zzz_junk": {"dtype": "F32", "shape": [1500, 1 << 18],
                                               "data_offsets": [end, end + (1500 * 4 << 18)]}}, 1500 * 4 << 18)
    padded = _with_header_changes(good, tmp_path / "padded.fader", {}, 1500 << 20)
    for path, why in ((extra, "1 unexpected tensor: 'zzz_junk'"), (padded, "bytes after the last tensor's data")):
        tracemalloc.start()
        with pytest.raises(ModelFileError, match=re.escape(why)) as e:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert str(path) in str(e.value)
        assert peak < 50 << 20, f"{path.name}: {peak / 2 ** 20:.0f} MB allocated"


# -- odd metadata a QA round found (each loaded, then failed later or froze the window) -------------
def _set_attr(key, value, i=0):
    return lambda m: m["attributes"][i].__setitem__(key, value)


@pytest.mark.parametrize("edit, phrase", [
    # every edit of every attribute failed afterwards ("value 0 for 'Smiling' is outside 2 .. 9")
    (_set_attr("range", [5, 6]), "too far from its pure values 0 and 1"),
    (_set_attr("range", [0.5, 0.5000001]), "too far from its pure values 0 and 1"),
])
def test_metadata_the_app_could_not_use_is_refused_at_load(good, tmp_path, edit, phrase):
    _expect_error(_rewrite(good, tmp_path / "odd.fader", meta_fn=edit), phrase)


@pytest.mark.parametrize("metadata", [{"fader_meta": 5}, {"fader_meta": {"format": "fader"}}, {"fader_meta": None},
                                      "has fader_meta inside"])
def test_fader_meta_that_is_not_text_is_one_clear_error(good, tmp_path, metadata):
    """It was a TypeError traceback in every command, and 'unexpected error' in the window."""
    raw = good.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    bad = tmp_path / "bad.fader"
    bad.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    _expect_error(bad, "not a Fader model file")


def test_the_model_card_cuts_a_long_unbroken_description(qapp):
    """15 MB of one unbroken 'word' froze the window's model card for good (Qt lays such a run
    out in time that grows with its square: 300,000 characters took 7 s)."""
    from fader_desktop.dialogs import CARD_TEXT_LIMIT, model_card_html
    card = model_card_html({"name": "m", "description": "A" * 300_000, "license": "B" * 300_000,
                            "training": {"data": "C" * 300_000}})
    assert len(card) < 4 * CARD_TEXT_LIMIT + 2000 and "300,000 characters" in card


def test_a_pickle_or_zip_that_is_no_torch_checkpoint_is_not_sent_to_import_reference(tmp_path):
    """QA: any file starting with a pickle or zip signature was 'a pickled PyTorch checkpoint ...
    convert it with import-reference', which then failed ('Invalid magic number', 'zip archive
    without data.pkl'). Only a torch.save file is sent there now."""
    import pickle
    import zipfile
    plain = tmp_path / "plain.fader"
    plain.write_bytes(pickle.dumps({"a": 1}, 2))
    _expect_error(plain, "a plain Python pickle, which is never loaded")
    photos = tmp_path / "photos.fader"
    with zipfile.ZipFile(photos, "w") as z:
        z.writestr("a.jpg", b"\xff\xd8 not much of a photo")
    _expect_error(photos, "a zip archive, not a PyTorch checkpoint")


def test_an_attribute_name_with_spaces_around_it_is_read_without_them(good, tmp_path):
    """' Male' (a model trained from a folder whose name ends in a space) loaded, but --set and
    recipes strip what they are given, so it could never be named; it is read as 'Male' now."""
    name = load_model(good).attributes[0].name
    model = load_model(_rewrite(good, tmp_path / "spaced.fader", meta_fn=_set_attr("name", f" {name} ")))
    assert model.attributes[0].name == name
