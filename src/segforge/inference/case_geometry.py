"""From the network's output grid back to the raw image's: the steps softmax and region export share.

Preprocessing transposed, cropped and resampled the image (see
:class:`~segforge.data.case_store.CaseProperties`). Both ways of turning logits into a label
map — argmax over softmax classes (:mod:`.export`) and thresholds per sigmoid region
(:mod:`.regions`) — undo it the same way: check the logits belong to the case, resample one
channel at a time to the cropped original shape (so memory does not grow with the number of
classes), combine into a label map inside the crop of an otherwise-background volume, and
transpose back. This module holds those shared steps so neither exporter reaches into the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from segforge.config.plans import ConfigurationPlan
from segforge.data.case_store import CaseProperties
from segforge.preprocessing.resampling import resample_to_shape


def crop_slices(props: CaseProperties) -> tuple[slice, ...]:
    """Where the cropped region the network saw lies in the uncropped (transposed) volume."""
    return tuple(slice(int(lo), int(hi)) for lo, hi in props.bbox)


def check_logits_shape(logits: Any, props: CaseProperties) -> int:
    """The number of output channels, after checking the logits' spatial shape is the case's."""
    shape = list(logits.shape[1:])
    if shape != list(props.shape_after_resampling):
        raise ValueError(f"logits of spatial shape {shape} do not match case '{props.case_id}' "
                         f"({props.shape_after_resampling} after resampling)")  # fmt: skip
    return int(logits.shape[0])


def channel_float32(logits: Any, c: int) -> np.ndarray:
    """Channel ``c`` as float32 numpy (no copy for float32 tensors/arrays)."""
    if not isinstance(logits, np.ndarray):
        return logits[c].float().cpu().numpy()
    return logits[c].astype(np.float32, copy=False)


def resample_channel(x: np.ndarray, props: CaseProperties, conf: ConfigurationPlan) -> np.ndarray:
    """One channel at the network's spacing resampled to the cropped original shape (plans' seg orders)."""
    spec = conf.resampling
    return resample_to_shape(
        x[None], props.shape_after_cropping, props.spacing, props.original_spacing, is_seg=False,
        order=spec.order_seg, order_z=spec.order_z_seg, force_separate_z=spec.force_separate_z,
        anisotropy_threshold=spec.anisotropy_threshold,
    )[0]  # fmt: skip


def label_canvas(props: CaseProperties, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A background volume of the uncropped shape (uint8, or uint16 for labels above 255) and its crop view."""
    dtype = np.uint8 if values.max() < 256 else np.uint16
    full = np.zeros(props.shape_before_cropping, dtype=dtype)
    return full, full[crop_slices(props)]


def resampled_channels(
    logits: Any, props: CaseProperties, conf: ConfigurationPlan, kept: list[np.ndarray | None] | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(c, source, resampled)`` for each channel, one at a time.

    With ``kept`` (a one-element list), the resampled channels are also gathered into
    ``kept[0]`` as ``[C, *shape_after_cropping]`` float32, for probabilities.
    """
    n = check_logits_shape(logits, props)
    for c in range(n):
        source = channel_float32(logits, c)
        r = resample_channel(source, props, conf)
        if kept is not None:
            if kept[0] is None:
                kept[0] = np.empty((n, *r.shape), dtype=np.float32)
            kept[0][c] = r
        yield c, source, r


def paste_channels(x: np.ndarray, props: CaseProperties, transpose_backward: list[int], background: int | None) -> Any:
    """``[C, *shape_after_cropping]`` probabilities in the raw image's shape (float16), transposed back.

    Outside the crop every channel is 0, except channel ``background`` (softmax), which is 1.
    """
    out = np.zeros((x.shape[0], *props.shape_before_cropping), dtype=np.float16)
    if background is not None:
        out[background] = 1.0
    out[(slice(None), *crop_slices(props))] = x
    return out.transpose([0, *[a + 1 for a in transpose_backward]])
