"""How many tile evaluations a prediction run will do, from the cases' headers: what ``--backend auto`` weighs.

A tile evaluation is one tile through one network in one mirror flip. Per case: the tiles of
its image at the model's spacing (as the sliding window lays them out, step and padding
included) times the flips times the folds. Headers only (no image is read); a case whose
header cannot be read counts as the median of the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from segforge.inference.tiling import padding_for, tile_starts
from segforge.io.header_geometry import header_geometry_for


def resampled_shape(
    shape: Sequence[int], spacing: Sequence[float], target: Sequence[float], transpose: Sequence[int]
) -> tuple[int, ...]:
    """``shape`` at the model's ``target`` spacing, in the plans' transposed order (2D plans: the last axes)."""
    order = [shape[t] for t in transpose] if len(transpose) == len(shape) else list(shape)
    spacing_t = [spacing[t] for t in transpose] if len(transpose) == len(spacing) else list(spacing)
    last = zip(order[-len(target) :], spacing_t[-len(target) :], target, strict=True)
    sizes = [max(1, round(n * s / t)) for n, s, t in last]
    return (*order[: len(order) - len(target)], *sizes)


def tiles_for(shape: Sequence[int], patch: Sequence[int], step_size: float) -> int:
    """Tiles the sliding window lays over ``shape`` (a leading extra axis is sliced, as 2D nets are run)."""
    extra = len(shape) - len(patch)
    spatial = tuple(shape[extra:])
    padded = tuple(s + a + b for s, (a, b) in zip(spatial, padding_for(spatial, tuple(patch)), strict=True))
    return math.prod(shape[:extra]) * sum(1 for _ in tile_starts(padded, tuple(patch), step_size))


def expected_evaluations(jobs: Sequence[Any], model: Any, step_size: float, flips: int, folds: int) -> int | None:
    """Tile evaluations for ``jobs`` (CaseJobs) with ``model`` (a LoadedModel); None when no header is readable."""
    conf, plans = model.configuration, model.plans
    counts: list[int | None] = []
    for job in jobs:
        first = job.images[0] if job.images else None
        geometry = header_geometry_for(first) if first is not None and first.is_file() else None
        if geometry is None:
            counts.append(None)
            continue
        shape = resampled_shape(*geometry, conf.spacing, plans.transpose_forward)
        counts.append(tiles_for(shape, conf.patch_size, step_size))
    known = sorted(c for c in counts if c is not None)
    if not known:
        return None
    median = known[len(known) // 2]
    return sum(c if c is not None else median for c in counts) * flips * folds
