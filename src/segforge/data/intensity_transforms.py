"""Intensity augmentations of one sample ``[C, *spatial]`` (float32, changed in place where possible).

Each function is batchgenerators' augmentation of the same name with the settings nnU-Net
v2 uses, drawing from the ``numpy.random.Generator`` it is given instead of NumPy's global
RNG (so in-process loading is reproducible from the loader's seed and leaves the global RNG
alone). Quirks are kept on purpose, because they are what nnU-Net trains with: the noise
"variance" is used as the standard deviation, factors from ranges straddling 1 are drawn
below or above 1 with equal odds, the gamma transform restores mean and std afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter, spline_filter1d, zoom

from segforge.data.spatial_transform import draw_scale


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def gaussian_noise(data: np.ndarray, rng: np.random.Generator, variance: tuple[float, float]) -> np.ndarray:
    """Add zero-mean Gaussian noise, one strength for all channels (batchgenerators uses it as std)."""
    sigma = _uniform(rng, *variance)
    for c in range(data.shape[0]):
        data[c] += rng.standard_normal(data.shape[1:], dtype=np.float32) * np.float32(sigma)
    return data


def gaussian_blur(
    data: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float], p_per_channel: float
) -> np.ndarray:
    """Blur each channel with probability ``p_per_channel``, with its own isotropic sigma."""
    for c in range(data.shape[0]):
        if rng.random() <= p_per_channel:
            data[c] = gaussian_filter(data[c], _uniform(rng, *sigma), order=0)
    return data


def multiplicative_brightness(
    data: np.ndarray, rng: np.random.Generator, multiplier: tuple[float, float]
) -> np.ndarray:
    """Multiply each channel by its own factor from ``multiplier``."""
    for c in range(data.shape[0]):
        data[c] *= np.float32(rng.uniform(*multiplier))
    return data


def contrast(data: np.ndarray, rng: np.random.Generator, factor_range: tuple[float, float]) -> np.ndarray:
    """Scale each channel's deviation from its mean, then clip to its former range."""
    for c in range(data.shape[0]):
        factor = draw_scale(rng, *factor_range)
        channel = data[c]
        mean, lo, hi = channel.mean(), channel.min(), channel.max()
        channel -= mean
        channel *= np.float32(factor)
        channel += mean
        np.clip(channel, lo, hi, out=channel)
    return data


def simulate_low_resolution(
    data: np.ndarray,
    rng: np.random.Generator,
    zoom_range: tuple[float, float],
    p_per_channel: float,
    ignore_axes: Sequence[int] = (),
) -> np.ndarray:
    """Downsample a channel (nearest) by a random factor and upsample it back (cubic), per channel.

    Same resampling as ``skimage.transform.resize(order, mode="edge", anti_aliasing=False)``
    that batchgenerators uses (``scipy.ndimage.zoom`` on the grid, cubic output clipped to
    the downsampled range; the cubic step evaluated separably). ``ignore_axes`` keep their
    resolution.
    """
    shape = np.asarray(data.shape[1:])
    for c in range(data.shape[0]):
        if rng.random() >= p_per_channel:
            continue
        target = np.round(shape * _uniform(rng, *zoom_range)).astype(int)
        for axis in ignore_axes:
            target[axis] = shape[axis]
        target = np.maximum(target, 1)
        low = zoom(data[c], target / shape, order=0, mode="nearest", grid_mode=True)
        up = cubic_zoom_edge(low, shape)
        np.clip(up, low.min(), low.max(), out=up)
        data[c] = up
    return data


#: scipy pads this much (edge mode) before prefiltering a spline for mode "nearest"
_SCIPY_SPLINE_PAD = 12


def cubic_zoom_edge(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``scipy.ndimage.zoom(x, order=3, mode="nearest", grid_mode=True)`` to ``shape``, done separably.

    A cubic spline is a tensor product, so on a grid of output points it can be evaluated one
    axis at a time (4 taps per axis) instead of scipy's 64 taps per voxel, and an axis that
    keeps its size needs neither prefilter nor evaluation (sampling the spline at its knots
    gives the data back). Equal to scipy's result to rounding; padding as scipy pads.
    """
    axes = [a for a, (n_in, n_out) in enumerate(zip(x.shape, shape, strict=True)) if n_in != n_out]
    if not axes:
        return np.array(x, dtype=np.float32)
    pad = [(_SCIPY_SPLINE_PAD, _SCIPY_SPLINE_PAD) if a in axes else (0, 0) for a in range(x.ndim)]
    out = np.pad(x, pad, mode="edge").astype(np.float64)
    for axis in axes:
        spline_filter1d(out, 3, axis=axis, output=out, mode="nearest")
    for axis in axes:
        n_in, n_out = x.shape[axis], shape[axis]
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5 + _SCIPY_SPLINE_PAD  # grid_mode, in the padded array
        base = np.floor(pos)
        t = pos - base
        start = base.astype(np.intp) - 1
        weights = ((1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6, t**3 / 6)
        moved = np.moveaxis(out, axis, -1)
        acc = moved[..., start] * weights[0]
        for k in range(1, 4):
            acc += moved[..., start + k] * weights[k]
        out = np.moveaxis(acc, -1, axis)
    return np.ascontiguousarray(out, dtype=np.float32)


def gamma(
    data: np.ndarray, rng: np.random.Generator, gamma_range: tuple[float, float], invert: bool, eps: float = 1e-7
) -> np.ndarray:
    """Per channel: ``((x - min) / range) ** gamma`` rescaled, mean and std restored; optionally on ``-x``."""
    if invert:
        np.negative(data, out=data)
    for c in range(data.shape[0]):
        channel = data[c]
        mean, std = channel.mean(), channel.std()
        g = draw_scale(rng, *gamma_range)
        lo = channel.min()
        span = float(channel.max() - lo) + eps
        out = np.power((channel - lo) / np.float32(span), np.float32(g)) * np.float32(span) + lo
        out -= out.mean()
        out *= std / (out.std() + 1e-8)
        out += mean
        data[c] = out
    if invert:
        np.negative(data, out=data)
    return data


def mirror(
    data: np.ndarray, seg: np.ndarray, rng: np.random.Generator, axes: Sequence[int], p_per_axis: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Flip image and label along each spatial axis of ``axes`` with probability ``p_per_axis``."""
    flip = tuple(a + 1 for a in axes if rng.random() < p_per_axis)
    if not flip:
        return data, seg
    return np.flip(data, axis=flip), np.flip(seg, axis=flip)
