"""Deep-supervision targets: shapes per scale and torch's nearest-exact picking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segforge.data.ds_targets import downsample_targets, normalize_scales, target_shape
from segforge.errors import ConfigError


def test_shapes_per_scale_and_full_resolution_is_the_same_array():
    seg = np.random.default_rng(0).integers(0, 3, size=(2, 1, 40, 56, 40)).astype(np.int16)
    scales = normalize_scales([[1, 1, 1], [2, 2, 2], [4, 4, 4], [8, 8, 8], [16, 16, 8]], 3)
    out = downsample_targets(seg, scales)
    assert [o.shape for o in out] == [(2, 1, 40, 56, 40), (2, 1, 20, 28, 20), (2, 1, 10, 14, 10), (2, 1, 5, 7, 5),
                                      (2, 1, 2, 4, 5)]  # fmt: skip
    assert out[0] is seg
    assert target_shape((40, 56, 40), (16, 16, 8)) == (2, 4, 5)  # round(2.5) = 2, round(3.5) = 4


@pytest.mark.parametrize("shape", [(1, 1, 40, 56, 40), (3, 1, 33, 17), (1, 1, 7, 12, 9)])
def test_equal_to_torch_nearest_exact(shape):
    seg = np.random.default_rng(1).integers(-1, 4, size=shape).astype(np.int16)
    dims = len(shape) - 2
    for factors in ([2] * dims, [1] + [2] * (dims - 1), [4] * dims, [3] * dims):
        (ours,) = downsample_targets(seg, [factors])
        size = target_shape(shape[2:], factors)
        theirs = torch.nn.functional.interpolate(torch.from_numpy(seg).float(), size, mode="nearest-exact")
        np.testing.assert_array_equal(ours, theirs.numpy().astype(np.int16))


def test_invalid_scales():
    assert normalize_scales(None, 3) is None
    assert normalize_scales([1, 2], 2) == [(1.0, 1.0), (2.0, 2.0)]
    with pytest.raises(ConfigError, match=r"deep_supervision_scales\[1\] = \[0.5, 0.5, 0.5\]: need 3 downsampling"):
        normalize_scales([[1, 1, 1], [0.5, 0.5, 0.5]], 3)
    with pytest.raises(ConfigError, match=r"deep_supervision_scales\[0\] = \[1.0, 1.0\]: need 3"):
        normalize_scales([[1, 1]], 3)
    with pytest.raises(ConfigError, match="empty"):
        normalize_scales([], 3)
