"""Winograd 3x3x3 convolutions equal the direct ones, apply only where they should, and step aside when unavailable."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from segforge.networks import winograd
from segforge.networks.generic_unet import GenericUNetBuilder

needs_kernels = pytest.mark.skipif(not winograd.available(), reason="no C compiler to build the Winograd kernels")


@pytest.fixture
def small_layers(monkeypatch):
    monkeypatch.setattr(winograd, "MIN_MACS", 0)


@needs_kernels
@pytest.mark.parametrize(
    ("c_in", "c_out", "spatial", "bias", "batch"),
    [
        (8, 16, (9, 10, 11), True, 1),
        (16, 8, (8, 8, 8), False, 2),
        (24, 8, (5, 4, 13), True, 1),
        (8, 8, (1, 3, 2), True, 1),
    ],
)
def test_equals_the_direct_convolution(small_layers, c_in, c_out, spatial, bias, batch):
    torch.manual_seed(0)
    conv = nn.Conv3d(c_in, c_out, 3, padding=1, bias=bias)
    x = torch.randn(batch, c_in, *spatial)
    with torch.inference_mode():
        assert winograd.eligible(conv, x)
        got = winograd.winograd_conv3d(conv, x)
        expected = F.conv3d(x, conv.weight, conv.bias, 1, 1)
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * scale)  # F(4,3) rounds more than a direct sum


@needs_kernels
def test_slabs_bound_memory_and_cover_the_volume(small_layers, monkeypatch):
    monkeypatch.setattr(winograd, "SLAB_ELEMENTS", 216 * 3 * 3 * 16)  # one row of 4-voxel blocks per slab
    torch.manual_seed(1)
    conv = nn.Conv3d(16, 8, 3, padding=1)
    x = torch.randn(1, 16, 14, 12, 10)
    with torch.inference_mode():
        got = winograd.conv3d(conv, x)
        expected = F.conv3d(x, conv.weight, conv.bias, 1, 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * expected.abs().max().item())


@needs_kernels
def test_weight_updates_are_seen(small_layers):
    conv = nn.Conv3d(8, 8, 3, padding=1)
    x = torch.randn(1, 8, 4, 4, 4)
    with torch.no_grad():
        first = winograd.conv3d(conv, x)
        conv.weight.mul_(2.0)  # in place: same storage, new version
        second = winograd.conv3d(conv, x)
        expected = F.conv3d(x, conv.weight, conv.bias, 1, 1)
    assert not torch.allclose(first, second)
    torch.testing.assert_close(second, expected, rtol=0, atol=1e-4 * expected.abs().max().item())


LAYERS = {  # name: (conv, input) that must stay direct
    "stride 2": (nn.Conv3d(8, 8, 3, stride=2, padding=1), (1, 8, 16, 16, 16)),
    "1x3x3 kernel": (nn.Conv3d(8, 8, (1, 3, 3), padding=(0, 1, 1)), (1, 8, 16, 16, 16)),
    "6 channels": (nn.Conv3d(6, 8, 3, padding=1), (1, 6, 16, 16, 16)),
    "2D": (nn.Conv2d(8, 8, 3, padding=1), (1, 8, 16, 16)),
    "dilated": (nn.Conv3d(8, 8, 3, padding=2, dilation=2), (1, 8, 16, 16, 16)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_other_layers_stay_direct(small_layers, name):
    conv, shape = LAYERS[name]
    x = torch.randn(*shape)
    with torch.no_grad():
        assert not winograd.eligible(conv, x)
        assert torch.equal(winograd.conv3d(conv, x), conv(x))


def test_not_under_autograd_autocast_or_below_the_size_that_pays(monkeypatch):
    conv, x = nn.Conv3d(8, 8, 3, padding=1), torch.randn(1, 8, 16, 16, 16)
    assert not winograd.eligible(conv, x)  # grad mode: training sees the stock layer
    with torch.no_grad():
        assert not winograd.eligible(conv, x)  # 28 M multiply-adds < MIN_MACS
        monkeypatch.setattr(winograd, "MIN_MACS", 0)
        assert winograd.eligible(conv, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not winograd.eligible(conv, x)


def test_the_switch_and_a_missing_compiler_leave_direct_convolutions(monkeypatch, small_layers, tmp_path):
    conv = nn.Conv3d(8, 8, 3, padding=1)
    x = torch.randn(1, 8, 8, 8, 8)
    monkeypatch.setenv(winograd.ENV, "0")
    with torch.no_grad():
        assert not winograd.available()
        assert torch.equal(winograd.conv3d(conv, x), conv(x))
    monkeypatch.delenv(winograd.ENV)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path / "cache"))
    winograd._library.cache_clear()
    try:
        with torch.no_grad():
            assert not winograd.available()
            assert torch.equal(winograd.conv3d(conv, x), conv(x))
        assert not list((tmp_path / "cache").rglob("*.so"))
    finally:
        winograd._library.cache_clear()


@needs_kernels
def test_build_is_cached_per_source_and_flags(tmp_path):
    first = winograd.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert winograd.build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "kernels").iterdir()] == [first.name]  # no temporary left behind


@needs_kernels
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_openmp_and_pthread_builds_agree(small_layers, monkeypatch, tmp_path, threads):
    """On torch's OpenMP pool (the default where libgomp is loaded) and on POSIX threads: the same numbers."""
    runtime = winograd.loaded_openmp_runtime()
    if runtime is None:
        pytest.skip("no GNU OpenMP runtime loaded by torch in this process (not a Linux libgomp build)")
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path))
    torch.manual_seed(3)
    conv = nn.Conv3d(16, 8, 3, padding=1)
    x = torch.randn(1, 16, 10, 9, 7)
    results = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for candidate in (runtime, None):
            monkeypatch.setattr(winograd, "_library", lambda candidate=candidate: winograd._load(candidate))
            with torch.inference_mode():
                results.append(winograd.winograd_conv3d(conv, x))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(results[0], results[1])  # same arithmetic, only the threads differ
    expected = F.conv3d(x, conv.weight, conv.bias, 1, 1)
    torch.testing.assert_close(results[0], expected, rtol=0, atol=1e-4 * expected.abs().max().item())
    assert len(list((tmp_path / "kernels").glob("winograd-*.so"))) == 2  # one library per runtime


@needs_kernels
def test_falls_back_to_posix_threads_when_the_openmp_build_fails(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path))
    monkeypatch.setattr(winograd, "loaded_openmp_runtime", lambda: tmp_path / "libgomp-missing.so.1")
    winograd._library.cache_clear()
    try:
        assert winograd.available()  # the OpenMP link failed (no such runtime); the pthread build serves
        assert [p.name for p in (tmp_path / "kernels").glob("*.so")] == [winograd.build(tmp_path).name]
    finally:
        winograd._library.cache_clear()


@needs_kernels
def test_unet_at_inference_matches_the_stock_layers(small_layers, monkeypatch):
    direct = winograd.winograd_conv3d
    torch.manual_seed(2)
    params = {
        "features_per_stage": [8, 16, 32],
        "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
    }
    net = GenericUNetBuilder().build(params, 1, 3, deep_supervision=False).eval()
    x = torch.randn(1, 1, 8, 32, 32)
    expected = net(x).detach()  # grad mode: stock layers, direct convolutions
    calls = []
    monkeypatch.setattr(winograd, "winograd_conv3d", lambda conv, y: calls.append(conv) or direct(conv, y))
    with torch.inference_mode():
        got = net(x)
    assert len(calls) == 4  # the stride-1 3x3x3 convs: 2nd of encoder stages 1 and 2, both of decoder level 1
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
