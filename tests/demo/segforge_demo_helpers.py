"""Helpers for the demo tests: a small copy of the demo data and a tiny network in the plans.

A plain module (not conftest.py) so test files can import its names; pytest puts this folder
on sys.path because it is not a package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from segforge.demo import demo_data_path

MINI_NAME = "Task04_Mini"
MINI_DATASET = "Task004_Mini"
#: a fixed tiny schedule instead of the time budget, one torch thread, one validation batch
TINY_TRAINING = {"epochs": 2, "iterations_per_epoch": 1, "overrides": ["val_iterations=1", "threads=1"]}


def make_mini_source(folder: Path, n_train: int = 4, n_test: int = 2) -> Path:
    """``folder/Task04_Mini``: the first cases of the embedded demo data, in the same MSD layout."""
    src = demo_data_path()
    dst = folder / MINI_NAME
    dj = json.loads((src / "dataset.json").read_text())
    train, test = dj["training"][:n_train], dj["test"][:n_test]
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
    for entry in train:
        for key in ("image", "label"):
            shutil.copyfile(src / entry[key], dst / entry[key])
    for image in test:
        shutil.copyfile(src / image, dst / image)
        shutil.copyfile(src / "labelsTs" / Path(image).name, dst / "labelsTs" / Path(image).name)
    dj.update(training=train, test=test, numTraining=n_train, numTest=n_test)
    (dst / "dataset.json").write_text(json.dumps(dj, indent=1))
    return dst


def shrink_planned_networks(monkeypatch) -> None:
    """Make ``plan_experiment`` plan 4-8-16-... features: a training iteration then takes milliseconds."""
    import segforge.planning as planning

    real = planning.plan_experiment

    def tiny(*args, **kwargs):
        plans = real(*args, **kwargs)
        configurations = {}
        for name, conf in plans.configurations.items():
            params = dict(conf.network.params)
            params["features_per_stage"] = [4 * 2**i for i in range(len(params["features_per_stage"]))]
            network = conf.network.model_copy(update={"params": params})
            configurations[name] = conf.model_copy(update={"network": network})
        return plans.model_copy(update={"configurations": configurations})

    monkeypatch.setattr(planning, "plan_experiment", tiny)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``segforge ARGS`` in-process: (exit code, stdout, stderr)."""
    from segforge.cli.app import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err
