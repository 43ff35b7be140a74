"""Soft Dice for training and hard TP/FP/FN counts for the pseudo-Dice, as nnU-Net v2 computes them.

The soft Dice follows nnU-Net v2's ``MemoryEfficientSoftDiceLoss``: softmax over the class axis,
one-hot targets built without gradient, background excluded by default, per-sample or (with
``batch_dice``) per-batch sums, ``(2 * I + smooth) / max(P + G + smooth, 1e-8)`` averaged over
classes and returned *negated*, so a perfect prediction gives -1. Keeping nnU-Net's sign makes
our logged losses comparable with its logs (Dice+CE then starts near 0 and ends near -0.9).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def one_hot(target: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """``[B, 1, *spatial]`` (or ``[B, *spatial]``) integer labels -> ``[B, num_classes, *spatial]``."""
    if target.ndim >= 2 and target.shape[1] == 1:
        target = target[:, 0]
    out = torch.zeros((target.shape[0], num_classes, *target.shape[1:]), dtype=dtype, device=target.device)
    return out.scatter_(1, target.long().unsqueeze(1), 1)


class SoftDiceLoss(nn.Module):
    """Negative soft Dice over the foreground classes (``do_bg=False``) of softmax probabilities.

    ``batch_dice`` pools the sums over the whole batch before dividing (nnU-Net plans it for
    3D, where a patch may hold little foreground); otherwise each sample's Dice is computed
    and averaged. Logits go in, not probabilities.
    """

    def __init__(
        self, batch_dice: bool = False, do_bg: bool = False, smooth: float = 1e-5, ignore_label: int | None = None,
        sum_over_ranks: Callable[..., tuple[torch.Tensor, ...]] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.batch_dice = batch_dice
        #: pools batch sums over every rank's slice of the batch (LossContext.sum_over_ranks); None: this process
        self.sum_over_ranks = sum_over_ranks
        self.do_bg = do_bg
        self.smooth = smooth
        #: voxels with this target value add nothing to intersection, prediction or reference sums
        self.ignore_label = ignore_label

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.float(), 1)
        axes = tuple(range(2, probs.ndim))
        mask = None
        with torch.no_grad():
            if self.ignore_label is not None:
                target = target if target.ndim == probs.ndim else target.unsqueeze(1)
                mask = target != self.ignore_label
                target = torch.where(mask, target, torch.zeros_like(target))
            gt = one_hot(target, probs.shape[1], probs.dtype)
            if not self.do_bg:
                gt = gt[:, 1:]
            if mask is not None:
                gt = gt * mask
            sum_gt = gt.sum(axes)
        if not self.do_bg:
            probs = probs[:, 1:]
        if mask is not None:
            probs = probs * mask
        intersect = (probs * gt).sum(axes)
        sum_pred = probs.sum(axes)
        if self.batch_dice:
            # under torchrun the "batch" is the global one: sums over every rank's slice (with gradient)
            intersect, sum_pred, sum_gt = intersect.sum(0), sum_pred.sum(0), sum_gt.sum(0)
            if self.sum_over_ranks is not None:
                intersect, sum_pred, sum_gt = self.sum_over_ranks(intersect, sum_pred, sum_gt)
        dice = (2 * intersect + self.smooth) / torch.clip(sum_gt + sum_pred + self.smooth, 1e-8)
        return -dice.mean()


@torch.no_grad()
def hard_tp_fp_fn(
    logits: torch.Tensor, target: torch.Tensor, ignore_label: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class TP, FP, FN (foreground classes only, summed over batch and space) of the argmax.

    This is what nnU-Net's validation step accumulates for its pseudo-Dice: counts are
    summed over all validation batches of an epoch *before* dividing, so small patches with
    little foreground do not dominate. Voxels labelled -1 (outside the image) or
    ``ignore_label`` (unannotated) are ignored.
    """
    num_classes = logits.shape[1]
    target = target[:, 0] if target.ndim == logits.ndim else target
    valid = target >= 0
    if ignore_label is not None:
        valid &= target != ignore_label
    pred = logits.argmax(1)
    tp, fp, fn = [], [], []
    for c in range(1, num_classes):
        p, g = (pred == c) & valid, (target == c) & valid
        tp.append((p & g).sum())
        fp.append((p & ~g).sum())
        fn.append((~p & g).sum())
    return torch.stack(tp).cpu(), torch.stack(fp).cpu(), torch.stack(fn).cpu()
