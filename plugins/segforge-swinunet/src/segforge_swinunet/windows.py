"""Window bookkeeping for Swin attention in any number of spatial dimensions.

Tokens are kept channels-last, ``[B, *resolution, C]``. Attention runs inside
non-overlapping windows of ``window`` tokens per axis (:func:`window_partition`); every
second block first rolls the map by half a window (a cyclic shift), so windows straddle
the previous block's window borders and information flows between them. After the roll,
the windows along the far edge hold tokens that are not neighbours in the image (they
wrapped around); :func:`shifted_window_mask` forbids attention between such tokens, which
is exactly what Swin does.

Windows are never clamped to the feature map: every edge must be a whole number of windows
(the builder's constraints guarantee it). Along an axis whose feature map is exactly one
window wide there is nothing to shift across, so that axis is not shifted
(:func:`shift_sizes`, as Swin disables the shift when the map is no larger than the window).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def window_partition(x: torch.Tensor, window: Sequence[int]) -> torch.Tensor:
    """``[B, *resolution, C]`` -> ``[B * n_windows, prod(window), C]``, windows in raster order per sample."""
    batch, *resolution, channels = x.shape
    dims = len(window)
    split = [batch]
    for edge, w in zip(resolution, window, strict=True):
        split += [edge // w, w]
    order = [0, *(1 + 2 * i for i in range(dims)), *(2 + 2 * i for i in range(dims)), 2 * dims + 1]
    return x.reshape(*split, channels).permute(order).reshape(-1, math.prod(window), channels)


def window_reverse(windows: torch.Tensor, window: Sequence[int], resolution: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``[B * n_windows, N, C]`` -> ``[B, *resolution, C]``."""
    dims = len(window)
    grid = [edge // w for edge, w in zip(resolution, window, strict=True)]
    channels = windows.shape[-1]
    x = windows.reshape(-1, *grid, *window, channels)
    order = [0]
    for i in range(dims):
        order += [1 + i, 1 + dims + i]
    return x.permute(*order, 2 * dims + 1).reshape(x.shape[0], *resolution, channels)


def bias_table_size(window: Sequence[int]) -> int:
    """Rows of the relative-position bias table: every offset ``-(w-1) .. w-1`` per axis."""
    return math.prod(2 * w - 1 for w in window)


def relative_position_index(window: Sequence[int]) -> torch.Tensor:
    """``[N, N]`` index into the bias table for every (query, key) pair of a window's ``N`` tokens.

    The offset ``key - query`` per axis, shifted to be non-negative, is flattened in raster
    order over the ``(2w - 1)`` possible offsets per axis, so pairs with the same offset share
    one learned bias per head.
    """
    axes = [torch.arange(w) for w in window]
    coords = torch.stack(torch.meshgrid(*axes, indexing="ij")).flatten(1)  # [dims, N]
    relative = coords[:, :, None] - coords[:, None, :]  # [dims, N, N]
    index = torch.zeros_like(relative[0])
    for axis, w in enumerate(window):
        index = index * (2 * w - 1) + relative[axis] + (w - 1)
    return index


def shift_sizes(resolution: Sequence[int], window: Sequence[int]) -> tuple[int, ...]:
    """Half a window per axis, or 0 along axes where the map is a single window."""
    return tuple(w // 2 if edge > w else 0 for edge, w in zip(resolution, window, strict=True))


def _region_labels(edge: int, window: int, shift: int, device: torch.device | None) -> torch.Tensor:
    """Per position along one (already rolled) axis: 0 for ordinary windows, 1 / 2 for the two wrapped parts."""
    labels = torch.zeros(edge, dtype=torch.long, device=device)
    if shift:
        labels[edge - window : edge - shift] = 1
        labels[edge - shift :] = 2
    return labels


def shifted_window_mask(
    resolution: Sequence[int], window: Sequence[int], shift: Sequence[int], device: torch.device | None = None
) -> torch.Tensor:
    """``[n_windows, N, N]`` boolean mask, True where a query must NOT attend to a key.

    After rolling the map by ``-shift``, each position gets a region label per axis (see
    :func:`_region_labels`); two tokens may attend to each other only if their labels agree
    on every axis, i.e. they were contiguous in the image before the roll.
    """
    labels = torch.zeros(tuple(resolution), dtype=torch.long, device=device)
    for axis, (edge, w, s) in enumerate(zip(resolution, window, shift, strict=True)):
        view = [1] * len(resolution)
        view[axis] = edge
        labels = labels * 3 + _region_labels(edge, w, s, device).view(view)
    per_window = window_partition(labels[None, ..., None], window).squeeze(-1)  # [n_windows, N]
    return per_window[:, :, None] != per_window[:, None, :]
