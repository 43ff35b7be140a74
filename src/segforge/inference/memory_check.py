"""Before predicting: refuse a case that cannot fit in memory, with the fix, instead of an OOM kill.

The logits of every class are held at the network's spacing and again at the image's own
resolution for export, so a large image with many classes (or a wrong spacing in its header)
needs far more memory than the image file suggests. Checked from headers, before any output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from segforge.io.header_geometry import header_geometry_for
from segforge.resources import check_memory, memory_limit, predict_bytes, resampled_voxels


def check_prediction_memory(jobs: Sequence[Any], model: Any, overlap: bool, save_probabilities: bool) -> None:
    """Raise a ResourceError naming the first input case whose prediction cannot fit in memory."""
    conf, plans = model.configuration, model.plans
    classes = len(plans.labels)
    in_flight = 2 if overlap else 1  # overlap keeps the next case preprocessed while one is predicted
    for job in jobs:
        geometry = header_geometry_for(job.images[0]) if job.images and job.images[0].is_file() else None
        if geometry is None:
            continue
        shape, spacing = geometry
        original = math.prod(shape)
        resampled = resampled_voxels(shape, spacing, conf.spacing, plans.transpose_forward)
        needed = predict_bytes(original, resampled, len(job.images), classes)
        if save_probabilities:
            needed += 4 * classes * original
        fixes = ["check the image's spacing in its header (a wrong spacing makes a huge resampled image)"]
        limit = memory_limit()
        if overlap and limit is not None and needed <= limit.bytes:  # only helps when one case fits
            fixes.insert(0, "predict one case at a time (--sequential)")
        if save_probabilities:
            fixes.insert(0, "leave out --save-probabilities")
        what = (
            f"predicting {job.images[0].name} ({original} voxels, {resampled} at the model's spacing, "
            f"{classes} classes)"
        )
        check_memory(needed * in_flight, what, ", or ".join(fixes))
