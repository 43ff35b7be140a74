"""Export for region-based models: per-region sigmoid, threshold 0.5, label map by ``regions_class_order``.

nnU-Net v2 resamples the region logits to the original geometry, applies the sigmoid, keeps
each region where its probability exceeds 0.5 and writes ``regions_class_order[i]`` for region
``i`` in region order, so a later (typically nested, smaller) region overwrites an earlier one.
``sigmoid(x) > 0.5`` is ``x > 0``, so no sigmoid is computed for the label map. Regions are
resampled one at a time, as :mod:`segforge.inference.export` does for softmax classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from segforge.config.label_scheme import LabelScheme
from segforge.config.plans import ConfigurationPlan, Plans
from segforge.data.case_store import CaseProperties
from segforge.errors import ConfigError
from segforge.inference.case_geometry import check_logits_shape, label_canvas, paste_channels, resampled_channels

if TYPE_CHECKING:  # pragma: no cover
    import torch


def region_labels(plans: Plans, num_channels: int) -> np.ndarray:
    """The label written for each output channel (``regions_class_order``), checked against the network."""
    order = LabelScheme.from_plans(plans).output_labels()
    if len(order) != num_channels:
        raise ConfigError(
            f"plans '{plans.plans_name}' declare {len(order)} regions but the network predicts {num_channels} channels",
            hint="the checkpoint does not belong to these plans; predict with the plans stored in the checkpoint",
        )
    return np.asarray(order)


def regions_to_segmentation(
    logits: np.ndarray | torch.Tensor,
    props: CaseProperties,
    plans: Plans,
    conf: ConfigurationPlan,
    *,
    keep_logits: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The label map in the raw image's order and shape, and optionally the resampled region logits."""
    values = region_labels(plans, check_logits_shape(logits, props))
    full, seg = label_canvas(props, values)
    kept: list[np.ndarray | None] = [None] if keep_logits else None
    for c, _, r in resampled_channels(logits, props, conf, kept):
        np.copyto(seg, values[c].astype(seg.dtype), where=r > 0)
        del r
    return full.transpose(plans.transpose_backward), kept[0] if kept else None


def sigmoid_probabilities(resampled_logits: np.ndarray, props: CaseProperties, plans: Plans) -> np.ndarray:
    """Per-region sigmoid of ``[R, *shape_after_cropping]`` logits in the raw image's shape (float16).

    Outside the crop every region has probability 0. The logits array is overwritten.
    """
    x = resampled_logits
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    np.reciprocal(x, out=x)
    return paste_channels(x, props, plans.transpose_backward, background=None)
