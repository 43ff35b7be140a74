"""Resampling images and segmentations to a target spacing, with nnU-Net v2's numbers.

nnU-Net resizes with ``skimage.transform.resize`` (mode ``"edge"``, no anti-aliasing, output
clipped to the input's value range), which is ``scipy.ndimage.zoom`` in *grid mode*: output
voxel ``i`` samples input coordinate ``(i + 0.5) * n_in / n_out - 0.5``. This module evaluates
the same splines on the same coordinates, but in float32 and without skimage's float64 copies
of whole volumes: the spline coefficients are computed in float32 and evaluated with
``scipy.ndimage.affine_transform``. Results agree with nnU-Net to float32 precision.

Anisotropic data (max/min spacing above a threshold, in the source or target spacing) is
resampled *separately along z* (the axis with the largest spacing): cubic in plane, slice by
slice, then nearest (``order_z``) along z, so thick slices are not smeared into each other.

Segmentations are resampled label by label: each label's indicator is interpolated (linear by
default) and every voxel takes the label with the highest score, exact ties going to the
nearest-neighbour label (batchgenerators >= 0.25.5, which nnU-Net v2 uses). ``seg_mode=
"threshold"`` reproduces older batchgenerators: labels in ascending order overwrite wherever
their score is >= 0.5.

Everything works on ``[C, *spatial]`` arrays, so export can map C-channel probabilities back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import ndimage

from segforge.config.plans import ResamplingSpec

#: padding scipy adds before spline prefiltering in ``"nearest"`` mode (kept identical)
_SPLINE_PAD = 12

SegMode = Literal["argmax", "threshold"]


def compute_new_shape(
    old_shape: Sequence[int], old_spacing: Sequence[float], new_spacing: Sequence[float]
) -> tuple[int, ...]:
    """``round(old_spacing / new_spacing * old_shape)`` per axis, as nnU-Net computes it."""
    if not len(old_shape) == len(old_spacing) == len(new_spacing):
        raise ValueError(
            f"shape {list(old_shape)} and spacings {list(old_spacing)}, {list(new_spacing)} differ in length"
        )
    return tuple(int(round(o / n * s)) for s, o, n in zip(old_shape, old_spacing, new_spacing, strict=True))


def _lowres_axis(spacing: Sequence[float]) -> int | None:
    """The single axis with the largest spacing, or None when several share the maximum."""
    spacing = np.asarray(spacing, dtype=float)
    axes = np.flatnonzero(spacing.max() / spacing == 1)
    return int(axes[0]) if len(axes) == 1 else None


def separate_z_axis(
    current_spacing: Sequence[float],
    new_spacing: Sequence[float],
    force_separate_z: bool | None = None,
    anisotropy_threshold: float = 3.0,
) -> int | None:
    """The axis to resample separately (nnU-Net's ``determine_do_sep_z_and_axis``), or None.

    With ``force_separate_z`` None, the source spacing decides if it is anisotropic
    (max/min > threshold), else the target spacing; True forces the source's lowres axis.
    Ambiguous cases (two axes share the largest spacing, e.g. (0.24, 1.25, 1.25)) give None.
    """
    if force_separate_z is not None:
        return _lowres_axis(current_spacing) if force_separate_z else None
    for spacing in (current_spacing, new_spacing):
        if max(spacing) / min(spacing) > anisotropy_threshold:
            return _lowres_axis(spacing)
    return None


# -- grid-mode resizing --------------------------------------------------------------------
def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Input index per output index for order 0, computed by the same scipy code skimage uses."""
    if n_in == n_out:
        return np.arange(n_in)
    axis = np.arange(n_in, dtype=np.float64)
    return ndimage.zoom(axis, n_out / n_in, order=0, mode="nearest", grid_mode=True).astype(np.intp)


def _nearest_resize(x: np.ndarray, new_shape: Sequence[int]) -> np.ndarray:
    index = np.ix_(*(_nearest_indices(a, b) for a, b in zip(x.shape, new_shape, strict=True)))
    return np.ascontiguousarray(x[index])


def _bspline(t: np.ndarray, order: int) -> np.ndarray:
    """The centred cardinal B-spline of ``order`` at ``t`` (the interpolation weights)."""
    out = np.zeros_like(t)
    for k in range(order + 2):
        out += (-1) ** k * math.comb(order + 1, k) * np.maximum(t + (order + 1) / 2 - k, 0) ** order
    return out / math.factorial(order)


def _resize_axis(x: np.ndarray, axis: int, n_out: int, order: int) -> np.ndarray:
    """One axis of a grid-mode spline resize with edge boundaries, float32 (order >= 1, no clipping).

    A tensor-product spline on a grid is separable, so resizing axis by axis gives scipy's
    N-d result up to float rounding, with ``order + 1`` taps per axis instead of
    ``(order + 1) ** ndim`` per voxel (10x faster for cubic 3D).
    """
    n_in, pad = x.shape[axis], (_SPLINE_PAD if order > 1 else 0)
    coeffs = x
    if order > 1:  # prefilter an edge-padded copy, as scipy's zoom does
        widths = [(0, 0)] * x.ndim
        widths[axis] = (pad, pad)
        coeffs = np.pad(x, widths, mode="edge")
        coeffs = ndimage.spline_filter1d(coeffs, order, axis=axis, output=np.float32, mode="nearest")
    coords = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5 + pad
    first = np.floor(coords - (order - 1) / 2).astype(np.intp)
    shape = [1] * x.ndim
    shape[axis] = n_out
    out = None
    for k in range(order + 1):
        taps = first + k
        weights = _bspline(coords - taps, order).astype(np.float32).reshape(shape)
        term = np.take(coeffs, np.clip(taps, 0, coeffs.shape[axis] - 1), axis=axis).astype(np.float32, copy=False)
        term *= weights
        out = term if out is None else np.add(out, term, out=out)
    return out


def _resize_data(x: np.ndarray, new_shape: Sequence[int], order: int) -> np.ndarray:
    """Grid-mode spline resize of intensities, float32, axes that shrink most first (no clipping)."""
    new_shape = tuple(int(s) for s in new_shape)
    if order == 0:
        return _nearest_resize(x, new_shape)
    x = x.astype(np.float32, copy=False)
    for axis in np.argsort([n / o for o, n in zip(x.shape, new_shape, strict=True)], kind="stable"):
        if x.shape[axis] != new_shape[axis]:
            x = _resize_axis(x, int(axis), new_shape[axis], order)
    return x


def _exact_resize(x: np.ndarray, new_shape: Sequence[int], order: int) -> np.ndarray:
    """skimage's resize (clipped) in float64 through scipy itself: label scores must tie exactly as nnU-Net's."""
    new_shape = tuple(int(s) for s in new_shape)
    if x.shape == new_shape:
        return x.astype(np.float64)
    zooms = [b / a for a, b in zip(x.shape, new_shape, strict=True)]
    out = ndimage.zoom(x, zooms, output=np.float64, order=order, mode="nearest", grid_mode=True)
    if order > 1 and x.size:
        np.clip(out, x.min(), x.max(), out=out)
    return out


def _per_slice(x: np.ndarray, axis: int, new_shape: Sequence[int], fn) -> np.ndarray:  # noqa: ANN001
    """Apply ``fn(slice_2d, shape_2d)`` to every slice along ``axis``; output keeps that axis' length."""
    shape2d = [s for a, s in enumerate(new_shape) if a != axis]
    out = np.stack([fn(s, shape2d) for s in np.moveaxis(x, axis, 0)])
    return np.moveaxis(out, 0, axis)


def _z_indices(n_in: int, n_out: int) -> np.ndarray:
    """Nearest source slice per output slice, by nnU-Net's map_coordinates call (order 0, nearest)."""
    coords = (float(n_in) / n_out) * (np.arange(n_out, dtype=np.float64) + 0.5) - 0.5
    src = np.arange(n_in, dtype=np.float64)
    return ndimage.map_coordinates(src, coords[None], order=0, mode="nearest").astype(np.intp)


# -- one channel ---------------------------------------------------------------------------
def _resample_data_channel(
    x: np.ndarray, new_shape: tuple[int, ...], axis: int | None, order: int, order_z: int
) -> np.ndarray:
    """skimage's clipping (to the input's range, per slice when in-plane) after every resize of order > 1."""
    if axis is None:
        out = _resize_data(x, new_shape, order)
        if order > 1 and x.size:
            np.clip(out, x.min(), x.max(), out=out)
        return out
    inplane = list(new_shape)
    inplane[axis] = x.shape[axis]
    if tuple(inplane) != x.shape:
        out = _resize_data(x, inplane, order)
        if order > 1 and x.size:
            others = tuple(a for a in range(x.ndim) if a != axis)
            np.clip(out, x.min(axis=others, keepdims=True), x.max(axis=others, keepdims=True), out=out)
        x = out
    if new_shape[axis] == x.shape[axis]:
        return np.ascontiguousarray(x, dtype=np.float32)
    if order_z == 0:
        return np.ascontiguousarray(np.take(x, _z_indices(x.shape[axis], new_shape[axis]), axis=axis))
    return _resize_axis(x.astype(np.float32, copy=False), axis, new_shape[axis], order_z)


def _label_scores(s: np.ndarray, label: int, new_shape: Sequence[int], order: int) -> np.ndarray:
    """The interpolated indicator of ``label``, in float64: label ties are decided by exact equality,
    and float32 would turn nnU-Net's near-ties (0.5 +- 1e-16) into exact ones (decided differently)."""
    return _exact_resize((s == label).view(np.uint8), new_shape, order)


def resize_labels(s: np.ndarray, new_shape: Sequence[int], order: int = 1, seg_mode: SegMode = "argmax") -> np.ndarray:
    """A label map resized without inventing in-between labels (batchgenerators' resize_segmentation).

    ``argmax``: highest interpolated indicator wins, exact ties go to the nearest-neighbour
    label (so a 50/50 boundary is decided by geometry, not by label value). ``threshold``:
    ascending labels overwrite where their indicator is >= 0.5, unassigned voxels stay 0.
    """
    new_shape = tuple(int(v) for v in new_shape)
    if s.shape == new_shape:
        return s.copy()
    if order == 0 or s.size == 0:
        return _nearest_resize(s, new_shape) if s.size else np.zeros(new_shape, s.dtype)
    labels = np.unique(s)
    if seg_mode == "threshold":
        out = np.zeros(new_shape, dtype=s.dtype)
        for label in labels:
            out[_label_scores(s, label, new_shape, order) >= 0.5] = label
        return out
    if len(labels) == 1:
        return np.full(new_shape, labels[0], dtype=s.dtype)
    nearest = _nearest_resize(s, new_shape)
    best = _label_scores(s, labels[0], new_shape, order)
    winner = np.full(new_shape, labels[0], dtype=s.dtype)
    nearest_score = np.where(nearest == labels[0], best, 0)
    for label in labels[1:]:
        score = _label_scores(s, label, new_shape, order)
        np.copyto(nearest_score, score, where=nearest == label)
        better = score > best
        np.copyto(winner, label, where=better)
        np.maximum(best, score, out=best)
    np.copyto(winner, nearest, where=(nearest_score == best) & (nearest_score > 0))
    return winner


def _resample_seg_channel(
    s: np.ndarray, new_shape: tuple[int, ...], axis: int | None, order: int, order_z: int, seg_mode: SegMode
) -> np.ndarray:
    if axis is None:
        return resize_labels(s, new_shape, order, seg_mode)
    inplane = list(new_shape)
    inplane[axis] = s.shape[axis]
    if tuple(inplane) != s.shape:
        if order <= 1:  # linear/nearest at integer z positions: one 3D pass equals slice-by-slice
            s = resize_labels(s, inplane, order, seg_mode)
        else:
            s = _per_slice(s, axis, new_shape, lambda sl, shp: resize_labels(sl, shp, order, seg_mode))
    if new_shape[axis] == s.shape[axis]:
        return np.ascontiguousarray(s)
    if order_z == 0:
        return np.ascontiguousarray(np.take(s, _z_indices(s.shape[axis], new_shape[axis]), axis=axis))
    out = np.zeros(new_shape, dtype=s.dtype)
    for label in np.unique(s):  # nnU-Net's rule for order_z > 0: round, then > 0.5
        out[np.round(_exact_resize((s == label).view(np.uint8), new_shape, order_z)) > 0.5] = label
    return out


# -- public entry points ----------------------------------------------------------------------
def resample_to_shape(
    data: np.ndarray,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    new_spacing: Sequence[float],
    *,
    is_seg: bool = False,
    order: int = 3,
    order_z: int = 0,
    force_separate_z: bool | None = None,
    anisotropy_threshold: float = 3.0,
    seg_mode: SegMode = "argmax",
) -> np.ndarray:
    """Resample ``data`` [C, *spatial] to ``new_shape`` (nnU-Net's ``resample_data_or_seg_to_shape``).

    Intensity data comes back as float32, segmentations in their own (integer) dtype. When
    the shape already matches, ``data`` is returned unchanged (no copy), as nnU-Net does.
    """
    new_shape = tuple(int(s) for s in new_shape)
    if data.ndim != len(new_shape) + 1:
        raise ValueError(f"data must be [C, *spatial] with {len(new_shape)} spatial axes, got shape {data.shape}")
    if data.shape[1:] == new_shape:
        return data
    axis = separate_z_axis(current_spacing, new_spacing, force_separate_z, anisotropy_threshold)
    if is_seg:
        channels = [_resample_seg_channel(c, new_shape, axis, order, order_z, seg_mode) for c in data]
        return np.stack(channels).astype(data.dtype, copy=False)
    out = np.empty((data.shape[0], *new_shape), dtype=np.float32)
    for c in range(data.shape[0]):
        out[c] = _resample_data_channel(data[c].astype(np.float32, copy=False), new_shape, axis, order, order_z)
    return out


def resample_data(
    data: np.ndarray,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    new_spacing: Sequence[float],
    spec: ResamplingSpec,
) -> np.ndarray:
    """Intensity data [C, *spatial] resampled as the plans' ResamplingSpec says."""
    return resample_to_shape(
        data, new_shape, current_spacing, new_spacing, is_seg=False, order=spec.order_data,
        order_z=spec.order_z_data, force_separate_z=spec.force_separate_z,
        anisotropy_threshold=spec.anisotropy_threshold,
    )  # fmt: skip


def resample_seg(
    seg: np.ndarray,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    new_spacing: Sequence[float],
    spec: ResamplingSpec,
) -> np.ndarray:
    """A segmentation [1, *spatial] resampled as the plans' ResamplingSpec says."""
    return resample_to_shape(
        seg, new_shape, current_spacing, new_spacing, is_seg=True, order=spec.order_seg,
        order_z=spec.order_z_seg, force_separate_z=spec.force_separate_z,
        anisotropy_threshold=spec.anisotropy_threshold,
    )  # fmt: skip
