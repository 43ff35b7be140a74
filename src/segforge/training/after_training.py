"""What a trainer does after its last iteration: next-stage predictions and the held-out validation.

These run as :meth:`DefaultTrainer.after_training` (rank 0, once training finished) and
:meth:`DefaultTrainer.complete_after_training` (``--continue`` of a run that had finished), so a
plugin trainer can replace or extend them: its own validation metric, no cascade inputs, an
export of its own. The time they take is charged to the run's ``end_predictions`` account and
shown beside the budget's estimate.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.protocols import Trainer


def end_of_training(trainer: Trainer) -> None:
    """Next-stage inputs and the validation of the held-out cases, timed into the run's account.

    The validation is deferred for fold ``all`` under a budget (its cases are the training cases)
    and when a stop request asked to skip it (:func:`.fold_all_budget.validation_deferred`).
    """
    from segforge.training.cascade import write_next_stage_predictions
    from segforge.training.fold_all_budget import validation_deferred
    from segforge.training.validation import validate_after_training

    started = time.perf_counter()
    with trainer.time_account.measure("end_predictions"):  # type: ignore[attr-defined]
        write_next_stage_predictions(trainer)  # 3d_lowres: the cascade's inputs (training/cascade.py)
        deferred = validation_deferred(trainer)
        if deferred is None:
            validate_after_training(trainer)
        else:
            trainer.log.line(f"validation: {deferred}")
    if trainer.budget is not None:  # the budget reserved time for these: show estimate and reality
        trainer.budget.record_end_predictions(time.perf_counter() - started)
    trainer.write_manifest("finished")  # time_spent now includes the predictions


def complete_end_of_training(trainer: Trainer) -> None:
    """A finished run continued: the validation an interruption left pending, then missing next-stage files."""
    from segforge.training.cascade import write_next_stage_predictions
    from segforge.training.validation import validate_after_training, validation_pending

    if trainer.context.val_ids and validation_pending(trainer.context.fold_folder):
        validate_after_training(trainer)
    if trainer.dist.is_main:
        write_next_stage_predictions(trainer, overwrite=False)  # writes only what is missing
