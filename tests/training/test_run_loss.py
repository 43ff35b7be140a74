"""One function chooses the loss (``resolve_loss``); the early check and the trainer agree, so a bad
``--set loss.KEY`` on a region dataset fails before the run folder exists."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from segforge_tiny_task import _run_cli

from segforge.errors import ConfigError
from segforge.testing.synthetic import make_region_task
from segforge.training.params import TrainerParams
from segforge.training.run_loss import resolve_loss
from segforge.training.run_setup import RunRequest

REGION_TASK, REGION_DATASET = "62", "Dataset062_RegionLoss"


def _context(loss: str | None, regions: bool) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(loss=loss), label_scheme=SimpleNamespace(has_regions=regions))


class _Trainer:
    default_loss = "dice"


def test_resolve_loss_order_flag_then_param_then_regions_then_trainer_default():
    assert resolve_loss(_context("ce", True), _Trainer, TrainerParams(loss="dc_ce")) == "ce"
    assert resolve_loss(_context(None, True), _Trainer, TrainerParams(loss="dc_ce")) == "dc_ce"
    assert resolve_loss(_context(None, True), _Trainer, TrainerParams()) == "dc_bce"
    assert resolve_loss(_context(None, False), _Trainer, TrainerParams()) == "dice"


@pytest.fixture(scope="module")
def region_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("region_loss")
    make_region_task(root / "raw" / REGION_DATASET, n_cases=3, shape=(12, 16, 14), seed=2)
    env = {"SEGFORGE_RAW": str(root / "raw"), "SEGFORGE_PREPROCESSED": str(root / "pre")}
    with mock.patch.dict(os.environ, env):
        _run_cli("plan-and-preprocess", "--task", REGION_TASK, "-np", "1", "--configs", "3d_fullres")
    return root


@pytest.mark.parametrize(
    ("loss", "overrides", "message"),
    [
        (None, ["loss.do_bg=true"], r"loss 'dc_bce' param loss.do_bg: Extra inputs are not permitted"),
        ("dc_ce", [], r"loss 'dc_ce' is for softmax outputs but this dataset trains regions"),
    ],
)
def test_a_loss_wrong_for_a_region_dataset_fails_before_the_run_folder_exists(
    region_task, tmp_path, monkeypatch, loss, overrides, message
):
    from segforge.training.api import train

    monkeypatch.setenv("SEGFORGE_RAW", str(region_task / "raw"))
    monkeypatch.setenv("SEGFORGE_PREPROCESSED", str(region_task / "pre"))
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "results"))
    request = RunRequest(task=REGION_TASK, fold="all", loss=loss, epochs=1, iterations_per_epoch=1, overrides=overrides)
    with pytest.raises(ConfigError, match=message):
        train(request)
    assert not (tmp_path / "results").exists()  # no run folder, no log, no manifest
