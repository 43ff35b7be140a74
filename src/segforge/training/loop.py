"""The epoch loop: train iterations, validation, epoch end; interruption and the final save.

Each step is a method of the trainer (see :mod:`.trainer`), so plugins change behaviour by
overriding steps, not this loop. The loop checks after every iteration whether a signal
asked it to stop (then it saves ``checkpoint_latest.pt`` at that exact iteration and exits
non-zero) and, in budget mode, whether the budget says to stop.

The run's callbacks (:mod:`.callbacks`) hear about it at fixed points: run start, every
training iteration, every validation, every epoch end, every saved checkpoint (from
:meth:`DefaultTrainer.save_checkpoint`) and run end, whatever the end (finished, paused,
interrupted by a signal, or failed with an exception, which is then re-raised).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from segforge.training import checkpoint as ckpt
from segforge.training import distributed, stop_request
from segforge.training.callbacks import callbacks_of, epoch_row, run_start_data
from segforge.training.signals import StopRequest, TrainingInterrupted, stop_on_signals

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.protocols import Trainer


@dataclass
class TrainingResult:
    """What a call to ``fit`` achieved."""

    status: str  # finished, paused
    epochs: int
    iterations: int
    best_ema: float | None
    final_pseudo_dice: list[float] | None
    elapsed_s: float
    checkpoints: list[str] = field(default_factory=list)


def run_training(trainer: Trainer, stop_after_epochs: int | None = None) -> TrainingResult:
    """Train until the schedule (or budget) is done, or ``stop_after_epochs`` epochs of this session."""
    log, callbacks = trainer.log, callbacks_of(trainer)
    epochs_this_session = 0
    with stop_on_signals() as stop:
        log.start_progress()
        try:
            agreement = distributed.before_training(trainer)  # the budget's choices (rank 0's under torchrun)
            callbacks.emit(trainer, "run_start", **run_start_data(trainer))
            while not trainer.done():
                run_epoch(trainer, stop, agreement)
                epochs_this_session += 1
                if stop_after_epochs is not None and epochs_this_session >= stop_after_epochs and not trainer.done():
                    trainer.save_checkpoint(ckpt.LATEST)
                    trainer.write_manifest("paused")
                    _run_end(trainer, "paused")
                    return _result(trainer, "paused")
            finish(trainer)
            _run_end(trainer, "finished")
        except TrainingInterrupted:
            _run_end(trainer, "interrupted")
            raise
        except Exception as exc:
            _run_end(trainer, "failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise
        finally:
            log.stop_progress()
            for loader in (getattr(trainer, "train_loader", None), getattr(trainer, "val_loader", None)):
                if loader is not None:
                    loader.close()
    return _result(trainer, "finished")


def epoch_length(trainer: Trainer) -> int:
    """Iterations of the current epoch: a full epoch, or what is left of the schedule."""
    state = trainer.state
    started = state.iteration - state.iteration_in_epoch
    return min(trainer.params.iterations_per_epoch, trainer.total_iterations - started)


def run_epoch(trainer: Trainer, stop: StopRequest, agreement: distributed.ScheduleAgreement | None = None) -> None:
    """One epoch: its remaining training iterations, then validation and the epoch-end step.

    ``agreement``: what the torchrun ranks last agreed on (kept by :func:`run_training` across epochs).
    """
    agreement = agreement if agreement is not None else distributed.ScheduleAgreement()
    state, callbacks = trainer.state, callbacks_of(trainer)
    epoch = state.epoch
    trainer.on_epoch_start(epoch)
    trainer.log.epoch_bar(f"epoch {epoch}", epoch_length(trainer), state.iteration_in_epoch)
    started = time.perf_counter()
    losses = list(state.partial_losses)
    batches = trainer.train_batches(epoch, state.iteration_in_epoch)
    while state.iteration_in_epoch < epoch_length(trainer):
        batch = next(batches, None)
        if batch is None:
            break
        trainer.set_lr(trainer.lr_at(state.iteration))
        loss = trainer.train_step(batch)
        state.iteration += 1
        state.iteration_in_epoch += 1
        losses.append(loss)
        state.partial_losses = losses
        trainer.log.advance(loss)
        callbacks.emit(trainer, "train_step_end", loss=loss)
        if trainer.budget is not None:
            trainer.budget.after_iteration(trainer)
        stop_request.poll(trainer)  # `segforge stop` / SIGUSR1: anneal to 0 over a short tail, then finish
        distributed.sync_iteration(trainer, stop, agreement)  # under torchrun: all ranks stop, or go on, together
        if stop.requested:
            interrupt(trainer, stop)
    train_loss = float(np.mean(losses)) if losses else math.nan
    val = trainer.validate(epoch)
    callbacks.emit(trainer, "validation_end", epoch, **val, final=False)
    trainer.on_epoch_end(epoch, train_loss, val, time.perf_counter() - started)
    callbacks.emit(trainer, "epoch_end", epoch, **epoch_row(trainer))
    if trainer.budget is not None:
        trainer.budget.after_epoch(trainer)
    distributed.sync_iteration(trainer, stop, agreement)
    if stop.requested:
        interrupt(trainer, stop)


def interrupt(trainer: Trainer, stop: StopRequest) -> None:
    """Save ``checkpoint_latest.pt`` where training stands and raise :class:`TrainingInterrupted`."""
    trainer.log.line(f"{stop.name} received: saving {ckpt.LATEST} and stopping")
    trainer.save_checkpoint(ckpt.LATEST)
    with contextlib.suppress(Exception):
        trainer.write_manifest("interrupted")
    state = trainer.state
    raise TrainingInterrupted(
        f"training interrupted by {stop.name} at epoch {state.epoch}, iteration {state.iteration}; "
        f"{ckpt.LATEST} saved in {trainer.context.fold_folder}",
        hint="resume with the same `segforge train` command plus --continue",
        signum=stop.signum,
    )


def finish(trainer: Trainer) -> None:
    """The end of training: optional final validation, final checkpoint, plot, manifest."""
    from segforge.training.progress_plot import plot_progress
    from segforge.training.run_dir import PROGRESS_PNG

    state = trainer.state
    state.finished = True
    final_iterations = trainer.params.final_val_iterations
    if final_iterations:
        started = time.perf_counter()
        val = trainer.validate(state.epoch, final_iterations)
        trainer.final_pseudo_dice = val["dice"]
        callbacks_of(trainer).emit(trainer, "validation_end", **val, final=True)
        dice = ", ".join(f"{d:.4f}" for d in val["dice"])
        trainer.log.line(
            f"final validation ({final_iterations} batches, {time.perf_counter() - started:.1f} s): "
            f"pseudo Dice [{dice}], mean {val['mean_dice']:.4f}"
        )
    trainer.save_checkpoint(ckpt.FINAL)
    if getattr(trainer, "dist", distributed.current()).is_main:
        with contextlib.suppress(FileNotFoundError):
            (trainer.context.fold_folder / ckpt.LATEST).unlink()
        plot_progress(trainer.context.fold_folder / PROGRESS_PNG, state.logs, trainer.log.warning)
    trainer.write_manifest("finished")
    trainer.log.line(
        f"training finished: {state.epoch} epochs, {state.iteration} iterations, {trainer.clock.elapsed():.0f} s"
    )


def _run_end(trainer: Trainer, status: str, error: str | None = None) -> None:
    """The ``run_end`` event, for every way the loop ends (after the last manifest write of the loop)."""
    data = {"status": status, "best_ema": trainer.state.best_ema, "final_pseudo_dice": trainer.final_pseudo_dice}
    callbacks_of(trainer).emit(trainer, "run_end", **data, elapsed_s=trainer.clock.elapsed(), error=error)


def _result(trainer: Trainer, status: str) -> TrainingResult:
    folder = trainer.context.fold_folder
    return TrainingResult(
        status=status,
        epochs=trainer.state.epoch,
        iterations=trainer.state.iteration,
        best_ema=trainer.state.best_ema,
        final_pseudo_dice=trainer.final_pseudo_dice,
        elapsed_s=trainer.clock.elapsed(),
        checkpoints=sorted(p.name for p in folder.glob("checkpoint_*.pt")),
    )
