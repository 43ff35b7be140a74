"""The CPU-inference paths of the U-Net give what torch's stock layers give, and step aside where they must."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segforge.networks.cpu_inference import eager_cpu_inference, instance_norm_, upsample_concat
from segforge.networks.generic_unet import GenericUNetBuilder

CASES = [  # (transposed conv class, kernel == stride, input spatial shape)
    (nn.ConvTranspose3d, (1, 2, 2), (3, 5, 4)),
    (nn.ConvTranspose3d, (2, 2, 2), (4, 3, 5)),
    (nn.ConvTranspose3d, (2, 1, 2), (2, 6, 3)),
    (nn.ConvTranspose2d, (2, 2), (7, 5)),
    (nn.ConvTranspose2d, (1, 2), (4, 6)),
]


@pytest.mark.parametrize(("op", "kernel", "spatial"), CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
def test_upsample_concat_equals_transposed_conv_then_cat(op, kernel, spatial, bias, batch):
    torch.manual_seed(0)
    up = op(6, 4, kernel, kernel, bias=bias)
    x = torch.randn(batch, 6, *spatial)
    skip = torch.randn(batch, 5, *[s * k for s, k in zip(spatial, kernel, strict=True)])
    with torch.no_grad():
        expected = torch.cat((up(x), skip), 1)
        got = upsample_concat(up, x, skip)
    assert got.shape == expected.shape and got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize(("op", "shape"), [(nn.InstanceNorm3d, (4, 5, 6, 7)), (nn.InstanceNorm2d, (3, 9, 8))])
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_in_place_equals_the_module(batch, op, shape, affine):
    torch.manual_seed(1)
    norm = op(shape[0], affine=affine, eps=1e-5)
    if affine:
        nn.init.uniform_(norm.weight, 0.5, 1.5)
        nn.init.uniform_(norm.bias, -1.0, 1.0)
    x = torch.randn(batch, *shape) * 3 + 2
    expected = norm(x).detach()
    with torch.inference_mode():
        work = x.clone()
        got = instance_norm_(norm, work)
    assert got.data_ptr() == work.data_ptr(), "the fast path writes over its input"
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_stock_layers_where_autograd_autocast_or_running_stats_need_them():
    up = nn.ConvTranspose3d(4, 2, (2, 2, 2), (2, 2, 2))
    x, skip = torch.randn(1, 4, 2, 2, 2), torch.randn(1, 3, 4, 4, 4)
    assert not eager_cpu_inference(x)  # grad mode on
    out = upsample_concat(up, x, skip)
    assert out.requires_grad and out.grad_fn is not None
    with torch.no_grad():
        assert eager_cpu_inference(x)
        assert not eager_cpu_inference(x.bfloat16())  # a bf16 network without autocast: stock layers
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert eager_cpu_inference(x) and eager_cpu_inference(x.bfloat16())
            assert not eager_cpu_inference(x.double())
        with torch.autocast("cpu", dtype=torch.float16):
            assert not eager_cpu_inference(x)
        tracked = nn.InstanceNorm3d(4, track_running_stats=True).eval()
        work = x.clone()
        assert instance_norm_(tracked, work).data_ptr() != work.data_ptr()
        padded = nn.ConvTranspose3d(4, 2, (2, 2, 2), (2, 2, 2), padding=1)
        torch.testing.assert_close(
            upsample_concat(padded, x, torch.randn(1, 3, 2, 2, 2)).shape, torch.Size([1, 5, 2, 2, 2])
        )


@pytest.mark.parametrize("kernels", [[[3, 3, 3]] * 4, [[1, 3, 3]] + [[3, 3, 3]] * 3, [[3, 3]] * 4])
def test_unet_forward_in_eval_matches_the_stock_layers(kernels):
    """The whole network: eval + no_grad (fast paths) equals eval with grad (stock layers)."""
    torch.manual_seed(2)
    dims = len(kernels[0])
    in_plane_first = dims == 3 and kernels[0][0] == 1  # CT-like: the first downsampling keeps z
    strides = [[1] * dims] + [[1, 2, 2] if in_plane_first and i == 0 else [2] * dims for i in range(3)]
    params = {"features_per_stage": [8, 16, 32, 32], "kernel_sizes": kernels, "strides": strides}
    net = GenericUNetBuilder().build(params, 2, 3, deep_supervision=False).eval()
    x = torch.randn(1, 2, *([8, 32, 32] if dims == 3 else [32, 32]))
    expected = net(x).detach()
    with torch.inference_mode():
        got = net(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("op", "kernel", "spatial"), CASES[:2] + CASES[3:4])
def test_upsample_concat_under_bf16_autocast_equals_the_stock_layers(op, kernel, spatial):
    torch.manual_seed(3)
    up = op(6, 4, kernel, kernel)
    x = torch.randn(1, 6, *spatial).bfloat16()
    skip = torch.randn(1, 5, *[s * k for s, k in zip(spatial, kernel, strict=True)]).bfloat16()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = torch.cat((up(x), skip), 1)
        got = upsample_concat(up, x, skip)
    assert got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected, rtol=1.6e-2, atol=1e-2)  # bf16: the bias is rounded in once more


@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_in_place_under_bf16_autocast_equals_the_module(affine):
    torch.manual_seed(4)
    norm = nn.InstanceNorm3d(4, affine=affine)
    if affine:
        nn.init.uniform_(norm.weight, 0.5, 1.5)
        nn.init.uniform_(norm.bias, -1.0, 1.0)
    x = (torch.randn(2, 4, 6, 5, 7) * 3 + 2).bfloat16()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = norm(x)
        work = x.clone()
        got = instance_norm_(norm, work)
    assert got.data_ptr() == work.data_ptr() and got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_unet_forward_under_bf16_autocast_matches_the_stock_layers():
    torch.manual_seed(5)
    params = {
        "features_per_stage": [8, 16, 32],
        "kernel_sizes": [[1, 3, 3]] + [[3, 3, 3]] * 2,
        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
    }
    net = GenericUNetBuilder().build(params, 1, 3, deep_supervision=False).eval()
    x = torch.randn(1, 1, 8, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = net(x).detach().float()
        with torch.inference_mode():
            got = net(x).float()
    agree = (got.argmax(1) == expected.argmax(1)).float().mean().item()
    assert agree > 0.999, agree
    torch.testing.assert_close(got, expected, rtol=1e-2, atol=1e-2)


def test_decoder_consumes_the_skips_so_each_is_freed_once_used():
    params = {
        "features_per_stage": [4, 8, 8],
        "kernel_sizes": [[3, 3, 3]] * 3,
        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
    }
    net = GenericUNetBuilder().build(params, 1, 2, deep_supervision=False).eval()
    with torch.inference_mode():
        skips = net.encoder(torch.randn(1, 1, 8, 8, 8))
        assert len(skips) == 3
        out = net.decoder(skips, False)
    assert skips == [] and list(out[0].shape) == [1, 2, 8, 8, 8]
