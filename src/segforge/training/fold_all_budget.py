"""Fold ``all`` under ``--time-budget``: the budget goes to training, not to predicting the training cases.

Fold ``all`` trains on every case, so its "validation" cases are the training cases. Without a
budget nnU-Net's recipe still predicts them all at the end (a fit check, not a measure of
generalisation). Under a budget that cost real training time: on a busy 2-core CPU the 200
hippocampus cases took 250 s of a 600 s budget, leaving 13 iterations. So a budgeted fold
``all`` run

- does **not** predict the training cases after training (the budget keeps no time for it;
  ``segforge train ... --fold all --validate-only`` does it afterwards, outside the budget, and
  ``--continue`` on the finished run too);
- runs :data:`VAL_ITERATIONS` validation batches per epoch instead of the budget's usual number
  (they only feed the pseudo-Dice curve and ``checkpoint_best.pt``; on training cases a cheap
  signal is enough) and no final validation batches;
- still writes a ``3d_lowres`` stage's next-stage inputs: they are data the cascade trains on,
  not a check, and the budget keeps time for them.

A user's explicit ``--set budget.val_iterations=...`` / ``budget.final_val_iterations=...``
wins. The way to validate such a model is on cases it never saw: ``segforge predict`` on
held-out images, then ``segforge evaluate`` against their labels (docs/time-budget.md).
"""

from __future__ import annotations

from typing import Any

#: validation batches per epoch of a budgeted fold-all run (the budget's default is 8)
VAL_ITERATIONS = 2

DEFERRED = (
    "fold all under --time-budget: the training cases are not predicted inside the budget; "
    "score the model on held-out cases (segforge predict, then segforge evaluate), or predict the training "
    "cases afterwards with the same train command plus --validate-only"
)


def is_fold_all(fold: Any) -> bool:
    return str(fold).strip().lower() == "all"


def _set_explicitly(overrides: list[str], key: str) -> bool:
    return any(item.split("=", 1)[0].strip() == key for item in overrides)


def fold_all_params(params: Any, request: Any, budget: Any) -> Any:
    """The budget's trainer params for fold ``all``: few validation batches, none at the end (recorded)."""
    if budget is None or not is_fold_all(request.fold):
        return params
    keys = ("val_iterations", "final_val_iterations")
    chosen = {k for k in keys if _set_explicitly(request.overrides, f"budget.{k}")}
    update: dict[str, int] = {}
    if "val_iterations" not in chosen:
        update["val_iterations"] = min(VAL_ITERATIONS, params.val_iterations)
    if "final_val_iterations" not in chosen:
        update["final_val_iterations"] = 0
    budget.decisions["fold_all"] = {
        **update,
        "end_of_training_validation": "not inside the budget",
        "why": "fold all validates on its own training cases: their predictions would take budget from training",
    }
    if not update:
        return params
    if "val_iterations" in update and "val_iterations" in budget.decisions:
        budget.decisions["val_iterations"] = update["val_iterations"]
    # the budget's own params too: it keeps time at the end for budget.final_val_iterations batches
    budget_params = params.budget.model_copy(update=update)
    budget.params = budget_params
    return params.model_copy(update={**update, "budget": budget_params})


def validation_deferred(trainer: Any) -> str | None:
    """Why the end-of-training validation is not run now (None: it runs)."""
    stop = getattr(trainer, "stop_tail", None)
    if stop is not None and stop.skip_validation:
        return "skipped by the stop request; run it later with the same train command plus --validate-only"
    if getattr(trainer, "budget", None) is not None and is_fold_all(trainer.context.fold):
        return DEFERRED
    return None
