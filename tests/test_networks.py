"""Shapes of every network for every combination of the reference implementation's knobs.

Feature maps are tiny (init_fm 2) so that the whole grid runs in seconds on two CPU cores.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.errors import FaderError
from core.networks import (DECONV_METHODS, ArchConfig, AutoEncoder, Classifier, LatentDiscriminator,
                           PatchDiscriminator, decoder_widths, split_logits)



pytestmark = pytest.mark.usefixtures("one_torch_thread")


N_ATTR = 5  # e.g. two binary attributes and one with three values
BS = 2


def _grid():
    for img_size in (32, 64, 128):
        for n_layers in range(1, int(math.log2(img_size)) + 1):
            for n_skip in range(n_layers):
                for deconv in DECONV_METHODS:
                    yield img_size, n_layers, n_skip, deconv


def _cfg(**kw):
    base = dict(img_size=32, init_fm=2, max_fm=8, n_layers=3, hid_dim=8, n_attr=N_ATTR)
    base.update(kw)
    return ArchConfig(**base)


def _expected_enc_shapes(c: ArchConfig):
    shapes, fm = [(BS, c.img_fm, c.img_size, c.img_size)], c.init_fm
    for i in range(c.n_layers):
        shapes.append((BS, fm, c.img_size >> (i + 1), c.img_size >> (i + 1)))
        fm = min(2 * fm, c.max_fm)
    return shapes


@pytest.mark.parametrize("img_size,n_layers,n_skip,deconv", list(_grid()),
                         ids=lambda v: str(v))
def test_autoencoder_and_latent_discriminator_shapes(img_size, n_layers, n_skip, deconv):
    torch.manual_seed(0)
    x = torch.rand(1, 3, img_size, img_size) * 2 - 1
    y = torch.rand(1, N_ATTR)
    for instance_norm in (False, True):
        if instance_norm and n_layers == int(math.log2(img_size)):
            with pytest.raises(FaderError, match="instance_norm"):
                _cfg(img_size=img_size, n_layers=n_layers, n_skip=n_skip, instance_norm=True).validate()
            continue
        for dec_dropout in (0.0, 0.3):
            c = _cfg(img_size=img_size, n_layers=n_layers, n_skip=n_skip, deconv_method=deconv,
                     instance_norm=instance_norm, dec_dropout=dec_dropout)
            c.validate()
            ae = AutoEncoder(c).eval()
            with torch.no_grad():
                enc, dec = ae(x, y)
            expected = [(1,) + s[1:] for s in _expected_enc_shapes(c)]
            assert [tuple(t.shape) for t in enc] == expected
            assert tuple(enc[-1].shape) == (1, c.latent_fm, c.latent_size, c.latent_size)
            # decoder activations mirror the encoder's
            assert [tuple(t.shape) for t in dec] == expected[::-1]
            assert dec[-1].abs().max() <= 1  # tanh output
            if dec_dropout == 0:
                # decode reads only the latent and the n_skip activations before it
                partial = [None] * (n_layers - n_skip) + enc[n_layers - n_skip:]
                with torch.no_grad():
                    assert torch.equal(ae.decode(partial, y)[-1], dec[-1])
            has_dropout = any(isinstance(m, nn.Dropout) for m in ae.dec_layers.modules())
            assert has_dropout == (dec_dropout > 0 and n_layers > 1)
            has_in = any(isinstance(m, nn.InstanceNorm2d) for m in ae.modules())
            has_bn = any(isinstance(m, nn.BatchNorm2d) for m in ae.modules())
            assert (has_in, has_bn) == ((instance_norm, not instance_norm) if n_layers > 1 else (False, False))
    # latent discriminator on the activation the paper trains it on
    lat = LatentDiscriminator(_cfg(img_size=img_size, n_layers=n_layers, n_skip=n_skip, deconv_method=deconv))
    z = enc[-1 - n_skip]
    assert tuple(z.shape) == (1, lat.conv_in_fm, lat.conv_in_size, lat.conv_in_size)
    with torch.no_grad():
        assert tuple(lat.eval()(z).shape) == (1, N_ATTR)


def test_training_mode_forward_and_backward():
    """Train mode (batch statistics, dropout active) runs forward and backward for a batch."""
    for instance_norm in (False, True):
        c = _cfg(n_layers=4, n_skip=1, instance_norm=instance_norm, dec_dropout=0.3)
        ae, lat = AutoEncoder(c).train(), LatentDiscriminator(c).train()
        x = torch.rand(BS, 3, 32, 32) * 2 - 1
        enc, dec = ae(x, torch.rand(BS, N_ATTR))
        loss = ((dec[-1] - x) ** 2).mean() + lat(enc[-1 - c.n_skip]).pow(2).mean()
        loss.backward()
        assert all(p.grad is not None for p in ae.parameters())


@pytest.mark.parametrize("img_size", [32, 64, 128])
def test_classifier_and_patch_discriminator_shapes(img_size):
    c = _cfg(img_size=img_size)
    x = torch.rand(BS, 3, img_size, img_size) * 2 - 1
    clf = Classifier(c)
    patch = PatchDiscriminator(c)
    with torch.no_grad():
        logits = clf(x)
        p = patch(x)
    assert tuple(logits.shape) == (BS, N_ATTR)
    assert [tuple(t.shape) for t in split_logits(logits, [2, 3])] == [(BS, 2), (BS, 3)]
    assert tuple(p.shape) == (BS,) and bool(((p > 0) & (p < 1)).all())


def test_256_once():
    c = _cfg(img_size=256, n_layers=7, n_skip=2, deconv_method="pixelshuffle", init_fm=2, max_fm=4)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    ae = AutoEncoder(c).eval()
    with torch.no_grad():
        enc, dec = ae(x, torch.rand(1, N_ATTR))
        assert tuple(enc[-1].shape) == (1, 4, 2, 2)
        assert tuple(dec[-1].shape) == (1, 3, 256, 256)
        lat = LatentDiscriminator(c).eval()
        assert tuple(lat(enc[-3]).shape) == (1, N_ATTR)
        assert tuple(Classifier(c).eval()(x).shape) == (1, N_ATTR)
        assert tuple(PatchDiscriminator(c).eval()(x).shape) == (1,)


def test_reference_paper_layout():
    """Defaults are the reference's: 256 px, 7 layers -> 512x2x2 latent, C16..C512 style doubling."""
    c = ArchConfig(n_attr=2, n_layers=7)
    with torch.device("meta"):  # structure only: skip initialising 40M weights
        ae = AutoEncoder(c)
        lat = LatentDiscriminator(c)
    convs = [m for m in ae.enc_layers.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [32, 64, 128, 256, 512, 512, 512]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) for m in convs)
    # BN after every encoder conv but the first; LeakyReLU 0.2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ae.enc_layers[0].modules())
    assert all(isinstance(layer[1], nn.BatchNorm2d) for layer in ae.enc_layers[1:])
    assert all(m.negative_slope == 0.2 for m in ae.modules() if isinstance(m, nn.LeakyReLU))
    # the code is concatenated to every decoder layer's input
    dconvs = [m for m in ae.dec_layers.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.in_channels for m in dconvs] == [512 + 2, 512 + 2, 512 + 2, 256 + 2, 128 + 2, 64 + 2, 32 + 2]
    assert isinstance(ae.dec_layers[-1][-1], nn.Tanh)
    assert (c.latent_fm, c.latent_size) == (512, 2)
    # state dict names match the reference repo's src/model.py
    keys = set(ae.state_dict())
    assert {"enc_layers.0.0.weight", "enc_layers.1.1.running_var", "dec_layers.0.0.weight",
            "dec_layers.6.0.weight"} <= keys
    assert {"conv_layers.0.0.weight", "proj_layers.0.weight", "proj_layers.2.bias"} <= set(lat.state_dict())
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in lat.modules())


def test_config_dict_round_trip():
    c = _cfg(n_skip=2, deconv_method="upsampling", instance_norm=True, dec_dropout=0.25)
    d = c.to_dict()
    assert ArchConfig.from_dict(d) == c
    with pytest.raises(FaderError, match="unknown field 'colour'"):
        ArchConfig.from_dict({**d, "colour": 1})


@pytest.mark.parametrize("field,value,phrase", [
    ("img_size", 48, "img_size must be a power of two in 32..256"),
    ("img_size", 16, "img_size must be a power of two in 32..256"),
    ("img_size", 512, "img_size must be a power of two in 32..256"),
    ("img_size", True, "img_size must be a positive integer"),
    ("img_size", 32.0, "img_size must be a positive integer"),
    ("img_fm", 0, "img_fm must be a positive integer"),
    ("init_fm", -4, "init_fm must be a positive integer"),
    ("init_fm", 16, "init_fm (16) must not exceed max_fm (8)"),
    ("max_fm", "8", "max_fm must be a positive integer"),
    ("n_layers", 0, "n_layers must be a positive integer"),
    ("n_layers", 6, "n_layers (6) must be at most log2(img_size) = 5"),
    ("n_skip", -1, "n_skip must be in 0..n_layers-1"),
    ("n_skip", 3, "n_skip must be in 0..n_layers-1"),
    ("n_skip", 1.0, "n_skip must be in 0..n_layers-1"),
    ("deconv_method", "bilinear", "deconv_method must be one of"),
    ("instance_norm", "yes", "instance_norm must be true or false"),
    ("enc_dropout", 1.0, "enc_dropout must be in [0, 1)"),
    ("dec_dropout", -0.1, "dec_dropout must be in [0, 1)"),
    ("dec_dropout", True, "dec_dropout must be in [0, 1)"),
    ("lat_dis_dropout", "0.3", "lat_dis_dropout must be in [0, 1)"),
    ("hid_dim", 0, "hid_dim must be a positive integer"),
    ("n_attr", 0, "n_attr must be a positive integer"),
    ("dec_min_fm", -1, "dec_min_fm must be an integer in 0..2048"),
    ("dec_min_fm", 4096, "dec_min_fm must be an integer in 0..2048"),
])
def test_invalid_configs_name_the_field(field, value, phrase):
    d = _cfg().to_dict()
    d[field] = value
    with pytest.raises(FaderError) as ei:
        ArchConfig.from_dict(d)
    assert phrase in str(ei.value) and field in str(ei.value)
    with pytest.raises(FaderError, match="invalid architecture"):
        AutoEncoder(ArchConfig(**d))


@pytest.mark.parametrize("deconv", ["convtranspose", "upsampling", "pixelshuffle"])
def test_a_wider_decoder_keeps_the_encoder_and_decodes_full_size_images(deconv):
    """dec_min_fm widens only the decoder's narrow hidden layers; decoder_widths says how."""
    base = _cfg(img_size=64, n_layers=4, n_skip=2, deconv_method=deconv, init_fm=8, max_fm=32)
    wide = ArchConfig.from_dict({**base.to_dict(), "dec_min_fm": 24})
    a, b = AutoEncoder(base), AutoEncoder(wide)
    assert decoder_widths(base)[-2:] == [(16, 8), (8, 3)]
    assert decoder_widths(wide)[-2:] == [(24, 24), (24, 3)]
    assert decoder_widths(wide)[0] == decoder_widths(base)[0]  # the top layer reads the latent as before
    assert {k: v.shape for k, v in a.enc_layers.state_dict().items()} == \
        {k: v.shape for k, v in b.enc_layers.state_dict().items()}
    for layer, (h, o) in zip(b.dec_layers, decoder_widths(wide)):
        conv = next(m for m in layer if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
        assert h <= conv.in_channels and (conv.out_channels == o or conv.out_channels == 4 * o)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, N_ATTR)
    with torch.no_grad():
        out = b.eval()(x, y)[1]
    assert [tuple(t.shape[1:2]) for t in out[1:]] == [(o,) for _, o in decoder_widths(wide)]
    assert tuple(out[-1].shape) == (2, 3, 64, 64)
    assert ArchConfig.from_dict(wide.to_dict()) == wide


def test_instance_norm_needs_a_latent_larger_than_1x1():
    with pytest.raises(FaderError, match=r"instance_norm needs n_layers < log2\(img_size\) = 5"):
        _cfg(n_layers=5, instance_norm=True).validate()
    _cfg(n_layers=5, instance_norm=False).validate()


def test_wrong_input_shapes_are_rejected():
    ae = AutoEncoder(_cfg())
    with pytest.raises(ValueError, match=r"expected input \(N, 3, 32, 32\)"):
        ae.encode(torch.zeros(1, 3, 64, 64))
    enc = ae.encode(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"expected attribute code \(1, 5\)"):
        ae.decode(enc, torch.zeros(1, 4))


@pytest.mark.parametrize("channels_last", [False, True])
def test_image_layer_code_split_matches_the_concatenation(channels_last):
    """The image layer's precomputed code-plane pattern gives the plain cat's outputs and gradients."""
    import torch
    from core.networks import ArchConfig, AutoEncoder
    torch.manual_seed(3)
    ae = AutoEncoder(ArchConfig(img_size=32, init_fm=8, max_fm=32, n_layers=3, n_attr=4))
    x = torch.randn(5, 3, 32, 32)
    y = torch.tensor([[1., 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0.3, 0.7, 2.0, -1.0]])
    if channels_last:
        ae = ae.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    outs, grads = [], []
    for split in (True, False):
        ae.split_code_planes = split
        ae.zero_grad()
        out = ae(x, y)[1][-1]
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in ae.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert outs[0].is_contiguous(memory_format=torch.channels_last) == channels_last


def test_two_codes_decode_in_one_batch():
    """forward(x, y, y_extra) decodes [y; y_extra] in one pass: in evaluation the two halves are the
    separate decodes; in training they share one batch's statistics (a separate pass would not)."""
    torch.manual_seed(4)
    ae = AutoEncoder(_cfg(n_skip=2, init_fm=4))
    x = torch.randn(4, 3, 32, 32)
    y = torch.eye(N_ATTR)[:4]
    y2 = torch.eye(N_ATTR)[1:5]
    ae.eval()
    enc, dec = ae(x, y, y2)
    assert dec[-1].shape == (8, 3, 32, 32) and enc[-1].shape[0] == 4
    torch.testing.assert_close(dec[-1][:4], ae.decode(enc, y)[-1])
    torch.testing.assert_close(dec[-1][4:], ae.decode(enc, y2)[-1])
    ae.train()
    with torch.no_grad():
        enc, dec = ae(x, y, y2)
        alone = ae.decode(enc, y2)[-1]
    assert not torch.allclose(dec[-1][4:], alone, atol=1e-4)
