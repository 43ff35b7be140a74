"""The loss contract kit fails, naming the expectation, on losses that break the contract."""

from __future__ import annotations

import pytest
import torch
from pydantic import BaseModel

from segforge.losses.components import CEParams, LossComponent
from segforge.testing.loss_contract import (
    check_loss_accepts_some_dataset,
    check_loss_attributes,
    check_loss_deep_supervision,
    check_loss_default_params,
    check_loss_ignores_ignored_voxels,
    check_loss_scalar_and_gradients,
    make_loss_case,
)


class _SquaredError(torch.nn.Module):
    """Every voxel counts, whatever its label: breaks the ignore-label contract."""

    def forward(self, logits, target):
        onehot = torch.zeros_like(logits).scatter_(1, target.long().clamp(max=logits.shape[1] - 1), 1.0)
        return ((logits - onehot) ** 2).mean()


class IgnoresNothing(LossComponent):
    name = "ignores_nothing"
    Params = CEParams

    def build(self, params, context):
        return _SquaredError()


class PerVoxel(LossComponent):
    name = "per_voxel"
    Params = CEParams

    def build(self, params, context):
        return lambda logits, target: (logits**2).mean(dim=1)


class CrashesOnRegions(LossComponent):
    name = "crashes"
    Params = CEParams

    def build(self, params, context):
        if context.regions is not None:
            raise ValueError("regions?")
        return _SquaredError()


class NeedsArguments(LossComponent):
    name = "needs_args"

    class Params(BaseModel):
        gamma: float

    def build(self, params, context):
        return _SquaredError()


def test_a_loss_that_counts_ignored_voxels_fails_naming_them():
    with pytest.raises(AssertionError, match=r"loss 'ignores_nothing' \(softmax\+ignore\): \d+ gradient values flow"):
        check_loss_ignores_ignored_voxels(make_loss_case(IgnoresNothing(), "softmax+ignore"))


def test_a_loss_that_is_not_a_scalar_fails():
    with pytest.raises(AssertionError, match=r"loss 'per_voxel' \(softmax\): the loss returned Tensor of shape"):
        check_loss_scalar_and_gradients(make_loss_case(PerVoxel(), "softmax"))
    with pytest.raises(
        AssertionError, match=r"loss 'per_voxel' \(softmax\): the deep-supervision loss (raised|returned)"
    ):
        check_loss_deep_supervision(make_loss_case(PerVoxel(), "softmax"))


def test_refusing_a_dataset_must_be_a_segforge_error():
    with pytest.raises(AssertionError, match=r"loss 'crashes' \(regions\): build raised ValueError: regions\?; refuse"):
        check_loss_accepts_some_dataset(CrashesOnRegions())


def test_params_need_defaults():
    with pytest.raises(AssertionError, match=r"loss 'needs_args': Params\(\) needs arguments"):
        check_loss_default_params(NeedsArguments())


def test_attributes_are_checked():
    class Nameless:
        version = "1"

    with pytest.raises(AssertionError, match="loss component has no string 'name'"):
        check_loss_attributes(Nameless())


def test_a_good_loss_passes_on_the_kinds_it_accepts():
    from segforge.losses.components import DiceCELossComponent

    case = make_loss_case(DiceCELossComponent(), "softmax+ignore", {"weight_ce": 2.0})
    assert case.params.weight_ce == 2.0
    check_loss_scalar_and_gradients(case)
    check_loss_deep_supervision(case)
    check_loss_ignores_ignored_voxels(case)
