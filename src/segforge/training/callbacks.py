"""Training callbacks: objects a run selects (``--callback NAME``) that the loop tells what happens.

A callback component is registered through ``segforge_register_callbacks`` like any other
component: it has ``name``, ``version`` and a pydantic ``Params``, and calling it with its
validated params returns the object that receives the events (subclassing :class:`Callback`
gives all of that, with no-op events to override). Installing a callback never changes a run:
only the callbacks named with ``--callback`` (or recorded in the checkpoint a ``--continue``
resumes) are created.

Events (:data:`EVENTS`), each delivered as ``on_<name>(event)`` with one :class:`Event`:

``run_start``
    training is about to start (or resume); ``event.data`` describes the run.
``train_step_end``
    after every training iteration; ``data = {"loss"}``.
``validation_end``
    after the per-epoch validation and the final one; ``data = {"loss", "dice", "mean_dice", "final"}``.
``epoch_end``
    after the epoch-end step (logging, EMA, checkpoints); ``data`` holds the epoch's logged row.
``checkpoint_saved``
    after a checkpoint file is complete on disk; ``data = {"name", "path"}``.
``run_end``
    the loop ends; ``data["status"]`` is ``finished``, ``paused``, ``interrupted`` or ``failed``.

Events go to rank 0 only under torchrun unless the callback sets ``all_ranks = True``.

A callback that raises is isolated rather than fatal: training is the expensive part and an
observer (a tracker that lost its server, a full disk for its log) must not throw it away. The
run logs one warning line naming the callback, its plugin and the event, stops calling that
callback, and records the error under ``callbacks`` in ``manifest.json``. Errors in a callback's
params or constructor, by contrast, stop the run before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.protocols import Trainer

#: every event a callback can receive, in the order a run produces them
EVENTS: tuple[str, ...] = ("run_start", "train_step_end", "validation_end", "epoch_end", "checkpoint_saved", "run_end")


@dataclass(frozen=True)
class Event:
    """One event: where training stands when it happened, plus the event's own values in ``data``.

    ``data`` only ever gains keys, so a callback written for today's events keeps working.
    """

    name: str
    epoch: int
    iteration: int
    rank: int
    fold_folder: Path
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what a tracker logs)."""
        head = {"event": self.name, "epoch": self.epoch, "iteration": self.iteration, "rank": self.rank}
        return {**head, "fold_folder": str(self.fold_folder), **self.data}


class CallbackParams(BaseModel):
    """Base for callback Params: unknown keys are errors, so a misspelled ``--set callback.NAME.KEY`` fails."""

    model_config = ConfigDict(extra="forbid")


@runtime_checkable
class CallbackProtocol(Protocol):
    """What the loop calls; every ``on_*`` method is optional for duck-typed callbacks."""

    def on_run_start(self, event: Event) -> None: ...
    def on_train_step_end(self, event: Event) -> None: ...
    def on_validation_end(self, event: Event) -> None: ...
    def on_epoch_end(self, event: Event) -> None: ...
    def on_checkpoint_saved(self, event: Event) -> None: ...
    def on_run_end(self, event: Event) -> None: ...


class Callback:
    """Convenience base: ``name``/``version``/``Params`` as class attributes, no-op events, ``self.params``."""

    name: ClassVar[str]
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[BaseModel]] = CallbackParams
    #: receive events on every rank under torchrun (default: rank 0 only)
    all_ranks: ClassVar[bool] = False

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    def on_run_start(self, event: Event) -> None:
        """Training starts (``data["resumed"]`` is true on ``--continue``)."""

    def on_train_step_end(self, event: Event) -> None:
        """One training iteration is done."""

    def on_validation_end(self, event: Event) -> None:
        """A validation pass is done."""

    def on_epoch_end(self, event: Event) -> None:
        """An epoch is done and logged."""

    def on_checkpoint_saved(self, event: Event) -> None:
        """A checkpoint file is complete."""

    def on_run_end(self, event: Event) -> None:
        """The training loop ends."""


@dataclass
class SelectedCallback:
    """One callback of a run: its registry entry, validated params, the live object and its error if any."""

    entry: Any
    params: BaseModel
    instance: Any
    error: str | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    def record(self) -> dict[str, Any]:
        """What checkpoints (for ``--continue``) and manifests store about it."""
        return {
            "name": self.name,
            "version": self.entry.version,
            "origin": self.entry.origin.as_dict(),
            "params": self.params.model_dump(mode="json"),
            "error": self.error,
        }


class Callbacks:
    """The callbacks a run selected; :meth:`emit` turns loop positions into events."""

    def __init__(self, selected: list[SelectedCallback] | None = None) -> None:
        self.selected = list(selected or [])

    def __len__(self) -> int:
        return len(self.selected)

    def names(self) -> list[str]:
        return [s.name for s in self.selected]

    def records(self) -> list[dict[str, Any]]:
        return [s.record() for s in self.selected]

    def emit(self, trainer: Trainer, name: str, epoch: int | None = None, /, **data: Any) -> None:
        """Deliver event ``name`` to every live callback (rank 0 only unless a callback asks for all ranks)."""
        if not self.selected:
            return
        dist = getattr(trainer, "dist", None)
        is_main = dist is None or dist.is_main
        state = trainer.state
        event = Event(
            name=name,
            epoch=state.epoch if epoch is None else epoch,
            iteration=state.iteration,
            rank=getattr(dist, "rank", 0),
            fold_folder=Path(trainer.context.fold_folder),
            data=data,
        )
        for callback in self.selected:
            if callback.error is not None or not (is_main or getattr(callback.instance, "all_ranks", False)):
                continue
            method = getattr(callback.instance, f"on_{name}", None)
            if method is None:
                continue
            try:
                method(event)
            except Exception as exc:  # isolated: see the module docstring
                callback.error = f"on_{name}: {type(exc).__name__}: {exc}".splitlines()[0]
                trainer.log.warning(
                    f"callback '{callback.name}' of {callback.entry.origin.describe()} failed in {callback.error}; "
                    "it receives no more events in this run"
                )


def callbacks_of(trainer: Trainer) -> Callbacks:
    """The trainer's callbacks (none for a duck-typed trainer that has no ``callbacks`` attribute)."""
    callbacks = getattr(trainer, "callbacks", None)
    return callbacks if isinstance(callbacks, Callbacks) else Callbacks()


def run_start_data(trainer: Trainer) -> dict[str, Any]:
    """What ``run_start`` tells a callback about the run."""
    ctx, state = trainer.context, trainer.state
    return {
        "resumed": state.iteration > 0,
        "dataset": ctx.dataset_name,
        "configuration": ctx.configuration.name,
        "fold": ctx.fold,
        "trainer": trainer.name,
        "network": ctx.network_entry.name,
        "loss": trainer.loss_name,
        "total_iterations": trainer.total_iterations,
        "iterations_per_epoch": trainer.params.iterations_per_epoch,
        "world_size": getattr(getattr(trainer, "dist", None), "world_size", 1),
        "callbacks": callbacks_of(trainer).names(),
    }


def epoch_row(trainer: Trainer) -> dict[str, Any]:
    """The last logged epoch (train/val loss, pseudo Dice per class, EMA, lr, seconds, iterations)."""
    logs = trainer.state.logs
    row = {key: values[-1] for key, values in logs.items() if values}
    return {**row, "best_ema": trainer.state.best_ema}
