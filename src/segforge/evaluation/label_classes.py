"""Scoring regions and leaving out ignored voxels: the evaluation side of the label scheme.

nnU-Net v2 evaluates region-based datasets per region: reference and prediction label maps
are both turned into the region's mask (voxels whose label is one of the region's values)
before Dice & co. are computed. Voxels whose *reference* is the ``ignore`` label are not
annotated, so they are removed from both masks and from the true-negative count. A region is
reported under the label it is exported as (its ``regions_class_order`` entry), so summaries
keep integer keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from segforge.evaluation.metrics import LabelScores, label_scores


def class_mask(seg: np.ndarray, members: Sequence[int]) -> np.ndarray:
    """Voxels whose label is one of ``members`` (one label: ``seg == label``)."""
    if len(members) == 1:
        return seg == members[0]
    return np.isin(seg, np.asarray(members, dtype=seg.dtype))


def class_scores(
    ref: np.ndarray,
    pred: np.ndarray,
    classes: Mapping[int, Sequence[int]],
    spacing: Sequence[float],
    ignore_label: int | None = None,
    distances: bool = True,
) -> dict[int, LabelScores]:
    """Scores per class (key -> member labels) of two label maps, ignored reference voxels excluded.

    Surface distances use the masks restricted to annotated voxels, so a prediction inside an
    unannotated area is neither a false positive nor a surface.
    """
    valid = None if ignore_label is None else ref != ignore_label
    n_valid = int(ref.size if valid is None else np.count_nonzero(valid))
    out: dict[int, LabelScores] = {}
    for key, members in classes.items():
        r, p = class_mask(ref, members), class_mask(pred, members)
        if valid is not None:
            r &= valid
            p &= valid
        scores = label_scores(r, p, spacing, distances)
        out[int(key)] = dataclasses.replace(scores, tn=n_valid - scores.tp - scores.fp - scores.fn)
    return out


def plain_classes(labels: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """Every label scored on its own (the non-region case)."""
    return {int(v): (int(v),) for v in labels}
