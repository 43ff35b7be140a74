"""What ``manifest.json`` says about a run (assembled from a trainer; written by :mod:`.run_dir`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segforge.training.callbacks import callbacks_of
from segforge.training.run_dir import command_line, environment, plans_digest, plugin_versions
from segforge.training.stop_request import stop_record
from segforge.training.time_account import time_spent

if TYPE_CHECKING:  # pragma: no cover
    from segforge.training.protocols import Trainer


def _component(entry: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": entry.name, "version": entry.version, "origin": entry.origin.as_dict(), "params": params}


def _labelled(trainer: Trainer, values: list[float] | None) -> dict[str, float] | None:
    if values is None:
        return None
    names = {v: k for k, v in trainer.context.plans.labels.items()}
    return {names.get(i + 1, str(i + 1)): v for i, v in enumerate(values)}


def build_manifest(trainer: Trainer, status: str) -> dict[str, Any]:
    """Versions, components, plans digest, command, seeds, device and budget decisions of a run."""
    from segforge.plugins import get_manager, get_registries

    ctx, state, params = trainer.context, trainer.state, trainer.params
    registries = get_registries()
    logs = state.logs
    plans_json = ctx.plans.model_dump_json()
    return {
        "status": status,
        "dataset": ctx.dataset_name,
        "configuration": ctx.configuration.name,
        "fold": ctx.fold,
        "plans_name": ctx.plans_name,
        "plans_digest": plans_digest(plans_json),
        "fingerprint_digest": ctx.plans.fingerprint_digest,
        "command": ctx.request.command or command_line(),
        "trainer": _component(ctx.trainer_entry, params.model_dump(mode="json")),
        "network": _component(ctx.network_entry, dict(ctx.configuration.network.params)),
        "loss": _component(registries.loss.entry(trainer.loss_name), dict(trainer.loss_params)),
        "callbacks": callbacks_of(trainer).records(),  # names, versions, params, errors of --callback
        "plugins": plugin_versions(),
        "report_header": get_manager().report_header(),
        "seed": params.seed,
        "deterministic": ctx.request.deterministic,
        "device": str(trainer.device),
        "precision": trainer.precision.name,
        "threads": _threads(),
        "num_workers": trainer.num_workers,
        "batch_size": trainer.batch_size,  # the global batch; under torchrun split over world_size ranks
        "world_size": trainer.dist.world_size if getattr(trainer, "dist", None) is not None else 1,
        "patch_size": trainer.patch_size,
        "train_cases": len(ctx.train_ids),
        "val_cases": len(ctx.val_ids),
        "pretrained_weights": str(ctx.request.pretrained_weights) if ctx.request.pretrained_weights else None,
        "budget": trainer.budget.report() if trainer.budget is not None else None,
        "time_spent": time_spent(trainer),  # seconds per kind of work and their share of the budget
        "stop": stop_record(trainer),  # a `segforge stop` / SIGUSR1 request and where it took effect
        "progress": {
            "epochs": state.epoch,
            "iterations": state.iteration,
            "total_iterations": trainer.total_iterations,
            "elapsed_s": round(trainer.clock.elapsed(), 2),
        },
        "results": {
            "best_ema_pseudo_dice": state.best_ema,
            "last_pseudo_dice": _labelled(trainer, logs["pseudo_dice"][-1] if logs["pseudo_dice"] else None),
            "final_pseudo_dice": _labelled(trainer, trainer.final_pseudo_dice),
        },
        "notes": list(ctx.notes),
        "environment": environment(),
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()
