"""Segmentation metrics per label: overlap (Dice, IoU, precision, recall) and surface distances (mm).

Conventions (also in docs/evaluation.md), chosen so a mean over cases stays meaningful:

- **Overlap** metrics follow nnU-Net v2: Dice ``2TP / (2TP + FP + FN)``, IoU ``TP / (TP + FP + FN)``.
  When reference *and* prediction are empty the label is absent and there is nothing to
  score: Dice and IoU are NaN and left out of means (nnU-Net v2 does the same with
  ``nanmean``). A label predicted where the reference has none scores 0, as does a missed one.
  Precision ``TP / (TP + FP)`` is NaN when nothing was predicted, recall ``TP / (TP + FN)``
  NaN when the reference is empty.
- **Surface distances** use the surface voxels of each mask (voxels with a 6-connected
  background neighbour; the image border counts as background) and the exact Euclidean
  distance in mm (``scipy.ndimage.distance_transform_edt`` with ``sampling=spacing``) from
  each surface voxel of one mask to the nearest surface voxel of the other.
  HD95 = the larger of the two directed 95th percentiles (as MONAI and DeepMind's
  surface-distance compute the robust Hausdorff distance); ASSD = the mean of all distances
  of both directions together (MONAI's symmetric average surface distance).
  Both empty: NaN (left out of means). **One side empty: the image diagonal in mm**, the
  largest distance possible in the image, so a missed or hallucinated structure is penalised
  in the mean instead of silently dropping out of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

NAN = float("nan")


@dataclass(frozen=True)
class LabelScores:
    """Every metric of one label in one case (NaN where undefined, see the module docstring)."""

    dice: float
    iou: float
    precision: float
    recall: float
    hd95: float
    assd: float
    tp: int
    fp: int
    fn: int
    tn: int
    n_ref: int
    n_pred: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


METRIC_NAMES = ("dice", "iou", "precision", "recall", "hd95", "assd")
COUNT_NAMES = ("tp", "fp", "fn", "tn", "n_ref", "n_pred")


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else NAN


def overlap_counts(ref: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` of two boolean masks."""
    tp = int(np.count_nonzero(ref & pred))
    n_ref, n_pred = int(np.count_nonzero(ref)), int(np.count_nonzero(pred))
    fp, fn = n_pred - tp, n_ref - tp
    return tp, fp, fn, int(ref.size) - tp - fp - fn


def surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face-connected background neighbour (outside the array counts as background)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _union_box(a: np.ndarray, b: np.ndarray) -> tuple[slice, ...]:
    """Bounding box of ``a | b`` grown by one voxel: surfaces and distances inside it are exact."""
    coords = np.nonzero(a | b)
    return tuple(slice(max(int(c.min()) - 1, 0), int(c.max()) + 2) for c in coords)


def surface_distances(ref: np.ndarray, pred: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each pred surface voxel to the ref surface, and from each ref surface voxel to pred's.

    Both masks must be non-empty. Work is restricted to the bounding box of their union: the
    nearest surface voxel always lies inside it, so the distances are those of the full image.
    """
    box = _union_box(ref, pred)
    ref, pred = ref[box], pred[box]
    ref_surface, pred_surface = surface(ref), surface(pred)
    to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    return to_ref[pred_surface], to_pred[ref_surface]


def image_diagonal(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length in mm of the image's diagonal (extent = voxels x spacing per axis): no distance in it is larger."""
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True))))


def distance_scores(ref: np.ndarray, pred: np.ndarray, spacing: Sequence[float]) -> tuple[float, float]:
    """``(hd95, assd)`` in mm with the empty-mask conventions of this module."""
    has_ref, has_pred = bool(ref.any()), bool(pred.any())
    if not has_ref and not has_pred:
        return NAN, NAN
    if has_ref != has_pred:
        worst = image_diagonal(ref.shape, spacing)
        return worst, worst
    d_pred, d_ref = surface_distances(ref, pred, spacing)
    hd95 = max(float(np.percentile(d_pred, 95)), float(np.percentile(d_ref, 95)))
    assd = float((d_pred.sum() + d_ref.sum()) / (d_pred.size + d_ref.size))
    return hd95, assd


def label_scores(ref: np.ndarray, pred: np.ndarray, spacing: Sequence[float], distances: bool = True) -> LabelScores:
    """All metrics for boolean masks ``ref`` and ``pred`` of one label (``spacing`` in mm per array axis)."""
    if ref.shape != pred.shape:
        raise ValueError(f"reference shape {ref.shape} differs from prediction shape {pred.shape}")
    if len(spacing) != ref.ndim:
        raise ValueError(f"spacing {list(spacing)} does not have one value per axis of shape {ref.shape}")
    tp, fp, fn, tn = overlap_counts(ref, pred)
    hd95, assd = distance_scores(ref, pred, spacing) if distances else (NAN, NAN)
    return LabelScores(
        dice=_ratio(2 * tp, 2 * tp + fp + fn), iou=_ratio(tp, tp + fp + fn), precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn), hd95=hd95, assd=assd, tp=tp, fp=fp, fn=fn, tn=tn, n_ref=tp + fn, n_pred=tp + fp,
    )  # fmt: skip


def case_scores(
    ref: np.ndarray, pred: np.ndarray, labels: Sequence[int], spacing: Sequence[float], distances: bool = True
) -> dict[int, LabelScores]:
    """Scores per label for two label maps of the same shape."""
    return {int(label): label_scores(ref == label, pred == label, spacing, distances) for label in labels}


def nanmean(values: Sequence[float]) -> float:
    """Mean over the defined (non-NaN) values; NaN when there are none (no warning)."""
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else NAN
