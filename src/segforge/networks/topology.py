"""U-Net topology from patch size and spacing: nnU-Net v2's ``get_pool_and_conv_props``, reimplemented.

The rules (matching nnU-Net v2's planner, which calls it with ``min_feature_map_size=4`` and no
limit on pools per axis):

* an axis may be downsampled while its current edge is at least ``2 * min_feature_map_size``
  (so the bottleneck edge stays >= ``min_feature_map_size``) and its current spacing is less
  than twice the smallest current spacing among those axes (no pooling of the coarse axis
  of anisotropic data until the others have caught up);
* if only one axis qualifies, it must have an edge of at least ``3 * min_feature_map_size``;
* a stage's kernel is 1 along axes whose spacing is still >= 2x the finest one and becomes 3
  once the axis has caught up (and stays 3); the bottleneck always has 3s;
* the patch is padded up to a multiple of ``2 ** pools`` per axis.

Pure Python on purpose: planners call this in torch-free commands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from segforge.errors import ConfigError


@dataclass(frozen=True)
class Topology:
    """Per-stage strides (first is all ones) and kernel sizes, plus the patch padded to fit them."""

    strides: tuple[tuple[int, ...], ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    patch_size: tuple[int, ...]

    @property
    def n_stages(self) -> int:
        return len(self.strides)

    @property
    def divisors(self) -> tuple[int, ...]:
        return cumulative_divisors(self.strides)


def cumulative_divisors(strides: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """Product of the strides per axis: what every patch edge must be a multiple of."""
    return tuple(math.prod(axis) for axis in zip(*strides, strict=True))


def _poolable_axes(size: list[float], spacing: list[float], n_pools: list[int], min_fm: int, max_pools: int | None):
    axes = [i for i in range(len(size)) if size[i] >= 2 * min_fm]
    if not axes:
        return []
    finest = min(spacing[i] for i in axes)
    axes = [i for i in axes if spacing[i] / finest < 2]
    if max_pools is not None:
        axes = [i for i in axes if n_pools[i] < max_pools]
    if len(axes) == 1 and size[axes[0]] < 3 * min_fm:
        return []
    return axes


def pool_and_conv_props(
    spacing: Sequence[float],
    patch_size: Sequence[int],
    min_feature_map_size: int = 4,
    max_pools_per_axis: int | None = None,
) -> Topology:
    """nnU-Net v2's topology for ``patch_size`` at ``spacing`` (see the module docstring for the rules)."""
    _check_request(spacing, patch_size)
    dims = len(spacing)
    spacing_now, size_now = [float(s) for s in spacing], [float(p) for p in patch_size]
    n_pools, kernel = [0] * dims, [1] * dims
    strides: list[tuple[int, ...]] = [(1,) * dims]
    kernels: list[tuple[int, ...]] = []
    while True:
        axes = _poolable_axes(size_now, spacing_now, n_pools, min_feature_map_size, max_pools_per_axis)
        if not axes:
            break
        finest_overall = min(spacing_now)
        kernel = [3 if k == 3 or spacing_now[d] / finest_overall < 2 else 1 for d, k in enumerate(kernel)]
        for d in axes:
            n_pools[d] += 1
            spacing_now[d] *= 2
            size_now[d] = math.ceil(size_now[d] / 2)
        strides.append(tuple(2 if d in axes else 1 for d in range(dims)))
        kernels.append(tuple(kernel))
    kernels.append((3,) * dims)
    padded = tuple(math.ceil(p / 2**n) * 2**n for p, n in zip(patch_size, n_pools, strict=True))
    return Topology(tuple(strides), tuple(kernels), padded)


def features_per_stage(n_stages: int, base: int = 32, maximum: int = 320) -> list[int]:
    """Channels doubling from ``base`` per stage, capped at ``maximum`` (nnU-Net: 320 in 3D, 512 in 2D)."""
    return [min(maximum, base * 2**s) for s in range(n_stages)]


def _check_request(spacing: Sequence[float], patch_size: Sequence[int]) -> None:
    if len(spacing) != len(patch_size) or len(spacing) not in (2, 3):
        raise ConfigError(
            f"topology request: spacing {list(spacing)} and patch {list(patch_size)} must both have 2 or 3 axes",
            hint="pass the spacing and patch size of the same configuration (2d or 3d)",
        )
    if any(s <= 0 for s in spacing) or any(p < 1 for p in patch_size):
        raise ConfigError(
            f"topology request: spacing {list(spacing)} and patch {list(patch_size)} must be positive",
            hint="check the fingerprint's spacings and the planner's patch size",
        )
