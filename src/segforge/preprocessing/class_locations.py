"""Sampling foreground voxel locations per class, for oversampling foreground patches in training.

Training picks a third of its patches around a random foreground voxel of a random class;
storing a sample of voxel coordinates per class at preprocessing time makes that a lookup.
The sampling follows nnU-Net v2 exactly (same candidates in the same order, same seeded
``RandomState(1234)``, same count rule), so both pick the same voxels: per class
``max(min(10000, n), ceil(0.01 * n))`` of its ``n`` voxels, without replacement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

DEFAULT_SEED = 1234
MAX_SAMPLES = 10000
MIN_FRACTION = 0.01


def foreground_labels(labels: dict[str, int], regions: list[list[int]] | None = None) -> list[int]:
    """Label values to sample: everything but background (0) and an ``ignore`` label, ascending;
    with ``regions`` also every label value a region holds."""
    values = {int(v) for k, v in labels.items() if int(v) != 0 and k != "ignore"}
    values.update(int(v) for region in regions or [] for v in region if int(v) != 0)
    return sorted(values)


def sample_class_locations(
    seg: np.ndarray,
    classes: Iterable[int],
    seed: int = DEFAULT_SEED,
    max_samples: int = MAX_SAMPLES,
    min_fraction: float = MIN_FRACTION,
) -> dict[int, np.ndarray]:
    """``{label: int32 [N, ndim]}`` voxel coordinates sampled from the label map ``seg`` [*spatial].

    Classes absent from ``seg`` get an empty ``[0, ndim]`` array and draw nothing from the RNG
    (as in nnU-Net), so the samples of the other classes do not depend on them.
    """
    rng = np.random.RandomState(seed)
    flat = seg.reshape(-1)
    out: dict[int, np.ndarray] = {}
    for label in classes:
        hits = np.flatnonzero(flat == label)  # C order, as nnU-Net's argwhere
        total = hits.size
        if total == 0:
            out[int(label)] = np.empty((0, seg.ndim), dtype=np.int32)
            continue
        count = max(min(max_samples, total), int(math.ceil(total * min_fraction)))
        picked = hits[rng.choice(total, count, replace=False)]
        out[int(label)] = np.stack(np.unravel_index(picked, seg.shape), axis=1).astype(np.int32)
    return out
