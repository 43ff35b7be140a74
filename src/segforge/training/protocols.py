"""What the loop, resume, the time budget, torchrun and the end of training ask of a trainer and a schedule.

A plugin trainer usually subclasses :class:`~segforge.training.trainer.DefaultTrainer` and
overrides a few steps; these protocols say which members the machinery around the trainer
relies on, so an override of any other step stays the plugin's own business. The budget,
distributed sync and ``--continue`` change the run only through the methods listed here
(``resize``, ``load_schedule``, ``set_precision``, ``set_threads``, ``restore``), never by
assigning the trainer's attributes, so a trainer that overrides one of those methods sees
every change (a schedule without ``retarget`` is one example: ``resize`` decides what to do).

The attributes listed are read, not written, by the machinery (``state`` excepted: the loop
advances its counters).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.callbacks import Callbacks
    from segforge.training.clock import Clock
    from segforge.training.device import PrecisionChoice
    from segforge.training.distributed import DistributedRun
    from segforge.training.params import TrainerParams
    from segforge.training.run_log import TrainingLog
    from segforge.training.run_setup import RunContext
    from segforge.training.state import TrainingState


@runtime_checkable
class Schedule(Protocol):
    """A learning rate as a pure function of the iteration, stored in checkpoints as plain data.

    ``retarget(iteration, new_total)`` must keep the LR continuous at ``iteration`` and make it
    reach its end value at ``new_total`` (the time budget and ``segforge stop`` rely on that);
    ``from_state(schedule.state_dict())`` must give back an equal schedule (``--continue``, and
    torchrun ranks adopting rank 0's schedule).
    """

    total: int

    def lr_at(self, iteration: int) -> float: ...

    def retarget(self, iteration: int, new_total: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Schedule: ...


@runtime_checkable
class Trainer(Protocol):
    """The members of a trainer that the loop (:mod:`.loop`), resume, the budget (:mod:`.budget`),
    torchrun (:mod:`.distributed`), callbacks and the manifest use."""

    name: str
    version: str
    context: RunContext
    params: TrainerParams
    log: TrainingLog
    device: Any
    budget: Any
    clock: Clock
    callbacks: Callbacks
    dist: DistributedRun
    state: TrainingState
    schedule: Schedule
    precision: PrecisionChoice
    total_iterations: int
    final_pseudo_dice: list[float] | None
    loss_name: str

    # -- building and resuming
    def setup(self) -> None: ...

    def restore(self, payload: dict[str, Any]) -> None: ...

    def checkpoint_payload(self) -> dict[str, Any]: ...

    def save_checkpoint(self, name: str) -> None: ...

    def write_manifest(self, status: str) -> None: ...

    # -- the loop's steps
    def done(self) -> bool: ...

    def on_epoch_start(self, epoch: int) -> None: ...

    def train_batches(self, epoch: int, start: int) -> Iterator[dict[str, Any]]: ...

    def lr_at(self, iteration: int) -> float: ...

    def set_lr(self, lr: float) -> None: ...

    def train_step(self, batch: dict[str, Any]) -> float: ...

    def validate(self, epoch: int, iterations: int | None = None) -> dict[str, Any]: ...

    def on_epoch_end(self, epoch: int, train_loss: float, val: dict[str, Any], epoch_time: float) -> None: ...

    def fit(self, stop_after_epochs: int | None = None) -> Any: ...

    # -- what the budget, torchrun and resume change
    def resize(self, total: int, *, retarget: bool = True) -> None: ...

    def load_schedule(self, state: dict[str, Any]) -> None: ...

    def set_precision(self, name: str) -> None: ...

    def set_threads(self, threads: int) -> None: ...

    # -- after the last iteration (rank 0)
    def after_training(self) -> None: ...

    def complete_after_training(self) -> None: ...
