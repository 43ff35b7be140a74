"""The Gaussian importance map that weights each tile's logits before they are blended.

Voxels near a tile's border see little context, so their logits are less reliable; weighting
by a Gaussian centred on the tile (sigma = 1/8 of the tile edge per axis) lets the tile whose
centre is closest dominate at every voxel. The map is nnU-Net v2's ``compute_gaussian``:
scipy's Gaussian filter (truncated at 4 sigma) of a unit impulse at voxel ``edge // 2`` of each
axis, scaled so its maximum is ``value_scaling_factor``, cast, and with every zero (beyond the
truncation radius, or underflowed in fp16) replaced by the smallest nonzero value, because a
voxel covered only by zero weights would divide 0 by 0.

The impulse response of a separable filter is the outer product of 1D responses, which is
how it is computed here: ``ndim`` short 1D filters instead of filtering a whole float64 volume.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: nnU-Net's sigma as a fraction of the tile edge
SIGMA_SCALE = 1.0 / 8


def gaussian_profile(edge: int, sigma_scale: float = SIGMA_SCALE) -> np.ndarray:
    """The 1D impulse response (float64) of one axis of the map, before normalisation."""
    from scipy.ndimage import gaussian_filter1d

    impulse = np.zeros(edge, dtype=np.float64)
    impulse[edge // 2] = 1.0
    return gaussian_filter1d(impulse, edge * sigma_scale, mode="constant", cval=0.0)


@functools.lru_cache(maxsize=8)
def _map_float64(tile_size: tuple[int, ...], sigma_scale: float) -> np.ndarray:
    profiles = [gaussian_profile(edge, sigma_scale) for edge in tile_size]
    out = profiles[0]
    for p in profiles[1:]:
        out = np.multiply.outer(out, p)
    out = out / out.max()
    out.flags.writeable = False
    return out


def gaussian_map(
    tile_size: Sequence[int],
    sigma_scale: float = SIGMA_SCALE,
    value_scaling_factor: float = 1.0,
    dtype: str = "float32",
) -> np.ndarray:
    """The importance map as a numpy array of ``dtype``, max ``value_scaling_factor``, no zeros."""
    out = (_map_float64(tuple(int(t) for t in tile_size), float(sigma_scale)) * value_scaling_factor).astype(dtype)
    zero = out == 0
    if zero.any():
        out[zero] = out[~zero].min()
    return out


def gaussian_tensor(
    tile_size: Sequence[int],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    sigma_scale: float = SIGMA_SCALE,
    value_scaling_factor: float = 1.0,
) -> torch.Tensor:
    """The map as a torch tensor on ``device`` (zeros replaced *after* the cast, as nnU-Net does)."""
    import torch

    dtype = dtype or torch.float32
    name = str(dtype).removeprefix("torch.")
    if name == "bfloat16":  # numpy has no bfloat16: cast in torch, then fix zeros
        out = torch.from_numpy(gaussian_map(tile_size, sigma_scale, value_scaling_factor, "float32")).to(dtype)
        zero = out == 0
        if bool(zero.any()):
            out[zero] = out[~zero].min()
        return out.to(device)
    return torch.from_numpy(gaussian_map(tile_size, sigma_scale, value_scaling_factor, name)).to(device)
