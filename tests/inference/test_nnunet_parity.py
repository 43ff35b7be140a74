"""segforge's fp32 sliding window vs nnU-Net v2's ``predict_sliding_window_return_logits``.

Same network, same weights, same input; runs where nnunetv2 is importable (``nox -s peers`` builds
such an environment in .nox/peers).
nnU-Net accumulates in float16 (on the CPU too) with a float16 Gaussian whose tile corners
underflow to the smallest subnormal, so near the image's edges and corners its logits keep only
a few bits; segforge's float32 result differs there and nowhere else. Argmax agreement must be
>= 99.9 % (compiled too), and the float16 accumulator with nnU-Net's map reproduces nnU-Net almost
exactly.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

nnunet_predict = pytest.importorskip("nnunetv2.inference.predict_from_raw_data", reason="nnunetv2 is not installed")

from segforge.inference import sliding_window  # noqa: E402
from segforge.inference.compiled import CompileFallbackWarning  # noqa: E402
from segforge.inference.sliding_window import predict_sliding_window  # noqa: E402
from segforge.networks.generic_unet import GenericUNetBuilder  # noqa: E402

PARAMS = {
    "features_per_stage": [4, 8, 16],
    "kernel_sizes": [[3, 3, 3]] * 3,
    "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
}


def nnunet_logits(net, image, patch, mirror_axes, step=0.5):
    predictor = nnunet_predict.nnUNetPredictor(
        tile_step_size=step, use_gaussian=True, use_mirroring=mirror_axes is not None,
        perform_everything_on_device=False, device=torch.device("cpu"), verbose=False, allow_tqdm=False,
    )  # fmt: skip
    predictor.network = net
    predictor.configuration_manager = SimpleNamespace(patch_size=list(patch))
    predictor.label_manager = SimpleNamespace(num_segmentation_heads=3)
    predictor.allowed_mirroring_axes = mirror_axes
    return predictor.predict_sliding_window_return_logits(torch.from_numpy(image)).float()


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return GenericUNetBuilder().build(PARAMS, 1, 3, deep_supervision=False).eval()


@pytest.mark.parametrize(
    ("shape", "patch", "mirror_axes", "step"),
    [
        pytest.param((64, 96, 80), (16, 24, 20), None, 0.5, marks=pytest.mark.slow),  # 343 tiles: ~1 min in nnU-Net
        ((32, 48, 40), (16, 24, 20), (1, 2), 0.5),
        ((40, 60, 50), (16, 24, 20), (0,), 0.7),
        ((12, 20, 17), (16, 24, 20), (0, 1, 2), 0.5),  # smaller than the patch: padded
    ],
)
def test_fp32_argmax_matches_nnunet(net, shape, patch, mirror_axes, step):
    image = np.random.default_rng(1).normal(size=(1, *shape)).astype(np.float32)
    ref = nnunet_logits(net, image, patch, mirror_axes, step)
    ours = predict_sliding_window(net, image, patch, step_size=step, mirror_axes=mirror_axes, precision="fp32")
    assert ours.shape == ref.shape
    agreement = (ours.argmax(0) == ref.argmax(0)).double().mean().item()
    assert agreement >= 0.999, agreement


def test_compiled_fp32_argmax_matches_nnunet(net):
    """``segforge predict --compile`` keeps the equivalence (the benchmark's fast fp32 mode)."""
    image = np.random.default_rng(1).normal(size=(1, 32, 48, 40)).astype(np.float32)
    ref = nnunet_logits(net, image, (16, 24, 20), (1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileFallbackWarning)  # compiled for real, not the eager fallback
        ours = predict_sliding_window(net, image, (16, 24, 20), mirror_axes=(1, 2), precision="fp32", compile=True)
    assert (ours.argmax(0) == ref.argmax(0)).double().mean().item() >= 0.999


def test_fp16_accumulator_with_nnunets_map_reproduces_nnunet(net, monkeypatch):
    monkeypatch.setattr(sliding_window, "FP16_MAP_FLOOR", 0.0)
    image = np.random.default_rng(2).normal(size=(1, 40, 60, 50)).astype(np.float32)
    ref = nnunet_logits(net, image, (16, 24, 20), None)
    ours = predict_sliding_window(net, image, (16, 24, 20), accumulator_dtype="float16", precision="fp32").float()
    assert (ours.argmax(0) == ref.argmax(0)).double().mean().item() >= 0.9999
    torch.testing.assert_close(ours, ref, atol=0.02, rtol=0.01)
