"""LiveTapConv2d trains a one-pixel-output convolution exactly as the full convolution is trained,
and checkpoints (weights and Adam state) keep the full convolution's layout."""
import copy

import pytest
import torch
import torch.nn as nn

from core.networks import ArchConfig, LatentDiscriminator
from training.live_taps import LiveTapConv2d, optimizer_state_full, optimizer_state_live, use_live_taps


def _pair(size=2, bias=True):
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(24, 40, 4, 2, 1, bias=bias), nn.LeakyReLU(0.2))
    live = use_live_taps(copy.deepcopy(ref), (size, size))
    assert isinstance(live[0], LiveTapConv2d)
    return ref, live


def _adam(m):
    return torch.optim.Adam(m.parameters(), lr=1e-2, betas=(0.5, 0.999))


def _train(m, opt, steps, seed, size=2):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 24, size, size, generator=g)
        t = torch.randn(8, 40, 1, 1, generator=g)
        loss = ((m(x) - t) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
        opt.step()


@pytest.mark.parametrize("bias", [True, False])
def test_trains_like_the_full_convolution(bias):
    ref, live = _pair(bias=bias)
    w0 = ref[0].weight.detach().clone()
    opt_r, opt_l = _adam(ref), _adam(live)
    _train(ref, opt_r, 6, seed=1)
    _train(live, opt_l, 6, seed=1)
    sd_r, sd_l = ref.state_dict(), live.state_dict()
    assert list(sd_l) == list(sd_r)
    for k in sd_r:
        torch.testing.assert_close(sd_l[k], sd_r[k], rtol=1e-5, atol=1e-6)
    # why this is exact: the taps over padding never move in the full convolution
    dead = torch.ones_like(w0, dtype=torch.bool)
    dead[:, :, 1:3, 1:3] = False
    assert torch.equal(ref[0].weight.detach()[dead], w0[dead])
    assert not torch.allclose(ref[0].weight.detach()[~dead], w0[~dead])
    # Adam's state, widened, is the full convolution's (zeros at the dead taps)
    full = optimizer_state_full(opt_l.state_dict(), live)
    for k in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(full["state"][0][k], opt_r.state_dict()["state"][0][k], rtol=1e-5, atol=1e-7)
    x = torch.randn(3, 24, 2, 2)
    torch.testing.assert_close(live(x), ref(x), rtol=1e-5, atol=1e-6)


def test_resume_from_a_full_layout_checkpoint_continues_the_same():
    ref, live = _pair()
    opt_r = _adam(ref)
    _train(ref, opt_r, 4, seed=2)
    # a checkpoint in the full convolution's layout (as written by older versions, or by the trainer)
    ck_model, ck_opt = copy.deepcopy(ref.state_dict()), copy.deepcopy(opt_r.state_dict())
    _, resumed = _pair()
    opt_l = _adam(resumed)
    resumed.load_state_dict(ck_model)
    opt_l.load_state_dict(optimizer_state_live(ck_opt, resumed))
    assert opt_l.state_dict()["state"][0]["exp_avg"].shape == resumed[0].weight.shape == (40, 4 * 24)
    _train(ref, opt_r, 3, seed=3)
    _train(resumed, opt_l, 3, seed=3)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_latent_discriminator_keeps_its_state_dict_and_function():
    torch.manual_seed(0)
    arch = ArchConfig(img_size=64, init_fm=16, max_fm=128, n_layers=4, n_attr=4)
    ref = LatentDiscriminator(arch).eval()
    live = copy.deepcopy(ref)
    s = live.conv_in_size
    use_live_taps(live.conv_layers, (s, s))
    kinds = [type(m).__name__ for m in live.conv_layers.modules() if isinstance(m, (nn.Conv2d, LiveTapConv2d))]
    assert kinds == ["Conv2d", "LiveTapConv2d"]  # 4x4 -> 2x2 keeps all taps live; 2x2 -> 1x1 does not
    assert {k: v.shape for k, v in live.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    z = torch.randn(5, arch.latent_fm, s, s)
    with torch.no_grad():
        torch.testing.assert_close(live(z), ref(z), rtol=1e-5, atol=1e-5)
    # loading a state dict writes the dead taps too: the saved weight is exactly the one loaded
    other = LatentDiscriminator(arch).state_dict()
    live.load_state_dict(other)
    for k, v in other.items():
        assert torch.equal(live.state_dict()[k], v), k


def test_convolutions_without_dead_taps_are_left_alone():
    seq = nn.Sequential(nn.Conv2d(8, 8, 4, 1, 0), nn.Conv2d(8, 8, 3, 2, 1))
    use_live_taps(seq, (4, 4))  # 4x4 -> 1x1 with every tap live; then a 1x1 input -> 1x1
    assert type(seq[0]) is nn.Conv2d
    assert isinstance(seq[1], LiveTapConv2d)  # a 3x3 kernel on a 1x1 map: only its centre is live
    x = torch.randn(2, 8, 4, 4)
    ref = nn.Sequential(seq[0], nn.Conv2d(8, 8, 3, 2, 1))
    ref[1].load_state_dict(seq[1].state_dict())
    torch.testing.assert_close(seq(x), ref(x), rtol=1e-5, atol=1e-6)


def test_other_input_sizes_give_a_clear_error():
    _, live = _pair()
    with pytest.raises(ValueError, match="built for 2x2 inputs, got 3x3"):
        live(torch.randn(1, 24, 3, 3))


def test_trainer_checkpoints_keep_full_shapes_and_resume_exactly(tmp_path):
    """Both discriminators that end 2x2 -> 1x1 (latent and classifier) train on live taps; a
    checkpoint holds full-shape weights and Adam moments, and resuming from it continues the run."""
    import numpy as np
    from core.attributes import Attribute
    from training.batches import BatchStream
    from training.trainer import TrainConfig, Trainer

    arch = ArchConfig(img_size=32, init_fm=8, max_fm=64, n_layers=3, hid_dim=32, n_attr=2)
    attrs = [Attribute("Smiling")]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (64, 1))
    cfg = TrainConfig(steps=100, n_clf_dis=1, lambda_clf_dis=0.1, lambda_schedule=4, lr=1e-3, seed=0)

    def trainer(name):
        return Trainer(arch, attrs, images, labels, np.arange(48), np.arange(48, 64), cfg, tmp_path / name, "cpu",
                       progress=False)

    def run(t, start, n):
        stream = BatchStream(images, labels, np.arange(48), 32, 0, start, True)
        try:
            for _ in range(n):
                t.train_iteration(stream)
        finally:
            stream.close()

    a = trainer("a")
    assert any(isinstance(m, LiveTapConv2d) for m in a.lat_dis.modules())
    assert any(isinstance(m, LiveTapConv2d) for m in a.clf_dis.modules())
    run(a, 0, 3)
    ck = a.state()
    for net, opt in (("lat_dis", "opt_lat"), ("clf_dis", "opt_clf"), ("ae", "opt_ae")):
        params = [v for k, v in ck[net].items()
                  if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        assert [s["exp_avg"].shape for s in ck[opt]["state"].values()] == [p.shape for p in params], net
    b = trainer("b")
    b.load_state(copy.deepcopy(ck))
    run(a, 3 * 3, 2)  # 3 batches per iteration: latent dis, classifier dis, auto-encoder
    torch.set_rng_state(ck["rng_cpu"])  # both trainers draw from torch's one global generator
    run(b, 3 * 3, 2)
    for net in ("ae", "lat_dis", "clf_dis"):
        sa, sb = getattr(a, net).state_dict(), getattr(b, net).state_dict()
        for k in sa:
            torch.testing.assert_close(sb[k], sa[k], rtol=1e-5, atol=1e-6, msg=f"{net}.{k}")


def test_train_classifier_returns_a_plain_classifier():
    """The evaluation classifier trains on live taps but is handed back (and saved) as the plain network."""
    import numpy as np
    from core.attributes import Attribute
    from core.networks import Classifier
    from training.evaluation import train_classifier

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (40, 1))
    clf, acc = train_classifier(images, labels, np.arange(32), np.arange(32, 40), [Attribute("Smiling")], 3, "cpu",
                                progress=False)
    assert type(clf) is Classifier and len(acc) == 1
    assert not any(isinstance(m, LiveTapConv2d) for m in clf.modules())
    fresh = Classifier(clf.config)
    fresh.load_state_dict(clf.state_dict())  # strict: same keys and shapes
