"""The tiny synthetic task the training tests train on (shared by tests/training and tests/cli).

Converted, planned and preprocessed by the real code; the planned network is then shrunk to
4-8-16 features in the plans file (the plans are user-editable data and the preprocessing
digest ignores the network), so a training iteration takes milliseconds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from unittest import mock

TASK = "9"
DATASET = "Task009_Tiny"
TINY_FEATURES = [4, 8, 16]
FAST = ["val_iterations=2", "threads=1"]


def _run_cli(*args: str) -> None:
    from segforge import plugins
    from segforge.cli.app import main

    plugins.reset_manager()
    try:
        main(list(args))
    except SystemExit as exc:  # pragma: no cover - only on failure
        if exc.code not in (0, None):
            raise RuntimeError(f"segforge {' '.join(args)} failed with exit code {exc.code}") from None
    finally:
        plugins.reset_manager()


def shrink_network(plans_file: Path, features: list[int]) -> None:
    from segforge.planning import load_plans, save_plans

    plans = load_plans(plans_file)
    configurations = {}
    for name, conf in plans.configurations.items():
        params = dict(conf.network.params)
        params["features_per_stage"] = features[: len(params["features_per_stage"])]
        network = conf.network.model_copy(update={"params": params})
        configurations[name] = conf.model_copy(update={"network": network, "batch_size": 2})
    save_plans(plans.model_copy(update={"configurations": configurations}), plans_file)


def prepare_task(root: Path) -> Path:
    """``root/{raw,pre}`` with Task009_Tiny: 6 cases of 16x20x18 voxels, 1 mm, labels 1 and 2."""
    from segforge.testing.synthetic import make_task

    make_task(root / "raw" / DATASET, n_cases=6, shape=(16, 20, 18), spacing=(1.0, 1.0, 1.0), seed=3)
    env = {"SEGFORGE_RAW": str(root / "raw"), "SEGFORGE_PREPROCESSED": str(root / "pre")}
    with mock.patch.dict(os.environ, env):
        _run_cli("plan-and-preprocess", "--task", TASK, "-np", "1", "--configs", "3d_fullres")
    shrink_network(root / "pre" / DATASET / "segforgePlans.json", TINY_FEATURES)
    return root


def use_task_copy(prepared: Path, tmp_path: Path, monkeypatch) -> Path:
    """Copy the preprocessed task into ``tmp_path`` and point SEGFORGE_* at it (results under it too)."""
    shutil.copytree(prepared / "pre", tmp_path / "pre")
    monkeypatch.setenv("SEGFORGE_RAW", str(prepared / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(tmp_path / "pre"))
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
    return tmp_path


def make_request(*extra: str, **kwargs):
    """A RunRequest for the tiny task: 2 epochs x 2 iterations, 2 validation batches, one thread."""
    from segforge.training.run_setup import RunRequest

    defaults = {"task": TASK, "fold": 0, "epochs": 2, "iterations_per_epoch": 2}
    defaults.update(kwargs)
    return RunRequest(overrides=[*FAST, *extra], **defaults)


def fold_dir(root: Path, fold: int | str = 0, trainer: str = "default", network: str = "generic_unet") -> Path:
    return root / "results" / DATASET / "3d_fullres" / f"{trainer}__{network}__segforgePlans" / f"fold_{fold}"


def train_folds(root: Path, folds: tuple[int | str, ...] = (0,), **request_kwargs) -> list:
    """Train ``folds`` of the task prepared under ``root`` with its own raw/pre/results folders
    (the environment and the plugin manager are restored afterwards); the training results."""
    from segforge import plugins
    from segforge.training.api import train

    env = {"SEGFORGE_RAW": str(root / "raw"), "SEGFORGE_PREPROCESSED": str(root / "pre"),
           "SEGFORGE_RESULTS": str(root / "results")}  # fmt: skip
    results = []
    with mock.patch.dict(os.environ, env):
        try:
            for fold in folds:
                plugins.reset_manager()
                results.append(train(make_request(fold=fold, **request_kwargs)))
        finally:
            plugins.reset_manager()
    return results
