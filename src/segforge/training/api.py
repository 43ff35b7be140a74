"""``train(request)``: the Python API behind ``segforge train``.

Resolves the run (:mod:`.run_setup`), decides the trainer params (checkpoint's when
continuing, then ``--epochs``/``--iterations-per-epoch``/``--set``, then the budget's
choices), builds the trainer, restores or initialises it, writes the manifest and trains.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from segforge.errors import UsageError
from segforge.training import budget_setup, distributed
from segforge.training.callback_selection import is_callback_item, select_callbacks
from segforge.training.checkpoint import CheckpointWarning, resumable_checkpoint
from segforge.training.clock import Clock
from segforge.training.overrides import apply_overrides
from segforge.training.rank_log import open_log
from segforge.training.run_dir import TRAINING_LOG
from segforge.training.run_setup import RunContext, RunRequest, resolve_run
from segforge.training.stop_request import running_marker


def _params(context: RunContext, resume: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """Trainer params: defaults (or the checkpoint's), then the request's flags and ``--set`` items."""
    request = context.request
    model = context.trainer_entry.component.Params
    base = model.model_validate(resume["trainer"]["params"]) if resume else model()
    items = [item for item in request.overrides if not is_callback_item(item)]  # callback.NAME.KEY: selection
    if request.epochs is not None:
        items.insert(0, f"epochs={request.epochs}")
    if request.iterations_per_epoch is not None:
        items.insert(0, f"iterations_per_epoch={request.iterations_per_epoch}")
    params, loss_updates = apply_overrides(model, base, items)
    if request.loss is not None and resume is None:
        params = params.model_copy(update={"loss": request.loss})
    if resume is not None:
        loss_updates = {**resume["loss"]["params"], **loss_updates}
    _check_loss_params(context, params, loss_updates)
    return params, loss_updates


def _check_loss_params(context: RunContext, params: Any, loss_updates: dict[str, Any]) -> None:
    """Validate the loss and its ``loss.KEY`` values before anything is written (one-line error naming the key)."""
    from segforge.plugins import get_registries
    from segforge.training.run_loss import check_loss

    check_loss(context, context.trainer_entry.component, params, loss_updates, get_registries())


def _callbacks(request: RunRequest, resume: dict[str, Any] | None, registries: Any) -> Any:
    """``--callback`` / ``--set callback.NAME.KEY`` (plus the checkpoint's selection on --continue), created now."""
    from segforge.plugins import get_registries

    stored = resume.get("callbacks") if resume is not None else None
    return select_callbacks(request.callbacks, request.overrides, stored, registries or get_registries())


def _check_request(request: RunRequest) -> None:
    if request.time_budget_min is not None and not (
        request.time_budget_min > 0 and math.isfinite(request.time_budget_min)
    ):
        raise UsageError(f"--time-budget {request.time_budget_min}: must be a positive number of minutes")
    if request.pretrained_weights is not None and request.resume:
        raise UsageError(
            "--pretrained-weights and --continue cannot be combined",
            hint="--continue resumes the run's own weights; pretrained weights only start a new run",
        )


def _budget(
    request: RunRequest,
    resume: dict[str, Any] | None,
    params: Any,
    device_type: str,
    planned_batch: int,
    clock: Clock,
    plan: Any = None,
) -> tuple[Any, Any]:
    """The budget controller (``--time-budget``, or a budgeted run being continued) and the params it sets.

    A continued run keeps the params its checkpoint recorded (the budget chose them in the first
    session); only the process-wide CPU settings (threads, allocator) are applied again.
    """
    from segforge.training.budget import BudgetController

    stored = resume.get("budget") if resume is not None else None
    if request.time_budget_min is None and not stored:
        return None, params
    minutes = request.time_budget_min or stored["budget_s"] / 60
    budget = BudgetController(minutes * 60, params.budget, clock)
    if plan is not None:  # what budget_setup chose before the trainer was built, and its probe's seconds
        budget.plan, budget.probe_spent_s = plan
    prepared = budget.prepare_params(params, device_type, planned_batch)
    if resume is None:
        from segforge.training.fold_all_budget import fold_all_params

        prepared = fold_all_params(prepared, request, budget)  # fold all: the budget goes to training
    return budget, (prepared if resume is None else params)


def build_trainer(request: RunRequest, registries: Any = None) -> tuple[Any, dict[str, Any] | None]:
    """The trainer for ``request``, set up and restored (when continuing); and the checkpoint it resumed."""
    from segforge.training.device import resolve_device

    _check_request(request)
    run, device = distributed.init_from_environment(resolve_device(request.device))
    with run.main_first():  # under torchrun rank 0 writes the split file (or plans variant) first
        context = resolve_run(request, registries)
    resolve = lambda r: resolve_run(r, registries)  # noqa: E731 - another configuration of the same request
    context = budget_setup.continued_configuration(request, context, resolve)  # the budget may have chosen 2d
    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always", CheckpointWarning)
        found = resumable_checkpoint(context.fold_folder) if request.resume else None
    resume = found[1] if found else None
    context = budget_setup.adopt_checkpoint_plans(context, resume)  # a budget's narrower network / smaller patch
    params, loss_updates = _params(context, resume)
    clock = Clock(started_ago_s=request.started_ago_s)
    context, plan = budget_setup.plan_if_budgeted(request, context, resume, params, device, clock, run.active, resolve)
    callbacks = _callbacks(request, resume, registries)
    context.fold_folder.mkdir(parents=True, exist_ok=True)
    log = open_log(run, context.fold_folder / TRAINING_LOG)
    for note in context.notes:
        log.line(note)
    for warning in skipped:
        log.warning(str(warning.message))
    if request.resume:
        log.line(f"continuing from {found[0].name}" if found else "no valid checkpoint to continue from: starting over")
    budget, params = _budget(request, resume, params, device.type, context.configuration.batch_size, clock, plan)
    trainer_cls = context.trainer_entry.component
    trainer = trainer_cls(
        context, params, log, device=device, loss_params=loss_updates, budget=budget, clock=clock, callbacks=callbacks
    )
    if run.active:
        log.line(distributed.describe(run, trainer.batch_size, params.oversample_foreground_percent))
    trainer.setup()
    if resume is not None:
        trainer.restore(resume)
    elif request.pretrained_weights is not None:
        trainer.load_pretrained(request.pretrained_weights)
    _add_run_records(trainer, resume)
    return trainer, resume


def _add_run_records(trainer: Any, resume: dict[str, Any] | None) -> None:
    """Where the run's time goes (manifest ``time_spent``) and how it can be stopped early (``stop``)."""
    from segforge.training import stop_request
    from segforge.training.time_account import TimeAccount, instrument

    account = TimeAccount()
    if resume is not None:
        account.load_state_dict(resume.get("time_spent"))
    elif trainer.budget is not None:  # the planning probe ran before the trainer existed
        account.seconds["probe"] += float(getattr(trainer.budget, "probe_spent_s", 0.0) or 0.0)
    instrument(trainer, account)
    stop_request.attach(trainer, resume)


def train(request: RunRequest, *, stop_after_epochs: int | None = None, registries: Any = None) -> Any:
    """Run (or continue) a training run; returns a :class:`segforge.training.loop.TrainingResult`."""
    from segforge.training.loop import _result

    trainer, resume = build_trainer(request, registries)
    try:
        if resume is not None and trainer.state.finished:
            trainer.log.line("this run has already finished (checkpoint_final.pt); nothing to do")
            trainer.complete_after_training()  # what an interruption left pending (the trainer's own step)
            return _result(trainer, "finished")
        ctx = trainer.context
        trainer.log.line(
            f"training {ctx.dataset_name} {ctx.configuration.name} fold {ctx.fold}: trainer {trainer.name}, "
            f"network {ctx.network_entry.name}, loss {trainer.loss_name}, {len(ctx.train_ids)} training / "
            f"{len(ctx.val_ids)} validation cases, batch {trainer.batch_size}, patch {trainer.patch_size}, "
            f"device {trainer.device}, {trainer.precision.name}"
            + (" (the time budget may switch a CPU run to bf16)" if trainer.budget is not None else "")
        )
        trainer.write_manifest("running")
        where = lambda: f"at epoch {trainer.state.epoch}, iteration {trainer.state.iteration}"  # noqa: E731
        with running_marker(trainer):  # `segforge stop` / SIGUSR1 reach the run while this holds
            with distributed.collective_failures(trainer.dist, where):
                result = trainer.fit(stop_after_epochs)
            if result.status == "finished" and trainer.dist.is_main:  # rank 0 validates; the others are done
                trainer.after_training()  # validation, next-stage predictions: a trainer step a plugin can override
        return result
    finally:
        trainer.log.close()
        distributed.shutdown()
