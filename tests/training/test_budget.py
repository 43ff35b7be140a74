"""``--time-budget``: the schedule is sized to the budget and every decision lands in the manifest."""

from __future__ import annotations

import json
import time

import pytest
from segforge_tiny_task import fold_dir, make_request

from segforge.training.api import train
from segforge.training.checkpoint import load_checkpoint

BUDGET_MIN = 0.2  # 12 s


def test_budget_sizes_the_schedule_and_finishes_in_time(task_env):
    request = make_request(
        "budget.iterations_per_epoch=20", "budget.final_val_iterations=4", time_budget_min=BUDGET_MIN
    )
    request.epochs = request.iterations_per_epoch = None
    result = train(request)
    assert result.status == "finished"
    assert result.elapsed_s <= BUDGET_MIN * 60 * 1.1 + 1.0, "the run overran its budget"
    folder = fold_dir(task_env)
    manifest = json.loads((folder / "manifest.json").read_text())
    budget = manifest["budget"]
    decisions = budget["decisions"]
    assert budget["budget_s"] == pytest.approx(12.0)
    assert decisions["batch_size"]["value"] == 2 and decisions["num_workers"]["value"] == 0
    assert decisions["threads"]["value"] == 1  # an explicit --set threads wins over "one per core"
    assert decisions["precision"]["value"] in ("fp32", "bf16") and decisions["precision"]["why"]
    assert budget["measurements"]["s_per_iteration"] > 0
    total = decisions["schedule"]["total_iterations"]
    assert total >= 4 and manifest["progress"]["iterations"] == manifest["progress"]["total_iterations"]
    assert manifest["precision"] == decisions["precision"]["value"]
    assert set(manifest["results"]["final_pseudo_dice"]) == {"inner", "core"}
    payload = load_checkpoint(folder / "checkpoint_final.pt")
    schedule = payload["schedule"]
    done = payload["progress"]["iteration"]
    # the poly schedule was re-anchored to end exactly where training ended (or the hard stop came first)
    assert schedule["total"] == done or any(r.get("hard_stop") for r in budget["replans"])
    assert payload["trainer"]["params"]["lr_step"] == "iteration"
    assert payload["trainer"]["params"]["iterations_per_epoch"] == 20
    assert payload["budget"]["sized"] is True
    log = (folder / "training_log.txt").read_text()
    assert "budget:" in log and "s/iteration measured" in log


def test_budgeted_run_trains_without_augmentation_and_says_so_to_prediction(task_env):
    request = make_request("budget.iterations_per_epoch=5", "budget.final_val_iterations=0", time_budget_min=0.1)
    request.epochs = request.iterations_per_epoch = None
    train(request)
    payload = load_checkpoint(fold_dir(task_env) / "checkpoint_final.pt")
    assert payload["trainer"]["params"]["augmentation"]["enabled"] is False
    assert payload["mirror_axes"] == []  # no mirroring in training -> no mirroring test-time augmentation


#: set-up before the first iteration (network, loaders, timing passes) counts against the budget and took
#: ~8 s of a 12 s budget on a cold CI machine, leaving one epoch: the pause needs room for several
PAUSE_BUDGET_MIN = 0.3


def test_a_paused_budgeted_run_continues_with_its_decisions_and_clock(task_env):
    request = make_request(
        "budget.iterations_per_epoch=6", "budget.final_val_iterations=2", time_budget_min=PAUSE_BUDGET_MIN
    )
    request.epochs = request.iterations_per_epoch = None
    paused = train(request, stop_after_epochs=1)
    assert paused.status == "paused" and paused.iterations == 6
    first = load_checkpoint(fold_dir(task_env) / "checkpoint_latest.pt")
    request.resume = True
    request.time_budget_min = None  # the budget comes from the checkpoint
    result = train(request)
    assert result.status == "finished" and result.iterations > 6
    final = load_checkpoint(fold_dir(task_env) / "checkpoint_final.pt")
    assert final["budget"]["decisions"]["precision"] == first["budget"]["decisions"]["precision"]
    assert final["budget"]["budget_s"] == pytest.approx(PAUSE_BUDGET_MIN * 60)
    assert final["progress"]["elapsed_s"] > first["progress"]["elapsed_s"]
    assert final["progress"]["elapsed_s"] <= PAUSE_BUDGET_MIN * 60 * 1.1 + 1.0


def test_the_budget_keeps_time_for_the_predictions_after_training(task_env):
    """``--time-budget`` covers the whole command: the end-of-training validation is estimated and reserved."""
    request = make_request(
        "budget.iterations_per_epoch=10", "budget.final_val_iterations=2", time_budget_min=BUDGET_MIN
    )
    request.epochs = request.iterations_per_epoch = None
    started = time.perf_counter()
    result = train(request)
    wall = time.perf_counter() - started
    assert result.status == "finished"
    folder = fold_dir(task_env)
    assert (folder / "validation" / "summary.json").is_file()
    assert wall <= BUDGET_MIN * 60 * 1.1 + 1.0, f"train() with its validation took {wall:.1f} s"
    budget = json.loads((folder / "manifest.json").read_text())["budget"]
    reserved = budget["decisions"]["end_predictions"]
    val_cases = len(json.loads((task_env / "pre" / "Task009_Tiny" / "splits_final.json").read_text())[0]["val"])
    assert reserved["cases"] == val_cases and reserved["forward_passes"] >= val_cases  # no mirroring: >= 1 tile each
    assert budget["measurements"]["end_predictions_estimated_s"] > 0
    assert budget["measurements"]["end_predictions_s"] > 0
    assert "of the time budget were kept for it" in (folder / "training_log.txt").read_text()


def log_text(folder) -> str:
    return (folder / "training_log.txt").read_text()


def _preprocess_2d(task_env) -> None:
    import os
    from unittest import mock

    from segforge_tiny_task import TASK, _run_cli

    env = {"SEGFORGE_PREPROCESSED": str(task_env / "pre")}
    with mock.patch.dict(os.environ, env):
        _run_cli("preprocess", "--task", TASK, "--configs", "2d", "-np", "1")


def test_without_config_a_short_budget_trains_2d_and_says_why(task_env, monkeypatch):
    """3d_fullres too slow for ``budget.min_iterations`` steps (a speed model stands in for a slow CPU):
    the budget trains the preprocessed 2d configuration, in 2d's run folder, and says why."""
    from segforge.training import budget_setup

    _preprocess_2d(task_env)
    model = {3: 10.0, 2: 0.01}  # seconds per synthetic step by patch dims
    monkeypatch.setattr(budget_setup, "time_network_step", lambda net, ch, patch, *a: model[len(patch)])
    request = make_request(
        "budget.final_val_iterations=2", "budget.adapt_network=false", "budget.iterations_per_epoch=3",
        time_budget_min=PAUSE_BUDGET_MIN,
    )  # fmt: skip
    request.epochs = request.iterations_per_epoch = None
    request.configuration_explicit = False
    assert train(request, stop_after_epochs=1).status == "paused"
    request.resume, request.time_budget_min = True, None  # --continue without --config finds the 2d run
    result = train(request)
    assert result.status == "finished"
    folder = task_env / "results" / "Task009_Tiny" / "2d" / "default__generic_unet__segforgePlans" / "fold_0"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["configuration"] == "2d" and manifest["patch_size"] == [20, 20]
    plan = manifest["budget"]["decisions"]["plan"]
    assert plan["option"]["configuration"] == "2d"
    assert [c["s_per_step"] for c in plan["considered"]] == [10.0, 0.01]
    assert "the budgeted run is in 2d" in manifest["notes"]
    assert "budget: the model is trained as 2d: predict it with --config 2d" in log_text(folder)
    why = plan["reasons"][0]
    assert why.startswith("2d (patch 20x20, batch 2) instead of 3d_fullres (patch 16x20x20, batch 2) because")
    log = (folder / "training_log.txt").read_text()
    header = next(line for line in log.splitlines() if "budget: batch 2, augmentation " in line)
    assert "2d (patch 20x20, batch 2) instead of 3d_fullres" in header  # the switch, in the training header
    assert not fold_dir(task_env).exists()  # nothing trained in the 3d_fullres folder
    from segforge.training.validation import validate_only

    request.resume = False  # --validate-only without --config finds the 2d run too
    assert validate_only(request).summary is not None


def test_an_explicit_config_is_never_switched(task_env, monkeypatch):
    from segforge.training import budget_setup

    _preprocess_2d(task_env)
    monkeypatch.setattr(budget_setup, "time_network_step", lambda net, ch, patch, *a: 10.0)
    request = make_request(
        "budget.final_val_iterations=0", "budget.adapt_network=false", "budget.adapt_patch=false", time_budget_min=0.1
    )
    request.epochs = request.iterations_per_epoch = None  # configuration_explicit: True, as --config 3d_fullres
    train(request)
    manifest = json.loads((fold_dir(task_env) / "manifest.json").read_text())
    assert manifest["configuration"] == "3d_fullres"
    assert manifest["budget"]["decisions"]["plan"]["reasons"][-1].startswith("budget short: no option reaches 250")


def test_a_short_budget_halves_the_network_and_prediction_gets_the_trained_one(task_env, monkeypatch):
    """The narrower network is written into the run's plans: checkpoint, manifest and prediction agree."""
    from segforge.inference.model_loading import build_network, load_model
    from segforge.training import budget_setup

    monkeypatch.setattr(budget_setup, "time_network_step", lambda net, ch, patch, *a: 10.0)
    monkeypatch.setattr(budget_setup, "MIN_FEATURES", 2)  # the tiny network is already at the usual minimum
    request = make_request(
        "budget.final_val_iterations=0", "budget.adapt_patch=false", "budget.iterations_per_epoch=3",
        time_budget_min=PAUSE_BUDGET_MIN,
    )  # fmt: skip
    request.epochs = request.iterations_per_epoch = None
    assert train(request, stop_after_epochs=1).status == "paused"
    request.resume, request.time_budget_min = True, None  # continued: the checkpoint's narrower network is rebuilt
    assert train(request).status == "finished"
    manifest = json.loads((fold_dir(task_env) / "manifest.json").read_text())
    assert manifest["network"]["params"]["features_per_stage"] == [2, 4, 8]  # the tiny task's 4-8-16, halved
    model = load_model(fold_dir(task_env) / "checkpoint_final.pt")
    assert model.configuration.network.params["features_per_stage"] == [2, 4, 8]
    build_network(model)  # the weights fit the network prediction builds
