"""Loss values against hand-computed numbers (nnU-Net v2's Dice, CE, Dice+CE and DS weights)."""

from __future__ import annotations

import math

import pytest
import torch

from segforge.losses.compound import DiceCELoss
from segforge.losses.cross_entropy import TargetCrossEntropyLoss
from segforge.losses.deep_supervision import DeepSupervisionLoss, deep_supervision_weights
from segforge.losses.dice import SoftDiceLoss, hard_tp_fp_fn, one_hot

SMOOTH = 1e-5


def _uniform_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """One sample, two classes, two voxels, logits 0 (p = 0.5 everywhere); voxel 0 is class 1."""
    return torch.zeros(1, 2, 2), torch.tensor([[[1, 0]]])


def test_soft_dice_of_uniform_probabilities():
    logits, target = _uniform_logits()
    # foreground only: I = 0.5, P = 0.5 + 0.5, G = 1
    expected = -(2 * 0.5 + SMOOTH) / (1.0 + 1.0 + SMOOTH)
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(expected, abs=1e-7)


def test_soft_dice_with_background_averages_both_classes():
    logits, target = _uniform_logits()
    fg = (2 * 0.5 + SMOOTH) / (2 + SMOOTH)
    bg = (2 * 0.5 + SMOOTH) / (2 + SMOOTH)  # symmetric: one background voxel, P = 1
    assert SoftDiceLoss(do_bg=True)(logits, target).item() == pytest.approx(-(fg + bg) / 2, abs=1e-7)


def test_batch_dice_pools_the_batch_before_dividing():
    # sample 0 predicts its foreground voxel perfectly, sample 1 has no foreground and predicts none
    big = 30.0
    logits = torch.tensor([[[-big, big], [big, -big]], [[big, big], [-big, -big]]])  # [B=2, C=2, 2 voxels]
    target = torch.tensor([[[1, 0]], [[0, 0]]])
    per_sample = SoftDiceLoss(batch_dice=False)(logits, target).item()
    pooled = SoftDiceLoss(batch_dice=True)(logits, target).item()
    # per sample: (2 + s) / (2 + s) = 1 and (0 + s) / (0 + s) = 1 -> mean 1
    assert per_sample == pytest.approx(-1.0, abs=1e-6)
    assert pooled == pytest.approx(-1.0, abs=1e-6)
    # now sample 1 wrongly predicts foreground on one voxel: per-sample Dice 0 for it, pooled 2/3
    logits[1, :, 0] = torch.tensor([-big, big])
    assert SoftDiceLoss(batch_dice=False)(logits, target).item() == pytest.approx(-0.5, abs=1e-5)
    assert SoftDiceLoss(batch_dice=True)(logits, target).item() == pytest.approx(-2 / 3, abs=1e-5)


def test_cross_entropy_accepts_channel_axis_targets():
    logits, target = _uniform_logits()
    assert TargetCrossEntropyLoss()(logits, target).item() == pytest.approx(math.log(2), abs=1e-6)


def test_dice_ce_is_ce_minus_dice_with_weights():
    logits, target = _uniform_logits()
    dice = (2 * 0.5 + SMOOTH) / (2 + SMOOTH)
    assert DiceCELoss()(logits, target).item() == pytest.approx(math.log(2) - dice, abs=1e-6)
    weighted = DiceCELoss(weight_ce=2.0, weight_dice=0.5)(logits, target).item()
    assert weighted == pytest.approx(2 * math.log(2) - 0.5 * dice, abs=1e-6)
    assert DiceCELoss(weight_dice=0.0)(logits, target).item() == pytest.approx(math.log(2), abs=1e-6)


def test_dice_ce_gradients_flow_to_logits():
    logits = torch.randn(2, 3, 4, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 1, 4, 4, 4))
    DiceCELoss(batch_dice=True)(logits, target).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_deep_supervision_weights_match_nnunet():
    assert deep_supervision_weights(4) == pytest.approx([4 / 7, 2 / 7, 1 / 7, 0.0])
    assert deep_supervision_weights(3, drop_lowest=False) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert deep_supervision_weights(1) == [1.0]
    with pytest.raises(ValueError):
        deep_supervision_weights(0)


def test_deep_supervision_loss_is_the_weighted_sum_and_skips_zero_weights():
    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, output, target):
            self.calls += 1
            return output.mean() - target.float().mean()

    outputs = [torch.full((1, 2, 4), 3.0), torch.full((1, 2, 2), 5.0), torch.full((1, 2, 1), 100.0)]
    targets = [torch.ones(1, 1, 4), torch.zeros(1, 1, 2), torch.zeros(1, 1, 1)]
    inner = Recorder()
    loss = DeepSupervisionLoss(inner, deep_supervision_weights(3))
    # weights [2/3, 1/3, 0]: 2/3 * (3 - 1) + 1/3 * 5
    assert loss(outputs, targets).item() == pytest.approx(2 / 3 * 2 + 5 / 3)
    assert inner.calls == 2
    with pytest.raises(ValueError, match="2 outputs, 3 targets"):
        loss(outputs[:2], targets)


def test_one_hot_and_hard_counts():
    target = torch.tensor([[[0, 1, 2, 2]]])
    assert one_hot(target, 3, torch.float32)[0].tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]]
    # predictions: 0, 2, 2, 1 -> class 1: tp 0 fp 1 fn 1; class 2: tp 1 fp 1 fn 1
    logits = torch.zeros(1, 3, 4)
    for voxel, cls in enumerate([0, 2, 2, 1]):
        logits[0, cls, voxel] = 5.0
    tp, fp, fn = hard_tp_fp_fn(logits, target)
    assert tp.tolist() == [0, 1] and fp.tolist() == [1, 1] and fn.tolist() == [1, 1]
