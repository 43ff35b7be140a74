"""Test-time mirroring: predict flipped copies of a tile and average the flipped-back logits.

nnU-Net v2 trains with mirroring along every spatial axis it allows and, at test time,
averages the prediction of the tile with those of all ``2**k - 1`` non-empty combinations of
flips over the ``k`` allowed axes (8 forward passes per tile in 3D). This costs ``2**k``
times the compute for an ensemble that usually gains a fraction of a Dice point (BASELINES:
0.84 / 0.83 vs 0.82 / 0.82 on hippocampus), which is why ``segforge predict --no-tta`` exists and
why the axes can be limited (``mirror_axes``), e.g. to the in-plane axes of anisotropic data.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from segforge.errors import UsageError


def mirror_combinations(axes: Sequence[int] | None) -> list[tuple[int, ...]]:
    """The flips to average, the identity ``()`` first, then nnU-Net's order (singles, pairs, ...)."""
    if not axes:
        return [()]
    axes = tuple(int(a) for a in axes)
    return [(), *(c for r in range(1, len(axes) + 1) for c in itertools.combinations(axes, r))]


def check_mirror_axes(axes: Sequence[int] | None, dims: int) -> tuple[int, ...] | None:
    """Validate spatial mirror axes (0-based, within ``dims``); None or empty means no mirroring."""
    if not axes:
        return None
    out = tuple(sorted({int(a) for a in axes}))
    if out[0] < 0 or out[-1] >= dims:
        raise UsageError(
            f"mirror axes {list(axes)} do not fit a {dims}D patch (valid: 0..{dims - 1})",
            hint="give spatial axes of the patch, e.g. 0 1 2 for 3D",
        )
    return out


def tensor_axes(spatial_axes: tuple[int, ...]) -> list[int]:
    """Spatial patch axes as axes of a ``[batch, channel, *spatial]`` tensor."""
    return [a + 2 for a in spatial_axes]
