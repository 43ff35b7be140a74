"""Deep-supervision targets: the label patch at the resolution of each network output.

A U-Net with deep supervision returns one logit map per decoder level; the loss compares
each with the label downsampled to that level. Networks report the levels as
``deep_supervision_scales``: per-axis *downsampling factors* relative to the input, full
resolution first (``[[1, 1, 1], [2, 2, 2], [4, 4, 4], ...]``); nnU-Net's trainer writes the
same as fractions (``1 / factor``). The label is downsampled with nearest-neighbour picking
in PyTorch's ``nearest-exact`` convention (output ``i`` takes input ``floor((i + 0.5) * in /
out)``), which is what nnU-Net v2's ``DownsampleSegForDSTransform`` does, here as plain
index selection: no interpolation, no float copies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segforge.errors import ConfigError


def normalize_scales(scales: Sequence[Sequence[float]] | None, dims: int) -> list[tuple[float, ...]] | None:
    """Validate network ``deep_supervision_scales`` (factors >= 1, one per spatial axis)."""
    if scales is None:
        return None
    out = []
    for i, scale in enumerate(scales):
        factors = tuple(float(f) for f in (scale if isinstance(scale, Sequence) else [scale] * dims))
        if len(factors) != dims or any(f < 1 for f in factors):
            raise ConfigError(
                f"deep_supervision_scales[{i}] = {list(factors)}: need {dims} downsampling factors >= 1",
                hint="pass the network's `deep_supervision_scales` (factors relative to the input, full resolution "
                "first)",
            )
        out.append(factors)
    if not out:
        raise ConfigError("deep_supervision_scales is empty", hint="pass None to train without deep supervision")
    return out


def target_shape(patch: Sequence[int], factors: Sequence[float]) -> tuple[int, ...]:
    """Spatial shape of the target at downsampling ``factors`` (``round(patch / factor)``)."""
    return tuple(max(1, round(p / f)) for p, f in zip(patch, factors, strict=True))


def _nearest_exact(n_in: int, n_out: int) -> np.ndarray:
    return np.minimum(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.intp), n_in - 1)


def downsample_targets(seg: np.ndarray, scales: Sequence[Sequence[float]]) -> list[np.ndarray]:
    """``seg`` [B, K, *spatial] at each scale (the same array object where the factors are all 1)."""
    spatial = seg.shape[2:]
    out = []
    for factors in scales:
        shape = target_shape(spatial, factors)
        if tuple(shape) == tuple(spatial):
            out.append(seg)
            continue
        picked = seg
        for axis, (n_in, n_out) in enumerate(zip(spatial, shape, strict=True)):
            if n_in != n_out:
                picked = np.take(picked, _nearest_exact(n_in, n_out), axis=axis + 2)
        out.append(np.ascontiguousarray(picked))
    return out
