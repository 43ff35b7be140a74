"""The registered loss components: names, Params validation and what ``build`` returns."""

from __future__ import annotations

import pytest
import torch

import segforge
from segforge.errors import ConfigError
from segforge.losses.components import LossContext, build_loss, parse_loss_params
from segforge.losses.compound import DiceCELoss
from segforge.losses.deep_supervision import DeepSupervisionLoss


def test_builtin_losses_are_registered_by_the_builtin_plugin():
    registry = segforge.get_registries().loss
    assert {"dc_ce", "dice", "ce", "deep_supervision"} <= set(registry.names())
    assert registry.entry("dc_ce").origin.plugin == "builtin.losses"


def test_dc_ce_takes_batch_dice_from_the_plans_unless_overridden():
    planned = build_loss("dc_ce", {}, LossContext(num_classes=3, batch_dice=True))
    assert isinstance(planned, DiceCELoss) and planned.dice.batch_dice is True
    assert planned.dice.smooth == 1e-5 and planned.dice.do_bg is False
    forced = build_loss("dc_ce", {"batch_dice": False, "weight_ce": 0.5}, LossContext(num_classes=3))
    assert forced.dice.batch_dice is False and forced.weight_ce == 0.5


def test_unknown_param_names_the_key_and_the_valid_ones():
    component = segforge.get_registries().loss.get("dc_ce")
    with pytest.raises(ConfigError, match=r"loss\.weight_cee: Extra inputs are not permitted \(valid: batch_dice"):
        parse_loss_params(component, {"weight_cee": 1})
    with pytest.raises(ConfigError, match=r"loss\.weight_ce: Input should be a valid number"):
        parse_loss_params(component, {"weight_ce": "heavy"})


def test_deep_supervision_component_wraps_the_inner_loss_with_nnunet_weights():
    context = LossContext(num_classes=3, deep_supervision_scales=[[1, 1, 1], [2, 2, 2], [4, 4, 4]])
    loss = build_loss("deep_supervision", {"loss": "ce"}, context)
    assert isinstance(loss, DeepSupervisionLoss)
    assert loss.weights == pytest.approx([2 / 3, 1 / 3, 0.0])
    outputs = [torch.zeros(1, 3, 4, 4, 4), torch.zeros(1, 3, 2, 2, 2), torch.zeros(1, 3, 1, 1, 1)]
    targets = [torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 1, 1, 1)]
    assert loss(outputs, targets).item() == pytest.approx(torch.log(torch.tensor(3.0)).item(), abs=1e-6)
    with pytest.raises(ConfigError, match="weights has 2 entries, the network has 3 outputs"):
        build_loss("deep_supervision", {"weights": [0.5, 0.5]}, context)


def test_unknown_loss_suggests_the_nearest():
    with pytest.raises(ConfigError, match="unknown loss 'dc-ce'") as info:
        build_loss("dc-ce", {}, LossContext(num_classes=2))
    assert "did you mean 'dc_ce'" in info.value.hint


def test_batch_dice_pools_through_the_contexts_rank_reduction():
    """Losses get the global-batch reduction from their context (the trainer passes torchrun's), not by import."""
    import torch

    from segforge.losses.components import LossContext, build_loss

    calls = []

    def doubled(*sums):  # as if a second rank held an identical slice of the batch
        calls.append(len(sums))
        return tuple(2 * s for s in sums)

    logits, target = torch.randn(2, 3, 4, 4, 4), torch.randint(0, 3, (2, 1, 4, 4, 4))
    for name, regions in (("dc_ce", None), ("dice", None), ("dc_bce", [[1, 2], [2]])):
        ctx = LossContext(3 if regions is None else 2, True, [[1, 1, 1]], regions=regions)
        alone = build_loss(name, {}, ctx)(logits[:, : ctx.num_classes], target)
        pooled = build_loss(name, {}, LossContext(**{**ctx.__dict__, "sum_over_ranks": doubled}))
        # doubling every sum leaves each Dice ratio nearly unchanged (only the smoothing term differs)
        torch.testing.assert_close(pooled(logits[:, : ctx.num_classes], target), alone, atol=1e-4, rtol=1e-4)
    assert calls == [3, 3, 3]
