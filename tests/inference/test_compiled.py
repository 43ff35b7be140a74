"""``compile=True``: the same blended logits as eager, and eager with one warning where compiling fails."""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from segforge.inference.compiled import CompiledForward, CompileFallbackWarning
from segforge.inference.sliding_window import SlidingWindowPredictor, SlidingWindowSettings


def conv_norm_net(seed: int = 0) -> nn.Module:
    """Conv, instance norm, leaky ReLU, 1x1 head: the pattern inductor fuses in a U-Net stage."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1), nn.InstanceNorm3d(4, affine=True), nn.LeakyReLU(0.01), nn.Conv3d(4, 3, 1)
    ).eval()


def predictor(net: nn.Module, compile_: bool, **kwargs) -> SlidingWindowPredictor:
    return SlidingWindowPredictor(net, SlidingWindowSettings((8, 12, 12), precision="fp32", compile=compile_, **kwargs))


def image(shape=(14, 20, 18)) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)


def record_batches(fn, batches: list[int]):
    def call(x):
        batches.append(x.shape[0])
        return fn(x)

    return call


class Unavailable:
    """Stands in for ``torch.compile(net)`` on a machine without a working compiler."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        raise RuntimeError("compile failed") from OSError("g++: not found\nsecond line")


@pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="torch.compile on the CPU needs a C++ compiler (g++)"
)
def test_compiled_prediction_equals_eager_across_batch_sizes():
    """3 tiles in batches of 2: the last, smaller batch recompiles with a dynamic batch size."""
    net = conv_norm_net()
    eager = predictor(net, False, max_batch_voxels=2 * 8 * 12 * 12).predict_logits(image((14, 12, 12)))
    compiled = predictor(net, True, max_batch_voxels=2 * 8 * 12 * 12)
    batches = []
    compiled.forwards[0].impl.compiled = record_batches(compiled.forwards[0].impl.compiled, batches)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileFallbackWarning)  # a fallback would hide that nothing compiled
        out = compiled.predict_logits(image((14, 12, 12)))
    assert batches == [2, 1]
    assert compiled.forwards[0].impl.failed is None
    torch.testing.assert_close(out, eager, atol=1e-5, rtol=1e-5)


def test_compile_failure_warns_once_then_runs_eagerly(monkeypatch):
    unavailable = Unavailable()
    monkeypatch.setattr(torch, "compile", lambda net, **kwargs: unavailable)
    net = conv_norm_net()
    expected = predictor(net, False).predict_logits(image())
    p = predictor(net, True)
    with pytest.warns(CompileFallbackWarning, match=r"could not compile the network \(OSError: g\+\+: not found\)"):
        out = p.predict_logits(image())
    assert unavailable.calls == 1  # 8 tiles: the first tried to compile, the others ran eagerly
    assert p.forwards[0].impl.failed == "OSError: g++: not found"
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


def test_an_error_of_the_network_itself_is_raised_not_hidden(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda net, **kwargs: Unavailable())
    forward = CompiledForward(nn.Conv3d(2, 1, 1))  # expects 2 channels
    with pytest.raises(RuntimeError, match="expected input"):
        forward(torch.zeros(1, 1, 4, 4, 4))
    assert forward.failed is None


def test_compile_is_off_unless_asked_for():
    net = conv_norm_net()
    assert predictor(net, False).forwards == [net]
    assert SlidingWindowSettings((8, 8, 8)).compile is False
