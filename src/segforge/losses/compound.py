"""Dice + cross-entropy, nnU-Net v2's default training loss (``DC_and_CE_loss``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from segforge.losses.cross_entropy import TargetCrossEntropyLoss
from segforge.losses.dice import SoftDiceLoss


class DiceCELoss(nn.Module):
    """``weight_ce * CE + weight_dice * (-softDice)``; a term with weight 0 is not computed.

    With nnU-Net's weights 1:1 the value is CE minus the foreground soft Dice, so it is
    negative once the network segments well (about -0.9 on hippocampus).
    """

    def __init__(
        self,
        batch_dice: bool = False,
        do_bg: bool = False,
        smooth: float = 1e-5,
        weight_ce: float = 1.0,
        weight_dice: float = 1.0,
        ignore_label: int | None = None,
        sum_over_ranks: Callable[..., tuple[torch.Tensor, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.weight_ce = weight_ce
        self.weight_dice = weight_dice
        self.dice = SoftDiceLoss(batch_dice, do_bg, smooth, ignore_label, sum_over_ranks)
        self.ce = TargetCrossEntropyLoss(ignore_index=-100 if ignore_label is None else ignore_label)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = logits.new_zeros((), dtype=torch.float32)
        if self.weight_dice:
            total = total + self.weight_dice * self.dice(logits, target)
        if self.weight_ce:
            total = total + self.weight_ce * self.ce(logits, target)
        return total
