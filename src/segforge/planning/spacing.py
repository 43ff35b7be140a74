"""Target spacing, axis order and resampled shapes: nnU-Net v2's planner decisions on geometry.

These depend only on the fingerprint (never on the network), so they are shared by every
configuration and kept when plans are re-derived for another network. All inputs are in
the raw images' array order (z, y, x); :func:`transpose_axes` says how to reorder them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: above this ratio of largest to smallest spacing an axis counts as low resolution (nnU-Net: 3)
ANISOTROPY_THRESHOLD = 3.0
#: percentile of the low-resolution axis' spacings used for anisotropic data
ANISOTROPIC_AXIS_PERCENTILE = 10.0


def target_spacing(
    spacings: Sequence[Sequence[float]],
    shapes: Sequence[Sequence[int]],
    anisotropy_threshold: float = ANISOTROPY_THRESHOLD,
) -> np.ndarray:
    """The 3d_fullres spacing: the median per axis, except for strongly anisotropic data.

    When the coarsest axis of the median spacing is more than ``anisotropy_threshold`` times
    coarser than the others *and* has fewer than 1/threshold as many voxels (e.g. cardiac MRI
    at 10 x 1.5 x 1.5 mm with a dozen slices), resampling the thick-slice cases to the median
    would invent slices by interpolation. nnU-Net then takes the 10th percentile of that
    axis' spacings, but never less than the other axes' largest spacing (plus 1e-5, so the
    axis stays identifiable as the coarsest one).
    """
    spacings_arr = np.asarray(spacings, dtype=np.float64)
    target = np.percentile(spacings_arr, 50, axis=0)
    median_size = np.percentile(np.asarray(shapes, dtype=np.float64), 50, axis=0)
    worst = int(np.argmax(target))
    others = [i for i in range(len(target)) if i != worst]
    if not others:
        return target
    other_spacing = max(target[i] for i in others)
    aniso_spacing = target[worst] > anisotropy_threshold * other_spacing
    aniso_voxels = median_size[worst] * anisotropy_threshold < min(median_size[i] for i in others)
    if aniso_spacing and aniso_voxels:
        value = float(np.percentile(spacings_arr[:, worst], ANISOTROPIC_AXIS_PERCENTILE))
        if value < other_spacing:
            value = max(other_spacing, value) + 1e-5
        target[worst] = value
    return target


def transpose_axes(spacing: Sequence[float], suppress: bool = False) -> tuple[list[int], list[int]]:
    """``(transpose_forward, transpose_backward)``: the coarsest axis first, the others in order.

    2D networks then work on the last two (finest) axes; nnU-Net does the same. Ties keep the
    first axis, so isotropic data is not transposed.
    """
    n = len(spacing)
    if suppress:
        return list(range(n)), list(range(n))
    worst = int(np.argmax(np.asarray(spacing)))
    forward = [worst] + [i for i in range(n) if i != worst]
    backward = [forward.index(i) for i in range(n)]
    return forward, backward


def shape_at_spacing(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> list[int]:
    """The shape after resampling ``shape`` from ``spacing`` to ``new_spacing`` (rounded per axis)."""
    return [int(round(s / n * k)) for s, n, k in zip(spacing, new_spacing, shape, strict=True)]


def median_shape_at_spacing(
    spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]], new_spacing: Sequence[float]
) -> np.ndarray:
    """Median over cases of the shape each would have at ``new_spacing`` (floats: a median of an even count)."""
    resampled = [shape_at_spacing(shape, sp, new_spacing) for sp, shape in zip(spacings, shapes, strict=True)]
    return np.median(np.asarray(resampled, dtype=np.float64), axis=0)
