"""Installed (``pip install ./examples/segforge-example-callback``), the plugin registers ``event_log``;
a real tiny training run that selects it receives every documented event; installed but not
selected, it is never created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segforge import get_registries, plugins
from segforge.training.callbacks import EVENTS

TASK, DATASET = "71", "Task071_Events"


def segforge(*args: str) -> None:
    from segforge.cli.app import main

    plugins.reset_manager()
    try:
        main(list(args))
    except SystemExit as exc:
        assert exc.code in (0, None), f"segforge {' '.join(args)} exited with {exc.code}"
    finally:
        plugins.reset_manager()


def shrink_network(plans_file: Path) -> None:
    """4-8-16 features and batch 2, so an iteration takes milliseconds on a CPU."""
    from segforge.planning import load_plans, save_plans

    plans = load_plans(plans_file)
    configurations = {}
    for name, conf in plans.configurations.items():
        params = dict(conf.network.params)
        params["features_per_stage"] = [4, 8, 16, 32, 64, 128][: len(params["features_per_stage"])]
        configurations[name] = conf.model_copy(
            update={"network": conf.network.model_copy(update={"params": params}), "batch_size": 2}
        )
    save_plans(plans.model_copy(update={"configurations": configurations}), plans_file)


@pytest.fixture
def tiny_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from segforge.testing.synthetic import make_task

    for var, sub in (("SEGFORGE_RAW", "raw"), ("SEGFORGE_PREPROCESSED", "pre"), ("SEGFORGE_RESULTS", "results")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    make_task(tmp_path / "raw" / DATASET, n_cases=5, shape=(12, 16, 14), seed=1)
    segforge("plan-and-preprocess", "--task", TASK, "-np", "1", "--configs", "3d_fullres")
    shrink_network(tmp_path / "pre" / DATASET / "segforgePlans.json")
    return tmp_path


def test_registered_from_its_entry_point_and_created_only_when_selected():
    from segforge.training.callback_selection import select_callbacks

    entry = get_registries().callback.entry("event_log")
    assert (entry.origin.dist, entry.origin.plugin) == ("segforge-example-callback", "example_callback")
    assert len(select_callbacks([], [], None, get_registries())) == 0
    plugins.reset_manager()


def test_a_run_that_selects_it_receives_every_documented_event(tiny_task: Path):
    segforge("train", "--task", TASK, "--fold", "0", "--epochs", "2", "--iterations-per-epoch", "2",
             "--set", "val_iterations=1", "--set", "final_val_iterations=1", "--set", "threads=1",
             "--callback", "event_log")  # fmt: skip
    fold = next((tiny_task / "results" / DATASET).rglob("fold_0"))
    events = [json.loads(line) for line in (fold / "events.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert set(names) == set(EVENTS)
    assert names[0] == "run_start" and names[-1] == "run_end" and events[-1]["status"] == "finished"
    assert names.count("train_step_end") == 4 and names.count("epoch_end") == 2
    assert [e["final"] for e in events if e["event"] == "validation_end"] == [False, False, True]
    assert "checkpoint_final.pt" in [e["name"] for e in events if e["event"] == "checkpoint_saved"]
    assert events[0]["loss"] == "dc_ce" and events[0]["total_iterations"] == 4
    manifest = json.loads((fold / "manifest.json").read_text())
    assert manifest["callbacks"] == [
        {
            "name": "event_log",
            "version": "0.1.0",
            "origin": {"plugin": "example_callback", "dist": "segforge-example-callback", "version": "0.1.0",
                       "builtin": False},
            "params": {"file": "events.jsonl", "skip_steps": False},
            "error": None,
        }
    ]  # fmt: skip
