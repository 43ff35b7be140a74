"""The builtin csv_metrics callback: one row per epoch, rewritten atomically, trimmed to the checkpoint on resume."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from segforge.training.callbacks import Event
from segforge.training.metrics_csv import CsvMetricsLogger, CsvMetricsParams


def _epoch_end(folder: Path, epoch: int, dice: list[float]) -> Event:
    data = {"train_loss": 1.0 / (epoch + 1), "val_loss": 0.5, "pseudo_dice": dice, "ema_dice": 0.25}
    return Event(
        "epoch_end",
        epoch,
        10 * (epoch + 1),
        0,
        folder,
        {**data, "lr": 0.01, "epoch_time": 2.0, "iterations": 10 * (epoch + 1)},
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_rows_per_epoch_with_mean_and_per_class_dice(tmp_path):
    logger = CsvMetricsLogger(CsvMetricsParams())
    logger.on_run_start(Event("run_start", 0, 0, 0, tmp_path))
    logger.on_epoch_end(_epoch_end(tmp_path, 0, [0.5, math.nan]))
    logger.on_epoch_end(_epoch_end(tmp_path, 1, [0.6, 0.8]))
    text = (tmp_path / "metrics.csv").read_text()
    assert text.splitlines()[0] == (
        "epoch,iterations,train_loss,val_loss,mean_pseudo_dice,ema_pseudo_dice,lr,epoch_time_s,pseudo_dice_1,pseudo_dice_2"
    )
    rows = _rows(tmp_path / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert float(rows[0]["mean_pseudo_dice"]) == 0.5  # an absent class (NaN) is left out of the mean
    assert rows[0]["pseudo_dice_2"] == "nan" and float(rows[1]["mean_pseudo_dice"]) == pytest.approx(0.7)
    assert not list(tmp_path.glob(".*.tmp"))  # written through segforge.atomic


def test_resume_drops_epochs_the_checkpoint_had_not_reached(tmp_path):
    first = CsvMetricsLogger(CsvMetricsParams(file="m.csv"))
    first.on_run_start(Event("run_start", 0, 0, 0, tmp_path))
    for epoch in range(4):
        first.on_epoch_end(_epoch_end(tmp_path, epoch, [0.5]))
    resumed = CsvMetricsLogger(CsvMetricsParams(file="m.csv"))  # killed after epoch 3, checkpoint from epoch 1
    resumed.on_run_start(Event("run_start", 2, 20, 0, tmp_path, {"resumed": True}))
    assert [r["epoch"] for r in _rows(tmp_path / "m.csv")] == ["0", "1"]
    resumed.on_epoch_end(_epoch_end(tmp_path, 2, [0.9]))
    rows = _rows(tmp_path / "m.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and float(rows[2]["pseudo_dice_1"]) == 0.9


@pytest.mark.parametrize("name", ["../m.csv", "sub/m.csv", ""])
def test_file_must_be_a_plain_name(name):
    with pytest.raises(ValidationError, match="must be a plain file name"):
        CsvMetricsParams(file=name)
