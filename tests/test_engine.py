"""The inference engine: determinism, equivalence with the plain networks, batching, value semantics,
devices and thread safety. Models are tiny and random, with random batch-norm statistics so that the
engine's batch-norm folding is exercised like on a trained model."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import randomize_norms
import torch
from torch import nn

from core.attributes import Attribute, attribute_code
from core.engine import Engine, Latent, fold_batchnorm, resolve_device
from core.errors import FaderError
from core.model_file import load_model, new_model
from core.networks import ArchConfig

ATTRS = [Attribute("Smiling"), Attribute("Male"), Attribute("Hair", ("black", "blond", "brown"), (0.0, 1.0))]
TOL = 0.05  # 0..255 units: batch-norm folding and channels-last change float rounding only


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(seed=0, classifier=True, **kw):
    torch.manual_seed(seed)
    cfg = dict(img_size=32, init_fm=8, max_fm=32, n_layers=3, hid_dim=16)
    cfg.update(kw)
    clf = ArchConfig(img_size=32, init_fm=4, max_fm=16, n_layers=3, hid_dim=16) if classifier else None
    model = new_model(ArchConfig(**cfg), ATTRS, clf)
    randomize_norms(model.autoencoder, seed)
    model.autoencoder.eval()
    if model.classifier is not None:
        model.classifier.eval()
    return model


def crops(n, seed=0, size=32):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def reference_decode(model, u8, values_list):
    """The plain networks: full AutoEncoder.forward in fp32 NCHW, output in 0..255."""
    x = torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = attribute_code(model.attributes, values_list)
    with torch.no_grad():
        _, dec = model.autoencoder(x, y)
    return ((dec[-1] + 1) * 127.5).clamp(0, 255).permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def engine(model):
    return Engine(model, device="cpu", threads=1)


VALUES = [{}, {"Smiling": 1.0}, {"Male": 1.0, "Hair": [0.0, 1.0, 0.0]}, {"Smiling": 2.0, "Male": -1.0},
          {"Hair": [0.2, 0.3, 0.5], "Smiling": 0.5}]


def test_determinism(engine):
    x = crops(2)
    a = engine.encode(x)
    b = engine.encode(x)
    for oa, ob in zip(a.outputs, b.outputs):
        assert (oa is None and ob is None) or torch.equal(oa, ob)
    for v in VALUES:
        d1 = engine.decode_float(a, v)
        d2 = engine.decode_float(b, v)
        assert np.array_equal(d1, d2)
        assert np.array_equal(engine.decode(a, v), engine.decode(a, v))
    out = engine.decode(a, {})
    assert out.dtype == np.uint8 and out.shape == (2, 32, 32, 3) and out.flags["C_CONTIGUOUS"]
    f = engine.decode_float(a, {})
    assert f.dtype == np.float32 and f.min() >= 0 and f.max() <= 255
    assert np.array_equal(out, np.rint(f).astype(np.uint8))


@pytest.mark.parametrize("kw", [
    dict(),
    dict(n_skip=2),
    dict(deconv_method="upsampling", n_skip=1),
    dict(deconv_method="pixelshuffle", n_skip=2),
    dict(deconv_method="pixelshuffle", instance_norm=True, n_skip=1),
    dict(deconv_method="convtranspose", dec_dropout=0.3, n_layers=4, n_skip=3),
], ids=["convtranspose", "skip2", "upsampling-skip1", "pixelshuffle-skip2", "instance-norm", "dropout-4layers"])
def test_decode_only_matches_full_forward(kw):
    model = make_model(seed=1, classifier=False, **kw)
    engine = Engine(model, device="cpu", threads=1)
    x = crops(len(VALUES), seed=2)
    latent = engine.encode(x)
    # decode-only (cached latent) equals a full encode + decode of the plain networks
    got = engine.decode_float(latent, VALUES)
    ref = reference_decode(model, x, VALUES)
    assert np.abs(got - ref).max() < TOL
    assert np.abs(engine.decode(latent, VALUES).astype(int) - np.rint(ref)).max() <= 1
    # only the positions the decoder reads are kept
    keep = len(latent.outputs) - 1 - model.config.n_skip
    assert all(o is None for o in latent.outputs[:keep]) and all(o is not None for o in latent.outputs[keep:])


def test_batch_norm_folding_removes_batch_norm(model):
    folded = fold_batchnorm(model.autoencoder.dec_layers)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.autoencoder.dec_layers.modules())  # original kept


def test_engine_leaves_the_model_alone():
    model = make_model(seed=4)
    model.autoencoder.train()
    before = {k: v.clone() for k, v in model.autoencoder.state_dict().items()}
    Engine(model, device="cpu", threads=1)
    assert model.autoencoder.training
    after = model.autoencoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_batching_equals_single_calls(engine):
    x = crops(3, seed=5)
    values = [{"Smiling": 0.3}, {"Male": 1.0, "Hair": 2}, {"Smiling": -0.5, "Hair": [0.1, 0.1, 0.8]}]
    batch = engine.decode_float(engine.encode(x), values)
    singles = np.concatenate([engine.decode_float(engine.encode(x[i:i + 1]), values[i]) for i in range(3)])
    assert np.abs(batch - singles).max() / 127.5 < 1e-4
    # a single crop may also be passed without the batch axis
    assert np.abs(engine.decode_float(engine.encode(x[0]), values[0]) - singles[:1]).max() / 127.5 < 1e-4
    # one value dict applies to every face
    assert np.array_equal(engine.decode_float(engine.encode(x), {"Male": 1.0}),
                          engine.decode_float(engine.encode(x), [{"Male": 1.0}] * 3))


def test_latent_select_and_cat(engine):
    x = crops(4, seed=6)
    latent = engine.encode(x)
    assert len(latent) == 4
    full = engine.decode_float(latent, {"Smiling": 1.0})
    assert np.abs(engine.decode_float(latent[2], {"Smiling": 1.0}) - full[2:3]).max() / 127.5 < 1e-4
    sel = latent.select([3, 1])
    assert len(sel) == 2
    assert np.abs(engine.decode_float(sel, {"Smiling": 1.0}) - full[[3, 1]]).max() / 127.5 < 1e-4
    cat = Latent.cat([latent[0], latent.select([2, 3])])
    assert len(cat) == 3
    assert np.abs(engine.decode_float(cat, {"Smiling": 1.0}) - full[[0, 2, 3]]).max() / 127.5 < 1e-4
    with pytest.raises(FaderError, match="got 2 value sets for 3 faces"):
        engine.decode(cat, [{}, {}])


def test_value_semantics(model, engine):
    x = crops(1, seed=7)
    latent = engine.encode(x)
    # a binary alpha of 0 / 1 is the one-hot code of the first / second value
    for alpha, code in ((0.0, [1.0, 0.0]), (1.0, [0.0, 1.0])):
        assert np.array_equal(engine.decode_float(latent, {"Male": alpha}),
                              engine.decode_float(latent, {"Male": code}))
    # missing attributes take their first value; label-free numbers select a value of a 3-way attribute
    assert np.array_equal(engine.decode_float(latent, {}),
                          engine.decode_float(latent, {"Smiling": 0.0, "Male": 0.0, "Hair": [1.0, 0.0, 0.0]}))
    assert np.array_equal(engine.decode_float(latent, {"Hair": 2}),
                          engine.decode_float(latent, {"Hair": [0.0, 0.0, 1.0]}))
    # alpha beyond [0, 1] extrapolates: code [1 - a, a], like the reference's alpha up to 2 (or 10)
    for alpha in (-1.0, 2.0, 10.0):
        got = engine.decode_float(latent, {"Smiling": alpha})
        ref = reference_decode(model, x, [{"Smiling": [1 - alpha, alpha]}])
        assert np.abs(got - ref).max() < TOL
    assert not np.array_equal(engine.decode(latent, {"Smiling": 2.0}), engine.decode(latent, {"Smiling": 1.0}))
    # the code reaches the decoder: different values give different images
    outs = [engine.decode(latent, {"Smiling": a}) for a in (0.0, 1.0)]
    assert np.abs(outs[0].astype(int) - outs[1]).max() > 0


def test_bad_values_and_inputs(engine):
    latent = engine.encode(crops(1))
    with pytest.raises(FaderError, match="unknown attribute 'Beard'; the model has 'Smiling'"):
        engine.decode(latent, {"Beard": 1.0})
    with pytest.raises(FaderError, match="'Hair' needs 3 weights, got 2"):
        engine.decode(latent, {"Hair": [0.5, 0.5]})
    with pytest.raises(FaderError, match="'Hair' has 3 values; index 5 is out of range"):
        engine.decode(latent, {"Hair": 5})
    with pytest.raises(FaderError, match=r"expected face crops of shape \(N, 32, 32, 3\)"):
        engine.encode(crops(1, size=64))
    with pytest.raises(FaderError, match="expected face crops"):
        engine.encode(np.zeros((1, 32, 32), np.uint8))


def test_predict_values_with_classifier(model, engine):
    x = crops(3, seed=8)
    probs = engine.predict_probabilities(x)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        logits, mirrored = model.classifier(xt), model.classifier(xt.flip(3))
    values = engine.predict_values(x)
    assert len(values) == 3
    for i in range(3):
        k = 0
        for a in ATTRS:
            # the face and its mirror image, averaged
            p = (torch.softmax(logits[i, k:k + a.n], 0) + torch.softmax(mirrored[i, k:k + a.n], 0)) / 2
            np.testing.assert_allclose(probs[i][a.name], p.tolist(), atol=1e-5)
            best = int(p.argmax())
            if a.is_binary:
                assert values[i][a.name] == float(best)
            else:
                assert values[i][a.name] == [1.0 if j == best else 0.0 for j in range(a.n)]
            k += a.n
    # the predicted values are valid decoder input
    engine.decode(engine.encode(x), values)
    assert engine.predict_values(x[0])[0] == values[0]
    # a mirrored photo opens with its sliders where the original's are
    mirror = engine.predict_probabilities(x[:, :, ::-1])
    for i in range(3):
        for a in ATTRS:
            np.testing.assert_allclose(mirror[i][a.name], probs[i][a.name], atol=1e-5)


def test_predict_values_without_classifier():
    engine = Engine(make_model(classifier=False), device="cpu", threads=1)
    assert engine.predict_probabilities(crops(2)) is None
    assert engine.predict_values(crops(2)) == [{"Smiling": 0.0, "Male": 0.0, "Hair": [1.0, 0.0, 0.0]}] * 2


def test_devices(monkeypatch, model):
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("AUTO").type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    for d in ("cuda", "cuda:1"):
        with pytest.raises(FaderError, match=r"CUDA was requested .* no CUDA device is available; use --device cpu"):
            Engine(model, device=d)
    with pytest.raises(FaderError, match="unknown device 'tpu': use auto, cpu or cuda"):
        Engine(model, device="tpu")
    e = Engine(model, device="auto", threads=1)
    assert e.device.type == "cpu" and e.image_size == 32 and [a.name for a in e.attributes] == ["Smiling", "Male", "Hair"]
    assert torch.get_num_threads() == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(model, engine):
    gpu = Engine(model, device="cuda")
    x = crops(3, seed=9)
    for v in VALUES[:3]:
        c = engine.decode_float(engine.encode(x), v)
        g = gpu.decode_float(gpu.encode(x), v)
        assert np.abs(c - g).mean() < 1.0 and np.abs(c - g).max() < 8.0
    assert gpu.predict_values(x) == engine.predict_values(x)


def test_thread_safety(engine):
    x = crops(2, seed=10)
    latent = engine.encode(x)
    jobs = [{"Smiling": a, "Hair": [1 - a, a, 0.0]} for a in np.linspace(-1, 2, 6).tolist()]
    expected = [engine.decode_float(latent, v) for v in jobs]
    errors, results = [], {}

    def work(tid):
        try:
            for r in range(4):
                for j, v in enumerate(jobs):
                    results[(tid, r, j)] = engine.decode_float(latent, v)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 2 * 4 * len(jobs)
    for (tid, r, j), out in results.items():
        assert np.array_equal(out, expected[j]), (tid, r, j)


def test_engine_on_a_model_file(tiny_model_path):
    model = load_model(tiny_model_path)
    engine = Engine(model, device="cpu", threads=1)
    x = crops(2, seed=11)
    vals = [{"Smiling": 1.0}, {"Hair": [0.0, 1.0, 0.0]}]
    assert np.abs(engine.decode_float(engine.encode(x), vals) - reference_decode(model, x, vals)).max() < TOL


def test_mirror_decode_averages_the_face_and_its_mirror_image():
    """A model that asks for mirror decoding (meta "mirror_decode") is decoded as the mean of the
    face's decode and its mirror image's decode flipped back; the draft decode is the plain one."""
    base = make_model(seed=3, n_skip=1)
    mirrored = make_model(seed=3, n_skip=1)
    mirrored.meta["mirror_decode"] = True
    plain_engine, engine = Engine(base, device="cpu", threads=1), Engine(mirrored, device="cpu", threads=1)
    assert not plain_engine.mirror_decode and engine.mirror_decode
    x = crops(3, seed=5)
    values = [{"Smiling": 1.0}, {}, {"Male": 0.3}]
    face = reference_decode(base, x, values)
    mirror = reference_decode(base, np.ascontiguousarray(x[:, :, ::-1]), values)[:, :, ::-1]
    latent = engine.encode(x)
    assert latent.mirrored and len(latent) == 3
    out = engine.decode_float(latent, values)
    assert np.abs(out - (face + mirror) / 2).max() < TOL
    assert np.abs(out - face).max() > 1.0   # a random model is far from symmetric: averaging shows
    np.testing.assert_allclose(engine.decode_float(latent, values, draft=True), face, atol=TOL)
    # selecting and joining faces keeps each face with its own mirror image
    joined = Latent.cat([latent[2], latent.select([0, 1])])
    assert joined.mirrored and len(joined) == 3
    np.testing.assert_allclose(engine.decode_float(joined, [values[2], values[0], values[1]]),
                               out[[2, 0, 1]], atol=TOL)
    with pytest.raises(ValueError, match="mirrored and plain"):
        Latent.cat([latent[0], plain_engine.encode(x[:1])])
