"""SmallMapConv2d computes the same convolution as nn.Conv2d (values and gradients) on tiny maps."""
import pytest
import torch
import torch.nn as nn

from core.networks import ArchConfig, LatentDiscriminator
from training.small_map_conv import SmallMapConv2d, use_small_map_convs


@pytest.mark.parametrize("size", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_conv2d_values_and_gradients(size, channels_last, bias):
    torch.manual_seed(size)
    ref = nn.Conv2d(24, 40, 4, 2, 1, bias=bias)
    fast = nn.Conv2d(24, 40, 4, 2, 1, bias=bias)
    fast.load_state_dict(ref.state_dict())
    use_small_map_convs(fast)
    assert type(fast) is SmallMapConv2d
    _same_values_and_gradients(ref, fast, (5, 24, size, size), channels_last)
    # the gradient keeps the parameter's layout (no per-step re-layout copy)
    assert fast.weight.grad.stride() == fast.weight.stride()


def _same_values_and_gradients(ref, fast, shape, channels_last):
    """Run both convolutions on one input in one memory format; outputs and all gradients must agree."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    ref.to(memory_format=fmt)
    fast.to(memory_format=fmt)
    x = torch.randn(*shape).contiguous(memory_format=fmt)
    xr, xf = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    yr, yf = ref(xr), fast(xf)
    assert yr.shape == yf.shape
    torch.testing.assert_close(yf, yr, rtol=1e-4, atol=1e-4)
    g = torch.randn_like(yr)
    yr.backward(g)
    yf.backward(g)
    torch.testing.assert_close(xf.grad, xr.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    if ref.bias is not None:
        torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)
    return yf


def test_latent_discriminator_unchanged_by_the_switch():
    torch.manual_seed(0)
    arch = ArchConfig(img_size=64, init_fm=16, max_fm=128, n_layers=4, n_attr=4)
    ref = LatentDiscriminator(arch).eval()
    fast = LatentDiscriminator(arch).eval()
    fast.load_state_dict(ref.state_dict())
    keys = list(fast.state_dict())
    use_small_map_convs(fast)
    assert list(fast.state_dict()) == keys
    assert any(isinstance(m, SmallMapConv2d) for m in fast.modules())
    z = torch.randn(6, arch.latent_fm, arch.latent_size, arch.latent_size)
    with torch.no_grad():
        torch.testing.assert_close(fast(z), ref(z), rtol=1e-4, atol=1e-4)


def test_too_small_input_gives_the_same_error_as_conv2d():
    fast = use_small_map_convs(nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1)))
    with pytest.raises(RuntimeError):
        fast(torch.zeros(1, 3, 1, 1))


def test_other_convolutions_are_left_alone():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1, groups=1, dilation=2), nn.Conv2d(4, 4, 3, groups=2),
                      nn.ConvTranspose2d(4, 4, 4, 2, 1))
    use_small_map_convs(m)
    assert [type(x) for x in m] == [nn.Conv2d, nn.Conv2d, nn.ConvTranspose2d]


@pytest.mark.parametrize("threads", [1, 2])
def test_both_im2col_paths_match_conv2d(threads):
    """One thread uses F.unfold, several a strided view: both must give nn.Conv2d's results."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(threads)
        ref = nn.Conv2d(16, 24, 4, 2, 1)
        fast = use_small_map_convs(nn.Sequential(nn.Conv2d(16, 24, 4, 2, 1)))[0]
        fast.load_state_dict(ref.state_dict())
        for size in (2, 4):
            x = torch.randn(3, 16, size, size, requires_grad=True)
            xf = x.detach().clone().requires_grad_(True)
            torch.testing.assert_close(fast(xf), ref(x), rtol=1e-4, atol=1e-4)
            ref(x).sum().backward()
            fast(xf).sum().backward()
            torch.testing.assert_close(xf.grad, x.grad, rtol=1e-4, atol=1e-4)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("k,s,p,size", [(4, 2, 1, 2), (4, 2, 1, 3), (3, 2, 0, 3), (4, 2, 0, 5), (5, 1, 2, 1), (2, 2, 0, 2)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_one_pixel_outputs_use_only_the_live_taps_and_match_conv2d(k, s, p, size, channels_last):
    """1x1 outputs read only the kernel taps over the input; padding, and input outside the window, must not count."""
    torch.manual_seed(size + k)
    ref = nn.Conv2d(12, 20, k, s, p)
    fast = use_small_map_convs(nn.Sequential(nn.Conv2d(12, 20, k, s, p)))[0]
    fast.load_state_dict(ref.state_dict())
    y = _same_values_and_gradients(ref, fast, (3, 12, size, size), channels_last)
    assert y.shape == (3, 20, 1, 1)
