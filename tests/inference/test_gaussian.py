"""The Gaussian importance map: nnU-Net's compute_gaussian definition and its properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from segforge.inference.gaussian import gaussian_map, gaussian_tensor


def nnunet_style_map(tile, scale=1.0):
    """The definition spelled out: filter a unit impulse with sigma = edge / 8, scale the max."""
    impulse = np.zeros(tile)
    impulse[tuple(t // 2 for t in tile)] = 1
    out = gaussian_filter(impulse, [t / 8 for t in tile], 0, mode="constant", cval=0)
    return out / out.max() * scale


@pytest.mark.parametrize("tile", [(16, 20, 12), (40, 56, 40), (9, 9)])
def test_matches_filtered_impulse(tile):
    ours = gaussian_map(tile, dtype="float64")
    ref = nnunet_style_map(tile)
    nonzero = ref > 0
    np.testing.assert_allclose(ours[nonzero], ref[nonzero], rtol=1e-12)


def test_max_is_one_at_the_centre_voxel_and_no_zeros():
    g = gaussian_map((16, 20, 12))
    assert g.dtype == np.float32
    assert g.max() == 1.0 and g[8, 10, 6] == 1.0
    assert g.min() > 0


def test_values_that_underflow_take_the_smallest_nonzero_value():
    # truncation at 4 sigma = edge / 2 keeps the whole tile in float64; fp16 corners underflow to 0
    exact = gaussian_map((96, 160, 128), dtype="float64") * 10
    g = gaussian_map((96, 160, 128), value_scaling_factor=10, dtype="float16")
    underflow = exact.astype(np.float16) == 0
    assert underflow.sum() > 1000
    smallest = g[~underflow].min()
    assert (g[underflow] == smallest).all() and smallest > 0


def test_symmetric_for_odd_edges_and_separable():
    g = gaussian_map((9, 13), dtype="float64")
    np.testing.assert_allclose(g, g[::-1, ::-1])
    np.testing.assert_allclose(g, np.outer(g[:, 6], g[4, :]), rtol=1e-12)


def test_fp16_tensor_scaled_by_ten_has_no_zeros():
    g = gaussian_tensor((96, 160, 128), dtype=torch.float16, value_scaling_factor=10)
    assert g.dtype == torch.float16
    assert float(g.max()) == 10.0
    assert float(g.min()) > 0  # corners underflow in fp16 and are replaced by the smallest nonzero value


def test_bfloat16_tensor():
    g = gaussian_tensor((8, 8), dtype=torch.bfloat16)
    assert g.dtype == torch.bfloat16 and float(g.min()) > 0 and float(g.max()) == 1.0
