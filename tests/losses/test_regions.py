"""Region-based training: label map -> region masks, Dice + BCE values, pseudo-Dice counts, components."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from segforge.errors import ConfigError
from segforge.losses.components import LossContext, build_loss
from segforge.losses.regions import RegionDiceBCELoss, hard_region_tp_fp_fn, region_targets

REGIONS = [(1, 2, 3), (2, 3), (3,)]


def test_region_targets_on_a_hand_array():
    target = torch.tensor([[[0, 1, 2, 3, 4]]])  # [B=1, 1, 5]; 4 = ignore
    masks, valid = region_targets(target, REGIONS, ignore_label=4)
    assert masks.tolist() == [
        [[False, True, True, True, False], [False, False, True, True, False], [False, False, False, True, False]]
    ]
    assert valid.tolist() == [[[True, True, True, True, False]]]
    _, none = region_targets(target, REGIONS)
    assert none is None


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_dice_bce_matches_hand_computation():
    """Two regions, four voxels, one sample: BCE mean + (-mean soft Dice) with smooth 1e-5."""
    logits = np.array([[[2.0, -1.0, 0.5, -3.0], [0.0, 1.0, -2.0, 4.0]]], dtype=np.float32)  # [1, 2, 4]
    labels = np.array([[[0, 1, 2, 2]]])
    regions = [(1, 2), (2,)]
    gt = np.array([[0, 1, 1, 1], [0, 0, 1, 1]], dtype=np.float64)
    p = _sigmoid(logits[0].astype(np.float64))
    bce = -(gt * np.log(p) + (1 - gt) * np.log(1 - p)).mean()
    dice = [(2 * (p[r] * gt[r]).sum() + 1e-5) / (p[r].sum() + gt[r].sum() + 1e-5) for r in range(2)]
    expected = bce - np.mean(dice)
    loss = RegionDiceBCELoss(regions)(torch.from_numpy(logits), torch.from_numpy(labels))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    dice_only = RegionDiceBCELoss(regions, weight_ce=0.0)(torch.from_numpy(logits), torch.from_numpy(labels))
    assert float(dice_only) == pytest.approx(-np.mean(dice), rel=1e-5)


def test_batch_dice_pools_the_samples_before_dividing():
    logits = torch.tensor([[[3.0, -3.0]], [[-3.0, -3.0]]])  # [B=2, R=1, 2]
    target = torch.tensor([[[1, 0]], [[0, 0]]])
    p = _sigmoid(np.array([[3.0, -3.0], [-3.0, -3.0]]))
    gt = np.array([[1, 0], [0, 0]], dtype=np.float64)
    pooled = (2 * (p * gt).sum() + 1e-5) / (p.sum() + gt.sum() + 1e-5)
    per_sample = np.mean([(2 * (p[b] * gt[b]).sum() + 1e-5) / (p[b].sum() + gt[b].sum() + 1e-5) for b in range(2)])
    batch = RegionDiceBCELoss([(1,)], batch_dice=True, weight_ce=0.0)(logits, target)
    single = RegionDiceBCELoss([(1,)], batch_dice=False, weight_ce=0.0)(logits, target)
    assert float(batch) == pytest.approx(-pooled, rel=1e-5)
    assert float(single) == pytest.approx(-per_sample, rel=1e-5)


def test_pseudo_dice_counts_threshold_sigmoid_at_one_half():
    logits = torch.tensor([[[1.0, 1.0, -1.0, 1.0, 1.0, 1.0], [-1.0, 1.0, 1.0, -1.0, 1.0, 1.0]]])
    target = torch.tensor([[[0, 1, 2, 2, -1, 9]]])  # -1 outside the image, 9 ignored
    tp, fp, fn = hard_region_tp_fp_fn(logits, target, [(1, 2), (2,)], ignore_label=9)
    # region (1,2): pred on voxels 0,1,3 (4,5 excluded); gt 1,2,3 -> tp {1,3}, fp {0}, fn {2}
    # region (2,):  pred on voxels 1,2;              gt 2,3   -> tp {2}, fp {1}, fn {3}
    assert tp.tolist() == [2, 1] and fp.tolist() == [1, 1] and fn.tolist() == [1, 1]


def test_dc_bce_component_builds_from_the_context_and_needs_regions():
    context = LossContext(num_classes=3, batch_dice=True, regions=REGIONS, ignore_label=None)
    loss = build_loss("dc_bce", {"weight_ce": 0.5}, context)
    assert isinstance(loss, RegionDiceBCELoss) and loss.regions == REGIONS and loss.weight_ce == 0.5
    assert loss.dice.batch_dice is True
    with pytest.raises(ConfigError, match="'dc_bce' needs a region-based dataset") as info:
        build_loss("dc_bce", {}, LossContext(num_classes=3))
    assert "dc_ce" in info.value.hint


@pytest.mark.parametrize("name", ["dc_ce", "dice", "ce"])
def test_softmax_losses_refuse_region_datasets(name):
    with pytest.raises(ConfigError, match=f"loss '{name}' is for softmax outputs") as info:
        build_loss(name, {}, LossContext(num_classes=3, regions=REGIONS))
    assert "--loss dc_bce" in info.value.hint


def test_deep_supervision_wraps_the_region_loss_with_integer_targets():
    context = LossContext(num_classes=1, deep_supervision_scales=[[1, 1], [2, 2]], regions=[(1,)])
    loss = build_loss("deep_supervision", {"loss": "dc_bce"}, context)
    outputs = [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)]
    targets = [torch.ones(1, 1, 4, 4, dtype=torch.int8), torch.ones(1, 1, 2, 2, dtype=torch.int8)]
    value = float(loss(outputs, targets))
    # every logit 0 -> p = 0.5 everywhere, all voxels in the region: BCE ln 2, Dice (2*0.5*n)/(0.5n+n) = 2/3
    assert value == pytest.approx(math.log(2) - 2 / 3, rel=1e-4)
