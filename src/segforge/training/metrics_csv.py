"""The builtin ``csv_metrics`` callback: one row per epoch in ``metrics.csv`` of the fold folder.

For spreadsheets and pandas without parsing ``training_log.txt``. The file is rewritten
atomically after every epoch (a few hundred rows at most), so a reader never sees a partial
row. On ``--continue`` the rows of epochs the checkpoint had not reached are dropped first:
the resumed run trains those epochs again and writes them anew, so the file always matches
the checkpoint's history with each epoch once.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from segforge.atomic import atomic_write_text
from segforge.training.callbacks import Callback, CallbackParams, Event

#: columns before the per-class pseudo Dice ones (``pseudo_dice_1`` ... in scored-class order)
HEAD = ("epoch", "iterations", "train_loss", "val_loss", "mean_pseudo_dice", "ema_pseudo_dice", "lr", "epoch_time_s")


class CsvMetricsParams(CallbackParams):
    file: str = Field("metrics.csv", description="file name inside the fold folder")

    @field_validator("file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or Path(value).name != value or value in (".", ".."):
            raise ValueError("must be a plain file name (it is written inside the fold folder)")
        return value


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


class CsvMetricsLogger(Callback):
    """Writes metrics.csv in the fold folder: epoch, losses, pseudo Dice (mean, EMA, per class), lr, seconds."""

    name = "csv_metrics"
    version = "1.0"
    Params = CsvMetricsParams
    params: CsvMetricsParams

    def __init__(self, params: CsvMetricsParams) -> None:
        super().__init__(params)
        self.path: Path | None = None
        self.rows: list[dict[str, Any]] = []

    def on_run_start(self, event: Event) -> None:
        self.path = event.fold_folder / self.params.file
        self.rows = [row for row in self._read() if int(row["epoch"]) < event.epoch]
        if self.rows or self.path.exists():
            self._write()

    def on_epoch_end(self, event: Event) -> None:
        dice = [float(d) for d in event.data.get("pseudo_dice", [])]
        row: dict[str, Any] = {
            "epoch": event.epoch,
            "iterations": event.data.get("iterations", event.iteration),
            "train_loss": event.data.get("train_loss"),
            "val_loss": event.data.get("val_loss"),
            "mean_pseudo_dice": _mean(dice),
            "ema_pseudo_dice": event.data.get("ema_dice"),
            "lr": event.data.get("lr"),
            "epoch_time_s": event.data.get("epoch_time"),
        }
        row.update({f"pseudo_dice_{i + 1}": d for i, d in enumerate(dice)})
        self.rows.append(row)
        self._write()

    def _read(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.is_file():
            return []
        with self.path.open(newline="", encoding="utf-8") as f:
            return [row for row in csv.DictReader(f) if row.get("epoch", "").isdigit()]

    def _write(self) -> None:
        columns = list(HEAD)
        for row in self.rows:
            columns += [key for key in row if key not in columns]
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        assert self.path is not None
        atomic_write_text(self.path, text.getvalue())
