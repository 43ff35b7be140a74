"""Where a run's wall time went: probe, training steps, validation batches, saving, end predictions, other.

``--time-budget`` promises that the budget goes into training. Whether it did is a question
about seconds, so the manifest carries the answer (``time_spent``): the seconds of each kind
of work, their share of the budget, and the rest (``other``: start-up, building the network
and loaders, logging, idle time) as what the run's clock shows beyond the measured parts.

The account measures the trainer's own step methods by wrapping them *on the instance*
(:func:`instrument`): a plugin trainer's overrides are timed like the default ones, and neither
the epoch loop nor the trainer has to know about accounting. Nested work is charged once, to
the innermost kind: a training step taken inside the budget's probe counts as a training
step, a checkpoint saved at the end of an epoch as saving. The seconds travel in checkpoints
(key ``time_spent``), so a continued run accounts for its earlier sessions as its clock does.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

#: the kinds of work, in the order the manifest lists them (``probe``: the budget's timing that is not a
#: training step - the planning probe before the trainer is built, checks before the first iteration)
KINDS = ("probe", "training_steps", "validation_batches", "saving", "end_predictions")
#: the kinds the budget exists for: optimizer steps (with their data loading) and keeping their result
TRAINING_KINDS = ("training_steps", "saving")

#: trainer methods and the kind of work each one is
_TRAINER_METHODS = {
    "train_step": "training_steps",
    "validate": "validation_batches",
    "save_checkpoint": "saving",
    "on_epoch_end": "saving",  # log, EMA, best/latest checkpoints, progress plot
    "write_manifest": "saving",
}


class TimeAccount:
    """Seconds per kind of work; ``now`` is injectable so tests drive it with a fake clock."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self._now = now
        self.seconds: dict[str, float] = dict.fromkeys(KINDS, 0.0)
        self._stack: list[str] = []
        self._since = 0.0

    @contextlib.contextmanager
    def measure(self, kind: str) -> Iterator[None]:
        """Charge the time inside the block to ``kind`` (an enclosing block is paused meanwhile)."""
        if kind not in self.seconds:
            raise ValueError(f"unknown kind of work '{kind}' (known: {', '.join(KINDS)})")
        now = self._now()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
        self._stack.append(kind)
        self._since = now
        try:
            yield
        finally:
            now = self._now()
            self.seconds[self._stack.pop()] += now - self._since
            self._since = now

    def report(self, elapsed_s: float, budget_s: float | None = None) -> dict[str, Any]:
        """Seconds per kind plus ``other`` (``elapsed_s`` not measured), and their shares of the budget.

        Without a budget the shares are of the elapsed time. ``training_share`` is the share of
        :data:`TRAINING_KINDS` together: the figure a time budget is judged by.
        """
        measured = dict(self.seconds)
        if self._stack:  # a report from inside a measured block: count the open block up to now
            measured[self._stack[-1]] += self._now() - self._since
        other = max(0.0, elapsed_s - sum(measured.values()))
        seconds = {**measured, "other": other}
        base = budget_s if budget_s else max(elapsed_s, sum(seconds.values()), 1e-9)
        report: dict[str, Any] = {
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "share": {k: round(v / base, 4) for k, v in seconds.items()},
            "share_of": "budget" if budget_s else "elapsed",
            "training_share": round(sum(seconds[k] for k in TRAINING_KINDS) / base, 4),
            "elapsed_s": round(elapsed_s, 2),
        }
        if budget_s:
            report["unused_s"] = round(max(0.0, budget_s - elapsed_s), 2)
        return report

    def state_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.seconds.items()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Add the seconds of earlier sessions (a checkpoint's ``time_spent``)."""
        for kind, value in (state or {}).items():
            if kind in self.seconds:
                self.seconds[kind] += float(value)


def _timed(account: TimeAccount, kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with account.measure(kind):
            return method(*args, **kwargs)

    return wrapper


def _timed_batches(account: TimeAccount, method: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Making a training batch (in-process loading on the CPU) is part of the training step."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        batches = method(*args, **kwargs)
        while True:
            with account.measure("training_steps"):
                batch = next(batches, None)
            if batch is None:
                return
            yield batch

    return wrapper


def instrument(trainer: Any, account: TimeAccount) -> None:
    """Time ``trainer``'s steps (and its budget's probe) into ``account``; adds the checkpoint key.

    Called once, after the trainer is built and before it trains.
    """
    for name, kind in _TRAINER_METHODS.items():
        setattr(trainer, name, _timed(account, kind, getattr(trainer, name)))
    trainer.train_batches = _timed_batches(account, trainer.train_batches)
    payload = trainer.checkpoint_payload

    @functools.wraps(payload)
    def payload_with_time() -> dict[str, Any]:
        return {**payload(), "time_spent": account.state_dict()}

    trainer.checkpoint_payload = payload_with_time
    if trainer.budget is not None:  # thread count and precision timing before the first iteration
        trainer.budget.before_training = _timed(account, "probe", trainer.budget.before_training)
    trainer.time_account = account


def time_spent(trainer: Any) -> dict[str, Any] | None:
    """The manifest's ``time_spent`` entry (None for a trainer built without an account)."""
    account = getattr(trainer, "time_account", None)
    if account is None:
        return None
    budget_s = trainer.budget.budget_s if getattr(trainer, "budget", None) is not None else None
    return account.report(trainer.clock.elapsed(), budget_s)
