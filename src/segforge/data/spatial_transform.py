"""Rotation and scaling of a patch, cropping the larger sampled patch to the final one.

This is batchgenerators' ``augment_spatial`` as nnU-Net v2 configures it: no elastic
deformation, centre crop, one scale for all axes, the image interpolated with zero border
(linear by default as nnU-Net >= 2.5; cubic as its earlier releases), labels by per-label
linear interpolation and argmax with border -1. It is split into a *draw*
(:func:`draw_spatial`: all randomness, from a ``numpy.random.Generator``) and a
deterministic *apply* (:func:`apply_spatial`) built on batchgenerators' coordinate helpers
and its label interpolation. batchgenerators' own transform draws from NumPy's global RNG,
which would make in-process loading depend on (and disturb) whatever else uses that RNG;
the split keeps every draw on the loader's seeded generator.

Without rotation or scaling the patch is just centre-cropped (no interpolation), which is
what most samples get (nnU-Net: 64 % of them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates, spline_filter


@dataclass(frozen=True)
class SpatialDraw:
    """The random part of one spatial transform: rotation angles (radians) and scale, or None."""

    angles: tuple[float, ...] | None = None  # 3D: about axes 0, 1, 2; 2D: one angle
    scale: float | None = None

    @property
    def identity(self) -> bool:
        return self.angles is None and self.scale is None


def draw_scale(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A factor from ``[lo, hi]``: below 1 and above 1 with equal odds when ``lo < 1``, as batchgenerators."""
    if lo < 1 and rng.random() < 0.5:
        return float(rng.uniform(lo, 1.0))
    return float(rng.uniform(max(lo, 1.0), hi))


def draw_spatial(
    rng: np.random.Generator,
    dims: int,
    max_angle: float,
    p_rot: float,
    scale_range: tuple[float, float],
    p_scale: float,
) -> SpatialDraw:
    """Rotation (each axis uniform in ``±max_angle``) with ``p_rot``, scale with ``p_scale``."""
    angles = None
    if rng.random() < p_rot:
        n = 3 if dims == 3 else 1
        angles = tuple(float(a) for a in rng.uniform(-max_angle, max_angle, size=n))
    scale = draw_scale(rng, *scale_range) if rng.random() < p_scale else None
    return SpatialDraw(angles, scale)


def center_crop(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """The centre ``size`` box of ``array`` [C, *spatial] (lower corner ``(shape - size) // 2``)."""
    slices = [slice(None)]
    for s, n in zip(array.shape[1:], size, strict=True):
        lo = (s - n) // 2
        slices.append(slice(lo, lo + n))
    return array[tuple(slices)]


def sample_coordinates(draw: SpatialDraw, in_shape: Sequence[int], patch_size: Sequence[int]) -> np.ndarray:
    """Where each output voxel samples the input: a centred grid, rotated, scaled, moved to the centre."""
    from batchgenerators.augmentations.utils import (
        create_zero_centered_coordinate_mesh,
        rotate_coords_2d,
        rotate_coords_3d,
        scale_coords,
    )

    coords = create_zero_centered_coordinate_mesh(patch_size)
    if draw.angles is not None:
        coords = (
            rotate_coords_3d(coords, *draw.angles) if len(patch_size) == 3 else rotate_coords_2d(coords, *draw.angles)
        )
    if draw.scale is not None:
        coords = scale_coords(coords, draw.scale)
    for d, s in enumerate(in_shape):
        coords[d] += s / 2.0 - 0.5
    return coords


def apply_spatial(
    data: np.ndarray,
    seg: np.ndarray,
    patch_size: Sequence[int],
    draw: SpatialDraw,
    order_data: int = 3,
    order_seg: int = 1,
    seg_border: int = -1,
) -> tuple[np.ndarray, np.ndarray]:
    """Transform ``data`` [C, *in] and ``seg`` [K, *in] to ``patch_size``: every channel alike.

    The image is interpolated with ``order_data`` and zero outside; each label channel with
    batchgenerators' per-label argmax interpolation (``order_seg``) and ``seg_border`` outside.
    """
    if draw.identity:
        return center_crop(data, patch_size), center_crop(seg, patch_size)
    from batchgenerators.augmentations.utils import interpolate_img

    coords = sample_coordinates(draw, data.shape[1:], patch_size)
    out_data = np.empty((data.shape[0], *patch_size), dtype=np.float32)
    for c in range(data.shape[0]):
        channel = data[c]
        if order_data > 1:  # the spline prefilter in float32: 20 % faster, values within 1e-6 of float64
            channel = spline_filter(channel, order_data, output=np.float32, mode="constant")
        map_coordinates(channel, coords, out_data[c], order_data, "constant", 0.0, prefilter=False)
    out_seg = np.empty((seg.shape[0], *patch_size), dtype=seg.dtype)
    for c in range(seg.shape[0]):
        if order_seg == 1:
            out_seg[c] = interpolate_labels_linear(seg[c], coords, seg_border)
        else:
            out_seg[c] = interpolate_img(seg[c], coords, order_seg, "constant", cval=seg_border, is_seg=True)
    return out_data, out_seg


def interpolate_labels_linear(seg: np.ndarray, coords: np.ndarray, border: int) -> np.ndarray:
    """batchgenerators' linear per-label argmax interpolation of ``seg`` at ``coords``, computed only where needed.

    batchgenerators interpolates one indicator map per label over every output voxel. Most
    voxels, though, fall in a grid cell whose 2^d corners carry one label (that label wins
    outright) or more than one voxel outside the input (no label scores: ``border``). Those
    are filled directly; batchgenerators' own function runs on the remaining voxels only
    (label boundaries, the image edge), so the result is identical at a fraction of the cost.
    """
    from batchgenerators.augmentations.utils import interpolate_img

    out_shape = coords.shape[1:]
    pts = coords.reshape(seg.ndim, -1)
    cells = tuple(s - 1 for s in seg.shape)
    uniform_cell = np.ones(cells, dtype=bool)
    base = seg[tuple(slice(0, c) for c in cells)]
    for corner in np.ndindex(*([2] * seg.ndim)):
        if any(corner):
            uniform_cell &= seg[tuple(slice(k, k + c) for k, c in zip(corner, cells, strict=True))] == base
    lower = np.floor(pts).astype(np.intp)
    inner = np.ones(pts.shape[1], dtype=bool)
    far = np.zeros(pts.shape[1], dtype=bool)
    for d, n in enumerate(seg.shape):
        inner &= (lower[d] >= 0) & (lower[d] <= n - 2)
        far |= (pts[d] < -1) | (pts[d] > n)
    cell_index = tuple(lower[d][inner] for d in range(seg.ndim))
    settled = np.zeros(pts.shape[1], dtype=bool)
    settled[inner] = uniform_cell[cell_index]
    out = np.full(pts.shape[1], border, dtype=seg.dtype)
    out[settled] = seg[tuple(lower[d][settled] for d in range(seg.ndim))]
    rest = ~(settled | far)
    if rest.any():
        out[rest] = interpolate_img(seg, pts[:, rest], 1, "constant", cval=border, is_seg=True)
    return out.reshape(out_shape)


def rotated_extent(patch_size: Sequence[int], max_angles: Sequence[float]) -> np.ndarray:
    """Per-axis extent a patch can reach when rotated about each axis *separately* by its max angle.

    nnU-Net's rule for the initial patch (angles capped at 90 degrees, one axis at a time,
    evaluated at the extreme angle only), so the same initial patch results.
    """
    from batchgenerators.augmentations.utils import rotate_coords_2d, rotate_coords_3d

    extent = np.asarray(patch_size, dtype=float)
    capped = [min(abs(a), math.pi / 2) for a in max_angles]
    best = extent.copy()
    if len(extent) == 3:
        for axis, angle in enumerate(capped):
            angles = [0.0, 0.0, 0.0]
            angles[axis] = angle
            best = np.maximum(best, np.abs(rotate_coords_3d(extent.copy(), *angles)))
    else:
        best = np.maximum(best, np.abs(rotate_coords_2d(extent.copy(), capped[0])))
    return best
