"""Where the tiles of a sliding-window prediction go, and padding images smaller than a tile.

Tile positions follow nnU-Net v2's ``compute_steps_for_sliding_window``: per axis, the number
of tiles is the smallest that keeps neighbouring tiles at most ``step_size * tile`` apart, and
the tiles are then spread evenly so the first starts at 0 and the last ends at the image edge
(positions rounded to whole voxels). Matching it exactly matters: a different grid gives a
different Gaussian blend and so different logits at tile seams.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

from segforge.errors import UsageError


def check_step_size(step_size: float) -> float:
    """``step_size`` if it is in (0, 1], else a UsageError (nnU-Net's ``tile_step_size`` range)."""
    if not 0 < step_size <= 1:
        raise UsageError(
            f"step size must be in (0, 1], got {step_size}",
            hint="0.5 (the default) overlaps tiles by half; 1 means no overlap",
        )
    return float(step_size)


def compute_steps(image_size: Sequence[int], tile_size: Sequence[int], step_size: float = 0.5) -> list[list[int]]:
    """Start positions of the tiles along each axis (the image must be at least as large as the tile).

    Example: an axis of 110 voxels, tiles of 64 and step 0.5 (32 voxels at most) needs 3 tiles,
    evenly spread over the 46 possible start positions: 0, 23, 46.
    """
    check_step_size(step_size)
    if len(image_size) != len(tile_size):
        raise ValueError(f"image size {list(image_size)} and tile size {list(tile_size)} differ in length")
    steps = []
    for size, tile in zip(image_size, tile_size, strict=True):
        if size < tile:
            raise ValueError(f"image size {list(image_size)} is smaller than the tile {list(tile_size)}; pad it first")
        # the ceil of a float division, as nnU-Net computes it (not exact integer arithmetic)
        n = int(math.ceil((size - tile) / (tile * step_size))) + 1
        last = size - tile
        stride = last / (n - 1) if n > 1 else 0.0
        steps.append([int(round(stride * i)) for i in range(n)])
    return steps


def tile_starts(
    image_size: Sequence[int], tile_size: Sequence[int], step_size: float = 0.5
) -> Iterator[tuple[int, ...]]:
    """Every tile's start corner, last axis varying fastest (nnU-Net's order).

    ``tile_size`` may have one axis fewer than ``image_size`` (a 2D network on a 3D image):
    the first image axis is then walked slice by slice.
    """
    extra = len(image_size) - len(tile_size)
    if extra not in (0, 1):
        raise ValueError(f"tile {list(tile_size)} does not fit image {list(image_size)} (at most one axis fewer)")
    steps = compute_steps(image_size[extra:], tile_size, step_size)
    if extra:
        steps = [list(range(image_size[0])), *steps]
    return itertools.product(*steps)


def padding_for(image_size: Sequence[int], min_size: Sequence[int]) -> list[tuple[int, int]]:
    """``(before, after)`` padding per axis so each axis is at least ``min_size`` (trailing axes).

    The image stays centred; an odd amount puts the extra voxel after it (nnU-Net's
    ``pad_nd_image``). ``min_size`` may be shorter than ``image_size``: it then applies to the
    last axes, as a 2D patch applies to the in-plane axes of a 3D image.
    """
    lead = len(image_size) - len(min_size)
    if lead < 0:
        raise ValueError(f"min size {list(min_size)} has more axes than the image {list(image_size)}")
    out = [(0, 0)] * lead
    for size, low in zip(image_size[lead:], min_size, strict=True):
        missing = max(0, low - size)
        out.append((missing // 2, missing - missing // 2))
    return out


def unpad_slices(padded_size: Sequence[int], padding: Sequence[tuple[int, int]]) -> tuple[slice, ...]:
    """The slices that cut the original image out of the padded one."""
    return tuple(slice(before, size - after) for size, (before, after) in zip(padded_size, padding, strict=True))
