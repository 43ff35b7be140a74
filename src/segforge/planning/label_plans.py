"""Recording a dataset's regions in its plans, so training and prediction need no raw dataset.json.

The planner works from the fingerprint, which keeps only the integer labels; whether a dataset
trains region-based (nnU-Net v2: any label given as a list) comes from dataset.json and is
added here. Plans re-derived for another network keep these fields (they are copied).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segforge.config.label_scheme import LabelScheme

if TYPE_CHECKING:  # pragma: no cover
    from segforge.config.dataset import DatasetJson
    from segforge.config.plans import Plans


def with_label_scheme(plans: Plans, dataset_json: DatasetJson) -> Plans:
    """``plans`` with ``regions`` / ``regions_class_order`` as dataset.json declares them (validated)."""
    scheme = LabelScheme.from_dataset_json(dataset_json)
    return plans.model_copy(update=scheme.plans_fields())
