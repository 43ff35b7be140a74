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
from segforge.inference.export import _channel, _check_shape, _crop_slices, _resample_channel

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
    n = _check_shape(logits, props)
    values = region_labels(plans, n)
    dtype = np.uint8 if values.max() < 256 else np.uint16
    full = np.zeros(props.shape_before_cropping, dtype=dtype)
    seg = full[_crop_slices(props)]
    kept = None
    for c in range(n):
        r = _resample_channel(_channel(logits, c), props, conf)
        if keep_logits:
            if kept is None:
                kept = np.empty((n, *r.shape), dtype=np.float32)
            kept[c] = r
        np.copyto(seg, values[c].astype(dtype), where=r > 0)
        del r
    return full.transpose(plans.transpose_backward), kept


def sigmoid_probabilities(resampled_logits: np.ndarray, props: CaseProperties, plans: Plans) -> np.ndarray:
    """Per-region sigmoid of ``[R, *shape_after_cropping]`` logits in the raw image's shape (float16).

    Outside the crop every region has probability 0. The logits array is overwritten.
    """
    x = resampled_logits
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    np.reciprocal(x, out=x)
    out = np.zeros((x.shape[0], *props.shape_before_cropping), dtype=np.float16)
    out[(slice(None), *_crop_slices(props))] = x
    return out.transpose([0, *[a + 1 for a in plans.transpose_backward]])
