"""Largest-connected-component removal on label maps (nnU-Net's "non-largest component suppression").

Components are found with :func:`scipy.ndimage.label` and its default structuring element
(face connectivity: 6-neighbourhood in 3D, 4 in 2D), as nnU-Net v1 did. Removed voxels become
background. The functions never modify their input.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of a boolean ``mask`` (all False for an empty mask).

    Ties between equally large components keep the one scipy numbers first, so the result is
    deterministic.
    """
    mask = np.asarray(mask, dtype=bool)
    labelled, count = ndimage.label(mask)
    if count <= 1:
        return mask.copy()
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)
    sizes[0] = 0
    return labelled == int(np.argmax(sizes))


def keep_largest_component(seg: np.ndarray, labels: Iterable[int], background: int = 0) -> np.ndarray:
    """``seg`` with every component of the union of ``labels`` except the largest set to ``background``.

    ``labels`` are treated as one region: ``keep_largest_component(seg, [1, 2])`` keeps the largest
    blob of foreground (whatever its classes) and ``keep_largest_component(seg, [2])`` only touches
    class 2.
    """
    seg = np.asarray(seg)
    mask = np.isin(seg, np.asarray(list(labels), dtype=seg.dtype))
    out = seg.copy()
    if not mask.any():
        return out
    remove = mask & ~largest_component(mask)
    out[remove] = background
    return out
