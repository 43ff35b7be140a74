"""Fold ``all`` under ``--time-budget``: no prediction of the training cases inside the budget."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from segforge_tiny_task import fold_dir, make_request

from segforge.training.api import train
from segforge.training.fold_all_budget import VAL_ITERATIONS, fold_all_params, validation_deferred
from segforge.training.params import TrainerParams
from segforge.training.prediction_cost import end_prediction_cases


def _budget_params() -> TrainerParams:
    return TrainerParams().model_copy(update={"val_iterations": 8, "final_val_iterations": 30})


def test_fold_all_budget_params_cut_validation_batches_unless_set_explicitly():
    budget = SimpleNamespace(decisions={}, params=TrainerParams().budget)
    params = fold_all_params(_budget_params(), SimpleNamespace(fold="all", overrides=[]), budget)
    assert (params.val_iterations, params.final_val_iterations) == (VAL_ITERATIONS, 0)
    # the budget keeps no time at the end for final batches that will not run
    assert budget.params.final_val_iterations == 0 and params.budget.final_val_iterations == 0
    assert budget.decisions["fold_all"]["end_of_training_validation"] == "not inside the budget"
    mine = SimpleNamespace(fold="all", overrides=["budget.final_val_iterations=5"])
    params = fold_all_params(_budget_params(), mine, SimpleNamespace(decisions={}, params=None))
    assert (params.val_iterations, params.final_val_iterations) == (VAL_ITERATIONS, 30)  # the user's choice stays
    fold0 = fold_all_params(_budget_params(), SimpleNamespace(fold=0, overrides=[]), SimpleNamespace(decisions={}))
    assert fold0.val_iterations == 8
    assert fold_all_params(_budget_params(), SimpleNamespace(fold="all", overrides=[]), None).val_iterations == 8


def _trainer(fold, budget, next_stage=None):
    cases = ["a", "b", "c"]
    context = SimpleNamespace(
        fold=fold, val_ids=cases, train_ids=cases, configuration=SimpleNamespace(next_stage=next_stage)
    )
    return SimpleNamespace(context=context, budget=budget, params=SimpleNamespace(run_validation=True))


def test_the_budget_reserves_nothing_for_predicting_fold_all_training_cases():
    assert end_prediction_cases(_trainer("all", object())) == []
    assert "not predicted inside the budget" in validation_deferred(_trainer("all", object()))
    assert end_prediction_cases(_trainer("all", None)) == ["a", "b", "c"]  # without a budget: nnU-Net's recipe
    assert end_prediction_cases(_trainer(0, object())) == ["a", "b", "c"]  # held-out cases: validated
    # a lowres stage still writes the cascade's inputs (data, not a check)
    assert end_prediction_cases(_trainer("all", object(), next_stage="3d_cascade_fullres")) == ["a", "b", "c"]


def test_a_budgeted_fold_all_run_spends_nothing_on_end_predictions_and_accounts_for_its_time(task_env):
    request = make_request("budget.iterations_per_epoch=5", fold="all", time_budget_min=0.15)
    request.epochs = request.iterations_per_epoch = None
    result = train(request)
    assert result.status == "finished"
    folder = fold_dir(task_env, "all")
    manifest = json.loads((folder / "manifest.json").read_text())
    budget = manifest["budget"]
    assert budget["decisions"]["end_predictions"]["cases"] == 0
    assert budget["decisions"]["fold_all"]["final_val_iterations"] == 0
    assert manifest["trainer"]["params"]["val_iterations"] == VAL_ITERATIONS
    assert budget["params"]["final_val_iterations"] == 0  # no time kept at the end for batches that do not run
    assert manifest["results"]["final_pseudo_dice"] is None  # no final validation batches
    assert not (folder / "validation").exists()
    assert "not predicted inside the budget" in (folder / "training_log.txt").read_text()
    spent = manifest["time_spent"]
    seconds = spent["seconds"]
    assert spent["share_of"] == "budget" and seconds["training_steps"] > 0 and seconds["saving"] > 0
    assert seconds["end_predictions"] < 0.5 and seconds["validation_batches"] > 0
    assert sum(seconds.values()) >= spent["elapsed_s"] - 0.05  # every second of the run is in one kind
    # the seconds are rounded to 0.01 s each, so the share rebuilt from them may differ by up to 0.01 / 9
    rebuilt = (seconds["training_steps"] + seconds["saving"]) / 9.0
    assert spent["training_share"] == pytest.approx(rebuilt, abs=0.01 / 9.0 + 1e-4)
