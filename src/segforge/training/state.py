"""Where training stands: counters, logged curves and the best EMA, as plain data for checkpoints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

LOG_KEYS = ("train_loss", "val_loss", "pseudo_dice", "ema_dice", "lr", "epoch_time", "iterations")


@dataclass
class TrainingState:
    """Progress of one run; ``iteration_in_epoch > 0`` only for a run interrupted mid-epoch."""

    epoch: int = 0
    iteration: int = 0
    iteration_in_epoch: int = 0
    #: losses of the current, unfinished epoch (so a mid-epoch resume logs the whole epoch's mean)
    partial_losses: list[float] = field(default_factory=list)
    #: training seconds of earlier sessions plus this one up to the last save
    elapsed_s: float = 0.0
    best_ema: float | None = None
    finished: bool = False
    logs: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in LOG_KEYS})

    @property
    def ema(self) -> float | None:
        values = self.logs["ema_dice"]
        return values[-1] if values else None

    def log_epoch(self, **values: Any) -> None:
        for key in LOG_KEYS:
            self.logs[key].append(values[key])

    def is_new_best(self) -> bool:
        """True (and remembered) when the latest EMA pseudo-Dice beats every earlier one."""
        ema = self.ema
        if ema is None or math.isnan(ema):
            return False
        if self.best_ema is None or ema > self.best_ema:
            self.best_ema = ema
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrainingState:
        logs = {k: list(state.get("logs", {}).get(k, [])) for k in LOG_KEYS}
        fields = {k: v for k, v in state.items() if k in cls.__dataclass_fields__ and k != "logs"}
        return cls(**fields, logs=logs)
