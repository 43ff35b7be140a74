"""Which loss a run trains with: decided by one function, checked before the run folder exists.

The choice used to be made twice (the trainer defaulted to ``dc_bce`` on region datasets, the
early ``--set loss.KEY`` check fell back to ``dc_ce``), so a key valid for one loss but not the
other passed the check and failed only when the trainer built its loss, after the run folder
and log were written. Now :func:`resolve_loss` is the only place that decides, the early
check (:func:`check_loss`) and the trainer's :meth:`build_loss` both call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segforge.losses.components import LossContext, build_loss, parse_loss_params
from segforge.training.distributed import sum_over_ranks
from segforge.training.label_targets import REGION_LOSS

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def resolve_loss(context: Any, trainer_cls: Any, params: Any) -> str:
    """``--loss``, else the trainer param ``loss``, else ``dc_bce`` for region datasets, else the trainer's default."""
    chosen = context.request.loss or getattr(params, "loss", None)
    if chosen:
        return str(chosen)
    if context.label_scheme.has_regions:
        return REGION_LOSS  # nnU-Net v2 trains regions with Dice + BCE on sigmoid outputs
    return str(getattr(trainer_cls, "default_loss", "dc_ce"))


def loss_context(context: Any, deep_supervision_scales: list[list[int]] | None, patch_dims: int) -> LossContext:
    """What a loss may depend on in this run (classes, batch Dice, scales, ignore label, regions)."""
    scales = deep_supervision_scales or [[1] * patch_dims]
    scheme = context.label_scheme
    batch_dice = context.configuration.batch_dice
    return LossContext(
        context.num_classes, batch_dice, scales, scheme.ignore_label, scheme.regions, sum_over_ranks=sum_over_ranks
    )


def build_run_loss(
    context: Any, name: str, params: dict[str, Any], deep_supervision_scales: list[list[int]] | None, patch_dims: int
) -> nn.Module:
    """The loss ``name``, wrapped in deep-supervision weighting when the network has several outputs."""
    ctx = loss_context(context, deep_supervision_scales, patch_dims)
    if name == "deep_supervision" or len(ctx.deep_supervision_scales) == 1:
        return build_loss(name, params, ctx)
    return build_loss("deep_supervision", {"loss": name, "loss_params": params}, ctx)


def check_loss(context: Any, trainer_cls: Any, params: Any, loss_updates: dict[str, Any], registries: Any) -> str:
    """Validate the run's loss and its params, and build it once, before anything is written.

    Building (tensors-free, milliseconds) also catches a loss that refuses this dataset, e.g.
    ``--loss dc_ce`` on a region dataset, with the loss's own one-line ConfigError. Deep
    supervision is left out here: its scales are known only once the network is built.
    """
    name = resolve_loss(context, trainer_cls, params)
    merged = {**getattr(params, "loss_params", {}), **loss_updates}
    parsed = parse_loss_params(registries.loss.get(name), merged)
    if name != "deep_supervision":
        registries.loss.get(name).build(parsed, loss_context(context, None, len(context.configuration.patch_size)))
    return name
