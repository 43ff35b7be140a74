"""The deep-supervision loss: one loss per network output, weighted and summed.

nnU-Net v2 weights output ``i`` (full resolution first) by ``1 / 2**i``, gives the lowest
output (the one just above the bottleneck) weight 0, and normalizes the weights to sum 1.
Outputs with weight 0 are skipped entirely, which saves their loss computation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def deep_supervision_weights(num_outputs: int, drop_lowest: bool = True) -> list[float]:
    """nnU-Net v2's weights: halving per level, lowest level 0 (``drop_lowest``), summing to 1.

    A single output gets weight 1 (nothing to drop).
    """
    if num_outputs < 1:
        raise ValueError("deep supervision needs at least one output")
    weights = [1.0 / 2**i for i in range(num_outputs)]
    if drop_lowest and num_outputs > 1:
        weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


class DeepSupervisionLoss(nn.Module):
    """``sum_i weights[i] * loss(outputs[i], targets[i])`` over matching outputs and targets."""

    def __init__(self, loss: nn.Module, weights: Sequence[float]) -> None:
        super().__init__()
        self.loss = loss
        self.weights = [float(w) for w in weights]

    def forward(
        self, outputs: Sequence[torch.Tensor] | torch.Tensor, targets: Sequence[torch.Tensor] | torch.Tensor
    ) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        if isinstance(targets, torch.Tensor):
            targets = [targets]
        if len(outputs) != len(targets) or len(outputs) > len(self.weights):
            raise ValueError(
                f"deep supervision: {len(outputs)} outputs, {len(targets)} targets, {len(self.weights)} weights"
            )
        total = None
        for weight, output, target in zip(self.weights, outputs, targets, strict=False):
            if weight == 0:
                continue
            term = weight * self.loss(output, target)
            total = term if total is None else total + term
        return total if total is not None else outputs[0].sum() * 0.0
