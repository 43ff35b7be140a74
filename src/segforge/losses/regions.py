"""Region-based training losses: soft Dice on sigmoids + binary cross-entropy (nnU-Net's ``DC_and_BCE_loss``).

Region datasets (BraTS: whole tumour = labels {1, 2, 3}, core = {2, 3}, enhancing = {3})
have overlapping classes, so each region is an independent sigmoid output instead of a
softmax class. The loaders still deliver integer label maps; :func:`region_targets` turns
them into binary region masks on the device, which also works for deep-supervision targets
(nearest-neighbour downsampling commutes with the voxel-wise conversion).

With an ignore label, its voxels are in no region and are masked out of both terms:
BCE is averaged over annotated voxels only and the Dice sums skip them (nnU-Net does the
same with its loss mask). Values follow nnU-Net's sign: the Dice term is negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def region_targets(
    target: torch.Tensor, regions: Sequence[Sequence[int]], ignore_label: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``[B, 1, *sp]`` labels -> (``[B, R, *sp]`` bool region masks, ``[B, 1, *sp]`` bool annotated mask or None)."""
    if target.ndim >= 2 and target.shape[1] != 1:
        target = target.unsqueeze(1)
    masks = torch.cat(
        [torch.isin(target, torch.tensor(list(r), dtype=target.dtype, device=target.device)) for r in regions], 1
    )
    valid = None if ignore_label is None else target != ignore_label
    return masks, valid


class SigmoidDiceLoss(nn.Module):
    """Negative soft Dice of ``sigmoid(logits)`` per region (every channel scored: there is no background)."""

    def __init__(
        self, batch_dice: bool = False, smooth: float = 1e-5,
        sum_over_ranks: Callable[..., tuple[torch.Tensor, ...]] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.batch_dice = batch_dice
        self.smooth = smooth
        self.sum_over_ranks = sum_over_ranks

    def forward(self, logits: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        probs = torch.sigmoid(logits.float())
        gt = gt.to(probs.dtype)
        if valid is not None:
            probs, gt = probs * valid, gt * valid
        axes = tuple(range(2, probs.ndim))
        intersect, sum_pred, sum_gt = (probs * gt).sum(axes), probs.sum(axes), gt.sum(axes)
        if self.batch_dice:  # the global batch under torchrun, as for softmax Dice
            intersect, sum_pred, sum_gt = intersect.sum(0), sum_pred.sum(0), sum_gt.sum(0)
            if self.sum_over_ranks is not None:
                intersect, sum_pred, sum_gt = self.sum_over_ranks(intersect, sum_pred, sum_gt)
        dice = (2 * intersect + self.smooth) / torch.clip(sum_gt + sum_pred + self.smooth, 1e-8)
        return -dice.mean()


def masked_bce(logits: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean BCE-with-logits over all voxels and regions, or over annotated voxels (0 when there are none)."""
    gt = gt.to(torch.float32)
    if valid is None:
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), gt)
    per_voxel = nn.functional.binary_cross_entropy_with_logits(logits.float(), gt, reduction="none")
    weight = valid.to(per_voxel.dtype).expand_as(per_voxel)
    return (per_voxel * weight).sum() / torch.clip(weight.sum(), min=1e-8)


class RegionDiceBCELoss(nn.Module):
    """``weight_ce * BCE + weight_dice * (-sigmoid soft Dice)`` of integer targets converted to regions."""

    def __init__(
        self,
        regions: Sequence[Sequence[int]],
        ignore_label: int | None = None,
        batch_dice: bool = False,
        smooth: float = 1e-5,
        weight_ce: float = 1.0,
        weight_dice: float = 1.0,
        sum_over_ranks: Callable[..., tuple[torch.Tensor, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.regions = [tuple(int(v) for v in r) for r in regions]
        self.ignore_label = ignore_label
        self.weight_ce = weight_ce
        self.weight_dice = weight_dice
        self.dice = SigmoidDiceLoss(batch_dice, smooth, sum_over_ranks)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] != len(self.regions):
            raise ValueError(f"{logits.shape[1]} output channels for {len(self.regions)} regions")
        with torch.no_grad():
            gt, valid = region_targets(target, self.regions, self.ignore_label)
        total = logits.new_zeros((), dtype=torch.float32)
        if self.weight_dice:
            total = total + self.weight_dice * self.dice(logits, gt, valid)
        if self.weight_ce:
            total = total + self.weight_ce * masked_bce(logits, gt, valid)
        return total


@torch.no_grad()
def hard_region_tp_fp_fn(
    logits: torch.Tensor, target: torch.Tensor, regions: Sequence[Sequence[int]], ignore_label: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-region TP, FP, FN of ``sigmoid(logits) > 0.5`` (i.e. logits > 0), summed over batch and space.

    The pseudo-Dice counts of region training; voxels outside the image (-1) and ignored voxels
    are left out.
    """
    target = target if target.ndim == logits.ndim else target.unsqueeze(1)
    gt, valid = region_targets(target, regions, ignore_label)
    inside = target >= 0 if valid is None else valid & (target >= 0)
    pred = (logits > 0) & inside
    gt = gt & inside
    axes = (0, *range(2, logits.ndim))
    tp = (pred & gt).sum(axes)
    fp = (pred & ~gt).sum(axes)
    fn = (~pred & gt).sum(axes)
    return tp.cpu(), fp.cpu(), fn.cpu()
