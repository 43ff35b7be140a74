"""Sliding-window prediction on tiny networks whose exact output is known."""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from segforge.errors import UsageError
from segforge.inference import sliding_window
from segforge.inference.gaussian import gaussian_map
from segforge.inference.sliding_window import (
    SlidingWindowPredictor,
    SlidingWindowSettings,
    predict_sliding_window,
    resolve_precision,
)

#: exact comparisons need plain fp32 (``auto`` is bf16 on CPUs with native bf16)
fp32_window = partial(predict_sliding_window, precision="fp32")


def pointwise_net(cin=2, cout=3, seed=0, dims=3):
    """A 1x1 conv with fixed weights: each voxel's logits depend on that voxel only (and mirror-equivariant)."""
    torch.manual_seed(seed)
    conv = (nn.Conv3d if dims == 3 else nn.Conv2d)(cin, cout, 1)
    return conv.eval()


class CallCounter(nn.Module):
    """Outputs the constant k (1, 2, ...) for the k-th tile it sees: shows how tiles are blended."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        outs = []
        for _ in range(x.shape[0]):
            self.calls += 1
            outs.append(torch.full((1, *x.shape[2:]), float(self.calls)))
        return torch.stack(outs)


class Ramp(nn.Module):
    """Logit = the voxel's index along the last axis *within the tile* (not mirror-equivariant)."""

    def forward(self, x):
        ramp = torch.arange(x.shape[-1], dtype=torch.float32)
        return ramp.expand(x.shape[0], 1, *x.shape[2:]).clone()


class DeepSupervised(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return [self.net(x), torch.zeros(1)]


def test_pointwise_net_gives_its_whole_image_output_everywhere():
    net = pointwise_net()
    image = torch.randn(2, 20, 33, 41)
    out = fp32_window(net, image, (16, 16, 16), step_size=0.5)
    expected = net(image[None])[0]
    assert out.shape == (3, 20, 33, 41) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=2e-6, rtol=1e-5)


def test_numpy_input_and_small_image_padded_then_cropped_back():
    net = pointwise_net()
    image = np.random.default_rng(0).normal(size=(2, 10, 12, 9)).astype(np.float32)
    out = fp32_window(net, image, (16, 16, 16))
    assert out.shape == (3, 10, 12, 9)
    torch.testing.assert_close(out, net(torch.from_numpy(image)[None])[0], atol=2e-6, rtol=1e-5)


def test_padding_is_centred_zero():
    """The padded voxels are zeros around the image: a net returning its input shows where the image sat."""
    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen["x"] = x.clone()
            return x

    image = torch.ones(1, 5, 16, 16)
    fp32_window(Spy(), image, (8, 16, 16))
    x = seen["x"][0, 0]
    assert x.shape == (8, 16, 16)
    assert x[:1].sum() == 0 and x[6:].sum() == 0 and (x[1:6] == 1).all()  # 3 voxels missing: 1 before, 2 after


def test_overlapping_tiles_are_averaged_without_gaussian():
    image = torch.zeros(1, 8, 8, 12)  # along x: tiles at 0 and 4 (patch 8, step 4)
    # CallCounter answers the k-th tile with k whatever its input: constant tiles must not be reused
    out = fp32_window(CallCounter(), image, (8, 8, 8), use_gaussian=False, reuse_constant_tiles=False)[0]
    assert (out[..., :4] == 1).all() and (out[..., 4:8] == 1.5).all() and (out[..., 8:] == 2).all()


def test_overlapping_tiles_are_blended_with_the_gaussian_weights():
    image = torch.zeros(1, 8, 8, 12)
    out = fp32_window(CallCounter(), image, (8, 8, 8), reuse_constant_tiles=False)[0]
    g = torch.from_numpy(gaussian_map((8, 8, 8)))
    w1, w2 = g[..., 4:], g[..., :4]  # weights of tile 1 and tile 2 on the shared voxels x = 4..7
    expected = (1 * w1 + 2 * w2) / (w1 + w2)
    torch.testing.assert_close(out[..., 4:8], expected)
    assert (out[..., :4] == 1).all() and (out[..., 8:] == 2).all()


def test_mirroring_leaves_a_mirror_equivariant_net_unchanged():
    net = pointwise_net()
    image = torch.randn(2, 12, 20, 18)
    plain = fp32_window(net, image, (8, 16, 16))
    mirrored = fp32_window(net, image, (8, 16, 16), mirror_axes=(0, 1, 2))
    torch.testing.assert_close(mirrored, plain, atol=2e-6, rtol=1e-5)


def test_a_tiles_passes_are_summed_in_one_buffer_reused_for_every_tile():
    """Mirrored and ensembled: each tile's passes sum into one kept buffer; every tile still gets its own sum."""
    nets = [pointwise_net(seed=0), pointwise_net(seed=1)]
    image = torch.randn(2, 12, 20, 18)
    settings = SlidingWindowSettings(
        (8, 16, 16), precision="fp32", mirror_axes=(0, 2), reuse_constant_tiles=False, max_batch_voxels=8 * 16 * 16
    )
    predictor = SlidingWindowPredictor(nets, settings)
    buffers = []
    original = predictor._pass_sum
    predictor._pass_sum = lambda first: buffers.append(original(first).data_ptr()) or predictor._pass_sums[: len(first)]
    mirrored = predictor.predict_logits(image)
    assert len(buffers) > 1 and len(set(buffers)) == 1 and predictor._pass_sums is None  # one buffer, freed after
    plain = (fp32_window(nets[0], image, (8, 16, 16)) + fp32_window(nets[1], image, (8, 16, 16))) / 2
    torch.testing.assert_close(mirrored, plain, atol=2e-6, rtol=1e-5)


def test_mirroring_averages_flipped_back_predictions():
    image = torch.zeros(1, 4, 4, 8)  # one tile
    plain = fp32_window(Ramp(), image, (4, 4, 8))
    assert plain[0, 0, 0].tolist() == list(range(8))
    mirrored = fp32_window(Ramp(), image, (4, 4, 8), mirror_axes=(2,))
    assert torch.allclose(mirrored, torch.full_like(mirrored, 3.5))  # mean of x and 7 - x
    other_axes = fp32_window(Ramp(), image, (4, 4, 8), mirror_axes=(0, 1))
    torch.testing.assert_close(other_axes, plain)  # the ramp is constant along the mirrored axes


def test_ensemble_averages_networks():
    a, b = pointwise_net(seed=1), pointwise_net(seed=2)
    image = torch.randn(2, 10, 20, 20)
    out = fp32_window([a, b], image, (8, 16, 16))
    expected = (a(image[None]) + b(image[None]))[0] / 2
    torch.testing.assert_close(out, expected, atol=2e-6, rtol=1e-5)


def test_2d_network_on_3d_image_predicts_slice_by_slice():
    net = pointwise_net(dims=2)
    image = torch.randn(2, 5, 20, 24)
    out = fp32_window(net, image, (16, 16), mirror_axes=(0, 1))
    expected = net(image.permute(1, 0, 2, 3)).permute(1, 0, 2, 3)
    assert out.shape == (3, 5, 20, 24)
    torch.testing.assert_close(out, expected, atol=2e-6, rtol=1e-5)


def test_batching_tiles_does_not_change_the_result():
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.LeakyReLU(), nn.Conv3d(4, 2, 3, padding=1)).eval()
    image = torch.randn(1, 20, 24, 28)
    one = fp32_window(net, image, (8, 8, 8), max_batch_voxels=1, mirror_axes=(0, 1))
    many = fp32_window(net, image, (8, 8, 8), max_batch_voxels=2**20, mirror_axes=(0, 1))
    torch.testing.assert_close(one, many, atol=1e-5, rtol=1e-5)


def test_deep_supervision_output_uses_full_resolution_logits():
    net = pointwise_net()
    image = torch.randn(2, 8, 8, 8)
    out = fp32_window(DeepSupervised(net), image, (8, 8, 8))
    torch.testing.assert_close(out, net(image[None])[0], atol=2e-6, rtol=1e-5)


def test_bf16_autocast_and_fp16_accumulator_stay_close():
    net = pointwise_net()
    image = torch.randn(2, 12, 20, 20)
    ref = fp32_window(net, image, (8, 16, 16))
    bf16 = fp32_window(net, image, (8, 16, 16), precision="bf16")
    half = fp32_window(net, image, (8, 16, 16), accumulator_dtype="float16")
    assert bf16.dtype == torch.float32 and half.dtype == torch.float16
    torch.testing.assert_close(bf16, ref, atol=0.05, rtol=0.02)
    torch.testing.assert_close(half.float(), ref, atol=0.01, rtol=0.01)


def test_progress_reports_every_tile():
    calls = []
    settings = SlidingWindowSettings((8, 8, 8), max_batch_voxels=1, precision="fp32")
    SlidingWindowPredictor(pointwise_net(), settings).predict_logits(
        torch.randn(2, 8, 8, 12), lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 2), (2, 2)]


def test_settings_validation():
    with pytest.raises(UsageError, match="fp16 autocast needs a CUDA device"):
        SlidingWindowPredictor(pointwise_net(), SlidingWindowSettings((8, 8, 8), precision="fp16"))
    with pytest.raises(UsageError, match="mirror axes \\[3\\] do not fit a 3D patch"):
        SlidingWindowSettings((8, 8, 8), mirror_axes=(3,))
    with pytest.raises(UsageError, match="unknown precision"):
        SlidingWindowSettings((8, 8, 8), precision="int8")


def test_auto_precision(monkeypatch):
    monkeypatch.setattr(sliding_window, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(sliding_window, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", torch.device("cpu")) is None
    assert resolve_precision("auto", torch.device("cuda")) == torch.float16
    assert resolve_precision("fp32", torch.device("cuda")) is None


def test_heap_reuse_is_restored_after_prediction():
    from segforge.inference import allocator

    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(allocator._depth)
            return x

    # the predictor's first pass runs with glibc's defaults (the libraries' per-thread caches are made then),
    # every later one with the heap kept, on this image and the next; after each image the defaults are back
    kept = 1 if allocator.heap_reuse_available() else 0
    settings = SlidingWindowSettings(
        (8, 8, 8), precision="fp32", use_gaussian=False, reuse_constant_tiles=False, max_batch_voxels=512
    )
    predictor = SlidingWindowPredictor(Probe(), settings)
    predictor.predict_logits(torch.rand(1, 8, 8, 16))  # three tiles, one per pass
    assert seen == [0, kept, kept] and allocator._depth == 0
    predictor.predict_logits(torch.rand(1, 8, 8, 8))
    assert seen == [0, kept, kept, kept] and allocator._depth == 0
    fp32_window(Probe(), torch.rand(1, 8, 8, 16), (8, 8, 8), reuse_memory=False, max_batch_voxels=512)
    assert seen[-3:] == [0, 0, 0]
    # a mirrored tile is several passes: only the first runs before the heap is kept
    mirrored = SlidingWindowSettings(
        (8, 8, 8), precision="fp32", mirror_axes=(0, 1), reuse_constant_tiles=False, max_batch_voxels=512
    )
    seen.clear()
    SlidingWindowPredictor(Probe(), mirrored).predict_logits(torch.rand(1, 8, 8, 8))
    assert seen == [0, kept, kept, kept] and allocator._depth == 0


class HalfResolution(nn.Module):
    """A network that forgot its last upsampling: logits at half the patch size."""

    def forward(self, x):
        return torch.zeros(x.shape[0], 2, *(s // 2 for s in x.shape[2:]))


class NamedOutputs(nn.Module):
    def forward(self, x):
        return {"logits": torch.zeros(x.shape[0], 2, *x.shape[2:])}


@pytest.mark.parametrize(
    ("net", "got"),
    [(HalfResolution(), "returned shape [1, 2, 4, 4, 4]"), (NamedOutputs(), "returned a dict")],
)
def test_a_network_returning_the_wrong_shape_is_named_with_the_fix(net, got):
    from segforge.errors import SegforgeError

    with pytest.raises(SegforgeError, match=rf"network {type(net).__name__} {re.escape(got)} for an input batch of "
                       r"shape \[1, 1, 8, 8, 8\]") as info:  # fmt: skip
        fp32_window(net, np.zeros((1, 8, 8, 8), np.float32), (8, 8, 8))
    assert "[batch, classes, *patch]" in info.value.hint


def test_auto_precision_never_picks_bf16_without_native_support_or_when_disabled(monkeypatch):
    from segforge import hardware

    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)  # an AVX2-only CPU: feature flags off
    assert resolve_precision("auto", cpu) is None
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == torch.bfloat16
    monkeypatch.setenv("SEGFORGE_DISABLE_BF16", "1")  # behave as the AVX2-only CPU on a bf16 machine
    assert resolve_precision("auto", cpu) is None
