"""Small parts of training: RNG state round trip, pseudo-Dice and EMA, --set parsing, budget arithmetic."""

from __future__ import annotations

import io
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from segforge.errors import ConfigError, UsageError
from segforge.training.budget import BudgetController
from segforge.training.clock import Clock
from segforge.training.overrides import apply_overrides, parse_value
from segforge.training.params import BudgetParams, TrainerParams
from segforge.training.pseudo_dice import PseudoDice, ema
from segforge.training.rng import capture_rng_state, restore_rng_state


def test_rng_states_survive_a_weights_only_round_trip():
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random(), np.random.normal(), torch.rand(1)  # noqa: B018 - advance each generator (incl. gauss cache)
    buffer = io.BytesIO()
    torch.save(capture_rng_state(), buffer)
    expected = (random.random(), np.random.normal(), torch.rand(3).tolist())
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True))
    assert (random.random(), np.random.normal(), torch.rand(3).tolist()) == expected


def test_pseudo_dice_sums_counts_before_dividing():
    dice = PseudoDice(2)
    dice.add([10, 0], [0, 0], [0, 0])
    dice.add([0, 0], [10, 0], [10, 0])
    # class 1: 2*10 / (20 + 10 + 10) = 0.5 (averaging per batch would give (1 + 0) / 2 too, so check class 2)
    per_class = dice.per_class()
    assert per_class[0] == pytest.approx(0.5)
    assert math.isnan(per_class[1])  # absent everywhere
    assert dice.mean() == pytest.approx(0.5)


def test_ema_is_nnunets_09_01():
    assert ema(None, 0.5) == 0.5
    assert ema(0.5, 1.0) == pytest.approx(0.55)
    assert ema(0.5, math.nan) == 0.5


def test_set_values_are_parsed_as_json_or_text():
    assert parse_value("3") == 3 and parse_value("1e-2") == 0.01 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value("none") is None and parse_value("dc_ce") == "dc_ce"


def test_set_overrides_nested_params_and_collects_loss_params():
    params, loss = apply_overrides(
        TrainerParams,
        TrainerParams(),
        ["epochs=3", "augmentation.p_rot=0.1", "budget.batch_size=4", "loss.weight_ce=2", "grad_clip=none"],
    )
    assert params.epochs == 3 and params.augmentation.p_rot == 0.1 and params.budget.batch_size == 4
    assert params.grad_clip is None
    assert loss == {"weight_ce": 2}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("epoch=3", r"--set epoch: unknown trainer param 'epoch' \(valid: epochs, iterations_per_epoch"),
        ("augmentation.p_rott=0.1", r"unknown trainer param 'p_rott' \(valid: enabled, p_rot"),
        ("epochs=many", r"--set epochs: Input should be a valid integer.*\(got 'many'\)"),
        ("initial_lr=-1", r"--set initial_lr: Input should be greater than 0"),
        ("epochs.x=1", r"--set epochs.x: 'epochs' has no sub-keys"),
    ],
)
def test_set_errors_name_the_key_and_the_valid_ones(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        apply_overrides(TrainerParams, TrainerParams(), [item])
    assert "\n" not in info.value.message
    if item.startswith("epoch="):
        assert "did you mean 'epochs'" in info.value.hint


def test_set_without_equals_is_a_usage_error():
    with pytest.raises(UsageError, match="is not KEY=VALUE"):
        apply_overrides(TrainerParams, TrainerParams(), ["epochs"])


class _FakeTrainer:
    class state:  # noqa: N801 - attribute bag
        iteration = 0

    params = TrainerParams(iterations_per_epoch=50, val_iterations=10)
    batch_size = 2
    # fold "all" of a 3d_fullres run: nothing is predicted after training
    context = SimpleNamespace(val_ids=[], configuration=SimpleNamespace(next_stage=None))


def test_budget_fits_iterations_to_the_time_left():
    clock = Clock()
    clock.previous_s = -clock.session()  # elapsed() == 0 now
    params = BudgetParams(reserve_s=5, final_val_iterations=0, safety_fraction=0.0)
    # 126 s - final costs (reserve 5 s + one epoch end 1 s) = 120 s: 4 epochs of 50 x 0.5 s + 4 x 5 s
    budget = BudgetController(126.0, params, clock)
    budget._val_s_per_batch = 0.4
    budget._epoch_overhead_s = 1.0
    total = budget.fit_iterations(_FakeTrainer(), 0.5)
    # 120 s left after the reserve; 4 epochs cost 4 x (4 s validation + 1 s overhead) = 20 s -> 100 s of training
    assert total == pytest.approx(200, abs=1)


def test_budget_leaves_the_predictions_after_training_their_time():
    from segforge.training.prediction_cost import EndPredictionCost

    clock = Clock()
    clock.previous_s = -clock.session()
    budget = BudgetController(
        126.0 + 25.0, BudgetParams(reserve_s=5, final_val_iterations=0, safety_fraction=0.0), clock
    )
    budget._val_s_per_batch = 0.4
    budget._epoch_overhead_s = 1.0
    # 40 one-tile cases: 40 passes x 0.2 s (as timed, prediction_cost.time_patch_forward) = 8 s, + 17 s export
    # = 25 s: the same 200 iterations as above
    budget._end_cost = EndPredictionCost(cases=40, forward_passes=40, export_s=17.0)
    budget._end_s_per_patch = 0.2
    assert budget.fit_iterations(_FakeTrainer(), 0.5) == pytest.approx(200, abs=1)
    assert budget.measurements["end_predictions_estimated_s"] == pytest.approx(25.0)


def test_budget_augmentation_choices():
    from segforge.data.augmentation import AugmentationParams
    from segforge.training.budget import budget_augmentation

    default = AugmentationParams()
    assert budget_augmentation(default, "default") == default
    light = budget_augmentation(default, "light")
    assert light.p_rot == pytest.approx(0.1) and light.p_gamma == pytest.approx(0.15) and light.enabled
    mirror = budget_augmentation(default, "mirror")
    assert mirror.p_rot == 0 and mirror.p_noise == 0 and mirror.p_mirror_per_axis == 0.5 and mirror.enabled
    assert budget_augmentation(default, "off").enabled is False
