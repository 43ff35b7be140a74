"""``event_log``: appends every training event a run delivers to a JSON-lines file in the fold folder.

The shape of an experiment tracker in a few lines: open the destination at ``run_start``,
write each event's plain values, close at ``run_end``. A tracker for MLflow or Weights & Biases
would call its client in the same places. Selected per run::

    segforge train --task 4 --fold 0 --callback event_log --set callback.event_log.skip_steps=true
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import Field

from segforge.training.callbacks import Callback, CallbackParams, Event


class EventLogParams(CallbackParams):
    file: str = Field("events.jsonl", description="file name inside the fold folder")
    skip_steps: bool = Field(False, description="leave out train_step_end (one line per iteration)")


def _plain(value: Any) -> Any:
    """Strict JSON: NaN/inf (e.g. the pseudo Dice of an absent class) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class EventLog(Callback):
    """Writes every training event as one JSON line to events.jsonl in the fold folder."""

    name = "event_log"
    version = "0.1.0"
    Params = EventLogParams

    def __init__(self, params: EventLogParams) -> None:
        super().__init__(params)
        self._file = None

    def _write(self, event: Event) -> None:
        if self._file is None:  # opened at run_start; appending keeps earlier sessions' lines
            self._file = (event.fold_folder / self.params.file).open("a", encoding="utf-8")
        self._file.write(json.dumps(_plain(event.as_dict()), allow_nan=False) + "\n")
        self._file.flush()

    def on_run_start(self, event: Event) -> None:
        self._write(event)

    def on_train_step_end(self, event: Event) -> None:
        if not self.params.skip_steps:
            self._write(event)

    def on_validation_end(self, event: Event) -> None:
        self._write(event)

    def on_epoch_end(self, event: Event) -> None:
        self._write(event)

    def on_checkpoint_saved(self, event: Event) -> None:
        self._write(event)

    def on_run_end(self, event: Event) -> None:
        self._write(event)
        self._file.close()
        self._file = None
