"""Crop a case to the bounding box of its nonzero region (as nnU-Net does before anything else).

MRI and CT volumes often carry wide zero borders; cropping them shrinks every later stage
and makes the ``nonzero`` normalization mask meaningful. The mask is the union over
channels of ``image != 0`` with holes filled, so dark structures inside the body are kept.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: label value that marks voxels outside the nonzero mask after cropping (nnU-Net uses -1)
OUTSIDE_MASK_LABEL = -1


def nonzero_mask(data: np.ndarray) -> np.ndarray:
    """Boolean mask of voxels where any channel is nonzero, holes filled. ``data``: [C, *spatial]."""
    mask = np.any(data != 0, axis=0)
    return ndimage.binary_fill_holes(mask)


def bounding_box(mask: np.ndarray) -> list[tuple[int, int]]:
    """Per-axis ``(start, stop)`` of the True region; the whole extent when the mask is empty."""
    if not mask.any():
        return [(0, s) for s in mask.shape]
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append((int(hits[0]), int(hits[-1]) + 1))
    return box


def signed_label_dtype(seg: np.ndarray) -> np.dtype:
    """``seg``'s dtype if it can hold :data:`OUTSIDE_MASK_LABEL`, else the smallest signed one that fits.

    Label files are read as uint8 when they fit (like nnU-Net writes them); writing -1 into
    those would overflow, so cropping widens them first.
    """
    if seg.dtype.kind in "if":
        return seg.dtype
    high = int(seg.max()) if seg.size else 0
    for dtype in (np.int8, np.int16, np.int32):
        if high <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def crop_to_nonzero(
    data: np.ndarray, seg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, list[tuple[int, int]]]:
    """Crop ``data`` [C, *spatial] (and ``seg`` [1, *spatial]) to the nonzero bounding box.

    Returns the cropped data, the cropped segmentation (background voxels outside the nonzero
    mask set to :data:`OUTSIDE_MASK_LABEL`; when ``seg`` is None, the mask itself encoded as
    0 / -1 so normalization can use it) and the bounding box.
    """
    mask = nonzero_mask(data)
    box = bounding_box(mask)
    slicer = tuple(slice(a, b) for a, b in box)
    cropped = data[(slice(None), *slicer)]
    mask_c = mask[slicer]
    if seg is not None:
        seg_c = np.array(seg[(slice(None), *slicer)], dtype=signed_label_dtype(seg), copy=True)
        seg_c[0][(seg_c[0] == 0) & ~mask_c] = OUTSIDE_MASK_LABEL
    else:
        seg_c = np.where(mask_c, 0, OUTSIDE_MASK_LABEL).astype(np.int8)[None]
    return np.ascontiguousarray(cropped), seg_c, box
