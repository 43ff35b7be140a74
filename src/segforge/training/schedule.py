"""Learning-rate schedules as pure functions of the iteration, so resuming needs no scheduler state.

nnU-Net's poly schedule is ``lr = initial * (1 - epoch / epochs) ** 0.9``, applied at the start
of each epoch. :class:`PolySchedule` generalises it to iterations: with ``step_every`` equal to
the iterations per epoch it reproduces nnU-Net exactly; with ``step_every=1`` the LR decays
every iteration (what a short, budgeted run wants).

A budgeted run may learn mid-run that fewer (or more) iterations fit than first measured.
:meth:`PolySchedule.retarget` then re-anchors the schedule so the remaining progress from the
current point to 1 is spread over the new total: the LR stays continuous and still reaches 0
exactly at the (new) last iteration. Each schedule serializes to plain data for checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


def poly_lr(initial_lr: float, progress: float, exponent: float = 0.9) -> float:
    """``initial_lr * (1 - progress) ** exponent`` with ``progress`` clipped to [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    return initial_lr * (1.0 - progress) ** exponent


@dataclass
class PolySchedule:
    """Poly decay over ``total`` iterations, optionally stepped per epoch and with a linear warm-up.

    ``anchor_iteration``/``anchor_progress`` are the point :meth:`retarget` last re-anchored at
    (0/0 for a schedule that was never retargeted).
    """

    initial_lr: float
    total: int
    exponent: float = 0.9
    step_every: int = 1
    warmup: int = 0
    warmup_start_factor: float = 0.1
    anchor_iteration: int = 0
    anchor_progress: float = 0.0

    def progress(self, iteration: int) -> float:
        """Fraction of the schedule done at ``iteration`` (quantized to ``step_every``), in [0, 1]."""
        step = (iteration // self.step_every) * self.step_every
        if step <= self.anchor_iteration:  # before a retarget point: the old segment, linearly
            return self.anchor_progress * step / self.anchor_iteration if self.anchor_iteration else 0.0
        span = max(self.total - self.anchor_iteration, 1)
        return min(1.0, self.anchor_progress + (1.0 - self.anchor_progress) * (step - self.anchor_iteration) / span)

    def lr_at(self, iteration: int) -> float:
        lr = poly_lr(self.initial_lr, self.progress(iteration), self.exponent)
        if iteration < self.warmup:
            factor = self.warmup_start_factor + (1 - self.warmup_start_factor) * iteration / self.warmup
            lr *= factor
        return lr

    def retarget(self, iteration: int, new_total: int) -> None:
        """From ``iteration`` on, spread the remaining decay over ``new_total`` iterations in all."""
        new_total = max(int(new_total), iteration)
        self.anchor_progress = self.progress(iteration)
        self.anchor_iteration = iteration
        self.total = new_total

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "poly", **asdict(self)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PolySchedule:
        fields = {k: v for k, v in state.items() if k != "kind"}
        return cls(**fields)


def warmup_cosine_lr(initial_lr: float, iteration: int, total: int, warmup: int, min_lr: float = 0.0) -> float:
    """Linear warm-up to ``initial_lr`` over ``warmup`` iterations, then cosine decay to ``min_lr``.

    Transformer trainers (AdamW) usually want this instead of poly; a plugin trainer overrides
    ``lr_at`` with it.
    """
    if warmup > 0 and iteration < warmup:
        return initial_lr * (iteration + 1) / warmup
    span = max(total - warmup, 1)
    t = min(max(iteration - warmup, 0) / span, 1.0)
    return min_lr + 0.5 * (initial_lr - min_lr) * (1 + math.cos(math.pi * t))
