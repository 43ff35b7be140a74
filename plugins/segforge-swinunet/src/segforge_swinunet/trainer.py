"""``swin_adamw``: the training recipe transformers want, as a subclass of segforge's default trainer.

nnU-Net's SGD at lr 1e-2 with momentum 0.99 trains CNNs well but tends to diverge with
attention layers. This trainer changes only three steps of :class:`DefaultTrainer`:

* **optimizer** - AdamW, lr 3e-4, weight decay 1e-2 on weight matrices and conv kernels
  only: biases, norm parameters and the relative-position bias tables are not decayed
  (as in Swin; decaying a bias table pulls attention back towards uniform);
* **learning rate** - linear warm-up over the first ``warmup_fraction`` (5 %) of training
  from 1 % of the peak, then cosine decay to ``min_lr``, updated every iteration;
* **gradient clipping** at a norm of 1.0.

The LR is a function of the schedule's *progress* (0 to 1), not of the raw iteration, so a
``--time-budget`` run that re-sizes its schedule mid-run keeps a continuous LR, and resuming
from a checkpoint restores it exactly. Everything else (epochs, loss, augmentation,
oversampling, checkpoints) is the default trainer's and can be changed with ``--set``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from segforge.training.params import TrainerParams
from segforge.training.trainer import DefaultTrainer

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

#: parameter names (suffixes) that are never weight-decayed besides biases and norm weights
NO_DECAY_SUFFIXES = ("relative_position_bias_table",)


class SwinAdamWParams(TrainerParams):
    """The default trainer's settings with AdamW and warm-up cosine defaults (momentum, nesterov unused)."""

    initial_lr: float = Field(3e-4, gt=0, description="peak learning rate, reached after the warm-up")
    weight_decay: float = Field(
        1e-2, ge=0, description="AdamW weight decay (weights only; no biases, norms, bias tables)"
    )
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm; None = no clipping")
    lr_step: Literal["epoch", "iteration"] = Field("iteration", description="update the LR every iteration")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="share of training spent warming up linearly")
    warmup_start_factor: float = Field(0.01, gt=0, le=1, description="LR at the first iteration, relative to peak")
    min_lr: float = Field(0.0, ge=0, description="LR the cosine decay ends at")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW's moving-average coefficients")


def warmup_cosine(progress: float, peak: float, warmup_fraction: float, start_factor: float, min_lr: float) -> float:
    """LR at ``progress`` in [0, 1]: linear from ``start_factor * peak`` to ``peak``, then cosine to ``min_lr``."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup_fraction:
        return peak * (start_factor + (1.0 - start_factor) * progress / warmup_fraction)
    t = (progress - warmup_fraction) / (1.0 - warmup_fraction)
    return min_lr + 0.5 * (peak - min_lr) * (1.0 + math.cos(math.pi * t))


def decay_groups(network: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW parameter groups: decayed weights, and undecayed biases / norm parameters / bias tables."""
    decay, no_decay = [], []
    for name, param in network.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(NO_DECAY_SUFFIXES):
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class SwinAdamWTrainer(DefaultTrainer):
    """AdamW (lr 3e-4, weight decay 1e-2), 5 % linear warm-up then cosine decay per iteration, grad clip 1.0."""

    name: ClassVar[str] = "swin_adamw"
    version: ClassVar[str] = "0.1.0"
    Params: ClassVar[type[SwinAdamWParams]] = SwinAdamWParams

    def configure_optimizer(self) -> torch.optim.Optimizer:
        import torch

        p = self.params
        return torch.optim.AdamW(decay_groups(self.network, p.weight_decay), lr=p.initial_lr, betas=tuple(p.betas))

    def lr_at(self, iteration: int) -> float:
        p = self.params
        progress = self.schedule.progress(iteration)
        return warmup_cosine(progress, self.schedule.initial_lr, p.warmup_fraction, p.warmup_start_factor, p.min_lr)
