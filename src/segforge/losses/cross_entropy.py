"""Cross-entropy for the ``[B, 1, *spatial]`` integer targets the data loaders produce.

nnU-Net v2's ``RobustCrossEntropyLoss`` does the same: drop the channel axis, cast to long,
then ``nn.CrossEntropyLoss`` (mean over all voxels). Logits are cast to float32 so the loss
stays accurate under bf16/fp16 autocast.
"""

from __future__ import annotations

import torch
from torch import nn


class TargetCrossEntropyLoss(nn.CrossEntropyLoss):
    """``nn.CrossEntropyLoss`` that accepts targets with a singleton channel axis.

    With ``ignore_index`` (the dataset's ignore label) the mean runs over annotated voxels
    only; a batch without any annotated voxel gives 0 rather than NaN (nnU-Net skips the term).
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if target.ndim == logits.ndim:
            target = target[:, 0]
        if self.ignore_index >= 0 and not bool((target != self.ignore_index).any()):
            return logits.float().sum() * 0.0
        return super().forward(logits.float(), target.long())
