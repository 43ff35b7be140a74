"""The loss components segforge registers: ``dc_ce``, ``dc_bce``, ``dice``, ``ce`` and ``deep_supervision``.

A loss component has a ``name``, a ``version``, a pydantic ``Params`` model (what ``--set
loss.KEY=VALUE`` validates against) and ``build(params, context) -> nn.Module``; the module
maps ``(logits, target)`` to a scalar. :class:`LossContext` tells ``build`` what the plans and
the network decided (classes, batch Dice, deep-supervision outputs), so a plugin loss needs no
other source of truth. Torch is imported only inside ``build``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def sums_of_this_process(*tensors: Any) -> tuple[Any, ...]:
    """Batch sums as they are: the batch of one process is the whole batch (no distributed training)."""
    return tensors


@dataclass(frozen=True)
class LossContext:
    """What a loss may depend on, decided by plans and network rather than by the loss's params."""

    num_classes: int
    #: the configuration's planned ``batch_dice`` (nnU-Net: True for 3D, False for 2D)
    batch_dice: bool = True
    #: per-axis downsampling of each network output, full resolution first (one entry: no DS)
    deep_supervision_scales: Sequence[Sequence[int]] = field(default_factory=lambda: [[1, 1, 1]])
    #: target value of unannotated voxels (dataset.json label ``ignore``): excluded from the loss
    ignore_label: int | None = None
    #: region-based training: the label set of each (sigmoid) output channel; None for softmax
    regions: Sequence[Sequence[int]] | None = None
    #: ``(a, b, ...) -> (a', b', ...)``: equally shaped batch sums summed over the *global* batch. Under
    #: torchrun each rank holds a slice of the batch, and a batch Dice must pool every rank's sums (with
    #: gradient) or the loss differs from the single-process one; the trainer passes that reduction here,
    #: so losses never reach for the distributed machinery themselves
    sum_over_ranks: Callable[..., tuple[Any, ...]] = sums_of_this_process


class LossParams(BaseModel):
    """Base for loss Params: unknown keys are errors (a misspelled ``--set`` must not pass)."""

    model_config = ConfigDict(extra="forbid")


class DiceParams(LossParams):
    batch_dice: bool | None = Field(None, description="pool Dice sums over the batch; None = as planned")
    do_bg: bool = Field(False, description="include the background class in the Dice")
    smooth: float = Field(1e-5, ge=0, description="added to numerator and denominator")


class DiceCEParams(DiceParams):
    weight_ce: float = Field(1.0, ge=0, description="weight of the cross-entropy term")
    weight_dice: float = Field(1.0, ge=0, description="weight of the (negative) soft Dice term")


class CEParams(LossParams):
    """Plain cross-entropy has no settings."""


def _softmax_only(name: str, context: LossContext) -> None:
    """Softmax losses cannot train region outputs: say which loss can."""
    if context.regions is not None:
        from segforge.errors import ConfigError

        raise ConfigError(
            f"loss '{name}' is for softmax outputs but this dataset trains regions (sigmoid outputs)",
            hint="use --loss dc_bce (the default for region-based datasets)",
        )


class LossComponent:
    """Convenience base for loss components (plugins may also duck-type it)."""

    name: ClassVar[str]
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[BaseModel]] = LossParams

    def build(self, params: Any, context: LossContext) -> nn.Module:
        raise NotImplementedError


class DiceCELossComponent(LossComponent):
    """Soft Dice (foreground, smooth 1e-5, batch Dice as planned) + cross-entropy, weights 1:1 (nnU-Net v2)."""

    name = "dc_ce"
    Params = DiceCEParams

    def build(self, params: DiceCEParams, context: LossContext) -> nn.Module:
        from segforge.losses.compound import DiceCELoss

        _softmax_only(self.name, context)
        batch_dice = context.batch_dice if params.batch_dice is None else params.batch_dice
        return DiceCELoss(
            batch_dice, params.do_bg, params.smooth, params.weight_ce, params.weight_dice, context.ignore_label,
            sum_over_ranks=context.sum_over_ranks,
        )  # fmt: skip


class DiceBCEParams(LossParams):
    batch_dice: bool | None = Field(None, description="pool Dice sums over the batch; None = as planned")
    smooth: float = Field(1e-5, ge=0, description="added to numerator and denominator")
    weight_ce: float = Field(1.0, ge=0, description="weight of the binary cross-entropy term")
    weight_dice: float = Field(1.0, ge=0, description="weight of the (negative) soft Dice term")


class DiceBCELossComponent(LossComponent):
    """Region training: sigmoid soft Dice per region + BCE with logits, weights 1:1 (nnU-Net's DC_and_BCE_loss)."""

    name = "dc_bce"
    Params = DiceBCEParams

    def build(self, params: DiceBCEParams, context: LossContext) -> nn.Module:
        from segforge.errors import ConfigError
        from segforge.losses.regions import RegionDiceBCELoss

        if context.regions is None:
            raise ConfigError(
                "loss 'dc_bce' needs a region-based dataset (dataset.json labels given as lists)",
                hint="use the default loss dc_ce for ordinary datasets, or declare regions in dataset.json",
            )
        batch_dice = context.batch_dice if params.batch_dice is None else params.batch_dice
        return RegionDiceBCELoss(
            context.regions, context.ignore_label, batch_dice, params.smooth, params.weight_ce, params.weight_dice,
            sum_over_ranks=context.sum_over_ranks,
        )  # fmt: skip


class DiceLossComponent(LossComponent):
    """Negative soft Dice alone (foreground classes, batch Dice as planned)."""

    name = "dice"
    Params = DiceParams

    def build(self, params: DiceParams, context: LossContext) -> nn.Module:
        from segforge.losses.dice import SoftDiceLoss

        _softmax_only(self.name, context)
        batch_dice = context.batch_dice if params.batch_dice is None else params.batch_dice
        return SoftDiceLoss(batch_dice, params.do_bg, params.smooth, context.ignore_label, context.sum_over_ranks)


class CELossComponent(LossComponent):
    """Cross-entropy over all voxels and classes."""

    name = "ce"
    Params = CEParams

    def build(self, params: CEParams, context: LossContext) -> nn.Module:
        from segforge.losses.cross_entropy import TargetCrossEntropyLoss

        _softmax_only(self.name, context)
        return TargetCrossEntropyLoss(ignore_index=-100 if context.ignore_label is None else context.ignore_label)


class DeepSupervisionParams(LossParams):
    loss: str = Field("dc_ce", description="registered loss applied to every output")
    loss_params: dict[str, Any] = Field(default_factory=dict, description="that loss's params")
    weights: list[float] | None = Field(None, description="per output, full resolution first; None = nnU-Net's")
    drop_lowest: bool = Field(True, description="with default weights: the lowest output gets weight 0")


class DeepSupervisionComponent(LossComponent):
    """Weighted sum of a loss over the deep-supervision outputs (weights halve per level, lowest 0, sum 1).

    Trainers wrap their loss in it automatically when the network has deep supervision; select
    it explicitly (``--loss deep_supervision --set loss.weights=[...]``) to choose the weights.
    """

    name = "deep_supervision"
    Params = DeepSupervisionParams

    def build(self, params: DeepSupervisionParams, context: LossContext) -> nn.Module:
        from segforge.errors import ConfigError
        from segforge.losses.deep_supervision import DeepSupervisionLoss

        if params.loss == self.name:
            raise ConfigError("loss 'deep_supervision' cannot wrap itself", hint="set loss.loss to e.g. 'dc_ce'")
        inner = build_loss(params.loss, params.loss_params, context)
        return DeepSupervisionLoss(inner, self.weights(params, context))

    def weights(self, params: DeepSupervisionParams, context: LossContext) -> list[float]:
        from segforge.errors import ConfigError
        from segforge.losses.deep_supervision import deep_supervision_weights

        n = len(context.deep_supervision_scales)
        if params.weights is None:
            return deep_supervision_weights(n, params.drop_lowest)
        if len(params.weights) != n:
            raise ConfigError(
                f"loss param weights has {len(params.weights)} entries, the network has {n} outputs",
                hint=f"give {n} weights (full resolution first) or leave weights unset for nnU-Net's",
            )
        return list(params.weights)


def parse_loss_params(component: Any, params: dict[str, Any] | BaseModel) -> BaseModel:
    """Validate ``params`` against the component's Params; one-line ConfigError naming the key."""
    from pydantic import ValidationError

    from segforge.errors import ConfigError

    if isinstance(params, component.Params):
        return params
    try:
        return component.Params.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        valid = ", ".join(component.Params.model_fields) or "none"
        raise ConfigError(
            f"loss '{component.name}' param loss.{loc}: {err['msg']} (valid: {valid})",
            hint=f"`segforge components show loss {component.name}` lists the params",
        ) from None


def build_loss(name: str, params: dict[str, Any] | BaseModel, context: LossContext) -> nn.Module:
    """Look ``name`` up in the loss registry, validate ``params`` and build it."""
    from segforge.plugins import get_registries

    component = get_registries().loss.get(name)
    return component.build(parse_loss_params(component, params), context)
