"""The ignore label: ignored voxels change neither the loss nor its gradient, nor the pseudo-Dice."""

from __future__ import annotations

import pytest
import torch

from segforge.losses.components import LossContext, build_loss
from segforge.losses.compound import DiceCELoss
from segforge.losses.cross_entropy import TargetCrossEntropyLoss
from segforge.losses.dice import SoftDiceLoss, hard_tp_fp_fn
from segforge.losses.regions import RegionDiceBCELoss

IGNORE = 3


def _case(seed: int = 0):
    """3 softmax classes on a 2x6x5 batch; about half the voxels labelled ``ignore``."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 6, 5, generator=g)
    target = torch.randint(0, 3, (2, 1, 6, 5), generator=g)
    ignored = torch.rand(2, 1, 6, 5, generator=g) < 0.5
    target[ignored] = IGNORE
    return logits, target, ignored


LOSSES = {
    "dc_ce": lambda: DiceCELoss(batch_dice=True, ignore_label=IGNORE),
    "dc_ce_per_sample": lambda: DiceCELoss(batch_dice=False, ignore_label=IGNORE),
    "dc_bce_regions": lambda: RegionDiceBCELoss([(1, 2), (2,)], ignore_label=IGNORE, batch_dice=True),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_logits_at_ignored_voxels_change_neither_loss_nor_gradient(name):
    logits, target, ignored = _case()
    loss_fn = LOSSES[name]()
    channels = 2 if name.startswith("dc_bce") else 3
    logits = logits[:, :channels].clone().requires_grad_(True)
    loss = loss_fn(logits, target)
    loss.backward()
    grad = logits.grad
    mask = ignored.expand_as(grad)
    assert torch.count_nonzero(grad[mask]) == 0  # nothing flows into ignored voxels
    assert torch.count_nonzero(grad[~mask]) > 0
    changed = logits.detach().clone()
    changed[mask] = torch.randn(int(mask.sum())) * 100.0
    assert float(loss_fn(changed, target)) == pytest.approx(float(loss.detach()), abs=1e-6)


def test_dice_ce_equals_the_loss_over_the_annotated_voxels_only():
    """Batch Dice + CE over a volume with ignored voxels == the same loss over the annotated voxels alone."""
    logits, target, ignored = _case(1)
    keep = ~ignored[:, 0]
    flat_logits = logits.permute(1, 0, 2, 3)[:, keep].reshape(1, 3, -1)  # [1, C, N annotated]
    flat_target = target[:, 0][keep].reshape(1, 1, -1)
    expected = DiceCELoss(batch_dice=True)(flat_logits, flat_target)
    actual = DiceCELoss(batch_dice=True, ignore_label=IGNORE)(logits, target)
    assert float(actual) == pytest.approx(float(expected), rel=1e-5)


def test_region_loss_equals_the_loss_over_the_annotated_voxels_only():
    logits, target, ignored = _case(2)
    logits = logits[:, :2]
    keep = ~ignored[:, 0]
    flat_logits = logits.permute(1, 0, 2, 3)[:, keep].reshape(1, 2, -1)
    flat_target = target[:, 0][keep].reshape(1, 1, -1)
    regions = [(1, 2), (2,)]
    expected = RegionDiceBCELoss(regions, batch_dice=True)(flat_logits, flat_target)
    actual = RegionDiceBCELoss(regions, ignore_label=IGNORE, batch_dice=True)(logits, target)
    assert float(actual) == pytest.approx(float(expected), rel=1e-5)


def test_everything_ignored_gives_zero_cross_entropy_not_nan():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 1, 4, 4), IGNORE)
    assert float(TargetCrossEntropyLoss(ignore_index=IGNORE)(logits, target).detach()) == 0.0
    dice = SoftDiceLoss(batch_dice=True, ignore_label=IGNORE)(logits, target).detach()
    assert float(dice) == pytest.approx(-1.0)  # (0 + smooth) / (0 + smooth): nothing to score


def test_pseudo_dice_counts_skip_ignored_voxels():
    logits = torch.tensor([[[5.0, 0.0, 0.0, 5.0], [0.0, 5.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])  # argmax 0,1,1,0
    target = torch.tensor([[[1, 1, IGNORE, IGNORE]]])
    tp, fp, fn = hard_tp_fp_fn(logits, target, ignore_label=IGNORE)
    assert tp.tolist() == [1, 0] and fp.tolist() == [0, 0] and fn.tolist() == [1, 0]
    tp_all, fp_all, _ = hard_tp_fp_fn(logits, target)  # without the ignore label voxel 2 is a false positive
    assert fp_all.tolist() == [1, 0]


@pytest.mark.parametrize("name", ["dc_ce", "dice", "ce"])
def test_components_pass_the_ignore_label_on(name):
    context = LossContext(num_classes=3, ignore_label=IGNORE)
    loss = build_loss(name, {}, context)
    logits, target, ignored = _case(3)
    changed = logits.clone()
    changed[ignored.expand_as(logits)] = 50.0
    assert float(loss(changed, target)) == pytest.approx(float(loss(logits, target)), abs=1e-6)
