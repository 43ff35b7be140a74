"""How the label scheme (softmax labels or sigmoid regions, ignore label) enters training.

Kept out of the trainer so a plugin trainer gets region and ignore-label support by calling
the same function for the pseudo-Dice counts of a validation batch (argmax per class, or
``sigmoid > 0.5`` per region; ignored voxels left out). The loss is chosen in :mod:`.run_loss`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from segforge.config.label_scheme import LabelScheme

#: nnU-Net v2 trains region-based datasets with Dice + BCE on sigmoid outputs (chosen in :mod:`.run_loss`)
REGION_LOSS = "dc_bce"


def validation_counts(
    logits: torch.Tensor, target: torch.Tensor, scheme: LabelScheme
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TP, FP, FN per scored class (foreground labels, or regions) of one validation batch."""
    if scheme.regions is not None:
        from segforge.losses.regions import hard_region_tp_fp_fn

        return hard_region_tp_fp_fn(logits, target, scheme.regions, scheme.ignore_label)
    from segforge.losses.dice import hard_tp_fp_fn

    return hard_tp_fp_fn(logits, target, scheme.ignore_label)
